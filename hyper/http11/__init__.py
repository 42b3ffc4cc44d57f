"""HTTP/1.1: the connection, its responses, and the response parser."""

from .connection import HTTP11Connection
from .response import HTTP11Response

__all__ = ["HTTP11Connection", "HTTP11Response"]
