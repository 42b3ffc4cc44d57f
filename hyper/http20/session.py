"""
A :class:`Session`: one socket and the h2 state machine on it, with the reader role.

An :class:`~hyper.HTTP20Connection` runs on one session at a time. When the server sends a
graceful GOAWAY, or the stream ids run out, the connection opens a new session for new
requests while the old one *drains*: the streams the server accepted there finish on it, and it
is closed when the last one does. Every session of a connection shares the connection's lock.

Threading model (no thread of hyper's own):

* The connection's lock guards every session's h2 state, the stream tables and every write;
  its condition wakes threads waiting for something to arrive.
* At most one thread reads a session's socket at a time (:attr:`Session.reader_active`). A
  thread that needs data that is not buffered yet becomes the reader if nobody is: it waits for
  the socket *without* the lock, then, under the lock, reads what is there (never waiting for
  more), feeds h2, files every event under its stream, sends whatever h2 wants sent (ACKs,
  WINDOW_UPDATEs) and wakes the waiters.

Errors from h2 and hpack raised while receiving are translated here into hyper's exceptions,
with the original chained.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import h2.stream
import h2.utilities
import hpack.exceptions
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)

from ..common.bufsocket import BufferedSocket
from ..common.exceptions import ConnectionClosed, HyperError, ReadTimeout
from .exceptions import ConnectionError, HPACKDecodingError, HTTP20Error, ProtocolError
from .header_cache import CachingDecoder, CachingEncoder, HeaderBlockError
from .legacy_stream import Stream
from .validation import (
    MalformedHeaders,
    check_informational,
    check_pushed_request,
    check_response,
    check_trailers,
)
from .window import BaseFlowControlManager

if TYPE_CHECKING:
    from .connection import HTTP20Connection

log = logging.getLogger("hyper.http20.connection")

#: The most pushed responses held for get_pushes() before further pushes are refused.
MAX_BUFFERED_PUSHES = 100


def _short_repr(frame: Any) -> str:
    return (
        f"{frame.__class__.__bases__[0].__name__}(stream_id={frame.stream_id}, "
        f"flags={sorted(frame.flags)}, length={len(frame.data)})"
    )


# h2 formats every received frame for its trace log, even with logging off, and hyperframe's
# repr hex-encodes the payload or header block before truncating it: about a tenth of the
# time of a bulk download, and a few percent of every response. The frame buffer hands out
# these subclasses instead, whose repr only gives the length.


class _DataFrame(DataFrame):
    """A DATA frame with a cheap ``repr``."""

    __repr__ = _short_repr


class _HeadersFrame(HeadersFrame):
    """A HEADERS frame with a cheap ``repr``."""

    __repr__ = _short_repr


class _ContinuationFrame(ContinuationFrame):
    """A CONTINUATION frame with a cheap ``repr``."""

    __repr__ = _short_repr


class _PushPromiseFrame(PushPromiseFrame):
    """A PUSH_PROMISE frame with a cheap ``repr``."""

    __repr__ = _short_repr


_CHEAP_REPR: dict[type, type] = {
    DataFrame: _DataFrame,
    HeadersFrame: _HeadersFrame,
    ContinuationFrame: _ContinuationFrame,
    PushPromiseFrame: _PushPromiseFrame,
}


class _FrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, handing out frames whose ``repr`` is cheap (see ``_CHEAP_REPR``)."""

    def idle(self) -> bool:
        """Whether no partial frame and no unfinished header block is buffered."""
        return not self.pending() and not self._headers_buffer

    def pending(self) -> bytes | bytearray:
        """The bytes of a partial frame waiting for the rest."""
        # The attribute is private to h2 and was renamed in 4.2.
        data = getattr(self, "_data", None) or getattr(self, "data", None)
        return data if isinstance(data, (bytes, bytearray)) else b""

    #: The largest header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs) accepted, in
    #: encoded bytes. HPACK's limit on the decoded list applies only once the block is whole;
    #: this bounds what is buffered before that. Huffman coding can make a field up to about
    #: four times longer than its text, hence the margin over the advertised list size.
    max_header_block = 4 * 64 * 1024

    def _update_header_buffer(self, frame: Any) -> Any:
        result = super()._update_header_buffer(frame)
        pending = self._headers_buffer
        if pending:
            size = sum(len(part.data) for part in pending)
        elif isinstance(result, (HeadersFrame, PushPromiseFrame)):
            size = len(result.data)  # a whole block (its CONTINUATIONs already joined)
        else:
            return result
        if size > self.max_header_block:
            raise HeaderBlockError(f"a header block of over {self.max_header_block} bytes")
        return result

    def __next__(self) -> Any:
        frame = super().__next__()
        cheap = _CHEAP_REPR.get(frame.__class__)
        if cheap is not None:
            frame.__class__ = cheap
        return frame


#: h2's table of streams is scanned (and its closed streams dropped) once it holds this
#: many, or twice as many as after the previous scan.
_STREAM_SCAN_MINIMUM = 64

#: A read this large suggests a bulk transfer: the next read is tried before polling.
_STREAMING_READ = 16 * 1024

#: Frame types HEADERS and CONTINUATION, and the END_STREAM and END_HEADERS flags.
_HEADERS = 0x1
_CONTINUATION = 0x9
_END_STREAM = 0x1
_END_HEADERS = 0x4

#: Frame type DATA, and the PADDED and PRIORITY flags.
_DATA = 0x0
_PADDED = 0x8
_PRIORITY = 0x20
#: The frame types whose END_STREAM flag ends a stream.
_ENDS_STREAMS = frozenset({_DATA, _HEADERS})
#: The type and flags bytes of a DATA frame without END_STREAM or padding.
_DATA_NO_FLAGS = b"\x00\x00"
#: Stream states in which sending DATA (without END_STREAM) changes nothing but counters.
_SENDING_STATES = frozenset({h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_REMOTE})
#: Stream states in which a DATA frame changes nothing but counters (and END_STREAM only
#: the stream's state).
_BODY_STATES = frozenset({h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_LOCAL})


def _header_frames(stream_id: int, block: bytes, end_stream: bool, max_size: int) -> bytes:
    """A HEADERS frame carrying ``block``, split into CONTINUATIONs beyond ``max_size``."""
    sid = stream_id.to_bytes(4, "big")
    if len(block) <= max_size:
        flags = _END_HEADERS | (_END_STREAM if end_stream else 0)
        return len(block).to_bytes(3, "big") + bytes((_HEADERS, flags)) + sid + block
    pieces = [block[i : i + max_size] for i in range(0, len(block), max_size)]
    out = bytearray()
    for index, piece in enumerate(pieces):
        kind = _HEADERS if index == 0 else _CONTINUATION
        flags = (_END_STREAM if end_stream and index == 0 else 0) | (
            _END_HEADERS if index == len(pieces) - 1 else 0
        )
        out += len(piece).to_bytes(3, "big") + bytes((kind, flags)) + sid + piece
    return bytes(out)


def _may_take_short_path(kind: int, flags: int) -> bool:
    """Whether a frame of this type and flags may take the short path (see
    ``Session._receive_short_frames_locked``): a DATA frame without padding, or a whole
    header block in one HEADERS frame without padding or priority."""
    if kind == _DATA:
        return not flags & _PADDED
    return kind == _HEADERS and flags & (_END_HEADERS | _PADDED | _PRIORITY) == _END_HEADERS


#: ``_SHORT_PATH[kind * 256 + flags]`` is 1 for the frame types (DATA 0 and HEADERS 1, the
#: only ones that may) and flags that may take the short path: one lookup per frame.
_SHORT_PATH = bytes(
    _may_take_short_path(kind, flags) for kind in (_DATA, _HEADERS) for flags in range(256)
)
#: A frame header: the length's high byte and low 16 bits, type, flags, stream id (with the
#: reserved bit).
_FRAME_HEADER = struct.Struct(">BHBBL")


def _h2_span(view: memoryview) -> int:
    """
    How much of ``view`` (starting at a frame boundary) to give h2 in one call: its first
    frame, and the whole frames after it up to the first that may take the short path or that
    has not fully arrived, and no further than a frame that ends a stream. 0 when the first
    frame itself is incomplete.

    h2 drops the events of a whole call when one frame in it is an error, so a span that
    ends where a response does keeps that response from being lost to a bad frame after it.
    """
    end = len(view)
    pos = 0
    while end - pos >= 9:
        following = pos + 9 + int.from_bytes(view[pos : pos + 3], "big")
        if following > end:
            return pos
        if end - following < 9:
            return following
        if view[pos + 3] in _ENDS_STREAMS and view[pos + 4] & _END_STREAM:
            return following
        if _may_take_short_path(view[following + 3], view[following + 4]):
            return following
        pos = following
    return pos


def _held_frame_fits(view: memoryview, max_size: int, buffer_size: int) -> bool:
    """Whether the frame starting ``view`` may wait in the socket buffer: it is within the
    size limit (an oversized one goes to h2 at once, to be refused) and fits half the buffer."""
    length = int.from_bytes(view[:3], "big")
    return length <= max_size and 9 + length <= buffer_size // 2


def _rest_of_frame(pending: bytes | bytearray, view: memoryview) -> int:
    """How many bytes of ``view`` complete the partial frame ``pending`` (at most all)."""
    have = len(pending)
    if have < 9:
        header = bytes(pending) + view[: 9 - have].tobytes()
        if len(header) < 9:
            return len(view)
    else:
        header = bytes(pending[:9])
    needed = 9 + int.from_bytes(header[:3], "big") - have
    return min(max(needed, 0), len(view))


class _ResponseFacts:
    """What the short path needs to know of a remembered response header block: that it is
    a valid final response without ``cookie`` fields, and its Content-Length."""

    __slots__ = ("content_length",)

    def __init__(self, content_length: int | None) -> None:
        self.content_length = content_length


#: The facts of a block that must go through h2 (informational, malformed, cookies, an
#: unreadable or conflicting Content-Length): h2 and the event handlers deal with it there.
_NOT_SHORT = _ResponseFacts(None)


def _response_facts(headers: list[Any]) -> _ResponseFacts:
    """Work out the :class:`_ResponseFacts` of a decoded response header block."""
    if not headers or headers[0][0] != b":status" or headers[0][1][:1] == b"1":
        return _NOT_SHORT  # informational responses have their own path in h2
    try:
        check_response(headers)
    except MalformedHeaders:
        return _NOT_SHORT
    length: int | None = None
    for name, value in headers:
        if name == b"cookie":
            return _NOT_SHORT  # h2 joins cookie fields
        if name == b"content-length":
            # h2's rule (_initialize_content_length): digits only, repeats must agree.
            if not value.isdigit() or (length is not None and int(value) != length):
                return _NOT_SHORT
            length = int(value)
    return _ResponseFacts(length)


class _PushDecidedByHyper(h2.settings.Settings):
    """
    Local settings whose ``enable_push`` h2 always reads as on. h2 treats a PUSH_PROMISE on a
    connection that disabled push as a connection error; hyper instead lets h2 accept the
    promise and refuses the stream itself (REFUSED_STREAM), which keeps the connection, and
    lets h2 ignore the frames the server already sent on it. The ENABLE_PUSH value sent in
    SETTINGS is unaffected: it is written from the stored setting, not this property.
    """

    @property  # type: ignore[misc]
    def enable_push(self) -> int:
        return 1


class _H2Connection(h2.connection.H2Connection):
    """
    h2's connection with two behaviours changed where h2 departs from RFC 9113:

    * After a GOAWAY, h2 closes its state machine, so any later frame (the rest of a response
      the server accepted before a graceful GOAWAY, or whatever follows an error GOAWAY in the
      same read) becomes a protocol error and the GOAWAY event itself is lost. Here the state
      machine stays open; hyper stops opening streams after a GOAWAY, and ends the connection
      itself after an error GOAWAY (section 6.8).
    * DATA arriving on a stream hyper reset makes h2 answer each frame with another
      RST_STREAM. Frames in flight when the reset was sent are expected and must be ignored
      (section 5.1); a flood of resets makes servers drop the connection. Here they are
      ignored, and their bytes are left for hyper's connection window manager to credit
      (:attr:`closed_stream_bytes`) instead of h2's own.
    """

    #: DATA bytes received on closed streams since hyper last took the count.
    closed_stream_bytes = 0
    #: hyper's HPACK decoder (set in __init__), whose memory the short path consults.
    decoder: CachingDecoder

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        # HPACK that remembers the blocks of repeated header lists (see header_cache).
        self.encoder = CachingEncoder()
        self.decoder = CachingDecoder(max_header_list_size=self.decoder.max_header_list_size)
        self.local_settings.__class__ = _PushDecidedByHyper
        self.incoming_buffer: _FrameBuffer = _FrameBuffer(server=False)
        for original, cheap in _CHEAP_REPR.items():
            self._frame_dispatch_table[cheap] = self._frame_dispatch_table[original]
        #: When h2 next scans its streams (see open_outbound_streams).
        self._scan_streams_at = _STREAM_SCAN_MINIMUM

    def send_headers(
        self,
        stream_id: int,
        headers: Any,
        end_stream: bool = False,
        priority_weight: int | None = None,
        priority_depends_on: int | None = None,
        priority_exclusive: bool | None = None,
    ) -> None:
        """
        Send a request's headers. For a new stream without priority information (every
        request hyper makes), this does what h2 does (the same state transitions, the same
        stream bookkeeping, the same HPACK encoding) but writes the HEADERS frame (and any
        CONTINUATIONs) as bytes, without building frame objects: about a fifth of the cost
        of a small request. Anything else goes to h2 unchanged.
        """
        if (
            stream_id in self.streams
            or priority_weight is not None
            or priority_depends_on is not None
            or priority_exclusive is not None
            or type(headers) is not list
            or self.open_outbound_streams + 1 > self.remote_settings.max_concurrent_streams
        ):
            super().send_headers(
                stream_id,
                headers,
                end_stream,
                priority_weight=priority_weight,
                priority_depends_on=priority_depends_on,
                priority_exclusive=priority_exclusive,
            )
            return
        self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_HEADERS)
        stream = self._begin_new_stream(stream_id, h2.connection.AllowedStreamIDs.ODD)
        stream.state_machine.process_input(h2.stream.StreamInputs.SEND_HEADERS)
        block = self.encoder.encode(headers)
        if end_stream:
            stream.state_machine.process_input(h2.stream.StreamInputs.SEND_END_STREAM)
        # What h2's stream records of a request (push checks, HEAD responses' length).
        stream._authority = h2.utilities.authority_from_headers(headers)
        stream.request_method = h2.utilities.extract_method_header(headers)
        max_size = stream.max_outbound_frame_size or self.max_outbound_frame_size
        self._data_to_send += _header_frames(stream_id, block, end_stream, max_size)

    @property
    def open_outbound_streams(self) -> int:
        """
        How many streams this client opened are still open, or an upper bound of it.

        h2 counts by looking at every stream it knows, dropping the closed ones as it goes:
        a scan of all streams for every request sent. Its only use here is the stream limit
        check when sending headers, which hyper has already made; there, an upper bound below
        the limit is as good as the count. The real count is taken when the bound reaches
        the limit, or the table has doubled since the last scan (so closed streams are still
        dropped, at a constant cost per stream).
        """
        known = len(self.streams)
        if known < self._scan_streams_at and known < self.remote_settings.max_concurrent_streams:
            return known
        return self.exact_open_outbound_streams()

    def exact_open_outbound_streams(self) -> int:
        """How many streams this client opened are still open (h2's scan, closed ones dropped)."""
        count = int(super().open_outbound_streams)
        self._scan_streams_at = max(_STREAM_SCAN_MINIMUM, 2 * len(self.streams))
        return count

    def _receive_goaway_frame(self, frame: Any) -> Any:
        result = super()._receive_goaway_frame(frame)
        self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return result

    def _prepare_for_sending(self, frames: list[Frame]) -> None:
        # h2 answers any frame arriving on a stream hyper reset with RST_STREAM(STREAM_CLOSED).
        # Frames the server had in flight when our reset left are expected and must be
        # ignored (RFC 9113 5.1): drop those replies, whatever the frame type.
        kept = [
            f
            for f in frames
            if not (
                isinstance(f, RstStreamFrame)
                and f.error_code == h2.errors.ErrorCodes.STREAM_CLOSED
                and self._stream_closed_by(f.stream_id) == h2.stream.StreamClosedBy.SEND_RST_STREAM
            )
        ]
        super()._prepare_for_sending(kept)

    def _receive_push_promise_frame(self, frame: Any) -> Any:
        frames, events = super()._receive_push_promise_frame(frame)
        promised = frame.promised_stream_id
        if promised not in self.streams and any(
            isinstance(f, RstStreamFrame) and f.stream_id == promised for f in frames
        ):
            # A promise on a stream hyper had reset: h2 refuses it without recording the
            # promised stream, so its response (already on the way) would look like a new
            # request. Record it as reset by us: its frames are then ignored.
            self._closed_streams[promised] = h2.stream.StreamClosedBy.SEND_RST_STREAM
            self.highest_inbound_stream_id = max(self.highest_inbound_stream_id, promised)
        return frames, events

    def _handle_data_on_closed_stream(self, events: Any, exc: Any, frame: Any) -> Any:
        frames, new_events = super()._handle_data_on_closed_stream(events, exc, frame)
        self.closed_stream_bytes += frame.flow_controlled_length
        reset_by_us = self._stream_is_closed_by_reset(frame.stream_id)
        kept = []
        for f in frames:
            if isinstance(f, WindowUpdateFrame):
                # h2 counted this update as sent; since it is not, take it back.
                self._inbound_flow_control_window_manager.current_window_size -= f.window_increment
            elif not (reset_by_us and isinstance(f, RstStreamFrame)):
                kept.append(f)
        return kept, new_events


class ClosedByCaller(ConnectionClosed):
    """The caller closed the connection: its unanswered requests are not sent again."""


class _H2Logger:
    """Routes h2's debug and trace messages (received frames among them) to hyper's logger."""

    def debug(self, fmtstr: str, *args: Any) -> None:
        log.debug("h2: " + fmtstr, *args)

    def trace(self, fmtstr: str, *args: Any) -> None:
        log.debug("h2: " + fmtstr, *args)


class Session:
    """
    One socket of an :class:`~hyper.HTTP20Connection` and the h2 state on it.

    :param owner: the connection this session belongs to (its lock is shared).
    :param sock: the connected socket, HTTP/2 already negotiated.
    :param h2_conn: the h2 state machine, preface and settings already queued or sent.
    :param conn_manager: the window manager of the connection-level receive window.
    """

    def __init__(
        self,
        owner: HTTP20Connection,
        sock: BufferedSocket,
        h2_conn: _H2Connection,
        conn_manager: BaseFlowControlManager,
    ) -> None:
        self.owner = owner
        self.cond = owner._cond
        #: The lock of ``cond``: entered directly where the condition's own methods are not
        #: needed, which skips a Python call.
        self.lock = owner._lock
        self.sock: BufferedSocket | None = sock
        self.h2: _H2Connection | None = h2_conn
        #: Why the socket can no longer be used (None while it can).
        self.error: HyperError | None = None
        #: The GOAWAY the server sent, if any: no new streams go on this session then.
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.reader_active = False
        #: The latest read was large (a bulk transfer): the next one is tried before polling,
        #: even in a new read_until() call (a caller reading a body in pieces makes many).
        self.streaming = False
        #: Streams h2 may still deliver events for.
        self.streams: dict[int, Stream] = {}
        #: Streams that may hold views into the socket's buffer (see _data_locked), by id; a
        #: stream leaves when it is reclaimed, read to its end or closed (release_views_locked).
        self.view_holders: dict[int, Stream] = {}
        self.conn_manager = conn_manager
        #: Frames queued by queue_body_locked, written by the next flush_locked.
        self.outgoing: list[bytes | memoryview] = []
        #: Window to give back to the server at the end of this read.
        self.conn_credit = 0
        #: DATA bytes received in this read, not yet reported to the window manager.
        self.conn_received = 0
        self.preface_seen = False
        #: The names the server's certificate covers (for push checks), once looked up.
        self.peer_names: frozenset[str] | None = None
        #: Whether the server's first SETTINGS have been processed: until then its stream
        #: limit is unknown.
        self.settings_received = False
        #: No new streams go on this session any more (set aside by the connection).
        self.retired = False
        self.debug = log.isEnabledFor(logging.DEBUG)
        self.dispatch: dict[type, Callable[[Any], None]] = {
            h2.events.ResponseReceived: self._on_response,
            h2.events.InformationalResponseReceived: self._on_informational,
            h2.events.DataReceived: self._on_data,
            h2.events.TrailersReceived: self._on_trailers,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_stream_reset,
            h2.events.PushedStreamReceived: self._on_push,
            h2.events.ConnectionTerminated: self._on_goaway,
            h2.events.PingAckReceived: self._on_ping_ack,
            h2.events.RemoteSettingsChanged: self._on_settings,
        }

    def __repr__(self) -> str:
        state = "usable" if self.usable() else ("alive" if self.alive() else "closed")
        return f"<Session {state} streams={len(self.streams)}>"

    # -- state ------------------------------------------------------------------------------------

    def alive(self) -> bool:
        """The socket is open and has not failed (its streams can still progress)."""
        return self.sock is not None and self.error is None

    def usable(self) -> bool:
        """New streams may be opened on this session."""
        return (
            self.sock is not None
            and self.error is None
            and self.goaway is None
            and not self.retired
        )

    def unfinished_streams(self) -> bool:
        """Whether any stream on this session still expects data."""
        return any(not s.finished for s in self.streams.values())

    def raise_if_dead_locked(self) -> None:
        """Raise why the session can no longer be read or written, if it cannot."""
        if self.error is not None:
            raise self.error
        if self.sock is None:
            raise ConnectionClosed("the connection is closed")

    # -- the reader role --------------------------------------------------------------------------

    def read_until(self, ready: Callable[[], bool]) -> None:
        """
        Read and process frames until ``ready()`` is true. Call without holding the lock;
        ``ready`` is evaluated with the lock held.
        """
        cond = self.cond
        lock = self.lock
        timeout = self.owner._read_timeout
        while True:
            with lock:
                if ready():
                    return
                self.raise_if_dead_locked()
                if self.reader_active:
                    if not cond.wait(timeout):
                        raise ReadTimeout("timed out waiting for the server")
                    continue
                self.reader_active = True
                sock = self.sock
                assert sock is not None
            try:
                # Wait for data without the lock (another thread may wake us: it closed a
                # stream we wait for), then read what is there without waiting, under the
                # lock: OpenSSL must not read and write one connection at the same time, and
                # a partial TLS record just means waiting again. Keep the reader role until
                # our own data is here, waking the others after every read.
                # After a large read more is usually on its way: try reading before polling.
                streaming = self.streaming
                while True:
                    if not streaming:
                        sock.wait_readable(timeout)
                    with lock:
                        if self.sock is not sock:
                            break
                        # Several streams waiting: their responses may all be here.
                        data = sock.recv_nowait(gather=streaming or len(self.streams) > 1)
                        streaming = self.streaming = (
                            data is not None and len(data) >= _STREAMING_READ
                        )
                        if data is not None:
                            self._process_locked(data)
                            cond.notify_all()
                        if ready():
                            break
            except ReadTimeout:
                raise
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
        except HyperError as exc:
            self.fail_locked(exc)
            return
        if data is not None:
            try:
                self._process_locked(data)
            except HyperError:
                return  # recorded in self.error; the caller opens a new session

    def _process_locked(self, data: memoryview) -> None:
        if not data:
            error = ConnectionClosed("the server closed the connection")
            self.fail_locked(error)
            raise error
        self._receive_locked(data)

    def _receive_locked(self, data: memoryview) -> None:
        conn = self.h2
        sock = self.sock
        assert conn is not None and sock is not None
        if not self.preface_seen:
            self._check_server_preface(data)
        buffer = conn.incoming_buffer
        view = data
        while view:
            pending = buffer.pending()
            if pending:
                # h2 holds the start of a frame: give it exactly the rest of that frame.
                cut = _rest_of_frame(pending, view)
            else:
                if self.preface_seen and not buffer._headers_buffer:
                    # Plain DATA frames of a body in progress, and response headers whose
                    # block is known, take the short path; everything else goes through h2,
                    # in order.
                    taken = self._receive_short_frames_locked(conn, view)
                    if taken:
                        if self.error is not None:
                            return  # a stream's end closed a draining session
                        view = view[taken:]
                        if not view:
                            break
                cut = _h2_span(view)
                if not cut:
                    # Only the start of a frame has arrived. Leave it in the socket's buffer
                    # rather than have h2 copy it aside (the whole frame may then take the
                    # short path), if the frame will fit there; h2 gets a larger frame, and
                    # refuses one over the size limit as soon as its header is here.
                    if not sock.at_eof and (
                        len(view) < 9
                        or _held_frame_fits(view, conn.max_inbound_frame_size, sock.buffer_size)
                    ):
                        sock.unread(len(view))
                        break
                    cut = len(view)
            self._feed_h2_locked(conn, view[:cut])
            if self.error is not None:
                return  # a GOAWAY with an error: nothing more to read or send
            view = view[cut:]
        if self.conn_received:
            self.conn_credit += self.conn_manager.account(self.conn_received)
            self.conn_received = 0
        if self.conn_credit:
            conn.increment_flow_control_window(self.conn_credit)
            self.conn_credit = 0
        self.flush_locked()

    def _feed_h2_locked(self, conn: _H2Connection, data: memoryview) -> None:
        """Give ``data`` to h2 and handle the events it yields."""
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            error = _translate_protocol_error(exc)
            self.abort_locked(error)
            raise error from exc
        self._check_pending_frame(conn)
        if conn.closed_stream_bytes:
            # DATA the server had in flight for streams hyper reset: it still used up the
            # connection window, and is reported with the rest at the end of this read.
            self.conn_received += conn.closed_stream_bytes
            conn.closed_stream_bytes = 0
        dispatch = self.dispatch
        try:
            for event in events:
                if self.error is not None:
                    break  # an error GOAWAY ended the connection: the rest is moot
                handler = dispatch.get(type(event))
                if handler is not None:
                    handler(event)
                elif self.debug:
                    log.debug("ignored event %r", event)
        except HyperError:
            raise
        except Exception as exc:  # h2 refusing a reply, or a bug: never let it escape bare
            error = HTTP20Error(f"error while handling a frame from the server: {exc!r}")
            self.abort_locked(error)
            raise error from exc

    def _receive_short_frames_locked(self, conn: _H2Connection, view: memoryview) -> int:
        """
        Take the whole frames at the start of ``view`` that need nothing from h2 but
        bookkeeping, and return how many bytes they spanned.

        h2 parses every frame into objects, copies a DATA payload three times, runs two state
        machines and a pipeline of generators over every header block; for the frames of a
        body that is most of a download's cost, and for a small response's HEADERS and DATA
        most of the cost of receiving it. Two kinds of frame qualify, and only when nothing
        about them can be an error:

        * DATA without padding, on a stream that is open with its response headers received,
          with room in both receive windows, within the announced Content-Length (exactly at
          it when the frame ends the stream);
        * a final response's HEADERS, the whole block in one frame without padding or
          priority, on a stream waiting for its response, when the block is one the HPACK
          decoder remembers for its table as it is (so decoding it changes nothing) and holds
          no ``cookie`` field (h2 would join those).

        h2's windows, length count and state machines are updated exactly as its own path
        would. Any other frame stops the scan and goes to h2, which then also raises whatever
        error the frame deserves.
        """
        streams = conn.streams
        conn_window = conn._inbound_flow_control_window_manager
        max_size = conn.max_inbound_frame_size
        end = len(view)
        pos = 0
        unpack_header = _FRAME_HEADER.unpack_from
        while end - pos >= 9:
            high, low, kind, flags, stream_id = unpack_header(view, pos)
            if kind > _HEADERS or not _SHORT_PATH[kind << 8 | flags]:
                break
            length = high << 16 | low
            body = pos + 9
            if length > max_size or end - body < length:
                break
            stream_id &= 0x7FFFFFFF
            h2_stream = streams.get(stream_id)
            if h2_stream is None:
                break
            machine = h2_stream.state_machine
            if machine.state not in _BODY_STATES:
                break
            end_stream = flags & _END_STREAM
            if kind == _HEADERS:
                if not self._response_headers_locked(
                    conn, h2_stream, view[body : body + length], end_stream
                ):
                    break
                pos = body + length
                if self.error is not None:
                    break  # the response ended a draining session
                continue
            if not machine.headers_received:
                break
            stream_window = h2_stream._inbound_window_manager
            if length > stream_window.current_window_size:
                break
            if length > conn_window.current_window_size:
                break
            received = h2_stream._actual_content_length + length
            expected = h2_stream._expected_content_length
            if expected is not None and (
                received > expected or (end_stream and received != expected)
            ):
                break  # h2 raises the error this deserves
            conn_window.current_window_size -= length
            stream_window.current_window_size -= length
            h2_stream._actual_content_length = received
            if self.debug:
                # In the format h2 logs the frames it parses.
                log.debug(
                    "h2: Received frame: DataFrame(stream_id=%d, flags=%s, length=%d)",
                    stream_id,
                    "['END_STREAM']" if end_stream else "[]",
                    length,
                )
            self._data_locked(stream_id, view[body : body + length], length)
            pos = body + length
            if end_stream:
                # The end of the body: h2's state machine makes the transition (and records
                # how the stream closed) as its own receive path would.
                self._stream_ended_locked(machine)
                if self.error is not None:
                    break  # that ended a draining session
        return pos

    def _response_headers_locked(
        self, conn: _H2Connection, h2_stream: Any, block: memoryview, end_stream: int
    ) -> bool:
        """
        The short path of a final response's HEADERS frame (see
        :meth:`_receive_short_frames_locked`): False, having changed nothing, when the frame
        must go to h2 instead.
        """
        machine = h2_stream.state_machine
        if (
            machine.headers_received
            or conn.state_machine.state is not h2.connection.ConnectionState.CLIENT_OPEN
        ):
            return False  # trailers, or a connection h2 no longer receives on
        remembered = conn.decoder.cached(block)
        if remembered is None:
            return False
        facts = remembered.facts
        if facts is None:
            facts = remembered.facts = _response_facts(remembered.headers)
        if facts is _NOT_SHORT:
            return False
        stream_id = h2_stream.stream_id
        if self.debug:
            log.debug(
                "h2: Received frame: HeadersFrame(stream_id=%d, flags=%s, length=%d)",
                stream_id,
                "['END_HEADERS', 'END_STREAM']" if end_stream else "['END_HEADERS']",
                len(block),
            )
        # The connection's state machine has nothing to do (CLIENT_OPEN stays CLIENT_OPEN on
        # received headers); the stream's records the response.
        machine.process_input(h2.stream.StreamInputs.RECV_HEADERS)
        # What h2's _initialize_content_length sets, from the length checked in advance.
        h2_stream._expected_content_length = (
            0 if h2_stream.request_method == b"HEAD" else facts.content_length
        )
        self._response_locked(stream_id, list(remembered.headers), facts.content_length)
        if end_stream:
            # As h2 dispatches them: the response, then the end of the stream.
            self._stream_ended_locked(machine)
        return True

    def _stream_ended_locked(self, machine: Any) -> None:
        """Run h2's state machine for a received END_STREAM, and file the event."""
        for event in machine.process_input(h2.stream.StreamInputs.RECV_END_STREAM):
            if isinstance(event, h2.events.StreamEnded):
                self._on_stream_ended(event)

    def _check_server_preface(self, data: memoryview) -> None:
        """
        The server's first frame must be SETTINGS; anything else is not HTTP/2 at all. With
        fewer than 5 bytes there is nothing to judge yet: they are given back to the socket
        buffer (see _receive_locked) and come again, with more, in the next read.
        """
        if len(data) < 5:
            return
        head = bytes(data[:40])
        if head[3] != 0x4 or head[4] & 0x1:
            error = ProtocolError(
                f"the server did not answer with HTTP/2; its first bytes were {head!r}",
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
            )
            self.abort_locked(error)
            raise error
        self.preface_seen = True

    def _check_pending_frame(self, conn: _H2Connection) -> None:
        """
        Reject an oversized frame as soon as its header arrives. h2 only checks the length
        once the whole frame is buffered, so a server announcing a 16 MB frame (or sending
        text that reads as one) would otherwise be waited for until the read timeout.
        """
        pending = conn.incoming_buffer.pending()
        if len(pending) >= 9:
            length = int.from_bytes(pending[:3], "big")
            if length > conn.max_inbound_frame_size:
                error = ProtocolError(
                    f"the server sent a frame of {length} bytes, over the "
                    f"{conn.max_inbound_frame_size} byte limit hyper set",
                    h2.errors.ErrorCodes.FRAME_SIZE_ERROR,
                )
                conn.close_connection(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
                self.abort_locked(error)
                raise error

    # -- writing ----------------------------------------------------------------------------------

    def flush_locked(self) -> None:
        """Send what h2 has queued (lock held); a failure fails the session."""
        conn, sock = self.h2, self.sock
        if conn is None or sock is None:
            return
        data = conn.data_to_send()
        outgoing = self.outgoing
        if outgoing:
            # Body frames queued by queue_body_locked, then whatever h2 queued after them:
            # one write for the whole burst.
            if data:
                outgoing.append(data)
            data = b"".join(outgoing)
            outgoing.clear()
        if data:
            try:
                self.sendall(sock, data)
            except HyperError as exc:
                self.fail_locked(exc)
                raise

    def queue_body_locked(self, stream_id: int, data: memoryview) -> bool:
        """
        Queue one DATA frame of ``data`` (without END_STREAM) for the next flush, without
        h2's frame objects: h2 builds a frame object per DATA frame and copies the payload
        three times on its way out, most of an upload's cost. Only a frame that changes
        nothing but the send windows qualifies: the stream open on our side, the frame within
        the peer's frame size and both windows. The windows are reduced as h2 would. Returns
        False, queuing nothing, when h2 must send it instead.
        """
        conn = self.h2
        if conn is None:
            return False
        h2_stream = conn.streams.get(stream_id)
        if h2_stream is None or h2_stream.state_machine.state not in _SENDING_STATES:
            return False
        size = len(data)
        if (
            size > conn.max_outbound_frame_size
            or size > h2_stream.outbound_flow_control_window
            or size > conn.outbound_flow_control_window
        ):
            return False
        pending = conn.data_to_send()
        if pending:
            self.outgoing.append(pending)  # keep h2's frames in order before ours
        h2_stream.outbound_flow_control_window -= size
        conn.outbound_flow_control_window -= size
        self.outgoing.append(
            size.to_bytes(3, "big") + _DATA_NO_FLAGS + stream_id.to_bytes(4, "big")
        )
        self.outgoing.append(data)
        return True

    def sendall(self, sock: BufferedSocket, data: bytes) -> None:
        """Write ``data``, logging its frames at DEBUG."""
        if self.debug:
            _log_frames(data)
        sock.sendall(data)

    def send_window(self, stream_id: int) -> int:
        """How much body data ``stream_id`` may send now (0 when closed)."""
        conn = self.h2
        if conn is None:
            return 0
        try:
            return int(conn.local_flow_control_window(stream_id))
        except h2.exceptions.StreamClosedError:
            return 0

    def consumed_locked(self, stream: Stream, size: int) -> None:
        """The caller took ``size`` bytes of ``stream``: let its window manager reopen."""
        if stream.finished or not self.alive():
            return
        increment = stream.window_manager.account(size)
        conn = self.h2
        if increment and conn is not None:
            try:
                conn.increment_flow_control_window(increment, stream.stream_id)
            except h2.exceptions.StreamClosedError:
                return
            self.flush_locked()

    def reset_locked(self, stream: Stream, code: int) -> None:
        """Send RST_STREAM for ``stream`` if h2 still considers it open."""
        conn = self.h2
        if conn is None:
            return
        try:
            conn.reset_stream(stream.stream_id, code)
            self.flush_locked()
        except h2.exceptions.H2Error:
            return  # already closed on h2's side: nothing to reset
        except HyperError:
            return  # the connection failed: the stream is gone either way
        if not stream.finished:
            stream.reset_code = code

    # -- ending -----------------------------------------------------------------------------------

    def abort_locked(self, error: HyperError) -> None:
        """End the session after a protocol error: send h2's GOAWAY if possible, close."""
        try:
            self.flush_locked()
        except HyperError:
            pass
        self.fail_locked(error)

    def fail_locked(self, error: HyperError) -> None:
        """The session is unusable: fail every unfinished stream and close the socket."""
        if self.error is None:
            self.error = error
        self.retire_locked()

    def retire_locked(self) -> None:
        """Close the socket, failing the streams still on it."""
        self.conn_credit = self.conn_received = 0
        self.outgoing.clear()
        if self.sock is None:
            return
        error = self.error or ConnectionClosed("the connection was closed")
        for stream in self.streams.values():
            if not stream.finished:
                stream.error = error
        self.streams.clear()
        self.owner._session_retired_locked(self, error)
        self.sock.close()
        self.sock = None
        self.h2 = None
        self.cond.notify_all()

    def close_locked(self, error_code: int, by_caller: bool = False) -> None:
        """
        Say GOAWAY (when still possible) and close. ``by_caller``: the caller asked for it
        (``close()``), so the requests still waiting are failed, never sent again.
        """
        sock, conn = self.sock, self.h2
        if sock is not None and conn is not None and self.error is None:
            try:
                conn.close_connection(error_code)
                self.sendall(sock, conn.data_to_send())
            except (HyperError, h2.exceptions.H2Error):
                pass  # the server may be gone already: closing is all that is left
        if self.error is None:
            self.error = (
                ClosedByCaller("the connection was closed by close()")
                if by_caller
                else ConnectionClosed("the connection was closed")
            )
        self.retire_locked()

    def drained_locked(self) -> None:
        """After a GOAWAY: close the session once its last stream is done."""
        if (
            (self.goaway is not None or self.retired)
            and self.owner._session is not self
            and not self.unfinished_streams()
        ):
            self.close_locked(0)

    # -- event handlers (lock held) ---------------------------------------------------------------

    def _malformed_locked(self, stream_id: int, problem: MalformedHeaders) -> None:
        """A malformed header block: fail its stream and reset it (RFC 9113 8.1.1)."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None and not stream.finished:
            stream.error = ProtocolError(
                f"the server sent a malformed response on stream {stream_id}: {problem}",
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
            )
        conn = self.h2
        if conn is not None:
            try:
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.StreamClosedError:
                pass  # it ended in the same frame: there is nothing left to stop
        self.drained_locked()

    def _on_informational(self, event: h2.events.InformationalResponseReceived) -> None:
        assert event.stream_id is not None and event.headers is not None
        try:
            check_informational(event.headers)
        except MalformedHeaders as problem:
            self._malformed_locked(event.stream_id, problem)

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        headers = event.headers
        assert headers is not None and event.stream_id is not None
        try:
            check_response(headers)
        except MalformedHeaders as problem:
            self._malformed_locked(event.stream_id, problem)
            return
        size = None
        for name, value in headers:
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    pass
                break
        self._response_locked(event.stream_id, headers, size)

    def _response_locked(self, stream_id: int, headers: list[Any], size: int | None) -> None:
        """File a final response's headers (checked) under their stream; ``size``: the
        Content-Length, if known."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.response_headers = headers
        stream.replay = None  # answered: the request will not be sent again
        if size is not None:
            stream.window_manager.document_size = size

    def _on_data(self, event: h2.events.DataReceived) -> None:
        assert event.stream_id is not None and event.data is not None
        self._data_locked(event.stream_id, event.data, event.flow_controlled_length or 0)

    def _data_locked(self, stream_id: int, data: bytes | memoryview, flow: int) -> None:
        """
        File ``data`` (``flow`` bytes of window, padding included) under its stream. A
        memoryview (into the socket's buffer) is kept as it is until the application reads
        it or the buffer space is about to be reused, whichever comes first: a body read as
        it arrives is then copied once, into what read() returns, instead of twice.
        """
        # The connection window manager hears of the received bytes once per socket read.
        self.conn_received += flow
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if data:
            stream.chunks.append(data)
            stream.buffered += len(data)
            if type(data) is memoryview and not stream.holds_views:
                stream.holds_views = True
                if not self.view_holders:
                    sock = self.sock
                    assert sock is not None
                    sock.keep_views(self._reclaim_views_locked)
                self.view_holders[stream_id] = stream
        elif not stream.chunks:
            # Keep empty frames visible to read_chunked(), as documented.
            stream.chunks.append(b"")
        padding = flow - len(data)
        if padding:
            self.consumed_locked(stream, padding)

    def _reclaim_views_locked(self) -> None:
        """The socket is about to reuse its buffer: copy out the views streams still hold."""
        for stream in self.view_holders.values():
            if stream.holds_views:
                stream.own_chunks()
        self.view_holders.clear()

    def release_views_locked(self, stream: Stream) -> None:
        """``stream`` holds no views any more (read to its end, or discarded): stop tracking
        it, so that a finished stream (and the request body it keeps for a resend) is not
        kept alive until the next reclaim."""
        if stream.holds_views and not stream.chunks:
            stream.holds_views = False
            self.view_holders.pop(stream.stream_id, None)

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        assert event.headers is not None
        try:
            check_trailers(event.headers)
        except MalformedHeaders as problem:
            # The stream has ended with these trailers: fail it, nothing is left to reset.
            stream.error = ProtocolError(
                f"the server sent malformed trailers on stream {event.stream_id}: {problem}",
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
            )
            return
        stream.trailers = event.headers

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        stream.remote_closed = True
        if not stream.buffered:
            del self.streams[event.stream_id]
        self.drained_locked()

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.pop(event.stream_id, None)
        if stream is None or stream.remote_closed:
            return  # a reset after a complete response changes nothing for the reader
        stream.reset_code = event.error_code
        stream.reset_by_peer = event.remote_reset
        if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM and event.remote_reset:
            # RFC 9113 8.7: refused before any processing, so safe to send again.
            stream.unprocessed = True
        self.drained_locked()

    def _on_push(self, event: h2.events.PushedStreamReceived) -> None:
        conn = self.h2
        assert conn is not None
        assert event.pushed_stream_id is not None and event.parent_stream_id is not None
        assert event.headers is not None
        try:
            check_pushed_request(event.headers)
        except MalformedHeaders as problem:
            if self.debug:
                log.debug("refused push %d: %s", event.pushed_stream_id, problem)
            try:
                conn.reset_stream(event.pushed_stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.StreamClosedError:
                pass
            return
        refusal = self.owner._push_refusal_locked(self, event.parent_stream_id, event.headers)
        if refusal is not None:
            if self.debug:
                log.debug("refused push %d: %s", event.pushed_stream_id, refusal)
            try:
                conn.reset_stream(event.pushed_stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            except h2.exceptions.StreamClosedError:
                pass  # its whole response came in the same read: it is over already
            return
        pushed = Stream(event.pushed_stream_id, self.owner, self.owner._new_stream_manager())
        pushed.session = self
        pushed.request_headers = list(event.headers)
        pushed.headers_sent = True
        pushed.local_closed = True
        self.streams[event.pushed_stream_id] = pushed
        self.owner._promises.setdefault(event.parent_stream_id, deque()).append(pushed)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.goaway = event
        last = event.last_stream_id if event.last_stream_id is not None else 0
        code = event.error_code
        if code:
            error: HyperError = ConnectionError(
                f"the server closed the connection with error {_code_name(code)}"
                + (f": {event.additional_data!r}" if event.additional_data else ""),
                code,
            )
            self.fail_locked(error)
            return
        unprocessed = ConnectionError(
            "the server is shutting the connection down (GOAWAY) and did not process this "
            "request; it is safe to send it again",
            code,
        )
        for stream_id, stream in list(self.streams.items()):
            if stream_id % 2 == 1 and stream_id > last and not stream.finished:
                # Never processed: the connection sends it again on a new session if it can.
                stream.error = unprocessed
                stream.unprocessed = True
                del self.streams[stream_id]
        self.drained_locked()

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self.settings_received = True

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        self.owner.last_ping_ack = event.ping_data


def _code_name(code: int) -> str:
    try:
        return f"{h2.errors.ErrorCodes(code).name} ({code})"
    except ValueError:
        return str(code)


def _translate_protocol_error(exc: h2.exceptions.ProtocolError) -> HyperError:
    """Map an h2 exception raised while receiving onto hyper's hierarchy."""
    cause = exc.__cause__ or exc.__context__
    code = getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR)
    if isinstance(exc, HeaderBlockError):
        return HPACKDecodingError(f"the server sent {exc}", code)
    if isinstance(cause, hpack.exceptions.HPACKError) or "header block" in str(exc):
        return HPACKDecodingError(f"the server sent an invalid header block: {exc}", code)
    if isinstance(exc, h2.exceptions.StreamClosedError):
        return ProtocolError(
            f"the server sent a frame on stream {exc.stream_id}, which is closed", code
        )
    if isinstance(exc, h2.exceptions.NoSuchStreamError):
        return ProtocolError(
            f"the server sent a frame on stream {exc.stream_id}, which was never opened", code
        )
    if isinstance(exc, h2.exceptions.DenialOfServiceError):
        return ProtocolError(f"the server exceeded a limit hyper sets: {exc}", code)
    return ProtocolError(f"the server broke the HTTP/2 protocol: {exc}", code)


def _log_frames(data: bytes) -> None:
    """Log every frame in ``data`` (whole frames, possibly after the client preface)."""
    view = memoryview(data)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    if view[: len(preface)] == preface:
        log.debug("send: connection preface")
        view = view[len(preface) :]
    while len(view) >= 9:
        frame, length = Frame.parse_frame_header(view[:9])
        if len(view) < 9 + length:
            break
        frame.parse_body(view[9 : 9 + length])
        log.debug("send: %r", frame)
        view = view[9 + length :]
