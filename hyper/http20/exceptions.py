"""
The exceptions specific to HTTP/2.

They all derive from :class:`HTTP20Error`, itself a :class:`~hyper.common.exceptions.HyperError`,
so ``except HyperError`` catches every failure whatever the protocol.
"""

from __future__ import annotations

from ..common.exceptions import ConnectionClosed, HyperError


class HTTP20Error(HyperError):
    """The base class of hyper's HTTP/2 exceptions."""


class HPACKEncodingError(HTTP20Error):
    """A header block could not be HPACK-encoded (for example, a header too large to send)."""


# The name shadows the builtin on purpose: it is part of the documented API.
class ConnectionError(HTTP20Error):
    """
    The connection as a whole failed and has been closed: the server sent GOAWAY with an
    error, or hyper ended the connection because the server broke the protocol. Also raised,
    with ``error_code`` ``NO_ERROR``, for a request a graceful GOAWAY says the server never
    processed and that hyper could not send again by itself (its body was streamed): it is
    safe to retry.

    :ivar error_code: the HTTP/2 error code (an :class:`~hyper.http20.errors.ErrorCodes`
        member, or a plain int for a code HTTP/2 does not define), or ``None`` when there was
        none.
    """

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class ProtocolError(ConnectionError):
    """
    The server broke the HTTP/2 protocol (a malformed frame, a flow-control violation, an
    illegal header block, ...). hyper has sent GOAWAY and closed the connection.
    """


class HPACKDecodingError(ProtocolError):
    """
    The server sent a header block that could not be HPACK-decoded (a bad index, bad Huffman
    code, or a header list over the limit hyper advertised). HPACK state is shared by the
    whole connection, so the connection is closed.
    """


class StreamResetError(HTTP20Error):
    """
    The stream this response belongs to was reset (by the server with RST_STREAM, or by
    hyper), so its data ends here. Other streams on the connection are not affected.

    :ivar stream_id: the stream that was reset.
    :ivar error_code: the HTTP/2 error code carried by the reset.
    """

    def __init__(self, message: str, stream_id: int, error_code: int) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.error_code = error_code


class ClosedByCaller(ConnectionClosed):
    """
    The caller closed the connection (:meth:`HTTP20Connection.close
    <hyper.HTTP20Connection.close>`) while this request was unanswered. Unlike other closed
    connections, hyper never sends such a request again by itself.
    """
