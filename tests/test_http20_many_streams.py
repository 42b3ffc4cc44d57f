"""
Many streams at once on one connection: every body must come out intact.

Interleaved streams with random frame sizes (plain, empty and padded frames), written by the
server in random pieces, read by the caller in random orders and amounts with ``read(amt)``,
``read()`` and ``read_chunked()``, with socket buffers from 1 KiB to the default 256 KiB, in
plaintext and over TLS, and from several threads at once: every body comes out byte for byte,
every piece as ``bytes`` and never larger than asked. Then a stream read in part while another
is read to its end, frame-by-frame reading after a bulk read of another stream, a pushed
stream and a stream with trailers among a bulk download, and a check that finished uploads
leave nothing behind on the connection.
"""

from __future__ import annotations

import gc
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hyperframe.frame import PushPromiseFrame

from hyper.common.exceptions import InvalidRequest
from hyper.http20.response import HTTP20Response
from tests.support import introspect
from tests.support.helpers import quickly
from tests.support.hostile import KiB, RawH2Peer
from tests.support.rawframes import (
    INITIAL_WINDOW_SIZE,
    MAX_WINDOW,
    RawFactory,
    Script,
    data_frame,
    header_block,
    headers_frames,
    scripted,
    send_in_pieces,
    wait_closed,
    window_update,
)


def pattern(seed: int, size: int) -> bytes:
    """``size`` pseudo-random bytes: a misplaced, repeated or lost piece shows."""
    return random.Random(seed).randbytes(size)


def build(seed: int, n: int) -> tuple[dict[int, bytes], bytes]:
    """``n`` responses (streams 1, 3, ...) with random bodies up to 700 KiB and
    content-length, their frames (plain, empty and padded DATA of random sizes) interleaved
    at random. Returns the bodies by stream id, and the wire."""
    rng = random.Random(seed)
    ids = [1 + 2 * i for i in range(n)]
    bodies = {
        sid: rng.randbytes(rng.choice([0, 1, 100, 5000, 70 * KiB, 300 * KiB, 700 * KiB]))
        for sid in ids
    }
    out = []
    pending = dict.fromkeys(ids, 0)
    started: set[int] = set()
    while pending:
        sid = rng.choice(list(pending))
        if sid not in started:
            started.add(sid)
            out.append(headers_frames(sid, header_block(len(bodies[sid]))))
            continue
        body, off = bodies[sid], pending[sid]
        kind = rng.random()
        if kind < 0.05:
            out.append(data_frame(sid, b""))
            continue
        size = rng.choice([1, 9, 100, 1000, 4096, 9000, 16 * KiB - 9, 16 * KiB])
        piece = body[off : off + size]
        off += len(piece)
        end = off >= len(body)
        pad = rng.choice([0, 3]) if kind < 0.12 and len(piece) < 16 * KiB - 10 else None
        out.append(data_frame(sid, piece, end=end, pad=pad))
        if end:
            del pending[sid]
        else:
            pending[sid] = off
    return bodies, b"".join(out)


def serve_wire(n: int, wire: bytes, sizes: list[int], seed: int) -> Script:
    """A script: wait for ``n`` requests, then write ``wire`` in pieces of random ``sizes``."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = n
        peer.start()
        rng = random.Random(seed)
        send_in_pieces(peer, wire, lambda: rng.choice(sizes))
        wait_closed(peer)

    return script


def read_at_random(responses: dict[int, HTTP20Response], rng: random.Random) -> dict[int, bytes]:
    """Read every response to its end, picking a response and a way to read at random each
    time: ``read(amt)`` of random sizes, a few frames of ``read_chunked()``, or ``read()``."""
    got = {h: bytearray() for h in responses}
    gens: dict[int, Iterator[bytes]] = {}
    done: set[int] = set()
    handles = list(responses)
    while len(done) < len(handles):
        h = rng.choice([x for x in handles if x not in done])
        r = responses[h]
        op = rng.random()
        if op < 0.4:
            amt = rng.choice([1, 7, 1000, 16 * KiB, 50000, 200000])
            piece = r.read(amt)
            assert type(piece) is bytes
            assert len(piece) <= amt
            if not piece:
                done.add(h)
            got[h] += piece
        elif op < 0.8:
            g = gens.setdefault(h, r.read_chunked())
            for _ in range(rng.choice([1, 3, 10])):
                try:
                    piece = next(g)
                except StopIteration:
                    done.add(h)
                    break
                assert type(piece) is bytes
                got[h] += piece
        elif op < 0.85:
            piece = r.read()
            assert type(piece) is bytes
            got[h] += piece
            done.add(h)
    return {h: bytes(body) for h, body in got.items()}


@pytest.mark.parametrize("buffer_size", [1024, 4096, 20000, 64 * KiB, None])
@pytest.mark.parametrize("seed", range(4))
def test_random_interleaved_reads(
    scripted_raw_server: RawFactory, buffer_size: int | None, seed: int
) -> None:
    """Ten streams, interleaved, written in random pieces, read at random (see
    :func:`read_at_random`): every body is exact, on one connection, and nothing is left
    open or buffered at the end."""
    n = 10
    bodies, wire = build(seed, n)
    script = serve_wire(n, wire, [1, 50, 1000, 9000, 40000, 100000], seed + 100)
    with (
        scripted(scripted_raw_server, script, buffer_size=buffer_size, read_timeout=20) as (
            conn,
            peers,
            server,
        ),
        quickly(30),
    ):
        handles = [conn.request("GET", f"/{i}") for i in range(n)]
        assert handles == sorted(bodies)
        responses = {h: conn.get_response(h) for h in handles}
        got = read_at_random(responses, random.Random(seed + 200))
        assert introspect.open_ids(conn) == set()
        assert introspect.buffered(conn) == 0
        assert server.connection_count == 1
    for sid in handles:
        assert got[sid] == bodies[sid], f"stream {sid} corrupted"
    assert not peers[0].rst_codes


@pytest.mark.parametrize("buffer_size", [4096, None])
def test_threads_read_streams_concurrently(
    scripted_raw_server: RawFactory, buffer_size: int | None
) -> None:
    """Eight interleaved streams, each read by its own thread in random amounts: every body
    is exact, and no thread fails or hangs."""
    n = 8
    bodies, wire = build(42, n)
    script = serve_wire(n, wire, [1, 1000, 9000, 40000, 100000], 7)
    with scripted(scripted_raw_server, script, buffer_size=buffer_size, read_timeout=20) as (
        conn,
        _,
        _,
    ):
        handles = [conn.request("GET", f"/{i}") for i in range(n)]
        responses = {h: conn.get_response(h) for h in handles}
        results: dict[int, bytes] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(n, timeout=10)

        def reader(h: int, seed: int) -> None:
            rng = random.Random(seed)
            buf = bytearray()
            try:
                start.wait()
                while True:
                    amt = rng.choice([1, 500, 16 * KiB, 100000])
                    piece = responses[h].read(amt)
                    assert type(piece) is bytes
                    assert len(piece) <= amt
                    if not piece:
                        break
                    buf += piece
                results[h] = bytes(buf)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(h, i)) for i, h in enumerate(handles)]
        with quickly(40):
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
        assert not [t for t in threads if t.is_alive()], "a reader thread hangs"
        assert not errors, errors
        for h in handles:
            assert results[h] == bodies[h], f"stream {h} corrupted"


@pytest.mark.parametrize("buffer_size", [4096, 20000, 64 * KiB, None])
@pytest.mark.parametrize("seed", range(3))
def test_random_interleaved_reads_tls(
    scripted_raw_server: RawFactory, ca_cert_path: Path, buffer_size: int | None, seed: int
) -> None:
    """The same over TLS, the server's writes (one TLS record each) cut at sizes around the
    16 KiB record size: every body is exact."""
    n = 10
    bodies, wire = build(seed + 10, n)
    sizes = [1, 50, 1000, 9000, 16393, 40000, 100000]
    script = serve_wire(n, wire, sizes, seed + 100)
    rng = random.Random(seed + 300)
    with (
        scripted(
            scripted_raw_server,
            script,
            buffer_size=buffer_size,
            read_timeout=20,
            tls_ca_path=ca_cert_path,
        ) as (conn, _, server),
        quickly(30),
    ):
        handles = [conn.request("GET", f"/{i}") for i in range(n)]
        responses = {h: conn.get_response(h) for h in handles}
        got = {h: bytearray() for h in handles}
        done: set[int] = set()
        while len(done) < n:
            h = rng.choice([x for x in handles if x not in done])
            amt = rng.choice([1, 1000, 16 * KiB, 50000, 300000])
            piece = responses[h].read(amt)
            assert type(piece) is bytes
            assert len(piece) <= amt
            if not piece:
                done.add(h)
            got[h] += piece
        assert server.connection_count == 1
    for h in handles:
        assert bytes(got[h]) == bodies[h], f"stream {h} corrupted"


# -- one stream read while another waits ----------------------------------------------------------


@pytest.mark.parametrize("buffer_size", [4096, 64 * KiB, None], ids=["4k", "64k", "256k"])
def test_one_stream_read_in_part_while_another_is_read_to_its_end(
    scripted_raw_server: RawFactory, buffer_size: int | None
) -> None:
    """Stream 1 is read a little, then stream 3 to its end (many socket reads, frames of
    both streams interleaved), then the rest of stream 1: every byte of both is exact."""
    bodies = {1: pattern(1, 700 * KiB), 3: pattern(3, 900 * KiB)}
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

    script = serve_wire(2, frames(), [100, 9000, 40000, 70000], 5)
    with (
        scripted(scripted_raw_server, script, buffer_size=buffer_size) as (conn, _, _),
        quickly(20),
    ):
        first, second = conn.request("GET", "/1"), conn.request("GET", "/3")
        one, three = conn.get_response(first), conn.get_response(second)
        head = one.read(20000)
        assert type(head) is bytes and len(head) == 20000
        got = bytearray()
        while piece := three.read(30000):
            assert type(piece) is bytes
            got += piece
        assert bytes(got) == bodies[3]
        rest = one.read()
        assert type(rest) is bytes
        assert head + rest == bodies[1]


def test_frames_read_one_by_one_after_another_stream_was_read(
    scripted_raw_server: RawFactory,
) -> None:
    """Every frame of stream 1 arrives while the caller reads stream 3 (600 KiB) whole; then
    read_chunked() on stream 1 hands out each DATA frame's payload as its own ``bytes``, in
    order."""
    payloads = [pattern(n, size) for n, size in enumerate([1, 16 * KiB, 300, 40000, 7])]
    other = pattern(99, 600 * KiB)

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

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(10):
        first, second = conn.request("GET", "/1"), conn.request("GET", "/3")
        chunked, bulk = conn.get_response(first), conn.get_response(second)
        assert bulk.read() == other  # every frame of stream 1 arrived and waits meanwhile
        chunks = [chunk for chunk in chunked.read_chunked() if chunk]
        assert all(type(chunk) is bytes for chunk in chunks)
        assert chunks == payloads


# -- pushes and trailers --------------------------------------------------------------------------


def test_push_and_trailers_among_interleaved_streams(scripted_raw_server: RawFactory) -> None:
    """Stream 1 promises a push (stream 2) and ends with trailers; stream 3 is a 900 KiB
    download read first. Then the push, read frame by frame, and stream 1, read in two
    pieces: every body is exact, and stream 1's trailers are there."""
    rng = random.Random(3)
    push_body = rng.randbytes(200 * KiB)
    trail_body = rng.randbytes(150 * KiB)
    bulk = rng.randbytes(900 * KiB)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        peer.start()
        authority = dict(peer.requests[1].headers)[b":authority"]
        promise = PushPromiseFrame(
            1,
            promised_stream_id=2,
            data=peer.encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", authority),
                    (b":path", b"/pushed"),
                ],
                huffman=False,
            ),
        )
        promise.flags.add("END_HEADERS")
        out = [
            headers_frames(1, header_block(len(trail_body))),
            promise.serialize(),
            headers_frames(2, header_block(len(push_body))),
            headers_frames(3, header_block(len(bulk))),
        ]
        off = {2: 0, 1: 0}
        for sid, body in ((2, push_body), (1, trail_body)):
            while off[sid] < len(body):
                piece = body[off[sid] : off[sid] + rng.choice([1, 500, 9000, 16 * KiB])]
                off[sid] += len(piece)
                end = sid == 2 and off[sid] == len(body)
                out.append(data_frame(sid, piece, end=end))
        out.append(peer.headers_frame(1, [(b"x-trailer", b"yes")], end_stream=True).serialize())
        for start in range(0, len(bulk), 16 * KiB):
            piece = bulk[start : start + 16 * KiB]
            out.append(data_frame(3, piece, end=start + len(piece) == len(bulk)))
        send_in_pieces(peer, b"".join(out), lambda: rng.choice([100, 9000, 70000]))
        wait_closed(peer)

    with (
        scripted(scripted_raw_server, script, buffer_size=64 * KiB, enable_push=True) as (
            conn,
            peers,
            _,
        ),
        quickly(20),
    ):
        a, b = conn.request("GET", "/1"), conn.request("GET", "/3")
        ra, rb = conn.get_response(a), conn.get_response(b)
        got = rb.read()
        assert type(got) is bytes and got == bulk
        pushes = list(conn.get_pushes(a))
        assert len(pushes) == 1
        assert pushes[0].path == b"/pushed"
        pushed = pushes[0].get_response()
        assert pushed.status == 200
        pieces = list(pushed.read_chunked())
        assert all(type(p) is bytes for p in pieces)
        assert b"".join(pieces) == push_body
        body = ra.read(7) + ra.read()
        assert body == trail_body
        assert ra.trailers is not None and ra.trailers[b"x-trailer"] == [b"yes"]
        assert introspect.open_ids(conn) == set()
    assert not peers[0].rst_codes


# -- what finished uploads leave behind -----------------------------------------------------------

COUNT = 40
BODY = 256 * KiB


def test_finished_uploads_leave_nothing_behind(scripted_raw_server: RawFactory) -> None:
    """Forty 256 KiB uploads, each answered and read: once a response has been read, the
    connection keeps no stream open, buffers nothing, and holds no reference to the upload's
    body (which it keeps, while the request is in flight, to send it again if the server
    refuses it)."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake({INITIAL_WINDOW_SIZE: MAX_WINDOW})
        peer.send(window_update(0, MAX_WINDOW - 65535))
        for _ in range(COUNT):
            sid = peer.next_request()
            request = peer.requests[sid]
            assert peer.wait_for(lambda request=request: request.ended)
            size = len(request.body)
            request.body = bytearray()  # do not let the peer's copy count
            peer.respond(sid, b"%d" % size)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, server), quickly(20):
        for i in range(COUNT):
            body = bytes([i % 256]) * BODY
            before = sys.getrefcount(body)
            stream_id = conn.request("POST", f"/{i}", body=body)
            assert sys.getrefcount(body) > before  # kept to be sent again if refused
            response = conn.get_response(stream_id)
            assert response.read() == b"%d" % BODY
            del response
            gc.collect()
            assert sys.getrefcount(body) == before, f"upload {i}'s body is still referenced"
            del body
        assert introspect.open_ids(conn) == set()
        assert introspect.buffered(conn) == 0
        with pytest.raises(InvalidRequest):
            conn.get_response()  # nothing is waiting
        assert server.connection_count == 1
