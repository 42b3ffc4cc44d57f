"""HTTP/2: the connection, its streams, responses, pushes, flow control and errors."""

from .connection import HTTP20Connection
from .response import HTTP20Push, HTTP20Response

__all__ = ["HTTP20Connection", "HTTP20Push", "HTTP20Response"]
