"""``response.timings``: every response says when each phase of its request happened, against
real servers on 127.0.0.1 (scripted HTTP/1.1 and HTTP/2 servers, plain and TLS).

The phases of a request that opened its connection come in order (resolving, connecting, the
TLS handshake, sending, the response's first byte, the end of its body); a request on a
connection opened earlier says so and has no connection phases; a request that waited for a
stream slot says how long.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.settings
import pytest
import requests

from hyper import (
    HTTP11Connection,
    HTTP11Response,
    HTTP20Connection,
    HTTPConnection,
    Timings,
    TraceEvent,
)
from hyper.common import trace
from hyper.common.exceptions import InvalidRequest
from hyper.contrib import HTTP20Adapter
from tests.support.cli import run_cli
from tests.support.helpers import localhost_tls, serve
from tests.support.http2bin import Http2binServer
from tests.support.http11 import Reply as Reply11
from tests.support.http11 import http11_responder
from tests.support.scripted import Reply, ScriptedRawServer, simple_responder
from tests.support.timing_checks import assert_reused, in_order

ServerFactory = Callable[..., Any]
OK = [(b"content-type", b"text/plain")]
TIMEOUT = 5


def assert_fresh(t: Timings, *, tls: bool, dns: bool) -> None:
    """The timings of a request that opened its connection."""
    assert t.reused is False
    assert t.queued_start is None and t.queued_end is None
    connecting: list[float | None] = [t.connect_start, t.connect_end]
    if dns:
        connecting = [t.dns_start, t.dns_end, *connecting]
    else:
        assert t.dns_start is None and t.dns is None  # an IP address is not looked up
    if tls:
        connecting += [t.tls_start, t.tls_end]
    else:
        assert t.tls_start is None and t.tls is None
    assert in_order(
        t.start, *connecting, t.headers_sent, t.request_sent, t.first_byte, t.body_done
    )
    for duration in (t.connect, t.send, t.wait, t.receive, t.total):
        assert duration is not None and duration >= 0
    assert t.total is not None and t.connect is not None and t.total >= t.connect


@pytest.fixture
def h11_server(scripted_raw_server: ServerFactory) -> Iterator[ScriptedRawServer]:
    handler = http11_responder({"/": b"hello", "/big": Reply11(200, body=b"x" * 200_000)})
    with scripted_raw_server(handler) as server:
        yield server


@pytest.fixture
def h11_tls_server(scripted_raw_server: ServerFactory) -> Iterator[ScriptedRawServer]:
    with scripted_raw_server(
        http11_responder({"/": b"hello"}), tls=True, alpn=["http/1.1"]
    ) as server:
        yield server


def h2_handler(**kwargs: Any) -> Any:
    return simple_responder(
        {}, default=lambda request: Reply(200, OK, request.path.encode()), **kwargs
    )


# -- HTTP/1.1 -------------------------------------------------------------------------------------


def test_http11_plain_new_then_reused(h11_server: ScriptedRawServer) -> None:
    with HTTP11Connection("127.0.0.1", h11_server.port, timeout=TIMEOUT) as conn:
        conn.request("GET", "/")
        first = conn.get_response()
        assert first.timings.body_done is None  # nothing reads ahead over HTTP/1.1
        assert first.read() == b"hello"
        conn.request("GET", "/big")
        second = conn.get_response()
        assert len(second.read()) == 200_000
    assert_fresh(first.timings, tls=False, dns=False)
    assert first.timings.protocol == "HTTP/1.1"
    assert_reused(second.timings)
    assert second.timings.start >= first.timings.body_done  # type: ignore[operator]


def test_http11_over_tls_with_a_name_to_resolve(
    h11_tls_server: ScriptedRawServer, ca_cert_path: Path
) -> None:
    conn = localhost_tls(HTTP11Connection, h11_tls_server.port, ca_cert_path)
    with conn:
        conn.request("GET", "/")
        response = conn.get_response()
        response.read()
    assert_fresh(response.timings, tls=True, dns=True)


def test_phases_of_an_explicit_connect_go_to_the_first_request(
    h11_server: ScriptedRawServer,
) -> None:
    with HTTP11Connection("127.0.0.1", h11_server.port, timeout=TIMEOUT) as conn:
        conn.connect()
        conn.request("GET", "/")
        response = conn.get_response()
        response.read()
    t = response.timings
    assert t.reused is False
    assert in_order(t.connect_start, t.connect_end, t.start, t.request_sent)
    assert t.send is not None and t.request_sent is not None
    assert t.send <= t.request_sent - t.start  # counted from the start, not from connecting


def test_a_head_response_is_done_when_it_arrives(h11_server: ScriptedRawServer) -> None:
    with HTTP11Connection("127.0.0.1", h11_server.port, timeout=TIMEOUT) as conn:
        conn.request("HEAD", "/")
        response = conn.get_response()
    assert in_order(response.timings.first_byte, response.timings.body_done)


def test_a_response_closed_early_has_no_body_end(h11_server: ScriptedRawServer) -> None:
    with HTTP11Connection("127.0.0.1", h11_server.port, timeout=TIMEOUT) as conn:
        conn.request("GET", "/big")
        response = conn.get_response()
        response.read(10)
        response.close()
    assert response.timings.body_done is None and response.timings.total is None


# -- HTTP/2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection])
def test_http2_over_tls_new_then_reused(
    scripted_server: ServerFactory, ca_cert_path: Path, cls: type[Any]
) -> None:
    # HTTPConnection settles the protocol within the first request: its start comes first.
    with scripted_server(h2_handler(), tls=True) as server:
        conn = localhost_tls(cls, server.port, ca_cert_path)
        with conn:
            first = conn.get_response(conn.request("GET", "/one"))
            assert first.read() == b"/one"
            second = conn.get_response(conn.request("GET", "/two"))
            assert second.read() == b"/two"
    assert_fresh(first.timings, tls=True, dns=True)
    assert first.timings.protocol == "HTTP/2"
    assert_reused(second.timings)


def test_h2c_new_then_reused(scripted_server: ServerFactory) -> None:
    with serve(scripted_server, h2_handler()) as (_, conn):
        first = conn.get_response(conn.request("POST", "/up", body=b"data" * 100))
        first.read()
        second = conn.get_response(conn.request("GET", "/two"))
        second.read()
    assert_fresh(first.timings, tls=False, dns=False)
    assert first.timings.headers_sent < first.timings.request_sent  # type: ignore[operator]
    assert_reused(second.timings)


def test_concurrent_streams_each_have_their_timings(scripted_server: ServerFactory) -> None:
    with serve(scripted_server, h2_handler()) as (_, conn):
        ids = [conn.request("GET", f"/{n}") for n in range(5)]
        responses = [conn.get_response(i) for i in ids]
        bodies = [r.read() for r in responses]
    assert bodies == [f"/{n}".encode() for n in range(5)]
    timings = [r.timings for r in responses]
    assert len({id(t) for t in timings}) == 5
    assert [t.reused for t in timings] == [False, True, True, True, True]
    for t in timings:
        assert in_order(t.start, t.headers_sent, t.first_byte, t.body_done)


def test_a_request_waiting_at_the_stream_limit_is_queued(scripted_server: ServerFactory) -> None:
    limit = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    with serve(scripted_server, h2_handler(settings=limit)) as (_, conn):
        conn.get_response(conn.request("GET", "/warm")).read()  # the limit is known now
        # The first stream is open until its response is read: the second waits for it.
        first_id = conn.request("GET", "/a")
        second_id = conn.request("GET", "/b")
        first, second = conn.get_response(first_id), conn.get_response(second_id)
        assert (first.read(), second.read()) == (b"/a", b"/b")
    assert first.timings.queued is None
    t = second.timings
    assert t.queued is not None and t.queued >= 0
    assert in_order(t.start, t.queued_start, t.queued_end, t.headers_sent)
    assert first.timings.first_byte <= t.queued_end  # type: ignore[operator]


# -- HTTPConnection -------------------------------------------------------------------------------


def test_http11_through_httpconnection(h11_server: ScriptedRawServer) -> None:
    with HTTPConnection("127.0.0.1", h11_server.port, timeout=TIMEOUT) as conn:
        conn.request("POST", "/", body=b"x" * 100_000)  # too large to ask for an upgrade
        response = conn.get_response()
        response.read()
    assert_fresh(response.timings, tls=False, dns=False)
    assert response.timings.protocol == "HTTP/1.1"


@pytest.mark.http2bin
def test_an_h2c_upgrade_keeps_one_timeline(http2bin_plain: Http2binServer) -> None:
    with HTTPConnection(http2bin_plain.host, http2bin_plain.port, timeout=TIMEOUT) as conn:
        assert conn.request("GET", "/get") is None  # over HTTP/1.1, asking to upgrade
        response = conn.get_response(None)
        response.read()
    t = response.timings
    assert t.protocol == "HTTP/2"  # the answer came on stream 1
    assert_fresh(t, tls=False, dns=False)


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTP20Connection, HTTPConnection])
def test_every_connection_checks_its_trace_argument(cls: type[Any]) -> None:
    with pytest.raises(InvalidRequest, match="trace must be a callable"):
        cls("127.0.0.1", 80, trace="print")


def test_a_response_made_without_a_connection_has_timings_too() -> None:
    response = HTTP11Response(200, "OK", [(b"content-length", b"0")], None)
    assert response.timings.protocol == "HTTP/1.1"
    assert in_order(response.timings.start, response.timings.body_done)  # empty: done at once


# -- the requests adapter -------------------------------------------------------------------------


def test_the_adapter_exposes_timings_and_traces_its_connections(
    h11_server: ScriptedRawServer,
) -> None:
    events: list[TraceEvent] = []
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTP20Adapter(trace=events.append))
    with session:
        url = f"http://127.0.0.1:{h11_server.port}/"
        first = session.get(url, timeout=TIMEOUT)
        second = session.get(url, timeout=TIMEOUT)
    assert first.content == second.content == b"hello"
    assert_fresh(first.raw.timings, tls=False, dns=False)
    assert_reused(second.raw.timings)
    # requests' own elapsed: from its send() to the response head, the body left out.
    assert first.elapsed.total_seconds() > 0
    names = [event.name for event in events]
    assert names.count(trace.CONNECT_START) == 1
    assert names.count(trace.RESPONSE_BODY_DONE) == 2


def test_the_adapter_checks_its_trace_argument() -> None:
    with pytest.raises(InvalidRequest, match="trace must be a callable"):
        HTTP20Adapter(trace=42)  # type: ignore[arg-type]


# -- the command line -----------------------------------------------------------------------------

_TIMING_LINE = re.compile(
    r"^\* timing: HTTP/1\.1 (new|reused) dns=- connect=([\d.]+ms|-) tls=- queued=- "
    r"send=[\d.]+ms wait=[\d.]+ms receive=[\d.]+ms total=[\d.]+ms$"
)


def timing_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.startswith("* timing:")]


def test_cli_timing_prints_one_line(h11_server: ScriptedRawServer) -> None:
    url = f"http://127.0.0.1:{h11_server.port}/"
    result = run_cli("--timing", url)
    assert result.returncode == 0 and result.stdout == b"hello"
    [line] = timing_lines(result.stderr)
    assert _TIMING_LINE.match(line) and " new " in line and " connect=-" not in line
    # The tool connects before it sends: that still counts in the request's total.
    phases = dict(field.split("=") for field in line.split()[4:])
    assert float(phases["total"][:-2]) >= float(phases["connect"][:-2])
    assert timing_lines(run_cli(url).stderr) == []  # not asked for


def test_cli_verbose_prints_the_timing_of_every_hop(scripted_raw_server: ServerFactory) -> None:
    handler = http11_responder(
        {"/old": Reply11(301, headers=[(b"location", b"/")]), "/": b"hello"}
    )
    with scripted_raw_server(handler) as server:
        result = run_cli("-v", "-L", f"http://127.0.0.1:{server.port}/old")
    assert result.returncode == 0
    lines = timing_lines(result.stderr)
    assert len(lines) == 2 and all(_TIMING_LINE.match(line) for line in lines)
    assert " new " in lines[0] and " reused " in lines[1]  # the redirect stays on the connection
