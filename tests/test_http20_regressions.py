"""
Regression tests for problems found in review of ``hyper/http20/connection.py``,
``hyper/common/bufsocket.py`` and ``hyper/tls.py`` (originally reproduced with scratch
scripts s1-s17).

Every scenario runs against a real socket: a scripted h2 server from ``tests/support``
(or a hand-made TLS server for the half-record case). Waits are bounded; servers and
clients synchronise on frames (PING, resets, requests) or ``threading.Event``, never on
sleeps.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import (
    DataFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

import hyper.http20.connection as connection_module
from hyper import HTTP20Connection, tls
from hyper.common.exceptions import InvalidRequest, ReadTimeout
from hyper.http20.exceptions import ConnectionError, StreamResetError
from tests.support import introspect
from tests.support.certs import CertPaths
from tests.support.helpers import BioTLSServer, goaway_bytes, quickly, serve
from tests.support.scripted import Reply, Request, ServerConnection, simple_responder

ServerFactory = Callable[..., Any]

OK = [(b"content-type", b"text/plain")]
MAX_CONCURRENT_STREAMS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS


def requests_seen(ctx: ServerConnection) -> list[int]:
    """Stream ids of every request the server received on this connection."""
    return [e.stream_id for e in ctx.events if isinstance(e, h2.events.RequestReceived)]


def echo_path(request: Request) -> Reply:
    return Reply(200, OK, request.path.encode())


def echo_body(request: Request) -> Reply:
    return Reply(200, OK, request.body)


def push_headers(path: str, ctx: ServerConnection) -> list[tuple[bytes, bytes]]:
    """A promised request for ``path`` on the connection's own origin (host and port)."""
    port = ctx.sock.getsockname()[1]
    return [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{port}".encode()),
        (b":path", path.encode()),
    ]


# -- s6: upload running when a graceful GOAWAY arrives ----------------------------------------


def test_upload_after_graceful_goaway_completes_while_window_is_granted(
    scripted_server: ServerFactory,
) -> None:
    body = b"x" * 1_000_000

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_raw(goaway_bytes(stream_id))  # the upload's stream is still accepted
        _, received = ctx.read_request(stream_id)  # auto_ack: WINDOW_UPDATEs keep coming
        ctx.respond(stream_id, 200, OK, str(len(received)).encode())
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn), quickly(3.0):
        stream_id = conn.request("POST", "/upload", body=body)
        assert conn.get_response(stream_id).read() == b"1000000"
    assert server.connection_count == 1


def test_upload_stalled_after_graceful_goaway_times_out_without_spinning(
    scripted_server: ServerFactory,
) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.auto_ack = False  # never grant any more window
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_raw(goaway_bytes(stream_id))
        ctx.wait_closed()

    outcome: list[BaseException | None] = []
    with serve(scripted_server, handler, timeout=(5, 1)) as (_, conn):

        def upload() -> None:
            try:
                conn.request("POST", "/upload", body=b"x" * 1_000_000)
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        # In a thread, so that a regression (a spin that never reads, hence never times
        # out) fails the test in bounded time instead of hanging it.
        thread = threading.Thread(target=upload, daemon=True)
        wall_start, cpu_start = time.monotonic(), time.process_time()
        thread.start()
        thread.join(3.0)
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
        stuck = thread.is_alive()
        if stuck:
            conn.close()  # breaks the loop: the upload then fails with ConnectionClosed
            thread.join(2.0)
    assert not stuck, f"upload neither finished nor timed out in {wall:.2f}s (CPU {cpu:.2f}s)"
    assert len(outcome) == 1 and isinstance(outcome[0], ReadTimeout), outcome
    assert 0.8 < wall < 3.0, f"ReadTimeout after {wall:.2f}s with a 1s read timeout"
    assert cpu < 0.5 * wall, f"burnt {cpu:.2f}s of CPU in {wall:.2f}s waiting for window"


# -- s1: the server answers before the upload is done -----------------------------------------


def test_early_response_stops_the_upload_with_rst_stream_no_error(
    scripted_server: ServerFactory,
) -> None:
    body = b"x" * 300_000
    resets: list[tuple[int, int]] = []
    uploaded: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake(settings={MAX_CONCURRENT_STREAMS: 1})
        first = ctx.wait_for_request().stream_id
        # A complete answer (END_STREAM, no RST_STREAM) before reading any of the body: the
        # client cannot have been granted more than the initial 65,535 bytes yet.
        ctx.respond(first, 413, OK, b"too large")
        reset = ctx.wait_for(h2.events.StreamReset, stream_id=first)
        assert isinstance(reset, h2.events.StreamReset)
        resets.append((reset.stream_id, reset.error_code))
        uploaded.append(
            sum(
                len(e.data)
                for e in ctx.events
                if isinstance(e, h2.events.DataReceived) and e.stream_id == first
            )
        )
        for _ in range(2):
            stream_id = ctx.wait_for_request().stream_id
            _, received = ctx.read_request(stream_id)
            ctx.respond(stream_id, 200, OK, b"after %d" % len(received))
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn):
        with quickly(2.0):
            stream_id = conn.request("POST", "/upload", body=body)
        response = conn.get_response(stream_id)
        assert response.status == 413
        assert response.read() == b"too large"
        # max_concurrent_streams=1: a half-open stream 1 would block these.
        with quickly(2.0):
            assert conn.get_response(conn.request("POST", "/b", body=b"abc")).read() == b"after 3"
            assert conn.get_response(conn.request("GET", "/c")).read() == b"after 0"
        assert server.connection_count == 1
    assert resets == [(stream_id, h2.errors.ErrorCodes.NO_ERROR)]
    assert uploaded[0] < len(body)


# -- s2/s2b: a request waiting for a stream slot when a graceful GOAWAY arrives ---------------


def _goaway_then_new_connection_handler(
    old_connection: Callable[[ServerConnection, int], None],
) -> Callable[[ServerConnection], None]:
    """Connection 1: warm-up request, then ``old_connection(ctx, a)`` for request /a, then
    assert that no request above /a arrived. Connection 2: answer one request with b"b"."""
    connections: list[ServerConnection] = []

    def handler(ctx: ServerConnection) -> None:
        connections.append(ctx)
        ctx.handshake(settings={MAX_CONCURRENT_STREAMS: 1})
        if len(connections) == 1:
            warm = ctx.wait_for_request().stream_id
            ctx.respond(warm, 200, OK, b"warm")
            a = ctx.wait_for_request().stream_id
            old_connection(ctx, a)
            ctx.wait_closed()
            late = [sid for sid in requests_seen(ctx) if sid > a]
            assert late == [], f"requests on streams {late} after GOAWAY(last_stream_id={a})"
        else:
            stream_id = ctx.wait_for_request().stream_id
            ctx.respond(stream_id, 200, OK, b"b")
            ctx.wait_closed()

    return handler


def _goaway_then_answer_later(ctx: ServerConnection, a: int) -> None:
    ctx.send_raw(goaway_bytes(a))
    # The PING's ACK proves the client processed the GOAWAY before /a's answer arrives.
    ctx.conn.ping(b"goaway!!")
    ctx.flush()
    ctx.wait_for(h2.events.PingAckReceived)
    ctx.respond(a, 200, OK, b"a")


def _answer_and_goaway_in_one_write(ctx: ServerConnection, a: int) -> None:
    ctx.conn.send_headers(a, [(b":status", b"200")], end_stream=True)
    ctx.send_raw(ctx.conn.data_to_send() + goaway_bytes(a))


def test_request_waiting_for_a_slot_goes_to_a_new_connection_after_goaway(
    scripted_server: ServerFactory,
) -> None:
    handler = _goaway_then_new_connection_handler(_goaway_then_answer_later)
    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn):
        conn.get_response(conn.request("GET", "/warm")).read()  # MCS=1 is in effect now
        a = conn.request("GET", "/a")
        with quickly(3.0):
            b = conn.request("GET", "/b")  # waits for /a's slot; the GOAWAY comes meanwhile
        assert conn.get_response(b).read() == b"b"
        assert server.connection_count == 2
        # /a is still owed on the old, draining connection: reading it finishes it there.
        assert conn.get_response(a).read() == b"a"


def test_request_waiting_for_a_slot_goes_to_a_new_connection_after_answer_and_goaway(
    scripted_server: ServerFactory,
) -> None:
    handler = _goaway_then_new_connection_handler(_answer_and_goaway_in_one_write)
    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn):
        conn.get_response(conn.request("GET", "/warm")).read()
        conn.request("GET", "/a")
        with quickly(3.0):
            b = conn.request("GET", "/b")
        assert conn.get_response(b).read() == b"b"
        assert server.connection_count == 2


def test_unfetched_complete_response_survives_reconnect_after_goaway(
    scripted_server: ServerFactory,
) -> None:
    handler = _goaway_then_new_connection_handler(_answer_and_goaway_in_one_write)
    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn):
        conn.get_response(conn.request("GET", "/warm")).read()
        a = conn.request("GET", "/a")
        b = conn.request("GET", "/b")  # reads /a's complete answer and the GOAWAY
        assert conn.get_response(b).read() == b"b"
        assert server.connection_count == 2
        response = conn.get_response(a)
        assert response.status == 200
        assert response.read() == b""


# -- s3: endheaders() failing after putrequest() ----------------------------------------------


class IntReader:
    """A file-like body whose read() returns an int (then EOF)."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> Any:
        self.calls += 1
        return 12345 if self.calls == 1 else b""


@pytest.mark.parametrize("message_body", [12345, IntReader()], ids=["int", "read-gives-int"])
def test_failed_endheaders_releases_the_reservation(
    scripted_server: ServerFactory, message_body: Any
) -> None:
    with serve(scripted_server, simple_responder({"/": b"ok"}), timeout=(5, 3)) as (_, conn):
        conn.get_response(conn.request("GET", "/")).read()
        conn.putrequest("GET", "/")
        with pytest.raises(InvalidRequest):
            conn.endheaders(message_body=message_body, final=True)

        results: list[Any] = []

        def other_thread() -> None:
            try:
                results.append(conn.get_response(conn.request("GET", "/")).read())
            except BaseException as exc:  # reported by the assert below
                results.append(exc)

        with quickly(1.5):
            thread = threading.Thread(target=other_thread, daemon=True)
            thread.start()
            thread.join(4)
        assert not thread.is_alive(), "another thread's request() is wedged"
        assert results == [b"ok"]
        with quickly(1.5):
            assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        with pytest.raises(InvalidRequest):
            conn.get_response()  # nothing stale is left waiting


# -- s4: connection window vs DATA on streams the client reset --------------------------------


def test_connection_window_stays_in_step_with_data_on_reset_streams(
    scripted_server: ServerFactory,
) -> None:
    frame_size = 256 * 1024
    target = 24 * 1024 * 1024  # h2 would emit (and count) an update every 8 MiB
    payload = b"x" * frame_size
    measured: dict[str, int] = {}
    done = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        big = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(big, [(b":status", b"200")])
        ctx.conn.send_data(big, b"x" * 1000)
        ctx.flush()
        ctx.wait_for(h2.events.StreamReset, stream_id=big)
        # Keep sending on the reset stream (raw frames: h2 would refuse), within the real
        # connection window: h2 tracks the WINDOW_UPDATEs, we subtract what it did not send.
        raw_sent = 0
        while raw_sent < target:
            if ctx.conn.outbound_flow_control_window - raw_sent < frame_size:
                if ctx.closed or not ctx.recv_events(timeout=5):
                    raise AssertionError(f"no WINDOW_UPDATE after {raw_sent} bytes")
                continue
            ctx.send_raw(DataFrame(big, data=payload).serialize())
            raw_sent += frame_size
        second = ctx.wait_for_request().stream_id
        ctx.respond(second, 200, OK, b"second")
        # Everything the client sent before its PING (all its WINDOW_UPDATEs) is processed.
        ctx.wait_for(h2.events.PingReceived)
        measured["window"] = ctx.conn.outbound_flow_control_window - raw_sent
        measured["sent"] = raw_sent
        done.set()
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/big"))
        assert response.read(10) == b"x" * 10
        response.close()  # RST_STREAM(CANCEL); the server keeps sending anyway
        second = conn.request("GET", "/second")
        with quickly(4.0):
            assert conn.get_response(second).read() == b"second"
        conn.ping(b"measure!")
        assert done.wait(5)
        current = introspect.transport(conn)
        assert current is not None
        hyper_view = current.engine.connection_manager.window_size
        real = measured["window"]
        assert measured["sent"] == target
        assert abs(hyper_view - real) <= frame_size, (
            f"hyper thinks the connection window is {hyper_view}, the server sees {real}"
        )


# -- s5: pushes nobody collects ---------------------------------------------------------------


def test_uncollected_pushes_are_capped_and_the_excess_refused(
    scripted_server: ServerFactory,
) -> None:
    limit = connection_module.MAX_BUFFERED_PUSHES
    extra = 3
    promised: list[int] = []
    refused: list[tuple[int, int]] = []
    done = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        for n in range(limit + extra):
            pushed = ctx.conn.get_next_available_stream_id()
            ctx.conn.push_stream(parent, pushed, push_headers(f"/p{n}", ctx))
            promised.append(pushed)
        ctx.flush()
        ctx.respond(parent, 200, OK, b"main")
        while len(refused) < extra:
            reset = ctx.wait_for(h2.events.StreamReset)
            assert isinstance(reset, h2.events.StreamReset)
            refused.append((reset.stream_id, reset.error_code))
        done.set()
        ctx.wait_closed()

    with serve(scripted_server, handler, enable_push=True) as (_, conn):
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        assert done.wait(5), f"refused so far: {refused}"
        assert refused == [(p, h2.errors.ErrorCodes.REFUSED_STREAM) for p in promised[limit:]]
        assert sum(introspect.uncollected_pushes(conn).values()) == limit
        pushes = list(conn.get_pushes(stream_id))
        assert [push.path for push in pushes] == [f"/p{n}".encode() for n in range(limit)]
        assert introspect.uncollected_pushes(conn) == {}


def test_closing_a_response_cancels_its_uncollected_pushes(
    scripted_server: ServerFactory,
) -> None:
    pushed_ids: list[int] = []
    resets: list[tuple[int, int]] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        complete = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, complete, push_headers("/complete", ctx))
        unfinished = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, unfinished, push_headers("/unfinished", ctx))
        pushed_ids.extend([complete, unfinished])
        ctx.flush()
        ctx.respond(complete, 200, OK, b"p" * 256 * 1024)
        ctx.respond(unfinished, 200, OK, b"partial", end=False)
        ctx.respond(parent, 200, OK, b"main")
        reset = ctx.wait_for(h2.events.StreamReset, stream_id=unfinished)
        assert isinstance(reset, h2.events.StreamReset)
        resets.append((reset.stream_id, reset.error_code))
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, OK, b"next")
        ctx.wait_closed()

    with serve(scripted_server, handler, enable_push=True) as (_, conn):
        stream_id = conn.request("GET", "/")
        with conn.get_response(stream_id) as response:
            assert response.read() == b"main"
            assert introspect.uncollected_pushes(conn)[stream_id] == 2  # held while open
        assert introspect.uncollected_pushes(conn) == {}
        assert not set(pushed_ids) & introspect.open_ids(conn)
        assert introspect.buffered(conn) == 0
        assert list(conn.get_pushes(stream_id)) == []
        assert conn.get_response(conn.request("GET", "/next")).read() == b"next"
    assert resets == [(pushed_ids[1], h2.errors.ErrorCodes.CANCEL)]


def test_close_drops_uncollected_pushes(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        pushed = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, pushed, push_headers("/style.css", ctx))
        ctx.flush()
        ctx.respond(pushed, 200, OK, b"body{}")
        ctx.respond(parent, 200, OK, b"main")
        ctx.wait_closed()

    with serve(scripted_server, handler, enable_push=True) as (_, conn):
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        assert response.read() == b"main"
        assert introspect.uncollected_pushes(conn)[stream_id] == 1
        conn.close()
        assert introspect.uncollected_pushes(conn) == {}
        assert list(conn.get_pushes(stream_id)) == []


# -- s7/s15: odd input ------------------------------------------------------------------------


@pytest.mark.parametrize("error_code", [2**32, -1, "x", 1.5])
def test_close_rejects_invalid_error_codes_and_still_closes_later(
    scripted_server: ServerFactory, error_code: Any
) -> None:
    goaways: list[int | None] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        for body in (b"one", b"two"):
            ctx.respond(ctx.wait_for_request().stream_id, 200, OK, body)
        goaway = ctx.wait_for(h2.events.ConnectionTerminated)
        assert isinstance(goaway, h2.events.ConnectionTerminated)
        goaways.append(goaway.error_code)

    with serve(scripted_server, handler) as (server, conn):
        assert conn.get_response(conn.request("GET", "/")).read() == b"one"
        with pytest.raises(InvalidRequest):
            conn.close(error_code=error_code)
        # Nothing was torn down: the same connection goes on working...
        assert conn.get_response(conn.request("GET", "/")).read() == b"two"
        assert server.connection_count == 1
        # ...and closes normally.
        conn.close()
        server.join_handlers(timeout=5)
    assert goaways == [h2.errors.ErrorCodes.NO_ERROR]


@pytest.mark.parametrize(
    ("headers", "authority"),
    [
        ([("Connection", ":path")], b"127.0.0.1"),
        ([("Connection", ":method, :scheme, :authority, :path"), ("Host", "x")], b"x"),
        ([("Connection", "X-Hop, :path"), ("X-Hop", "gone")], b"127.0.0.1"),
    ],
)
def test_connection_header_naming_pseudo_headers_does_not_drop_them(
    scripted_server: ServerFactory, headers: list[tuple[str, str]], authority: bytes
) -> None:
    handler = simple_responder({}, default=echo_path)
    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/x?y=1", headers=headers)
        assert conn.get_response(stream_id).read() == b"/x?y=1"
    request = handler.requests[0]
    assert request.method == "GET"
    assert request.header(":scheme") == b"http"
    assert (request.header(":authority") or b"").startswith(authority)
    assert request.header("connection") is None
    assert request.header("x-hop") is None


def test_file_body_whose_read_returns_an_int_leaves_no_stream_behind(
    scripted_server: ServerFactory,
) -> None:
    with serve(scripted_server, simple_responder({"/": b"ok"})) as (_, conn):
        with pytest.raises(InvalidRequest):
            conn.request("POST", "/", body=IntReader())
        assert conn._awaiting == {}
        assert conn._reserved == {}
        stream_id = conn.request("GET", "/")
        response = conn.get_response()  # the oldest waiting request: the new one
        assert response.stream_id == stream_id
        assert response.read() == b"ok"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([memoryview(b"abcdef")[::2]], b"ace"),
        (memoryview(b"abcdef")[::2], b"ace"),
        ([b"12", memoryview(bytearray(b"abcdef")).cast("B", [2, 3])], b"12abcdef"),
        ([memoryview(array.array("H", [0x4142, 0x4344]))], array.array("H", [0x4142, 0x4344])),
    ],
    ids=["iterable-strided", "strided", "2d", "uint16"],
)
def test_memoryview_bodies_arrive_intact(
    scripted_server: ServerFactory, body: Any, expected: Any
) -> None:
    expected = bytes(expected)
    handler = simple_responder({}, default=echo_body)
    with serve(scripted_server, handler) as (_, conn):
        assert conn.get_response(conn.request("POST", "/", body=body)).read() == expected
    assert handler.requests[0].body == expected


def test_invalid_amt_and_stream_id_types_raise_invalid_request(
    scripted_server: ServerFactory,
) -> None:
    with serve(scripted_server, simple_responder({"/": b"ok"})) as (_, conn):
        stream_id = conn.request("GET", "/")
        bad_ids: list[Any] = [[1], "1", 1.0, True]
        for bad_id in bad_ids:
            with pytest.raises(InvalidRequest):
                conn.get_response(bad_id)
        response = conn.get_response(stream_id)
        bad_amts: list[Any] = ["3", 1.5, [3]]
        for bad_amt in bad_amts:
            with pytest.raises(InvalidRequest):
                response.read(amt=bad_amt)
        assert response.read() == b"ok"


# -- s9: frames behind an error GOAWAY --------------------------------------------------------


def _trailing_frames(ctx: ServerConnection, stream_id: int, kind: str) -> bytes:
    if kind == "push_promise":
        frame: Any = PushPromiseFrame(stream_id)
        frame.promised_stream_id = 2
        frame.data = ctx.encode_headers(push_headers("/pushed", ctx))
        frame.flags.add("END_HEADERS")
        return bytes(frame.serialize())
    if kind == "headers_and_data":
        headers = HeadersFrame(stream_id, data=ctx.encode_headers([(b":status", b"200")]))
        headers.flags.add("END_HEADERS")
        data = DataFrame(stream_id, data=b"late")
        data.flags.add("END_STREAM")
        return headers.serialize() + data.serialize()
    if kind == "ping":
        return PingFrame(0, opaque_data=b"12345678").serialize()
    if kind == "settings":
        return SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 5}).serialize()
    if kind == "window_update":
        return WindowUpdateFrame(0, window_increment=1000).serialize()
    if kind == "rst_stream":
        return RstStreamFrame(stream_id, error_code=8).serialize()
    if kind == "goaway":
        return goaway_bytes(stream_id, error_code=11)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "push_promise",
        "headers_and_data",
        "ping",
        "settings",
        "window_update",
        "rst_stream",
        "goaway",
    ],
)
def test_frames_after_an_error_goaway_never_raise_assertion_error(
    scripted_server: ServerFactory, kind: str
) -> None:
    connections: list[ServerConnection] = []

    def handler(ctx: ServerConnection) -> None:
        connections.append(ctx)
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        if len(connections) == 1:
            error = goaway_bytes(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            ctx.send_raw(error + _trailing_frames(ctx, stream_id, kind))
            ctx.wait_closed()
        else:
            ctx.respond(stream_id, 200, OK, b"new connection")
            ctx.wait_closed()

    with serve(scripted_server, handler, enable_push=True) as (server, conn):
        # A POST: a GET would go out again on a new connection, and be answered there.
        stream_id = conn.request("POST", "/", body=b"once")
        with quickly(), pytest.raises(ConnectionError) as caught:
            conn.get_response(stream_id)
        assert caught.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        # The connection recovers: the next request goes out on a new one.
        assert conn.get_response(conn.request("GET", "/")).read() == b"new connection"
        assert server.connection_count == 2


# -- s11: many threads at the stream limit ----------------------------------------------------


def test_many_threads_share_a_connection_at_the_stream_limit(
    scripted_server: ServerFactory,
) -> None:
    threads_count, per_thread = 12, 50
    responder = simple_responder({}, default=echo_path, settings={MAX_CONCURRENT_STREAMS: 2})

    def handler(ctx: ServerConnection) -> None:
        # Without TCP_NODELAY the server's HEADERS-then-DATA writes meet Nagle and delayed
        # ACKs: ~20 ms per request instead of well under 1 ms.
        ctx.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        responder(ctx)

    errors: list[BaseException] = []
    wrong: list[tuple[str, bytes]] = []

    with serve(scripted_server, handler, timeout=(5, 4)) as (_, conn):
        conn.get_response(conn.request("GET", "/warm")).read()  # the limit is in effect

        def worker(n: int) -> None:
            for i in range(per_thread):
                path = f"/{n}/{i}"
                try:
                    body = conn.get_response(conn.request("GET", path)).read()
                except BaseException as exc:
                    errors.append(exc)
                    return
                if body != path.encode():
                    wrong.append((path, body))

        threads = [
            threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads_count)
        ]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # many more thread switches: races show up
        try:
            deadline = time.monotonic() + 4.0
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
        finally:
            sys.setswitchinterval(interval)
        assert not [t for t in threads if t.is_alive()], "requests still running after 4s"
    assert errors == []
    assert wrong == []
    assert len(responder.requests) == 1 + threads_count * per_thread


# -- s13: SSLKEYLOGFILE that cannot be written ------------------------------------------------


def test_unwritable_sslkeylogfile_only_logs_a_warning(
    scripted_server: ServerFactory,
    ca_cert_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keylog = tmp_path / "no-such-directory" / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    with caplog.at_level(logging.WARNING, logger="hyper.tls"):
        context = tls.init_context(cert_path=ca_cert_path)
        monkeypatch.setattr(tls, "_default_context", None)
        tls.default_context()  # the shared context is built the same way
    warnings = [
        r for r in caplog.records if r.name == "hyper.tls" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2
    assert all("SSLKEYLOGFILE" in r.getMessage() for r in warnings)

    # The stdlib's server-side default context would fail on the variable itself.
    monkeypatch.delenv("SSLKEYLOGFILE")
    with scripted_server(simple_responder({"/": b"secret"}), tls=True) as server:
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        )
        try:
            assert conn.get_response(conn.request("GET", "/")).read() == b"secret"
        finally:
            conn.close()
    assert not keylog.parent.exists()


# -- s14: graceful GOAWAY while a complete response is unread ---------------------------------


def test_complete_unread_response_does_not_block_reconnecting_after_goaway(
    scripted_server: ServerFactory,
) -> None:
    connections: list[ServerConnection] = []

    def handler(ctx: ServerConnection) -> None:
        connections.append(ctx)
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        if len(connections) == 1:
            # Like nginx after keepalive_requests: the answer, then GOAWAY, in one write.
            ctx.conn.send_headers(stream_id, [(b":status", b"200")])
            ctx.conn.send_data(stream_id, b"complete body", end_stream=True)
            ctx.send_raw(ctx.conn.data_to_send() + goaway_bytes(stream_id))
            ctx.wait_closed()
            assert requests_seen(ctx) == [stream_id]
        else:
            ctx.respond(stream_id, 200, OK, b"new connection")
            ctx.wait_closed()

    with serve(scripted_server, handler, timeout=(5, 3)) as (server, conn):
        response = conn.get_response(conn.request("GET", "/a"))
        current = introspect.transport(conn)
        assert current is not None and current.engine.goaway is not None  # in the same read
        with quickly(2.0):
            second = conn.request("GET", "/b")
        assert conn.get_response(second).read() == b"new connection"
        assert server.connection_count == 2
        assert response.read() == b"complete body"


# -- s16: uploads refused mid-body ------------------------------------------------------------


def test_refused_uploads_leave_nothing_awaiting(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        while True:
            event = ctx.next_event(timeout=5)
            if event is None or isinstance(event, h2.events.ConnectionTerminated):
                return
            if not isinstance(event, h2.events.RequestReceived):
                continue
            if dict(event.headers)[b":path"] == b"/upload":
                ctx.conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                ctx.flush()
            else:
                ctx.respond(event.stream_id, 200, OK, b"fresh")

    with serve(scripted_server, handler, timeout=(5, 3)) as (_, conn):
        for _ in range(3):
            with quickly(), pytest.raises(StreamResetError) as caught:
                conn.request("POST", "/upload", body=b"x" * 300_000)
            assert caught.value.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            assert conn._awaiting == {}
        stream_id = conn.request("GET", "/new")
        response = conn.get_response()
        assert response.stream_id == stream_id
        assert response.read() == b"fresh"


# -- s17: descriptors above FD_SETSIZE --------------------------------------------------------


def test_tls_request_with_more_than_1024_descriptors_open(
    scripted_server: ServerFactory, ca_cert_path: Path
) -> None:
    resource = pytest.importorskip("resource")
    hog_count, needed = 1100, 1300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    restore = False
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        except (ValueError, OSError) as exc:
            pytest.skip(f"cannot raise RLIMIT_NOFILE to {needed}: {exc}")
        restore = True
    context = tls.init_context(cert_path=ca_cert_path)
    try:
        with (
            scripted_server(simple_responder({"/": b"ok"}), tls=True) as server,
            contextlib.ExitStack() as hog,
        ):
            for _ in range(hog_count):
                hog.enter_context(open(os.devnull, "rb"))
            conn = HTTP20Connection(
                "localhost", server.port, secure=True, ssl_context=context, timeout=5
            )
            try:
                conn.connect()
                assert introspect.fileno(conn) >= 1024
                assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
            finally:
                conn.close()
    finally:
        if restore:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- s8 (open): a TLS read blocked on half a record, under the lock ---------------------------


def test_close_is_not_blocked_by_a_tls_read_of_half_a_record(
    scripted_raw_server: ServerFactory, server_cert: CertPaths, ca_cert_path: Path
) -> None:
    read_timeout = 2.5
    headers_seen = threading.Event()
    half_sent = threading.Event()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(server_cert.cert_path), str(server_cert.key_path))
    server_context.set_alpn_protocols(["h2"])

    def handler(sock: socket.socket) -> None:
        sock.settimeout(5)
        bio = BioTLSServer(sock, server_context)
        bio.handshake()
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        bio.send(conn.data_to_send())
        stream_id = None
        while stream_id is None:
            for event in conn.receive_data(bio.recv()):
                if isinstance(event, h2.events.RequestReceived):
                    stream_id = event.stream_id
            bio.send(conn.data_to_send())
        conn.send_headers(stream_id, [(b":status", b"200")])
        bio.send(conn.data_to_send())
        assert headers_seen.wait(5)
        conn.send_data(stream_id, b"x" * 1000)
        bio.tls.write(conn.data_to_send())
        record = bio.outgoing.read()
        sock.sendall(record[: len(record) // 2])  # ...and the rest never comes
        half_sent.set()
        while sock.recv(65536):  # until the client closes
            pass

    with scripted_raw_server(handler) as server:
        context = tls.init_context(cert_path=ca_cert_path)
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=(5, read_timeout)
        )
        reader_done = threading.Event()
        try:
            response = conn.get_response(conn.request("GET", "/"))
            headers_seen.set()
            assert half_sent.wait(5)

            def reader() -> None:
                try:
                    response.read(1000)
                except Exception:
                    pass  # ConnectionClosed or ReadTimeout: either is fine here
                finally:
                    reader_done.set()

            threading.Thread(target=reader, daemon=True).start()
            # Wait (bounded) until the reader holds the lock for a while: it is in SSL_read.
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                if not conn._lock.acquire(timeout=0.2):
                    break
                conn._lock.release()
            with quickly(1.0):
                conn.close()
        finally:
            conn.close()
            reader_done.wait(read_timeout + 1)
