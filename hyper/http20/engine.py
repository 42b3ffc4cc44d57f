"""
:class:`Engine`: hyper's HTTP/2 client protocol, without I/O.

The engine is the whole of HTTP/2 as a client speaks it (RFC 9113, with HPACK from RFC 7541):
bytes in, bytes out, and the state in between. It reads no socket, takes no lock and calls
nothing above it: the transport (:mod:`hyper.http20.transport`) gives it what the server sent
(:meth:`Engine.receive_data`) and writes what it has queued (:meth:`Engine.data_to_send`).

What it owns:

* frame parsing and writing (:mod:`hyper.http20.frames`), and HPACK
  (:mod:`hyper.http20.header_cache`);
* the connection's and every stream's state (section 5.1), in
  :class:`~hyper.http20.stream.Stream` records, where it also files what arrives: response
  headers, body data, trailers, and how each stream ended;
* SETTINGS (one frame at the start), PING, GOAWAY and RST_STREAM;
* flow control both ways. The receive windows live in the window managers
  (:mod:`hyper.http20.window`) and nowhere else: a stream's window is its manager's
  ``window_size`` less the data still buffered, the connection's is its manager's;
* the policy for pushes it can decide alone (disabled push, malformed promises);
* checking received header blocks (:mod:`hyper.http20.validation`) and body lengths;
* classifying every failure: a connection error raises a :class:`~hyper.http20.exceptions.
  ProtocolError` (or :class:`~hyper.http20.exceptions.HPACKDecodingError`) after queuing
  GOAWAY; a stream error resets the stream and records why on it.

Receiving is one pass over each buffer given, frame by frame, in place: a DATA frame costs a
few comparisons and one copy of its payload (into the stream's buffer, or straight into the
result of a whole-body read), and no object of its own.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable

import hpack

from ..common import trace
from ..common.exceptions import HyperError
from ..common.trace import Timings, Tracer
from .errors import ErrorCodes, SettingCodes, code_name
from .events import Event, GoAwayReceived, PingAcknowledged, PushPromised
from .exceptions import (
    ConnectionError,
    HPACKDecodingError,
    HPACKEncodingError,
    HTTP20Error,
    ProtocolError,
)
from .framelog import log_header_block
from .frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FRAME_HEADER,
    GOAWAY,
    HEADERS,
    MAX_WINDOW,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    STREAM_ID_MASK,
    WINDOW_UPDATE,
    data_header,
    describe,
    goaway_frame,
    header_frames,
    ping_frame,
    rst_stream_frame,
    settings_ack,
    settings_frame,
    settings_payload,
    window_update_frame,
)
from .header_cache import CachingDecoder, CachingEncoder, RememberedBlock
from .stream import HeaderList, Stream
from .validation import (
    MalformedHeaders,
    check_pushed_request,
    check_response,
    check_trailers,
)
from .window import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    BaseFlowControlManager,
    FlowControlManager,
)

__all__ = [
    "DEFAULT_MAX_CONCURRENT_PUSHES",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "MAX_HEADER_BLOCK",
    "Engine",
]

log = logging.getLogger("hyper.http20")

#: The largest frame payload hyper accepts (SETTINGS_MAX_FRAME_SIZE): fewer, larger frames
#: on bulk downloads.
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024
#: The largest response header list hyper accepts (SETTINGS_MAX_HEADER_LIST_SIZE).
DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024
#: The most pushed streams the server may have open at once, when push is enabled
#: (SETTINGS_MAX_CONCURRENT_STREAMS).
DEFAULT_MAX_CONCURRENT_PUSHES = 100
#: The largest header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs) accepted, in
#: encoded bytes. HPACK's limit on the decoded list applies once a block is whole; this one
#: bounds what is buffered until then. Huffman coding can make a field up to about four times
#: longer than its text, hence the margin over the header list size.
MAX_HEADER_BLOCK = 4 * DEFAULT_MAX_HEADER_LIST_SIZE
#: How many closed streams the engine remembers, to tell a late frame on a stream it reset
#: (ignored) from a frame on a stream that ended (an error). Older ones are forgotten, and
#: frames on them ignored.
CLOSED_STREAMS_REMEMBERED = 2**16

#: The names of the frame types, for messages.
_FRAME_NAMES = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    CONTINUATION: "CONTINUATION",
}
#: The frame types that belong to the connection (stream 0); the others (but WINDOW_UPDATE,
#: which may be on either) belong to a stream.
_CONNECTION_FRAMES = frozenset({SETTINGS, PING, GOAWAY})

#: How a remembered stream was closed.
_ENDED = 0  # both sides sent END_STREAM
_RESET_SENT = 1  # hyper reset it: late frames are expected, and ignored (section 5.1)
_RESET_RECEIVED = 2  # the server reset it: a later frame is a stream error
_RESET_ANSWERED = 3  # ... that has been answered once already; later ones are ignored

#: The settings a server may send, and the values it may not exceed.
_MIN_FRAME_SIZE = 2**14
_MAX_FRAME_SIZE = 2**24 - 1
#: What the server may assume of a client before its SETTINGS (section 6.5.2).
_DEFAULT_WINDOW = 65535

_Handler = Callable[[memoryview, int, int, int, int], None]


class _HeaderBlock:
    """A header block whose CONTINUATION frames are still to come."""

    __slots__ = (
        "end_stream",
        "fragments",
        "kind",
        "priority_on",
        "promised_id",
        "size",
        "stream_id",
    )

    def __init__(
        self,
        kind: int,
        stream_id: int,
        end_stream: bool,
        promised_id: int,
        priority_on: int,
        fragment: bytes,
    ) -> None:
        self.kind = kind
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.promised_id = promised_id
        self.priority_on = priority_on
        self.fragments = [fragment]
        self.size = len(fragment)


class _ResponseFacts:
    """What a response header block says that the engine needs, worked out once per block
    (and remembered with blocks that repeat)."""

    __slots__ = ("content_length", "problem", "status")

    def __init__(self, status: int, content_length: int | None, problem: str | None) -> None:
        self.status = status
        self.content_length = content_length
        self.problem = problem


def _response_facts(headers: HeaderList) -> _ResponseFacts:
    """Check a response header block and find its status and Content-Length."""
    try:
        check_response(headers)
    except MalformedHeaders as problem:
        return _ResponseFacts(0, None, str(problem))
    status = int(headers[0][1])
    length: int | None = None
    for name, value in headers:
        if name == b"content-length":
            # RFC 9110 8.6: 1*DIGIT; repeated fields must agree.
            if not value.isdigit():
                return _ResponseFacts(status, None, f"an invalid content-length {value[:30]!r}")
            if length is not None and int(value) != length:
                return _ResponseFacts(status, None, "conflicting content-length fields")
            length = int(value)
    return _ResponseFacts(status, length, None)


class Engine:
    """
    The client side of one HTTP/2 connection, as a state machine.

    Send with :meth:`start` (or :meth:`start_upgraded`), :meth:`send_headers`,
    :meth:`send_data`, :meth:`reset_stream`, :meth:`ping` and :meth:`close`, then write what
    :meth:`data_to_send` returns. Feed what the server sends to :meth:`receive_data`; it files
    stream events under their streams and returns the connection-level ones. Tell the engine
    when the application has consumed body data (:meth:`acknowledge`), so that it reopens the
    stream's window.

    :param enable_push: whether the server may push (SETTINGS_ENABLE_PUSH).
    :param window_manager: the flow-control policy class; one instance manages the
        connection's receive window, one each stream's.
    :param stream_window: the receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE).
    :param connection_window: the receive window of the connection.
    :param max_frame_size: the largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE).
    :param max_header_list_size: the largest decoded header list accepted
        (SETTINGS_MAX_HEADER_LIST_SIZE).
    :param tracer: where trace events go (response headers, the end of a response, stream
        resets, GOAWAY); the engine also records when each stream's response began and ended
        in its :attr:`~hyper.http20.stream.Stream.timings`.
    """

    def __init__(
        self,
        *,
        enable_push: bool = False,
        window_manager: type[BaseFlowControlManager] = FlowControlManager,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
        tracer: Tracer | None = None,
    ) -> None:
        #: Where trace events go.
        self.tracer = tracer if tracer is not None else Tracer()
        self.enable_push = enable_push
        self.window_manager_class = window_manager
        self.stream_window = stream_window
        self.max_frame_size = max_frame_size
        #: The settings hyper sends (identifier -> value).
        self.local_settings: dict[int, int] = {SettingCodes.ENABLE_PUSH: int(enable_push)}
        if enable_push:
            self.local_settings[SettingCodes.MAX_CONCURRENT_STREAMS] = (
                DEFAULT_MAX_CONCURRENT_PUSHES
            )
        self.local_settings[SettingCodes.INITIAL_WINDOW_SIZE] = stream_window
        self.local_settings[SettingCodes.MAX_FRAME_SIZE] = max_frame_size
        self.local_settings[SettingCodes.MAX_HEADER_LIST_SIZE] = max_header_list_size
        #: The server acknowledged hyper's settings (or an upgrade's 101 did).
        self.settings_acknowledged = False
        #: The server's first SETTINGS have arrived: its limits below are known.
        self.peer_settings_received = False
        #: How many streams the server lets hyper open at once.
        self.peer_max_concurrent_streams = MAX_WINDOW
        #: The send window each new stream starts with.
        self.peer_initial_window = _DEFAULT_WINDOW
        #: The largest frame payload the server accepts.
        self.peer_max_frame_size = _MIN_FRAME_SIZE
        #: The connection's send window: how much body data may go out now, on all streams.
        self.send_window = _DEFAULT_WINDOW
        #: The policy (and the size) of the connection's receive window.
        self.connection_manager = window_manager(connection_window)
        #: Streams not closed yet, by id: hyper's requests (odd) and promised pushes (even).
        self.streams: dict[int, Stream] = {}
        #: How many of ``streams`` hyper opened (they count against the server's limit).
        self.open_count = 0
        #: The highest stream id hyper has used, and the highest the server has promised.
        self.highest_stream_id = 0
        self.highest_pushed_id = 0
        #: The GOAWAY the server sent, if any: no new streams may be opened.
        self.goaway: GoAwayReceived | None = None
        #: hyper sent GOAWAY: the connection is ending.
        self.closing = False
        #: Why the connection failed, once it has: nothing more can be sent or received.
        self.error: HyperError | None = None
        #: The payload of the last PING the server acknowledged.
        self.last_ping_ack: bytes | None = None
        self.encoder = CachingEncoder()
        self.decoder = CachingDecoder(max_header_list_size=max_header_list_size)
        #: Closed streams remembered, oldest first: id -> how it closed.
        self._closed: dict[int, int] = {}
        self._out: list[bytes | memoryview] = []
        self._events: list[Event] = []
        #: The start of a frame whose rest has not arrived.
        self._partial = bytearray()
        #: A header block waiting for CONTINUATION frames.
        self._block: _HeaderBlock | None = None
        #: DATA bytes received in this call, not yet reported to the connection's manager.
        self._received = 0
        self._preface_checked = False
        self._debug = log.isEnabledFor(logging.DEBUG)
        self._handlers: dict[int, _Handler] = {
            HEADERS: self._on_headers,
            PRIORITY: self._on_priority,
            RST_STREAM: self._on_rst_stream,
            SETTINGS: self._on_settings,
            PUSH_PROMISE: self._on_push_promise,
            PING: self._on_ping,
            GOAWAY: self._on_goaway,
            WINDOW_UPDATE: self._on_window_update,
            CONTINUATION: self._on_continuation,
        }

    def __repr__(self) -> str:
        state = "failed" if self.error else "goaway" if self.goaway else "open"
        return f"<Engine {state} streams={len(self.streams)}>"

    # -- starting -----------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the client's connection preface: the magic, one SETTINGS frame, and the
        WINDOW_UPDATE that opens the connection's receive window to its full size."""
        self._out.append(PREFACE + settings_frame(self.local_settings) + self._open_window())

    def upgrade_settings(self) -> bytes:
        """The value of the ``HTTP2-Settings`` header of an ``Upgrade: h2c`` request: hyper's
        settings, base64url-encoded without padding (RFC 7540 section 3.2.1)."""
        encoded = base64.urlsafe_b64encode(settings_payload(self.local_settings))
        return encoded.rstrip(b"=")

    def start_upgraded(self, head_request: bool = False) -> Stream:
        """
        Begin HTTP/2 after a ``101 Switching Protocols`` answered an ``Upgrade: h2c``
        request: queue the preface, and open stream 1 for that request, whose response
        arrives over HTTP/2. The 101 acknowledged the settings the request carried.

        :param head_request: whether the request was a HEAD (its response has no body).
        :returns: stream 1.
        """
        self.start()
        self.settings_acknowledged = True
        stream = self._new_stream(1)
        stream.local_closed = True
        stream.head_response = head_request
        return stream

    def _open_window(self) -> bytes:
        extra = self.connection_manager.window_size - _DEFAULT_WINDOW
        return window_update_frame(0, extra) if extra > 0 else b""

    # -- sending ------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued to send, in order (``b""`` when nothing is)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 and type(out[0]) is bytes else b"".join(out)
        out.clear()
        return data

    def can_open_stream(self) -> bool:
        """Whether a new stream may go out now: the connection is working, the server sent
        no GOAWAY, and its limit on concurrent streams leaves room."""
        return (
            self.error is None
            and self.goaway is None
            and not self.closing
            and self.open_count < self.peer_max_concurrent_streams
        )

    def _check_sending(self) -> None:
        if self.error is not None:
            raise self.error
        if self.closing:
            raise HTTP20Error("the connection is closing: nothing more can be sent")

    def send_headers(self, stream_id: int, headers: HeaderList, end_stream: bool) -> Stream:
        """
        Open stream ``stream_id`` with a request's header block.

        :param stream_id: an odd id, higher than every id used before on this connection.
        :param headers: the header list, pseudo-headers first (checked by the caller).
        :param end_stream: whether the request has no body.
        :returns: the new stream.
        :raises HTTP20Error: if the connection cannot open the stream (failed, closing, after
            a GOAWAY, or the id is not usable).
        :raises HPACKEncodingError: if the headers cannot be encoded.
        """
        self._check_sending()
        if self.goaway is not None:
            raise HTTP20Error("the server sent GOAWAY: no new streams may be opened")
        if stream_id % 2 == 0 or not self.highest_stream_id < stream_id <= STREAM_ID_MASK:
            raise HTTP20Error(f"stream id {stream_id} cannot open a new stream")
        try:
            block = self.encoder.encode(headers)
        except (hpack.HPACKError, TypeError, ValueError) as exc:
            raise HPACKEncodingError(f"cannot encode request headers: {exc}") from exc
        if self._debug:
            log_header_block("send", "HEADERS", stream_id, headers)
        stream = self._new_stream(stream_id)
        stream.request_headers = headers
        stream.local_closed = end_stream
        for name, value in headers:
            if name == b":method":
                stream.head_response = value == b"HEAD"
                break
        self._out.append(header_frames(stream_id, block, end_stream, self.peer_max_frame_size))
        return stream

    def _new_stream(self, stream_id: int) -> Stream:
        manager = self.window_manager_class(self.stream_window)
        stream = Stream(stream_id, manager, self.peer_initial_window)
        self.streams[stream_id] = stream
        self.open_count += 1
        self.highest_stream_id = stream_id
        return stream

    def sendable(self, stream: Stream) -> int:
        """How much body data ``stream`` may send now (the smaller of its window and the
        connection's; 0 once it can send nothing more)."""
        if stream.local_closed:
            return 0
        window = min(stream.send_window, self.send_window)
        return window if window > 0 else 0

    def send_data(self, stream: Stream, data: bytes | memoryview, end_stream: bool) -> None:
        """
        Queue ``data`` as DATA frames on ``stream``, as large as the server accepts.

        The engine keeps a reference to ``data`` until the next :meth:`data_to_send`.

        :param data: at most :meth:`sendable` bytes.
        :param end_stream: whether this ends the request body.
        :raises HTTP20Error: if the stream has ended, or ``data`` exceeds the send windows.
        """
        self._check_sending()
        if stream.local_closed:
            raise HTTP20Error(f"the request on stream {stream.stream_id} was already ended")
        size = len(data)
        if size > stream.send_window or size > self.send_window:
            raise HTTP20Error(
                f"{size} bytes exceed the flow-control window of stream {stream.stream_id}"
            )
        stream_id = stream.stream_id
        out = self._out
        largest = self.peer_max_frame_size
        if size <= largest:
            out.append(data_header(stream_id, size, end_stream))
            if size:
                out.append(data)
        else:
            view = memoryview(data)
            for start in range(0, size, largest):
                piece = view[start : start + largest]
                last = end_stream and start + largest >= size
                out.append(data_header(stream_id, len(piece), last))
                out.append(piece)
        stream.send_window -= size
        self.send_window -= size
        if end_stream:
            stream.local_closed = True
            if stream.remote_closed:
                self._forget(stream, _ENDED)

    def end_stream(self, stream: Stream) -> None:
        """End the request body of ``stream`` with an empty DATA frame."""
        self.send_data(stream, b"", end_stream=True)

    def acknowledge(self, stream: Stream, size: int) -> None:
        """
        The application consumed ``size`` bytes of ``stream``'s body, taken from
        ``stream.chunks``: tell its window manager, and queue the WINDOW_UPDATE the manager
        asks for, if the stream still receives.
        """
        stream.unacknowledged -= size
        self._consumed(stream, size)

    def _consumed(self, stream: Stream, size: int) -> None:
        increment = stream.window_manager.account(size)
        if increment and not stream.finished and stream.stream_id in self.streams:
            self._out.append(window_update_frame(stream.stream_id, increment))

    def reset_stream(self, stream: Stream, error_code: int = ErrorCodes.CANCEL) -> bool:
        """
        End ``stream`` with RST_STREAM, unless it is closed already. A stream whose response
        had not ended records the reset (``reset_code``), so reading it raises
        :class:`~hyper.http20.exceptions.StreamResetError`.

        :returns: whether a RST_STREAM was queued.
        """
        if self.streams.get(stream.stream_id) is not stream or self.error is not None:
            return False
        self._out.append(rst_stream_frame(stream.stream_id, error_code))
        stream.local_closed = True
        if stream.reset_code is None and not stream.finished:
            stream.reset_code = error_code
        self._forget(stream, _RESET_SENT)
        if self.tracer.hook is not None:
            info = {"error_code": error_code, "by": "client"}
            self.tracer.emit(trace.STREAM_RESET, stream.stream_id, info)
        return True

    def ping(self, data: bytes) -> None:
        """Queue a PING carrying the 8 bytes ``data``."""
        self._check_sending()
        self._out.append(ping_frame(data))

    def close(self, error_code: int = ErrorCodes.NO_ERROR, debug_data: bytes = b"") -> None:
        """Queue GOAWAY: hyper ends the connection (nothing is sent after it)."""
        if self.error is None and not self.closing:
            self._out.append(goaway_frame(self.highest_pushed_id, error_code, debug_data))
        self.closing = True

    def fail(self, error: HyperError) -> None:
        """The connection failed outside the protocol (the socket broke): every stream not
        finished fails with ``error``; nothing more is sent or received."""
        self._fail(error, None)

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """
        Process what the server sent: any number of bytes, cut anywhere.

        Stream events are filed under their :class:`~hyper.http20.stream.Stream`; the engine
        keeps no reference to ``data`` once this returns. Answers the server expects (SETTINGS
        and PING acknowledgements, WINDOW_UPDATEs, RST_STREAMs for stream errors) are queued.

        :returns: the connection-level events, in order.
        :raises ~hyper.http20.exceptions.ProtocolError: if the server broke the protocol
            (``error_code`` says how;
            GOAWAY is queued); the connection has failed, and every unfinished stream with it.
        :raises HPACKDecodingError: if a header block could not be decoded.
        """
        if self.error is not None:
            raise self.error
        view = data if type(data) is memoryview else memoryview(data)
        if self._partial:
            view = self._complete_partial(view)
        if view and self.error is None:
            done = self._process(view)
            if done < len(view) and self.error is None:
                self._keep_partial(view[done:])
        if self._received:
            received, self._received = self._received, 0
            increment = self.connection_manager.account(received)
            if increment and self.error is None:
                self._out.append(window_update_frame(0, increment))
        events = self._events
        if events:
            self._events = []
        return events

    def _complete_partial(self, view: memoryview) -> memoryview:
        """Complete the frame kept from the previous call with the start of ``view``, process
        it, and return the rest of ``view`` (empty while the frame is still incomplete)."""
        partial = self._partial
        if len(partial) < 9:
            taken = 9 - len(partial)
            partial += view[:taken]
            view = view[taken:]
            if len(partial) < 9:
                self._check_preface(partial)
                return view
            self._check_frame_header(partial)
        needed = 9 + int.from_bytes(partial[:3], "big") - len(partial)
        partial += view[:needed]
        view = view[needed:]
        if len(partial) < 9 + int.from_bytes(partial[:3], "big"):
            return view
        # A new buffer for the next partial frame: views of this one may outlive the call
        # (in a traceback, say), and a bytearray with views cannot change size.
        self._partial = bytearray()
        self._process(memoryview(partial))
        return view

    def _keep_partial(self, rest: memoryview) -> None:
        """Keep the start of a frame until its rest arrives, refusing it at once if its header
        already shows it is too large."""
        self._partial += rest
        if len(self._partial) >= 9:
            self._check_frame_header(self._partial)
        else:
            self._check_preface(self._partial)

    def _check_frame_header(self, header: bytes | bytearray | memoryview) -> None:
        """Judge a frame by its header while its payload is on its way: a frame over the size
        limit, or on a stream its type cannot be on, is refused at once rather than waited
        for (its handler would refuse it the same way once whole)."""
        self._check_preface(header)
        length = int.from_bytes(header[:3], "big")
        if length > self.max_frame_size:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                f"the server sent a frame of {length} bytes, over the {self.max_frame_size} "
                "byte limit hyper set",
            )
        kind = header[3]
        stream_id = int.from_bytes(header[5:9], "big") & STREAM_ID_MASK
        name = _FRAME_NAMES.get(kind)
        if name is None:
            return
        if (kind in _CONNECTION_FRAMES) != (stream_id == 0):
            where = f"stream {stream_id}" if stream_id else "stream 0"
            self._connection_error(ErrorCodes.PROTOCOL_ERROR, f"the server sent {name} on {where}")

    def _check_preface(self, data: bytes | bytearray | memoryview) -> None:
        """The server's first frame must be a SETTINGS frame (section 3.4); anything else
        is not HTTP/2, and gets no GOAWAY. Judged once 5 bytes have arrived."""
        if self._preface_checked or len(data) < 5:
            return
        if data[3] != SETTINGS or data[4] & END_STREAM:
            error = ProtocolError(
                "the server did not answer with HTTP/2; its first bytes were "
                f"{bytes(data[:40])!r}",
                ErrorCodes.PROTOCOL_ERROR,
            )
            self._fail(error, None)
            raise error
        self._preface_checked = True

    def _process(self, view: memoryview) -> int:
        """Process the whole frames at the start of ``view``; return how many bytes they
        took. This loop is the hot path of every response: DATA frames are handled in it."""
        if not self._preface_checked:
            self._check_preface(view)
        end = len(view)
        pos = 0
        unpack = FRAME_HEADER.unpack_from
        streams = self.streams
        handlers = self._handlers
        max_size = self.max_frame_size
        debug = self._debug
        following: int
        while end - pos >= 9:
            high, low, kind, flags, stream_id = unpack(view, pos)
            length = high << 16 | low
            if length > max_size:
                self._check_frame_header(view[pos : pos + 9])
            body = pos + 9
            following = body + length
            if following > end:
                break
            stream_id &= STREAM_ID_MASK
            if debug:
                for line in describe(view[pos:following]):
                    log.debug("received: %s", line)
            if self._block is not None and kind != CONTINUATION:
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    f"the server sent a frame of type {kind} in the middle of a header block",
                )
            if kind == DATA:
                stream = streams.get(stream_id)
                if (
                    stream is None
                    or flags & PADDED
                    or stream.response_headers is None
                    or stream.remote_closed
                ):
                    self._on_other_data(view, body, following, flags, stream_id)
                else:
                    # A body frame of an open stream: checks, window accounting, filing.
                    self._count_connection_data(length)
                    if length > stream.window_manager.window_size - stream.unacknowledged:
                        self._window_exceeded(stream_id, length)
                    received = stream.received_length + length
                    expected = stream.expected_length
                    if expected is not None and (
                        received > expected or (flags & END_STREAM and received != expected)
                    ):
                        self._length_mismatch(stream, received)
                    else:
                        stream.received_length = received
                        if length:
                            sink = stream.sink
                            if sink is None:
                                stream.chunks.append(view[body:following].tobytes())
                                stream.buffered += length
                                stream.unacknowledged += length
                            else:
                                sink.write(view[body:following])
                                self._consumed(stream, length)
                        elif not stream.chunks:
                            # An empty frame: visible to a reader of frames, but never more
                            # than one of them in a row (a flood of them costs nothing).
                            stream.chunks.append(b"")
                        if flags & END_STREAM:
                            self._remote_end(stream)
            else:
                handler = handlers.get(kind)
                if handler is not None:
                    handler(view, body, following, flags, stream_id)
                    if self.error is not None:
                        return following  # a GOAWAY with an error ended the connection
                # Frames of unknown types are ignored (section 5.5).
            pos = following
        return pos

    # -- DATA off the common path -------------------------------------------------------------

    def _count_connection_data(self, length: int) -> None:
        """Count a DATA frame against the connection's receive window."""
        received = self._received + length
        if received > self.connection_manager.window_size:
            self._connection_error(
                ErrorCodes.FLOW_CONTROL_ERROR,
                "the server sent more data than the connection's flow-control window allows",
            )
        self._received = received

    def _window_exceeded(self, stream_id: int, length: int) -> None:
        self._connection_error(
            ErrorCodes.FLOW_CONTROL_ERROR,
            f"the server sent {length} bytes on stream {stream_id}, beyond its flow-control "
            "window",
        )

    def _on_other_data(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        """A DATA frame that is padded, or not part of a body in progress."""
        length = following - body
        if stream_id == 0:
            self._connection_error(ErrorCodes.PROTOCOL_ERROR, "the server sent DATA on stream 0")
        self._count_connection_data(length)
        stream = self.streams.get(stream_id)
        if stream is None:
            self._on_missing_stream(stream_id, "DATA")
            return
        start, stop = body, following
        if flags & PADDED:
            start, stop = self._unpad(view, body, following, "DATA")
        if stream.reserved:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent DATA on pushed stream {stream_id} before its headers",
            )
        if stream.remote_closed:
            self._stream_error(stream, ErrorCodes.STREAM_CLOSED)
            return
        if length > stream.window_manager.window_size - stream.unacknowledged:
            self._window_exceeded(stream_id, length)
        if stream.response_headers is None:
            self._malformed(stream, "DATA before the response headers")
            return
        size = stop - start
        received = stream.received_length + size
        expected = stream.expected_length
        if expected is not None and (
            received > expected or (flags & END_STREAM and received != expected)
        ):
            self._length_mismatch(stream, received)
            return
        stream.received_length = received
        if size:
            if stream.sink is None:
                stream.chunks.append(view[start:stop].tobytes())
                stream.buffered += size
                stream.unacknowledged += size
            else:
                stream.sink.write(view[start:stop])
        elif not stream.chunks:
            stream.chunks.append(b"")
        # Padding never reaches the application: it counts as consumed at once, and so does
        # what went into a whole-body reader's sink.
        consumed = length - size if stream.sink is None else length
        if consumed:
            self._consumed(stream, consumed)
        if flags & END_STREAM:
            self._remote_end(stream)

    def _unpad(self, view: memoryview, body: int, following: int, kind: str) -> tuple[int, int]:
        """The payload's bounds in a PADDED frame (section 6.1)."""
        if following == body:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                f"the server sent a padded {kind} frame with no room for its pad length",
            )
        pad = view[body]
        if pad >= following - body:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent a {kind} frame whose padding is as long as the frame",
            )
        return body + 1, following - pad

    def _length_mismatch(self, stream: Stream, received: int) -> None:
        self._malformed(
            stream,
            f"{received} bytes of body where content-length announced {stream.expected_length}",
        )

    # -- streams that are not open ------------------------------------------------------------

    def _on_missing_stream(self, stream_id: int, what: str) -> None:
        """A DATA or HEADERS frame on a stream not open: closed, or never opened (section
        5.1)."""
        how = self._closed.get(stream_id)
        if how is None:
            highest = self.highest_stream_id if stream_id % 2 else self.highest_pushed_id
            if stream_id > highest:
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    f"the server sent {what} on stream {stream_id}, which was never opened",
                )
            return  # closed long ago, or never used (an id skipped): forgotten, ignored
        if how in (_RESET_SENT, _RESET_ANSWERED):
            return  # hyper reset it: frames already in flight are expected
        if how == _RESET_RECEIVED:
            # The server reset it, then sent more: a stream error, answered once.
            self._closed[stream_id] = _RESET_ANSWERED
            self._out.append(rst_stream_frame(stream_id, ErrorCodes.STREAM_CLOSED))
            return
        self._connection_error(
            ErrorCodes.STREAM_CLOSED,
            f"the server sent {what} on stream {stream_id}, which is closed (the server had "
            "ended it)",
        )

    def _check_known_stream(self, stream_id: int, what: str) -> bool:
        """For RST_STREAM and WINDOW_UPDATE: whether ``stream_id`` is open; a frame on an
        idle stream is a connection error, one on a closed stream is ignored."""
        if stream_id in self.streams:
            return True
        highest = self.highest_stream_id if stream_id % 2 else self.highest_pushed_id
        if stream_id > highest:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent {what} on stream {stream_id}, which was never opened",
            )
        return False

    # -- header blocks ------------------------------------------------------------------------

    def _on_headers(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id == 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, "the server sent HEADERS on stream 0"
            )
        start, stop = body, following
        if flags & PADDED:
            start, stop = self._unpad(view, body, following, "HEADERS")
        depends_on = 0
        if flags & PRIORITY_FLAG:
            if stop - start < 5:
                self._connection_error(
                    ErrorCodes.FRAME_SIZE_ERROR,
                    "the server sent a HEADERS frame too short for its priority fields",
                )
            depends_on = int.from_bytes(view[start : start + 4], "big") & STREAM_ID_MASK
            start += 5
        fragment = view[start:stop]
        end_stream = bool(flags & END_STREAM)
        if flags & END_HEADERS:
            self._check_block_size(len(fragment))
            self._header_block(stream_id, fragment, end_stream, depends_on)
        else:
            self._check_block_size(len(fragment))
            self._block = _HeaderBlock(
                HEADERS, stream_id, end_stream, 0, depends_on, fragment.tobytes()
            )

    def _on_continuation(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        block = self._block
        if block is None or block.stream_id != stream_id:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent CONTINUATION on stream {stream_id} without a header block "
                "in progress there",
            )
        assert block is not None
        block.size += following - body
        self._check_block_size(block.size)
        if following > body:
            # Empty fragments are dropped: a flood of them would otherwise grow the list
            # without the size limit above ever seeing it.
            block.fragments.append(view[body:following].tobytes())
        if not flags & END_HEADERS:
            return
        self._block = None
        whole = b"".join(block.fragments)
        if block.kind == HEADERS:
            self._header_block(block.stream_id, whole, block.end_stream, block.priority_on)
        else:
            self._promise(block.stream_id, block.promised_id, whole)

    def _check_block_size(self, size: int) -> None:
        if size > MAX_HEADER_BLOCK:
            self._connection_error(
                ErrorCodes.COMPRESSION_ERROR,
                f"the server sent a header block of over {MAX_HEADER_BLOCK} bytes",
                HPACKDecodingError,
            )

    def _push_limit_reached(self) -> bool:
        """Whether as many pushed streams are open (past their headers, not closed) as
        hyper's SETTINGS_MAX_CONCURRENT_STREAMS allows, once the server has that setting."""
        limit = self.local_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
        if limit is None or not self.settings_acknowledged:
            return False
        opened = sum(1 for s in self.streams.values() if s.pushed and not s.reserved)
        return opened >= limit

    def _decode(self, block: bytes | memoryview) -> RememberedBlock:
        """Decode a header block. Every block is decoded, even one for a stream hyper
        ignores: the server's HPACK state changed with it."""
        try:
            return self.decoder.decode_block(block)
        except (hpack.HPACKError, ValueError, IndexError) as exc:
            error = HPACKDecodingError(
                f"the server sent an invalid header block: {exc}", ErrorCodes.COMPRESSION_ERROR
            )
            self._fail(error, ErrorCodes.COMPRESSION_ERROR)
            raise error from exc

    def _header_block(
        self, stream_id: int, block: bytes | memoryview, end_stream: bool, depends_on: int
    ) -> None:
        """A complete header block of a HEADERS frame (and its CONTINUATIONs)."""
        remembered = self._decode(block)
        if self._debug:
            log_header_block("received", "HEADERS", stream_id, remembered.headers)
        stream = self.streams.get(stream_id)
        if stream is None:
            self._on_missing_stream(stream_id, "HEADERS")
            return
        timings = stream.timings
        if timings is not None and timings.first_byte is None:
            timings.first_byte = time.monotonic()
        if depends_on == stream_id:
            self._stream_error(stream, ErrorCodes.PROTOCOL_ERROR)
            return
        if stream.remote_closed:
            self._stream_error(stream, ErrorCodes.STREAM_CLOSED)
            return
        if stream.reserved and self._push_limit_reached():
            # Section 5.1.2: a pushed stream opening beyond the limit hyper advertised.
            self._stream_error(stream, ErrorCodes.REFUSED_STREAM)
            return
        if stream.response_headers is not None:
            self._trailers(stream, remembered.headers, end_stream)
            return
        facts = remembered.facts
        if facts is None:
            facts = remembered.facts = _response_facts(remembered.headers)
        if facts.problem is not None:
            self._malformed(stream, facts.problem)
            return
        status = facts.status
        if self.tracer.hook is not None:
            self.tracer.emit(trace.RESPONSE_HEADERS, stream_id, {"status": status})
        if status < 200:
            # Informational (1xx): checked, then dropped; the final response follows. One
            # that ends the stream is malformed (section 8.1).
            if end_stream:
                self._malformed(stream, f"an informational response ({status}) ending the stream")
            return
        stream.reserved = False
        stream.response_headers = list(remembered.headers)
        if stream.head_response or status == 204 or status == 304:
            # No content whatever content-length says (section 8.1.1, RFC 9110 6.4.1).
            stream.expected_length = 0
        else:
            stream.expected_length = facts.content_length
        stream.window_manager.document_size = facts.content_length
        if end_stream:
            if stream.expected_length:
                self._length_mismatch(stream, 0)
                return
            self._remote_end(stream)

    def _trailers(self, stream: Stream, headers: HeaderList, end_stream: bool) -> None:
        if not end_stream:
            self._malformed(stream, "a second header block that does not end the stream")
            return
        try:
            check_trailers(headers)
        except MalformedHeaders as problem:
            self._malformed(stream, f"malformed trailers: {problem}")
            return
        expected = stream.expected_length
        if expected is not None and stream.received_length != expected:
            self._length_mismatch(stream, stream.received_length)
            return
        stream.trailers = list(headers)
        self._remote_end(stream)

    # -- pushes -------------------------------------------------------------------------------

    def _on_push_promise(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id == 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, "the server sent PUSH_PROMISE on stream 0"
            )
        start, stop = body, following
        if flags & PADDED:
            start, stop = self._unpad(view, body, following, "PUSH_PROMISE")
        if stop - start < 4:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                "the server sent a PUSH_PROMISE frame too short for its promised stream id",
            )
        promised = int.from_bytes(view[start : start + 4], "big") & STREAM_ID_MASK
        fragment = view[start + 4 : stop]
        self._check_block_size(len(fragment))
        if flags & END_HEADERS:
            self._promise(stream_id, promised, fragment)
        else:
            self._block = _HeaderBlock(
                PUSH_PROMISE, stream_id, False, promised, 0, fragment.tobytes()
            )

    def _promise(self, parent_id: int, promised: int, block: bytes | memoryview) -> None:
        """A complete PUSH_PROMISE header block (section 6.6 and 8.4)."""
        remembered = self._decode(block)
        if self._debug:
            log_header_block(
                "received", f"PUSH_PROMISE of stream {promised}", parent_id, remembered.headers
            )
        if not self.enable_push and self.settings_acknowledged:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                "the server sent PUSH_PROMISE although hyper disabled push (and the server "
                "acknowledged that)",
            )
        if promised % 2 or promised <= self.highest_pushed_id:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server promised stream {promised}, which it cannot open now",
            )
        self.highest_pushed_id = promised
        parent = self.streams.get(parent_id)
        if parent is None or parent.pushed:
            if self._closed.get(parent_id) in (_RESET_SENT, _RESET_ANSWERED):
                # On a stream hyper reset: refuse it; what follows for it is then ignored.
                self._closed_add(promised, _RESET_SENT)
                self._out.append(rst_stream_frame(promised, ErrorCodes.REFUSED_STREAM))
                return
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent PUSH_PROMISE on stream {parent_id}, which is not a request "
                "in progress",
            )
        assert parent is not None
        if parent.remote_closed:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent PUSH_PROMISE on stream {parent_id} after ending it",
            )
        headers = list(remembered.headers)
        stream = Stream(promised, self.window_manager_class(self.stream_window), 0)
        stream.pushed = stream.reserved = stream.local_closed = True
        # A push has no request of ours: its timings start with the promise.
        stream.timings = Timings(time.monotonic(), reused=True, protocol="HTTP/2")
        stream.request_headers = headers
        stream.head_response = any(n == b":method" and v == b"HEAD" for n, v in headers)
        self.streams[promised] = stream
        try:
            check_pushed_request(headers)
        except MalformedHeaders as problem:
            if self._debug:
                log.debug("refused push %d: %s", promised, problem)
            self._malformed(stream, f"a malformed promised request: {problem}")
            return
        if not self.enable_push:
            # Before the server acknowledged that push is off: refuse the stream.
            self.reset_stream(stream, ErrorCodes.REFUSED_STREAM)
            return
        self._events.append(PushPromised(parent_id, stream))

    # -- stream endings -----------------------------------------------------------------------

    def _remote_end(self, stream: Stream) -> None:
        """END_STREAM arrived on ``stream``."""
        stream.remote_closed = True
        timings = stream.timings
        if timings is not None:
            timings.body_done = time.monotonic()
            if self.tracer.hook is not None:
                self.tracer.emit(trace.RESPONSE_BODY_DONE, stream.stream_id, {}, timings.body_done)
        if stream.local_closed:
            self._forget(stream, _ENDED)

    def _forget(self, stream: Stream, how: int) -> None:
        """``stream`` is closed: drop it from the open streams, remember how it closed."""
        stream_id = stream.stream_id
        if self.streams.pop(stream_id, None) is not None and stream_id % 2:
            self.open_count -= 1
        self._closed_add(stream_id, how)

    def _closed_add(self, stream_id: int, how: int) -> None:
        closed = self._closed
        closed[stream_id] = how
        if len(closed) > CLOSED_STREAMS_REMEMBERED:
            del closed[next(iter(closed))]

    def _malformed(self, stream: Stream, problem: str) -> None:
        """A malformed response (section 8.1.1): a stream error of type PROTOCOL_ERROR, which
        the stream reports as :class:`~hyper.http20.exceptions.ProtocolError`."""
        if stream.error is None:
            stream.error = ProtocolError(
                f"the server sent a malformed response on stream {stream.stream_id}: {problem}",
                ErrorCodes.PROTOCOL_ERROR,
            )
        self._stream_error(stream, ErrorCodes.PROTOCOL_ERROR)

    def _stream_error(self, stream: Stream, error_code: int) -> None:
        """Reset ``stream`` for a stream error hyper found (section 5.4.2)."""
        self.reset_stream(stream, error_code)

    # -- connection-level frames --------------------------------------------------------------

    def _on_priority(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id == 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, "the server sent PRIORITY on stream 0"
            )
        if following - body != 5:
            # A stream error of type FRAME_SIZE_ERROR, which hyper may treat as a connection
            # error (section 5.4.1): the stream may be idle, where a reset is not allowed.
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                "the server sent a PRIORITY frame whose length is not 5",
            )
        if int.from_bytes(view[body : body + 4], "big") & STREAM_ID_MASK == stream_id:
            # A stream cannot depend on itself (section 5.3.1): a stream error, and a
            # connection error when the stream is not open (it cannot be reset).
            stream = self.streams.get(stream_id)
            if stream is not None:
                self._stream_error(stream, ErrorCodes.PROTOCOL_ERROR)
                return
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, f"the server made stream {stream_id} depend on itself"
            )
        # Otherwise priorities are advisory, and a client has nothing to schedule: ignored.

    def _on_rst_stream(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id == 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, "the server sent RST_STREAM on stream 0"
            )
        if following - body != 4:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                "the server sent an RST_STREAM frame whose length is not 4",
            )
        if not self._check_known_stream(stream_id, "RST_STREAM"):
            return
        code = int.from_bytes(view[body:following], "big")
        stream = self.streams[stream_id]
        if self.tracer.hook is not None:
            self.tracer.emit(trace.STREAM_RESET, stream_id, {"error_code": code, "by": "server"})
        if not stream.finished:
            stream.reset_code = _as_code(code)
            stream.reset_by_peer = True
            if code == ErrorCodes.REFUSED_STREAM and not stream.pushed:
                stream.unprocessed = True  # section 8.7: safe to send again
        stream.local_closed = True
        self._forget(stream, _RESET_RECEIVED)

    def _on_settings(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id != 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent SETTINGS on stream {stream_id}",
            )
        length = following - body
        if flags & 0x1:  # ACK
            if length:
                self._connection_error(
                    ErrorCodes.FRAME_SIZE_ERROR,
                    "the server sent a SETTINGS acknowledgement with a payload",
                )
            self.settings_acknowledged = True
            return
        if length % 6:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                f"the server sent a SETTINGS frame of {length} bytes, not a multiple of 6",
            )
        for pos in range(body, following, 6):
            identifier = int.from_bytes(view[pos : pos + 2], "big")
            value = int.from_bytes(view[pos + 2 : pos + 6], "big")
            self._apply_setting(identifier, value)
        self.peer_settings_received = True
        self._out.append(settings_ack())

    def _apply_setting(self, identifier: int, value: int) -> None:
        """Apply one of the server's settings (section 6.5.2); unknown ones are ignored."""
        if identifier == SettingCodes.HEADER_TABLE_SIZE:
            self.encoder.limit_table_size(value)
        elif identifier == SettingCodes.ENABLE_PUSH:
            if value != 0:
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    f"the server sent SETTINGS_ENABLE_PUSH = {value}; a server may only send 0",
                )
        elif identifier == SettingCodes.MAX_CONCURRENT_STREAMS:
            self.peer_max_concurrent_streams = value
        elif identifier == SettingCodes.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                self._connection_error(
                    ErrorCodes.FLOW_CONTROL_ERROR,
                    f"the server sent SETTINGS_INITIAL_WINDOW_SIZE = {value}, over 2**31 - 1",
                )
            delta = value - self.peer_initial_window
            self.peer_initial_window = value
            if delta:
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        self._connection_error(
                            ErrorCodes.FLOW_CONTROL_ERROR,
                            f"SETTINGS_INITIAL_WINDOW_SIZE = {value} overflows the window of "
                            f"stream {stream.stream_id}",
                        )
        elif identifier == SettingCodes.ENABLE_CONNECT_PROTOCOL:
            if value not in (0, 1):
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    f"the server sent SETTINGS_ENABLE_CONNECT_PROTOCOL = {value} (RFC 8441: 0 "
                    "or 1)",
                )
        elif identifier == SettingCodes.MAX_FRAME_SIZE:
            if not _MIN_FRAME_SIZE <= value <= _MAX_FRAME_SIZE:
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    f"the server sent SETTINGS_MAX_FRAME_SIZE = {value}, outside 2**14 to "
                    "2**24 - 1",
                )
            self.peer_max_frame_size = value

    def _on_ping(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id != 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, f"the server sent PING on stream {stream_id}"
            )
        if following - body != 8:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR, "the server sent a PING frame whose length is not 8"
            )
        data = view[body:following].tobytes()
        if flags & 0x1:  # ACK
            self.last_ping_ack = data
            self._events.append(PingAcknowledged(data))
        else:
            self._out.append(ping_frame(data, ack=True))

    def _on_goaway(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if stream_id != 0:
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, f"the server sent GOAWAY on stream {stream_id}"
            )
        if following - body < 8:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR, "the server sent a GOAWAY frame shorter than 8 bytes"
            )
        last = int.from_bytes(view[body : body + 4], "big") & STREAM_ID_MASK
        code = _as_code(int.from_bytes(view[body + 4 : body + 8], "big"))
        debug_data = view[body + 8 : following].tobytes()
        event = GoAwayReceived(code, last, debug_data)
        self.goaway = event
        if self.tracer.hook is not None:
            self.tracer.emit(trace.GOAWAY, None, {"last_stream_id": last, "error_code": code})
        self._events.append(event)
        unprocessed = ConnectionError(
            "the server is ending the connection (GOAWAY) and did not process this request; "
            "it is safe to send it again",
            code,
        )
        unprocessed.safe_to_retry = True
        for stream in [s for s in self.streams.values() if s.stream_id % 2 and s.stream_id > last]:
            # Never processed, whatever the error code (section 6.8): it may go out again on
            # a new connection.
            if not stream.finished:
                stream.error = unprocessed
                stream.unprocessed = True
            stream.local_closed = True
            self._forget(stream, _RESET_SENT)
        if code != ErrorCodes.NO_ERROR:
            # The server ended the connection: every other stream fails with its reason.
            message = f"the server closed the connection with error {code_name(code)}"
            if debug_data:
                message += f": {debug_data[:200]!r}"
            self._fail(ConnectionError(message, code), None)

    def _on_window_update(
        self, view: memoryview, body: int, following: int, flags: int, stream_id: int
    ) -> None:
        if following - body != 4:
            self._connection_error(
                ErrorCodes.FRAME_SIZE_ERROR,
                "the server sent a WINDOW_UPDATE frame whose length is not 4",
            )
        increment = int.from_bytes(view[body:following], "big") & STREAM_ID_MASK
        if stream_id == 0:
            if not increment:
                self._connection_error(
                    ErrorCodes.PROTOCOL_ERROR,
                    "the server sent a WINDOW_UPDATE of 0 for the connection",
                )
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                self._connection_error(
                    ErrorCodes.FLOW_CONTROL_ERROR,
                    "the server opened the connection's window beyond 2**31 - 1 bytes",
                )
            return
        if not self._check_known_stream(stream_id, "WINDOW_UPDATE"):
            return
        stream = self.streams[stream_id]
        if stream.reserved:
            # Section 5.1: on a stream reserved (remote), only HEADERS, RST_STREAM and
            # PRIORITY may come; the server, not hyper, will send on it.
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR,
                f"the server sent WINDOW_UPDATE on pushed stream {stream_id} before its headers",
            )
        if not increment:
            self._stream_error(stream, ErrorCodes.PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream, ErrorCodes.FLOW_CONTROL_ERROR)

    # -- failing ------------------------------------------------------------------------------

    def _connection_error(
        self, error_code: int, message: str, kind: type[ProtocolError] = ProtocolError
    ) -> None:
        """The server broke the protocol: queue GOAWAY with ``error_code``, fail every stream,
        and raise."""
        error = kind(message, _as_code(error_code))
        self._fail(error, error_code)
        raise error

    def _fail(self, error: HyperError, goaway_code: int | None) -> None:
        if self.error is not None:
            return
        if goaway_code is not None and not self.closing:
            self._out.append(goaway_frame(self.highest_pushed_id, goaway_code))
        self.error = error
        self.closing = True
        self._block = None
        self._partial = bytearray()
        for stream in self.streams.values():
            if not stream.finished:
                stream.error = error
        self.streams.clear()
        self.open_count = 0


def _as_code(code: int) -> int:
    try:
        return ErrorCodes(code)
    except ValueError:
        return code
