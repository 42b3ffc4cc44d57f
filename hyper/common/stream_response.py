"""
:class:`StreamResponse`: a response that arrives on a stream of a multiplexed connection
(HTTP/2 or HTTP/3), read through a handle the connection gives it.

The handle (:class:`StreamSource`) does the protocol's work: waiting for data, taking it from
the stream, closing it. What is left is the same for both protocols and lives here: the
status line checks, the read primitives :class:`~hyper.common.response.BaseResponse` builds
on, and the trailers, which come after the body.
"""

from __future__ import annotations

import time
from typing import Any, Generic, Protocol, TypeVar

from .exceptions import DeadlineExceeded, InvalidResponse
from .headers import HTTPHeaderMap
from .response import BaseResponse
from .trace import Timings

__all__ = ["StreamHandle", "StreamResponse", "StreamSource", "StreamTransport"]


class StreamSource(Protocol):
    """What a :class:`StreamResponse` reads its stream through."""

    @property
    def stream_id(self) -> int:
        """The stream's id."""

    @property
    def finished(self) -> bool:
        """No more body data will arrive."""

    def read(self, amt: int | None) -> bytes:
        """Up to ``amt`` raw body bytes (the rest of the body when ``None``)."""

    def read_chunk(self) -> bytes | None:
        """The next piece of the body (possibly empty); ``None`` at the end."""

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        """The trailers, once the body has ended (``None`` if there were none)."""

    def close(self) -> None:
        """The response is done with: reset the stream if it is still open."""

    def fileno(self) -> int:
        """The file descriptor of the socket the stream is on."""


class StreamRecord(Protocol):
    """What a :class:`StreamHandle` reads of a protocol's stream record."""

    stream_id: int
    trailers: list[tuple[bytes, bytes]] | None

    @property
    def finished(self) -> bool:
        """No more data will arrive on the stream."""

    def raise_if_failed(self) -> None:
        """Raise why the stream ended abnormally, if it did."""


_Stream = TypeVar("_Stream", bound=StreamRecord)
_StreamIn = TypeVar("_StreamIn", bound=StreamRecord, contravariant=True)


class StreamTransport(Protocol[_StreamIn]):
    """What a :class:`StreamHandle` reads its stream through: a protocol's transport."""

    def read_body(self, stream: _StreamIn, amt: int | None, timeout: Any) -> bytes:
        """Up to ``amt`` body bytes of ``stream`` (all when ``None``)."""

    def read_chunk(self, stream: _StreamIn, timeout: Any) -> bytes | None:
        """The next piece of the body; ``None`` at its end."""

    def wait_for_headers(self, stream: _StreamIn, timeout: Any) -> None:
        """Wait until ``stream``'s response headers arrive, or it ends without them."""

    def close_stream(self, stream: _StreamIn) -> None:
        """The application is done with ``stream``."""

    def fileno(self) -> int:
        """The file descriptor of the socket."""


class StreamHandle(Generic[_Stream]):
    """
    What a response reads its stream through: the body, in pieces or whole, the trailers,
    and closing. The connection makes one for each response it hands out.

    :param transport: the transport the stream is on.
    :param stream: the stream.
    :param timeout: the longest wait for the server in each read (the request's read
        timeout, or the transport's own), or the request's total deadline. When that
        passes, the stream is reset (the connection stays usable for the others) and
        :class:`~hyper.common.exceptions.DeadlineExceeded` raised.
    """

    __slots__ = ("stream", "timeout", "transport")

    def __init__(self, transport: StreamTransport[_Stream], stream: _Stream, timeout: Any) -> None:
        self.transport = transport
        self.stream = stream
        #: The longest wait for the server in each read.
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<StreamHandle {self.stream.stream_id}>"

    @property
    def stream_id(self) -> int:
        """The stream's id."""
        return self.stream.stream_id

    @property
    def finished(self) -> bool:
        """No more body data will arrive."""
        return self.stream.finished

    def read(self, amt: int | None) -> bytes:
        """Up to ``amt`` raw body bytes (the rest of the body when ``None``)."""
        try:
            return self.transport.read_body(self.stream, amt, self.timeout)
        except DeadlineExceeded:
            self.close()
            raise

    def read_chunk(self) -> bytes | None:
        """The next piece of the body (possibly empty); ``None`` at the end of the body."""
        try:
            return self.transport.read_chunk(self.stream, self.timeout)
        except DeadlineExceeded:
            self.close()
            raise

    def wait_for_headers(self) -> None:
        """Wait for the response headers (for a push)."""
        try:
            self.transport.wait_for_headers(self.stream, self.timeout)
        except DeadlineExceeded:
            self.close()
            raise

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        """The trailers, once the body has ended (``None`` if there were none).

        :raises HyperError: if the stream failed.
        """
        self.stream.raise_if_failed()
        return self.stream.trailers

    def close(self) -> None:
        """The response is done with: reset the stream if it is still open."""
        self.transport.close_stream(self.stream)

    def fileno(self) -> int:
        """The file descriptor of the socket the stream is on."""
        return self.transport.fileno()


class StreamResponse(BaseResponse):
    """
    The response to a request on a stream: status, headers, body and trailers. Not
    instantiated directly (see :class:`~hyper.HTTP20Response` and
    :class:`~hyper.HTTP30Response`).

    :param headers: the response's header fields as the protocol checked them: ``:status``
        first, then regular fields only.
    :param stream: the handle the response reads its stream through.
    :param timings: the request's :class:`~hyper.common.trace.Timings`; a new one, started
        now, by default.
    :raises InvalidResponse: if ``:status`` is not a three-digit status code.
    """

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]],
        stream: StreamSource,
        timings: Timings | None = None,
    ) -> None:
        #: When each phase of the request and of this response happened
        #: (:class:`~hyper.common.trace.Timings`; :doc:`/timings`).
        self.timings = (
            timings
            if timings is not None
            else Timings(time.monotonic(), reused=True, protocol=self.version.value)
        )
        status = headers[0][1] if headers and headers[0][0] == b":status" else b""
        if len(status) != 3 or not status.isdigit():
            stream.close()
            raise InvalidResponse(
                f"stream {stream.stream_id}: invalid :status {status[:20]!r} in response"
            )
        #: The status code, an int.
        self.status = int(status)
        #: HTTP/2 and HTTP/3 have no reason phrase: always ``""``.
        self.reason = ""
        #: The response headers (pseudo-headers left out), set once and never changed.
        self.headers = HTTPHeaderMap.from_trusted(headers[1:])
        self._stream = stream
        #: Raw body bytes read ahead (to reach the trailers) and not yet returned.
        self._cache: bytes | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.status}] stream={self._stream.stream_id}>"

    @property
    def stream_id(self) -> int:
        """The id of the stream the response arrived on."""
        return self._stream.stream_id

    # -- body -------------------------------------------------------------------------------------

    def _raw_read(self, amt: int | None) -> bytes:
        cache = self._cache
        if cache is not None:
            if amt is None or amt >= len(cache):
                self._cache = None
                if amt is not None or self._stream.finished:
                    return cache
                return cache + self._stream.read(None)
            self._cache = cache[amt:]
            return cache[:amt]
        return self._stream.read(amt)

    def _raw_chunk(self) -> bytes | None:
        cache = self._cache
        if cache is not None:
            self._cache = None
            return cache
        return self._stream.read_chunk()

    @property
    def trailers(self) -> HTTPHeaderMap | None:
        """
        The trailers the server sent after the body, or ``None`` if it sent none.

        Trailers come after the body, so asking for them reads the rest of the body into
        memory (it stays available to :meth:`read`).
        """
        stream = self._stream
        if not stream.finished:
            self._cache = (self._cache or b"") + stream.read(None)
        trailers = stream.trailers()
        if trailers is None:
            return None
        return HTTPHeaderMap.from_trusted(list(trailers))

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """
        Close the response. If the body has not been read to the end, the stream is reset
        so the server stops sending it; data not read is dropped.
        """
        self._cache = None
        self._stream.close()

    def fileno(self) -> int:
        """
        The file descriptor of the socket this response arrives on (shared by every stream
        on it), for ``select``-style readiness checks.
        """
        return self._stream.fileno()
