"""
:class:`Stream`: everything known about one HTTP/2 stream, in one record.

The engine (:mod:`hyper.http20.engine`) creates a stream when a request's headers go out or a
push is promised, keeps its protocol state here (RFC 9113 section 5.1), and files what arrives
on it: the response headers, the body, the trailers, how it ended. The layers above read the
same record: a response takes its body from :attr:`Stream.chunks`, a waiting thread checks
:attr:`Stream.finished`. Every field is changed with the connection's lock held.
"""

from __future__ import annotations

from collections import deque
from io import BytesIO

from ..common.exceptions import HyperError
from ..common.header_list import HeaderList
from ..common.trace import Timings
from .errors import code_name
from .exceptions import StreamResetError
from .window import BaseFlowControlManager

# HeaderList is hyper.common.header_list's, named here for the modules of hyper.http20.
__all__ = ["HeaderList", "Stream"]


class Stream:
    """
    One request and its response (or one pushed response) on a connection.

    Users meet streams only through :class:`~hyper.HTTP20Response` and
    :class:`~hyper.HTTP20Push`; the attributes are documented for the modules of
    :mod:`hyper.http20` that share them.

    :param stream_id: the stream identifier.
    :param window_manager: the policy for this stream's receive window; it hears of data as
        the caller consumes it, so unread data stays within the window.
    :param send_window: how much body data the peer lets us send on the stream at first.
    """

    __slots__ = (
        "buffered",
        "chunks",
        "error",
        "expected_length",
        "head_response",
        "local_closed",
        "offset",
        "prepaid",
        "pushed",
        "received_length",
        "remote_closed",
        "request_headers",
        "reserved",
        "reset_by_peer",
        "reset_code",
        "response_headers",
        "send_window",
        "sink",
        "stream_id",
        "timings",
        "trailers",
        "unacknowledged",
        "unprocessed",
        "window_manager",
    )

    def __init__(
        self, stream_id: int, window_manager: BaseFlowControlManager, send_window: int
    ) -> None:
        #: The stream identifier.
        self.stream_id = stream_id
        #: The receive window's policy (and, with :attr:`buffered`, the window itself).
        self.window_manager = window_manager
        #: How much body data may be sent now (the peer's window for this stream).
        self.send_window = send_window
        #: The request's header block (for a push: the promised request's).
        self.request_headers: HeaderList = []
        #: A push promised by the server (not a request of ours).
        self.pushed = False
        #: A push whose response headers have not arrived yet (state "reserved (remote)").
        self.reserved = False
        #: END_STREAM went out (or the stream was reset): nothing more will be sent.
        self.local_closed = False
        #: END_STREAM arrived: the response is complete.
        self.remote_closed = False
        #: The final response's header block, pseudo-headers included, once it arrived.
        self.response_headers: HeaderList | None = None
        #: The trailers' header block, if the server sent one.
        self.trailers: HeaderList | None = None
        #: The response to a HEAD request: its body is empty whatever the headers say.
        self.head_response = False
        #: The body length the server announced (Content-Length), if it did.
        self.expected_length: int | None = None
        #: Body bytes received so far (padding left out).
        self.received_length = 0
        #: Received body data not yet read, in the order it came.
        self.chunks: deque[bytes] = deque()
        #: How much of ``chunks[0]`` has been read already.
        self.offset = 0
        #: How many received body bytes are waiting in ``chunks`` (and, until they are read,
        #: still count against the receive window).
        self.buffered = 0
        #: Body bytes received and not yet reported to the window manager as consumed: the
        #: stream's receive window is ``window_manager.window_size - unacknowledged``.
        self.unacknowledged = 0
        #: Bytes at the front of ``chunks`` already counted as consumed (kept from a
        #: whole-body read that was interrupted): reading them reopens no window.
        self.prepaid = 0
        #: Where a caller reading the whole body wants it: data goes there instead of
        #: ``chunks``, and counts as consumed at once.
        self.sink: BytesIO | None = None
        #: The error code of the RST_STREAM that ended the stream, if one did.
        self.reset_code: int | None = None
        #: Whether that RST_STREAM came from the server.
        self.reset_by_peer = False
        #: Why the stream failed (its connection failed, or its response was malformed).
        self.error: HyperError | None = None
        #: The server said it never processed the request (GOAWAY below it, or
        #: REFUSED_STREAM): it is safe to send again.
        self.unprocessed = False
        #: The timings of the request on this stream, which the engine completes with when
        #: its response began and ended (``None``: nobody records them).
        self.timings: Timings | None = None

    def __repr__(self) -> str:
        return (
            f"<Stream {self.stream_id} buffered={self.buffered} ended={self.remote_closed} "
            f"reset={self.reset_code}>"
        )

    # -- state, as predicates a waiting thread can check --------------------------------------

    @property
    def finished(self) -> bool:
        """No more data will arrive: the response ended, or the stream was reset or failed."""
        return self.remote_closed or self.reset_code is not None or self.error is not None

    @property
    def closed(self) -> bool:
        """Closed in the protocol's sense: neither side will send anything more."""
        return (self.local_closed and self.remote_closed) or self.reset_code is not None

    def has_headers(self) -> bool:
        """The response headers are here, or never will be."""
        return self.response_headers is not None or self.finished

    def has_chunk(self) -> bool:
        """A frame's payload (possibly empty) is buffered, or no more will come."""
        return bool(self.chunks) or self.finished

    def raise_if_failed(self) -> None:
        """
        Raise why the stream ended abnormally, if it did.

        :raises ~hyper.http20.exceptions.StreamResetError: if the stream was reset.
        :raises HyperError: the failure of the connection, or of the response.
        """
        if self.reset_code is not None:
            who = "the server" if self.reset_by_peer else "hyper"
            raise StreamResetError(
                f"stream {self.stream_id} was reset by {who} "
                f"(error code {code_name(self.reset_code)})",
                self.stream_id,
                self.reset_code,
            )
        if self.error is not None:
            raise self.error

    # -- taking data --------------------------------------------------------------------------

    def take(self, amt: int | None) -> bytes:
        """Remove and return up to ``amt`` buffered bytes (all of them when ``None``)."""
        chunks = self.chunks
        if amt is None or amt >= self.buffered:
            if self.offset:
                chunks[0] = chunks[0][self.offset :]
                self.offset = 0
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self.buffered = 0
            return data
        parts = []
        needed = amt
        while needed:
            head = chunks[0]
            available = len(head) - self.offset
            if available <= needed:
                parts.append(head[self.offset :] if self.offset else head)
                chunks.popleft()
                self.offset = 0
                needed -= available
            else:
                parts.append(head[self.offset : self.offset + needed])
                self.offset += needed
                needed = 0
        self.buffered -= amt
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def take_chunk(self) -> bytes:
        """Remove and return the rest of the oldest received payload."""
        head = self.chunks.popleft()
        if self.offset:
            head = head[self.offset :]
            self.offset = 0
        self.buffered -= len(head)
        return head

    def discard(self) -> int:
        """Drop everything buffered; return how many bytes were dropped."""
        dropped = self.buffered
        self.chunks.clear()
        self.offset = 0
        self.buffered = 0
        return dropped
