"""
hyper: a synchronous HTTP/2 and HTTP/1.1 client that mirrors :mod:`http.client`.

    >>> from hyper import HTTPConnection
    >>> conn = HTTPConnection("example.com:443")
    >>> stream_id = conn.request("GET", "/")     # None if the server only speaks HTTP/1.1
    >>> response = conn.get_response(stream_id)
    >>> body = response.read()
"""

from __future__ import annotations

import logging

from .common.connection import HTTPConnection
from .common.exceptions import HyperError
from .common.headers import HTTPHeaderMap
from .http11.connection import HTTP11Connection
from .http11.response import HTTP11Response
from .http20.connection import HTTP20Connection
from .http20.response import HTTP20Push, HTTP20Response

__version__ = "1.0.0.dev0"

__all__ = [
    "HTTP11Connection",
    "HTTP11Response",
    "HTTP20Connection",
    "HTTP20Push",
    "HTTP20Response",
    "HTTPConnection",
    "HTTPHeaderMap",
    "HyperError",
    "__version__",
]

# A library never configures logging; it only makes sure nothing is printed unasked.
logging.getLogger("hyper").addHandler(logging.NullHandler())
