"""
A buffered socket: reads land in one preallocated buffer and leave as memoryviews.

Both protocols read through :class:`BufferedSocket`. HTTP/2 takes whatever arrived
(:meth:`BufferedSocket.recv`), HTTP/1.1 takes lines and exact lengths
(:meth:`BufferedSocket.readline`, :meth:`BufferedSocket.read_exact`). Socket and TLS failures are
translated into hyper exceptions here, once, so the protocol layers never see a bare
``OSError`` or ``ssl.SSLError``.
"""

from __future__ import annotations

import select
import socket
import ssl

from .exceptions import (
    ConnectionClosed,
    LineTooLongError,
    ReadTimeout,
    SocketError,
    SocketTimeout,
    TLSError,
)

#: The default size of a connection's receive buffer (64 KiB).
DEFAULT_BUFFER_SIZE = 64 * 1024

#: Free space worth another TLS read: a whole record and its overhead.
_TLS_RECORD_ROOM = 16 * 1024 + 256
#: A TLS read this large returned a full record, so more may be waiting behind it.
_TLS_FULL_RECORD = 16 * 1024


class BufferedSocket:
    """
    Wrap a connected socket (plain or TLS) with a fixed receive buffer.

    Memoryviews returned by the read methods point into the buffer and stay valid only until
    the next read call; callers that keep data copy it (``bytes(view)``).

    :param sock: a connected socket; its timeout applies to every read and write.
    :param buffer_size: the size of the receive buffer in bytes.
    :param initial: bytes already received from the peer (e.g. behind a proxy's answer),
        returned by the first reads.
    """

    __slots__ = ("_buffer", "_end", "_poller", "_sock", "_start", "_tls", "_view")

    def __init__(
        self, sock: socket.socket, buffer_size: int = DEFAULT_BUFFER_SIZE, initial: bytes = b""
    ) -> None:
        if buffer_size < 1024 or len(initial) > buffer_size:
            raise ValueError("buffer_size must be at least 1024 bytes and hold `initial`")
        self._sock = sock
        self._buffer = bytearray(buffer_size)
        self._view = memoryview(self._buffer)
        # Unread data is self._buffer[self._start:self._end].
        self._start = 0
        self._end = len(initial)
        self._buffer[: self._end] = initial
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._poller: select.poll | None = None

    @property
    def socket(self) -> socket.socket:
        """The wrapped socket."""
        return self._sock

    @property
    def buffer_size(self) -> int:
        """The size of the receive buffer in bytes."""
        return len(self._buffer)

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting in the buffer."""
        return self._end - self._start

    def fileno(self) -> int:
        """The file descriptor of the wrapped socket."""
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        """Set the timeout of every later read and write, in seconds (``None``: block)."""
        self._sock.settimeout(timeout)

    # -- reading ----------------------------------------------------------------------------------

    def _fill(self) -> int:
        """Receive once into the free end of the buffer; return the byte count (0: EOF)."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            # Move the unread tail to the front so the buffer has room again.
            size = self._end - self._start
            self._buffer[:size] = self._view[self._start : self._end]
            self._start, self._end = 0, size
            if size == len(self._buffer):
                return -1
        try:
            count = self._sock.recv_into(self._view[self._end :])
        except TimeoutError as exc:
            raise ReadTimeout("timed out waiting for data from the server") from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            # A peer that closes without a close_notify alert: treat it as the end of the
            # stream, as every other client does; the protocol layer decides if that was early.
            count = 0
        except ssl.SSLError as exc:
            raise TLSError(f"TLS error while receiving: {exc}") from exc
        except ConnectionResetError as exc:
            raise ConnectionClosed(f"connection reset by the server: {exc}") from exc
        except OSError as exc:
            raise SocketError(f"error while receiving: {exc}") from exc
        self._end += count
        return count

    def _readable(self, timeout: float | None) -> bool:
        """Whether the socket becomes readable within ``timeout`` seconds (None: forever)."""
        poller = self._poller
        if poller is None:
            if not hasattr(select, "poll"):  # Windows: select() has no descriptor limit there
                return bool(select.select([self._sock], [], [], timeout)[0])
            # poll(), unlike select(), works with descriptors above FD_SETSIZE (1024).
            poller = self._poller = select.poll()
            poller.register(self._sock.fileno(), select.POLLIN)
        milliseconds = None if timeout is None else max(int(timeout * 1000), 0)
        return bool(poller.poll(milliseconds))

    def _fill_ready(self) -> None:
        """
        After a TLS read, keep reading the records that have already arrived, while they fit.

        One TLS read returns at most one record (16 KiB), so a bulk download would otherwise
        cost a full trip through the protocol layer per record.
        """
        sock = self._sock
        while len(self._buffer) - self._end >= _TLS_RECORD_ROOM:
            if not sock.pending():  # type: ignore[attr-defined]
                try:
                    if not self._readable(0):
                        return
                except (OSError, ValueError):
                    return
            try:
                count = sock.recv_into(self._view[self._end :])
            except (OSError, ssl.SSLError):
                return  # the next read reports it
            if count <= 0:
                return
            self._end += count
            if count < _TLS_FULL_RECORD:
                return  # a partial record: the sender's burst is over

    def recv(self, amt: int | None = None) -> memoryview:
        """
        Return up to ``amt`` bytes: what is buffered, or else what one read of the socket
        brings. An empty view means the peer closed the connection.

        :param amt: the most to return; the whole buffer size when ``None``.
        """
        if self._start == self._end:
            count = self._fill()
            if self._tls and count >= _TLS_FULL_RECORD:
                self._fill_ready()
        stop = self._end if amt is None else min(self._end, self._start + amt)
        view = self._view[self._start : stop]
        self._start = stop
        return view

    def peek(self) -> memoryview:
        """The buffered bytes, without consuming them (valid until the next read call)."""
        return self._view[self._start : self._end]

    def advance(self, amt: int) -> None:
        """Consume ``amt`` buffered bytes (after :meth:`peek`)."""
        if amt > self._end - self._start:
            raise ValueError("cannot advance past the buffered data")
        self._start += amt

    def fill(self) -> int:
        """
        Receive once more, keeping what is buffered.

        :returns: the number of bytes received; 0 if the peer closed the connection; -1 if
            the buffer is full of unconsumed data.
        """
        return self._fill()

    def read_exact(self, amt: int) -> bytes:
        """
        Return exactly ``amt`` bytes.

        :raises ConnectionClosed: if the peer closes the connection first.
        """
        parts: list[bytes] = []
        remaining = amt
        while remaining:
            view = self.recv(remaining)
            if not view:
                raise ConnectionClosed(
                    f"connection closed after {amt - remaining} of {amt} expected bytes"
                )
            parts.append(bytes(view))
            remaining -= len(view)
        return b"".join(parts)

    def readline(self, limit: int = 65536) -> memoryview:
        """
        Return the next line, with its ``\\n`` (a ``\\r\\n`` ending is kept as it is).

        :param limit: the longest line accepted, ending included; it may not exceed the buffer.
        :returns: the line; a line without ``\\n`` if the peer closed the connection first
            (empty at a clean end of stream).
        :raises LineTooLongError: if no ``\\n`` is found within ``limit`` bytes.
        """
        limit = min(limit, len(self._buffer))
        searched = self._start
        while True:
            newline = self._buffer.find(b"\n", searched, self._end)
            if newline != -1:
                if newline + 1 - self._start > limit:
                    break
                view = self._view[self._start : newline + 1]
                self._start = newline + 1
                return view
            if self._end - self._start >= limit:
                break
            searched_offset = self._end - self._start
            if self._fill() <= 0:
                view = self._view[self._start : self._end]
                self._start = self._end
                return view
            searched = self._start + searched_offset
        raise LineTooLongError(f"line longer than {limit} bytes")

    @property
    def is_tls(self) -> bool:
        """Whether the socket is a TLS socket (which must not read and write concurrently)."""
        return isinstance(self._sock, ssl.SSLSocket)

    def wait_readable(self, timeout: float | None) -> None:
        """
        Block until a read would return at once (data buffered here or in TLS, data on the
        socket, or the peer closed it).

        :param timeout: the longest wait in seconds; ``None`` waits forever.
        :raises ReadTimeout: if nothing arrives within ``timeout``.
        """
        if self._start != self._end:
            return
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return
        try:
            readable = self._readable(timeout)
        except (OSError, ValueError) as exc:
            raise SocketError(f"error waiting for data: {exc}") from exc
        if not readable:
            raise ReadTimeout("timed out waiting for data from the server")

    def peer_closed(self) -> bool:
        """
        For an idle connection (no response expected): whether the peer closed it, reset it,
        or sent something unexpected, so that it must not carry another request. Reads
        without waiting; TLS-only traffic (a TLS 1.3 session ticket) does not count.
        """
        if self._start != self._end:
            return True
        if not self._tls:
            return self.can_read()
        sock = self._sock
        if not sock.pending() and not self._readable(0):  # type: ignore[attr-defined]
            return False
        timeout = sock.gettimeout()
        sock.settimeout(0)
        try:
            count = sock.recv_into(self._view[self._end :])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False  # only TLS records without data (session tickets, key updates)
        except OSError:
            return True
        finally:
            sock.settimeout(timeout)
        self._end += count
        return True  # end of stream, or data nobody asked for

    def can_read(self) -> bool:
        """
        Tell, without blocking, whether a read would return at once: data is buffered, or the
        socket is readable (data, or the peer closed it).
        """
        if self._start != self._end:
            return True
        pending = getattr(self._sock, "pending", None)
        if pending is not None and pending():
            return True
        try:
            return self._readable(0)
        except (OSError, ValueError):
            return True

    # -- writing ----------------------------------------------------------------------------------

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """
        Send all of ``data``.

        :raises SocketError: (or a subclass) if the connection fails.
        """
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise SocketTimeout("timed out sending data to the server") from exc
        except ssl.SSLError as exc:
            raise TLSError(f"TLS error while sending: {exc}") from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionClosed(f"connection closed by the server: {exc}") from exc
        except OSError as exc:
            raise SocketError(f"error while sending: {exc}") from exc

    def close(self) -> None:
        """Shut down and close the socket; errors are ignored (the peer may be gone)."""
        sock = self._sock
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
