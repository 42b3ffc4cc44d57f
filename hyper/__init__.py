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
from typing import TYPE_CHECKING

from .common.exceptions import HyperError
from .common.headers import HTTPHeaderMap
from .common.timeout import Timeout
from .common.util import lazy_attributes
from .connection import HTTPConnection
from .http11.connection import HTTP11Connection
from .http11.response import HTTP11Response

if TYPE_CHECKING:
    from .common.trace import Timings, TraceEvent
    from .http20.connection import HTTP20Connection
    from .http20.response import HTTP20Push, HTTP20Response
    from .http30.connection import HTTP30Connection
    from .http30.response import HTTP30Response

__version__ = "1.0.0.dev0"

__all__ = [
    "HTTP11Connection",
    "HTTP11Response",
    "HTTP20Connection",
    "HTTP20Push",
    "HTTP20Response",
    "HTTP30Connection",
    "HTTP30Response",
    "HTTPConnection",
    "HTTPHeaderMap",
    "HyperError",
    "Timeout",
    "Timings",
    "TraceEvent",
    "__version__",
]

# A library never configures logging; it only makes sure nothing is printed unasked.
logging.getLogger("hyper").addHandler(logging.NullHandler())

#: The HTTP/2 classes (with hpack and hyperframe) and the HTTP/3 ones (with qh3, an optional
#: dependency) load on first use: importing hyper stays cheap for code that never speaks them.
__getattr__ = lazy_attributes(
    __name__,
    {
        "HTTP20Connection": ".http20.connection",
        "HTTP20Push": ".http20.response",
        "HTTP20Response": ".http20.response",
        "HTTP30Connection": ".http30.connection",
        "HTTP30Response": ".http30.response",
        "Timings": ".common.trace",
        "TraceEvent": ".common.trace",
    },
)
