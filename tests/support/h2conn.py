"""The HTTP/2 connection wrapper (:class:`ServerConnection`) handed to scripted handlers."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hyperframe.frame import Frame, HeadersFrame

from .threaded import DEFAULT_TIMEOUT, RECV_SIZE, ServerShutdown, abort_socket

Header = tuple[bytes | str, bytes | str]
EventMatch = (
    type[h2.events.Event] | tuple[type[h2.events.Event], ...] | Callable[[h2.events.Event], bool]
)

SEND_TIMEOUT = 10.0


class PeerClosed(ConnectionError):
    """The client closed or reset the connection while the handler was sending."""


class StreamClosedByPeer(AssertionError):
    """The client reset (or otherwise closed) a stream the handler was using."""


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def as_bytes(value: bytes | str | int) -> bytes:
    """``value`` as bytes (str is UTF-8 encoded, int is formatted)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _describe(match: EventMatch) -> str:
    if isinstance(match, type):
        return match.__name__
    if isinstance(match, tuple):
        return " or ".join(t.__name__ for t in match)
    return getattr(match, "__name__", repr(match))


def _matcher(match: EventMatch, stream_id: int | None) -> Callable[[h2.events.Event], bool]:
    types = match if isinstance(match, type | tuple) else None
    predicate = None if isinstance(match, type | tuple) else match

    def matches(event: h2.events.Event) -> bool:
        if types is not None and not isinstance(event, types):
            return False
        if predicate is not None and not predicate(event):
            return False
        return stream_id is None or getattr(event, "stream_id", None) == stream_id

    return matches


def _event_summary(events: Iterable[h2.events.Event], last: int = 25) -> str:
    """``"RequestReceived[1], DataReceived[1], ..."`` for error messages (last ``last``)."""
    names = []
    for event in events:
        stream_id = getattr(event, "stream_id", None)
        names.append(type(event).__name__ + (f"[{stream_id}]" if stream_id else ""))
    if not names:
        return "(none)"
    prefix = "..., " if len(names) > last else ""
    return prefix + ", ".join(names[-last:])


class ServerConnection:
    """One accepted connection with a server-side :class:`h2.connection.H2Connection`.

    Received events are appended to :attr:`events` (full history) and to
    :attr:`pending` (not yet consumed by :meth:`wait_for`/:meth:`next_event`).
    With :attr:`auto_flush` (default) frames h2 queues in reaction to input
    (SETTINGS/PING ACKs...) are sent right away; with :attr:`auto_ack`
    (default) received DATA is acknowledged at once (WINDOW_UPDATE).  Turn
    them off to script flow control or ACK behaviour by hand.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        closing: threading.Event | None = None,
        config: h2.config.H2Configuration | None = None,
    ) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            config=config or h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.events: list[h2.events.Event] = []
        self.pending: deque[h2.events.Event] = deque()
        self.closed = False
        self.auto_flush = True
        self.auto_ack = True
        self.send_timeout = SEND_TIMEOUT
        self.alpn_protocol: str | None = (
            sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else None
        )
        self._closing = closing or threading.Event()

    # -- raw I/O --------------------------------------------------------------------------

    def flush(self) -> None:
        """Send whatever h2 has queued (``data_to_send()``)."""
        data = self.conn.data_to_send()
        if data:
            self._sendall(data)

    def send_raw(self, data: bytes) -> None:
        """Flush h2's queued output, then send ``data`` verbatim."""
        self.flush()
        self._sendall(data)

    def send_frame(self, frame: Frame) -> None:
        """Send a serialized :mod:`hyperframe` frame (bypasses h2's state machine)."""
        self.send_raw(frame.serialize())

    def encode_headers(self, headers: Iterable[Header]) -> bytes:
        """HPACK-encode ``headers`` with the connection's encoder (keeps its table in sync)."""
        return bytes(self.conn.encoder.encode(list(headers)))

    def send_headers_frame(
        self,
        stream_id: int,
        headers: Iterable[Header],
        *,
        end_stream: bool = False,
        end_headers: bool = True,
    ) -> None:
        """Send a raw HEADERS frame, unchecked by h2 (e.g. without ``:status``)."""
        frame = HeadersFrame(stream_id, data=self.encode_headers(headers))
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers:
            frame.flags.add("END_HEADERS")
        self.send_frame(frame)

    def recv_events(self, timeout: float | None = DEFAULT_TIMEOUT) -> list[h2.events.Event]:
        """Do one socket read and feed it to h2; return the new events.

        Returns ``[]`` on timeout or EOF; on EOF :attr:`closed` is set.
        """
        if self.closed:
            return []
        data = self._recv(timeout)
        if not data:
            return []
        events = self.conn.receive_data(data)
        self.events.extend(events)
        self.pending.extend(events)
        if self.auto_ack:
            for event in events:
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
        if self.auto_flush:
            with contextlib.suppress(PeerClosed):  # peer gone: callers see `closed`
                self.flush()
        return events

    def next_event(self, timeout: float | None = DEFAULT_TIMEOUT) -> h2.events.Event | None:
        """Pop the oldest pending event, reading if needed; None on EOF.

        :raises AssertionError: nothing arrived within ``timeout``.
        """
        deadline = _deadline(timeout)
        while not self.pending:
            if self.closed:
                return None
            remaining = _remaining(deadline)
            if remaining == 0:
                raise AssertionError(f"no HTTP/2 event within {timeout}s")
            self.recv_events(remaining)
        return self.pending.popleft()

    def wait_for(
        self,
        match: EventMatch,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        stream_id: int | None = None,
    ) -> h2.events.Event:
        """Return (and consume) the first pending event matching ``match``.

        ``match`` is an event class, a tuple of classes or a predicate; with
        ``stream_id`` only events of that stream match.  Non-matching events
        stay pending.

        :raises AssertionError: on timeout or EOF, listing the events seen.
        """
        matches = _matcher(match, stream_id)
        what = _describe(match) + (f" on stream {stream_id}" if stream_id is not None else "")
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.pending):
                if matches(event):
                    del self.pending[index]
                    return event
            if self.closed:
                self._fail_closed(f"waiting for {what}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"events so far: {_event_summary(self.events)}"
                )
            self.recv_events(_remaining(deadline))

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Read (feeding h2 while it accepts the input) until the client closes."""
        deadline = time.monotonic() + timeout
        h2_ok = True
        while not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"client did not close the connection within {timeout}s")
            if not h2_ok:
                self._recv(remaining)  # h2 rejected earlier input: just drain to EOF
                continue
            try:
                self.recv_events(remaining)
            except h2.exceptions.H2Error:
                h2_ok = False

    def close(self) -> None:
        """Half-close: send FIN (no GOAWAY); reading stays possible (see :meth:`wait_closed`)."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def abort(self) -> None:
        """Close the connection with a TCP RST (see :func:`abort_socket`)."""
        self.closed = True
        abort_socket(self.sock)

    # -- HTTP/2 conveniences --------------------------------------------------------------

    def handshake(
        self, timeout: float = DEFAULT_TIMEOUT, settings: Mapping[int, int] | None = None
    ) -> h2.events.RemoteSettingsChanged:
        """Send our SETTINGS (plus ``settings`` as a second SETTINGS frame) and wait
        until the client's preface and SETTINGS have been processed."""
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(dict(settings))
        self.flush()
        event = self.wait_for(h2.events.RemoteSettingsChanged, timeout)
        assert isinstance(event, h2.events.RemoteSettingsChanged)
        return event

    def wait_for_request(self, timeout: float = DEFAULT_TIMEOUT) -> h2.events.RequestReceived:
        """Wait for the next request's HEADERS."""
        event = self.wait_for(h2.events.RequestReceived, timeout)
        assert isinstance(event, h2.events.RequestReceived)
        return event

    def read_request(
        self, stream_id: int, timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Return ``(headers, body)`` of the request on ``stream_id`` once it ended."""
        deadline = time.monotonic() + timeout
        seen = [
            e
            for e in self.events
            if isinstance(e, h2.events.RequestReceived) and e.stream_id == stream_id
        ]
        request = (
            seen[0]
            if seen
            else self.wait_for(h2.events.RequestReceived, timeout, stream_id=stream_id)
        )
        assert isinstance(request, h2.events.RequestReceived)
        body = bytearray()
        wanted = (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset)
        while True:
            event = self.wait_for(
                wanted, max(deadline - time.monotonic(), 0.0), stream_id=stream_id
            )
            if isinstance(event, h2.events.DataReceived):
                body += event.data
            elif isinstance(event, h2.events.StreamReset):
                raise StreamClosedByPeer(
                    f"client reset stream {stream_id} (error {event.error_code!r}) "
                    "before the request body ended"
                )
            else:
                return [(bytes(n), bytes(v)) for n, v in request.headers], bytes(body)

    def respond(
        self,
        stream_id: int,
        status: int | str | bytes = 200,
        headers: Iterable[Header] = (),
        body: bytes = b"",
        trailers: Iterable[Header] | None = None,
        end: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Send HEADERS, then ``body`` as flow-controlled DATA, then ``trailers``.

        The stream is ended by the last frame unless ``end`` is False (trailers
        always end it).
        """
        all_headers: list[Header] = [(b":status", as_bytes(status)), *headers]
        headers_only = not body and trailers is None
        try:
            self.conn.send_headers(stream_id, all_headers, end_stream=end and headers_only)
            self.flush()
            if body:
                self.send_body(
                    stream_id, body, end_stream=end and trailers is None, timeout=timeout
                )
            if trailers is not None:
                self.conn.send_headers(stream_id, list(trailers), end_stream=True)
                self.flush()
        except h2.exceptions.StreamClosedError as exc:
            raise StreamClosedByPeer(f"stream {stream_id} closed by the client: {exc}") from exc

    def send_body(
        self,
        stream_id: int,
        data: bytes,
        end_stream: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Send ``data`` in DATA frames within the peer's flow-control windows and
        max frame size, reading WINDOW_UPDATEs while blocked (up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        offset = 0
        try:
            while offset < len(view):
                size = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                    len(view) - offset,
                )
                if size <= 0:
                    self.flush()
                    self._wait_for_window(stream_id, deadline, timeout)
                    continue
                last = offset + size == len(view)
                chunk = bytes(view[offset : offset + size])
                self.conn.send_data(stream_id, chunk, end_stream=end_stream and last)
                offset += size
                self.flush()
            if not data and end_stream:
                self.conn.end_stream(stream_id)
            self.flush()
        except h2.exceptions.StreamClosedError as exc:
            raise StreamClosedByPeer(
                f"stream {stream_id} closed by the client after {offset} of {len(data)} "
                f"body bytes: {exc}"
            ) from exc

    def goaway(self, error_code: int = 0, last_stream_id: int | None = None) -> None:
        """Send GOAWAY (h2 picks ``last_stream_id`` when None) and flush."""
        self.conn.close_connection(error_code=error_code, last_stream_id=last_stream_id)
        self.flush()

    # -- internals ------------------------------------------------------------------------

    def _wait_for_window(self, stream_id: int, deadline: float, timeout: float) -> None:
        while self.conn.local_flow_control_window(stream_id) <= 0:
            if self.closed:
                self._fail_closed(f"waiting for WINDOW_UPDATE on stream {stream_id}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"flow-control window of stream {stream_id} stayed closed for {timeout}s "
                    f"(no WINDOW_UPDATE); events so far: {_event_summary(self.events)}"
                )
            self.recv_events(_remaining(deadline))

    def _fail_closed(self, doing: str) -> NoReturn:
        if self._closing.is_set():
            raise ServerShutdown(doing)
        raise AssertionError(
            f"client closed the connection while {doing}; "
            f"events so far: {_event_summary(self.events)}"
        )

    def _recv(self, timeout: float | None) -> bytes | None:
        """One read: bytes, ``b""`` on EOF (sets :attr:`closed`), None on timeout."""
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return None
        except (ConnectionError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        if not data:
            self.closed = True
        return data

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self.send_timeout)
            self.sock.sendall(data)
        except (ConnectionError, ssl.SSLEOFError) as exc:
            self.closed = True
            raise PeerClosed(f"client went away while the server was sending: {exc}") from exc
