"""
RFC 9113 sections 3 to 6.5, the rules the conformance table (docs/conformance/rfc9113.csv)
found no other test for: the preface, frame format and sizes, field blocks, stream states
and identifiers, error handling, extensibility, and the DATA, HEADERS, PRIORITY, RST_STREAM
and SETTINGS frames.

Two ways in. What hyper must do with what a server sends is driven through the sans-I/O
:class:`~hyper.http20.engine.Engine` with byte strings built by hand. What hyper sends is
checked both there and on the wire: :func:`wire_session` runs one busy session of an
:class:`hyper.HTTP20Connection` (a field block split into CONTINUATION frames, an upload, a
cancelled response with DATA still in flight, a request the server resets mid-upload, PINGs
and SETTINGS both ways, a GOAWAY at the end) against a raw peer that records every frame the
client sent, byte for byte, reserved bit included.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hpack
import pytest
from hpack.hpack import decode_integer
from hyperframe.frame import SettingsFrame, WindowUpdateFrame

from hyper import HTTP20Connection
from hyper.common.exceptions import HyperError
from hyper.http20.engine import Engine
from hyper.http20.errors import ErrorCodes, SettingCodes
from hyper.http20.exceptions import (
    HTTP20Error,
    ProtocolError,
    StreamResetError,
)
from hyper.http20.stream import Stream
from hyper.tls import init_context
from tests.support.engine_peer import (
    PREFACE,
    REQUEST,
    fails_connection,
    requested,
    settings,
    started,
)
from tests.support.helpers import quickly
from tests.support.hostile import RawFrame, RawH2Peer, frame_bytes
from tests.support.scripted import ScriptedRawServer

RawFactory = Callable[..., ScriptedRawServer]

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

#: The flags each frame type defines (section 6); every other bit is undefined.
DEFINED_FLAGS = {
    DATA: END_STREAM | PADDED,
    HEADERS: END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG,
    PRIORITY: 0,
    RST_STREAM: 0,
    SETTINGS: ACK,
    PUSH_PROMISE: END_HEADERS | PADDED,
    PING: ACK,
    GOAWAY: 0,
    WINDOW_UPDATE: 0,
    CONTINUATION: END_HEADERS,
}

OK = [(b":status", b"200")]


# -- the engine, driven with byte strings ---------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One frame the client sent, as raw fields: ``stream_word`` keeps the reserved bit."""

    type: int
    flags: int
    stream_word: int
    payload: bytes

    @property
    def stream_id(self) -> int:
        return self.stream_word & 0x7FFFFFFF


def parse(data: bytes) -> list[Sent]:
    """The frames in ``data`` (after the client preface, if it starts with one), unchecked."""
    if data.startswith(PREFACE):
        data = data[len(PREFACE) :]
    frames = []
    while data:
        assert len(data) >= 9, f"a truncated frame header: {data!r}"
        length = int.from_bytes(data[:3], "big")
        assert len(data) >= 9 + length, "a truncated frame"
        frames.append(
            Sent(data[3], data[4], int.from_bytes(data[5:9], "big"), data[9 : 9 + length])
        )
        data = data[9 + length :]
    return frames


def raw(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame with exactly these fields (``stream_id`` may carry the reserved bit)."""
    return frame_bytes(kind, flags, stream_id, payload)


def goaway(sent: bytes) -> tuple[int, int] | None:
    """The last stream id and error code of the GOAWAY in ``sent``, if any."""
    frames = [f for f in parse(sent) if f.type == GOAWAY]
    if not frames:
        return None
    last, code = struct.unpack(">LL", frames[-1].payload[:8])
    return last & 0x7FFFFFFF, code


def resets(sent: bytes) -> list[tuple[int, int]]:
    return [
        (f.stream_id, int.from_bytes(f.payload, "big"))
        for f in parse(sent)
        if f.type == RST_STREAM
    ]


# -- a busy session on the wire -------------------------------------------------------------------


@dataclass(frozen=True)
class WireFrame(Sent):
    """A frame the client sent, its header as it was on the wire (``length`` included)."""

    length: int


class RecordingPeer(RawH2Peer):
    """A :class:`RawH2Peer` that also keeps every frame the client sent, header included."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, timeout=5)
        self.wire: list[WireFrame] = []

    def _pop(self) -> RawFrame | None:
        header = bytes(self.buffer[:9])
        frame = super()._pop()
        if frame is not None:
            self.wire.append(
                WireFrame(
                    type=header[3],
                    flags=header[4],
                    stream_word=int.from_bytes(header[5:9], "big"),
                    payload=frame.payload,
                    length=int.from_bytes(header[:3], "big"),
                )
            )
        return frame


@dataclass
class Session:
    """What :func:`wire_session` saw: the client's frames in order, and the stream ids of
    the scenario's requests."""

    wire: list[WireFrame]
    streams: dict[bytes, int]
    #: Index in ``wire`` of the client's PING sent once it knew the server reset /reset.
    reset_known_at: int
    #: Index in ``wire`` of the client's RST_STREAM of /cancel.
    cancelled_at: int
    settings_acks: int


BIG_VALUE = "v" * 40_000
UPLOAD = bytes(range(256)) * 400  # 102,400 bytes: several DATA frames


def _serve(peer: RecordingPeer) -> None:
    """The server's half of :func:`wire_session`."""
    peer.handshake({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    # Room for the whole upload on the connection; a PING and a second SETTINGS to answer.
    peer.send(
        WindowUpdateFrame(0, window_increment=1 << 20),
        raw(PING, 0, 0, b"serverpg"),
        SettingsFrame(0, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 50}),
    )
    handled: set[int] = set()
    late_sent = False
    while not peer.eof.is_set():
        for request in list(peer.requests.values()):
            sid = request.stream_id
            if sid in handled:
                continue
            if request.path == b"/cancel":
                peer.send(peer.headers_frame(sid, OK), raw(DATA, 0, sid, b"start"))
                handled.add(sid)
            elif request.path == b"/reset" and len(request.body) >= 4:
                peer.rst(sid, ErrorCodes.CANCEL)
                handled.add(sid)
            elif request.path not in (b"/cancel", b"/reset") and request.ended:
                peer.respond(sid, b"%d" % len(request.body))
                handled.add(sid)
        cancel = next((r.stream_id for r in peer.requests.values() if r.path == b"/cancel"), None)
        if cancel in peer.rst_codes and not late_sent:
            # DATA that was in flight when the client's RST_STREAM arrived.
            peer.send(raw(DATA, 0, cancel, b"late"), raw(DATA, END_STREAM, cancel, b"late"))
            late_sent = True
        try:
            if peer.read_frame(5) is None:
                return
        except TimeoutError:
            return


def wire_session(scripted_raw_server: RawFactory) -> Session:
    peers: list[RecordingPeer] = []

    def handler(sock: socket.socket) -> None:
        peer = RecordingPeer(sock)
        peers.append(peer)
        _serve(peer)

    with scripted_raw_server(handler) as server:
        with (
            HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
            quickly(10),
        ):
            big = conn.request("GET", "/big", headers={"x-big": BIG_VALUE})
            assert conn.get_response(big).read() == b"0"
            upload = conn.request("POST", "/upload", body=UPLOAD)
            assert conn.get_response(upload).read() == str(len(UPLOAD)).encode()
            cancel = conn.request("GET", "/cancel")
            response = conn.get_response(cancel)
            assert response.read(5) == b"start"
            response.close()  # RST_STREAM(CANCEL); the server still sends what was on its way
            reset = conn.putrequest("POST", "/reset")
            conn.endheaders(b"part", final=False, stream_id=reset)
            with pytest.raises(StreamResetError):
                conn.get_response(reset)
            conn.ping(b"rstknown")
            with pytest.raises(HyperError):
                conn.send(b"more", final=True, stream_id=reset)
            last = conn.request("GET", "/last")
            assert conn.get_response(last).read() == b"0"
        server.join_handlers()
    (peer,) = peers
    streams = {r.path: r.stream_id for r in peer.requests.values()}
    wire = peer.wire
    return Session(
        wire=wire,
        streams=streams,
        reset_known_at=next(
            i for i, f in enumerate(wire) if f.type == PING and f.payload == b"rstknown"
        ),
        cancelled_at=next(
            i
            for i, f in enumerate(wire)
            if f.type == RST_STREAM and f.stream_id == streams[b"/cancel"]
        ),
        settings_acks=peer.settings_ack_count,
    )


@pytest.fixture
def session(scripted_raw_server: RawFactory) -> Session:
    return wire_session(scripted_raw_server)


# -- 3.2, 3.3: starting HTTP/2 over TLS -----------------------------------------------------------


def test_rfc9113_3_2_tls_offers_h2_never_h2c_and_then_sends_the_preface(
    scripted_raw_server: RawFactory, ca_cert_path: Path
) -> None:
    """A server that prefers "h2c" over "h2": had hyper offered "h2c" in ALPN, the server
    would have chosen it. It chooses "h2", and the first bytes after the handshake are the
    client preface."""
    chosen: list[str | None] = []
    first_bytes = bytearray()

    def handler(sock: ssl.SSLSocket) -> None:
        chosen.append(sock.selected_alpn_protocol())
        sock.settimeout(5)
        while len(first_bytes) < len(PREFACE) + 9:
            piece = sock.recv(65536)
            if not piece:
                break
            first_bytes.extend(piece)

    with scripted_raw_server(handler, tls=True, alpn=("h2c", "h2", "http/1.1")) as server:
        context = init_context(cert_path=str(ca_cert_path))
        with HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        ) as conn:
            conn.connect()
            server.join_handlers()
    assert chosen == ["h2"]
    assert bytes(first_bytes).startswith(PREFACE)
    assert first_bytes[len(PREFACE) + 3] == SETTINGS


def test_rfc9113_3_2_a_server_speaking_only_h2c_over_tls_is_refused(
    scripted_raw_server: RawFactory, ca_cert_path: Path
) -> None:
    """ "h2c" is never an ALPN choice hyper accepts: no protocol is agreed, and nothing is
    sent."""
    received = bytearray()

    def handler(sock: ssl.SSLSocket) -> None:
        sock.settimeout(5)
        while piece := sock.recv(65536):
            received.extend(piece)

    with scripted_raw_server(handler, tls=True, alpn=("h2c",)) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        )
        with quickly(), pytest.raises(HTTP20Error, match="HTTP/2"):
            conn.request("GET", "/")
        conn.close()
        server.join_handlers()
    assert bytes(received) == b""


# -- 3.4: the preface -----------------------------------------------------------------------------


def test_rfc9113_3_4_the_client_preface_is_the_magic_then_settings_on_the_wire(
    session: Session,
) -> None:
    # RecordingPeer.read_preface checked the 24 bytes of magic; the first frame follows.
    first = session.wire[0]
    assert (first.type, first.flags, first.stream_word) == (SETTINGS, 0, 0)


def test_rfc9113_3_4_server_settings_are_acknowledged_after_the_client_preface() -> None:
    """Even when the server's SETTINGS arrive before hyper wrote its preface, the ACK goes out
    after it; and every SETTINGS frame of the server is acknowledged."""
    engine = Engine()
    engine.start()
    engine.receive_data(settings(max_concurrent_streams=10) + settings(initial_window_size=1))
    sent = engine.data_to_send()
    assert sent.startswith(PREFACE)
    frames = parse(sent)
    assert (frames[0].type, frames[0].flags) == (SETTINGS, 0)
    assert [(f.type, f.flags) for f in frames[-2:]] == [(SETTINGS, ACK), (SETTINGS, ACK)]


def test_rfc9113_3_4_server_settings_are_acknowledged_on_the_wire(session: Session) -> None:
    acks = [f for f in session.wire if f.type == SETTINGS and f.flags & ACK]
    assert len(acks) == session.settings_acks == 2  # the preface's and the later one
    assert session.wire.index(acks[0]) > 0  # after the client's own SETTINGS


@pytest.mark.parametrize(
    "first",
    [
        raw(PING, 0, 0, b"12345678"),
        raw(SETTINGS, ACK, 0),
        raw(HEADERS, END_HEADERS, 1, b"\x88"),
        b"HTTP/1.1 200 OK\r\n\r\n",
    ],
    ids=["ping", "settings-ack", "headers", "http1"],
)
def test_rfc9113_3_4_an_invalid_server_preface_is_a_protocol_error(first: bytes) -> None:
    engine = Engine()
    engine.start()
    engine.send_headers(1, REQUEST, end_stream=True)
    engine.data_to_send()
    with pytest.raises(ProtocolError) as info:
        engine.receive_data(first)
    assert info.value.error_code == ErrorCodes.PROTOCOL_ERROR
    assert engine.error is info.value
    with pytest.raises(ProtocolError):
        engine.receive_data(raw(SETTINGS, 0, 0))  # the connection is over


# -- 4.1: frame format ----------------------------------------------------------------------------


def test_rfc9113_4_1_client_frames_carry_only_defined_flags(session: Session) -> None:
    types = {f.type for f in session.wire}
    assert {SETTINGS, HEADERS, CONTINUATION, DATA, RST_STREAM, PING, GOAWAY} <= types
    undefined = [f for f in session.wire if f.flags & ~DEFINED_FLAGS[f.type]]
    assert undefined == []


def test_rfc9113_4_1_client_frames_keep_the_reserved_bit_clear(session: Session) -> None:
    assert [f for f in session.wire if f.stream_word & 0x80000000] == []
    # The 31-bit fields inside frames have a reserved bit too (WINDOW_UPDATE, GOAWAY).
    for frame in session.wire:
        if frame.type in (WINDOW_UPDATE, GOAWAY):
            assert not frame.payload[0] & 0x80, frame


def test_rfc9113_4_1_client_frames_fit_the_default_frame_size(session: Session) -> None:
    """The server advertised no SETTINGS_MAX_FRAME_SIZE: every frame is at most 2^14 octets,
    the 40 kB header and the 100 kB upload included."""
    assert all(f.length <= 16384 for f in session.wire)
    assert any(f.type == CONTINUATION for f in session.wire)
    assert sum(f.length for f in session.wire if f.type == DATA) >= len(UPLOAD)


def test_rfc9113_4_1_undefined_flags_on_known_frames_are_ignored() -> None:
    engine, server, stream = requested(enable_push=False)
    block = server.block([(b":status", b"200"), (b"x-long", b"v" * 50)])
    engine.receive_data(
        raw(PRIORITY, 0xFF, 1, b"\0\0\0\0\x10")
        + raw(SETTINGS, 0xFE, 0, struct.pack(">HL", SettingCodes.INITIAL_WINDOW_SIZE, 70000))
        + raw(PING, 0xFE, 0, b"pingpong")
        + raw(WINDOW_UPDATE, 0xFF, 0, struct.pack(">L", 10))
        + raw(HEADERS, 0xD2, 1, block[:10])  # END_HEADERS, END_STREAM, PADDED, PRIORITY unset
        + raw(CONTINUATION, 0xFB, 1, block[10:20])  # END_HEADERS unset
        + raw(CONTINUATION, 0xFF, 1, block[20:])
        + raw(DATA, 0xF6, 1, b"body")  # END_STREAM and PADDED unset
        + raw(DATA, 0xF7, 1, b"!")
    )
    assert engine.error is None
    assert stream.response_headers == [(b":status", b"200"), (b"x-long", b"v" * 50)]
    assert stream.take(None) == b"body!" and stream.finished and stream.error is None
    assert engine.peer_initial_window == 70000
    sent = parse(engine.data_to_send())
    assert [(f.type, f.flags) for f in sent] == [(SETTINGS, ACK), (PING, ACK)]
    assert sent[1].payload == b"pingpong"


def test_rfc9113_4_1_the_reserved_bit_is_ignored_on_receipt() -> None:
    engine, server, stream = requested(end_stream=False)
    reserved = 0x80000000
    engine.receive_data(
        server.headers(1 | reserved, [(b":status", b"200")])
        + raw(DATA, 0, 1 | reserved, b"body")
        + raw(WINDOW_UPDATE, 0, 1 | reserved, struct.pack(">L", 100))
        + raw(WINDOW_UPDATE, 0, reserved, struct.pack(">L", 100))
        + raw(PING, 0, reserved, b"pingpong")
        + raw(DATA, END_STREAM, 1 | reserved, b"")
    )
    assert engine.error is None
    assert stream.response_headers == [(b":status", b"200")]
    assert stream.take(None) == b"body" and stream.remote_closed
    assert stream.send_window == 65535 + 100 and engine.send_window == 65535 + 100
    assert [(f.type, f.flags) for f in parse(engine.data_to_send())] == [(PING, ACK)]


# -- 4.2: frame size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (raw(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, b"\0\0\0"), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(HEADERS, END_HEADERS | PADDED, 1, b""), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(PUSH_PROMISE, END_HEADERS, 1, b"\0\0"), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(PUSH_PROMISE, END_HEADERS | PADDED, 1, b""), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(DATA, PADDED, 1, b""), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(SETTINGS, 0, 0, b"\0" * 7), ErrorCodes.FRAME_SIZE_ERROR),
        (raw(WINDOW_UPDATE, 0, 0, b"\0\0\0\1\0"), ErrorCodes.FRAME_SIZE_ERROR),
    ],
    ids=[
        "headers-too-short-for-priority",
        "headers-padded-empty",
        "push-promise-too-short",
        "push-promise-padded-empty",
        "data-padded-empty",
        "settings",
        "window-update-on-stream-0",
    ],
)
def test_rfc9113_4_2_size_errors_that_could_change_connection_state_end_it(
    frame: bytes, code: int
) -> None:
    """Field-block frames, SETTINGS and frames on stream 0 whose size is wrong: a connection
    error FRAME_SIZE_ERROR (the header blocks would desynchronise HPACK otherwise)."""
    engine, _, _ = requested(enable_push=True)
    fails_connection(engine, frame, code)


def test_rfc9113_4_2_a_frame_of_exactly_the_default_maximum_is_accepted() -> None:
    engine, server, stream = requested()
    body = b"m" * 16384
    engine.receive_data(server.headers(1, OK) + raw(DATA, END_STREAM, 1, body))
    assert stream.take(None) == body and stream.finished and engine.error is None


# -- 4.3: field blocks ----------------------------------------------------------------------------


def test_rfc9113_4_3_an_unknown_frame_inside_a_field_block_is_a_protocol_error() -> None:
    engine, server, _ = requested()
    block = server.block(OK)
    fails_connection(
        engine,
        raw(HEADERS, 0, 1, block[:1]) + raw(0xFA, 0, 1, b"?") + raw(CONTINUATION, END_HEADERS, 1),
        ErrorCodes.PROTOCOL_ERROR,
    )


def test_rfc9113_4_3_1_a_lower_server_table_size_starts_the_next_block_with_an_update() -> None:
    """The server lowers SETTINGS_HEADER_TABLE_SIZE to 100 after hyper filled its table: the
    next request's block starts with a table size update to at most 100, and a decoder held
    to 100 octets reads every block."""
    engine, _ = started()
    decoder = hpack.Decoder()
    headers = [*REQUEST, (b"x-first", b"a" * 60), (b"x-second", b"b" * 60)]
    engine.send_headers(1, headers, end_stream=True)
    (frame,) = parse(engine.data_to_send())
    assert decoder.decode(frame.payload, raw=True) == headers
    engine.receive_data(settings(header_table_size=100))
    assert [(f.type, f.flags) for f in parse(engine.data_to_send())] == [(SETTINGS, ACK)]
    decoder.max_allowed_table_size = 100
    for stream_id in (3, 5):
        engine.send_headers(stream_id, headers, end_stream=True)
        (frame,) = parse(engine.data_to_send())
        if stream_id == 3:
            assert frame.payload[0] & 0xE0 == 0x20, "no dynamic table size update"
            size, _ = decode_integer(frame.payload, 5)
            assert size <= 100
        assert decoder.decode(frame.payload, raw=True) == headers
        assert decoder.header_table_size <= 100


def test_rfc9113_4_3_1_hyper_never_lowers_its_own_table_size() -> None:
    """hyper's SETTINGS never carry SETTINGS_HEADER_TABLE_SIZE: the server's encoder keeps
    the default 4096 octets, so no table size update is ever owed to hyper (and a block the
    server starts with one up to 4096 is accepted)."""
    for enable_push in (False, True):
        engine = Engine(enable_push=enable_push)
        engine.start()
        (first, *_rest) = parse(engine.data_to_send())
        ids = [
            int.from_bytes(first.payload[i : i + 2], "big")
            for i in range(0, len(first.payload), 6)
        ]
        assert SettingCodes.HEADER_TABLE_SIZE not in ids
    engine, server, stream = requested()
    update = b"\x3f\xe1\x1f"  # a table size update to 4096
    engine.receive_data(raw(HEADERS, END_HEADERS | END_STREAM, 1, update + server.block(OK)))
    assert stream.response_headers == OK and engine.error is None


# -- 5.1: stream states ---------------------------------------------------------------------------


@pytest.mark.parametrize("enable_push", [False, True], ids=["push-disabled", "push-enabled"])
@pytest.mark.parametrize("stream_id", [2, 4, 5], ids=["even-2", "even-4", "odd-unused"])
def test_rfc9113_5_1_headers_on_an_idle_stream_is_a_protocol_error(
    enable_push: bool, stream_id: int
) -> None:
    """HEADERS on a stream nobody opened (an even one the server never promised, or an odd
    one hyper has not used yet)."""
    engine, server, _ = requested(enable_push=enable_push)
    error = fails_connection(
        engine, server.headers(stream_id, OK, end_stream=True), ErrorCodes.PROTOCOL_ERROR
    )
    assert "never opened" in str(error)


def test_rfc9113_5_1_on_a_reserved_stream_the_client_sends_only_a_reset() -> None:
    engine, server, _ = requested(enable_push=True)
    (event,) = engine.receive_data(server.promise(1, 2))
    pushed = event.stream  # type: ignore[attr-defined]
    assert pushed.reserved
    # Nothing goes out for the promise itself, and no HEADERS or DATA can.
    assert [f for f in parse(engine.data_to_send()) if f.stream_id == 2] == []
    with pytest.raises(HTTP20Error):
        engine.send_headers(2, REQUEST, end_stream=True)
    with pytest.raises(HTTP20Error):
        engine.send_data(pushed, b"x", end_stream=True)
    assert engine.sendable(pushed) == 0
    engine.acknowledge(pushed, 0)
    assert engine.data_to_send() == b""
    assert engine.reset_stream(pushed, ErrorCodes.CANCEL)
    assert [(f.type, f.stream_id) for f in parse(engine.data_to_send())] == [(RST_STREAM, 2)]


def test_rfc9113_5_1_data_on_a_reserved_stream_is_a_protocol_error() -> None:
    engine, server, _ = requested(enable_push=True)
    engine.receive_data(server.promise(1, 2))
    fails_connection(engine, raw(DATA, 0, 2, b"early"), ErrorCodes.PROTOCOL_ERROR)


def test_rfc9113_5_1_window_update_on_a_reserved_stream_is_a_protocol_error() -> None:
    engine, server, _ = requested(enable_push=True)
    engine.receive_data(server.promise(1, 2))
    fails_connection(
        engine, raw(WINDOW_UPDATE, 0, 2, struct.pack(">L", 100)), ErrorCodes.PROTOCOL_ERROR
    )


def test_rfc9113_5_1_headers_rst_and_priority_are_allowed_on_a_reserved_stream() -> None:
    engine, server, _ = requested(enable_push=True)
    (event,) = engine.receive_data(server.promise(1, 2) + server.promise(1, 4))[:1]
    pushed = event.stream  # type: ignore[attr-defined]
    engine.receive_data(
        raw(PRIORITY, 0, 2, b"\0\0\0\1\x10")
        + server.headers(2, OK)
        + raw(DATA, END_STREAM, 2, b"pushed")
        + raw(PRIORITY, 0, 4, b"\0\0\0\1\x10")
        + raw(RST_STREAM, 0, 4, struct.pack(">L", ErrorCodes.CANCEL))
    )
    assert engine.error is None
    assert pushed.take(None) == b"pushed" and pushed.finished


@pytest.mark.parametrize("kind", ["data", "headers"])
def test_rfc9113_5_1_frames_on_a_half_closed_remote_stream_are_stream_closed(kind: str) -> None:
    """The server ended its response while hyper is still uploading: another DATA or HEADERS
    on the stream is a stream error STREAM_CLOSED; the connection goes on."""
    engine, server, stream = requested(end_stream=False)
    engine.receive_data(server.headers(1, OK, end_stream=True))
    assert stream.remote_closed and not stream.local_closed and stream.finished
    extra = raw(DATA, 0, 1, b"more") if kind == "data" else server.headers(1, [(b"x-t", b"1")])
    engine.receive_data(extra)
    assert engine.error is None
    assert resets(engine.data_to_send()) == [(1, ErrorCodes.STREAM_CLOSED)]
    assert stream.response_headers == OK and stream.error is None  # the response stands
    second = engine.send_headers(3, REQUEST, end_stream=True)
    engine.receive_data(server.headers(3, OK, end_stream=True))
    assert second.finished and second.error is None


def test_rfc9113_5_1_window_update_and_rst_on_a_half_closed_remote_stream_are_fine() -> None:
    engine, server, stream = requested(end_stream=False)
    engine.receive_data(server.headers(1, OK, end_stream=True))
    engine.receive_data(
        raw(WINDOW_UPDATE, 0, 1, struct.pack(">L", 10)) + raw(PRIORITY, 0, 1, b"\0\0\0\0\x10")
    )
    assert stream.send_window == 65535 + 10
    assert engine.error is None and engine.data_to_send() == b""
    engine.receive_data(raw(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.NO_ERROR)))
    assert engine.error is None and engine.data_to_send() == b""


def test_rfc9113_5_1_nothing_is_sent_on_a_closed_stream() -> None:
    """A stream both sides ended, one hyper reset and one the server reset: reading the rest
    of a body, resetting, sending and late frames put nothing on the wire for them."""
    engine, server = started()
    ended = engine.send_headers(1, REQUEST, end_stream=True)
    engine.receive_data(server.headers(1, OK) + raw(DATA, END_STREAM, 1, b"x" * 5000))
    reset_here = engine.send_headers(3, REQUEST, end_stream=True)
    reset_there = engine.send_headers(5, REQUEST, end_stream=False)
    engine.receive_data(server.headers(3, OK) + raw(DATA, 0, 3, b"y" * 5000))
    assert engine.reset_stream(reset_here, ErrorCodes.CANCEL)
    engine.receive_data(raw(RST_STREAM, 0, 5, struct.pack(">L", ErrorCodes.CANCEL)))
    engine.data_to_send()
    for stream in (ended, reset_here):
        engine.acknowledge(stream, len(stream.take(None)))
        assert not engine.reset_stream(stream, ErrorCodes.CANCEL)
    assert not engine.reset_stream(reset_there, ErrorCodes.CANCEL)
    with pytest.raises(HTTP20Error):
        engine.send_data(reset_there, b"z", end_stream=True)
    engine.receive_data(raw(DATA, END_STREAM, 3, b"late") + raw(WINDOW_UPDATE, 0, 5, b"\0\0\0\1"))
    assert engine.error is None
    closed = [f for f in parse(engine.data_to_send()) if f.stream_id in (1, 3, 5)]
    assert closed == []


def test_rfc9113_5_1_late_frames_are_judged_without_timers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether a frame on a closed stream is an error depends on how the stream closed, not
    on the time since: a day later, late frames on a stream hyper reset are still ignored,
    and a frame after END_STREAM is still a connection error."""
    engine, server = started()
    reset_here = engine.send_headers(1, REQUEST, end_stream=True)
    engine.send_headers(3, REQUEST, end_stream=True)
    engine.receive_data(server.headers(3, OK, end_stream=True))
    engine.reset_stream(reset_here, ErrorCodes.CANCEL)
    engine.data_to_send()
    later = time.time() + 86400
    monotonic_later = time.monotonic() + 86400
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "monotonic", lambda: monotonic_later)
    engine.receive_data(server.headers(1, OK) + raw(DATA, END_STREAM, 1, b"late"))
    assert engine.error is None and engine.data_to_send() == b""
    fails_connection(engine, raw(DATA, 0, 3, b"after the end"), ErrorCodes.STREAM_CLOSED)


def test_rfc9113_5_1_nothing_is_sent_on_a_stream_after_its_reset_on_the_wire(
    session: Session,
) -> None:
    cancel = session.streams[b"/cancel"]
    after = [f for f in session.wire[session.cancelled_at + 1 :] if f.stream_id == cancel]
    assert after == []


# -- 5.1.1: stream identifiers --------------------------------------------------------------------


def test_rfc9113_5_1_1_stream_ids_on_the_wire_are_odd_and_increasing(session: Session) -> None:
    opened = [f.stream_id for f in session.wire if f.type == HEADERS]
    assert opened == sorted(set(opened)), opened  # increasing, never reused
    assert all(sid % 2 for sid in opened)
    assert len(opened) == len(session.streams) == 5


def test_rfc9113_5_1_1_putrequest_ids_go_out_in_order() -> None:
    """A stream id handed out by putrequest() and one by a later request(): the lower id's
    HEADERS must go first, so the later request is refused while the first is pending."""
    engine, _ = started()
    engine.send_headers(5, REQUEST, end_stream=True)
    for stream_id in (1, 3, 5):
        with pytest.raises(HTTP20Error):
            engine.send_headers(stream_id, REQUEST, end_stream=True)
    engine.send_headers(7, REQUEST, end_stream=True)
    assert [f.stream_id for f in parse(engine.data_to_send())] == [5, 7]


# -- 5.1.2: concurrency ---------------------------------------------------------------------------


def test_rfc9113_5_1_2_server_streams_beyond_the_advertised_limit_are_refused() -> None:
    engine, server, _ = requested(end_stream=False, enable_push=True)
    engine.receive_data(raw(SETTINGS, ACK, 0))  # the server now knows the limit of 100
    promised = list(range(2, 2 + 2 * 101, 2))
    for stream_id in promised:
        engine.receive_data(server.promise(1, stream_id))
    for stream_id in promised:
        engine.receive_data(server.headers(stream_id, OK))  # each one now open
    assert engine.error is None
    refused = resets(engine.data_to_send())
    assert [sid for sid, _ in refused] == [promised[-1]]
    assert refused[0][1] in (ErrorCodes.PROTOCOL_ERROR, ErrorCodes.REFUSED_STREAM)


# -- 5.4: error handling --------------------------------------------------------------------------


def test_rfc9113_5_4_a_frame_with_several_faults_is_reported_once() -> None:
    """RST_STREAM on stream 0 with the wrong length: one GOAWAY. A response block malformed
    three ways: one RST_STREAM."""
    engine, _, _ = requested()
    with pytest.raises(ProtocolError):
        engine.receive_data(raw(RST_STREAM, 0, 0, b"\0"))
    assert [f.type for f in parse(engine.data_to_send())] == [GOAWAY]
    engine, server, stream = requested()
    bad = [(b"X-Upper", b"1"), (b"connection", b"close"), (b":status", b"abc")]
    engine.receive_data(server.headers(1, bad, end_stream=True))
    assert resets(engine.data_to_send()) == [(1, ErrorCodes.PROTOCOL_ERROR)]
    assert isinstance(stream.error, ProtocolError) and engine.error is None


def test_rfc9113_5_4_1_goaway_names_the_last_server_stream_and_the_error() -> None:
    """The last-stream-id of a client's GOAWAY is the highest server-initiated stream it
    processed: 0 without pushes, the last promised stream with them."""
    engine, _, _ = requested()
    with pytest.raises(ProtocolError):
        engine.receive_data(raw(PING, 0, 0, b"short"))
    assert goaway(engine.data_to_send()) == (0, ErrorCodes.FRAME_SIZE_ERROR)
    engine, server, _ = requested(end_stream=False, enable_push=True)
    engine.receive_data(server.promise(1, 2) + server.promise(1, 4))
    engine.data_to_send()
    with pytest.raises(ProtocolError):
        engine.receive_data(raw(DATA, 0, 0, b"x"))
    assert goaway(engine.data_to_send()) == (4, ErrorCodes.PROTOCOL_ERROR)


def test_rfc9113_5_4_2_a_reset_is_never_answered_with_a_reset() -> None:
    engine, _, stream = requested(end_stream=False)
    for _ in range(3):
        engine.receive_data(raw(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.INTERNAL_ERROR)))
        assert engine.data_to_send() == b""
    assert stream.reset_by_peer and not engine.reset_stream(stream, ErrorCodes.CANCEL)
    assert engine.data_to_send() == b"" and engine.error is None


# -- 5.5: extensibility ---------------------------------------------------------------------------


def test_rfc9113_5_5_unknown_error_codes_and_settings_are_not_errors() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        raw(SETTINGS, 0, 0, struct.pack(">HL", 0x4242, 7) + struct.pack(">HL", 0xFFFF, 2**32 - 1))
        + raw(RST_STREAM, 0, 1, struct.pack(">L", 0xABCD))
    )
    assert engine.error is None
    assert stream.reset_by_peer and stream.reset_code == 0xABCD
    with pytest.raises(StreamResetError) as info:
        stream.raise_if_failed()
    assert info.value.error_code == 0xABCD
    assert [(f.type, f.flags) for f in parse(engine.data_to_send())] == [(SETTINGS, ACK)]
    second = engine.send_headers(3, REQUEST, end_stream=True)
    engine.receive_data(server.headers(3, OK, end_stream=True))
    assert second.finished and second.error is None


def test_rfc9113_5_5_unknown_frame_types_are_discarded_anywhere() -> None:
    engine, server, stream = requested()
    engine.receive_data(
        raw(0x0A, 0xFF, 0, b"x" * 100)
        + raw(0x42, 0, 1, b"")
        + server.headers(1, OK)
        + raw(0xFF, 0xFF, 1 | 0x80000000, b"y")
        + raw(0x10, 0, 77, b"idle stream")
        + raw(DATA, END_STREAM, 1, b"body")
    )
    assert engine.error is None and engine.data_to_send() == b""
    assert stream.take(None) == b"body" and stream.finished


def test_rfc9113_5_5_the_client_uses_no_extension_it_did_not_negotiate(session: Session) -> None:
    """Only RFC 9113's frame types (no PUSH_PROMISE, which only servers send) and settings."""
    assert {f.type for f in session.wire} <= set(DEFINED_FLAGS) - {PUSH_PROMISE}
    first = session.wire[0]
    ids = {
        int.from_bytes(first.payload[i : i + 2], "big") for i in range(0, len(first.payload), 6)
    }
    assert ids <= {1, 2, 3, 4, 5, 6}, ids


# -- 6.1, 6.2: DATA and HEADERS -------------------------------------------------------------------


def test_rfc9113_6_1_the_client_sends_no_padded_data(session: Session) -> None:
    frames = [f for f in session.wire if f.type == DATA]
    assert frames and not any(f.flags & PADDED for f in frames)


@pytest.mark.parametrize("pad", [5, 6, 255])
def test_rfc9113_6_1_data_padding_as_long_as_the_payload_is_a_protocol_error(pad: int) -> None:
    """A payload of 5 octets (the pad length and 4 more): padding of 5 or more leaves a
    negative amount of data."""
    engine, server, _ = requested()
    engine.receive_data(server.headers(1, OK))
    payload = bytes([pad]) + b"abcd"
    fails_connection(engine, raw(DATA, PADDED, 1, payload), ErrorCodes.PROTOCOL_ERROR)


def test_rfc9113_6_1_padding_that_leaves_no_data_is_fine() -> None:
    engine, server, stream = requested()
    engine.receive_data(server.headers(1, OK) + raw(DATA, PADDED | END_STREAM, 1, b"\x04\0\0\0\0"))
    assert engine.error is None and stream.finished and stream.take(None) == b""


def test_rfc9113_6_2_the_client_sends_no_padded_or_prioritised_headers(session: Session) -> None:
    frames = [f for f in session.wire if f.type == HEADERS]
    assert frames and not any(f.flags & (PADDED | PRIORITY_FLAG) for f in frames)


@pytest.mark.parametrize("priority", [False, True], ids=["plain", "with-priority"])
def test_rfc9113_6_2_headers_padding_as_long_as_the_payload_is_a_protocol_error(
    priority: bool,
) -> None:
    engine, server, _ = requested()
    fragment = (b"\0\0\0\0\x10" if priority else b"") + server.block(OK)
    payload = bytes([len(fragment) + 1]) + fragment
    flags = END_HEADERS | PADDED | (PRIORITY_FLAG if priority else 0)
    fails_connection(engine, raw(HEADERS, flags, 1, payload), ErrorCodes.PROTOCOL_ERROR)


# -- 6.4: RST_STREAM ------------------------------------------------------------------------------


def test_rfc9113_6_4_after_a_server_reset_the_client_sends_nothing_on_the_stream() -> None:
    """The server resets an upload: no more DATA (the caller's send fails), no
    WINDOW_UPDATE for body read afterwards, no RST_STREAM back."""
    engine, server, stream = requested(end_stream=False)
    engine.receive_data(server.headers(1, OK) + raw(DATA, 0, 1, b"d" * 4000))
    engine.receive_data(raw(RST_STREAM, 0, 1, struct.pack(">L", ErrorCodes.CANCEL)))
    assert engine.sendable(stream) == 0
    with pytest.raises(HTTP20Error):
        engine.send_data(stream, b"more", end_stream=True)
    engine.acknowledge(stream, len(stream.take(None)))
    assert not engine.reset_stream(stream, ErrorCodes.CANCEL)
    assert [f for f in parse(engine.data_to_send()) if f.stream_id == 1] == []


def test_rfc9113_6_4_after_a_server_reset_nothing_more_goes_out_on_the_wire(
    session: Session,
) -> None:
    reset = session.streams[b"/reset"]
    after = [f for f in session.wire[session.reset_known_at :] if f.stream_id == reset]
    assert all(f.type == PRIORITY for f in after), after


def test_rfc9113_6_4_the_client_never_resets_an_idle_stream() -> None:
    engine, _ = started()
    idle = Stream(1, engine.window_manager_class(65535), 65535)
    assert not engine.reset_stream(idle, ErrorCodes.CANCEL)
    opened = engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    assert not engine.reset_stream(Stream(5, engine.window_manager_class(65535), 65535))
    assert engine.data_to_send() == b""
    assert engine.reset_stream(opened, ErrorCodes.CANCEL)
    assert resets(engine.data_to_send()) == [(3, ErrorCodes.CANCEL)]


def test_rfc9113_6_4_resets_on_the_wire_name_only_opened_streams(session: Session) -> None:
    opened: set[int] = set()
    resets_seen = 0
    for frame in session.wire:
        if frame.type == HEADERS:
            opened.add(frame.stream_id)
        elif frame.type == RST_STREAM:
            resets_seen += 1
            assert frame.stream_id in opened, frame
    assert resets_seen >= 1


# -- 6.5: SETTINGS --------------------------------------------------------------------------------


def test_rfc9113_6_5_every_setting_of_the_server_is_understood() -> None:
    """All six settings in one frame: the table size (an update starts the next block),
    push (0), the stream limit, the initial window, the frame size (a larger field block
    goes out in fewer frames) and the advisory header list size."""
    engine = Engine()
    engine.start()
    engine.data_to_send()
    engine.receive_data(
        settings(
            header_table_size=0,
            enable_push=0,
            max_concurrent_streams=2,
            initial_window_size=1000,
            max_frame_size=32768,
            max_header_list_size=1 << 20,
        )
    )
    assert engine.error is None
    assert [(f.type, f.flags) for f in parse(engine.data_to_send())] == [(SETTINGS, ACK)]
    assert engine.peer_max_concurrent_streams == 2
    assert engine.peer_initial_window == 1000
    assert engine.peer_max_frame_size == 32768
    stream = engine.send_headers(1, [*REQUEST, (b"x-big", b"b" * 30000)], end_stream=False)
    engine.send_headers(3, REQUEST, end_stream=True)
    assert not engine.can_open_stream()
    frames = parse(engine.data_to_send())
    assert [f.type for f in frames] == [HEADERS, HEADERS]  # 30 kB fit one 32 kB frame
    assert frames[0].payload[0] == 0x20  # a table size update to 0 first
    assert engine.encoder.header_table_size == 0
    assert engine.sendable(stream) == 1000


def test_rfc9113_6_5_settings_acknowledgements_are_empty(session: Session) -> None:
    acks = [f for f in session.wire if f.type == SETTINGS and f.flags & ACK]
    assert acks and all(f.length == 0 and f.payload == b"" and f.stream_word == 0 for f in acks)


def test_rfc9113_6_5_the_engine_acknowledges_with_an_empty_frame() -> None:
    engine, _ = started()
    engine.receive_data(settings(max_concurrent_streams=5, initial_window_size=100))
    assert engine.data_to_send() == b"\0\0\0" + bytes([SETTINGS, ACK]) + b"\0\0\0\0"


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack(">HL", SettingCodes.ENABLE_PUSH, 2),
        struct.pack(">HL", SettingCodes.ENABLE_CONNECT_PROTOCOL, 7),
        struct.pack(">HL", SettingCodes.MAX_FRAME_SIZE, 0),
        struct.pack(">HL", SettingCodes.MAX_CONCURRENT_STREAMS, 5)
        + struct.pack(">HL", SettingCodes.ENABLE_PUSH, 2**32 - 1),
    ],
    ids=["enable-push-2", "connect-protocol-7", "frame-size-0", "bad-value-after-a-good-one"],
)
def test_rfc9113_6_5_a_badly_formed_settings_frame_is_a_protocol_error(payload: bytes) -> None:
    engine, _ = started()
    fails_connection(engine, raw(SETTINGS, 0, 0, payload), ErrorCodes.PROTOCOL_ERROR)


def test_rfc9113_6_5_an_incomplete_settings_frame_is_awaited_not_applied() -> None:
    """A SETTINGS frame arriving in pieces is applied, and acknowledged, only once whole."""
    engine, _ = started()
    frame = settings(max_concurrent_streams=3, initial_window_size=500)
    for index in range(len(frame) - 1):
        engine.receive_data(frame[index : index + 1])
        assert engine.peer_max_concurrent_streams != 3 and engine.data_to_send() == b""
    engine.receive_data(frame[-1:])
    assert engine.peer_max_concurrent_streams == 3 and engine.peer_initial_window == 500
    assert [(f.type, f.flags) for f in parse(engine.data_to_send())] == [(SETTINGS, ACK)]
