"""
:class:`Transport`: one socket and one :class:`~hyper.http20.engine.Engine` on it, and
:class:`StreamHandle`, through which a response reads its stream.

An :class:`~hyper.HTTP20Connection` runs on one transport at a time. When the server sends a
graceful GOAWAY, or the stream ids run out, the connection opens a new transport for new
requests while the old one *drains*: the streams the server accepted there finish on it, and
it closes itself when the last one does. Every transport of a connection shares the
connection's lock.

Threading model (no thread of hyper's own):

* The connection's lock guards every transport's engine, the stream records and every write;
  its condition wakes threads waiting for something to arrive.
* Nobody waits for the network while holding the lock, so that a thread holds it for
  moments only, and every other thread waits by its own limits (its read timeout, its total
  deadline). Writes send what the socket takes and leave the rest queued in the socket
  (:meth:`~hyper.common.bufsocket.BufferedSocket.send_nowait`): a server that stops reading
  fills the queue, not the lock's hold time. A request body waits (without the lock) while
  more than :data:`SEND_BACKLOG` bytes are queued.
* At most one thread reads a transport's socket at a time (:attr:`Transport.reader_active`).
  A thread that needs data that has not arrived becomes the reader if nobody is: it waits for
  the socket *without* the lock (for data, or for room for what is queued to go out), then,
  under the lock, sends more of what is queued, reads what is there (never waiting for
  more), feeds the engine, handles its events, sends what the engine queued
  (acknowledgements, WINDOW_UPDATEs) and wakes the waiters.

Errors of the socket and of TLS reach the transport as hyper exceptions already (see
:mod:`hyper.common.bufsocket`); the transport fails the engine with them, so that every stream
still waiting reports the same error.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from io import BytesIO

from .. import tls
from ..common.bufsocket import BufferedSocket
from ..common.condition import Condition
from ..common.exceptions import ConnectionClosed, HyperError, InvalidRequest, ReadTimeout
from ..common.stream_response import StreamHandle
from ..common.timeout import Deadline, WaitLimit
from ..common.util import CONNECTION_TIMEOUT, DefaultTimeout
from .engine import Engine
from .errors import ErrorCodes
from .events import GoAwayReceived, PushPromised
from .frames import describe
from .stream import HeaderList, Stream

__all__ = ["PushPolicy", "Transport"]

log = logging.getLogger("hyper.http20")

#: Decides whether to accept a push: called with the transport, the parent stream's id and
#: the promised request's headers (lock held); returns the error code to reset the push with
#: and why, or ``None`` to accept it.
PushPolicy = Callable[["Transport", int, HeaderList], "tuple[int, str] | None"]

#: A read this large suggests a bulk transfer: the next read is tried before polling.
_STREAMING_READ = 16 * 1024

#: The most bytes a request body keeps queued behind a socket that takes no more: beyond
#: it, the body waits for the server to read (by the request's own timeouts). Enough to keep
#: a fast connection busy between two turns of the sending thread.
SEND_BACKLOG = 1024 * 1024

#: A read timeout as the transport's methods take it: seconds, ``None`` (no limit), or
#: :data:`~hyper.common.util.CONNECTION_TIMEOUT` (the transport's :attr:`Transport.read_timeout`),
#: or a request's :class:`~hyper.common.timeout.Deadline` (its read timeout and total deadline).
WaitTimeout = float | None | DefaultTimeout | Deadline


class Transport:
    """
    One connected socket speaking HTTP/2, and the engine that speaks it.

    :param sock: the socket, HTTP/2 negotiated (the engine's preface may still be queued).
    :param engine: the protocol state for this socket.
    :param cond: the connection's condition; its lock guards the engine.
    :param read_timeout: the longest wait for the server, in seconds (``None``: no limit).
    :param push_policy: decides on each promised push (``None``: refuse them all).
    """

    def __init__(
        self,
        sock: BufferedSocket,
        engine: Engine,
        cond: Condition,
        read_timeout: float | None,
        push_policy: PushPolicy | None = None,
    ) -> None:
        self.sock: BufferedSocket | None = sock
        self.engine = engine
        self.cond = cond
        #: The condition's lock, entered directly where the condition's own methods are not
        #: needed (one Python call fewer).
        self.lock = cond.lock
        self.read_timeout = read_timeout
        self.push_policy = push_policy
        #: Why the transport can no longer be used (None while it can).
        self.error: HyperError | None = None
        #: A thread is reading the socket (the reader role).
        self.reader_active = False
        #: The latest read was large (a bulk transfer): the next one is tried before polling.
        self.streaming = False
        #: No new streams go on this transport any more (the connection set it aside).
        self.retired = False
        #: Accepted pushes not yet collected, by the id of the request they belong to.
        self.promises: dict[int, deque[Stream]] = {}
        self._peer_names: frozenset[str] | None = None
        self._debug = log.isEnabledFor(logging.DEBUG)

    def __repr__(self) -> str:
        state = "usable" if self.usable() else ("alive" if self.alive() else "closed")
        return f"<Transport {state} streams={len(self.engine.streams)}>"

    # -- state --------------------------------------------------------------------------------

    def alive(self) -> bool:
        """The socket is open and has not failed: its streams can still progress."""
        return self.sock is not None and self.error is None

    def usable(self) -> bool:
        """New streams may be opened here."""
        return (
            self.sock is not None
            and self.error is None
            and not self.retired
            and self.engine.goaway is None
            and not self.engine.closing
        )

    def unfinished(self) -> bool:
        """Whether any stream here is still open."""
        return bool(self.engine.streams)

    def raise_if_dead_locked(self) -> None:
        """Raise why the transport can no longer be read or written, if it cannot."""
        if self.error is not None:
            raise self.error
        if self.sock is None:
            raise ConnectionClosed("the connection is closed")

    def certificate_names(self) -> frozenset[str] | None:
        """The names the server's certificate covers (``None`` without TLS)."""
        sock = self.sock
        if self._peer_names is None and sock is not None and sock.is_tls:
            self._peer_names = tls.certificate_names(sock.peer_certificate())
        return self._peer_names

    @property
    def last_ping_ack(self) -> bytes | None:
        """The payload of the last PING the server acknowledged here."""
        return self.engine.last_ping_ack

    # -- the reader role ----------------------------------------------------------------------

    def read_until(
        self,
        ready: Callable[[], bool],
        timeout: WaitTimeout = CONNECTION_TIMEOUT,
        progress: Callable[[], int] | None = None,
    ) -> None:
        """
        Read and process frames until ``ready()`` is true. Call without holding the lock;
        ``ready`` and ``progress`` are evaluated with the lock held.

        Each thread waits by its own ``timeout``, whether it reads the socket itself or
        another thread does it for it: threads sharing the connection may wait with
        different timeouts.

        :param ready: what the caller waits for.
        :param timeout: the longest wait in seconds (``None``: no limit); by default the
            transport's :attr:`read_timeout`. A request's
            :class:`~hyper.common.timeout.Deadline` bounds the wait by its read timeout and
            by the time left to it.
        :param progress: a count that grows as what the caller waits for comes nearer (body
            bytes received, say); the wait starts again whenever it changes.
        :raises ReadTimeout: if ``ready()`` stays false for ``timeout`` seconds.
        :raises DeadlineExceeded: if the request's total deadline passes first.
        :raises HyperError: if the connection fails.
        """
        cond = self.cond
        lock = self.lock
        if timeout is CONNECTION_TIMEOUT:
            timeout = self.read_timeout
        deadline: Deadline | None = None
        if isinstance(timeout, Deadline):
            deadline, timeout = timeout, timeout.read
        # Made only once a wait begins: a predicate that is true already costs nothing.
        limit: WaitLimit | None = None
        wait: float | None = None
        while True:
            with lock:
                if ready():
                    return
                self.raise_if_dead_locked()
                if timeout is not None or deadline is not None:
                    if limit is None:
                        limit = WaitLimit(timeout, progress, ReadTimeout, deadline)
                        wait = timeout if deadline is None else limit.remaining()
                    else:
                        wait = limit.remaining()
                if self.reader_active:
                    # Woken after every read of the reader's, and at the deadline: the loop
                    # looks at ``ready`` first, then at the time left.
                    cond.wait(wait)
                    continue
                self.reader_active = True
                sock = self.sock
                assert sock is not None
                # Looked at under the lock, where the socket's queue is written.
                writing = sock.unsent > 0
            try:
                # Wait for data without the lock (another thread may wake us: it closed a
                # stream we wait for), then read what is there without waiting, under the
                # lock: TLS must not read and write one connection at the same time, and a
                # partial TLS record just means waiting again. Keep the reader role until our
                # own data is here, waking the others after every read. After a large read
                # more is usually on its way: try reading before polling.
                streaming = self.streaming
                while True:
                    if not streaming:
                        sock.wait_io(wait, writing)
                    with lock:
                        if self.sock is not sock:
                            break
                        if sock.unsent:
                            self.flush_locked()  # the socket may take more now
                            cond.notify_all()
                        writing = sock.unsent > 0
                        data = sock.recv_nowait()
                        streaming = self.streaming = (
                            data is not None and len(data) >= _STREAMING_READ
                        )
                        if data is not None:
                            self._receive_locked(data)
                            cond.notify_all()
                        if ready():
                            break
                        if limit is not None:
                            wait = limit.remaining()
            except ReadTimeout as exc:
                if limit is None:
                    raise
                raise limit.translate(exc) from None
            except HyperError as exc:
                with lock:
                    if self.sock is not sock:
                        continue  # closed meanwhile: look at the new state
                    self.fail_locked(exc)
                raise
            finally:
                with lock:
                    self.reader_active = False
                    cond.notify_all()

    def poll_locked(self) -> None:
        """Process whatever has already arrived, without waiting (lock held)."""
        sock = self.sock
        if sock is None or self.reader_active or not sock.can_read():
            return
        try:
            data = sock.recv_nowait()
            if data is not None:
                self._receive_locked(data)
        except HyperError as exc:
            self.fail_locked(exc)  # recorded: the caller opens a new transport

    def _receive_locked(self, data: memoryview) -> None:
        """Feed what was read to the engine, act on its events, send its answers."""
        engine = self.engine
        if not data:
            closed = ConnectionClosed("the server closed the connection")
            self.fail_locked(closed)
            raise closed
        try:
            events = engine.receive_data(data)
        except HyperError:
            # A protocol error: the engine queued GOAWAY and failed its streams.
            self._send_final_locked()
            raise
        for event in events:
            if type(event) is PushPromised:
                self._decide_push_locked(event)
            elif type(event) is GoAwayReceived and self._debug:
                log.debug("GOAWAY received: %r", event)
        error = engine.error
        if error is not None:
            # A GOAWAY with an error code: the server ended the connection.
            self.error = error
            self.close_socket_locked()
            return
        self.flush_locked()
        self.drained_locked()

    def _decide_push_locked(self, event: PushPromised) -> None:
        stream = event.stream
        policy = self.push_policy
        refusal = (
            (ErrorCodes.REFUSED_STREAM, "push is disabled")
            if policy is None
            else policy(self, event.parent_stream_id, stream.request_headers)
        )
        if refusal is not None:
            code, reason = refusal
            if self._debug:
                log.debug("refused push %d: %s", stream.stream_id, reason)
            self.engine.reset_stream(stream, code)
            return
        self.promises.setdefault(event.parent_stream_id, deque()).append(stream)

    # -- writing ------------------------------------------------------------------------------

    def flush_locked(self) -> None:
        """
        Send what the engine has queued (lock held), after what earlier flushes left, as much
        as the socket takes without waiting; the rest stays queued in the socket, and the
        reader sends it when the socket takes more. A failure fails the transport.
        """
        sock = self.sock
        if sock is None:
            return
        data = self.engine.data_to_send()
        if not data and not sock.unsent:
            return
        if self._debug and data:
            for line in describe(data):
                log.debug("send: %s", line)
        try:
            if not sock.send_nowait(data) and self.reader_active:
                # The reader may be waiting for data alone: now it must watch for room too.
                sock.wake()
        except HyperError as exc:
            # What the server sent before it went away (a GOAWAY saying which requests it
            # never processed) still counts: read it before the streams fail.
            self._receive_remains_locked(sock)
            self.fail_locked(exc)
            raise

    def _receive_remains_locked(self, sock: BufferedSocket) -> None:
        """Process what has already arrived on a socket that failed to send (lock held)."""
        engine = self.engine
        try:
            while engine.error is None:
                data = sock.recv_nowait()
                if not data:
                    return
                engine.receive_data(data)
        except HyperError:
            return  # the rest is unreadable: what was processed stands

    def _send_final_locked(self) -> None:
        """Send what the engine queued before failing (its GOAWAY), then close."""
        try:
            self.flush_locked()
        except HyperError:
            pass  # the server may be gone already: closing is all that is left
        self.error = self.error or self.engine.error
        self.close_socket_locked()

    def open_stream_locked(self, stream_id: int, headers: HeaderList, end_stream: bool) -> Stream:
        """Send a request's headers on a new stream (lock held); return the stream."""
        self.raise_if_dead_locked()
        stream = self.engine.send_headers(stream_id, headers, end_stream)
        try:
            self.flush_locked()
        except HyperError:
            # The transport failed, and the stream with it: the request's owner decides
            # whether it goes out again when it looks at the stream.
            pass
        return stream

    def send_data(
        self,
        stream: Stream,
        data: bytes | memoryview,
        end_stream: bool,
        timeout: WaitTimeout = CONNECTION_TIMEOUT,
    ) -> None:
        """
        Send ``data`` on ``stream`` as flow control allows, waiting for the server to open its
        windows, or to read what waits to go out when more than :data:`SEND_BACKLOG` bytes
        do (reading meanwhile), each time for up to ``timeout`` seconds (see
        :meth:`read_until`). Returns once all of it is queued: the last of it may still be
        going out. Call without the lock.

        If the server has already answered and ended the response, the rest of the body is
        not sent and the stream is closed with ``RST_STREAM(NO_ERROR)`` (RFC 9113 section
        8.1).

        :raises ~hyper.http20.exceptions.StreamResetError: if the server reset the stream.
        :raises ReadTimeout: if the windows stay shut, or the server reads nothing, for
            ``timeout`` seconds.
        :raises HyperError: if the connection failed.
        """
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        total = len(view)
        offset = 0
        engine = self.engine

        def backlog() -> int:
            sock = self.sock
            return sock.unsent if sock is not None else 0

        def room() -> int:
            """How much more of the body may be queued now (lock held)."""
            return min(engine.sendable(stream), SEND_BACKLOG - backlog())

        def writable() -> bool:
            # Once the backlog is full, wait until half of it went out: then each turn
            # queues a large piece, rather than whatever the socket took last.
            return (
                stream.finished
                or not self.alive()
                or (engine.sendable(stream) > 0 and backlog() <= SEND_BACKLOG // 2)
            )

        while True:
            with self.lock:
                if stream.remote_closed or stream.reset_code == ErrorCodes.NO_ERROR:
                    # The server answered without waiting for the rest of the body: stop,
                    # and end our side too so the stream is closed for both.
                    if not stream.local_closed and self.alive():
                        engine.reset_stream(stream, ErrorCodes.NO_ERROR)
                        self.flush_locked()
                    return
                # The stream's own failure first: it says more (a GOAWAY below it, say)
                # than the transport's, which may have closed for that very reason.
                stream.raise_if_failed()
                self.raise_if_dead_locked()
                if stream.local_closed:
                    raise InvalidRequest(
                        f"the request on stream {stream.stream_id} was already ended"
                    )
                size = max(min(room(), total - offset), 0)
                last = end_stream and offset + size == total
                if size or last:
                    engine.send_data(stream, view[offset : offset + size], last)
                    offset += size
                    self.flush_locked()
                if offset == total:
                    return
            self.read_until(writable, timeout)

    def reset_locked(self, stream: Stream, error_code: int) -> None:
        """End ``stream`` with RST_STREAM if it is still open (lock held)."""
        if self.alive() and self.engine.reset_stream(stream, error_code):
            try:
                self.flush_locked()
            except HyperError:
                pass  # the connection failed: the stream is gone either way

    def ping_locked(self, data: bytes) -> None:
        """Send a PING (lock held)."""
        self.raise_if_dead_locked()
        self.engine.ping(data)
        self.flush_locked()

    # -- reading streams ----------------------------------------------------------------------

    def handle(
        self, stream: Stream, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> StreamHandle[Stream]:
        """The handle a response reads ``stream`` through, each wait for the server bounded
        by ``timeout`` (see :meth:`read_until`)."""
        return StreamHandle(self, stream, timeout)

    def fileno(self) -> int:
        """The file descriptor of the socket.

        :raises ConnectionClosed: if it is closed.
        """
        sock = self.sock
        if sock is None:
            raise ConnectionClosed("the connection is closed")
        return sock.fileno()

    def read_body(
        self, stream: Stream, amt: int | None, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> bytes:
        """
        Return up to ``amt`` body bytes of ``stream`` (all of them when ``None``), waiting for
        them as needed. Fewer are returned only at the end of the body.

        :raises ~hyper.http20.exceptions.StreamResetError: if the stream was reset (once the
            data before the reset has been read, for a read of ``amt``).
        :raises ReadTimeout: if no body data arrives for ``timeout`` seconds.
        :raises HyperError: if the connection failed.
        """
        if amt is None:
            return self._read_all(stream, timeout)
        parts: list[bytes] = []
        needed = amt
        # Wait for all that is wanted at once rather than taking each socket read's few
        # frames: a large read is then one join, not one per socket read. But take what is
        # buffered once it fills half the stream's open window, so that the window manager
        # can reopen it before the server has to stop.
        manager = stream.window_manager

        def enough() -> bool:
            buffered = stream.buffered
            return (
                buffered >= needed
                or buffered >= max(manager.window_size // 2, 1)
                or stream.finished
            )

        def received() -> int:
            return stream.received_length

        while needed > 0:
            if not enough():
                self.read_until(enough, timeout, received)
            with self.lock:
                if stream.buffered:
                    data = stream.take(needed)
                    self._acknowledge_locked(stream, len(data))
                    parts.append(data)
                    needed -= len(data)
                elif stream.finished:
                    break
        if not parts:
            stream.raise_if_failed()
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_all(self, stream: Stream, timeout: WaitTimeout) -> bytes:
        """The rest of the body. Data arriving meanwhile goes straight from the socket
        buffer into the result (one copy), and counts as consumed as it comes."""
        with self.lock:
            if stream.finished:
                data = stream.take(None) if stream.buffered else b""
                stream.prepaid = 0
                stream.raise_if_failed()
                return data
            sink = BytesIO()
            taken = stream.take(None) if stream.buffered else b""
            sink.write(taken)
            if taken:
                self._acknowledge_locked(stream, len(taken))
            stream.sink = sink
        try:
            self.read_until(lambda: stream.finished, timeout, lambda: stream.received_length)
        except BaseException:
            with self.lock:
                # Keep what arrived for a later read: nothing may be lost. It was counted as
                # consumed already, so it is not counted against the window again.
                stream.sink = None
                kept = sink.getvalue()
                if kept:
                    stream.chunks.appendleft(kept)
                    stream.buffered += len(kept)
                    stream.prepaid += len(kept)
            raise
        with self.lock:
            stream.sink = None
        stream.raise_if_failed()
        return sink.getvalue()

    def read_chunk(
        self, stream: Stream, timeout: WaitTimeout = CONNECTION_TIMEOUT
    ) -> bytes | None:
        """Return the next received DATA payload of ``stream`` (possibly empty), or ``None``
        at the end of the body, waiting up to ``timeout`` seconds for it."""
        while True:
            if not stream.has_chunk():
                self.read_until(stream.has_chunk, timeout)
            with self.lock:
                if stream.chunks:
                    data = stream.take_chunk()
                    if data:
                        self._acknowledge_locked(stream, len(data))
                    return data
            stream.raise_if_failed()
            return None

    def _acknowledge_locked(self, stream: Stream, size: int) -> None:
        """The application took ``size`` bytes of ``stream``: reopen its window as its
        manager decides."""
        prepaid = stream.prepaid
        if prepaid:
            paid = prepaid if prepaid < size else size
            stream.prepaid -= paid
            size -= paid
        if size:
            self.engine.acknowledge(stream, size)
            if self.alive():
                self.flush_locked()

    def wait_for_headers(self, stream: Stream, timeout: WaitTimeout = CONNECTION_TIMEOUT) -> None:
        """Wait until ``stream``'s response headers arrive, or it ends without them, for up
        to ``timeout`` seconds."""
        if not stream.has_headers():
            self.read_until(stream.has_headers, timeout)

    def close_stream(self, stream: Stream) -> None:
        """
        The application is done with ``stream``: reset it (``CANCEL``) if its response has
        not ended, drop its unread data, and refuse the pushes promised on it that nobody
        collected.
        """
        with self.lock:
            if not stream.finished:
                self.reset_locked(stream, ErrorCodes.CANCEL)
            for pushed in self.promises.pop(stream.stream_id, ()):
                if not pushed.finished:
                    self.reset_locked(pushed, ErrorCodes.CANCEL)
                pushed.discard()
            stream.discard()
            stream.prepaid = 0
            sock = self.sock
            if self.reader_active and sock is not None:
                # The reader may be waiting for this stream's data: let it look again.
                sock.wake()
            self.drained_locked()
            self.cond.notify_all()

    def take_promise_locked(self, parent_id: int) -> Stream | None:
        """The oldest uncollected push promised on ``parent_id``, or ``None``."""
        queue = self.promises.get(parent_id)
        if not queue:
            return None
        pushed = queue.popleft()
        if not queue:
            del self.promises[parent_id]
        return pushed

    def promised_count(self) -> int:
        """How many accepted pushes wait to be collected."""
        return sum(len(queue) for queue in self.promises.values())

    # -- ending -------------------------------------------------------------------------------

    def fail_locked(self, error: HyperError) -> None:
        """The transport is unusable: fail every unfinished stream and close the socket."""
        if self.error is None:
            self.error = error
        self.engine.fail(self.error)
        self.close_socket_locked()

    def close_socket_locked(self) -> None:
        """Close the socket and wake everyone waiting on this transport."""
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.engine.fail(self.error or ConnectionClosed("the connection was closed"))
        self.promises.clear()
        sock.close()
        self.cond.notify_all()

    def close_locked(self, error_code: int, error: HyperError) -> None:
        """
        Say GOAWAY (when still possible) and close; the streams still open fail with
        ``error``.
        """
        if self.sock is not None and self.error is None:
            self.engine.close(error_code)
            try:
                self.flush_locked()
            except HyperError:
                pass  # the server may be gone already: closing is all that is left
        if self.error is None:
            self.error = error
        self.close_socket_locked()

    def drained_locked(self) -> None:
        """After a GOAWAY, or once set aside: close the socket when its last stream is done."""
        if (
            self.sock is not None
            and (self.engine.goaway is not None or self.retired)
            and not self.engine.streams
        ):
            self.close_locked(ErrorCodes.NO_ERROR, ConnectionClosed("the connection was closed"))
