"""
:class:`RequestStream`: everything known about one HTTP/3 request stream, in one record.

The engine (:mod:`hyper.http30.engine`) creates a stream when a request's headers go out and
files what arrives on it: the response headers, the body, the trailers, how it ended. The
layers above read the same record: a response takes its body with :meth:`RequestStream.take`, a
waiting thread checks :attr:`RequestStream.finished`. Every field is changed with the connection's
lock held.
"""

from __future__ import annotations

from io import BytesIO

from ..common.exceptions import HyperError
from ..common.header_list import HeaderList
from ..common.trace import Timings
from .errors import code_name
from .exceptions import StreamResetError

__all__ = ["RequestStream"]


class RequestStream:
    """
    One request and its response on a QUIC connection.

    Users meet streams only through :class:`~hyper.HTTP30Response`; the attributes are
    documented for the modules of :mod:`hyper.http30` that share them.

    :param stream_id: the QUIC stream id.
    :param head: whether the request is a HEAD (its response has no body, whatever its
        ``content-length`` says).
    """

    __slots__ = (
        "body",
        "error",
        "expected_length",
        "head",
        "head_bytes",
        "local_closed",
        "received_length",
        "remote_closed",
        "reset_by_peer",
        "reset_code",
        "response_headers",
        "sink",
        "stop_sending_code",
        "stream_id",
        "timings",
        "trailers",
        "unprocessed",
    )

    def __init__(self, stream_id: int, head: bool = False) -> None:
        #: The QUIC stream id.
        self.stream_id = stream_id
        #: The request is a HEAD.
        self.head = head
        #: The request's end went out (or the stream was reset): nothing more will be sent.
        self.local_closed = False
        #: The response ended: the stream's receiving side is done.
        self.remote_closed = False
        #: The final response's header list, ``:status`` first, once it arrived.
        self.response_headers: HeaderList | None = None
        #: The trailers, if the server sent them.
        self.trailers: HeaderList | None = None
        #: The body length the server announced (``content-length``), if it did.
        self.expected_length: int | None = None
        #: Bytes the stream carried before the response's header section was whole (encoded
        #: header blocks, informational responses, unknown frames).
        self.head_bytes = 0
        #: Body bytes received so far.
        self.received_length = 0
        #: Received body bytes not read yet.
        self.body = bytearray()
        #: Where a caller reading the whole body wants it: data goes there instead of
        #: :attr:`body`.
        self.sink: BytesIO | None = None
        #: The HTTP/3 error code of the reset that ended the stream, if one did.
        self.reset_code: int | None = None
        #: Whether that reset came from the server.
        self.reset_by_peer = False
        #: The error code of the server's STOP_SENDING: it wants no more of the request.
        self.stop_sending_code: int | None = None
        #: Why the stream failed (its connection failed, or its response was malformed).
        self.error: HyperError | None = None
        #: The server did not process the request (a GOAWAY below it, or
        #: ``H3_REQUEST_REJECTED``): it is safe to send again.
        self.unprocessed = False
        #: The timings of the request on this stream, which the engine completes with when
        #: its response began and ended (``None``: nobody records them).
        self.timings: Timings | None = None

    def __repr__(self) -> str:
        return (
            f"<RequestStream {self.stream_id} buffered={len(self.body)} "
            f"ended={self.remote_closed} reset={self.reset_code}>"
        )

    # -- state, as predicates a waiting thread can check --------------------------------------

    @property
    def finished(self) -> bool:
        """No more data will arrive: the response ended, or the stream was reset or failed."""
        return self.remote_closed or self.reset_code is not None or self.error is not None

    @property
    def buffered(self) -> int:
        """How many received body bytes wait to be read."""
        return len(self.body)

    def has_headers(self) -> bool:
        """The response headers are here, or never will be."""
        return self.response_headers is not None or self.finished

    def has_data(self) -> bool:
        """Body data is buffered, or no more will come."""
        return bool(self.body) or self.finished

    def raise_if_failed(self) -> None:
        """
        Raise why the stream ended abnormally, if it did.

        :raises ~hyper.http30.exceptions.StreamResetError: if the stream was reset.
        :raises HyperError: the failure of the connection, or of the response.
        """
        if self.error is not None:
            raise self.error
        if self.reset_code is not None:
            who = "the server" if self.reset_by_peer else "hyper"
            raise StreamResetError(
                f"stream {self.stream_id} was reset by {who} ({code_name(self.reset_code)})",
                self.stream_id,
                self.reset_code,
            )

    # -- data ---------------------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        """File body data that arrived."""
        self.received_length += len(data)
        sink = self.sink
        if sink is not None:
            sink.write(data)
        else:
            self.body += data

    def take(self, amt: int | None) -> bytes:
        """Remove and return up to ``amt`` buffered bytes (all of them when ``None``)."""
        body = self.body
        if amt is None or amt >= len(body):
            data = bytes(body)
            body.clear()
            return data
        with memoryview(body) as view:
            data = view[:amt].tobytes()
        # Deleting from the front of a bytearray moves its start, not its contents.
        del body[:amt]
        return data

    def discard(self) -> int:
        """Drop everything buffered; return how many bytes were dropped."""
        dropped = len(self.body)
        self.body = bytearray()
        return dropped
