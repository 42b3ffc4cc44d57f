"""
The QUIC stack: the names hyper uses from ``qh3``, imported in one place.

``qh3`` is optional (``pip install 'hyper[http3]'``); importing this module without it raises
:class:`~hyper.http30.exceptions.HTTP3Unavailable`, which says how to install it. Only the
stack's public API is used.
"""

from __future__ import annotations

from .exceptions import HTTP3Unavailable

try:
    from qh3 import H3Connection, QuicConfiguration, QuicConnection
    from qh3 import ProtocolError as H3ProtocolError
    from qh3.h3.connection import H3_ALPN
    from qh3.h3.events import (
        DataReceived,
        GoawayReceived,
        H3Event,
        HeadersReceived,
        InformationalHeadersReceived,
        PushPromiseReceived,
        StopSending,
    )
    from qh3.h3.events import StreamReset as H3StreamReset
    from qh3.h3.exceptions import H3Error
    from qh3.quic.connection import QuicConnectionError
    from qh3.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent
    from qh3.quic.events import StreamDataReceived as QuicStreamData
    from qh3.quic.events import StreamReset as QuicStreamReset
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise HTTP3Unavailable(
        f"HTTP/3 needs the QUIC stack qh3, which cannot be imported ({exc}): "
        "install it with pip install 'hyper[http3]'"
    ) from exc

__all__ = [
    "H3_ALPN",
    "ConnectionTerminated",
    "DataReceived",
    "GoawayReceived",
    "H3Connection",
    "H3Error",
    "H3Event",
    "H3ProtocolError",
    "H3StreamReset",
    "HandshakeCompleted",
    "HeadersReceived",
    "InformationalHeadersReceived",
    "PushPromiseReceived",
    "QuicConfiguration",
    "QuicConnection",
    "QuicConnectionError",
    "QuicEvent",
    "QuicStreamData",
    "QuicStreamReset",
    "StopSending",
]
