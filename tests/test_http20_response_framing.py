"""
Responses whose frames arrive cut anywhere, and the rules RFC 9113 sets on the frames of a
response as they arrive, against scripted HTTP/2 servers.

However the server's bytes are cut (at every byte boundary, one byte per TCP segment, in
random pieces), with interleaved streams, padded, empty and very large DATA frames, and header
blocks in HEADERS plus CONTINUATION frames, every response must come out exact. Then what the
engine enforces on the wire: flow-control windows (section 5.2, 6.9), Content-Length (section
8.1.1), DATA before the response headers, DATA on a stream hyper reset (section 5.1); the window
managers over a long body; uploads the server refused while they went out (sections 6.8, 8.7);
request header blocks larger than a frame; the server's preface in pieces (section 3.4); the
limit on concurrent streams; and an oversized header block.

Servers are :class:`~tests.support.hostile.RawH2Peer` scripts (raw frames, no h2 on the server
side) except where the server must honour flow control or parse requests strictly, which use
h2's own :class:`~tests.support.scripted.ServerConnection`.
"""

from __future__ import annotations

import functools
import hashlib
import random
import select
import socket
from collections.abc import Callable, Iterator

import h2.events
import h2.settings
import hpack
import pytest

from hyper import HTTP20Connection
from hyper.common.exceptions import InvalidRequest
from hyper.http20.errors import ErrorCodes as Codes
from hyper.http20.exceptions import (
    ConnectionError,
    HPACKDecodingError,
    ProtocolError,
    StreamResetError,
)
from hyper.http20.window import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    BaseFlowControlManager,
)
from tests.support import introspect
from tests.support.helpers import quickly
from tests.support.hostile import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    SETTINGS,
    WINDOW_UPDATE,
    KiB,
    MiB,
    PeerGone,
    RawFrame,
    RawH2Peer,
    frame_bytes,
)
from tests.support.rawframes import (
    INITIAL_WINDOW_SIZE,
    MAX_WINDOW,
    RawFactory,
    data_frame,
    header_block,
    headers_frames,
    ping_then,
    scripted,
    send_in_pieces,
    settings_frame,
    wait_closed,
    window_update,
)
from tests.support.scripted import ScriptedRawServer, ScriptedServer, ServerConnection

H2Factory = Callable[..., ScriptedServer]


# -- frames cut anywhere --------------------------------------------------------------------------

#: A body and the frames after HEADERS that carry it: plain, empty and padded DATA.
SPLIT_PIECES: list[tuple[bytes, int | None, bool]] = [
    (b"first-7", None, False),
    (b"", None, False),
    (b"padded", 3, False),
    (b"0123456789abcdefghij", None, False),
    (b"", 0, False),
    (b"z", None, True),
]
SPLIT_BODY = b"".join(payload for payload, _, _ in SPLIT_PIECES)


def split_response(stream_id: int) -> bytes:
    """HEADERS + 2 CONTINUATIONs (with content-length), then the DATA of SPLIT_PIECES."""
    out = headers_frames(stream_id, header_block(len(SPLIT_BODY), padding=12), pieces=3)
    for payload, pad, end in SPLIT_PIECES:
        out += data_frame(stream_id, payload, end=end, pad=pad)
    return out


def test_response_split_at_every_byte_boundary(scripted_raw_server: RawFactory) -> None:
    """The response arrives in two reads, split at each possible offset in turn (one
    request per offset), including inside every frame header and payload, inside the header
    block and right after the CONTINUATIONs; the last offset sends it whole. Every response
    has its status, its headers and its body exact, all on one connection."""
    length = len(split_response(1))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for cut in range(1, length + 1):
            stream_id = peer.next_request()
            response = split_response(stream_id)
            assert len(response) == length
            ping_then(peer, cut, response[:cut])
            if response[cut:]:
                peer.send(response[cut:])
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(20):
        for cut in range(1, length + 1):
            response = conn.get_response(conn.request("GET", f"/{cut}"))
            assert response.status == 200
            assert response.headers[b"content-length"] == [str(len(SPLIT_BODY)).encode()]
            assert response.headers[b"x-pad"] == [b"p" * 12]
            assert response.read() == SPLIT_BODY, f"split at {cut}"
        assert server.connection_count == 1
    assert not peers[0].rst_codes
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


@pytest.mark.parametrize("buffer_size", [1024, None], ids=["1k-buffer", "256k-buffer"])
def test_response_written_one_byte_at_a_time(
    scripted_raw_server: RawFactory, buffer_size: int | None
) -> None:
    """Every frame of two interleaved responses written one byte per TCP segment."""
    rng = random.Random(7)
    bodies = {1: bytearray(), 3: bytearray()}

    def frames() -> bytes:
        out = headers_frames(1, header_block(), pieces=2) + headers_frames(3, header_block())
        for index in range(40):
            stream_id = 1 if index % 2 else 3
            payload = bytes([index]) * rng.choice([0, 1, 9, 30, 700])
            pad = rng.choice([None, None, 0, 5])
            out += data_frame(stream_id, payload, pad=pad)
            bodies[stream_id] += payload
        return out + data_frame(1, b"", end=True) + data_frame(3, b"end", end=True)

    wire = frames()
    bodies[3] += b"end"

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        peer.start()
        send_in_pieces(peer, wire, lambda: 1)
        wait_closed(peer)

    with (
        scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _),
        quickly(20),
    ):
        first, second = conn.request("GET", "/a"), conn.request("GET", "/b")
        assert (first, second) == (1, 3)
        assert conn.get_response(second).read() == bytes(bodies[3])
        assert conn.get_response(first).read() == bytes(bodies[1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("buffer_size", [1024, 4096, None], ids=["1k", "4k", "256k"])
def test_interleaved_streams_in_random_pieces(
    scripted_raw_server: RawFactory, seed: int, buffer_size: int | None
) -> None:
    """Three responses interleaved frame by frame (plain, padded and empty DATA, frames
    smaller and larger than the socket buffer), written in random pieces, read in a random
    order: every body is exact."""
    rng = random.Random(seed)
    streams = [1, 3, 5]
    bodies = {stream_id: bytearray() for stream_id in streams}
    frames: list[bytes] = []
    for _ in range(90):
        stream_id = rng.choice(streams)
        payload = bytes([rng.randrange(256)]) * rng.choice([0, 1, 100, 511, 600, 1500, 5000])
        pad = rng.choice([None, None, None, 0, 17, 255])
        frames.append(data_frame(stream_id, payload, pad=pad))
        bodies[stream_id] += payload
    for stream_id in streams:
        frames.append(data_frame(stream_id, b"!", end=True))
        bodies[stream_id] += b"!"
    # Stream 3 announces its content-length (checked frame by frame); stream 5's header
    # block comes in HEADERS + CONTINUATION.
    head = b"".join(
        headers_frames(s, header_block(len(bodies[s]) if s == 3 else None), pieces=1 + s // 5)
        for s in streams
    )
    wire = head + b"".join(frames)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 3
        peer.start()
        send_in_pieces(peer, wire, lambda: rng.choice([1, 2, 8, 9, 10, 300, 4096, 9000]))
        wait_closed(peer)

    with (
        scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _),
        quickly(20),
    ):
        ids = [conn.request("GET", f"/{n}") for n in range(3)]
        assert ids == streams
        for stream_id in rng.sample(ids, 3):
            assert conn.get_response(stream_id).read() == bytes(bodies[stream_id])


def test_frames_larger_than_the_socket_buffer(scripted_raw_server: RawFactory) -> None:
    """With a 1 KiB socket buffer, frames of up to 70000 bytes among small ones: the body is
    exact when read in pieces of 777 bytes (a size that matches no frame boundary)."""
    sizes = [10, 511, 512, 513, 1000, 1024, 1025, 4000, 65536, 3, 70000]
    payloads = [bytes([n % 256]) * size for n, size in enumerate(sizes)]
    body = b"".join(payloads)

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(len(body)))
        out += b"".join(data_frame(stream_id, p) for p in payloads)
        peer.send(out + data_frame(stream_id, b"", end=True))
        wait_closed(peer)

    with (
        scripted(scripted_raw_server, script, buffer_size=1024) as (conn, _, _),
        quickly(10),
    ):
        response = conn.get_response(conn.request("GET", "/"))
        got = bytearray()
        while piece := response.read(777):
            assert len(piece) <= 777
            got += piece
        assert bytes(got) == body
        assert response.read() == b""


def test_zero_length_data_frames(scripted_raw_server: RawFactory) -> None:
    """Empty DATA frames between and after the body's: the body is exact, read_chunked()
    shows empty pieces without ending early, and the empty END_STREAM frame ends it."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(3))
        for payload in (b"", b"", b"a", b"", b"b", b"", b"", b"c", b""):
            out += data_frame(stream_id, payload)
        peer.send(out)
        ping_then(peer, 1, data_frame(stream_id, b""))
        peer.send(data_frame(stream_id, b"", end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(5):
        response = conn.get_response(conn.request("GET", "/"))
        chunks = list(response.read_chunked())
        assert b"".join(chunks) == b"abc"
        assert [chunk for chunk in chunks if chunk] == [b"a", b"b", b"c"]
        assert b"" in chunks
        assert conn.get_response(conn.request("GET", "/next")).read() == b"next"


# -- flow control on the wire ---------------------------------------------------------------------


def _flood(peer: RawH2Peer, *pieces: bytes) -> None:
    """Send ``pieces`` while booking whatever the client answers."""
    peer.flood(*pieces, timeout=20)


#: The default frame size a server uses.
SMALL_FRAME = 16 * 1024


@pytest.mark.parametrize(
    ("frame", "excess"),
    [(SMALL_FRAME, 10), (SMALL_FRAME, 1), (MiB, 10)],
    ids=["small-frames-straddle", "small-frames-one-byte", "1MiB-frames"],
)
def test_frame_over_the_stream_window_is_a_flow_control_error(
    scripted_raw_server: RawFactory, frame: int, excess: int
) -> None:
    """Frames fill the 4 MiB stream window (left unread) to 4 bytes short; the next frame
    (``4 + excess`` bytes) straddles the end of the window, which a sender must never do
    (RFC 9113 section 6.9.1): a connection error of type FLOW_CONTROL_ERROR, with GOAWAY."""
    count = DEFAULT_STREAM_WINDOW // frame
    assert count * frame == DEFAULT_STREAM_WINDOW

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        stream_id = peer.start()
        full = data_frame(stream_id, b"s" * frame)
        short = data_frame(stream_id, b"s" * (frame - 4))
        pieces = [headers_frames(stream_id, header_block())] + [full] * (count - 1) + [short]
        _flood(peer, *pieces)
        _flood(peer, data_frame(stream_id, b"0123456789"[: 4 + excess]))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        first, second = conn.request("GET", "/a"), conn.request("GET", "/b")
        with quickly(10), pytest.raises(ProtocolError) as caught:
            conn.get_response(first)  # the body is left unread: the window stays closed
            conn.get_response(second)
        assert caught.value.error_code == Codes.FLOW_CONTROL_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.FLOW_CONTROL_ERROR]


class NeverReopen(BaseFlowControlManager):
    """A window manager that never reopens a window."""

    def increase_window_size(self, frame_size: int) -> int:
        return 0


def test_frame_over_the_connection_window_is_a_flow_control_error(
    scripted_raw_server: RawFactory,
) -> None:
    """Four streams fill the 16 MiB connection window exactly (each stream's own window
    too); one more byte on a fifth stream, whose stream window is wide open, is over the
    connection's: a connection error of type FLOW_CONTROL_ERROR (section 6.9.1)."""
    quarter = DEFAULT_CONNECTION_WINDOW // 4
    assert quarter == DEFAULT_STREAM_WINDOW

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 5
        peer.start()
        streams = [1, 3, 5, 7, 9]
        for stream_id in streams[:4]:
            small = data_frame(stream_id, b"c" * SMALL_FRAME)
            head = headers_frames(stream_id, header_block())
            _flood(peer, head, *([small] * (quarter // SMALL_FRAME)))
        peer.send(headers_frames(9, header_block()))
        assert peer.sync(b"window-1")  # the 16 MiB were taken without complaint
        _flood(peer, data_frame(9, b"x"))
        wait_closed(peer)

    with scripted(scripted_raw_server, script, window_manager=NeverReopen) as (conn, peers, _):
        ids = [conn.request("GET", f"/{n}") for n in range(5)]
        responses = []
        with quickly(15), pytest.raises(ProtocolError) as caught:
            for stream_id in ids:
                responses.append(conn.get_response(stream_id))
            responses[-1].read()  # stream 9: waits for the byte over the connection window
        assert len(responses) == 5  # every response had arrived
        assert caught.value.error_code == Codes.FLOW_CONTROL_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.FLOW_CONTROL_ERROR]


# -- Content-Length on the wire -------------------------------------------------------------------


def _serve_after_reset(peer: RawH2Peer, stream_id: int) -> None:
    """Wait until the client reset ``stream_id``, then answer every further request."""
    assert peer.wait_for(lambda: stream_id in peer.rst_codes), f"stream {stream_id} not reset"
    peer.serve_rest()


def _assert_only_the_stream_failed(
    conn: HTTP20Connection, peer: RawH2Peer, server: ScriptedRawServer, stream_id: int
) -> None:
    """The stream was reset with PROTOCOL_ERROR, and the connection goes on."""
    with quickly(5):
        assert conn.get_response(conn.request("GET", "/next")).read() == b"next"
    assert server.connection_count == 1
    assert peer.rst_codes == {stream_id: Codes.PROTOCOL_ERROR}
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)


@pytest.mark.parametrize("separate_reads", [False, True], ids=["one-read", "two-reads"])
def test_body_over_content_length_in_the_middle(
    scripted_raw_server: RawFactory, separate_reads: bool
) -> None:
    """content-length 10; 6 bytes, then 6 more without END_STREAM: the excess is refused as
    soon as it arrives, not only at the end of the stream. RFC 9113 section 8.1.1: a body
    that differs from its Content-Length makes the response malformed, a *stream* error of
    type PROTOCOL_ERROR: only that stream is reset, the connection goes on."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        start = headers_frames(stream_id, header_block(10)) + data_frame(stream_id, b"abcdef")
        if separate_reads:
            ping_then(peer, 1, start)
            peer.send(data_frame(stream_id, b"ghijkl"))
        else:
            peer.send(start + data_frame(stream_id, b"ghijkl"))
        # Never END_STREAM: only the excess can end this.
        _serve_after_reset(peer, stream_id)

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.status == 200
        with quickly(3), pytest.raises(ProtocolError) as caught:
            response.read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert "content-length" in str(caught.value)
        _assert_only_the_stream_failed(conn, peers[0], server, 1)


def test_body_over_content_length_in_one_frame_among_good_ones(
    scripted_raw_server: RawFactory,
) -> None:
    """content-length 100; three frames of 30 bytes, then one of 11: 101 bytes, a malformed
    response (section 8.1.1), a stream error; the connection goes on."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(100))
        out += b"".join(data_frame(stream_id, b"x" * 30) for _ in range(3))
        out += data_frame(stream_id, b"y" * 11)  # 101 > 100
        out += data_frame(stream_id, b"", end=True)  # in flight on a reset stream: ignored
        peer.send(out)
        _serve_after_reset(peer, stream_id)

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(3), pytest.raises(ProtocolError) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        _assert_only_the_stream_failed(conn, peers[0], server, 1)


@pytest.mark.parametrize(
    ("payloads", "ok"),
    [
        ([b"abcd", b"efghij"], True),
        ([b"abcd", b"ef"], False),  # ends short of content-length
    ],
    ids=["exact", "short"],
)
def test_content_length_at_the_end(
    scripted_raw_server: RawFactory, payloads: list[bytes], ok: bool
) -> None:
    """content-length 10, the body ending on an empty DATA frame: exact, it is the body; short,
    the response is malformed (section 8.1.1), a stream error; the connection goes on either
    way."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(10))
        out += b"".join(data_frame(stream_id, p) for p in payloads)
        peer.send(out + data_frame(stream_id, b"", end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.status == 200
        with quickly(3):
            if ok:
                assert response.read() == b"".join(payloads)
            else:
                with pytest.raises(ProtocolError) as caught:
                    response.read()
                assert caught.value.error_code == Codes.PROTOCOL_ERROR
        with quickly(3):
            assert conn.get_response(conn.request("GET", "/next")).read() == b"next"
        assert server.connection_count == 1
    assert peers[0].rst_codes == ({} if ok else {1: Codes.PROTOCOL_ERROR})
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


@pytest.mark.parametrize("plain", [True, False], ids=["plain-data", "data-end-stream"])
def test_data_before_headers(scripted_raw_server: RawFactory, plain: bool) -> None:
    """DATA before the response's HEADERS: the response is malformed (RFC 9113 section 8.1:
    a response starts with its HEADERS; section 8.1.1), a stream error of type
    PROTOCOL_ERROR; what follows on that stream is in flight on a stream hyper reset and is
    ignored (section 5.1), and the connection goes on."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        peer.send(
            data_frame(stream_id, b"too early", end=not plain)
            + headers_frames(stream_id, header_block())
            + data_frame(stream_id, b"", end=True)
        )
        _serve_after_reset(peer, stream_id)

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(3), pytest.raises(ProtocolError) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        _assert_only_the_stream_failed(conn, peers[0], server, 1)


def test_data_on_a_reset_stream_is_ignored_and_credited(scripted_raw_server: RawFactory) -> None:
    """After hyper reset a stream, 20 MiB of DATA the server still sends on it (more than the
    16 MiB connection window) is dropped without RST_STREAM replies (section 5.1: frames in
    flight on a stream hyper reset are ignored); it still counts against the connection
    window, which is reopened for it (section 6.9), so the next response arrives."""
    late = data_frame(1, b"r" * SMALL_FRAME)

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        assert stream_id == 1
        peer.send(headers_frames(1, header_block()) + data_frame(1, b"start"))
        assert peer.wait_for(lambda: 1 in peer.rst_codes), "hyper did not reset the stream"
        _flood(peer, *([late] * (20 * MiB // SMALL_FRAME)))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        response = conn.get_response(conn.request("GET", "/first"))
        response.close()
        with quickly(10):
            assert conn.get_response(conn.request("GET", "/after")).read() == b"after"
        assert server.connection_count == 1
        assert introspect.open_ids(conn) == set()
    peer = peers[0]
    assert peer.rst_codes == {1: Codes.CANCEL}  # no STREAM_CLOSED replies to the late DATA
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)
    # The connection window was reopened for the dropped data.
    assert peer.counts[WINDOW_UPDATE] >= 2  # the one in the preface, then more


# -- flow control over a long body ----------------------------------------------------------------

#: 20 MiB with content that reveals any lost, repeated or reordered byte.
BIG_BODY = hashlib.shake_256(b"fast path").digest(64 * 1024) * 320
BIG_SHA = hashlib.sha256(BIG_BODY).hexdigest()


def _serve_big(ctx: ServerConnection, frame_size: int = SMALL_FRAME) -> None:
    """Answer every request with BIG_BODY in frames of ``frame_size``, honouring the client's
    flow-control windows."""
    ctx.handshake()
    ctx.conn.max_outbound_frame_size = frame_size
    while True:
        event = ctx.next_event(timeout=10)
        if event is None or isinstance(event, h2.events.ConnectionTerminated):
            return
        if isinstance(event, h2.events.StreamEnded):
            headers = [(b"content-length", str(len(BIG_BODY)).encode())]
            ctx.respond(event.stream_id, 200, headers, BIG_BODY, timeout=20)


@pytest.mark.parametrize(
    ("amt", "frame_size"),
    [(None, SMALL_FRAME), (65536, SMALL_FRAME), (1_000_003, SMALL_FRAME), (65536, MiB)],
)
def test_window_updates_follow_the_reader(
    scripted_server: H2Factory, amt: int | None, frame_size: int
) -> None:
    """20 MiB through a 4 MiB stream window completes only if WINDOW_UPDATEs go out as the
    caller reads, whether frames are 16 KiB or 1 MiB and whatever the read size."""
    with (
        scripted_server(functools.partial(_serve_big, frame_size=frame_size)) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=10) as conn,
        quickly(30),
    ):
        response = conn.get_response(conn.request("GET", "/big"))
        digest = hashlib.sha256()
        total = 0
        while piece := response.read(amt):
            if amt is not None:
                assert len(piece) <= amt
            digest.update(piece)
            total += len(piece)
            if amt is None:
                break
        assert total == len(BIG_BODY)
        assert digest.hexdigest() == BIG_SHA


def test_window_manager_reopening_only_when_blocked(scripted_server: H2Factory) -> None:
    """A manager that reopens a window only once it is used up: read(amt) must not stall
    (each stream window is reopened when the caller has consumed all of it)."""
    blocked_calls: list[int] = []

    class OnlyWhenBlocked(BaseFlowControlManager):
        def increase_window_size(self, frame_size: int) -> int:
            return 0

        def blocked(self) -> int:
            blocked_calls.append(self.window_size)
            return self.initial_window_size - self.window_size

    with (
        scripted_server(_serve_big) as server,
        HTTP20Connection(
            server.host, server.port, secure=False, timeout=10, window_manager=OnlyWhenBlocked
        ) as conn,
        quickly(40),
    ):
        for _ in range(2):
            response = conn.get_response(conn.request("GET", "/big"))
            digest = hashlib.sha256()
            while piece := response.read(100_000):
                digest.update(piece)
            assert digest.hexdigest() == BIG_SHA
    # 40 MiB through 4 MiB stream windows and a 16 MiB connection window.
    assert len(blocked_calls) >= 2 * (len(BIG_BODY) // DEFAULT_STREAM_WINDOW) - 2
    assert all(size <= 0 for size in blocked_calls)


# -- uploads refused while their body goes out ----------------------------------------------------

UPLOAD = bytes(range(256)) * 400  # 100 KiB, more than the first window


def _answer_upload(peer: RawH2Peer, stream_id: int) -> None:
    """Wait for the whole upload on ``stream_id`` and answer with its size and hash."""
    assert peer.wait_for(lambda: stream_id in peer.requests and peer.requests[stream_id].ended)
    body = bytes(peer.requests[stream_id].body)
    answer = b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
    peer.respond(stream_id, answer)


def _open_windows(peer: RawH2Peer) -> None:
    """Let the client send as much as it wants."""
    peer.send(
        settings_frame({INITIAL_WINDOW_SIZE: MAX_WINDOW}),
        window_update(0, MAX_WINDOW - 65535),
    )


def _withhold_window(peer: RawH2Peer) -> int:
    """Handshake with a 1000-byte stream window; return the upload's stream id once its
    first 1000 bytes are in."""
    peer.handshake({INITIAL_WINDOW_SIZE: 1000})
    stream_id = peer.next_request()
    assert peer.wait_for(lambda: len(peer.requests[stream_id].body) >= 1000)
    return stream_id


def _expected_answer() -> bytes:
    return b"%d %s" % (len(UPLOAD), hashlib.sha256(UPLOAD).hexdigest().encode())


def test_upload_refused_by_goaway_is_sent_again(scripted_raw_server: RawFactory) -> None:
    """A graceful GOAWAY below the upload's stream while its body is held back by the
    window: the server never processed it (section 6.8), so request() sends it again, whole,
    on a new connection, and the caller's stream id keeps naming it."""
    seen: list[tuple[int, int]] = []

    def script(peer: RawH2Peer, index: int) -> None:
        if index == 0:
            stream_id = _withhold_window(peer)
            seen.append((index, stream_id))
            peer.goaway(Codes.NO_ERROR, last_stream_id=0)
            wait_closed(peer)
            return
        peer.handshake()
        _open_windows(peer)
        stream_id = peer.next_request()
        seen.append((index, stream_id))
        _answer_upload(peer, stream_id)
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(5):
            handle = conn.request("POST", "/upload", body=UPLOAD)
        assert handle == 1
        with quickly(5):
            assert conn.get_response(handle).read() == _expected_answer()
            assert conn.get_response(conn.request("GET", "/next")).read() == b"next"
        assert server.connection_count == 2
    assert seen[0] == (0, 1)
    assert seen[1][0] == 1
    assert peers[0].counts[DATA] >= 1  # the first attempt's body had started
    assert not peers[0].requests[1].ended  # ... and was not finished there


def test_upload_refused_by_rst_stream_is_sent_again(scripted_raw_server: RawFactory) -> None:
    """RST_STREAM(REFUSED_STREAM) while the upload's body is held back: the request was not
    processed (section 8.7), so it goes out again, whole, on a new stream of the same
    connection; the response is collected once under the caller's stream id."""
    seen: list[int] = []

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = _withhold_window(peer)
        seen.append(stream_id)
        peer.rst(stream_id, Codes.REFUSED_STREAM)
        _open_windows(peer)
        again = peer.next_request()
        seen.append(again)
        _answer_upload(peer, again)
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, _, server):
        with quickly(5):
            handle = conn.request("POST", "/upload", body=UPLOAD)
        assert handle == 1
        with quickly(5):
            response = conn.get_response(handle)
            assert response.read() == _expected_answer()
        with pytest.raises(InvalidRequest):
            conn.get_response(handle)  # collected once
        assert server.connection_count == 1
    assert seen == [1, 3]


def _generator_body() -> Iterator[bytes]:
    """A body that cannot be sent twice."""
    for start in range(0, len(UPLOAD), 10_000):
        yield UPLOAD[start : start + 10_000]


@pytest.mark.parametrize("refusal", ["goaway", "rst"])
def test_streamed_upload_refused_midway_raises(
    scripted_raw_server: RawFactory, refusal: str
) -> None:
    """The same refusals for a body from a generator, which cannot be sent again: request()
    raises (saying it is safe to retry, for GOAWAY), leaves nothing waiting, and the
    connection (a new one after the GOAWAY) serves the next request."""

    def script(peer: RawH2Peer, index: int) -> None:
        if index == 0:
            stream_id = _withhold_window(peer)
            if refusal == "goaway":
                peer.goaway(Codes.NO_ERROR, last_stream_id=0)
                wait_closed(peer)
                return
            peer.rst(stream_id, Codes.REFUSED_STREAM)
        else:
            peer.handshake()
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(5):
            if refusal == "goaway":
                with pytest.raises(ConnectionError) as caught:
                    conn.request("POST", "/upload", body=_generator_body())
                assert caught.value.error_code == Codes.NO_ERROR
                assert "did not process" in str(caught.value)
                assert "safe to send it again" in str(caught.value)
            else:
                with pytest.raises(StreamResetError) as reset:
                    conn.request("POST", "/upload", body=_generator_body())
                assert reset.value.error_code == Codes.REFUSED_STREAM
                assert reset.value.stream_id == 1
        # Nothing is left waiting for a response, and the connection goes on.
        with pytest.raises(InvalidRequest):
            conn.get_response()
        with quickly(5):
            assert conn.get_response(conn.request("GET", "/later")).read() == b"later"
        assert server.connection_count == (2 if refusal == "goaway" else 1)
    # The refused stream went out once only: no second HEADERS for it.
    first = peers[0]
    assert 1 in first.requests
    assert sum(1 for r in first.requests.values() if r.path == b"/upload") == 1
    assert all(r.path != b"/upload" for p in peers[1:] for r in p.requests.values())


# -- request header blocks larger than a frame ----------------------------------------------------


def _echo_header_sizes(ctx: ServerConnection) -> None:
    """Answer each request with the length and hash of its x-big header and the length of
    its body (h2 checks the request's frames strictly)."""
    ctx.handshake()
    for _ in range(2):
        request = ctx.wait_for_request()
        headers, body = ctx.read_request(request.stream_id)
        big = dict(headers).get(b"x-big", b"")
        reply = f"{len(big)} {hashlib.sha256(big).hexdigest()} {len(body)}".encode()
        ctx.conn.send_headers(request.stream_id, [(b":status", b"200")])
        ctx.conn.send_data(request.stream_id, reply, end_stream=True)
        ctx.flush()
    ctx.wait_closed()


BIG_HEADER = "".join(random.Random(7).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(40_000))


def test_request_headers_larger_than_a_frame_reach_the_server_whole(
    scripted_server: H2Factory,
) -> None:
    """A 40000-byte header, over the server's 16 KiB frame size, reaches the server whole,
    for a request with a body and one without."""
    expected = f"40000 {hashlib.sha256(BIG_HEADER.encode()).hexdigest()}"
    with (
        scripted_server(_echo_header_sizes) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
    ):
        get = conn.request("GET", "/", headers={"x-big": BIG_HEADER})
        assert conn.get_response(get).read() == f"{expected} 0".encode()
        post = conn.request("POST", "/", body=b"payload", headers={"x-big": BIG_HEADER})
        assert conn.get_response(post).read() == f"{expected} 7".encode()


def test_request_headers_larger_than_a_frame_go_out_in_continuations(
    scripted_raw_server: RawFactory,
) -> None:
    """On the wire (RFC 9113 sections 4.2, 6.2 and 6.10): HEADERS then CONTINUATION frames,
    none over the server's 16 KiB frame size, nothing else in between, END_HEADERS on the
    last only, and END_STREAM on the HEADERS frame only when the request has no body."""
    received: list[RawFrame] = []

    def book_until(peer: RawH2Peer, done: Callable[[], bool]) -> None:
        """Read the client's frames, keeping each, until ``done()``."""
        while not done():
            frame = peer.read_frame()
            if frame is None:
                raise PeerGone("the client closed the connection")
            received.append(frame)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for stream_id in (1, 3):
            book_until(
                peer, lambda sid=stream_id: sid in peer.requests and peer.requests[sid].ended
            )
            big = dict(peer.requests[stream_id].headers)[b"x-big"]
            peer.respond(
                stream_id, b"%d %s" % (len(big), hashlib.sha256(big).hexdigest().encode())
            )
        wait_closed(peer)

    expected = f"40000 {hashlib.sha256(BIG_HEADER.encode()).hexdigest()}".encode()
    with scripted(scripted_raw_server, script) as (conn, peers, _), quickly():
        get = conn.request("GET", "/get", headers={"x-big": BIG_HEADER})
        assert conn.get_response(get).read() == expected
        post = conn.request("POST", "/post", body=b"payload", headers={"x-big": BIG_HEADER})
        assert conn.get_response(post).read() == expected
    assert bytes(peers[0].requests[3].body) == b"payload"

    for stream_id, has_body in ((1, False), (3, True)):
        start = next(
            n for n, f in enumerate(received) if f.type == HEADERS and f.stream_id == stream_id
        )
        block = [received[start]]
        for frame in received[start + 1 :]:
            block.append(frame)
            if frame.flags & END_HEADERS:
                break
        first, rest = block[0], block[1:]
        assert rest, f"stream {stream_id}: no CONTINUATION"
        assert all(f.type == CONTINUATION and f.stream_id == stream_id for f in rest)
        assert not first.flags & END_HEADERS
        assert [bool(f.flags & END_HEADERS) for f in rest] == [False] * (len(rest) - 1) + [True]
        assert bool(first.flags & END_STREAM) is not has_body
        assert all(len(f.payload) <= 16 * KiB for f in block)
        assert sum(len(f.payload) for f in block) > 16 * KiB


def test_head_response_with_a_length_and_no_body(scripted_server: H2Factory) -> None:
    """RFC 9113 section 8.1.1 (RFC 9110 section 9.3.2): a response to HEAD has no content
    whatever its Content-Length says. Its END_STREAM comes on an empty DATA frame."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        for _ in range(2):
            stream_id = ctx.wait_for_request().stream_id
            ctx.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"100")])
            ctx.conn.send_data(stream_id, b"", end_stream=True)
            ctx.flush()
        ctx.wait_closed()

    with (
        scripted_server(handler) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
    ):
        for _ in range(2):  # the second on a warm connection (the same header block)
            response = conn.get_response(conn.request("HEAD", "/"))
            assert response.status == 200
            assert response.headers[b"content-length"] == [b"100"]
            assert response.read() == b""
        assert server.connection_count == 1


# -- the server's preface -------------------------------------------------------------------------


@pytest.mark.parametrize("split", range(1, 9))
def test_server_preface_arriving_a_few_bytes_at_a_time(split: int) -> None:
    """The server's SETTINGS frame split after ``split`` bytes, the first piece read on its
    own (request() looks at what arrived on an idle connection before it sends): the client
    judges the preface (section 3.4) once enough of it is here, takes the server for an
    HTTP/2 server, and the response arrives."""
    settings = frame_bytes(SETTINGS, 0, 0, b"")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn = HTTP20Connection("127.0.0.1", listener.getsockname()[1], secure=False, timeout=5)
        with conn:
            conn.connect()
            sock, _ = listener.accept()
            with sock:
                peer = RawH2Peer(sock, timeout=5)
                peer.auto_ack = False  # nothing may go out between the two pieces
                peer.read_preface()
                sock.sendall(settings[:split])
                readable, _, _ = select.select([introspect.fileno(conn)], [], [], 5)
                assert readable, "the first piece never arrived"
                stream_id = conn.request("GET", "/")  # reads the first piece alone
                assert peer.next_request() == stream_id
                block = hpack.Encoder().encode([(b":status", b"200")])
                sock.sendall(
                    settings[split:]
                    + frame_bytes(SETTINGS, 0x1, 0, b"")
                    + frame_bytes(HEADERS, END_STREAM | END_HEADERS, stream_id, block)
                )
                with quickly():
                    response = conn.get_response(stream_id)
                    assert response.status == 200
                    assert response.read() == b""
                assert peer.wait_for(lambda: peer.settings_ack_count == 1)
                assert not peer.goaway_codes


# -- the limit on concurrent streams --------------------------------------------------------------


def test_put_request_when_finished_streams_are_still_unread(scripted_server: H2Factory) -> None:
    """With SETTINGS_MAX_CONCURRENT_STREAMS=3 and two complete responses not yet read, no
    stream is open (section 5.1.2 counts open and half-closed streams only): endheaders()
    sends the third request at once instead of waiting for a free slot."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake(settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
        for _ in range(3):
            stream_id = ctx.wait_for_request().stream_id
            ctx.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"2")])
            ctx.conn.send_data(stream_id, b"ok", end_stream=True)
            ctx.flush()
        ctx.wait_closed()

    with (
        scripted_server(handler) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
    ):
        first, second = conn.request("GET", "/a"), conn.request("GET", "/b")
        responses = [conn.get_response(first), conn.get_response(second)]
        introspect.read_until(conn, lambda: not introspect.open_ids(conn))
        # Both bodies are fully here, none read yet.
        third = conn.putrequest("GET", "/c")
        conn.endheaders()
        assert conn.get_response(third).read() == b"ok"
        assert [response.read() for response in responses] == [b"ok", b"ok"]
        assert server.connection_count == 1


# -- an oversized header block --------------------------------------------------------------------


def test_one_header_frame_over_the_block_limit_is_refused(scripted_raw_server: RawFactory) -> None:
    """A single HEADERS frame whose block is over 256 KiB (under the 1 MiB frame limit) is
    refused like a block built from CONTINUATIONs: a connection error of type
    COMPRESSION_ERROR (the HPACK state cannot be kept in step without decoding it)."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        block = peer.encode([(b":status", b"200")]) + peer.encode(
            [(b"x-big", b"v" * (300 * KiB))], huffman=False
        )
        peer.send(frame_bytes(HEADERS, END_STREAM | END_HEADERS, stream_id, block))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(), pytest.raises(HPACKDecodingError, match="header block of over") as caught:
            conn.get_response(conn.request("GET", "/"))
        assert caught.value.error_code == Codes.COMPRESSION_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.COMPRESSION_ERROR]
