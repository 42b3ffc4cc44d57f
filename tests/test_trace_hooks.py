"""Trace hooks (``trace=``): the events a connection reports as they happen, against real
servers on 127.0.0.1 and the loopback addresses of tests/support/addresses.py.

What is checked: the events of a request in order with their details, the live per-address
events of the Happy Eyeballs race, stream resets by either side, GOAWAY, waiting for a stream
slot, the hook reaching the connection HTTPConnection delegates to, and a hook that raises
being logged and detached while the request goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.errors
import h2.settings
import pytest

from hyper import HTTP11Connection, HTTPConnection, TraceEvent
from hyper.common import trace
from hyper.common.exceptions import SocketError
from hyper.http20.exceptions import StreamResetError
from tests.support.addresses import (
    SAFETY_TIMEOUT,
    StaticResolver,
    black_hole,
    ipv6_loopback_works,
    refusing_port,
    sockaddr,
)
from tests.support.helpers import goaway_bytes, localhost_tls, serve
from tests.support.http11 import Reply as Reply11
from tests.support.http11 import http11_responder
from tests.support.scripted import Reply, ScriptedRawServer, ServerConnection, simple_responder

ServerFactory = Callable[..., Any]
OK = [(b"content-type", b"text/plain")]
TIMEOUT = 5
NAME = "dual.test"

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here")


class Recorder:
    """A trace hook that keeps every event, and when (monotonic) and in which thread it was
    called."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self.called_at: list[float] = []
        self.threads: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, event: TraceEvent) -> None:
        with self.lock:
            self.events.append(event)
            self.called_at.append(time.monotonic())
            self.threads.append(threading.get_ident())

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def named(self, name: str) -> list[TraceEvent]:
        return [event for event in self.events if event.name == name]


def echo_path() -> Any:
    return simple_responder({}, default=lambda request: Reply(200, OK, request.path.encode()))


@pytest.fixture
def h11_server(scripted_raw_server: ServerFactory) -> Iterator[ScriptedRawServer]:
    with scripted_raw_server(http11_responder({"/": b"hello"})) as server:
        yield server


# -- a request's events ---------------------------------------------------------------------------


def test_http11_over_tls_reports_every_phase_in_order(
    scripted_raw_server: ServerFactory, ca_cert_path: Path
) -> None:
    hook = Recorder()
    with scripted_raw_server(http11_responder({"/": b"hello"}), tls=True, alpn=["http/1.1"]) as s:
        conn = localhost_tls(HTTP11Connection, s.port, ca_cert_path, trace=hook)
        with conn:
            conn.request("GET", "/?q=1")
            first = conn.get_response()
            first.read()
            opened = len(hook.events)
            conn.request("POST", "/", body=b"12345")
            conn.get_response().read()
    assert hook.names()[:opened] == [
        trace.DNS_START,
        trace.DNS_END,
        trace.CONNECT_START,
        trace.CONNECT_END,
        trace.TLS_START,
        trace.TLS_END,
        trace.REQUEST_HEADERS_SENT,
        trace.REQUEST_BODY_SENT,
        trace.RESPONSE_HEADERS,
        trace.RESPONSE_BODY_DONE,
    ]
    # The reused connection: no connection events for the second request.
    assert hook.names()[opened:] == [
        trace.REQUEST_HEADERS_SENT,
        trace.REQUEST_BODY_SENT,
        trace.RESPONSE_HEADERS,
        trace.RESPONSE_BODY_DONE,
    ]
    ev = {event.name: event for event in hook.events[:opened]}
    t = first.timings
    for name in ("dns_start", "dns_end", "tls_start", "tls_end"):
        assert ev[name].at == getattr(t, name)
    assert ev[trace.RESPONSE_BODY_DONE].at == t.body_done
    assert ev[trace.DNS_END].info["addresses"] == [f"127.0.0.1:{s.port}"]
    assert ev[trace.CONNECT_END].info["outcome"] == "connected"
    assert ev[trace.TLS_END].info["alpn"] == "http/1.1"
    assert str(ev[trace.TLS_END].info["version"]).startswith("TLSv1")
    assert dict(ev[trace.REQUEST_HEADERS_SENT].info) == {"method": "GET", "target": "/?q=1"}
    assert dict(ev[trace.RESPONSE_HEADERS].info) == {"status": 200}
    assert hook.named(trace.REQUEST_BODY_SENT)[1].info["bytes"] == 5
    assert all(event.stream_id is None for event in hook.events)  # HTTP/1.1: no streams


def test_an_interim_response_is_reported_too(scripted_raw_server: ServerFactory) -> None:
    hook = Recorder()
    handler = http11_responder({"/": Reply11(200, body=b"ok", informational=[Reply11(103)])})
    with (
        scripted_raw_server(handler) as server,
        HTTP11Connection("127.0.0.1", server.port, timeout=TIMEOUT, trace=hook) as conn,
    ):
        conn.request("GET", "/")
        conn.get_response().read()
    assert [e.info["status"] for e in hook.named(trace.RESPONSE_HEADERS)] == [103, 200]


def test_http2_events_name_their_streams(scripted_server: ServerFactory) -> None:
    hook = Recorder()
    with serve(scripted_server, echo_path(), trace=hook) as (_, conn):
        ids = [conn.request("GET", f"/{n}") for n in range(3)]
        for stream_id in ids:
            conn.get_response(stream_id).read()
    assert [e.stream_id for e in hook.named(trace.REQUEST_HEADERS_SENT)] == ids
    assert sorted(e.stream_id for e in hook.named(trace.RESPONSE_HEADERS)) == ids
    assert sorted(e.stream_id for e in hook.named(trace.RESPONSE_BODY_DONE)) == ids
    sent = hook.named(trace.REQUEST_HEADERS_SENT)[2]
    assert dict(sent.info) == {"method": "GET", "target": "/2"}
    assert hook.names().count(trace.CONNECT_START) == 1  # one connection for all three


def test_httpconnection_hands_its_hook_to_the_protocol_it_picks(
    scripted_server: ServerFactory, ca_cert_path: Path
) -> None:
    hook = Recorder()
    with scripted_server(echo_path(), tls=True) as server:
        conn = localhost_tls(HTTPConnection, server.port, ca_cert_path, trace=hook)
        with conn:
            conn.get_response(conn.request("GET", "/x")).read()
    assert hook.named(trace.TLS_END)[0].info["alpn"] == "h2"
    assert [e.stream_id for e in hook.named(trace.RESPONSE_HEADERS)] == [1]
    assert hook.names()[0] == trace.DNS_START


# -- the Happy Eyeballs race ----------------------------------------------------------------------


@needs_ipv6
def test_each_address_of_the_race_is_reported_as_it_is_tried(
    h11_server: ScriptedRawServer,
) -> None:
    hook = Recorder()
    delay = 0.2
    with black_hole("::1") as hole:
        resolver = StaticResolver(NAME, [hole, sockaddr("127.0.0.1", h11_server.port)])
        conn = HTTP11Connection(
            NAME,
            h11_server.port,
            timeout=SAFETY_TIMEOUT,
            happy_eyeballs_delay=delay,
            resolver=resolver,
            trace=hook,
        )
        with conn:
            conn.request("GET", "/")
            response = conn.get_response()
            response.read()
    v6, v4 = f"[::1]:{hole[1][1]}", f"127.0.0.1:{h11_server.port}"
    race = [
        (i, e)
        for i, e in enumerate(hook.events)
        if e.name in (trace.CONNECT_START, trace.CONNECT_END)
    ]
    assert [(e.name, e.info["address"], e.info.get("outcome")) for _, e in race] == [
        (trace.CONNECT_START, v6, None),
        (trace.CONNECT_START, v4, None),
        (trace.CONNECT_END, v4, "connected"),
        (trace.CONNECT_END, v6, "abandoned"),
    ]
    (i6, start6), (_, start4) = race[0], race[1]
    assert start4.at - start6.at >= delay
    # Live: the hook heard of the IPv6 attempt while it was still in flight, before the
    # IPv4 one even started.
    assert hook.called_at[i6] < start4.at
    t = response.timings
    assert t.connect_start is not None and t.connect_end is not None
    assert t.connect_start <= start6.at and t.connect_end >= race[2][1].at
    assert t.connect >= delay  # type: ignore[operator]


@needs_ipv6
def test_a_refused_address_is_reported_as_failed(h11_server: ScriptedRawServer) -> None:
    hook = Recorder()
    refused = refusing_port("::1")
    resolver = StaticResolver(
        NAME, [sockaddr("::1", refused), sockaddr("127.0.0.1", h11_server.port)]
    )
    with HTTP11Connection(
        NAME, h11_server.port, timeout=SAFETY_TIMEOUT, resolver=resolver, trace=hook
    ) as conn:
        conn.request("GET", "/")
        conn.get_response().read()
    ends = hook.named(trace.CONNECT_END)
    assert [e.info["outcome"] for e in ends] == ["failed", "connected"]
    assert isinstance(ends[0].info["error"], ConnectionRefusedError)
    assert ends[1].info["error"] is None


def test_a_name_that_does_not_resolve_reports_the_error() -> None:
    hook = Recorder()
    conn = HTTP11Connection(
        NAME, 80, timeout=TIMEOUT, resolver=StaticResolver("other", []), trace=hook
    )
    with conn, pytest.raises(SocketError, match="cannot resolve"):
        conn.request("GET", "/")
    assert hook.names() == [trace.DNS_START, trace.DNS_END]
    assert "error" in hook.events[1].info and hook.events[1].info["host"] == NAME


# -- streams and connections ending ---------------------------------------------------------------


def test_a_stream_reset_by_the_server(scripted_server: ServerFactory) -> None:
    hook = Recorder()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        ctx.wait_closed()

    with serve(scripted_server, handler, trace=hook) as (_, conn):
        stream_id = conn.request("GET", "/")
        with pytest.raises(StreamResetError):
            conn.get_response(stream_id)
    [reset] = hook.named(trace.STREAM_RESET)
    assert reset.stream_id == stream_id
    assert dict(reset.info) == {"error_code": 2, "by": "server"}


def test_a_stream_reset_by_the_client(scripted_server: ServerFactory) -> None:
    hook = Recorder()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        ctx.conn.send_data(stream_id, b"a" * 1000)
        ctx.flush()
        ctx.wait_closed()

    with (
        serve(scripted_server, handler, trace=hook) as (_, conn),
        conn.get_response(conn.request("GET", "/")) as response,
    ):
        assert response.read(10) == b"a" * 10
    [reset] = hook.named(trace.STREAM_RESET)
    assert dict(reset.info) == {"error_code": 8, "by": "client"}  # CANCEL
    assert response.timings.body_done is None  # the body never ended


def test_goaway_is_reported(scripted_server: ServerFactory) -> None:
    hook = Recorder()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_raw(goaway_bytes(stream_id))
        ctx.respond(stream_id, 200, OK, b"last")
        ctx.wait_closed()

    with serve(scripted_server, handler, trace=hook) as (_, conn):
        assert conn.get_response(conn.request("GET", "/")).read() == b"last"
    [goaway] = hook.named(trace.GOAWAY)
    assert goaway.stream_id is None
    assert dict(goaway.info) == {"last_stream_id": 1, "error_code": 0}


def test_waiting_for_a_stream_slot_is_reported(scripted_server: ServerFactory) -> None:
    hook = Recorder()
    limit = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    handler = simple_responder({}, default=b"ok", settings=limit)
    with serve(scripted_server, handler, trace=hook) as (_, conn):
        conn.get_response(conn.request("GET", "/warm")).read()
        first, second = conn.request("GET", "/a"), conn.request("GET", "/b")
        conn.get_response(first).read()
        conn.get_response(second).read()
    names = hook.names()
    queued = names.index(trace.QUEUED_START)
    assert trace.QUEUED_END in names[queued + 1 :]
    assert hook.named(trace.QUEUED_END)[0].stream_id == second
    assert len(hook.named(trace.QUEUED_START)) == 1


# -- a hook that raises ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fatal",
    [
        trace.CONNECT_START,
        trace.REQUEST_HEADERS_SENT,
        trace.RESPONSE_HEADERS,
        trace.RESPONSE_BODY_DONE,
    ],
)
def test_a_raising_hook_is_logged_detached_and_harmless(
    scripted_server: ServerFactory, caplog: pytest.LogCaptureFixture, fatal: str
) -> None:
    calls: list[str] = []

    def hook(event: TraceEvent) -> None:
        calls.append(event.name)
        if event.name == fatal:
            raise ValueError("a bug in the hook")

    with (
        caplog.at_level(logging.ERROR, logger="hyper.trace"),
        serve(scripted_server, echo_path(), trace=hook) as (_, conn),
    ):
        assert conn.get_response(conn.request("GET", "/1")).read() == b"/1"
        assert conn.get_response(conn.request("GET", "/2")).read() == b"/2"
        assert conn.tracer.hook is None
    assert calls[-1] == fatal  # never called after it raised
    [record] = [r for r in caplog.records if r.name == "hyper.trace"]
    assert "detached" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_a_raising_hook_on_http11_is_detached_too(
    h11_server: ScriptedRawServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def hook(event: TraceEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    with (
        caplog.at_level(logging.ERROR, logger="hyper.trace"),
        HTTP11Connection("127.0.0.1", h11_server.port, timeout=TIMEOUT, trace=hook) as conn,
    ):
        for _ in range(2):
            conn.request("GET", "/")
            assert conn.get_response().read() == b"hello"
    assert calls == 1
    assert len([r for r in caplog.records if r.name == "hyper.trace"]) == 1
