"""HTTP/3: the connection over QUIC, its transport and engine, responses and errors.

The names below load their modules (and the QUIC stack, ``qh3``) on first use, so that
``import hyper`` works without the ``http3`` extra. Without ``qh3``, looking them up raises
:class:`~hyper.http30.exceptions.HTTP3Unavailable`, which says how to install it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common.util import lazy_attributes

if TYPE_CHECKING:
    from .connection import HTTP30Connection
    from .response import HTTP30Response

__all__ = ["HTTP30Connection", "HTTP30Response"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "HTTP30Connection": ".connection",
        "HTTP30Response": ".response",
    },
)
