"""Timings and trace hooks over HTTP/3: the phases of each request on an HTTP30Connection,
the events a hook is given as they happen, and what HTTPConnection(http3=True) reports of
its race between QUIC and TCP.

The servers are real: hypercorn (``--quic-bind``) and Caddy, the scripted server of
:mod:`tests.support.h3peer` for resets, GOAWAY and the server's stream limit, and a UDP port
that swallows QUIC for handshakes that never complete.
"""

from __future__ import annotations

import concurrent.futures
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper import HTTP30Connection, HTTP30Response, HTTPConnection, TraceEvent, discovery
from hyper.common import trace
from hyper.common.altsvc import ALT_SVC_CACHE
from hyper.common.exceptions import ConnectTimeout, InvalidRequest, SocketError
from hyper.common.trace import Timings, TraceHook
from hyper.common.util import HTTPVersion
from hyper.http30.errors import H3ErrorCode
from hyper.http30.exceptions import StreamResetError
from hyper.tls import init_context
from tests.support.certs import TLSMaterial
from tests.support.h3hostile import HostileExchange, data_frame, headers_frame, run_hostile_peer
from tests.support.h3peer import Exchange, H3Peer, run_h3_peer
from tests.support.h3servers import SMALL_BODY, SMALL_FILE, CaddyServer, H3Server
from tests.support.helpers import quickly
from tests.support.timing_checks import assert_reused, in_order
from tests.support.udp_peers import UDPPeer, swallowing_peer

TIMEOUT = 10.0

#: More requests than the scripted server's QUIC stack lets a client open at first.
MANY_REQUESTS = 250

#: The events of a QUIC handshake: connecting and TLS begin and end together.
HANDSHAKE = [trace.CONNECT_START, trace.TLS_START, trace.CONNECT_END, trace.TLS_END]

#: The phases a request takes from the connection it opened.
CONNECTION_PHASES = Timings.CONNECTION_PHASES


def assert_request_phases(t: Timings) -> None:
    """The phases every complete request has, in order, and no wait for a slot."""
    assert t.protocol == "HTTP/3"
    assert in_order(t.start, t.headers_sent, t.request_sent, t.first_byte, t.body_done)
    assert t.queued_start is None and t.queued_end is None


def assert_opened(t: Timings, *, dns: bool) -> None:
    """``t`` is the timings of the request that opened its connection: connecting and TLS
    both span the QUIC handshake."""
    assert not t.reused
    assert (t.dns_start is not None) is dns
    assert in_order(t.dns_end or t.connect_start, t.connect_start, t.connect_end)
    assert (t.tls_start, t.tls_end) == (t.connect_start, t.connect_end)
    assert t.connect is not None and t.connect > 0
    assert t.tls == t.connect
    assert_request_phases(t)


def fetch(conn: HTTP30Connection | HTTPConnection, path: str, **kwargs: object) -> HTTP30Response:
    """The response to a GET, its body read to the end."""
    response = conn.get_response(conn.request("GET", path, **kwargs))  # type: ignore[arg-type]
    response.read()
    assert isinstance(response, HTTP30Response)
    return response


def names(events: list[TraceEvent]) -> list[str]:
    return [event.name for event in events]


def named(events: list[TraceEvent], name: str) -> list[TraceEvent]:
    return [event for event in events if event.name == name]


@pytest.fixture
def swallowing_udp() -> Iterator[UDPPeer]:
    """A UDP port where QUIC's packets go unanswered."""
    udp = swallowing_peer()
    yield udp
    udp.close()


def connect_to(
    host: str, port: int, ca_cert_path: Path, hook: TraceHook | None = None
) -> HTTP30Connection:
    """A connection to ``host:port`` trusting the test CA, with ``hook``."""
    return HTTP30Connection(host, port, cert_path=ca_cert_path, timeout=TIMEOUT, trace=hook)


def scripted(
    peer: H3Peer, tls_material: TLSMaterial, events: list[TraceEvent]
) -> HTTP30Connection:
    """A connection to a scripted server, its events going to ``events``."""
    return connect_to(peer.host, peer.port, tls_material.ca_cert_path, events.append)


def localhost(server: H3Server) -> str:
    """``localhost``, to reach ``server`` by name; the test is skipped where the name does
    not resolve to the server's address first (hyper uses the first address over QUIC)."""
    found = socket.getaddrinfo("localhost", server.port, type=socket.SOCK_DGRAM)[0][4]
    if found[0] != server.host:
        pytest.skip("localhost does not resolve to the server's address first here")
    return "localhost"


# -- the phases of each request ----------------------------------------------------------------


def test_the_request_that_opens_the_connection_carries_its_phases(
    hypercorn_h3: H3Server,
) -> None:
    name = localhost(hypercorn_h3)
    with connect_to(name, hypercorn_h3.port, hypercorn_h3.ca_cert_path) as conn:
        first = fetch(conn, "/get").timings
        second = fetch(conn, "/get").timings
    assert_opened(first, dns=True)
    assert in_order(first.start, first.dns_start, first.dns_end, first.connect_start)
    assert in_order(first.connect_end, first.headers_sent)
    assert first.send is not None and first.wait is not None and first.receive is not None
    assert_reused(second)
    assert in_order(first.body_done, second.start)
    assert first.summary().startswith("HTTP/3 new dns=")
    assert second.summary().startswith("HTTP/3 reused dns=- connect=- tls=-")


def test_an_address_is_not_looked_up_and_connect_gives_its_phases_to_the_first_request(
    hypercorn_h3_conn: HTTP30Connection,
) -> None:
    conn = hypercorn_h3_conn
    conn.connect()
    first = fetch(conn, "/get").timings
    second = fetch(conn, "/get").timings
    assert_opened(first, dns=False)
    # Opened before the request began.
    assert in_order(first.connect_end, first.start, first.headers_sent)
    assert_reused(second)


def test_a_body_is_sent_after_the_headers(hypercorn_h3_conn: HTTP30Connection) -> None:
    body = b"x" * 300_000
    conn = hypercorn_h3_conn
    response = conn.get_response(conn.request("POST", "/echo", body=body))
    assert response.read() == body
    t = response.timings
    assert_opened(t, dns=False)
    assert t.headers_sent is not None and t.request_sent is not None
    assert t.request_sent > t.headers_sent


def test_concurrent_requests_each_have_their_own_timings(
    hypercorn_h3_conn: HTTP30Connection,
) -> None:
    conn = hypercorn_h3_conn
    ids = [conn.request("GET", f"/bytes/{n}") for n in range(5)]
    timings = [conn.get_response(i).timings for i in ids]
    for response_timings in timings:
        assert response_timings.headers_sent is not None
    assert [t.reused for t in timings] == [False, True, True, True, True]
    assert len({id(t) for t in timings}) == 5
    assert in_order(*(t.headers_sent for t in timings))


def test_of_threads_sending_at_once_only_the_one_that_connected_carries_the_handshake(
    hypercorn_h3_conn: HTTP30Connection,
) -> None:
    conn = hypercorn_h3_conn
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(fetch, conn, f"/bytes/{n}") for n in range(4)]
        timings = [future.result(timeout=TIMEOUT).timings for future in futures]
    assert conn.connections_opened == 1
    opened = [t for t in timings if not t.reused]
    assert len(opened) == 1
    assert_opened(opened[0], dns=False)
    for t in timings:
        if t.reused:
            assert_reused(t)


def test_caddy_responses_are_timed(caddy_h3: CaddyServer) -> None:
    with connect_to(caddy_h3.host, caddy_h3.port, caddy_h3.ca_cert_path) as conn:
        response = conn.get_response(conn.request("GET", f"/{SMALL_FILE}"))
        assert response.read() == SMALL_BODY
    assert_opened(response.timings, dns=False)


def test_a_request_at_the_servers_stream_limit_waits_for_a_slot(
    tls_material: TLSMaterial,
) -> None:
    # Requests sent one after the other without reading meet the limit the server's QUIC
    # stack sets on open streams (100 for qh3, 128 for aioquic): the first one over it
    # reads until the server raises the limit.
    def script(exchange: Exchange) -> None:
        exchange.respond(body=str(exchange.index).encode())

    events: list[TraceEvent] = []
    with (
        run_h3_peer(tls_material.server, script) as peer,
        scripted(peer, tls_material, events) as conn,
    ):
        ids = [conn.request("GET", f"/{n}") for n in range(MANY_REQUESTS)]
        responses = [conn.get_response(i) for i in ids]
        assert [r.read() for r in responses] == [str(n).encode() for n in range(MANY_REQUESTS)]
    waited = [n for n, r in enumerate(responses) if r.timings.queued_start is not None]
    assert waited, "no request met the server's stream limit"
    first = responses[waited[0]].timings
    assert in_order(first.start, first.queued_start, first.queued_end, first.headers_sent)
    assert first.queued is not None and first.queued > 0
    assert first.send is not None and first.send >= 0
    starts = named(events, trace.QUEUED_START)
    ends = named(events, trace.QUEUED_END)
    assert len(starts) == len(ends) == len(waited)
    assert ends[0].stream_id == 4 * waited[0]
    assert (starts[0].at, ends[0].at) == (first.queued_start, first.queued_end)


def test_an_interim_response_is_the_first_byte(tls_material: TLSMaterial) -> None:
    def script(exchange: HostileExchange) -> None:
        exchange.send(headers_frame(103, [(b"link", b"</style.css>; rel=preload")]))
        exchange.send(headers_frame(200) + data_frame(b"final"), end_stream=True)

    events: list[TraceEvent] = []
    with (
        run_hostile_peer(tls_material.server, script) as peer,
        scripted(peer, tls_material, events) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert (response.status, response.read()) == (200, b"final")
    heads = named(events, trace.RESPONSE_HEADERS)
    assert [e.info["status"] for e in heads] == [103, 200]
    assert response.timings.first_byte == heads[0].at


# -- events ------------------------------------------------------------------------------------


def test_every_event_of_a_request_in_order(hypercorn_h3: H3Server) -> None:
    events: list[TraceEvent] = []
    address = f"{hypercorn_h3.host}:{hypercorn_h3.port}"
    with connect_to(
        hypercorn_h3.host, hypercorn_h3.port, hypercorn_h3.ca_cert_path, events.append
    ) as conn:
        response = conn.get_response(conn.request("POST", "/echo", body=b"hello"))
        assert response.read() == b"hello"
    assert names(events) == [
        *HANDSHAKE,
        trace.REQUEST_HEADERS_SENT,
        trace.REQUEST_BODY_SENT,
        trace.RESPONSE_HEADERS,
        trace.RESPONSE_BODY_DONE,
    ]
    by_name = {event.name: event for event in events}
    assert by_name[trace.CONNECT_START].info == {"address": address, "transport": "quic"}
    assert by_name[trace.CONNECT_END].info == {
        "address": address,
        "transport": "quic",
        "outcome": "connected",
        "error": None,
    }
    assert by_name[trace.TLS_START].info["server_name"] == hypercorn_h3.host
    tls_end = by_name[trace.TLS_END].info
    assert (tls_end["version"], tls_end["alpn"], tls_end["transport"]) == ("TLSv1.3", "h3", "quic")
    assert by_name[trace.REQUEST_HEADERS_SENT].info["method"] == "POST"
    assert by_name[trace.REQUEST_BODY_SENT].info == {"bytes": 5}
    assert by_name[trace.RESPONSE_HEADERS].info == {"status": 200}
    for event in events[:4]:
        assert event.stream_id is None
    assert {event.stream_id for event in events[4:]} == {0}
    t = response.timings
    stamps = [e.at for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] == t.connect_start and stamps[3] == t.tls_end
    assert (stamps[4], stamps[5], stamps[6], stamps[7]) == (
        t.headers_sent,
        t.request_sent,
        t.first_byte,
        t.body_done,
    )


def test_a_name_is_resolved_with_events(hypercorn_h3: H3Server) -> None:
    name = localhost(hypercorn_h3)
    events: list[TraceEvent] = []
    with connect_to(name, hypercorn_h3.port, hypercorn_h3.ca_cert_path, events.append) as conn:
        conn.connect()
    assert names(events)[:3] == [trace.DNS_START, trace.DNS_END, trace.CONNECT_START]
    assert events[0].info == {"host": "localhost", "transport": "quic"}
    assert events[1].info == {
        "host": "localhost",
        "addresses": [f"{hypercorn_h3.host}:{hypercorn_h3.port}"],
        "transport": "quic",
    }


def test_a_name_that_does_not_resolve_reports_the_error() -> None:
    events: list[TraceEvent] = []
    conn = HTTP30Connection("no-such-host.invalid", 443, timeout=TIMEOUT, trace=events.append)
    with pytest.raises(SocketError) as caught:
        conn.connect()
    assert names(events) == [trace.DNS_START, trace.DNS_END]
    assert events[1].info["error"] is caught.value


def test_a_handshake_that_times_out_reports_a_failed_attempt(swallowing_udp: UDPPeer) -> None:
    events: list[TraceEvent] = []
    conn = HTTP30Connection("127.0.0.1", swallowing_udp.port, timeout=0.5, trace=events.append)
    with quickly(5.0), pytest.raises(ConnectTimeout) as caught:
        conn.connect()
    assert names(events) == [
        trace.CONNECT_START,
        trace.TLS_START,
        trace.CONNECT_END,
        trace.TLS_END,
    ]
    connect_end, tls_end = events[2].info, events[3].info
    assert (connect_end["outcome"], connect_end["error"]) == ("failed", caught.value)
    assert tls_end["error"] is caught.value


def test_a_stream_reset_by_the_server(tls_material: TLSMaterial) -> None:
    def script(exchange: Exchange) -> None:
        exchange.reset(H3ErrorCode.H3_REQUEST_CANCELLED)

    events: list[TraceEvent] = []
    with (
        run_h3_peer(tls_material.server, script) as peer,
        scripted(peer, tls_material, events) as conn,
        pytest.raises(StreamResetError),
    ):
        conn.get_response(conn.request("GET", "/"))
    (reset,) = named(events, trace.STREAM_RESET)
    assert reset.stream_id == 0
    assert reset.info == {"error_code": H3ErrorCode.H3_REQUEST_CANCELLED, "by": "server"}


def test_a_stream_reset_by_the_client(tls_material: TLSMaterial) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.index == 1:
            exchange.respond(body=b"second")  # the first is never answered

    events: list[TraceEvent] = []
    with (
        run_h3_peer(tls_material.server, script) as peer,
        scripted(peer, tls_material, events) as conn,
    ):
        given_up = conn.request("GET", "/never")
        conn.cancel(given_up)
        assert fetch(conn, "/second").status == 200
    (reset,) = named(events, trace.STREAM_RESET)
    assert reset.stream_id == 0
    assert reset.info == {"error_code": H3ErrorCode.H3_REQUEST_CANCELLED, "by": "client"}


def test_goaway_is_reported_and_a_request_sent_again_opens_the_next_connection(
    tls_material: TLSMaterial,
) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.connection == 0:
            if exchange.index == 0:
                exchange.goaway(exchange.stream_id + 4)  # only the first was processed
                exchange.respond(body=b"first")
            return
        exchange.respond(body=b"again")

    events: list[TraceEvent] = []
    with (
        run_h3_peer(tls_material.server, script) as peer,
        scripted(peer, tls_material, events) as conn,
    ):
        first = conn.request("GET", "/a")
        second = conn.request("GET", "/b")
        assert conn.get_response(first).read() == b"first"
        again = conn.get_response(second)
        assert again.read() == b"again"
        assert conn.connections_opened == 2
    (goaway,) = named(events, trace.GOAWAY)
    assert goaway.stream_id is None
    assert goaway.info == {"goaway_id": 4, "last_stream_id": 0, "error_code": None}
    # The request sent again opened the second connection: its phases are that one's.
    assert_opened(again.timings, dns=False)
    second_connect = named(events, trace.CONNECT_END)[1]
    assert again.timings.connect_end == second_connect.at
    assert goaway.at < again.timings.connect_start  # type: ignore[operator]


# -- hooks -------------------------------------------------------------------------------------


def test_a_raising_hook_is_logged_detached_and_harmless(
    hypercorn_h3: H3Server, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[TraceEvent] = []

    def hook(event: TraceEvent) -> None:
        calls.append(event)
        raise RuntimeError("the hook is broken")

    with (
        caplog.at_level(logging.ERROR, logger="hyper.trace"),
        connect_to(hypercorn_h3.host, hypercorn_h3.port, hypercorn_h3.ca_cert_path, hook) as conn,
    ):
        first = fetch(conn, "/get")
        second = fetch(conn, "/get")
    assert [event.name for event in calls] == [trace.CONNECT_START]
    (record,) = [r for r in caplog.records if r.name == "hyper.trace"]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the hook is broken"
    assert conn.tracer.hook is None
    assert_opened(first.timings, dns=False)
    assert_reused(second.timings)


def test_a_trace_that_is_not_callable_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="trace"):
        HTTP30Connection("127.0.0.1", 443, trace="print")  # type: ignore[arg-type]


# -- HTTPConnection(http3=True): the race --------------------------------------------------------


@pytest.fixture
def no_alt_svc() -> Iterator[None]:
    """The process-wide ``Alt-Svc`` record starts empty and is emptied after the test."""
    ALT_SVC_CACHE.clear()
    yield
    ALT_SVC_CACHE.clear()


def _open(server: H3Server, events: list[TraceEvent]) -> HTTPConnection:
    context = init_context(cert_path=str(server.ca_cert_path))
    return HTTPConnection(
        server.host,
        server.tcp_port,
        secure=True,
        ssl_context=context,
        timeout=TIMEOUT,
        http3=True,
        trace=events.append,
    )


@pytest.mark.usefixtures("no_alt_svc")
def test_the_hook_reaches_http3_when_quic_wins(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A head start no loaded machine overruns: QUIC wins, TCP never starts.
    monkeypatch.setattr(discovery, "HTTP3_HEAD_START", 10.0)
    events: list[TraceEvent] = []
    with _open(caddy_h3, events) as conn:
        response = fetch(conn, f"/{SMALL_FILE}")
        assert conn.version is HTTPVersion.http30
        again = fetch(conn, f"/{SMALL_FILE}")
    assert_opened(response.timings, dns=False)
    assert in_order(response.timings.start, response.timings.connect_start)
    assert_reused(again.timings)
    connects = named(events, trace.CONNECT_START) + named(events, trace.CONNECT_END)
    assert {e.info["transport"] for e in connects} == {"quic"}
    assert len(named(events, trace.RESPONSE_BODY_DONE)) == 2


@pytest.mark.usefixtures("no_alt_svc")
def test_the_hook_sees_both_attempts_when_tcp_wins(
    caddy_h3: CaddyServer, swallowing_udp: UDPPeer
) -> None:
    ALT_SVC_CACHE.remember(
        ("https", caddy_h3.host, caddy_h3.tcp_port), [f'h3=":{swallowing_udp.port}"']
    )
    events: list[TraceEvent] = []
    with quickly(5.0), _open(caddy_h3, events) as conn:
        response = conn.get_response(conn.request("GET", f"/{SMALL_FILE}"))
        assert response.read() == SMALL_BODY
        assert conn.version is HTTPVersion.http20
    quic = [e for e in events if e.info.get("transport") == "quic"]
    tcp = [e for e in events if e.info.get("transport") == "tcp"]
    assert names(quic) == HANDSHAKE
    assert quic[0].info["address"] == f"127.0.0.1:{swallowing_udp.port}"
    assert quic[2].info["outcome"] == "abandoned"
    assert names(tcp) == [trace.CONNECT_START, trace.CONNECT_END, trace.TLS_START, trace.TLS_END]
    assert tcp[1].info["outcome"] == "connected"
    assert tcp[3].info["alpn"] == "h2"
    # The response's phases are those of the TCP connection it went on.
    t = response.timings
    assert t.protocol == "HTTP/2" and not t.reused
    assert t.tls_end == tcp[3].at
    assert in_order(t.start, t.connect_start, t.connect_end, t.tls_start, t.tls_end)
    # The request's own events carry no transport: they belong to the winner.
    sent = named(events, trace.REQUEST_HEADERS_SENT)
    assert len(sent) == 1 and "transport" not in sent[0].info


@pytest.mark.usefixtures("no_alt_svc")
def test_the_requests_adapter_times_http3_and_traces_it(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "HTTP3_HEAD_START", 10.0)
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    events: list[TraceEvent] = []
    url = f"https://{caddy_h3.host}:{caddy_h3.tcp_port}/{SMALL_FILE}"
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter(http3=True, trace=events.append))
        first, second = (
            session.get(url, verify=str(caddy_h3.ca_cert_path), timeout=TIMEOUT) for _ in range(2)
        )
        assert (first.content, second.content) == (SMALL_BODY, SMALL_BODY)
    assert (first.raw.version, second.raw.version) == (30, 30)
    assert_opened(first.raw.timings, dns=False)
    assert_reused(second.raw.timings)
    assert [e.info["status"] for e in named(events, trace.RESPONSE_HEADERS)] == [200, 200]
