"""
A buffered socket: reads land in one preallocated buffer and leave as memoryviews.

Both protocols read through :class:`BufferedSocket`. HTTP/2 takes whatever arrived
(:meth:`BufferedSocket.recv`, :meth:`BufferedSocket.recv_nowait`), HTTP/1.1 takes lines and
exact lengths (:meth:`BufferedSocket.readline`, :meth:`BufferedSocket.read_exact`). Socket and
TLS failures are translated into hyper exceptions here, once, so the protocol layers never see
a bare ``OSError`` or ``ssl.SSLError``.

The socket is kept non-blocking and the timeout is applied here, with ``poll()``. That way a
read can also be attempted without waiting at all, which the HTTP/2 transport needs: it reads
while holding its lock (TLS must not read and write one connection at the same time) and must
never wait there for the rest of a record. For the same reason it writes with
:meth:`BufferedSocket.send_nowait`, which sends what the socket takes and keeps the rest for
later (a thread waiting in :meth:`BufferedSocket.wait_io` sees when the socket takes more),
where HTTP/1.1 uses :meth:`BufferedSocket.sendall`, which waits. TLS goes through a
:class:`~hyper.tls.TLSChannel`, which reads every record that has arrived in one system call.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

from ..tls import PLAINTEXT_WRITE_SIZE, TLSChannel
from .exceptions import (
    ConnectionClosed,
    LineTooLongError,
    ReadTimeout,
    SocketError,
    SocketTimeout,
    TLSError,
)
from .eyeballs import ConnectReport
from .timeout import Deadline
from .util import poll_step

#: The default size of a connection's receive buffer (64 KiB).
DEFAULT_BUFFER_SIZE = 64 * 1024
#: The default for HTTP/2, whose bulk transfers gain from taking more data per read.
HTTP2_BUFFER_SIZE = 256 * 1024

#: While a send is watched (see :meth:`BufferedSocket.sendall`), the socket is checked for
#: incoming data after every this many bytes that went out without waiting.
WATCH_INTERVAL = 1024 * 1024

#: Unread data dropped before closing: at most this many reads of this size.
_DISCARD_READS, _DISCARD_SIZE = 16, 64 * 1024

_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_HAS_POLL = hasattr(select, "poll")
_Socket = socket.socket  # the class has a property named `socket`
_IN = getattr(select, "POLLIN", 1)
_OUT = getattr(select, "POLLOUT", 4)


#: What a read and a write that waited too long say.
_NO_DATA = "timed out waiting for data from the server"
_NOT_SENT = "timed out sending data to the server"


class _WouldBlock(Exception):
    """Internal: a read found nothing to return without waiting."""


class BufferedSocket:
    """
    Wrap a connected socket (plain, or TLS through a :class:`~hyper.tls.TLSChannel`) with a
    fixed receive buffer.

    Memoryviews returned by the read methods point into the buffer and stay valid only until
    the next read call; callers that keep data copy it (``bytes(view)``).

    :param sock: a connected socket, or a TLS channel over one. The socket's current timeout
        becomes the timeout of every read and write (see :meth:`settimeout`); the socket
        itself is switched to non-blocking.
    :param buffer_size: the size of the receive buffer in bytes.
    :param initial: bytes already received from the peer (e.g. behind a proxy's answer),
        returned by the first reads.
    """

    __slots__ = (
        "_awaiting_reply",
        "_buffer",
        "_closed",
        "_deferred_error",
        "_end",
        "_eof",
        "_eof_confirmed",
        "_outbox",
        "_outbox_size",
        "_poller",
        "_pollers",
        "_sock",
        "_start",
        "_state_lock",
        "_timeout",
        "_tls",
        "_total",
        "_unwatched",
        "_view",
        "_wake_events",
        "_wake_pending",
        "_wake_poller",
        "_waker",
        "_write_needs_read",
    )

    def __init__(
        self,
        sock: socket.socket | TLSChannel,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        initial: bytes = b"",
    ) -> None:
        if buffer_size < 1024 or len(initial) > buffer_size:
            raise ValueError("buffer_size must be at least 1024 bytes and hold `initial`")
        self._tls: TLSChannel | None
        if isinstance(sock, TLSChannel):
            self._tls = sock
            self._sock: socket.socket = sock.sock
        else:
            self._tls = None
            self._sock = sock
        self._timeout: float | None = self._sock.gettimeout()
        #: The total deadline of the exchange under way, if it has one.
        self._total: Deadline | None = None
        self._sock.settimeout(0)
        self._buffer = bytearray(buffer_size)
        self._view = memoryview(self._buffer)
        # Unread data is self._buffer[self._start:self._end].
        self._start = 0
        self._end = len(initial)
        self._buffer[: self._end] = initial
        #: Data was sent since the last blocking read: the next one polls first.
        self._awaiting_reply = False
        #: Bytes a watched send has sent since the socket was last checked for incoming data.
        self._unwatched = 0
        #: wake() was called while no waker socket existed yet: the next wait returns at once.
        self._wake_pending = False
        self._poller: select.poll | None = None
        #: The peer's end of stream was read (possibly behind data still buffered).
        self._eof = False
        #: That end was confirmed: a plain socket's, or a TLS close_notify.
        self._eof_confirmed = False
        #: A failure to raise on the next read (a read after a TLS or socket failure must
        #: not see a clean end of stream).
        self._deferred_error: SocketError | TLSError | None = None
        #: A socket pair that lets another thread interrupt a wait (made on first use).
        self._waker: tuple[_Socket, _Socket] | None = None
        #: close() was called. The descriptors are closed only once no thread waits on
        #: them: a descriptor closed under a waiting poll() may be reused at once by a new
        #: socket, and the wait would then watch the wrong thing.
        self._closed = False
        self._pollers = 0
        self._state_lock = threading.Lock()
        self._wake_poller: select.poll | None = None
        #: The events the socket is registered for in ``_wake_poller``.
        self._wake_events = _IN
        #: What :meth:`send_nowait` could not send yet, in order.
        self._outbox: deque[memoryview] = deque()
        self._outbox_size = 0
        #: TLS must read before it can encrypt more of the outbox: waiting for the socket to
        #: take data would not help.
        self._write_needs_read = False

    @property
    def socket(self) -> socket.socket:
        """The TCP socket underneath (for TLS, the ciphertext's)."""
        return self._sock

    @property
    def connect_report(self) -> ConnectReport | None:
        """How the TCP connection under this socket was opened (which address won the Happy
        Eyeballs race, and when): to the server, or to the HTTP or SOCKS proxy in between.
        ``None`` for a socket hyper did not connect itself (one it was given)."""
        report = getattr(self._sock, "connect_report", None)
        return report if isinstance(report, ConnectReport) else None

    @property
    def buffer_size(self) -> int:
        """The size of the receive buffer in bytes."""
        return len(self._buffer)

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting in the buffer."""
        return self._end - self._start

    @property
    def tls(self) -> TLSChannel | None:
        """The TLS channel (``None`` without TLS): its certificate, version, ALPN protocol."""
        return self._tls

    @property
    def is_tls(self) -> bool:
        """Whether the connection is TLS (which must not read and write concurrently)."""
        return self._tls is not None

    def fileno(self) -> int:
        """The file descriptor of the socket."""
        return self._sock.fileno()

    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's certificate as :meth:`ssl.SSLSocket.getpeercert` gives it (``None``
        without TLS, or when it was not verified)."""
        tls = self._tls
        return None if tls is None else tls.peer_certificate()

    def tls_version(self) -> str | None:
        """The TLS version in use (``"TLSv1.3"``...), or ``None`` without TLS."""
        tls = self._tls
        return None if tls is None else tls.version()

    def settimeout(self, timeout: float | None) -> None:
        """Set the timeout of every later read and write, in seconds (``None``: no limit)."""
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        """The timeout of reads and writes, in seconds (``None``: no limit)."""
        return self._timeout

    def set_deadline(self, deadline: Deadline | None) -> None:
        """
        Bound every later read and write by a request's total deadline too, besides the
        timeout (``None``: no deadline). One that passes raises
        :class:`~hyper.common.exceptions.DeadlineExceeded`. For a socket one exchange at a
        time has to itself (HTTP/1.1); a shared one leaves it to its waits.
        """
        self._total = deadline

    def _timed_out(
        self, error: type[SocketTimeout], message: str, deadline: float | None
    ) -> SocketTimeout:
        """The error of a wait until ``deadline`` that ended: the total deadline's when that
        was the one that bound it."""
        total = self._total
        if total is not None and deadline == total.at:
            return total.exceeded()
        return error(message)

    # -- waiting ----------------------------------------------------------------------------

    def _wait(self, events: int, deadline: float | None, wakeable: bool = False) -> int:
        """
        Wait for ``events`` (POLLIN/POLLOUT) until ``deadline``: the events that happened
        (POLLERR and POLLHUP among them), 0 on time-out. With ``wakeable``, :meth:`wake` ends
        the wait too (returning a true value).
        """
        with self._state_lock:
            if self._closed:
                raise ConnectionClosed("the connection was closed")
            waker = None
            if wakeable:
                if self._wake_pending:
                    self._wake_pending = False
                    return _IN
                waker = self._wake_pair()[0]
            self._pollers += 1
        try:
            return self._wait_open(events, deadline, waker)
        finally:
            with self._state_lock:
                self._pollers -= 1
                last_out = self._closed and not self._pollers
            if last_out:
                self._close_descriptors()

    def _wait_open(self, events: int, deadline: float | None, waker: _Socket | None) -> int:
        fd = self._sock.fileno()
        if fd < 0:  # closed, possibly by another thread a moment ago
            raise ConnectionClosed("the connection was closed")
        while True:
            step, last = poll_step(deadline)
            if not _HAS_POLL:
                ready = self._select_once(events, step, waker)
            elif waker is not None:
                ready = self._poll_wakeable(fd, waker, step, events)
            else:
                poller = self._poller
                if poller is None:
                    # poll(), unlike select(), works with descriptors above FD_SETSIZE (1024).
                    poller = self._poller = select.poll()
                try:
                    poller.register(fd, events)
                    polled = poller.poll(int(step * 1000))
                except (OSError, ValueError) as exc:
                    raise SocketError(f"error waiting on the socket: {exc}") from exc
                ready = polled[0][1] if polled else 0
            if ready:
                return ready
            if last:
                return 0

    def _select_once(self, events: int, timeout: float, waker: _Socket | None) -> int:
        """One wait with select(), where poll() does not exist (Windows, which has no
        descriptor limit for select())."""
        readers: list[Any] = [self._sock] if events & _IN else []
        writers = [self._sock] if events & _OUT else []
        if waker is not None:
            readers.append(waker)
        ready = select.select(readers, writers, [], timeout)
        if waker is not None and waker in ready[0]:
            self._drain_waker()
        return (_IN if ready[0] else 0) | (_OUT if ready[1] else 0)

    def _readable_now(self) -> bool:
        """Whether the socket is readable at this moment (data, the end, or an error).

        Unlike :meth:`_wait`, this keeps no count of waiting threads: the count is there so
        that a descriptor is not closed and reused under a poll that waits, and this one
        does not wait.
        """
        if self._closed:
            raise ConnectionClosed("the connection was closed")
        fd = self._sock.fileno()
        if fd < 0:
            raise ConnectionClosed("the connection was closed")
        if not _HAS_POLL:
            return bool(select.select([self._sock], [], [], 0)[0])
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
        try:
            poller.register(fd, _IN)
            return bool(poller.poll(0))
        except (OSError, ValueError) as exc:
            raise SocketError(f"error waiting on the socket: {exc}") from exc

    def _poll_wakeable(self, fd: int, waker: _Socket, timeout: float, events: int) -> int:
        poller = self._wake_poller
        milliseconds = int(timeout * 1000)
        try:
            if poller is None:
                # Both descriptors stay registered: the socket's never changes while open.
                poller = self._wake_poller = select.poll()
                poller.register(waker.fileno(), _IN)
                poller.register(fd, events)
                self._wake_events = events
            elif events != self._wake_events:
                poller.modify(fd, events)
                self._wake_events = events
            ready = poller.poll(milliseconds)
        except (OSError, ValueError) as exc:
            raise SocketError(f"error waiting on the socket: {exc}") from exc
        happened = 0
        for descriptor, revents in ready:
            if descriptor == fd:
                happened |= revents
            else:
                self._drain_waker()  # the waker is readable
        # A wake-up alone reads as "readable": the woken caller looks again.
        return happened or (_IN if ready else 0)

    def _drain_waker(self) -> None:
        waker = self._waker
        if waker is None:
            return
        try:
            while waker[0].recv(64):
                pass
        except OSError:
            pass

    def wake(self) -> None:
        """
        Make a thread blocked in :meth:`wait_io` return now (another thread changed
        what it waits for). Safe to call from any thread; costs nothing when nobody waits.
        """
        with self._state_lock:
            waker = self._waker
            if waker is None:
                # Nobody has waited yet: make the first wait return at once instead.
                self._wake_pending = True
                return
        try:
            waker[1].send(b"\0")
        except OSError:
            pass  # full (a wake-up is pending anyway) or closed

    def _wake_pair(self) -> tuple[_Socket, _Socket]:
        waker = self._waker
        if waker is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            waker = self._waker = (reader, writer)
        return waker

    def _deadline(self) -> float | None:
        total = self._total
        if total is None:
            return None if self._timeout is None else time.monotonic() + self._timeout
        if self._timeout is None:
            return total.at
        return min(total.at, time.monotonic() + self._timeout)

    def _readable_in_memory(self) -> bool:
        """Whether a read may make progress without the socket: data buffered here, the end
        of the stream or a failure to report, or TLS data in memory."""
        return (
            self._start != self._end
            or self._eof
            or self._deferred_error is not None
            or (self._tls is not None and self._tls.ready())
        )

    def wait_io(self, timeout: float | None, writing: bool) -> None:
        """
        Block until a read would find something (data buffered here or in TLS, data on the
        socket, or the peer closed it), until another thread calls :meth:`wake`, or, with
        ``writing``, until the socket takes more of what :meth:`send_nowait` could not send
        yet (the caller then calls it again).

        :param timeout: the longest wait in seconds; ``None`` waits forever.
        :param writing: whether something waits to go out (:attr:`unsent`, which the
            caller looks at where it writes: TLS must not be asked while another thread
            writes to it).
        :raises ReadTimeout: if neither happens within ``timeout``.
        """
        if self._readable_in_memory():
            return
        events = _IN | _OUT if writing and not self._write_needs_read else _IN
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._wait(events, deadline, wakeable=True):
            raise ReadTimeout("timed out waiting for data from the server")

    # -- reading ----------------------------------------------------------------------------

    def _make_room(self) -> bool:
        """Make free space at the end of the buffer; False if it is full of unread data."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            # Move the unread tail to the front so the buffer has room again.
            size = self._end - self._start
            self._buffer[:size] = self._view[self._start : self._end]
            self._start, self._end = 0, size
            return size < len(self._buffer)
        return True

    def _recv_once(self) -> int:
        """One non-blocking read into the buffer: the byte count, 0 at EOF; _WouldBlock."""
        if self._deferred_error is not None:
            # Raised on every read from now on: after a TLS or socket failure the stream
            # cannot go on (TLS would report a clean end of stream instead).
            raise self._deferred_error
        if self._eof:
            return 0
        view = self._view[self._end :]
        tls = self._tls
        try:
            count = tls.read_into(view) if tls is not None else self._sock.recv_into(view)
        except _WOULD_BLOCK:
            raise _WouldBlock from None
        except OSError as exc:
            try:
                return self._read_failed(exc)
            except (SocketError, TLSError) as error:
                self._deferred_error = error  # every later read raises it too
                raise
        if not count:
            # Remembered: a later read must see it even after gathering. Over TLS a read
            # gives 0 only for the peer's close_notify.
            self._eof = self._eof_confirmed = True
        self._end += count
        return int(count)

    def _read_failed(self, exc: OSError) -> int:
        """Translate a failed read: 0 for the end of the stream, else raise a hyper error."""
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            # A peer that closes without a close_notify alert (SSLEOFError): the end of the
            # stream, as every other client takes it, but unconfirmed (eof_confirmed); the
            # protocol layer decides whether what came before can be trusted to be whole.
            self._eof = True
            self._eof_confirmed = isinstance(exc, ssl.SSLZeroReturnError)
            return 0
        if isinstance(exc, ssl.SSLError):
            raise TLSError(f"TLS error while receiving: {exc}") from exc
        if isinstance(exc, ConnectionResetError):
            raise ConnectionClosed(f"connection reset by the server: {exc}") from exc
        raise SocketError(f"error while receiving: {exc}") from exc

    def _fill(self) -> int:
        """Receive once (waiting up to the timeout); return the byte count (0: EOF, -1: full)."""
        if self._deferred_error is not None:
            raise self._deferred_error
        if not self._make_room():
            return -1
        deadline = self._deadline()
        if self._awaiting_reply:
            # Right after a request the answer is rarely here yet: wait first, rather than
            # pay for a read that finds nothing (as CPython does for sockets with a timeout).
            self._awaiting_reply = False
            if not self._readable_in_memory() and not self._wait(_IN, deadline):
                raise self._timed_out(
                    ReadTimeout, "timed out waiting for data from the server", deadline
                )
        while True:
            try:
                count = self._recv_once()
            except _WouldBlock:
                if not self._wait(_IN, deadline):
                    raise self._timed_out(
                        ReadTimeout, "timed out waiting for data from the server", deadline
                    ) from None
                continue
            return count

    def recv(self, amt: int | None = None) -> memoryview:
        """
        Return up to ``amt`` bytes: what is buffered, or else what one read of the socket
        brings (waiting up to the timeout). An empty view means the peer closed the
        connection.

        :param amt: the most to return; the whole buffer size when ``None``.
        :raises ReadTimeout: if nothing arrives within the timeout.
        """
        if self._start == self._end:
            self._fill()
        return self._take(amt)

    def recv_nowait(self) -> memoryview | None:
        """
        Like :meth:`recv` without waiting: the buffered bytes, or what the socket has right
        now; ``None`` if that is nothing (for TLS: not even one whole record).
        """
        if self._start == self._end:
            if not self._make_room():
                return self._take(None)  # full of an incomplete unit: the caller copes
            try:
                self._recv_once()
            except _WouldBlock:
                return None
        return self._take(None)

    def _take(self, amt: int | None) -> memoryview:
        stop = self._end if amt is None else min(self._end, self._start + amt)
        view = self._view[self._start : stop]
        self._start = stop
        return view

    def grow(self, buffer_size: int) -> None:
        """
        Enlarge the receive buffer to ``buffer_size`` bytes, keeping what is buffered (a
        socket negotiated for one protocol and handed to another). Call between reads: views
        returned earlier point into the old buffer.
        """
        if buffer_size <= len(self._buffer):
            return
        unread = self._view[self._start : self._end]
        buffer = bytearray(buffer_size)
        buffer[: len(unread)] = unread
        unread.release()
        self._buffer = buffer
        self._view = memoryview(buffer)
        self._end -= self._start
        self._start = 0

    @property
    def at_eof(self) -> bool:
        """Whether the peer's end of stream has been read (data may still be buffered)."""
        return self._eof

    @property
    def eof_confirmed(self) -> bool:
        """
        Whether the end of stream that was read is confirmed: a plain socket's end, or over
        TLS the peer's closure alert (``close_notify``). A TLS connection that ended without
        one (``False``) may have been cut short by a failure or an attacker, so data whose
        end only the close marks cannot be trusted to be whole (RFC 9112 section 9.8).
        """
        return self._eof_confirmed

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

    def receive_available(self) -> bool:
        """
        Take in what the peer has sent so far, without waiting, and keep it buffered for the
        reads that follow (:meth:`peek`, :meth:`fill`...). A read that fails is not raised
        here: the failure comes from the first read after the buffered bytes, as it would
        have. Stops when the buffer is full.

        :returns: whether anything new came: data, the end of the stream, or a failure.
        """
        arrived = False
        while self._can_receive():
            self._make_room()
            try:
                count = self._recv_once()
            except _WouldBlock:
                break
            except (SocketError, TLSError):
                return True  # kept in _deferred_error for the next read
            arrived = True
            if not count:
                break
        return arrived

    def _can_receive(self) -> bool:
        """Whether a read could still take something in: the stream has not ended or
        failed, and the buffer has room (once what was read is moved to its front)."""
        return (
            not self._eof
            and self._deferred_error is None
            and self._end - self._start < len(self._buffer)
        )

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

    def peer_closed(self) -> bool:
        """
        For an idle connection (no response expected): whether the peer closed it, reset it,
        or sent something unexpected, so that it must not carry another request. Reads
        without waiting; TLS-only traffic (a TLS 1.3 session ticket) does not count.
        """
        if self._start != self._end or self._eof or self._deferred_error is not None:
            return True
        tls_ready = self._tls is not None and self._tls.ready()
        if not tls_ready and not self._readable_now():
            return False
        self._make_room()
        try:
            self._recv_once()
        except _WouldBlock:
            return False  # only TLS records without data (session tickets, key updates)
        except (SocketError, TLSError):
            return True
        return True  # end of stream, or data nobody asked for

    def can_read(self) -> bool:
        """
        Tell, without blocking, whether a read would return at once: data is buffered, or the
        socket is readable (data, or the peer closed it).
        """
        if self._readable_in_memory():
            return True
        try:
            return self._readable_now()
        except (OSError, ValueError, SocketError):
            return True

    # -- writing ----------------------------------------------------------------------------

    def sendall(
        self, data: bytes | bytearray | memoryview, watch: Callable[[], bool] | None = None
    ) -> bool:
        """
        Send all of ``data``, waiting (up to the timeout) whenever the socket is full.

        :param watch: for a send the peer may answer before it ends (an HTTP/1.1 request
            body): while sending, whatever the peer sends is taken in as it arrives (checked
            whenever the send has to wait, and otherwise every :data:`WATCH_INTERVAL` bytes)
            and kept buffered, and ``watch()`` is called each time something new came (data,
            the end of the stream, or a failure). When it returns True the send stops there.
        :returns: True once all of ``data`` went out; False if ``watch`` stopped the send.
        :raises SocketTimeout: if the peer takes none of the data for longer than the timeout.
        :raises SocketError: (or a subclass) if the connection fails.
        """
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        if self._outbox:
            # What send_nowait() left goes first (a socket that changed protocol).
            view = memoryview(b"".join([*self._outbox, view]))
            self._outbox.clear()
            self._outbox_size = 0
        self._awaiting_reply = True
        if self._tls is not None:
            return self._send_tls(view, watch)
        return self._send_plain(view, watch)

    @property
    def unsent(self) -> int:
        """How many bytes :meth:`send_nowait` took that have not gone out yet (for TLS,
        what is still to be encrypted plus the ciphertext still to be sent)."""
        tls = self._tls
        return self._outbox_size + (tls.unsent if tls is not None else 0)

    def send_nowait(self, data: bytes | bytearray | memoryview = b"") -> bool:
        """
        Send ``data`` after what earlier calls left unsent, as much as the socket takes now,
        without waiting, and keep the rest for the next call (``b""``: just send more of
        it). For a socket shared by threads that hold a lock while they write: none of them
        ever waits for the network with it. Nothing is lost or reordered: data goes out in
        the order it was given, however many calls that takes.

        :returns: whether everything has gone out (see :attr:`unsent`).
        :raises SocketError: (or a subclass) if the connection fails.
        :raises TLSError: if TLS fails.
        """
        if data:
            view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
            self._outbox.append(view)
            self._outbox_size += len(view)
            self._awaiting_reply = True
        if self._tls is not None:
            self._push_tls(self._tls)
        elif self._outbox:
            self._push_plain()
        return not self.unsent

    def _push_plain(self) -> None:
        """Send what the socket takes now from the outbox."""
        outbox = self._outbox
        send = self._sock.send
        while outbox:
            view = outbox[0]
            try:
                sent = send(view)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._write_failed(exc)
            self._outbox_size -= sent
            if sent == len(view):
                outbox.popleft()
            else:
                outbox[0] = view[sent:]

    def _push_tls(self, tls: TLSChannel) -> None:
        """Encrypt the outbox a record's worth at a time, sending what the socket takes
        now; only as much ciphertext as one piece waits in memory."""
        outbox = self._outbox
        self._write_needs_read = False
        while self._tls_call(tls.flush) and outbox:
            view = outbox[0]
            piece = view[:PLAINTEXT_WRITE_SIZE]
            try:
                tls.write(piece)
            except ssl.SSLWantReadError:
                # TLS must first read the rest of a message the peer sent: take what has
                # arrived, or wait until something does (see wait_io).
                if not self._tls_call(tls.pull):
                    self._write_needs_read = True
                    return
                continue
            except ssl.SSLError as exc:
                raise TLSError(f"TLS error while sending: {exc}") from exc
            self._outbox_size -= len(piece)
            if len(piece) == len(view):
                outbox.popleft()
            else:
                outbox[0] = view[len(piece) :]

    def _send_plain(self, view: memoryview, watch: Callable[[], bool] | None) -> bool:
        offset, total = 0, len(view)
        deadline = self._deadline()
        sock = self._sock
        while offset < total:
            try:
                sent = sock.send(view[offset:])
            except _WOULD_BLOCK:
                pass
            except OSError as exc:
                self._write_failed(exc)
            else:
                offset += sent
                deadline = self._deadline()  # progress: the timeout starts again
                if watch is not None and self._watch_due(sent, watch):
                    return False
                continue
            if not self._wait_to_send(deadline, watch):
                return False
        return True

    def _send_tls(self, view: memoryview, watch: Callable[[], bool] | None) -> bool:
        tls = self._tls
        assert tls is not None
        total = len(view)
        for start in range(0, total or 1, PLAINTEXT_WRITE_SIZE):
            deadline = self._deadline()
            piece = view[start : start + PLAINTEXT_WRITE_SIZE]
            if total:
                self._encrypt(tls, piece, deadline)
            if not self._flush_tls(tls, deadline, watch):
                return False
            if watch is not None and self._watch_due(len(piece), watch):
                return False
        return True

    def _watch_due(self, sent: int, watch: Callable[[], bool]) -> bool:
        """Count ``sent`` bytes of a watched send; every :data:`WATCH_INTERVAL` of them, take
        in what has arrived. Whether ``watch`` then says to stop."""
        self._unwatched += sent
        if self._unwatched < WATCH_INTERVAL:
            return False
        self._unwatched = 0
        tls = self._tls
        if not (tls is not None and tls.ready()) and not self._readable_now():
            return False
        return self.receive_available() and watch()

    def _wait_to_send(self, deadline: float | None, watch: Callable[[], bool] | None) -> bool:
        """Wait until the socket takes more data; with ``watch``, until the peer sends
        something too, which is taken in. False if ``watch`` then says to stop."""
        watching = watch is not None and self._can_receive()
        events = self._wait(_OUT | _IN if watching else _OUT, deadline)
        if not events:
            raise self._timed_out(SocketTimeout, _NOT_SENT, deadline)
        if watch is None or events == _OUT:
            return True
        # Readable, or an error or hang-up: a failure is kept for the next read, and the
        # next send reports its own.
        self._unwatched = 0
        return not (self.receive_available() and watch())

    def _encrypt(self, tls: TLSChannel, piece: memoryview, deadline: float | None) -> None:
        while True:
            try:
                tls.write(piece)
                return
            except ssl.SSLWantReadError:
                # TLS must first read the rest of a message the peer sent after the
                # handshake: send what it owes, then take what has arrived (or wait for it).
                self._flush_tls(tls, deadline, None)
                if not self._tls_call(tls.pull) and not self._wait(_IN, deadline):
                    raise self._timed_out(
                        SocketTimeout, "timed out sending data to the server", deadline
                    ) from None
            except ssl.SSLError as exc:
                raise TLSError(f"TLS error while sending: {exc}") from exc

    def _flush_tls(
        self, tls: TLSChannel, deadline: float | None, watch: Callable[[], bool] | None
    ) -> bool:
        """Send the ciphertext TLS holds; False if ``watch`` stopped it."""
        while not self._tls_call(tls.flush):
            if not self._wait_to_send(deadline, watch):
                return False
        return True

    def _tls_call(self, call: Callable[[], bool]) -> bool:
        """One non-blocking step of the channel, its failures translated."""
        try:
            return call()
        except ssl.SSLError as exc:
            raise TLSError(f"TLS error while sending: {exc}") from exc
        except OSError as exc:
            self._write_failed(exc)

    @staticmethod
    def _write_failed(exc: OSError) -> NoReturn:
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            raise ConnectionClosed(f"connection closed by the server: {exc}") from exc
        raise SocketError(f"error while sending: {exc}") from exc

    def release(self) -> _Socket:
        """
        Give the socket back for use without this wrapper (unread buffered bytes are the
        caller's business: see :meth:`peek`), with its timeout as a normal socket timeout.
        Only for plain sockets.
        """
        if self._tls is not None:
            raise ValueError("a TLS connection cannot be released from its channel")
        self._sock.settimeout(self._timeout)
        return self._sock

    def close(self) -> None:
        """
        Shut down and close the socket; errors are ignored (the peer may be gone). A thread
        waiting on the socket returns at once; the descriptors are closed when it has.
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            waiting = self._pollers
        self._discard_unread()
        if self._tls is not None and not waiting:
            # Only with no thread inside the channel: TLS is not used by two at once.
            self._tls.send_close_notify()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if waiting:
            self.wake()
        else:
            self._close_descriptors()

    def _discard_unread(self) -> None:
        """
        Read and drop what the peer sent that nobody will read (a bounded amount, without
        waiting). A socket closed with unread data is reset rather than closed, and a reset
        can make the peer lose what was sent last (a GOAWAY saying why).
        """
        sock = self._sock
        try:
            for _ in range(_DISCARD_READS):
                if not sock.recv(_DISCARD_SIZE):
                    return
        except OSError:  # nothing more now (BlockingIOError), or the peer is gone
            return

    def _close_descriptors(self) -> None:
        waker, self._waker = self._waker, None
        if waker is not None:
            for end in waker:
                try:
                    end.close()
                except OSError:
                    pass
        try:
            self._sock.close()
        except OSError:
            pass
