"""
The HTTP/2 engine without I/O: byte strings in, byte strings, stream records and events out.

Grouped by what RFC 9113 asks of a client. The server's side is built by hand from raw frames
(``raw_frame``) and ``hpack``, so that anything, well-formed or not, can be sent; what the
engine sends is parsed back with ``hyperframe``.
"""

from __future__ import annotations

import base64
import struct
import tracemalloc

import hpack
import pytest

from hyper.http20.engine import MAX_HEADER_BLOCK, Engine
from hyper.http20.errors import ErrorCodes, SettingCodes
from hyper.http20.events import GoAwayReceived, PingAcknowledged, PushPromised
from hyper.http20.exceptions import (
    ConnectionError,
    HPACKDecodingError,
    HTTP20Error,
    ProtocolError,
    StreamResetError,
)
from hyper.http20.window import BaseFlowControlManager
from tests.fuzz.h2frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    raw_frame,
)
from tests.support.engine_peer import (
    PREFACE,
    REQUEST,
    Server,
    data,
    fails_connection,
    frame_types,
    goaway_code,
    requested,
    rst_codes,
    sent_frames,
    started,
)

# -- the connection preface and SETTINGS (sections 3.4, 6.5) ------------------------------------


def test_the_preface_is_the_magic_then_one_settings_frame_then_the_window() -> None:
    engine = Engine()
    engine.start()
    sent = engine.data_to_send()
    assert sent.startswith(PREFACE)
    frames = list(sent_frames(sent))
    assert [type(f).__name__ for f in frames] == ["SettingsFrame", "WindowUpdateFrame"]
    settings = frames[0].settings
    assert settings[SettingCodes.ENABLE_PUSH] == 0
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == 4 * 1024 * 1024
    assert settings[SettingCodes.MAX_FRAME_SIZE] == 1024 * 1024
    assert settings[SettingCodes.MAX_HEADER_LIST_SIZE] == 64 * 1024
    assert frames[1].stream_id == 0
    assert frames[1].window_increment == 16 * 1024 * 1024 - 65535


def test_enabling_push_also_limits_the_pushes_in_flight() -> None:
    engine = Engine(enable_push=True)
    engine.start()
    settings = next(sent_frames(engine.data_to_send())).settings
    assert settings[SettingCodes.ENABLE_PUSH] == 1
    assert settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 100


def test_the_upgrade_settings_header_is_the_settings_payload_in_base64url() -> None:
    engine = Engine()
    value = engine.upgrade_settings()
    assert b"=" not in value
    payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    pairs = dict(struct.iter_unpack(">HL", payload))
    assert pairs[SettingCodes.INITIAL_WINDOW_SIZE] == 4 * 1024 * 1024


def test_after_an_upgrade_stream_1_awaits_the_response() -> None:
    engine = Engine()
    stream = engine.start_upgraded(head_request=False)
    assert stream.stream_id == 1 and stream.local_closed
    assert engine.settings_acknowledged
    engine.data_to_send()
    server = Server()
    engine.receive_data(
        raw_frame(SETTINGS, 0, 0, b"") + server.headers(1, [(b":status", b"200")], True)
    )
    assert stream.response_headers == [(b":status", b"200")]
    assert stream.finished and not engine.streams


def test_a_server_that_does_not_start_with_settings_is_not_http2() -> None:
    engine = Engine()
    engine.start()
    engine.data_to_send()
    with pytest.raises(ProtocolError, match=r"did not answer with HTTP/2.*HTTP/1\.1 400"):
        engine.receive_data(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert engine.data_to_send() == b""  # no GOAWAY to something that is not HTTP/2


def test_the_preface_is_judged_on_its_first_five_bytes_even_one_at_a_time() -> None:
    engine = Engine()
    for byte in b"HTTP":
        engine.receive_data(bytes([byte]))
    with pytest.raises(ProtocolError):
        engine.receive_data(b"/")


def test_server_settings_are_applied_and_acknowledged() -> None:
    engine = Engine()
    engine.start()
    engine.data_to_send()
    engine.receive_data(Server.settings(max_concurrent_streams=7, max_frame_size=32768))
    assert engine.peer_max_concurrent_streams == 7
    assert engine.peer_max_frame_size == 32768
    assert engine.peer_settings_received
    assert frame_types(engine.data_to_send()) == ["SettingsFrame"]  # the ACK


def test_the_acknowledgement_of_our_settings_is_recorded() -> None:
    engine, _ = started()
    assert not engine.settings_acknowledged
    engine.receive_data(raw_frame(SETTINGS, 0x1, 0, b""))
    assert engine.settings_acknowledged
    assert engine.data_to_send() == b""


@pytest.mark.parametrize(
    ("payload", "flags", "stream_id", "code"),
    [
        (b"\0" * 5, 0, 0, ErrorCodes.FRAME_SIZE_ERROR),  # not a multiple of 6
        (b"\0" * 6, 0x1, 0, ErrorCodes.FRAME_SIZE_ERROR),  # an ACK with a payload
        (b"", 0, 1, ErrorCodes.PROTOCOL_ERROR),  # on a stream
        (struct.pack(">HL", 2, 1), 0, 0, ErrorCodes.PROTOCOL_ERROR),  # ENABLE_PUSH = 1
        (struct.pack(">HL", 4, 2**31), 0, 0, ErrorCodes.FLOW_CONTROL_ERROR),
        (struct.pack(">HL", 5, 16383), 0, 0, ErrorCodes.PROTOCOL_ERROR),
        (struct.pack(">HL", 5, 2**24), 0, 0, ErrorCodes.PROTOCOL_ERROR),
    ],
    ids=[
        "bad-length",
        "ack-with-payload",
        "on-a-stream",
        "enable-push-1",
        "window-too-large",
        "frame-size-too-small",
        "frame-size-too-large",
    ],
)
def test_invalid_settings_are_connection_errors(
    payload: bytes, flags: int, stream_id: int, code: int
) -> None:
    engine, _ = started()
    fails_connection(engine, raw_frame(SETTINGS, flags, stream_id, payload), code)


def test_unknown_settings_are_ignored() -> None:
    engine, _ = started()
    engine.receive_data(raw_frame(SETTINGS, 0, 0, struct.pack(">HL", 0x99, 5)))
    assert engine.error is None


def test_a_new_initial_window_changes_open_streams_send_windows() -> None:
    engine, _, stream = requested(end_stream=False)
    assert stream.send_window == 65535
    engine.receive_data(Server.settings(initial_window_size=100))
    assert stream.send_window == 100
    assert engine.sendable(stream) == 100


# -- sending requests ----------------------------------------------------------------------------


def test_a_request_is_one_headers_frame() -> None:
    engine, _ = started()
    stream = engine.send_headers(1, REQUEST, end_stream=True)
    (frame,) = sent_frames(engine.data_to_send())
    assert type(frame).__name__ == "HeadersFrame"
    assert frame.stream_id == 1 and {"END_STREAM", "END_HEADERS"} <= set(frame.flags)
    assert hpack.Decoder().decode(frame.data, raw=True) == REQUEST
    assert stream.local_closed and engine.open_count == 1


def test_a_large_header_block_is_split_into_continuations() -> None:
    engine, _ = started()
    headers = [*REQUEST, (b"x-big", b"v" * 40000)]
    engine.send_headers(1, headers, end_stream=True)
    frames = list(sent_frames(engine.data_to_send()))
    assert [type(f).__name__ for f in frames] == [
        "HeadersFrame",
        "ContinuationFrame",
        "ContinuationFrame",
    ]
    assert all(len(f.data) <= 16384 for f in frames)
    assert "END_STREAM" in frames[0].flags and "END_HEADERS" in frames[-1].flags
    block = b"".join(f.data for f in frames)
    assert hpack.Decoder().decode(block, raw=True) == headers


@pytest.mark.parametrize("stream_id", [2, 1, 0, 2**31 + 1])
def test_stream_ids_must_be_odd_and_increasing(stream_id: int) -> None:
    engine, _ = started()
    engine.send_headers(1, REQUEST, end_stream=True)
    with pytest.raises(HTTP20Error):
        engine.send_headers(stream_id, REQUEST, end_stream=True)


def test_the_server_limit_on_streams_is_respected() -> None:
    engine = Engine()
    engine.start()
    engine.receive_data(Server.settings(max_concurrent_streams=1))
    assert engine.can_open_stream()
    engine.send_headers(1, REQUEST, end_stream=True)
    assert not engine.can_open_stream()


def test_body_data_is_split_into_frames_the_server_accepts() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.receive_data(raw_frame(WINDOW_UPDATE, 0, 1, struct.pack(">L", 100000)))
    engine.receive_data(raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 100000)))
    body = bytes(range(256)) * 160  # 40960 bytes
    assert engine.sendable(stream) >= len(body)
    engine.send_data(stream, body, end_stream=True)
    frames = list(sent_frames(engine.data_to_send()))
    assert [len(f.data) for f in frames] == [16384, 16384, 8192]
    assert ["END_STREAM" in f.flags for f in frames] == [False, False, True]
    assert b"".join(f.data for f in frames) == body
    assert stream.local_closed


def test_body_data_beyond_the_window_is_refused() -> None:
    engine, _, stream = requested(end_stream=False)
    with pytest.raises(HTTP20Error, match="flow-control window"):
        engine.send_data(stream, b"x" * 65536, end_stream=False)
    engine.send_data(stream, b"x" * 65535, end_stream=False)
    assert engine.sendable(stream) == 0


def test_window_updates_reopen_the_send_windows() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.send_data(stream, b"x" * 65535, end_stream=False)
    engine.receive_data(raw_frame(WINDOW_UPDATE, 0, 1, struct.pack(">L", 10)))
    assert engine.sendable(stream) == 0  # the connection's window is still closed
    engine.receive_data(raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 20)))
    assert engine.sendable(stream) == 10


def test_an_empty_end_stream_ends_the_request() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.end_stream(stream)
    (frame,) = sent_frames(engine.data_to_send())
    assert type(frame).__name__ == "DataFrame" and "END_STREAM" in frame.flags
    with pytest.raises(HTTP20Error, match="already ended"):
        engine.send_data(stream, b"more", end_stream=False)


# -- receiving responses (section 8.1) ------------------------------------------------------------


def test_a_response_is_filed_under_its_stream() -> None:
    engine, server, stream = requested()
    events = engine.receive_data(
        server.headers(1, [(b":status", b"200"), (b"content-length", b"5")])
        + data(1, b"hel")
        + data(1, b"lo", end=True)
    )
    assert events == []
    assert stream.response_headers == [(b":status", b"200"), (b"content-length", b"5")]
    assert list(stream.chunks) == [b"hel", b"lo"]
    assert stream.buffered == 5 and stream.finished and stream.remote_closed
    assert not engine.streams and engine.open_count == 0


def test_frames_cut_anywhere_give_the_same_result() -> None:
    engine, server, stream = requested()
    payload = (
        server.headers(1, [(b":status", b"200")])
        + data(1, b"a" * 1000)
        + data(1, b"b" * 3000, end=True)
    )
    for index in range(len(payload)):
        engine.receive_data(payload[index : index + 1])
    assert stream.take(None) == b"a" * 1000 + b"b" * 3000
    assert stream.finished


def test_informational_responses_are_dropped_before_the_final_one() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        server.headers(1, [(b":status", b"100")])
        + server.headers(1, [(b":status", b"103"), (b"link", b"</a>")])
        + server.headers(1, [(b":status", b"200")], end_stream=True)
    )
    assert stream.response_headers == [(b":status", b"200")]
    assert stream.finished and stream.error is None


def test_trailers_end_the_stream() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        server.headers(1, [(b":status", b"200")])
        + data(1, b"body")
        + server.headers(1, [(b"x-checksum", b"1")], end_stream=True)
    )
    assert stream.trailers == [(b"x-checksum", b"1")]
    assert stream.finished and stream.error is None


def test_an_empty_data_frame_is_visible_but_never_twice_in_a_row() -> None:
    engine, server, stream = requested()
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + data(1, b"") * 1000)
    assert list(stream.chunks) == [b""]


def test_a_padded_data_frame_delivers_only_its_data() -> None:
    engine, server, stream = requested()
    padded = raw_frame(DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0")
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + padded)
    assert stream.take(None) == b"abc"
    # The padding and its length byte counted as consumed at once; the data when read.
    assert stream.window_manager.window_size == 4 * 1024 * 1024 - 4


def test_head_responses_and_204_and_304_have_no_body_whatever_their_length() -> None:
    engine, server = started()
    head = [(b":method", b"HEAD"), *REQUEST[1:]]
    for stream_id, headers, status in ((1, head, b"200"), (3, REQUEST, b"304")):
        stream = engine.send_headers(stream_id, headers, end_stream=True)
        engine.receive_data(
            server.headers(stream_id, [(b":status", status), (b"content-length", b"10")], True)
        )
        assert stream.finished and stream.error is None


def test_the_whole_body_can_go_straight_into_a_sink() -> None:
    import io

    engine, server, stream = requested()
    stream.sink = io.BytesIO()
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + data(1, b"x" * 5000))
    assert stream.sink.getvalue() == b"x" * 5000
    assert stream.buffered == 0 and stream.unacknowledged == 0


# -- malformed responses are stream errors (section 8.1.1) ----------------------------------------


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([(b"content-type", b"x")], "without a :status"),
        ([(b":status", b"abc")], "invalid :status"),
        ([(b":status", b"200"), (b"X-Upper", b"1")], "uppercase"),
        ([(b":status", b"200"), (b"connection", b"close")], "connection-specific"),
        ([(b":status", b"200"), (b"content-length", b"x1")], "invalid content-length"),
        (
            [(b":status", b"200"), (b"content-length", b"1"), (b"content-length", b"2")],
            "conflicting",
        ),
    ],
)
def test_malformed_response_headers_reset_only_their_stream(
    headers: list[tuple[bytes, bytes]], problem: str
) -> None:
    engine, server, stream = requested()
    bystander = engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    engine.receive_data(server.headers(1, headers, end_stream=True))
    assert isinstance(stream.error, ProtocolError)
    assert problem in str(stream.error)
    assert rst_codes(engine.data_to_send()) == [(1, ErrorCodes.PROTOCOL_ERROR)]
    engine.receive_data(server.headers(3, [(b":status", b"200")], end_stream=True))
    assert bystander.finished and bystander.error is None


@pytest.mark.parametrize(
    ("body", "announced"), [(b"short", b"100"), (b"much longer", b"3")], ids=["short", "long"]
)
def test_a_body_that_differs_from_its_content_length_is_malformed(
    body: bytes, announced: bytes
) -> None:
    engine, server, stream = requested()
    engine.receive_data(
        server.headers(1, [(b":status", b"200"), (b"content-length", announced)])
        + data(1, body, end=True)
    )
    assert isinstance(stream.error, ProtocolError)
    assert "content-length" in str(stream.error)
    assert engine.error is None


def test_an_informational_response_ending_the_stream_is_malformed() -> None:
    engine, server, stream = requested()
    engine.receive_data(server.headers(1, [(b":status", b"103")], end_stream=True))
    assert isinstance(stream.error, ProtocolError)
    assert engine.error is None


def test_trailers_that_do_not_end_the_stream_are_malformed() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        server.headers(1, [(b":status", b"200")]) + server.headers(1, [(b"x-t", b"1")])
    )
    assert isinstance(stream.error, ProtocolError)


def test_data_before_the_response_headers_is_malformed() -> None:
    engine, _, stream = requested()
    engine.receive_data(data(1, b"early"))
    assert isinstance(stream.error, ProtocolError)


# -- stream states (section 5.1) ------------------------------------------------------------------


def test_frames_on_an_idle_stream_are_connection_errors() -> None:
    engine, _ = started()
    fails_connection(engine, data(101, b"never opened", True), ErrorCodes.PROTOCOL_ERROR)


@pytest.mark.parametrize("kind", [RST_STREAM, WINDOW_UPDATE])
def test_rst_stream_and_window_update_on_an_idle_stream_are_connection_errors(kind: int) -> None:
    engine, _ = started()
    fails_connection(
        engine, raw_frame(kind, 0, 5, struct.pack(">L", 1)), ErrorCodes.PROTOCOL_ERROR
    )


def test_frames_after_end_stream_are_connection_errors() -> None:
    engine, server, _ = requested()
    engine.receive_data(server.headers(1, [(b":status", b"200")], end_stream=True))
    fails_connection(engine, data(1, b"after the end"), ErrorCodes.STREAM_CLOSED)


def test_frames_on_a_stream_hyper_reset_are_ignored_and_counted() -> None:
    engine, server, stream = requested()
    engine.reset_stream(stream, ErrorCodes.CANCEL)
    assert rst_codes(engine.data_to_send()) == [(1, ErrorCodes.CANCEL)]
    before = engine.connection_manager.window_size
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + data(1, b"x" * 100))
    assert engine.error is None and engine.data_to_send() == b""
    assert engine.connection_manager.window_size == before - 100
    with pytest.raises(StreamResetError):
        stream.raise_if_failed()


def test_a_frame_after_the_server_reset_a_stream_is_answered_once() -> None:
    engine, _, stream = requested()
    engine.receive_data(raw_frame(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.CANCEL)))
    assert stream.reset_by_peer and stream.reset_code == ErrorCodes.CANCEL
    engine.receive_data(data(1, b"x") * 3)
    assert rst_codes(engine.data_to_send()) == [(1, ErrorCodes.STREAM_CLOSED)]


def test_rst_stream_refused_marks_the_request_unprocessed() -> None:
    engine, _, stream = requested()
    engine.receive_data(raw_frame(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.REFUSED_STREAM)))
    assert stream.unprocessed
    with pytest.raises(StreamResetError) as info:
        stream.raise_if_failed()
    assert info.value.error_code == ErrorCodes.REFUSED_STREAM


def test_a_reset_after_the_response_ended_changes_nothing_for_the_reader() -> None:
    engine, server, stream = requested(end_stream=False)
    engine.receive_data(server.headers(1, [(b":status", b"200")], end_stream=True))
    engine.receive_data(raw_frame(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.NO_ERROR)))
    assert stream.reset_code is None and stream.finished
    stream.raise_if_failed()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (raw_frame(RST_STREAM, 0, 1, b"\0\0\0"), ErrorCodes.FRAME_SIZE_ERROR),
        (raw_frame(RST_STREAM, 0, 0, b"\0\0\0\0"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(PING, 0, 0, b"1234567"), ErrorCodes.FRAME_SIZE_ERROR),
        (raw_frame(PING, 0, 1, b"12345678"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(GOAWAY, 0, 0, b"\0" * 7), ErrorCodes.FRAME_SIZE_ERROR),
        (raw_frame(GOAWAY, 0, 1, b"\0" * 8), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(WINDOW_UPDATE, 0, 0, b"\0\0\1"), ErrorCodes.FRAME_SIZE_ERROR),
        (raw_frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(PRIORITY, 0, 1, b"\0" * 4), ErrorCodes.FRAME_SIZE_ERROR),
        (raw_frame(PRIORITY, 0, 0, b"\0" * 5), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(DATA, 0, 0, b"x"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(HEADERS, END_HEADERS, 0, b"\x88"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(CONTINUATION, END_HEADERS, 1, b"\x88"), ErrorCodes.PROTOCOL_ERROR),
        (raw_frame(PUSH_PROMISE, END_HEADERS, 0, b"\0\0\0\2"), ErrorCodes.PROTOCOL_ERROR),
    ],
    ids=[
        "rst-length",
        "rst-stream-0",
        "ping-length",
        "ping-on-stream",
        "goaway-length",
        "goaway-on-stream",
        "window-update-length",
        "window-update-zero",
        "priority-length",
        "priority-stream-0",
        "data-stream-0",
        "headers-stream-0",
        "continuation-alone",
        "push-promise-stream-0",
    ],
)
def test_malformed_control_frames_are_connection_errors(frame: bytes, code: int) -> None:
    engine, _, _ = requested()
    fails_connection(engine, frame, code)


def test_a_priority_frame_is_ignored() -> None:
    engine, _, stream = requested()
    engine.receive_data(raw_frame(PRIORITY, 0, 1, b"\0\0\0\0\x10"))
    assert engine.error is None and not stream.finished


def test_unknown_frame_types_are_ignored() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        raw_frame(0x42, 0xFF, 1, b"whatever") + server.headers(1, [(b":status", b"200")], True)
    )
    assert stream.finished and stream.error is None


# -- header blocks (sections 4.3, 6.10) -----------------------------------------------------------


def test_a_header_block_in_continuations_is_decoded_whole() -> None:
    engine, server, stream = requested()
    block = server.block([(b":status", b"200"), (b"x-long", b"v" * 100)])
    engine.receive_data(
        raw_frame(HEADERS, END_STREAM, 1, block[:10])
        + raw_frame(CONTINUATION, 0, 1, block[10:50])
        + raw_frame(CONTINUATION, END_HEADERS, 1, block[50:])
    )
    assert stream.response_headers == [(b":status", b"200"), (b"x-long", b"v" * 100)]
    assert stream.finished


def test_empty_continuations_cost_no_memory() -> None:
    engine, server, stream = requested()
    block = server.block([(b":status", b"200")])
    engine.receive_data(raw_frame(HEADERS, END_STREAM, 1, block))
    empty = raw_frame(CONTINUATION, 0, 1, b"") * 10_000
    tracemalloc.start()
    try:
        for _ in range(20):
            engine.receive_data(empty)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 200,000 frames: one kept list entry each would be 1.6 MB.
    assert peak < 200_000, peak
    engine.receive_data(raw_frame(CONTINUATION, END_HEADERS, 1, b""))
    assert stream.response_headers == [(b":status", b"200")]
    assert stream.finished


def test_another_frame_inside_a_header_block_is_a_connection_error() -> None:
    engine, server, _ = requested()
    block = server.block([(b":status", b"200")])
    fails_connection(
        engine,
        raw_frame(HEADERS, 0, 1, block) + raw_frame(PING, 0, 0, b"12345678"),
        ErrorCodes.PROTOCOL_ERROR,
    )


def test_a_continuation_on_another_stream_is_a_connection_error() -> None:
    engine, server, _ = requested()
    block = server.block([(b":status", b"200")])
    fails_connection(
        engine,
        raw_frame(HEADERS, 0, 1, block) + raw_frame(CONTINUATION, END_HEADERS, 3, b""),
        ErrorCodes.PROTOCOL_ERROR,
    )


def test_an_undecodable_header_block_is_a_compression_error() -> None:
    engine, _, _ = requested()
    with pytest.raises(HPACKDecodingError) as info:
        engine.receive_data(raw_frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff"))
    assert info.value.error_code == ErrorCodes.COMPRESSION_ERROR
    assert goaway_code(engine.data_to_send()) == ErrorCodes.COMPRESSION_ERROR


def test_a_header_block_over_the_limit_is_refused_before_it_is_whole() -> None:
    engine, _, _ = requested()
    engine.receive_data(raw_frame(HEADERS, 0, 1, b"\0" * 100000))
    engine.receive_data(raw_frame(CONTINUATION, 0, 1, b"\0" * 100000))
    with pytest.raises(HPACKDecodingError):
        engine.receive_data(raw_frame(CONTINUATION, 0, 1, b"\0" * (MAX_HEADER_BLOCK - 190000)))


def test_a_header_list_over_the_advertised_size_is_refused() -> None:
    engine, server, _ = requested()
    headers = [(b":status", b"200"), *[(b"x-h%d" % i, b"v" * 1024) for i in range(80)]]
    with pytest.raises(HPACKDecodingError):
        engine.receive_data(server.headers(1, headers))


def test_header_blocks_of_ignored_streams_still_update_the_hpack_state() -> None:
    engine, server, stream = requested()
    engine.reset_stream(stream, ErrorCodes.CANCEL)
    # Indexed into the server's dynamic table: the engine's decoder must have seen it.
    engine.receive_data(server.headers(1, [(b":status", b"200"), (b"x-new", b"value")]))
    second = engine.send_headers(3, REQUEST, end_stream=True)
    engine.receive_data(server.headers(3, [(b":status", b"200"), (b"x-new", b"value")], True))
    assert second.response_headers == [(b":status", b"200"), (b"x-new", b"value")]


# -- frame sizes (section 4.2) --------------------------------------------------------------------


def test_a_frame_over_the_size_limit_is_refused_from_its_header() -> None:
    engine, _, _ = requested()
    header = struct.pack(">BHBBL", 0x11, 0, DATA, 0, 1)  # announces 1 MiB + 64 KiB
    fails_connection(engine, header, ErrorCodes.FRAME_SIZE_ERROR)


def test_frames_up_to_the_advertised_size_are_accepted_at_once() -> None:
    engine, server, stream = requested()
    body = b"z" * (1024 * 1024)
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + data(1, body, end=True))
    assert stream.take(None) == body


# -- flow control (sections 5.2, 6.9) -------------------------------------------------------------


def test_data_beyond_a_stream_window_is_a_flow_control_error() -> None:
    engine, server, _ = requested()
    engine.receive_data(server.headers(1, [(b":status", b"200")]))
    megabyte = data(1, b"w" * (1024 * 1024))
    engine.receive_data(megabyte * 4)
    fails_connection(engine, megabyte, ErrorCodes.FLOW_CONTROL_ERROR)


def test_consumed_data_reopens_the_stream_window() -> None:
    engine, server, stream = requested()
    engine.receive_data(server.headers(1, [(b":status", b"200")]))
    # 3 MiB and one byte of the 4 MiB window: less than a quarter is left once it is read.
    engine.receive_data(data(1, b"w" * (1024 * 1024)) * 3 + data(1, b"w"))
    engine.data_to_send()
    taken = stream.take(3 * 1024 * 1024 + 1)
    engine.acknowledge(stream, len(taken))
    updates = [f for f in sent_frames(engine.data_to_send()) if f.stream_id == 1]
    assert [type(f).__name__ for f in updates] == ["WindowUpdateFrame"]
    assert updates[0].window_increment == 3 * 1024 * 1024 + 1
    engine.receive_data(data(1, b"w" * (1024 * 1024)) * 4)  # the window is whole again
    assert engine.error is None


def test_the_connection_window_is_reopened_as_data_arrives() -> None:
    engine, server, _ = requested()
    engine.receive_data(server.headers(1, [(b":status", b"200")]))
    engine.receive_data(data(1, b"w" * (1024 * 1024)) * 3)
    assert engine.data_to_send() == b""  # 13 of 16 MiB left: nothing yet
    # 3 MiB on each of four more streams: 1 MiB left, less than a quarter of the window.
    for stream_id in (3, 5, 7, 9):
        engine.send_headers(stream_id, REQUEST, end_stream=True)
        engine.receive_data(server.headers(stream_id, [(b":status", b"200")]))
        engine.receive_data(data(stream_id, b"w" * (1024 * 1024)) * 3)
    updates = [
        f for f in sent_frames(engine.data_to_send()) if type(f).__name__ == "WindowUpdateFrame"
    ]
    assert [f.stream_id for f in updates] == [0]
    assert updates[0].window_increment == 15 * 1024 * 1024


def test_window_update_overflow_on_a_stream_resets_it() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.receive_data(raw_frame(WINDOW_UPDATE, 0, 1, struct.pack(">L", 2**31 - 1)))
    assert rst_codes(engine.data_to_send()) == [(1, ErrorCodes.FLOW_CONTROL_ERROR)]
    assert stream.reset_code == ErrorCodes.FLOW_CONTROL_ERROR and not stream.reset_by_peer


def test_window_update_overflow_on_the_connection_is_a_connection_error() -> None:
    engine, _, _ = requested()
    fails_connection(
        engine,
        raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 2**31 - 1)),
        ErrorCodes.FLOW_CONTROL_ERROR,
    )


class Stingy(BaseFlowControlManager):
    """A policy that never reopens a window."""

    def increase_window_size(self, frame_size: int) -> int:
        return 0


def test_the_window_manager_decides_when_to_reopen() -> None:
    engine, server, stream = requested(window_manager=Stingy)
    engine.receive_data(server.headers(1, [(b":status", b"200")]) + data(1, b"x" * 1000))
    engine.acknowledge(stream, len(stream.take(None)))
    assert engine.data_to_send() == b""
    assert stream.window_manager.window_size == 4 * 1024 * 1024 - 1000


# -- PING and GOAWAY (sections 6.7, 6.8) ----------------------------------------------------------


def test_a_ping_is_answered_and_an_acknowledgement_reported() -> None:
    engine, _ = started()
    engine.receive_data(raw_frame(PING, 0, 0, b"12345678"))
    (frame,) = sent_frames(engine.data_to_send())
    assert "ACK" in frame.flags and frame.opaque_data == b"12345678"
    engine.ping(b"abcdefgh")
    assert frame_types(engine.data_to_send()) == ["PingFrame"]
    events = engine.receive_data(raw_frame(PING, 0x1, 0, b"abcdefgh"))
    assert [type(e) for e in events] == [PingAcknowledged]
    assert events[0].data == b"abcdefgh" and engine.last_ping_ack == b"abcdefgh"


def test_a_graceful_goaway_marks_the_streams_above_it_unprocessed() -> None:
    engine, server = started()
    first = engine.send_headers(1, REQUEST, end_stream=True)
    second = engine.send_headers(3, REQUEST, end_stream=True)
    events = engine.receive_data(raw_frame(GOAWAY, 0, 0, struct.pack(">LL", 1, 0)))
    assert [type(e) for e in events] == [GoAwayReceived]
    assert events[0].last_stream_id == 1
    assert second.unprocessed and isinstance(second.error, ConnectionError)
    assert not first.finished and not engine.can_open_stream()
    with pytest.raises(HTTP20Error):
        engine.send_headers(5, REQUEST, end_stream=True)
    engine.receive_data(server.headers(1, [(b":status", b"200")], end_stream=True))
    assert first.finished and first.error is None


def test_a_goaway_with_an_error_fails_the_connection() -> None:
    engine, server, stream = requested()
    events = engine.receive_data(
        raw_frame(GOAWAY, 0, 0, struct.pack(">LL", 1, ErrorCodes.ENHANCE_YOUR_CALM) + b"calm")
        + server.headers(1, [(b":status", b"200")], end_stream=True)
    )
    assert [type(e) for e in events] == [GoAwayReceived]
    assert isinstance(engine.error, ConnectionError)
    assert "ENHANCE_YOUR_CALM" in str(engine.error) and "calm" in str(engine.error)
    assert stream.error is engine.error
    assert engine.data_to_send() == b""


def test_closing_sends_goaway_once() -> None:
    engine, _ = started()
    engine.close(ErrorCodes.NO_ERROR)
    engine.close(ErrorCodes.NO_ERROR)
    assert frame_types(engine.data_to_send()) == ["GoAwayFrame"]
    with pytest.raises(HTTP20Error):
        engine.send_headers(1, REQUEST, end_stream=True)


def test_a_connection_error_fails_every_open_stream() -> None:
    engine, _, stream = requested()
    with pytest.raises(ProtocolError) as info:
        engine.receive_data(raw_frame(PING, 0, 0, b"short"))
    assert stream.error is info.value
    assert not engine.streams
    with pytest.raises(ProtocolError):
        engine.receive_data(b"anything")


# -- server push (sections 6.6, 8.4) --------------------------------------------------------------

PROMISED = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/p")]


def promise(server: Server, parent: int, promised: int, headers: list = PROMISED) -> bytes:
    return raw_frame(
        PUSH_PROMISE, END_HEADERS, parent, struct.pack(">L", promised) + server.block(headers)
    )


def test_a_push_is_reported_and_its_response_filed() -> None:
    engine, server, _ = requested(enable_push=True)
    events = engine.receive_data(promise(server, 1, 2))
    (event,) = events
    assert isinstance(event, PushPromised) and event.parent_stream_id == 1
    pushed = event.stream
    assert pushed.pushed and pushed.reserved and pushed.request_headers == PROMISED
    engine.receive_data(server.headers(2, [(b":status", b"200")]) + data(2, b"pushed", True))
    assert pushed.take(None) == b"pushed" and pushed.finished and not pushed.reserved


def test_a_push_before_push_was_disabled_for_sure_is_refused() -> None:
    engine, server, _ = requested()
    assert engine.receive_data(promise(server, 1, 2)) == []
    assert rst_codes(engine.data_to_send()) == [(2, ErrorCodes.REFUSED_STREAM)]
    engine.receive_data(server.headers(2, [(b":status", b"200")]) + data(2, b"x", True))
    assert engine.error is None  # what was on the way is ignored


def test_a_push_after_the_server_acknowledged_it_is_disabled_is_a_connection_error() -> None:
    engine, server, _ = requested()
    engine.receive_data(raw_frame(SETTINGS, 0x1, 0, b""))
    fails_connection(engine, promise(server, 1, 2), ErrorCodes.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    ("parent", "promised"), [(1, 3), (2, 4), (5, 2)], ids=["odd", "on-push", "idle-parent"]
)
def test_impossible_promises_are_connection_errors(parent: int, promised: int) -> None:
    engine, server, _ = requested(enable_push=True)
    if parent == 2:
        engine.receive_data(promise(server, 1, 2))
    fails_connection(engine, promise(server, parent, promised), ErrorCodes.PROTOCOL_ERROR)


def test_a_malformed_promised_request_refuses_the_push() -> None:
    engine, server, _ = requested(enable_push=True)
    events = engine.receive_data(promise(server, 1, 2, [(b":method", b"GET")]))
    assert events == []
    assert rst_codes(engine.data_to_send()) == [(2, ErrorCodes.PROTOCOL_ERROR)]


def test_data_on_a_promised_stream_before_its_headers_is_a_connection_error() -> None:
    engine, server, _ = requested(enable_push=True)
    engine.receive_data(promise(server, 1, 2))
    fails_connection(engine, data(2, b"early"), ErrorCodes.PROTOCOL_ERROR)


def test_a_promise_on_a_stream_hyper_reset_is_refused() -> None:
    engine, server, stream = requested(enable_push=True)
    engine.reset_stream(stream, ErrorCodes.CANCEL)
    engine.data_to_send()
    assert engine.receive_data(promise(server, 1, 2)) == []
    assert rst_codes(engine.data_to_send()) == [(2, ErrorCodes.REFUSED_STREAM)]
