"""
The exceptions specific to HTTP/3.

They all derive from :class:`HTTP30Error`, itself a :class:`~hyper.common.exceptions.HyperError`,
so ``except HyperError`` catches every failure whatever the protocol. Failures of the network
and of TLS use the protocol-independent classes: a QUIC handshake that gets no answer raises
:class:`~hyper.common.exceptions.ConnectTimeout`, a certificate that does not verify
:class:`~hyper.common.exceptions.CertificateError`, another handshake failure
:class:`~hyper.common.exceptions.TLSError`, a connection that ended without an error
(the idle timeout, a stateless reset) :class:`~hyper.common.exceptions.ConnectionClosed`.

This module does not import the QUIC stack, so it can be imported without it.
"""

from __future__ import annotations

from ..common.exceptions import ConnectionClosed, HyperError, InvalidResponse

__all__ = [
    "ClosedByCaller",
    "ConnectionError",
    "FieldSectionTooLarge",
    "HTTP3Unavailable",
    "HTTP30Error",
    "ProtocolError",
    "QPACKError",
    "StreamResetError",
]


class HTTP30Error(HyperError):
    """The base class of hyper's HTTP/3 exceptions."""


class HTTP3Unavailable(HTTP30Error, ImportError):
    """HTTP/3 needs the optional QUIC stack, ``qh3``, which is not installed: install it with
    ``pip install 'hyper[http3]'``."""


# The name shadows the builtin on purpose, as hyper.http20.exceptions.ConnectionError does.
class ConnectionError(HTTP30Error):
    """
    The QUIC connection ended with an error: the server closed it with an error code, or
    hyper closed it because the server broke the protocol. Also raised, with ``error_code``
    ``H3_NO_ERROR`` (``0x100``), for a request that a GOAWAY says the server never processed
    and that hyper could not send again by itself (its body was streamed): it is safe to
    retry.

    :ivar error_code: the QUIC transport error code, or the HTTP/3 or QPACK application
        error code (``0x100`` and above) once the handshake is done; ``None`` when there was
        none.
    """

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class ProtocolError(ConnectionError):
    """The connection ended because a peer broke QUIC or HTTP/3 (a malformed frame, a flow
    control violation, a frame on the wrong stream, ...)."""


class QPACKError(ProtocolError):
    """A QPACK header block or instruction stream could not be decoded (RFC 9204 section
    6); QPACK state is shared by the whole connection, so the connection ended."""


class StreamResetError(HTTP30Error):
    """
    The request's stream was reset (by the server with RESET_STREAM, or by hyper), so its
    data ends here. Other requests on the connection are not affected. A server that
    rejects a request with ``H3_REQUEST_REJECTED`` has not processed it: hyper sends it
    again once when it can.

    :ivar stream_id: the QUIC stream that was reset.
    :ivar error_code: the HTTP/3 error code carried by the reset.
    """

    def __init__(self, message: str, stream_id: int, error_code: int) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.error_code = error_code


class FieldSectionTooLarge(HTTP30Error, InvalidResponse):
    """
    A response's header section, or its trailers, is larger than hyper accepts, so hyper
    discarded the response (RFC 9114 section 4.2.2) and reset its stream, with
    ``H3_REQUEST_CANCELLED`` for a decoded section over the limit, or with
    ``QPACK_DECOMPRESSION_FAILED`` for a header block longer than hyper's decoder takes
    (RFC 9204 section 7.4). Other requests on the connection are not affected.

    hyper accepts a decoded section of up to
    :data:`~hyper.http30.engine.MAX_FIELD_SECTION_SIZE` bytes (each field's name and value,
    plus 32 bytes a field, as section 4.2.2 counts them), and buffers up to
    :data:`~hyper.http30.engine.MAX_HEAD_BYTES` bytes of a response's stream while waiting
    for its header section to be whole.

    :ivar size: how large the section was (decoded), or how many bytes had arrived before it
        was whole, when hyper gave up waiting for the rest.
    :ivar limit: the limit it went over.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ClosedByCaller(ConnectionClosed):
    """
    The caller closed the connection (:meth:`HTTP30Connection.close
    <hyper.HTTP30Connection.close>`) while this request was unanswered. hyper never sends
    such a request again by itself.
    """
