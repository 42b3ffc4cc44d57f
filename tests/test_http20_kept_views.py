"""
DATA payloads kept as views into the socket's buffer (``Session._data_locked``,
``BufferedSocket.keep_views``), against scripted servers.

Many interleaved streams with random frame sizes (plain, empty, and padded frames, which go
through h2), written in random pieces, read in random orders and amounts with ``read(amt)``,
``read()`` and ``read_chunked()``, with socket buffers from 1 KiB to the default 256 KiB,
in plaintext and over TLS, and from several threads at once: every body must come out byte
for byte, and every piece as ``bytes``. Then a pushed stream and a stream with trailers whose
views are reclaimed while another stream is read, and a check that streams read to their end
are not kept alive by the bookkeeping (nor the request bodies they hold for a resend).
"""

from __future__ import annotations

import gc
import random
import threading
from typing import Any

import pytest
from hyperframe.frame import PushPromiseFrame

from hyper import HTTP20Connection
from hyper.http20.legacy_stream import Stream
from hyper.tls import init_context
from tests.test_http20_fast_path import (
    INITIAL_WINDOW_SIZE,
    MAX_WINDOW,
    KiB,
    RawFactory,
    RawH2Peer,
    data_frame,
    header_block,
    headers_frames,
    peer_handler,
    scripted,
    send_in_pieces,
    wait_closed,
    window_update,
)


def _build(seed: int, n: int) -> tuple[dict[int, bytes], bytes]:
    rng = random.Random(seed)
    ids = [1 + 2 * i for i in range(n)]
    bodies = {
        sid: rng.randbytes(rng.choice([0, 1, 100, 5000, 70 * KiB, 300 * KiB, 700 * KiB]))
        for sid in ids
    }
    out = []
    pending = {sid: 0 for sid in ids}
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


@pytest.mark.parametrize("buffer_size", [1024, 4096, 20000, 64 * KiB, None])
@pytest.mark.parametrize("seed", range(4))
def test_random_interleaved_reads(
    scripted_raw_server: RawFactory, buffer_size: int | None, seed: int
) -> None:
    n = 10
    bodies, wire = _build(seed, n)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = n
        peer.start()
        rng = random.Random(seed + 100)
        send_in_pieces(peer, wire, lambda: rng.choice([1, 50, 1000, 9000, 40000, 100000]))
        wait_closed(peer)

    rng = random.Random(seed + 200)
    with scripted(scripted_raw_server, script, buffer_size=buffer_size, read_timeout=20) as (
        conn,
        _,
        _,
    ):
        handles = [conn.request("GET", f"/{i}") for i in range(n)]
        responses = {h: conn.get_response(h) for h in handles}
        got = {h: bytearray() for h in handles}
        gens: dict[int, object] = {}
        done: set[int] = set()
        while len(done) < n:
            h = rng.choice([x for x in handles if x not in done])
            r = responses[h]
            op = rng.random()
            if op < 0.4:
                piece = r.read(rng.choice([1, 7, 1000, 16 * KiB, 50000, 200000]))
                assert type(piece) is bytes
                if not piece:
                    done.add(h)
                got[h] += piece
            elif op < 0.8:
                g = gens.setdefault(h, r.read_chunked())
                for _ in range(rng.choice([1, 3, 10])):
                    try:
                        piece = next(g)  # type: ignore[call-overload]
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
        for i, h in enumerate(handles):
            sid = 1 + 2 * i
            assert bytes(got[h]) == bodies[sid], f"stream {sid} corrupted"


@pytest.mark.parametrize("buffer_size", [4096, None])
def test_threads_read_streams_concurrently(
    scripted_raw_server: RawFactory, buffer_size: int | None
) -> None:
    n = 8
    bodies, wire = _build(42, n)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = n
        peer.start()
        rng = random.Random(7)
        send_in_pieces(peer, wire, lambda: rng.choice([1, 1000, 9000, 40000, 100000]))
        wait_closed(peer)

    with scripted(scripted_raw_server, script, buffer_size=buffer_size, read_timeout=20) as (
        conn,
        _,
        _,
    ):
        handles = [conn.request("GET", f"/{i}") for i in range(n)]
        responses = {h: conn.get_response(h) for h in handles}
        results: dict[int, bytes] = {}
        errors: list[BaseException] = []

        def reader(h: int, seed: int) -> None:
            rng = random.Random(seed)
            buf = bytearray()
            try:
                while True:
                    piece = responses[h].read(rng.choice([1, 500, 16 * KiB, 100000]))
                    assert type(piece) is bytes
                    if not piece:
                        break
                    buf += piece
                results[h] = bytes(buf)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(h, i)) for i, h in enumerate(handles)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        for i, h in enumerate(handles):
            assert results[h] == bodies[1 + 2 * i]


# -- the same over TLS (the _fill_ready / gather paths) -------------------------------------------


@pytest.mark.parametrize("buffer_size", [4096, 20000, 64 * KiB, None])
@pytest.mark.parametrize("seed", range(3))
def test_random_interleaved_reads_tls(
    scripted_raw_server: RawFactory, tls_material: Any, buffer_size: int | None, seed: int
) -> None:
    n = 10
    bodies, wire = _build(seed + 10, n)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = n
        peer.start()
        rng = random.Random(seed + 100)
        send_in_pieces(peer, wire, lambda: rng.choice([1, 50, 1000, 9000, 16393, 40000, 100000]))
        wait_closed(peer)

    handle, _ = peer_handler(script)
    rng = random.Random(seed + 300)
    with scripted_raw_server(handle, tls=True, alpn=["h2"]) as server:
        conn = HTTP20Connection(
            "localhost",
            server.port,
            secure=True,
            timeout=(5, 20),
            ssl_context=init_context(cert_path=str(tls_material.ca_cert_path)),
        )
        if buffer_size is not None:
            conn.network_buffer_size = buffer_size
        with conn:
            handles = [conn.request("GET", f"/{i}") for i in range(n)]
            responses = {h: conn.get_response(h) for h in handles}
            got = {h: bytearray() for h in handles}
            done: set[int] = set()
            while len(done) < n:
                h = rng.choice([x for x in handles if x not in done])
                piece = responses[h].read(rng.choice([1, 1000, 16 * KiB, 50000, 300000]))
                assert type(piece) is bytes
                if not piece:
                    done.add(h)
                got[h] += piece
            for i, h in enumerate(handles):
                assert bytes(got[h]) == bodies[1 + 2 * i], f"stream {1 + 2 * i} corrupted"


# -- pushes and trailers --------------------------------------------------------------------------


def test_push_and_trailers_views(scripted_raw_server: RawFactory) -> None:
    rng = random.Random(3)
    push_body = rng.randbytes(200 * KiB)
    trail_body = rng.randbytes(150 * KiB)
    bulk = rng.randbytes(900 * KiB)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = 2
        peer.start()
        host = peer.requests[1].headers
        authority = dict(host)[b":authority"]
        pp = PushPromiseFrame(
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
        pp.flags.add("END_HEADERS")
        out = [
            headers_frames(1, header_block(len(trail_body))),
            pp.serialize(),
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

    with scripted(scripted_raw_server, script, buffer_size=64 * KiB, enable_push=True) as (
        conn,
        _,
        _,
    ):
        a, b = conn.request("GET", "/1"), conn.request("GET", "/3")
        ra, rb = conn.get_response(a), conn.get_response(b)
        got = rb.read()
        assert type(got) is bytes and got == bulk
        pushes = list(conn.get_pushes(a))
        assert len(pushes) == 1
        pr = pushes[0].get_response()
        pieces = list(pr.read_chunked())
        assert all(type(p) is bytes for p in pieces)
        assert b"".join(pieces) == push_body
        body = ra.read(7) + ra.read()
        assert body == trail_body
        assert ra.trailers is not None and ra.trailers[b"x-trailer"] == [b"yes"]


# -- what the bookkeeping keeps alive -------------------------------------------------------------

COUNT = 40
BODY = 256 * KiB


def test_finished_uploads_not_retained(scripted_raw_server: RawFactory) -> None:
    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake({INITIAL_WINDOW_SIZE: MAX_WINDOW})
        peer.send(window_update(0, MAX_WINDOW - 65535))
        for _ in range(COUNT):
            sid = peer.next_request()
            request = peer.requests[sid]
            assert peer.wait_for(lambda request=request: request.ended)
            peer.requests[sid].body = b""  # do not let the peer's copy count
            peer.respond(sid, b"ok")
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _):
        for i in range(COUNT):
            body = bytes([i % 256]) * BODY
            response = conn.get_response(conn.request("POST", f"/{i}", body=body))
            assert response.read() == b"ok"
            del response, body
        gc.collect()
        session = conn._session
        assert session is not None
        assert not session.view_holders, "finished streams are still tracked"
        live = [o for o in gc.get_objects() if type(o) is Stream]
        retained = sum(len(s.replay[1]) for s in live if s.replay is not None)
        assert len(live) < 4, f"{len(live)} Stream objects still alive"
        assert retained < BODY, f"{retained} bytes of finished uploads still referenced"
