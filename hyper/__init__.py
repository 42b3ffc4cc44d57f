"""
hyper: a synchronous HTTP/2 and HTTP/1.1 client that mirrors :mod:`http.client`.

    >>> from hyper import HTTP20Connection
    >>> conn = HTTP20Connection("example.com:443")
    >>> stream_id = conn.request("GET", "/")
    >>> response = conn.get_response(stream_id)
    >>> body = response.read()
"""

from __future__ import annotations

import logging

from .common.exceptions import HyperError
from .common.headers import HTTPHeaderMap
from .http20.connection import HTTP20Connection
from .http20.response import HTTP20Push, HTTP20Response

__version__ = "1.0.0.dev0"

__all__ = [
    "HTTP20Connection",
    "HTTP20Push",
    "HTTP20Response",
    "HTTPHeaderMap",
    "HyperError",
    "__version__",
]

# A library never configures logging; it only makes sure nothing is printed unasked.
logging.getLogger("hyper").addHandler(logging.NullHandler())
