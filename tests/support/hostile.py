"""
A harness for hostile-server scenarios: a raw HTTP/2 peer that speaks frame by frame, and a
helper that runs a client action while measuring its time and its peak memory.

:class:`RawH2Peer` is the server side of one HTTP/2 connection *without* an ``h2`` state
machine: ``h2`` in server mode refuses to emit invalid frames, and a hostile server is all
about invalid frames. It parses what the client sends (enough to find requests, answer
SETTINGS and PING, and notice GOAWAY, RST_STREAM and the close), and writes whatever bytes a
scenario builds, with :mod:`hyperframe` or by hand. Its HPACK encoder and decoder keep the
compression state in step with the client's, so a scenario can send valid header blocks next
to broken ones. It runs on :class:`~tests.support.scripted.ScriptedRawServer`, which owns the
accept loop, threads and bounded shutdown.

:func:`measure` runs the client's action and records how long it took, the peak of the
memory Python allocated meanwhile (``tracemalloc``) and the exception it raised; the
``assert_*`` helpers check those against the documented exception classes and the bounds.
What stops an action that would hang is hyper's own read timeout, which every scenario sets
(pytest-timeout backs it up); the time bound asserted afterwards is much tighter than that.

The memory measured is process-wide: the scripted server runs in a thread of the test
process, so its allocations count too. Scenarios therefore build their floods *before* the
measurement starts (module-level constants) and drain the client's replies in small pieces,
so what is measured is, to within a few hundred KiB, the client's own working set. Memory
that C libraries allocate themselves (zlib, brotli and zstd state, OpenSSL buffers) is outside
``tracemalloc``'s view; the Python objects built from it (frames, payloads, decoded bytes)
are not.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import selectors
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import hpack
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from hyper.common.exceptions import HyperError

from .threaded import DEFAULT_TIMEOUT

__all__ = [
    "PREFACE",
    "KiB",
    "Measured",
    "MiB",
    "PeerGone",
    "RawH2Peer",
    "assert_bounds",
    "assert_clear_message",
    "assert_raised",
    "frame_bytes",
    "measure",
]

KiB = 1024
MiB = 1024 * KiB

#: The client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame type codes (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

#: Bytes taken from the socket per read: small, so that draining a flood allocates little.
_RECV = 16 * KiB

T = TypeVar("T")


def frame_bytes(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame built by hand: for frames hyperframe refuses to serialize (bad lengths,
    unknown types, reserved bits), and for floods built by repetition."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes([frame_type, flags])
        + (stream_id & 0xFFFFFFFF).to_bytes(4, "big")
        + payload
    )


class PeerGone(Exception):
    """The client closed the connection while the scenario still expected something."""


@dataclass
class RawFrame:
    """One frame received from the client, undecoded."""

    type: int
    flags: int
    stream_id: int
    payload: bytes


@dataclass
class ClientRequest:
    """A request the client sent: its header list, and whether its body has ended."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    answered: bool = False

    @property
    def path(self) -> bytes:
        """The ``:path`` pseudo-header."""
        return next((v for n, v in self.headers if n == b":path"), b"")


class RawH2Peer:
    """
    The server side of one HTTP/2 connection, frame by frame, with no protocol checks.

    Everything the client sends goes through :meth:`read_frame`, which keeps the books:
    requests (header blocks decoded, so HPACK stays in step), SETTINGS and PING answered
    (:attr:`auto_ack`), GOAWAY and RST_STREAM codes recorded, EOF noticed (:attr:`eof` is
    set). Writing is raw: :meth:`send` takes bytes or hyperframe frames.
    """

    def __init__(self, sock: socket.socket, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buffer = bytearray()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        #: Answer the client's SETTINGS and PING frames as a server must.
        self.auto_ack = True
        self.requests: dict[int, ClientRequest] = {}
        #: How many requests :meth:`start` waits for before returning the first one.
        self.expected_requests = 1
        #: Requests that :meth:`next_request` handed to the scenario, in order.
        self.taken: list[int] = []
        #: How many frames of each type the client sent.
        self.counts: collections.Counter[int] = collections.Counter()
        self.goaway_codes: list[int] = []
        self.rst_codes: dict[int, int] = {}
        #: How many PING ACKs the client sent, and the payload of the last one.
        self.ping_ack_count = 0
        self.last_ping_ack: bytes | None = None
        #: Payloads of the PINGs the client sent (not the ACKs).
        self.pings: list[bytes] = []
        #: How many SETTINGS ACKs the client sent.
        self.settings_ack_count = 0
        #: Set when the client closed the connection (EOF or reset).
        self.eof = threading.Event()
        #: Notified after every frame booked (see :meth:`wait_state`).
        self.changed = threading.Condition()
        self.eof_at: float | None = None
        self._header_block: tuple[int, bool, bytearray] | None = None

    # -- reading ----------------------------------------------------------------------------------

    def _fill(self, timeout: float | None) -> bool:
        """Read once into the buffer; False on EOF. Raises TimeoutError after ``timeout``."""
        if self.eof.is_set():
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(_RECV)
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            data = b""
        if not data:
            self.eof_at = time.monotonic()
            self.eof.set()
            with self.changed:
                self.changed.notify_all()
            return False
        self.buffer += data
        return True

    def read_preface(self, timeout: float | None = None) -> None:
        """Consume the client's connection preface."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buffer) < len(PREFACE):
            if not self._fill(max(deadline - time.monotonic(), 0.001)):
                raise PeerGone("the client closed before its preface")
        if bytes(self.buffer[: len(PREFACE)]) != PREFACE:
            raise AssertionError(f"not an HTTP/2 preface: {bytes(self.buffer[:24])!r}")
        del self.buffer[: len(PREFACE)]

    def _pop(self) -> RawFrame | None:
        if len(self.buffer) < 9:
            return None
        length = int.from_bytes(self.buffer[:3], "big")
        if len(self.buffer) < 9 + length:
            return None
        frame = RawFrame(
            self.buffer[3],
            self.buffer[4],
            int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF,
            bytes(self.buffer[9 : 9 + length]),
        )
        del self.buffer[: 9 + length]
        return frame

    def read_frame(self, timeout: float | None = None) -> RawFrame | None:
        """The next frame from the client (booked, see the class docstring); None on EOF.

        :raises TimeoutError: nothing arrived within ``timeout`` (default: the peer's).
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._pop()
            if frame is not None:
                self._book(frame)
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from the client in time")
            if not self._fill(remaining):
                return None

    def _book(self, frame: RawFrame) -> None:
        with self.changed:
            self._book_locked(frame)
            self.changed.notify_all()

    def _book_locked(self, frame: RawFrame) -> None:
        self.counts[frame.type] += 1
        if frame.type == SETTINGS:
            if frame.flags & ACK:
                self.settings_ack_count += 1
            elif self.auto_ack:
                self.send(frame_bytes(SETTINGS, ACK, 0))
        elif frame.type == PING:
            if frame.flags & ACK:
                self.ping_ack_count += 1
                self.last_ping_ack = frame.payload
            else:
                self.pings.append(frame.payload)
                if self.auto_ack:
                    self.send(frame_bytes(PING, ACK, 0, frame.payload))
        elif frame.type == GOAWAY:
            self.goaway_codes.append(int.from_bytes(frame.payload[4:8], "big"))
        elif frame.type == RST_STREAM:
            self.rst_codes[frame.stream_id] = int.from_bytes(frame.payload[:4], "big")
        elif frame.type == HEADERS:
            payload = frame.payload
            if frame.flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if frame.flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._header_block = (frame.stream_id, bool(frame.flags & END_STREAM), bytearray())
            self._header_fragment(payload, frame.flags)
        elif frame.type == CONTINUATION:
            self._header_fragment(frame.payload, frame.flags)
        elif frame.type == DATA:
            request = self.requests.get(frame.stream_id)
            if request is not None:
                request.body += frame.payload
                request.ended = bool(frame.flags & END_STREAM)

    def _header_fragment(self, fragment: bytes, flags: int) -> None:
        assert self._header_block is not None, "CONTINUATION without HEADERS from the client"
        stream_id, ended, block = self._header_block
        block += fragment
        if not flags & END_HEADERS:
            return
        self._header_block = None
        headers = [(bytes(n), bytes(v)) for n, v in self.decoder.decode(bytes(block), raw=True)]
        if stream_id in self.requests:  # trailers
            self.requests[stream_id].ended = True
        else:
            self.requests[stream_id] = ClientRequest(stream_id, headers, ended=ended)

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Read the preface and send the server's SETTINGS (``settings``, none by default)."""
        self.read_preface()
        frame = SettingsFrame(0)
        frame.settings = dict(settings or {})
        self.send(frame)

    def start(self, settings: dict[int, int] | None = None) -> int:
        """The normal beginning: preface, SETTINGS, then wait until
        :attr:`expected_requests` requests have arrived; return the first one's stream id
        (the others stay for :meth:`next_request` or :meth:`serve_rest`)."""
        self.handshake(settings)
        stream_id = self.next_request()
        if not self.wait_for(lambda: len(self.requests) >= self.expected_requests):
            raise AssertionError(f"{self.expected_requests} requests expected, not all came")
        return stream_id

    def next_request(self, timeout: float | None = None) -> int:
        """Wait for the next request's HEADERS not handed out yet; return its stream id."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for stream_id in sorted(self.requests):
                if stream_id not in self.taken:
                    self.taken.append(stream_id)
                    return stream_id
            if self.read_frame(max(deadline - time.monotonic(), 0.0)) is None:
                raise PeerGone("the client closed before sending a request")

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read frames until ``predicate()`` holds; False on EOF or timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                if self.read_frame(remaining) is None:
                    return predicate()
            except TimeoutError:
                return False
        return True

    def wait_state(self, predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT) -> bool:
        """From *another* thread (the test's) while the scenario's thread reads: wait until
        ``predicate()`` holds, without touching the socket."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def sync(self, payload: bytes = b"syncsync", timeout: float | None = None) -> bool:
        """PING the client and wait for the ACK: everything sent before it was processed."""
        self.send(frame_bytes(PING, 0, 0, payload))
        return self.wait_for(lambda: self.last_ping_ack == payload, timeout)

    # -- writing ----------------------------------------------------------------------------------

    def send(self, *items: bytes | bytearray | memoryview | Frame) -> None:
        """Send frames (hyperframe objects) or raw bytes, in order, in one write."""
        data = b"".join(
            item.serialize() if isinstance(item, Frame) else bytes(item) for item in items
        )
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def encode(self, headers: Iterable[tuple[bytes, bytes]], *, huffman: bool = True) -> bytes:
        """HPACK-encode ``headers`` with the connection's encoder (its table stays in step)."""
        return bytes(self.encoder.encode(list(headers), huffman=huffman))

    def headers_frame(
        self,
        stream_id: int,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        end_stream: bool = False,
        end_headers: bool = True,
    ) -> HeadersFrame:
        """A HEADERS frame carrying ``headers`` as given (no checks at all)."""
        frame = HeadersFrame(stream_id, data=self.encode(headers))
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers:
            frame.flags.add("END_HEADERS")
        return frame

    def respond(
        self,
        stream_id: int,
        body: bytes = b"ok",
        *,
        status: bytes = b"200",
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """A complete, valid response: HEADERS then one DATA frame with END_STREAM."""
        data = DataFrame(stream_id, data=body)
        data.flags.add("END_STREAM")
        self.send(self.headers_frame(stream_id, [(b":status", status), *headers]), data)
        if stream_id in self.requests:
            self.requests[stream_id].answered = True

    def goaway(self, error_code: int, last_stream_id: int = 0, debug: bytes = b"") -> None:
        """Send GOAWAY."""
        frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code)
        frame.additional_data = debug
        self.send(frame)

    def rst(self, stream_id: int, error_code: int) -> None:
        """Send RST_STREAM."""
        self.send(RstStreamFrame(stream_id, error_code=error_code))

    def flood(self, *pieces: bytes, timeout: float | None = None) -> None:
        """Send ``pieces`` (a flood built in advance; one piece may be passed many times, so
        a large flood needs no large buffer) while reading and booking whatever the client
        answers, so that neither side blocks on a full socket buffer."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.sock.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                for piece in pieces:
                    self._flood_piece(selector, memoryview(piece), deadline)
        finally:
            self.sock.setblocking(True)

    def _flood_piece(
        self, selector: selectors.BaseSelector, view: memoryview, deadline: float
    ) -> None:
        offset = 0
        while offset < len(view):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"flood stalled: {offset} of {len(view)} bytes sent in time")
            for _, events in selector.select(remaining):
                if events & selectors.EVENT_READ:
                    try:
                        received = self.sock.recv(_RECV)
                    except BlockingIOError:
                        received = None
                    except OSError:
                        received = b""
                    if received == b"":
                        self.eof_at = time.monotonic()
                        self.eof.set()
                        raise PeerGone(f"the client closed after {offset} flood bytes")
                    if received:
                        self.buffer += received
                        while (frame := self._pop()) is not None:
                            self._book_quietly(frame)
                if events & selectors.EVENT_WRITE:
                    try:
                        offset += self.sock.send(view[offset : offset + 256 * KiB])
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        raise PeerGone(f"the client went away: {exc}") from exc

    def _book_quietly(self, frame: RawFrame) -> None:
        """Book a frame read during a flood, without writing (the socket is mid-flood).
        The ACKs the client sends are counted; nothing here needs an answer but its
        SETTINGS, which it sent long before."""
        ack = self.auto_ack
        self.auto_ack = False
        try:
            self._book(frame)
        finally:
            self.auto_ack = ack

    # -- the rest of the connection ---------------------------------------------------------------

    def serve_rest(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """
        Answer every further complete request (those :meth:`next_request` did not hand out)
        with its path as the body, until the client closes the connection or goes quiet for
        ``timeout``. Unparseable input from the client is not expected: hyper only sends
        valid frames.
        """
        while not self.eof.is_set():
            for request in list(self.requests.values()):
                if request.ended and not request.answered and request.stream_id not in self.taken:
                    with contextlib.suppress(OSError):
                        self.respond(request.stream_id, request.path.lstrip(b"/"))
            try:
                if self.read_frame(timeout) is None:
                    return
            except TimeoutError:
                return


# -- running the client under bounds --------------------------------------------------------------


@dataclass
class Measured(Generic[T]):
    """What :func:`measure` saw: the result or the exception, the time, the memory peak."""

    result: T | None = None
    error: BaseException | None = None
    elapsed: float = 0.0
    peak: int = 0


@contextlib.contextmanager
def _traced() -> Iterator[Callable[[], int]]:
    """Trace allocations for the block; yield a function giving the peak above the start."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        yield lambda: tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if not already:
            tracemalloc.stop()


def measure(action: Callable[[], T]) -> Measured[T]:
    """Run ``action``; record its result or the exception it raised (any ``Exception``), the
    time it took and the peak of memory allocated meanwhile."""
    outcome: Measured[T] = Measured()
    gc.collect()  # garbage from earlier tests must not be freed (or counted) in the window
    with _traced() as peak:
        start = time.monotonic()
        try:
            outcome.result = action()
        except Exception as exc:
            outcome.error = exc
        outcome.elapsed = time.monotonic() - start
        outcome.peak = peak()
    return outcome


def assert_clear_message(exc: BaseException) -> None:
    """The message says something: not empty, not a frame's repr, not a wall of bytes."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert "Frame(" not in message, f"message is a frame repr: {message[:200]!r}"
    assert not message.startswith(("<", "b'", 'b"')), f"message is a bare repr: {message!r}"
    assert len(message) < 1000, f"message of {len(message)} characters"


def assert_raised(
    outcome: Measured[Any],
    expected: type[BaseException],
    *,
    seconds: float,
    memory: int,
) -> BaseException:
    """The action raised ``expected`` (a documented hyper exception, so a HyperError), with
    a clear message, within ``seconds`` and ``memory``. Returns the exception."""
    error = outcome.error
    assert error is not None, f"no exception (got {outcome.result!r:.200}); wanted {expected}"
    assert isinstance(error, expected), f"wanted {expected.__name__}, got {error!r:.300}"
    assert isinstance(error, HyperError), f"not a HyperError: {error!r:.300}"
    assert_clear_message(error)
    assert_bounds(outcome, seconds=seconds, memory=memory)
    return error


def assert_bounds(outcome: Measured[Any], *, seconds: float, memory: int) -> None:
    """The action took under ``seconds`` and allocated under ``memory`` bytes at its peak."""
    assert outcome.elapsed < seconds, f"took {outcome.elapsed:.2f}s, bound {seconds}s"
    assert outcome.peak < memory, (
        f"peak {outcome.peak / MiB:.1f} MiB allocated, bound {memory / MiB:.1f} MiB"
    )
