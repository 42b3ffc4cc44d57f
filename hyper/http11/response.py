"""
:class:`HTTP11Response`: an HTTP/1.1 response, its body read from the connection's buffered
socket as the caller asks for it.

How the body is delimited follows RFC 9112 section 6.3: no body for HEAD and for 1xx, 204 and
304 responses; ``Transfer-Encoding: chunked``; ``Content-Length``; otherwise the end of the
connection. Responses that could be read two ways (both Transfer-Encoding and Content-Length,
or Content-Length values that disagree) are refused: that ambiguity is what response splitting
and request smuggling are made of.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import TypeVar

from ..common.bufsocket import BufferedSocket
from ..common.exceptions import (
    ChunkedDecodeError,
    ConnectionClosed,
    HyperError,
    IncompleteRead,
    InvalidResponseHeader,
    LineTooLongError,
)
from ..common.headers import HTTPHeaderMap
from ..common.response import BaseResponse
from ..common.trace import RESPONSE_BODY_DONE, Timings, Tracer
from ..common.util import HTTPVersion
from .parser import DEFAULT_MAX_LINE

# What a body piece is turned into: bytes, or the count a sink's write() returns.
_T = TypeVar("_T")

#: The longest chunk-size line (with extensions) accepted.
MAX_CHUNK_LINE = 4096
#: The most hex digits in a chunk size: 2**60 bytes is more than any body.
MAX_CHUNK_DIGITS = 15
#: The most trailer fields accepted after a chunked body.
MAX_TRAILERS = 100
#: How much a read of a body delimited by the connection's end asks for at once.
READ_SIZE = 64 * 1024

_HEX = frozenset(b"0123456789abcdefABCDEF")
_FRAMING_FIELDS = frozenset({b"transfer-encoding", b"content-length", b"connection"})

# Body framing kinds.
_NONE, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
# Transfer codings that define no parameters (RFC 9112 section 7).
_CODINGS_WITHOUT_PARAMETERS = frozenset(
    {b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"}
)


def _tokens(values: list[bytes]) -> list[bytes]:
    return [token.strip().lower() for value in values for token in value.split(b",")]


def connection_persists(connection: list[bytes] | None, minor_version: int) -> bool:
    """
    Whether a response's Connection field values and HTTP/1.x minor version let the
    connection carry another request (RFC 9112 section 9.3): not when ``close`` is among the
    options; in HTTP/1.0 only with ``keep-alive``.

    :param connection: the values of the response's Connection fields (``None``: none).
    :param minor_version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    """
    options = _tokens(connection) if connection else []
    if b"close" in options:
        return False
    return minor_version >= 1 or b"keep-alive" in options


class ConnectionLease:
    """
    A response's hold on its connection while the body is read: the socket to read from,
    what the connection knows about the exchange, and how to give the connection back.

    :class:`~hyper.HTTP11Connection` makes one for each response it hands out; the response
    :meth:`releases <release>` it once the body is complete (or abandoned). If the connection
    is closed first, it :meth:`revokes <revoke>` the lease: the response can read no more.

    :param sock: the socket the body arrives on.
    :param minor_version: the HTTP/1.x minor version of the response (1.0 closes by default).
    :param max_line_length: the longest trailer line accepted (the connection's parser limit).
    :param on_release: called once, with the lease and whether the connection can carry
        another request, when the body is done.
    :param on_close: closes the connection (for :meth:`HTTP11Response.close`'s
        ``socket_close``).
    """

    __slots__ = ("_on_close", "_on_release", "max_line_length", "minor_version", "sock")

    def __init__(
        self,
        sock: BufferedSocket | None,
        minor_version: int = 1,
        max_line_length: int = DEFAULT_MAX_LINE,
        on_release: Callable[[ConnectionLease, bool], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        #: The socket to read the body from; ``None`` once released or revoked.
        self.sock = sock
        #: The response's HTTP/1.x minor version.
        self.minor_version = minor_version
        #: The longest trailer line accepted.
        self.max_line_length = max_line_length
        self._on_release = on_release
        self._on_close = on_close

    def release(self, reusable: bool) -> None:
        """The body is done: give the connection back (``reusable``: it can carry another
        request; else it is closed). Only the first call counts."""
        sock, self.sock = self.sock, None
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release(self, reusable)
        elif sock is not None and not reusable:
            sock.close()

    def revoke(self) -> None:
        """The connection was closed (or switched protocols): the socket is no longer the
        response's."""
        self.sock = None
        self._on_release = None

    def close_connection(self) -> None:
        """Close the connection the response came on (also after the lease was released)."""
        if self._on_close is not None:
            self._on_close()


class HTTP11Response(BaseResponse):
    """
    The response to an HTTP/1.1 request: status, reason, headers, body and trailers.

    Responses come from :meth:`HTTP11Connection.get_response
    <hyper.HTTP11Connection.get_response>`. Reading the body to its end hands the connection
    back for the next request (unless the server asked to close it).

    :param code: the status code.
    :param reason: the reason phrase.
    :param headers: the response headers.
    :param sock: the buffered socket the body is read from (used when ``connection`` is
        ``None``; the lease's socket otherwise).
    :param connection: the :class:`ConnectionLease` the connection gave the response: where
        the body comes from, and how the connection is handed back when it is done.
    :param request_method: the method of the request (a HEAD response has no body).
    :param timings: the request's :class:`~hyper.common.trace.Timings`, which the response
        completes when its body ends; a new one, started now, by default.
    :param tracer: where the end of the body is reported.
    :raises InvalidResponse: if the headers do not say unambiguously where the body ends.
    """

    version = HTTPVersion.http11

    def __init__(
        self,
        code: int,
        reason: str,
        headers: HTTPHeaderMap | Iterable[tuple[bytes, bytes]],
        sock: BufferedSocket | None,
        connection: ConnectionLease | None = None,
        request_method: bytes | str | None = None,
        timings: Timings | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.status = code
        #: When each phase of the request and of this response happened
        #: (:class:`~hyper.common.trace.Timings`; :doc:`timings`).
        self.timings = (
            timings if timings is not None else Timings(time.monotonic(), protocol="HTTP/1.1")
        )
        self._tracer = tracer
        self.reason = reason
        if type(headers) is list:  # from the parser: the usual case, and no ABC check
            self.headers = HTTPHeaderMap.from_trusted(headers)
        elif isinstance(headers, HTTPHeaderMap):
            self.headers = headers
        else:
            self.headers = HTTPHeaderMap.from_trusted(list(headers))
        #: Trailers sent after a chunked body; ``None`` until the body is read to its end
        #: (and when the server sent none).
        self.trailers: HTTPHeaderMap | None = None
        self._lease = connection if connection is not None else ConnectionLease(sock)
        method = request_method.encode() if isinstance(request_method, str) else request_method
        self._fields = self._framing_fields()
        self._framing, self._remaining = self._body_framing(method)
        self._received = 0
        self._chunk_left = 0  # chunked: bytes left in the current chunk
        self._keep_alive = self._framing != _UNTIL_CLOSE and self._wants_keep_alive()
        self._done = False
        if self._framing == _NONE:
            self._finish()

    def __repr__(self) -> str:
        return f"<HTTP11Response [{self.status} {self.reason}]>"

    # -- framing ----------------------------------------------------------------------------------

    def _framing_fields(self) -> dict[bytes, list[bytes]]:
        """The fields that decide framing and reuse, found in one pass over the headers."""
        found: dict[bytes, list[bytes]] = {}
        for name, value in self.headers.iter_raw():
            lowered = name.lower()
            if lowered in _FRAMING_FIELDS:
                found.setdefault(lowered, []).append(value)
        return found

    def _body_framing(self, method: bytes | None) -> tuple[int, int]:
        status = self.status
        fields = self._fields
        if method == b"HEAD" or status < 200 or status in (204, 304):
            return _NONE, 0
        transfer = fields.get(b"transfer-encoding")
        lengths = fields.get(b"content-length")
        if transfer:
            if lengths:
                raise InvalidResponseHeader(
                    "response has both Transfer-Encoding and Content-Length; refusing a body "
                    "that could be read two ways"
                )
            codings = _tokens(transfer)
            for coding in codings:
                name, _, parameters = coding.partition(b";")
                if parameters and name.strip() in _CODINGS_WITHOUT_PARAMETERS:
                    # RFC 9112 7.1 and 7.2: these codings define no parameters.
                    raise InvalidResponseHeader(
                        f"transfer coding with parameters: {coding[:60]!r}"
                    )
            if codings[-1] == b"chunked":
                if codings.count(b"chunked") > 1:
                    raise InvalidResponseHeader("response applies chunked more than once")
                return _CHUNKED, 0
            return _UNTIL_CLOSE, 0
        if lengths:
            if len(lengths) == 1 and lengths[0].isdigit() and len(lengths[0]) <= 18:
                # One plain number (the usual case): nothing to split, strip or compare.
                length = int(lengths[0])
                return (_LENGTH, length) if length else (_NONE, 0)
            values = set(_tokens(lengths))
            if len(values) != 1:
                raise InvalidResponseHeader(f"conflicting Content-Length values: {sorted(values)}")
            value = values.pop()
            if not value.isdigit() or len(value) > 18:
                raise InvalidResponseHeader(f"invalid Content-Length {value[:30]!r}")
            length = int(value)
            return (_LENGTH, length) if length else (_NONE, 0)
        return _UNTIL_CLOSE, 0

    def _wants_keep_alive(self) -> bool:
        minor_version = self._lease.minor_version
        if not connection_persists(self._fields.get(b"connection"), minor_version):
            return False
        # HTTP/1.0 with Transfer-Encoding: faulty framing, never reused (RFC 9112 6.1).
        return minor_version >= 1 or b"transfer-encoding" not in self._fields

    def _finish(self, complete: bool = True) -> None:
        """The body is over (``complete``: read to its end; else abandoned): hand the
        connection back, or close it."""
        if self._done:
            return
        self._done = True
        if complete:
            at = self.timings.body_done = time.monotonic()
            tracer = self._tracer
            if tracer is not None and tracer.hook is not None:
                tracer.emit(RESPONSE_BODY_DONE, None, {}, at)
        self._lease.release(self._keep_alive)

    @property
    def complete(self) -> bool:
        """Whether the body has been read to its end (or the response closed)."""
        return self._done

    def _socket(self) -> BufferedSocket:
        sock = self._lease.sock
        if sock is None:
            raise ConnectionClosed("the connection of this response was closed")
        return sock

    # -- raw body ---------------------------------------------------------------------------------

    def _raw_read(self, amt: int | None) -> bytes:
        if self._done:
            return b""
        try:
            return self._raw_read_open(amt)
        except HyperError:
            # A socket error or time-out in the middle of the body: where the next response
            # would start is unknown, so the connection must not carry another request.
            self._abort()
            raise

    def _raw_read_open(self, amt: int | None) -> bytes:
        if amt is None:
            return self._raw_read_whole()
        parts: list[bytes] = []
        wanted = amt
        while (wanted is None or wanted > 0) and not self._done:
            piece = self._next_piece(wanted, bytes)
            if piece is None:
                break
            parts.append(piece)
            if wanted is not None:
                wanted -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _raw_read_whole(self) -> bytes:
        """The rest of the body: each piece goes from the socket buffer straight into one
        growing buffer, which is handed over without a final copy."""
        first = self._next_piece(None, bytes)
        if first is None or self._done:
            return first or b""  # the usual small body: one socket read, no buffer
        sink = BytesIO()
        sink.write(first)
        while not self._done:
            if self._next_piece(None, sink.write) is None:
                break
        # CPython's BytesIO hands over its buffer without copying it when no view is open.
        return sink.getvalue()

    def _raw_chunk(self) -> bytes | None:
        if self._done:
            return None
        try:
            return self._raw_chunk_open()
        except HyperError:
            self._abort()  # as in _raw_read
            raise

    def _raw_chunk_open(self) -> bytes | None:
        if self._framing == _CHUNKED:
            # One chunk at a time, as the server framed it; a chunk larger than what one
            # socket read brings comes in several pieces (memory stays bounded).
            if self._chunk_left == 0 and not self._start_chunk():
                return None
            return self._next_piece(self._chunk_left, bytes)
        return self._next_piece(None, bytes)

    def _next_piece(self, wanted: int | None, store: Callable[[memoryview], _T]) -> _T | None:
        """One piece of the body, at most ``wanted`` bytes, given to ``store`` while it is
        still a view of the socket buffer (``bytes`` copies it out, a sink's ``write``
        appends it); what ``store`` returns, or None at the end of the body."""
        framing = self._framing
        if framing == _LENGTH:
            size = self._remaining if wanted is None else min(wanted, self._remaining)
            view = self._socket().recv(size)
            if not view:
                self._abort()
                raise IncompleteRead(self._received, self._received + self._remaining)
            got = len(view)
            stored = store(view)
            self._remaining -= got
            self._received += got
            if not self._remaining:
                self._finish()
            return stored
        if framing == _CHUNKED:
            if self._chunk_left == 0 and not self._start_chunk():
                return None
            size = self._chunk_left if wanted is None else min(wanted, self._chunk_left)
            view = self._socket().recv(size)
            if not view:
                self._abort()
                raise ChunkedDecodeError("the connection closed in the middle of a chunk")
            got = len(view)
            stored = store(view)  # before reading the chunk's end moves the buffer
            self._chunk_left -= got
            self._received += got
            if self._chunk_left == 0:
                self._end_chunk()
            return stored
        if framing == _UNTIL_CLOSE:
            sock = self._socket()
            view = sock.recv(READ_SIZE if wanted is None else min(wanted, READ_SIZE))
            if not view:
                if not sock.eof_confirmed:
                    # Only the close marks the end, and over TLS a close without the closure
                    # alert may be a truncation (RFC 9112 section 9.8).
                    self._abort()
                    raise IncompleteRead(
                        self._received,
                        detail="the server closed the TLS connection without a closure alert "
                        "(close_notify), so the body may be cut short",
                    )
                self._finish()
                return None
            self._received += len(view)
            return store(view)
        return None

    def _start_chunk(self) -> bool:
        """Read a chunk-size line; return False (after the trailers) at the last chunk."""
        sock = self._socket()
        try:
            line = bytes(sock.readline(MAX_CHUNK_LINE))
        except LineTooLongError as exc:
            self._abort()
            raise ChunkedDecodeError("chunk-size line too long") from exc
        if not line.endswith(b"\n"):
            self._abort()
            raise ChunkedDecodeError("the connection closed before the next chunk size")
        size_text = line.split(b";", 1)[0].strip(b" \t\r\n")
        if not size_text or len(size_text) > MAX_CHUNK_DIGITS or not _HEX.issuperset(size_text):
            self._abort()
            raise ChunkedDecodeError(f"invalid chunk size {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            self._read_trailers(sock)
            self._finish()
            return False
        self._chunk_left = size
        return True

    def _end_chunk(self) -> None:
        try:
            line = bytes(self._socket().readline(4))
        except LineTooLongError:
            line = b"(no line end)"
        if line not in (b"\r\n", b"\n"):
            self._abort()
            raise ChunkedDecodeError(f"chunk data not followed by CRLF: {line!r}")

    def _read_trailers(self, sock: BufferedSocket) -> None:
        limit = self._lease.max_line_length
        fields: list[tuple[bytes, bytes]] = []
        while True:
            try:
                line = bytes(sock.readline(limit))
            except LineTooLongError as exc:
                self._abort()
                raise ChunkedDecodeError("trailer line too long") from exc
            if not line.endswith(b"\n"):
                self._abort()
                raise ChunkedDecodeError("the connection closed in the trailers")
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or b" " in name:
                self._abort()
                raise ChunkedDecodeError(f"invalid trailer line {line[:100]!r}")
            fields.append((name, value.strip(b" \t")))
            if len(fields) > MAX_TRAILERS:
                self._abort()
                raise ChunkedDecodeError("too many trailer fields")
        if fields:
            self.trailers = HTTPHeaderMap.from_trusted(fields)

    def _abort(self) -> None:
        """The body cannot be finished: the connection cannot be reused."""
        self._keep_alive = False
        self._finish(complete=False)

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self, socket_close: bool = False) -> None:
        """
        Close the response. If its body was not read to the end, the connection cannot carry
        another request and is closed (the next request opens a new one).

        :param socket_close: close the connection's socket even if the body was complete.
        """
        if not self._done:
            self._keep_alive = False
            self._finish(complete=False)
        elif socket_close:
            self._lease.close_connection()

    def fileno(self) -> int:
        """The file descriptor of the connection's socket."""
        return self._socket().fileno()
