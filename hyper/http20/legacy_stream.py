"""
The state of one HTTP/2 stream as hyper sees it: what was received on it and not yet read.

h2 tracks the protocol state of each stream; a :class:`Stream` holds what the caller cares
about: the response headers, the body data not read yet, the trailers, whether the stream has
ended or was reset. The connection's session fills streams in as it dispatches h2 events
(always under the connection's lock); responses read from them through the connection, which
reads the socket when a stream has nothing buffered.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from ..common.exceptions import HyperError
from .exceptions import StreamResetError
from .window import BaseFlowControlManager

if TYPE_CHECKING:
    from .connection import HTTP20Connection
    from .session import Session

HeaderList = list[tuple[bytes, bytes]]


class Stream:
    """
    One request/response exchange on a connection. Created by the connection; users meet it
    only through :class:`~hyper.http20.response.HTTP20Response` and
    :class:`~hyper.http20.response.HTTP20Push`.

    :param stream_id: the HTTP/2 stream identifier.
    :param connection: the connection the stream belongs to.
    :param window_manager: the flow-control manager for this stream's receive window.
    """

    __slots__ = (
        "_conn",
        "_offset",
        "buffered",
        "chunks",
        "error",
        "headers_sent",
        "holds_views",
        "local_closed",
        "remote_closed",
        "replay",
        "request_headers",
        "reset_by_peer",
        "reset_code",
        "response_headers",
        "session",
        "stream_id",
        "trailers",
        "unprocessed",
        "window_manager",
    )

    def __init__(
        self,
        stream_id: int,
        connection: HTTP20Connection,
        window_manager: BaseFlowControlManager,
    ) -> None:
        self.stream_id = stream_id
        self._conn = connection
        self.window_manager = window_manager
        #: Request headers: queued by putheader() until sent, or a push's promised request.
        self.request_headers: HeaderList = []
        self.headers_sent = False
        self.local_closed = False
        #: The response header block (pseudo-headers included), once it arrived.
        self.response_headers: HeaderList | None = None
        self.trailers: HeaderList | None = None
        #: Received body data not yet read, one entry per DATA frame: bytes, or a view into
        #: the socket's buffer until the session reclaims it (see own_chunks()).
        self.chunks: deque[bytes | memoryview] = deque()
        #: Some of ``chunks`` are views into the socket's buffer.
        self.holds_views = False
        #: How much of chunks[0] has been read already.
        self._offset = 0
        self.buffered = 0
        self.remote_closed = False
        self.reset_code: int | None = None
        self.reset_by_peer = False
        #: The connection-level failure that ended this stream, if any.
        self.error: HyperError | None = None
        #: The session (socket) the stream is on, once its headers are sent (or promised).
        self.session: Session | None = None
        #: A GOAWAY said the server never processed this request.
        self.unprocessed = False
        #: The request's headers and in-memory body, to send again if it was unprocessed.
        self.replay: tuple[HeaderList, bytes | memoryview] | None = None

    def __repr__(self) -> str:
        return (
            f"<Stream {self.stream_id} buffered={self.buffered} ended={self.remote_closed} "
            f"reset={self.reset_code}>"
        )

    # -- state, as predicates the connection can wait on ------------------------------------------

    @property
    def finished(self) -> bool:
        """No more data will arrive: ended, reset or failed."""
        return self.remote_closed or self.reset_code is not None or self.error is not None

    def has_headers(self) -> bool:
        """The response headers are here, or never will be."""
        return self.response_headers is not None or self.finished

    def has_data(self) -> bool:
        """A read can make progress without the socket."""
        return self.buffered > 0 or self.finished

    def has_chunk(self) -> bool:
        """A frame (possibly empty) is buffered, or no more will come."""
        return bool(self.chunks) or self.finished

    def raise_if_failed(self) -> None:
        """
        Raise the error that ended the stream, if it did not end normally.

        :raises StreamResetError: if the stream was reset.
        :raises HyperError: the connection-level failure, if the connection failed.
        """
        if self.reset_code is not None:
            who = "the server" if self.reset_by_peer else "hyper"
            raise StreamResetError(
                f"stream {self.stream_id} was reset by {who} "
                f"(error code {_error_name(self.reset_code)})",
                self.stream_id,
                self.reset_code,
            )
        if self.error is not None:
            raise self.error

    # -- taking data (the connection's lock is held) ----------------------------------------------

    def take(self, amt: int | None) -> bytes:
        """Remove and return up to ``amt`` buffered bytes (all of them when ``None``)."""
        chunks = self.chunks
        if amt is None or amt >= self.buffered:
            if self._offset:
                chunks[0] = chunks[0][self._offset :]
                self._offset = 0
            # join() returns a single bytes chunk itself, and copies views into bytes.
            data = b"".join(chunks)
            chunks.clear()
            self.buffered = 0
            return data
        parts = []
        needed = amt
        while needed:
            head = chunks[0]
            available = len(head) - self._offset
            if available <= needed:
                parts.append(head[self._offset :] if self._offset else head)
                chunks.popleft()
                self._offset = 0
                needed -= available
            else:
                parts.append(head[self._offset : self._offset + needed])
                self._offset += needed
                needed = 0
        self.buffered -= amt
        return b"".join(parts)

    def take_chunk(self) -> bytes:
        """Remove and return the rest of the oldest received DATA frame."""
        head = self.chunks.popleft()
        if self._offset:
            head = head[self._offset :]
            self._offset = 0
        self.buffered -= len(head)
        return head if type(head) is bytes else bytes(head)

    def own_chunks(self) -> None:
        """Replace the views among ``chunks`` by copies: the buffer they point into is about
        to be reused."""
        self.chunks = deque(bytes(chunk) for chunk in self.chunks)
        self.holds_views = False

    def discard(self) -> int:
        """Drop everything buffered; return how many bytes were dropped."""
        dropped = self.buffered
        self.chunks.clear()
        self._offset = 0
        self.buffered = 0
        return dropped


def _error_name(code: int) -> str:
    try:
        return f"{ErrorCodes(code).name} ({code})"
    except ValueError:
        return str(code)
