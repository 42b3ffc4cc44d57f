"""
hyper's HTTP/2 engine against h2, the reference: the same server bytes go to both clients, and
both must come to the same conclusions.

Each case opens the same requests on a :class:`hyper.http20.engine.Engine` and on an
``h2.connection.H2Connection`` in client mode, with the same settings, then feeds both the
same server script (``frame_script``: a SETTINGS preface and a response among other frames, at
three levels of disorder, from ``h2frames.py``), frame by frame and sometimes cut inside
frames. After every whole frame both clients are read back into one :class:`View`: whether
the connection failed and with which error code, and for every stream its response headers,
body, trailers, and how it ended (END_STREAM, a reset by either side with its code, or a
malformed response).

Where the views differ, :func:`explain` must name why, each reason one place where hyper
follows RFC 9113 (or RFC 9110) where h2 does not, or where the two may lawfully differ
(:data:`REASONS`, with the section). A difference without a reason fails the test: it is a bug
in hyper, or a difference nobody has thought about yet. Comparison stops at the first
difference, since the two states part ways there.

``HYPER_FUZZ_EXAMPLES`` sets the number of cases (2,000 by default here, under a minute).
``HYPER_DIFFERENTIAL_REPORT=path`` writes the counts of cases and reasons as JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyper.http20.engine import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_HEADER_LIST_SIZE, Engine
from hyper.http20.errors import ErrorCodes, SettingCodes
from hyper.http20.events import PushPromised
from hyper.http20.exceptions import ProtocolError
from hyper.http20.stream import Stream
from hyper.http20.validation import MalformedHeaders, check_response
from hyper.http20.window import DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW
from tests.fuzz.h2frames import frame_script
from tests.fuzz.harness import fuzz

REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]
UPLOAD = [(b":method", b"POST"), *REQUEST[1:]]
HEAD = [(b":method", b"HEAD"), *REQUEST[1:]]

#: Why hyper and h2 may see the same bytes differently: each reason, the RFC section behind
#: hyper's behaviour.
REASONS = {
    "malformed-is-a-stream-error": (
        "RFC 9113 8.1.1: a malformed response (bad or missing pseudo-headers, uppercase or "
        "connection-specific fields, a body that differs from content-length, trailers without "
        "END_STREAM, 1xx with END_STREAM) is a stream error; h2 ends the connection"
    ),
    "content-length-checked-at-the-end-of-any-frame": (
        "RFC 9113 8.1.1: a response whose DATA payloads do not add up to its content-length is "
        "malformed, also when HEADERS or trailers end it; h2 checks the length on DATA frames "
        "only"
    ),
    "invalid-fields-are-malformed": (
        "RFC 9113 8.2.1 and 8.1.1: a response with a field name or value HTTP/2 forbids "
        "(control characters, uppercase, connection-specific fields) is malformed; older h2 "
        "releases accept some of them"
    ),
    "content-length-must-be-one-number": (
        "RFC 9110 8.6 and RFC 9113 8.1.1: a content-length that is not a number, or values that "
        "disagree, make the response malformed; h2 4.1 lets an empty value through beside a "
        "valid one"
    ),
    "status-must-be-three-digits": (
        "RFC 9113 8.3.2 and RFC 9110 15: a response whose :status is not a three-digit code is "
        "malformed; h2 accepts any value"
    ),
    "reserved-bit-is-ignored": (
        "RFC 9113 6.9: the reserved bit of a WINDOW_UPDATE increment MUST be ignored; "
        "hyperframe reads it as part of the increment, so h2 refuses the frame"
    ),
    "unsupported-extension-frames-are-ignored": (
        "RFC 9113 5.5: frames of unknown or unsupported types are ignored; h2 parses ALTSVC "
        "(RFC 7838) frames and refuses malformed ones"
    ),
    "padding-may-fill-the-frame": (
        "RFC 9113 6.1 and 6.2: padding is invalid only when it is longer than what follows the "
        "pad length (and priority) fields; hyperframe also refuses padding that leaves a header "
        "block empty"
    ),
    "frames-on-a-stream-hyper-reset-are-ignored": (
        "RFC 9113 5.1: frames on a stream the client reset are ignored (they were in flight); "
        "h2 sometimes refuses them, as long as it still holds the closed stream's state"
    ),
    "no-content-whatever-content-length": (
        "RFC 9113 8.1.1 and RFC 9110 6.4.1: HEAD, 204 and 304 responses have no content, "
        "whatever their content-length says, and DATA on them is malformed; h2 holds a 204 "
        "or 304 to its content-length, and delivers DATA on them"
    ),
    "frames-after-end-stream-end-the-connection": (
        "RFC 9113 5.1: a frame after END_STREAM is a connection error STREAM_CLOSED; h2 "
        "answers DATA with RST_STREAM"
    ),
    "server-may-not-enable-push": (
        "RFC 9113 6.5.2: a client treats SETTINGS_ENABLE_PUSH = 1 from a server as a "
        "connection error PROTOCOL_ERROR; h2 accepts it"
    ),
    "push-refused-before-acknowledgement": (
        "RFC 9113 6.6: only after the server acknowledged SETTINGS_ENABLE_PUSH = 0 is a "
        "PUSH_PROMISE a connection error; before, hyper refuses the stream"
    ),
    "every-setting-value-is-checked": (
        "RFC 9113 6.5.3: the values of a SETTINGS frame are processed in the order they "
        "appear, so an invalid one is a connection error even when a later value of the same "
        "setting replaces it; h2 checks only the last value of each setting"
    ),
    "preface-judged-from-its-header": (
        "RFC 9113 3.4: the server's first frame must be SETTINGS (not an acknowledgement); hyper "
        "judges it by its frame header, h2 does not check it, or only once the whole frame has "
        "arrived"
    ),
    "frames-on-idle-streams-end-the-connection": (
        "RFC 9113 5.1: on an idle stream, any frame but HEADERS or PRIORITY is a connection "
        "error PROTOCOL_ERROR; h2 ignores RST_STREAM and WINDOW_UPDATE there"
    ),
    "hpack-failures-are-compression-errors": (
        "RFC 9113 4.3: a header block that cannot be decoded is a connection error "
        "COMPRESSION_ERROR; h2 sends PROTOCOL_ERROR"
    ),
    "both-fail-the-connection-checking-in-another-order": (
        "RFC 9113 5.4.1: both end the connection; a frame that breaks several rules gets the "
        "error code of the rule an endpoint checks first, which the RFC leaves open"
    ),
    "zero-window-update-on-a-stream-is-a-stream-error": (
        "RFC 9113 6.9: a WINDOW_UPDATE of 0 on a stream is a stream error PROTOCOL_ERROR; h2 "
        "ends the connection"
    ),
    "malformed-promise-is-refused": (
        "RFC 9113 8.4: a promised request that is not complete and valid (or not safe) is a "
        "stream error PROTOCOL_ERROR on the promised stream; h2 accepts it"
    ),
    "an-empty-trailer-section-is-fine": (
        "RFC 9110 6.5 and RFC 9113 8.1: a trailer section may be empty; h2 refuses a header "
        "block without fields"
    ),
    "oversized-frame-refused-from-its-header": (
        "RFC 9113 4.2: a frame over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR; hyper "
        "refuses it as soon as its header arrives, h2 once the whole frame has"
    ),
    "goaway-does-not-close-the-state-machine": (
        "RFC 9113 6.8: after a graceful GOAWAY the streams at or below its last stream id "
        "complete; h2 refuses every later frame"
    ),
    "self-dependency-is-a-stream-error": (
        "RFC 9113 5.3.1: a stream that depends on itself is a stream error; h2 makes it a "
        "connection error"
    ),
    "header-block-size-limit": (
        "RFC 9113 10.5.1: hyper refuses header blocks over 256 KiB before decoding them "
        "(COMPRESSION_ERROR); h2 has no such limit"
    ),
    "frames-on-a-peer-reset-stream": (
        "RFC 9113 5.1: frames after the server reset a stream are a stream error "
        "STREAM_CLOSED, which hyper answers once; h2 may end the connection instead"
    ),
}

#: Cases run and differences explained, for the report.
TALLY: Counter[str] = Counter()


@dataclass
class StreamView:
    """One stream as a client sees it."""

    headers: list[tuple[bytes, bytes]] | None = None
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None
    #: "open", "ended", "reset-by-server:<code>", "reset-by-client:<code>", "malformed".
    state: str = "open"
    #: The last informational (1xx) header block, which h2 reports (not compared).
    informational: list[tuple[bytes, bytes]] | None = field(default=None, compare=False)


@dataclass
class View:
    """A client's view of the connection."""

    #: None while it works; else the error code it failed with (a GOAWAY received with an
    #: error is reported as its code).
    failed: int | None = None
    #: Why it failed, as its exception says.
    reason: str = ""
    streams: dict[int, StreamView] = field(default_factory=dict)


def _settings(enable_push: bool) -> dict[int, int]:
    values = {SettingCodes.ENABLE_PUSH: int(enable_push)}
    if enable_push:
        values[SettingCodes.MAX_CONCURRENT_STREAMS] = 100
    values[SettingCodes.INITIAL_WINDOW_SIZE] = DEFAULT_STREAM_WINDOW
    values[SettingCodes.MAX_FRAME_SIZE] = DEFAULT_MAX_FRAME_SIZE
    values[SettingCodes.MAX_HEADER_LIST_SIZE] = DEFAULT_MAX_HEADER_LIST_SIZE
    return values


class HyperClient:
    """hyper's engine, with requests on streams 1 (GET), 3 (POST, body not ended), 5 (HEAD)."""

    def __init__(self, enable_push: bool) -> None:
        self.engine = Engine(enable_push=enable_push)
        self.engine.start()
        self.streams: dict[int, Stream] = {
            1: self.engine.send_headers(1, REQUEST, end_stream=True),
            3: self.engine.send_headers(3, UPLOAD, end_stream=False),
            5: self.engine.send_headers(5, HEAD, end_stream=True),
        }
        self.failed: int | None = None

    def feed(self, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            events = self.engine.receive_data(data)
        except ProtocolError as exc:
            self.failed = int(exc.error_code or 0)
            return
        for event in events:
            if isinstance(event, PushPromised):
                self.streams[event.stream.stream_id] = event.stream
        if self.engine.error is not None:
            code = getattr(self.engine.error, "error_code", None)
            self.failed = int(code) if code is not None else -1

    def view(self) -> View:
        view = View(failed=self.failed)
        for stream_id, stream in self.streams.items():
            each = StreamView()
            each.headers = stream.response_headers
            each.body = b"".join(stream.chunks)
            each.trailers = stream.trailers
            if isinstance(stream.error, ProtocolError) and "malformed" in str(stream.error):
                each.state = "malformed"
            elif stream.reset_code is not None:
                who = "server" if stream.reset_by_peer else "client"
                each.state = f"reset-by-{who}:{int(stream.reset_code)}"
            elif stream.remote_closed:
                each.state = "ended"
            view.streams[stream_id] = each
        return view


class H2Client:
    """h2 in client mode, with the same settings and requests."""

    def __init__(self, enable_push: bool) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
        )
        conn = h2.connection.H2Connection(config=config)
        # The settings hyper sends, in one frame, in force from the start (as hyper takes
        # them): the frame size and header list limits at once.
        conn.local_settings = h2.settings.Settings(
            client=True, initial_values=_settings(enable_push)
        )
        conn.max_inbound_frame_size = DEFAULT_MAX_FRAME_SIZE
        conn.decoder.max_header_list_size = DEFAULT_MAX_HEADER_LIST_SIZE
        conn.initiate_connection()
        conn.increment_flow_control_window(DEFAULT_CONNECTION_WINDOW - 65535)
        conn.send_headers(1, REQUEST, end_stream=True)
        conn.send_headers(3, UPLOAD, end_stream=False)
        conn.send_headers(5, HEAD, end_stream=True)
        conn.data_to_send()
        self.conn = conn
        self.streams: dict[int, StreamView] = {1: StreamView(), 3: StreamView(), 5: StreamView()}
        self.failed: int | None = None
        self.reason = ""

    def feed(self, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.failed = int(getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR))
            self.reason = str(exc)
            return
        for event in events:
            self._file(event)

    def _file(self, event: Any) -> None:
        stream_id = getattr(event, "stream_id", None)
        view = self.streams.get(stream_id) if stream_id is not None else None
        if isinstance(event, h2.events.PushedStreamReceived):
            self.streams[event.pushed_stream_id] = StreamView()
        elif isinstance(event, h2.events.ResponseReceived) and view is not None:
            view.headers = list(event.headers)
        elif isinstance(event, h2.events.InformationalResponseReceived) and view is not None:
            view.informational = list(event.headers)
        elif isinstance(event, h2.events.DataReceived) and view is not None:
            view.body += event.data
        elif isinstance(event, h2.events.TrailersReceived) and view is not None:
            view.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded) and view is not None:
            if view.state == "open":
                view.state = "ended"
        elif isinstance(event, h2.events.StreamReset) and view is not None:
            if view.state == "open":
                who = "server" if event.remote_reset else "client"
                view.state = f"reset-by-{who}:{int(event.error_code)}"
        elif isinstance(event, h2.events.ConnectionTerminated) and event.error_code:
            self.failed = int(event.error_code)

    def view(self) -> View:
        return View(
            failed=self.failed,
            reason=self.reason,
            streams={k: _copy(v) for k, v in self.streams.items()},
        )


def _copy(view: StreamView) -> StreamView:
    return StreamView(view.headers, view.body, view.trailers, view.state, view.informational)


def frames_of(script: bytes) -> Iterator[tuple[int, bytes]]:
    """The frames of a script, as (type, bytes); the rest when a length runs past the end."""
    pos = 0
    while pos < len(script):
        if len(script) - pos < 9:
            yield -1, script[pos:]
            return
        length = int.from_bytes(script[pos : pos + 3], "big")
        yield script[pos + 3], script[pos : pos + 9 + length]
        pos += 9 + length


# -- explaining a difference ----------------------------------------------------------------------


def _header_value(headers: list[tuple[bytes, bytes]] | None, name: bytes) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


def explain(frame: bytes, kind: int, hyper: View, reference: View, history: bytes) -> str | None:
    """Why hyper's view and h2's differ after ``frame``, or None when no known reason fits."""
    frame_type = frame[3] if len(frame) > 3 else -1
    flags = frame[4] if len(frame) > 4 else 0
    stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF if len(frame) >= 9 else 0
    length = int.from_bytes(frame[:3], "big") if len(frame) >= 3 else 0
    mine = hyper.streams.get(stream_id)
    theirs = reference.streams.get(stream_id)
    if (
        hyper.failed == ErrorCodes.COMPRESSION_ERROR
        and reference.failed == ErrorCodes.PROTOCOL_ERROR
        and reference.reason.startswith("Error decoding header block")
    ):
        return "hpack-failures-are-compression-errors"
    if (
        hyper.failed is not None
        and reference.failed is not None
        and hyper.failed != reference.failed
        and _same_streams(hyper, reference)
    ):
        return "both-fail-the-connection-checking-in-another-order"
    if (
        frame_type == 0x8
        and len(frame) == 13
        and frame[9] & 0x80
        and hyper.failed is None
        and reference.failed == ErrorCodes.PROTOCOL_ERROR
    ):
        return "reserved-bit-is-ignored"
    if (
        frame_type == 0x8
        and stream_id
        and len(frame) == 13
        and frame[9:13] in (b"\0\0\0\0", b"\x80\0\0\0")
        and mine is not None
        and mine.state == f"reset-by-client:{int(ErrorCodes.PROTOCOL_ERROR)}"
    ):
        return "zero-window-update-on-a-stream-is-a-stream-error"
    if (
        mine is not None
        and mine.trailers == []
        and mine.state == "ended"
        and reference.failed is not None
    ):
        return "an-empty-trailer-section-is-fine"
    if (
        frame_type in (0x1, 0x5)
        and flags & 0x8
        and hyper.failed is None
        and "invalid padding" in reference.reason
        and _padding_fills_the_frame(frame)
    ):
        return "padding-may-fill-the-frame"
    if (
        frame_type in (0x0, 0x1, 0x3, 0x8, 0x9)
        and hyper.failed is None
        and reference.failed is not None
        and mine is not None
        and mine.state.startswith("reset-by-client:")
    ):
        return "frames-on-a-stream-hyper-reset-are-ignored"
    if frame_type > 0x9 and hyper.failed is None and reference.failed is not None:
        return "unsupported-extension-frames-are-ignored"
    first = len(history) == len(frame)
    if first and (frame_type != 0x4 or flags & 0x1) and hyper.failed == ErrorCodes.PROTOCOL_ERROR:
        return "preface-judged-from-its-header"
    if len(frame) < 9 + length and hyper.failed == ErrorCodes.FRAME_SIZE_ERROR:
        return "oversized-frame-refused-from-its-header"
    if len(frame) >= 9 and length > DEFAULT_MAX_FRAME_SIZE and hyper.failed is not None:
        return "oversized-frame-refused-from-its-header"
    idle = stream_id not in hyper.streams and (stream_id % 2 == 0 or stream_id > 5)
    if (
        frame_type in (0x3, 0x8)
        and stream_id
        and idle
        and hyper.failed == ErrorCodes.PROTOCOL_ERROR
        and reference.failed is None
    ):
        return "frames-on-idle-streams-end-the-connection"
    if frame_type == 0x4 and not flags & 0x1 and hyper.failed == ErrorCodes.PROTOCOL_ERROR:
        for pos in range(9, len(frame) - 5, 6):
            if frame[pos : pos + 2] == b"\x00\x02" and frame[pos + 2 : pos + 6] != b"\0\0\0\0":
                return "server-may-not-enable-push"
    if (
        frame_type == 0x4
        and not flags & 0x1
        and hyper.failed in (ErrorCodes.PROTOCOL_ERROR, ErrorCodes.FLOW_CONTROL_ERROR)
        and reference.failed is None
        and _replaced_setting_was_invalid(frame)
    ):
        return "every-setting-value-is-checked"
    if frame_type == 0x5 and hyper.failed is None and reference.failed is None:
        promised = int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF if len(frame) >= 13 else 0
        if promised not in hyper.streams and promised in reference.streams:
            return "malformed-promise-is-refused"
    if (
        frame_type == 0x5
        and hyper.failed is None
        and reference.failed == ErrorCodes.PROTOCOL_ERROR
    ):
        return "push-refused-before-acknowledgement"
    if mine is not None and mine.state == "malformed" and reference.failed is not None:
        return "malformed-is-a-stream-error"
    if mine is not None and theirs is not None and mine.state == "malformed":
        for block in (theirs.headers, theirs.informational):
            if block is not None and _invalid(block):
                return "invalid-fields-are-malformed"
        status = _header_value(theirs.headers or theirs.informational, b":status")
        if status is not None and not (len(status) == 3 and status.isdigit()):
            return "status-must-be-three-digits"
        if theirs.headers is not None and _bad_content_length(theirs.headers):
            return "content-length-must-be-one-number"
    if (
        mine is not None
        and theirs is not None
        and mine.state == "malformed"
        and theirs.state == "ended"
        and frame_type in (0x1, 0x9)
        and _length_differs(theirs)
    ):
        return "content-length-checked-at-the-end-of-any-frame"
    no_content = stream_id == 5 or _header_value(
        (mine.headers if mine is not None else None), b":status"
    ) in (b"204", b"304")
    if mine is not None and theirs is not None and no_content:
        if mine.state == "ended" and reference.failed is not None:
            return "no-content-whatever-content-length"  # h2 wanted the content-length
        if mine.state == "malformed" and frame_type == 0x0 and theirs.body:
            return "no-content-whatever-content-length"  # h2 took content it cannot have
    if hyper.failed == ErrorCodes.STREAM_CLOSED and reference.failed is None:
        return "frames-after-end-stream-end-the-connection"
    if (
        hyper.failed is None
        and reference.failed is not None
        and "ConnectionState.CLOSED" in reference.reason
        and _saw_goaway(history)
    ):
        return "goaway-does-not-close-the-state-machine"
    if (
        frame_type in (0x1, 0x2, 0x9)
        and mine is not None
        and mine.state == f"reset-by-client:{int(ErrorCodes.PROTOCOL_ERROR)}"
        and _depends_on_itself(history, stream_id)
    ):
        return "self-dependency-is-a-stream-error"
    if hyper.failed == ErrorCodes.COMPRESSION_ERROR and reference.failed is None:
        return "header-block-size-limit"
    if (
        hyper.failed is None
        and reference.failed is not None
        and mine is not None
        and mine.state.startswith("reset-by-server:")
    ):
        return "frames-on-a-peer-reset-stream"
    return None


def _invalid(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether hyper's checks find a response header block malformed."""
    try:
        check_response(headers)
    except MalformedHeaders:
        return True
    return False


def _bad_content_length(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a header block's content-length values are not one number (RFC 9110 8.6)."""
    values = {value.strip() for name, value in headers if name == b"content-length"}
    return len(values) > 1 or any(not value.isdigit() for value in values)


def _length_differs(view: StreamView) -> bool:
    """Whether a response's body differs from its (valid, single) content-length."""
    announced = _header_value(view.headers, b"content-length")
    if announced is None or not announced.isdigit():
        return False
    status = _header_value(view.headers, b":status")
    return status not in (b"204", b"304") and int(announced) != len(view.body)


def _same_streams(hyper: View, reference: View) -> bool:
    """Whether the streams' data agree (their end states may differ once the connection
    failed: each client reports the failure in its own way)."""
    for stream_id in set(hyper.streams) | set(reference.streams):
        mine, theirs = hyper.streams.get(stream_id), reference.streams.get(stream_id)
        if mine is None or theirs is None:
            continue
        if (mine.headers, mine.body, mine.trailers) != (
            theirs.headers,
            theirs.body,
            theirs.trailers,
        ):
            return False
    return True


def _depends_on_itself(history: bytes, stream_id: int) -> bool:
    """Whether a PRIORITY frame, or a HEADERS frame with priority, made ``stream_id`` depend
    on itself."""
    for kind, frame in frames_of(history):
        if len(frame) < 9 or int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF != stream_id:
            continue
        start = 9
        if kind == 0x1 and frame[4] & 0x20:
            start += 1 if frame[4] & 0x8 else 0
        elif kind != 0x2:
            continue
        dependency = frame[start : start + 4]
        if len(dependency) == 4 and int.from_bytes(dependency, "big") & 0x7FFFFFFF == stream_id:
            return True
    return False


def _replaced_setting_was_invalid(frame: bytes) -> bool:
    """Whether a SETTINGS frame holds an invalid value that a later value of the same setting
    replaces (the only value h2 then checks)."""
    entries = [
        (
            int.from_bytes(frame[pos : pos + 2], "big"),
            int.from_bytes(frame[pos + 2 : pos + 6], "big"),
        )
        for pos in range(9, len(frame) - 5, 6)
    ]
    for index, (setting, value) in enumerate(entries):
        replaced = any(later == setting for later, _ in entries[index + 1 :])
        if replaced and not _valid_setting(setting, value):
            return True
    return False


def _valid_setting(setting: int, value: int) -> bool:
    """Whether a client accepts ``value`` for ``setting`` from a server (RFC 9113 6.5.2)."""
    if setting == SettingCodes.ENABLE_PUSH:
        return value == 0
    if setting == SettingCodes.INITIAL_WINDOW_SIZE:
        return value <= 2**31 - 1
    if setting == SettingCodes.MAX_FRAME_SIZE:
        return 2**14 <= value <= 2**24 - 1
    if setting == SettingCodes.ENABLE_CONNECT_PROTOCOL:
        return value in (0, 1)
    return True


def _padding_fills_the_frame(frame: bytes) -> bool:
    """Whether a PADDED frame's padding takes exactly all the room left for its content."""
    if len(frame) < 10:
        return False
    room = len(frame) - 10
    if frame[3] == 0x1 and frame[4] & 0x20:
        room -= 5
    elif frame[3] == 0x5:
        room -= 4
    return frame[9] == room


def _summary(history: bytes) -> list[str]:
    """The frames of ``history``, one short line each (for a failure's message)."""
    lines = []
    for kind, frame in frames_of(history):
        stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF if len(frame) >= 9 else -1
        flags = frame[4] if len(frame) > 4 else -1
        lines.append(f"type {kind} stream {stream_id} flags {flags:#x} {frame[9:30]!r}")
    return lines


def _saw_goaway(history: bytes) -> bool:
    return any(kind == 0x7 for kind, _ in frames_of(history))


# -- the test -------------------------------------------------------------------------------------


def _differences(hyper: View, reference: View) -> list[str]:
    found = []
    if hyper.failed != reference.failed:
        found.append(f"connection: hyper {hyper.failed}, h2 {reference.failed}")
    for stream_id in sorted(set(hyper.streams) | set(reference.streams)):
        mine, theirs = hyper.streams.get(stream_id), reference.streams.get(stream_id)
        if mine != theirs:
            found.append(f"stream {stream_id}: hyper {mine}, h2 {theirs}")
    return found


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print the tally after the module's tests; write it as JSON if asked to."""
    yield
    if not TALLY:
        return
    print("\ndifferential test, hyper vs h2:", dict(TALLY))
    path = os.environ.get("HYPER_DIFFERENTIAL_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"counts": dict(TALLY), "reasons": REASONS}, out, indent=2)


@fuzz(ci_default=2000)
@given(script=frame_script(), data=st.data(), enable_push=st.booleans())
def test_hyper_and_h2_agree(script: bytes, data: Any, enable_push: bool) -> None:
    hyper, reference = HyperClient(enable_push), H2Client(enable_push)
    TALLY["cases"] += 1
    history = b""
    for kind, frame in frames_of(script):
        if len(frame) > 2 and data.draw(st.integers(0, 4)) == 0:
            cut = data.draw(st.integers(1, len(frame) - 1))
            pieces = [frame[:cut], frame[cut:]]
        else:
            pieces = [frame]
        for piece in pieces:
            hyper.feed(piece)
            reference.feed(piece)
        history += frame
        mine, theirs = hyper.view(), reference.view()
        found = _differences(mine, theirs)
        if not found:
            if mine.failed is not None:
                TALLY["both rejected"] += 1
                return
            continue
        reason = explain(frame, kind, mine, theirs, history)
        assert reason is not None, (
            f"hyper and h2 differ after frame {frame[:40]!r} (type {kind}), for no known "
            f"reason: {found}; h2 said {theirs.reason!r}; the frames so far: "
            f"{_summary(history)}"
        )
        TALLY[reason] += 1
        return
    TALLY["both accepted"] += 1
