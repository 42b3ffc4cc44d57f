"""
The short path for body DATA frames (``Session._receive_short_frames_locked``, ``_h2_span``,
``_rest_of_frame``) against scripted HTTP/2 servers, across every seam it has with h2.

Plain DATA frames on open streams bypass h2's frame parsing, with h2's flow-control windows and
content-length count updated by hand; every other frame goes through h2. These tests check the
two paths hand over correctly: frames split at every byte boundary and in random pieces,
interleaved streams, padded and empty frames among plain ones, frames larger than half the
socket buffer, header blocks with CONTINUATION followed by DATA, and that errors the short path
must leave to h2 still come out as before (flow-control violations, content-length excess,
DATA before HEADERS, DATA on a reset stream). Then the window managers (a 20 MiB body through a
4 MiB window, a manager that only reopens when blocked) and ``request()``'s re-sending of an
in-memory upload the server refused while it was going out.

Servers are :class:`~tests.support.hostile.RawH2Peer` scripts (raw frames, no h2 on the server
side) except where the server must honour flow control, which uses h2's own
:class:`~tests.support.scripted.ServerConnection`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import h2.errors
import h2.events
import h2.settings
import hpack
import pytest

from hyper import HTTP20Connection
from hyper.common.exceptions import InvalidRequest
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
from tests.support.helpers import quickly
from tests.support.hostile import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PING,
    SETTINGS,
    WINDOW_UPDATE,
    KiB,
    MiB,
    PeerGone,
    RawH2Peer,
    frame_bytes,
)
from tests.support.scripted import ScriptedRawServer, ScriptedServer, ServerConnection

RawFactory = Callable[..., ScriptedRawServer]
H2Factory = Callable[..., ScriptedServer]
Script = Callable[[RawH2Peer, int], None]
Codes = h2.errors.ErrorCodes

#: SETTINGS_INITIAL_WINDOW_SIZE.
INITIAL_WINDOW_SIZE = 0x4
#: The largest flow-control window.
MAX_WINDOW = 2**31 - 1


# -- building frames ------------------------------------------------------------------------------


def hpack_literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, new name, no Huffman (lengths under 127): it leaves
    both HPACK tables alone, so the same bytes can be sent any number of times."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def header_block(content_length: int | None = None, padding: int = 0) -> bytes:
    """``:status 200`` (static index 8), optional content-length and an ``x-pad`` field."""
    block = b"\x88"
    if content_length is not None:
        block += hpack_literal(b"content-length", str(content_length).encode())
    if padding:
        block += hpack_literal(b"x-pad", b"p" * padding)
    return block


def headers_frames(stream_id: int, block: bytes, pieces: int = 1, end: bool = False) -> bytes:
    """``block`` as HEADERS plus ``pieces - 1`` CONTINUATION frames."""
    size = -(-len(block) // pieces)
    parts = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
    out = b""
    for index, part in enumerate(parts):
        flags = END_HEADERS if index == len(parts) - 1 else 0
        if index == 0:
            out += frame_bytes(HEADERS, flags | (END_STREAM if end else 0), stream_id, part)
        else:
            out += frame_bytes(CONTINUATION, flags, stream_id, part)
    return out


def data_frame(
    stream_id: int, payload: bytes, *, end: bool = False, pad: int | None = None
) -> bytes:
    """A DATA frame, padded with ``pad`` bytes when given (0 means a Pad Length of 0)."""
    flags = END_STREAM if end else 0
    if pad is not None:
        return frame_bytes(DATA, flags | PADDED, stream_id, bytes([pad]) + payload + b"\0" * pad)
    return frame_bytes(DATA, flags, stream_id, payload)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame."""
    return frame_bytes(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def settings_frame(settings: dict[int, int]) -> bytes:
    """A SETTINGS frame."""
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings.items())
    return frame_bytes(SETTINGS, 0, 0, payload)


def ping_then(peer: RawH2Peer, tag: int, first: bytes) -> None:
    """Send a PING followed by ``first`` in one write, and wait until the client acknowledged
    the PING: it has then processed the read that brought ``first`` (almost always all of
    it), so what is sent next arrives in a later read."""
    payload = tag.to_bytes(8, "big")
    peer.send(frame_bytes(PING, 0, 0, payload), first)
    assert peer.wait_for(lambda: peer.last_ping_ack == payload), "no PING ACK from the client"


def send_in_pieces(peer: RawH2Peer, data: bytes, sizes: Callable[[], int]) -> None:
    """Write ``data`` in separate writes of ``sizes()`` bytes each."""
    peer.sock.settimeout(peer.timeout)
    offset = 0
    while offset < len(data):
        size = sizes()
        peer.sock.sendall(data[offset : offset + size])
        offset += size


# -- running a script -----------------------------------------------------------------------------


def peer_handler(script: Script) -> tuple[Callable[[socket.socket], None], list[RawH2Peer]]:
    """A connection handler for a scripted server that runs ``script(peer, index)`` on a
    :class:`RawH2Peer` per connection, and the list those peers are added to."""
    peers: list[RawH2Peer] = []
    lock = threading.Lock()

    def handle(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = RawH2Peer(sock, timeout=10)
        with lock:
            peers.append(peer)
            index = len(peers) - 1
        try:
            script(peer, index)
        except (PeerGone, ConnectionResetError, BrokenPipeError):
            return

    return handle, peers


@contextlib.contextmanager
def scripted(
    factory: RawFactory,
    script: Script,
    *,
    buffer_size: int | None = None,
    read_timeout: float = 5.0,
    **conn_kwargs: Any,
) -> Iterator[tuple[HTTP20Connection, list[RawH2Peer], ScriptedRawServer]]:
    """Run ``script(peer, index)`` for each connection (``index`` counts from 0) and yield a
    plaintext HTTP20Connection to it, the peers, and the server. Errors in the script fail
    the test when the block ends; a client that hangs up is not one."""
    handle, peers = peer_handler(script)
    with factory(handle) as server:
        conn = HTTP20Connection(
            server.host, server.port, secure=False, timeout=(5, read_timeout), **conn_kwargs
        )
        if buffer_size is not None:
            conn.network_buffer_size = buffer_size
        with conn:
            yield conn, peers, server


def wait_closed(peer: RawH2Peer) -> None:
    """Book the client's frames until it closes the connection (bounded)."""
    peer.wait_for(peer.eof.is_set, timeout=10)


# -- split frames ---------------------------------------------------------------------------------

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
    request per offset), including inside every frame header and payload and right after
    the CONTINUATIONs; the last offset sends it whole (CONTINUATION then DATA in one read)."""
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

    with scripted(scripted_raw_server, script) as (conn, _, server):
        for cut in range(1, length + 1):
            response = conn.get_response(conn.request("GET", f"/{cut}"))
            assert response.status == 200
            assert response.read() == SPLIT_BODY, f"split at {cut}"
        assert server.connection_count == 1


@pytest.mark.parametrize("buffer_size", [1024, None], ids=["1k-buffer", "64k-buffer"])
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

    with scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _):
        first, second = conn.request("GET", "/a"), conn.request("GET", "/b")
        assert (first, second) == (1, 3)
        assert conn.get_response(second).read() == bytes(bodies[3])
        assert conn.get_response(first).read() == bytes(bodies[1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("buffer_size", [1024, 4096, None], ids=["1k", "4k", "64k"])
def test_interleaved_streams_in_random_pieces(
    scripted_raw_server: RawFactory, seed: int, buffer_size: int | None
) -> None:
    """Three responses interleaved frame by frame (plain, padded and empty DATA, frames
    smaller and larger than half the socket buffer), written in random pieces."""
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
    # Stream 3 announces its content-length (counted on the short path too); stream 5's
    # header block comes in HEADERS + CONTINUATION.
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

    with scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _):
        ids = [conn.request("GET", f"/{n}") for n in range(3)]
        assert ids == streams
        for stream_id in rng.sample(ids, 3):
            assert conn.get_response(stream_id).read() == bytes(bodies[stream_id])


def test_frames_larger_than_half_the_buffer(scripted_raw_server: RawFactory) -> None:
    """With a 1 KiB socket buffer, frames of up to 64 KiB go to h2 in pieces, while the
    small ones around them take the short path; the body is exact and read(amt) works."""
    sizes = [10, 511, 512, 513, 1000, 1024, 1025, 4000, 65536, 3, 70000]
    payloads = [bytes([n % 256]) * size for n, size in enumerate(sizes)]
    body = b"".join(payloads)

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(len(body)))
        out += b"".join(data_frame(stream_id, p) for p in payloads)
        peer.send(out + data_frame(stream_id, b"", end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script, buffer_size=1024) as (conn, _, _):
        response = conn.get_response(conn.request("GET", "/"))
        got = bytearray()
        while piece := response.read(777):
            got += piece
        assert bytes(got) == body


def test_zero_length_data_frames(scripted_raw_server: RawFactory) -> None:
    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(3))
        for payload in (b"", b"", b"a", b"", b"b", b"", b"", b"c", b""):
            out += data_frame(stream_id, payload)
        peer.send(out)
        ping_then(peer, 1, data_frame(stream_id, b""))
        peer.send(data_frame(stream_id, b"", end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _):
        response = conn.get_response(conn.request("GET", "/"))
        chunks = list(response.read_chunked())
        assert b"".join(chunks) == b"abc"
        assert b"" in chunks


# -- DATA payloads kept as views into the socket's buffer -----------------------------------------


def _pattern(seed: int, size: int) -> bytes:
    """``size`` pseudo-random bytes: a misplaced or stale piece of the buffer shows."""
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("buffer_size", [4096, 64 * 1024, None], ids=["4k", "64k", "256k"])
def test_kept_views_survive_reads_for_other_streams(
    scripted_raw_server: RawFactory, buffer_size: int | None
) -> None:
    """DATA payloads stay views into the socket's buffer until read, or until the buffer
    space is about to be reused. Stream 1 is read a little, then stream 3 to its end (many
    socket reads, each reusing the buffer), then the rest of stream 1: every byte of both is
    exact, and every piece returned is ``bytes``."""
    bodies = {1: _pattern(1, 700 * KiB), 3: _pattern(3, 900 * KiB)}
    sizes = [16 * KiB, 9, 5000, 16 * KiB - 1, 1, 12000]

    def frames() -> bytes:
        out = [headers_frames(1, header_block(len(bodies[1])))]
        out.append(headers_frames(3, header_block(len(bodies[3]))))
        offsets = {1: 0, 3: 0}
        turn = 0
        while any(offsets[s] < len(bodies[s]) for s in bodies):
            stream_id = 1 if turn % 3 else 3
            turn += 1
            body, start = bodies[stream_id], offsets[stream_id]
            if start >= len(body):
                continue
            piece = body[start : start + sizes[turn % len(sizes)]]
            offsets[stream_id] += len(piece)
            out.append(data_frame(stream_id, piece, end=offsets[stream_id] == len(body)))
        return b"".join(out)

    wire = frames()

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        peer.start()
        rng = random.Random(5)
        send_in_pieces(peer, wire, lambda: rng.choice([100, 9000, 40000, 70000]))
        wait_closed(peer)

    with scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _):
        first, second = conn.request("GET", "/1"), conn.request("GET", "/3")
        one, three = conn.get_response(first), conn.get_response(second)
        head = one.read(20000)
        assert type(head) is bytes
        got = bytearray()
        while piece := three.read(30000):
            assert type(piece) is bytes
            got += piece
        assert bytes(got) == bodies[3]
        rest = one.read()
        assert type(rest) is bytes
        assert head + rest == bodies[1]


def test_kept_views_read_frame_by_frame_are_bytes(scripted_raw_server: RawFactory) -> None:
    """read_chunked() hands out each DATA frame's payload as its own ``bytes``, also when
    the payload was kept as a view and the buffer has been reused since."""
    payloads = [_pattern(n, size) for n, size in enumerate([1, 16 * KiB, 300, 40000, 7])]
    other = _pattern(99, 600 * KiB)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        peer.start()
        out = [headers_frames(1, header_block()), headers_frames(3, header_block(len(other)))]
        out += [data_frame(1, p) for p in payloads] + [data_frame(1, b"", end=True)]
        for start in range(0, len(other), 16 * KiB):
            piece = other[start : start + 16 * KiB]
            out.append(data_frame(3, piece, end=start + len(piece) == len(other)))
        peer.send(b"".join(out))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _):
        first, second = conn.request("GET", "/1"), conn.request("GET", "/3")
        chunked, bulk = conn.get_response(first), conn.get_response(second)
        assert bulk.read() == other  # every frame of stream 1 arrived and waits meanwhile
        chunks = [chunk for chunk in chunked.read_chunked() if chunk]
        assert all(type(chunk) is bytes for chunk in chunks)
        assert chunks == payloads


# -- errors the short path leaves to h2 -----------------------------------------------------------


def _flood(peer: RawH2Peer, *pieces: bytes) -> None:
    """Send ``pieces`` while booking whatever the client answers."""
    peer.flood(*pieces, timeout=20)


#: Frames small enough for the short path (under half of the default 64 KiB socket buffer).
SMALL_FRAME = 16 * 1024


@pytest.mark.parametrize(
    ("frame", "excess"),
    [(SMALL_FRAME, 10), (SMALL_FRAME, 1), (MiB, 10)],
    ids=["small-frames-straddle", "small-frames-one-byte", "1MiB-frames"],
)
def test_frame_over_the_stream_window_is_a_flow_control_error(
    scripted_raw_server: RawFactory, frame: int, excess: int
) -> None:
    """Frames fill the 4 MiB stream window to 4 bytes short; the next frame (``4 +
    excess`` bytes) straddles the end of the window."""
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
    too); one more byte on a fifth stream, whose stream window is wide open, is over."""
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
        with quickly(15), pytest.raises(ProtocolError) as caught:
            for stream_id in ids:
                response = conn.get_response(stream_id)
            response.read()  # stream 9: waits for the byte over the connection window
        assert caught.value.error_code == Codes.FLOW_CONTROL_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.FLOW_CONTROL_ERROR]


@pytest.mark.parametrize("separate_reads", [False, True], ids=["one-read", "two-reads"])
def test_body_over_content_length_in_the_middle(
    scripted_raw_server: RawFactory, separate_reads: bool
) -> None:
    """content-length 10; 6 bytes, then 6 more without END_STREAM: the excess is refused as
    soon as it arrives, not only at the end of the stream."""

    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        start = headers_frames(stream_id, header_block(10)) + data_frame(stream_id, b"abcdef")
        if separate_reads:
            ping_then(peer, 1, start)
            peer.send(data_frame(stream_id, b"ghijkl"))
        else:
            peer.send(start + data_frame(stream_id, b"ghijkl"))
        wait_closed(peer)  # and never END_STREAM: only the excess can end this

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(3), pytest.raises(ProtocolError) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.PROTOCOL_ERROR]


def test_body_over_content_length_in_one_frame_among_good_ones(
    scripted_raw_server: RawFactory,
) -> None:
    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(100))
        out += b"".join(data_frame(stream_id, b"x" * 30) for _ in range(3))
        out += data_frame(stream_id, b"y" * 11)  # 101 > 100
        out += data_frame(stream_id, b"", end=True)
        peer.send(out)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _), pytest.raises(ProtocolError):
        conn.get_response(conn.request("GET", "/")).read()


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
    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        out = headers_frames(stream_id, header_block(10))
        out += b"".join(data_frame(stream_id, p) for p in payloads)
        peer.send(out + data_frame(stream_id, b"", end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, _, _):
        response = conn.get_response(conn.request("GET", "/"))
        if ok:
            assert response.read() == b"".join(payloads)
        else:
            with pytest.raises(ProtocolError):
                response.read()


@pytest.mark.parametrize("plain", [True, False], ids=["plain-data", "data-end-stream"])
def test_data_before_headers(scripted_raw_server: RawFactory, plain: bool) -> None:
    def script(peer: RawH2Peer, _: int) -> None:
        stream_id = peer.start()
        peer.send(
            data_frame(stream_id, b"too early", end=not plain)
            + headers_frames(stream_id, header_block())
            + data_frame(stream_id, b"", end=True)
        )
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(3), pytest.raises(ProtocolError):
            conn.get_response(conn.request("GET", "/")).read()
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes, "no GOAWAY after the protocol error"


def test_data_on_a_reset_stream_is_ignored_and_credited(scripted_raw_server: RawFactory) -> None:
    """After hyper reset a stream, 20 MiB of plain DATA the server still sends on it (more
    than the connection window) is dropped without RST_STREAM replies; the connection
    window is still reopened for it, and the next response arrives."""
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
    peer = peers[0]
    assert peer.rst_codes == {1: Codes.CANCEL}  # no STREAM_CLOSED replies to the late DATA
    assert not peer.goaway_codes[:-1]
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)


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
    caller reads (16 KiB frames take the short path, 1 MiB frames go through h2)."""
    with (
        scripted_server(functools.partial(_serve_big, frame_size=frame_size)) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=10) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/big"))
        digest = hashlib.sha256()
        total = 0
        while piece := response.read(amt):
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
        assert conn.get_response(handle).read() == _expected_answer()
        assert conn.get_response(conn.request("GET", "/next")).read() == b"next"
        assert server.connection_count == 2
    assert seen[0] == (0, 1)
    assert seen[1][0] == 1
    assert peers[0].counts[DATA] >= 1  # the first attempt's body had started


def test_upload_refused_by_rst_stream_is_sent_again(scripted_raw_server: RawFactory) -> None:
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

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(5):
            if refusal == "goaway":
                with pytest.raises(ConnectionError) as caught:
                    conn.request("POST", "/upload", body=_generator_body())
                assert "did not process" in str(caught.value)
                assert "safe to send it again" in str(caught.value)
            else:
                with pytest.raises(StreamResetError) as reset:
                    conn.request("POST", "/upload", body=_generator_body())
                assert reset.value.error_code == Codes.REFUSED_STREAM
        # Nothing is left waiting for a response, and the connection goes on.
        with pytest.raises(InvalidRequest):
            conn.get_response()
        assert conn.get_response(conn.request("GET", "/later")).read() == b"later"
    # The refused stream went out once only: no second HEADERS for it.
    first = peers[0]
    assert 1 in first.requests
    assert sum(1 for r in first.requests.values() if r.path == b"/upload") == 1


# -- request HEADERS written without h2's frame objects (_H2Connection.send_headers) ----------


def _echo_header_sizes(ctx: ServerConnection) -> None:
    """Answer each request with the length of its x-big header and of its body."""
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


def test_request_headers_larger_than_a_frame_go_out_in_continuations(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """A header block over the server's 16 KiB frame size is split into HEADERS and
    CONTINUATION frames, with END_STREAM on the first only when the request has no body."""
    big = "".join(random.Random(7).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(40_000))
    expected = f"40000 {hashlib.sha256(big.encode()).hexdigest()}"
    with (
        scripted_server(_echo_header_sizes) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
    ):
        get = conn.request("GET", "/", headers={"x-big": big})
        assert conn.get_response(get).read() == f"{expected} 0".encode()
        post = conn.request("POST", "/", body=b"payload", headers={"x-big": big})
        assert conn.get_response(post).read() == f"{expected} 7".encode()


def test_head_response_with_a_length_and_no_body(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """h2 must still know the request was HEAD: a Content-Length with no body is then
    correct, not a protocol error."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        for _ in range(2):
            stream_id = ctx.wait_for_request().stream_id
            # END_STREAM on an empty DATA frame, where h2 checks the length (0 for HEAD).
            ctx.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"100")])
            ctx.conn.send_data(stream_id, b"", end_stream=True)
            ctx.flush()
        ctx.wait_closed()

    with (
        scripted_server(handler) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
    ):
        for _ in range(2):  # the second on a warm connection (cached HPACK blocks)
            response = conn.get_response(conn.request("HEAD", "/"))
            assert response.status == 200
            assert response.headers[b"content-length"] == [b"100"]
            assert response.read() == b""


# -- regressions from review -------------------------------------------------------------------


@pytest.mark.parametrize("split", range(1, 9))
def test_server_preface_arriving_a_few_bytes_at_a_time(split: int) -> None:
    """The server's SETTINGS split after ``split`` bytes, the first piece read on its own:
    fewer than 5 bytes are given back to the socket buffer and judged with the rest (they
    were once counted twice, and a valid server was refused as "not HTTP/2")."""
    settings = frame_bytes(0x4, 0, 0, b"")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn = HTTP20Connection("127.0.0.1", listener.getsockname()[1], secure=False, timeout=5)
        with conn:
            conn.connect()
            peer, _ = listener.accept()
            with peer:
                peer.settimeout(5)
                peer.sendall(settings[:split])
                session = conn._session
                assert session is not None and session.sock is not None
                readable, _, _ = select.select([session.sock.socket], [], [], 5)
                assert readable, "the first piece never arrived"
                with conn._lock:
                    session.poll_locked()  # reads the first piece alone
                assert session.error is None
                peer.sendall(settings[split:])
                stream_id = conn.request("GET", "/")
                request = b""
                while b"\x01\x05\x00\x00\x00\x01" not in request:  # our HEADERS on stream 1
                    chunk = peer.recv(65536)
                    assert chunk, "the client closed the connection"
                    request += chunk
                block = hpack.Encoder().encode([(b":status", b"200")])
                peer.sendall(frame_bytes(0x4, 0x1, 0, b"") + frame_bytes(0x1, 0x5, 1, block))
                with quickly():
                    assert conn.get_response(stream_id).status == 200


def test_put_request_when_finished_streams_are_still_unread(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """With SETTINGS_MAX_CONCURRENT_STREAMS=3 and two complete responses not yet read,
    hyper's own count says 2 open: the exact count from h2 (0) must decide, or endheaders()
    waits for a stream slot that is already free."""

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
        # Both bodies are fully here (and the streams closed in h2), none read yet.
        third = conn.putrequest("GET", "/c")
        conn.endheaders()
        assert conn.get_response(third).read() == b"ok"
        assert [response.read() for response in responses] == [b"ok", b"ok"]


def test_one_header_frame_over_the_block_limit_is_refused(
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    """A single HEADERS frame whose block is over 256 KiB (under the 1 MiB frame limit) is
    refused like a block built from CONTINUATIONs."""
    peers: list[RawH2Peer] = []

    def handler(sock: Any) -> None:
        peer = RawH2Peer(sock)
        peers.append(peer)
        with contextlib.suppress(PeerGone, ConnectionResetError, BrokenPipeError):
            stream_id = peer.start()
            block = peer.encode([(b":status", b"200")]) + peer.encode(
                [(b"x-big", b"v" * (300 * KiB))], huffman=False
            )
            peer.send(frame_bytes(0x1, 0x5, stream_id, block))
            peer.serve_rest()

    with (
        scripted_raw_server(handler) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
        quickly(),
        pytest.raises(HPACKDecodingError, match="header block of over"),
    ):
        conn.get_response(conn.request("GET", "/"))
