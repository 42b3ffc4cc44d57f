"""HTTP/2: the connection, its transport and engine, responses, pushes, flow control and
errors.

The names below load their modules (and hpack and hyperframe) on first use, so that importing
a module of this package that needs neither, such as :mod:`hyper.http20.window`, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common.util import lazy_attributes

if TYPE_CHECKING:
    from .connection import HTTP20Connection
    from .response import HTTP20Push, HTTP20Response

__all__ = ["HTTP20Connection", "HTTP20Push", "HTTP20Response"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "HTTP20Connection": ".connection",
        "HTTP20Push": ".response",
        "HTTP20Response": ".response",
    },
)
