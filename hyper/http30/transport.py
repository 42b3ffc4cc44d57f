"""
:class:`Transport`: one UDP socket and one :class:`~hyper.http30.engine.QuicEngine` on it, and
:class:`StreamHandle`, through which a response reads its stream.

An :class:`~hyper.HTTP30Connection` runs on one transport at a time. When the server sends
GOAWAY, or the connection ends by itself (the idle timeout), the connection opens a new
transport for new requests; an old one that still carries requests the server accepted
*drains*: they finish on it, and it closes itself when the last one does. Every transport of a
connection shares the connection's lock.

Threading model (no thread of hyper's own), as for HTTP/2:

* The connection's lock guards every transport's engine, the stream records and every send;
  its condition wakes threads waiting for something to arrive.
* At most one thread reads a transport's socket at a time (:attr:`Transport.reader_active`).
  A thread that needs something that has not arrived becomes the reader if nobody is: it
  waits for the socket *without* the lock, until a datagram arrives or QUIC's next timer is
  due (loss recovery, acknowledgement delay, pacing, the idle timeout), then, under the lock,
  takes up to :data:`~hyper.http30.udp.BATCH` datagrams, feeds the engine, runs the timers
  that are due, sends what QUIC wants sent and wakes the waiters. QUIC's timers therefore run
  while a caller waits; when nobody waits nothing needs them, and a connection whose idle
  timeout passed meanwhile is noticed before it is used again (:meth:`Transport.poll_locked`).
* Each waiting thread has its own deadline, whoever reads the socket.
* A thread that sends while another reads wakes the reader if QUIC's next timer came earlier
  than the reader's wait would end (new data to pace or to recover).

Errors of the socket reach the transport as hyper exceptions already (see
:mod:`hyper.http30.udp`), and the engine reports QUIC's as hyper exceptions too; the transport
records them on the engine, so that every stream still waiting reports the same error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from io import BytesIO

from ..common.condition import Condition
from ..common.exceptions import (
    ConnectionClosed,
    ConnectTimeout,
    HyperError,
    InvalidRequest,
    ReadTimeout,
)
from ..common.header_list import HeaderList
from ..common.stream_response import StreamHandle
from ..common.timeout import Deadline, WaitLimit
from ..common.trace import (
    CONNECT_END,
    CONNECT_START,
    TLS_END,
    TLS_START,
    ConnectRecorder,
    Timings,
)
from ..common.util import CONNECTION_TIMEOUT, POLL_SLICE, DefaultTimeout
from .engine import QuicEngine
from .errors import H3ErrorCode
from .exceptions import ClosedByCaller
from .stream import RequestStream
from .udp import DatagramSocket

__all__ = ["Transport"]

log = logging.getLogger("hyper.http30")

#: A read timeout as the transport's methods take it: seconds, ``None`` (no limit), or
#: :data:`~hyper.common.util.CONNECTION_TIMEOUT` (the transport's :attr:`Transport.read_timeout`),
#: or a request's :class:`~hyper.common.timeout.Deadline` (its read timeout and total deadline).
WaitTimeout = float | None | DefaultTimeout | Deadline

#: The most request body bytes of one stream queued in the QUIC stack before the sender
#: waits for them to go out: the stack copies what it is given, so this bounds that copy.
SEND_BUFFER = 1024 * 1024
#: The most body bytes handed to the stack at once (one HTTP/3 DATA frame).
SEND_PIECE = 256 * 1024


class Transport:
    """
    One UDP socket speaking QUIC, and the engine that speaks it.

    :param sock: the connected UDP socket.
    :param engine: the protocol state for this socket (not yet connected).
    :param cond: the connection's condition; its lock guards the engine.
    :param read_timeout: the longest wait for the server, in seconds (``None``: no limit).
    """

    def __init__(
        self,
        sock: DatagramSocket,
        engine: QuicEngine,
        cond: Condition,
        read_timeout: float | None,
    ) -> None:
        self.sock = sock
        self.engine = engine
        self.cond = cond
        self.lock = cond.lock
        self.read_timeout = read_timeout
        #: A thread is reading the socket (the reader role), and which.
        self.reader_active = False
        self._reader: int | None = None
        #: When the reader's current wait ends at the latest (a :func:`time.monotonic` time).
        self._reader_wakeup = 0.0
        #: No new streams go on this transport any more (the connection set it aside).
        self.retired = False
        #: The phases of opening this transport, while no request has taken them (it was
        #: opened by ``connect()``, not by a request).
        self.phases: Timings | None = None

    def __repr__(self) -> str:
        state = "usable" if self.usable() else ("alive" if self.alive() else "closed")
        return f"<Transport {self.engine.origin} {state} streams={len(self.engine.streams)}>"

    # -- state --------------------------------------------------------------------------------

    def alive(self) -> bool:
        """The socket is open and the connection has not ended."""
        return not self.sock.closed and self.engine.error is None

    def usable(self) -> bool:
        """New requests may be sent here (not, among others, on a connection about to reach
        its idle timeout: :meth:`~hyper.http30.engine.QuicEngine.near_idle_timeout`)."""
        engine = self.engine
        return (
            self.alive()
            and engine.established
            and not self.retired
            and engine.goaway_id is None
            and not engine.closing
            and not engine.near_idle_timeout(time.monotonic())
        )

    def unfinished(self) -> bool:
        """Whether any request here is still under way."""
        return bool(self.engine.streams)

    def raise_if_dead_locked(self) -> None:
        """Raise why the transport can no longer be used, if it cannot."""
        error = self.engine.error
        if error is not None:
            raise error
        if self.sock.closed:
            raise ConnectionClosed("the connection is closed")

    # -- connecting ---------------------------------------------------------------------------

    def handshake(self, timeout: float | None, recorder: ConnectRecorder | None = None) -> None:
        """
        Run the QUIC handshake, for up to ``timeout`` seconds.

        :param recorder: where the handshake's phases go. TLS runs inside the QUIC
            handshake, so both the ``connect_*`` and the ``tls_*`` phases span all of it.
        :raises ConnectTimeout: if it does not complete in time (a server that does not
            answer over UDP).
        :raises CertificateError: if the server's certificate does not verify.
        :raises TLSError: if the handshake fails otherwise.
        :raises HyperError: for any other failure.
        """
        if recorder is None:
            self._handshake(timeout)
            return
        tracer = recorder.tracer
        address = {"address": self.sock.peer, "transport": "quic"}
        server_name = {"server_name": self.engine.server_name, "transport": "quic"}
        phases = recorder.phases
        began = phases.connect_start = phases.tls_start = time.monotonic()
        tracer.emit(CONNECT_START, None, address, began)
        tracer.emit(TLS_START, None, server_name, began)
        try:
            self._handshake(timeout)
        except BaseException as exc:
            # The caller's close() ends a handshake that lost a race, or that it gave up.
            outcome = "abandoned" if isinstance(exc, ClosedByCaller) else "failed"
            if tracer.hook is not None:
                tracer.emit(CONNECT_END, None, {**address, "outcome": outcome, "error": exc})
                tracer.emit(TLS_END, None, {**server_name, "error": exc})
            raise
        ended = phases.connect_end = phases.tls_end = time.monotonic()
        if tracer.hook is not None:
            info = {**address, "outcome": "connected", "error": None}
            tracer.emit(CONNECT_END, None, info, ended)
            # QUIC runs on TLS 1.3 only (RFC 9001).
            tls = {"version": "TLSv1.3", "alpn": self.engine.alpn, "transport": "quic"}
            tracer.emit(TLS_END, None, tls, ended)

    def _handshake(self, timeout: float | None) -> None:
        """:meth:`handshake`, without recording it."""
        with self.lock:
            self.engine.connect(time.monotonic())
            self.flush_locked()
        try:
            self.read_until(lambda: self.engine.established, timeout, connecting=True)
        except ConnectTimeout as exc:
            hint = " (the network said the port is unreachable)" if self.sock.refused else ""
            with self.lock:
                self.close_locked(exc)
            within = "" if timeout is None else f" within {timeout:g} s"
            raise ConnectTimeout(
                f"no QUIC handshake with {self.engine.origin}{within}: the server does not "
                f"answer over UDP{hint}"
            ) from None
        except BaseException:
            with self.lock:
                self.close_locked(ConnectionClosed("the handshake failed"))
            raise

    # -- the reader role ----------------------------------------------------------------------

    def read_until(
        self,
        ready: Callable[[], bool],
        timeout: WaitTimeout = CONNECTION_TIMEOUT,
        progress: Callable[[], int] | None = None,
        *,
        connecting: bool = False,
    ) -> None:
        """
        Receive and process datagrams, and run QUIC's timers, until ``ready()`` is true.
        Call without holding the lock; ``ready`` and ``progress`` are evaluated with the lock
        held.

        :param ready: what the caller waits for.
        :param timeout: the longest wait in seconds (``None``: no limit); by default the
            transport's :attr:`read_timeout`.
        :param progress: a count that grows as what the caller waits for comes nearer (body
            bytes received, say); the wait starts again whenever it changes.
        :param connecting: the wait is the handshake's: its end raises
            :class:`~hyper.common.exceptions.ConnectTimeout`.
        :raises ReadTimeout: if ``ready()`` stays false for ``timeout`` seconds.
        :raises DeadlineExceeded: if the request's total deadline (a
            :class:`~hyper.common.timeout.Deadline` given as ``timeout``) passes first.
        :raises HyperError: if the connection fails.
        """
        if timeout is CONNECTION_TIMEOUT:
            timeout = self.read_timeout
        deadline: Deadline | None = None
        if isinstance(timeout, Deadline):
            deadline, timeout = timeout, timeout.read
        cond = self.cond
        lock = self.lock
        limit: WaitLimit | None = None
        wait: float | None = None
        what = "the QUIC handshake" if connecting else "the server"
        while True:
            with lock:
                if ready():
                    return
                self.raise_if_dead_locked()
                if timeout is not None or deadline is not None:
                    if limit is None:
                        error = ConnectTimeout if connecting else ReadTimeout
                        limit = WaitLimit(timeout, progress, error, deadline)
                    wait = limit.remaining(what)
                if self.reader_active:
                    # Woken after every read of the reader's, and at the deadline.
                    cond.wait(wait)
                    continue
                self.reader_active = True
                self._reader = threading.get_ident()
            try:
                self._read_as_reader(ready, limit, wait, what)
            except (ReadTimeout, ConnectTimeout):
                raise
            except HyperError as exc:
                with lock:
                    self.fail_locked(exc)
                raise
            finally:
                with lock:
                    self.reader_active = False
                    self._reader = None
                    cond.notify_all()

    def _read_as_reader(
        self, ready: Callable[[], bool], limit: WaitLimit | None, wait: float | None, what: str
    ) -> None:
        """The reader's loop: wait for the socket or QUIC's next timer, then process, until
        ``ready()``, the deadline, or the end of the connection."""
        lock = self.lock
        sock = self.sock
        engine = self.engine
        while True:
            with lock:
                now = time.monotonic()
                timer = engine.timer()
                poll_for = POLL_SLICE if wait is None else wait
                if timer is not None:
                    poll_for = min(poll_for, max(timer - now, 0.0))
                self._reader_wakeup = now + poll_for
            sock.wait_readable(poll_for)
            with lock:
                if not self.alive():
                    return
                self._step_locked()
                if ready() or not self.alive():
                    return
                if limit is not None:
                    wait = limit.remaining(what)

    def _step_locked(self) -> None:
        """Take what arrived, run the timers that are due, send what QUIC wants sent, and
        wake the waiters (lock held)."""
        datagrams = self.sock.receive()
        now = time.monotonic()
        engine = self.engine
        if datagrams:
            engine.receive(datagrams, now)
        engine.handle_timer(now)
        self.flush_locked()
        self._settle_locked()

    def poll_locked(self) -> None:
        """Process whatever has arrived and run the timers that are due, without waiting
        (lock held): a connection that ended while nobody was reading (the idle timeout, the
        server's close) is noticed before it is used."""
        if self.reader_active or not self.alive():
            return
        try:
            self._step_locked()
        except HyperError as exc:
            self.fail_locked(exc)  # recorded: the caller opens a new transport

    def _settle_locked(self) -> None:
        """After the engine changed: close the socket if the connection ended, or if it
        drained; wake the waiters."""
        if self.engine.error is not None:
            self.close_socket_locked()
        else:
            self.drained_locked()
        self.cond.notify_all()

    # -- sending ------------------------------------------------------------------------------

    def flush_locked(self) -> None:
        """Send the datagrams QUIC wants sent now (lock held); a failure fails the transport."""
        sock = self.sock
        if sock.closed:
            return
        engine = self.engine
        datagrams = engine.datagrams_to_send(time.monotonic())
        if datagrams:
            try:
                sock.send(datagrams)
            except HyperError as exc:
                self.fail_locked(exc)
                raise
        if self.reader_active and self._reader != threading.get_ident():
            timer = engine.timer()
            if timer is not None and timer < self._reader_wakeup:
                sock.wake()  # the reader must run QUIC's timer sooner than it planned

    def open_stream_locked(self, headers: HeaderList, end_stream: bool) -> RequestStream:
        """Send a request's headers on a new stream (lock held); return the stream.

        :raises HyperError: if the connection cannot take it.
        """
        self.raise_if_dead_locked()
        stream = self.engine.send_headers(headers, end_stream)
        try:
            self.flush_locked()
        except HyperError:
            # The transport failed, and the stream with it: the request's owner decides
            # whether it goes out again when it looks at the stream.
            pass
        return stream

    def send_data(
        self,
        stream: RequestStream,
        data: bytes | memoryview,
        end_stream: bool,
        timeout: WaitTimeout = CONNECTION_TIMEOUT,
    ) -> None:
        """
        Send ``data`` on ``stream``, waiting (and reading meanwhile) while more than
        :data:`SEND_BUFFER` bytes of it wait in the QUIC stack, each time for up to
        ``timeout`` seconds. Call without the lock.

        If the server asks for no more of the request (STOP_SENDING), or has already sent
        its whole response, the rest of the body is not sent (RFC 9114 section 4.1).

        :raises ~hyper.http30.exceptions.StreamResetError: if the server reset the stream.
        :raises ReadTimeout: if the data cannot go out for ``timeout`` seconds.
        :raises HyperError: if the connection failed.
        """
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        total = len(view)
        offset = 0
        engine = self.engine

        def writable() -> bool:
            return (
                engine.queued(stream) < SEND_BUFFER
                or stream.finished
                or stream.stop_sending_code is not None
                or not self.alive()
            )

        while True:
            with self.lock:
                if stream.stop_sending_code is not None:
                    return  # the server wants no more; its response says the rest
                if stream.remote_closed and stream.error is None:
                    # Answered without the rest of the body: stop, and end our side too.
                    if engine.reset_stream(stream, H3ErrorCode.H3_NO_ERROR):
                        self.flush_locked()
                    return
                stream.raise_if_failed()
                self.raise_if_dead_locked()
                if stream.local_closed:
                    raise InvalidRequest(
                        f"the request on stream {stream.stream_id} was already ended"
                    )
                room = SEND_BUFFER - engine.queued(stream)
                if room > 0:
                    size = min(room, total - offset, SEND_PIECE)
                    last = end_stream and offset + size == total
                    if size or last:
                        engine.send_data(stream, view[offset : offset + size], last)
                        offset += size
                        self.flush_locked()
                    if offset == total and (last or not end_stream):
                        return
            self.read_until(writable, timeout)

    def reset_locked(self, stream: RequestStream, error_code: int) -> None:
        """End ``stream`` in both directions if it is still under way (lock held)."""
        if self.alive() and self.engine.reset_stream(stream, error_code):
            try:
                self.flush_locked()
            except HyperError:
                pass  # the connection failed: the stream is gone either way

    # -- reading streams ----------------------------------------------------------------------

    def handle(
        self, stream: RequestStream, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> StreamHandle[RequestStream]:
        """The handle a response reads ``stream`` through, each wait for the server bounded
        by ``timeout`` (see :meth:`read_until`)."""
        return StreamHandle(self, stream, timeout)

    def fileno(self) -> int:
        """The file descriptor of the socket.

        :raises ConnectionClosed: if it is closed.
        """
        sock = self.sock
        if sock.closed:
            raise ConnectionClosed("the connection is closed")
        return sock.fileno()

    def wait_for_headers(
        self, stream: RequestStream, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> None:
        """Wait until ``stream``'s response headers arrive, or it ends without them, for up
        to ``timeout`` seconds."""
        if not stream.has_headers():
            self.read_until(stream.has_headers, timeout)

    def read_body(
        self, stream: RequestStream, amt: int | None, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> bytes:
        """
        Return up to ``amt`` body bytes of ``stream`` (all of them when ``None``), waiting for
        them as needed. Fewer are returned only at the end of the body.

        :raises ~hyper.http30.exceptions.StreamResetError: if the stream was reset (once the
            data before the reset has been read, for a read of ``amt``).
        :raises ReadTimeout: if no body data arrives for ``timeout`` seconds.
        :raises HyperError: if the connection failed.
        """
        if amt is None:
            return self._read_all(stream, timeout)
        parts: list[bytes] = []
        needed = amt

        def enough() -> bool:
            return stream.buffered >= needed or stream.finished

        def received() -> int:
            return stream.received_length

        while needed > 0:
            if not enough():
                self.read_until(enough, timeout, received)
            with self.lock:
                if stream.body:
                    data = stream.take(needed)
                    parts.append(data)
                    needed -= len(data)
                elif stream.finished:
                    break
        if not parts:
            stream.raise_if_failed()
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_all(self, stream: RequestStream, timeout: WaitTimeout) -> bytes:
        """The rest of the body: data arriving meanwhile goes straight into the result."""
        with self.lock:
            if stream.finished:
                data = stream.take(None)
                stream.raise_if_failed()
                return data
            sink = BytesIO()
            sink.write(stream.take(None))
            stream.sink = sink
        try:
            self.read_until(lambda: stream.finished, timeout, lambda: stream.received_length)
        except BaseException:
            with self.lock:
                # Keep what arrived for a later read: nothing may be lost.
                stream.sink = None
                stream.body[0:0] = sink.getbuffer()
            raise
        with self.lock:
            stream.sink = None
        stream.raise_if_failed()
        return sink.getvalue()

    def read_chunk(
        self, stream: RequestStream, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> bytes | None:
        """Return the body data that has arrived (waiting up to ``timeout`` seconds for
        some), or ``None`` at the end of the body."""
        if not stream.has_data():
            self.read_until(stream.has_data, timeout)
        with self.lock:
            if stream.body:
                return stream.take(None)
        stream.raise_if_failed()
        return None

    def close_stream(self, stream: RequestStream) -> None:
        """
        The application is done with ``stream``: reset it (``H3_REQUEST_CANCELLED``) if its
        response has not ended, and drop its unread data.
        """
        with self.lock:
            if not stream.finished or not stream.local_closed:
                self.reset_locked(stream, H3ErrorCode.H3_REQUEST_CANCELLED)
            stream.discard()
            if self.reader_active:
                # The reader may be waiting for this stream's data: let it look again.
                self.sock.wake()
            self.drained_locked()
            self.cond.notify_all()

    # -- ending -------------------------------------------------------------------------------

    def fail_locked(self, error: HyperError) -> None:
        """The transport is unusable: fail every unfinished stream and close the socket."""
        self.engine.fail(error)
        self.close_socket_locked()

    def close_socket_locked(self) -> None:
        """Close the socket and wake everyone waiting on this transport."""
        if self.sock.closed:
            return
        self.engine.fail(ConnectionClosed("the connection was closed"))
        self.sock.close()
        self.engine.release()
        self.cond.notify_all()

    def close_locked(self, error: HyperError, error_code: int = H3ErrorCode.H3_NO_ERROR) -> None:
        """Send CONNECTION_CLOSE (when still possible) and close; the requests still under
        way fail with ``error``."""
        if self.alive():
            self.engine.close(error_code)
            try:
                self.flush_locked()
            except HyperError:
                pass  # the server may be gone already: closing is all that is left
        self.engine.fail(error)
        self.close_socket_locked()

    def drained_locked(self) -> None:
        """After a GOAWAY, or once set aside: close when the last request is done."""
        engine = self.engine
        if (
            (engine.goaway_id is not None or self.retired)
            and not engine.streams
            and not self.sock.closed
        ):
            self.close_locked(ConnectionClosed("the connection was closed"))
