"""Happy Eyeballs (RFC 8305): which address a TCP connection ends up on, and how long it takes
to get there, against real listeners on ``::1`` and ``127.0.0.1``, refused ports and
black-holed addresses (tests/support/addresses.py). Nothing is sent off the machine.

``localhost`` resolves to 127.0.0.1 alone on many machines, so the tests name a made-up host
and hand hyper a resolver for it, the public ``resolver`` argument.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.bufsocket import BufferedSocket
from hyper.common.exceptions import ConnectTimeout, InvalidRequest, SocketError
from hyper.common.eyeballs import DEFAULT_DELAY, ConnectPolicy, ConnectReport, connect
from hyper.common.sockets import open_connection
from hyper.tls import init_context
from tests.support.addresses import (
    SAFETY_TIMEOUT,
    V4,
    V6,
    StaticResolver,
    black_hole,
    ipv6_loopback_works,
    listener,
    refusing_port,
    sockaddr,
)
from tests.support.http11 import read_request

pytestmark = pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here")

NAME = "dual.test"

#: Slack allowed above an expected duration: the machine is shared and may be busy.
MARGIN = 0.35


def policy(*answer: tuple[int, tuple[Any, ...]], delay: float = DEFAULT_DELAY) -> ConnectPolicy:
    """A policy whose resolver answers ``answer`` for :data:`NAME`."""
    return ConnectPolicy.build(delay, None, StaticResolver(NAME, answer))


def timed_connect(
    connect_policy: ConnectPolicy, timeout: float | None = SAFETY_TIMEOUT
) -> tuple[ConnectReport, float]:
    """Connect to :data:`NAME`; the report and the seconds it took."""
    started = time.monotonic()
    sock = connect(NAME, 1, timeout, connect_policy)
    elapsed = time.monotonic() - started
    with sock:
        return sock.connect_report, elapsed


def accepted_from(server: socket.socket) -> tuple[Any, ...]:
    """Accept one connection on ``server``; the peer's address."""
    conn, peer = server.accept()
    conn.close()
    return tuple(peer)


# -- who wins ------------------------------------------------------------------------------------


def test_both_families_listening_the_first_address_wins_alone() -> None:
    with listener("::1") as v6, listener("127.0.0.1") as v4:
        found = policy(
            sockaddr("::1", v6.getsockname()[1]), sockaddr("127.0.0.1", v4.getsockname()[1])
        )
        report, elapsed = timed_connect(found)
        assert report.address.family == V6
        assert len(report.attempts) == 1  # the IPv4 attempt was never needed
        assert accepted_from(v6)[0] == "::1"
    assert elapsed < DEFAULT_DELAY


def test_a_refused_family_hands_over_at_once() -> None:
    # A long delay: only the refusal can explain a quick switch to IPv4.
    with listener("127.0.0.1") as v4:
        found = policy(
            sockaddr("::1", refusing_port("::1")),
            sockaddr("127.0.0.1", v4.getsockname()[1]),
            delay=2.0,
        )
        report, elapsed = timed_connect(found)
        assert report.address.host == "127.0.0.1"
        assert isinstance(report.attempts[0].error, ConnectionRefusedError)
        assert accepted_from(v4)[0] == "127.0.0.1"
    assert elapsed < 1.0


@pytest.mark.parametrize("delay", [0.1, 0.4])
def test_a_black_holed_ipv6_address_loses_to_ipv4_after_the_delay(delay: float) -> None:
    with black_hole("::1") as hole, listener("127.0.0.1") as v4:
        found = policy(hole, sockaddr("127.0.0.1", v4.getsockname()[1]), delay=delay)
        report, elapsed = timed_connect(found)
        assert report.address.host == "127.0.0.1"
        first, second = report.attempts
        assert first.address.family == V6 and first.error is None  # abandoned, not failed
        assert delay <= second.started - first.started < delay + MARGIN
        assert accepted_from(v4)[0] == "127.0.0.1"
    assert delay <= elapsed < delay + MARGIN


def test_a_black_holed_ipv4_address_loses_to_ipv6_when_ipv4_comes_first() -> None:
    with black_hole("127.0.0.1") as hole, listener("::1") as v6:
        report, elapsed = timed_connect(policy(hole, sockaddr("::1", v6.getsockname()[1])))
        assert report.address.family == V6
        assert [a.address.family for a in report.attempts] == [V4, V6]
        accepted_from(v6)
    assert DEFAULT_DELAY <= elapsed < DEFAULT_DELAY + MARGIN


def test_families_alternate_so_ipv4_is_second_not_last() -> None:
    # Two dead IPv6 addresses before the IPv4 one: interleaving tries IPv4 second.
    with black_hole("::1") as hole1, black_hole("::1") as hole2, listener("127.0.0.1") as v4:
        found = policy(hole1, hole2, sockaddr("127.0.0.1", v4.getsockname()[1]), delay=0.2)
        report, elapsed = timed_connect(found)
        assert [a.host for a in report.addresses] == ["::1", "127.0.0.1", "::1"]
        assert report.address.host == "127.0.0.1"
        assert len(report.attempts) == 2
        accepted_from(v4)
    assert 0.2 <= elapsed < 0.2 + MARGIN


@pytest.mark.parametrize("how", ["refused", "unusable"])
def test_a_failure_hands_over_at_once_while_an_earlier_attempt_is_in_flight(how: str) -> None:
    # Tried in order: the black hole (0 s), the failing address (after one delay), then at
    # once the listener: one delay in all, not two. Linux reports a refusal through poll();
    # an address the socket layer rejects fails inside connect() itself.
    with black_hole("127.0.0.1") as hole, listener("127.0.0.1") as v4:
        if how == "refused":
            failing = sockaddr("127.0.0.1", refusing_port("127.0.0.1"))
        else:
            failing = (V4, ("127.0.0.1", "no port"))
        found = policy(hole, failing, sockaddr("127.0.0.1", v4.getsockname()[1]), delay=0.5)
        report, elapsed = timed_connect(found)
        assert report.address.sockaddr[1] == v4.getsockname()[1]
        assert isinstance(report.attempts[1].error, OSError)
        accepted_from(v4)
    assert 0.5 <= elapsed < 0.5 + MARGIN < 2 * 0.5


def test_when_every_address_is_black_holed_the_deadline_ends_the_race() -> None:
    with black_hole("::1") as hole6, black_hole("127.0.0.1") as hole4:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=rf"timed out connecting to {NAME}:1") as info:
            connect(NAME, 1, 0.5, policy(hole6, hole4, delay=0.1))
        elapsed = time.monotonic() - started
    assert "[::1]" in str(info.value) and "127.0.0.1" in str(info.value)
    assert 0.5 <= elapsed < 0.5 + MARGIN


# -- pinning a family ----------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "host"), [(V4, "127.0.0.1"), (V6, "::1")])
def test_a_pinned_family_is_the_only_one_asked_for_and_tried(family: int, host: str) -> None:
    with listener("::1") as v6, listener("127.0.0.1") as v4:
        resolver = StaticResolver(
            NAME,
            [sockaddr("::1", v6.getsockname()[1]), sockaddr("127.0.0.1", v4.getsockname()[1])],
        )
        sock = connect(
            NAME, 1, SAFETY_TIMEOUT, ConnectPolicy.build(family=family, resolver=resolver)
        )
        with sock:
            assert sock.family == family
            assert [a.address.host for a in sock.connect_report.attempts] == [host]
        assert resolver.calls == [(NAME, 1, family)]
        accepted_from(v6 if family == V6 else v4)


def test_a_pinned_family_drops_other_addresses_a_resolver_returns() -> None:
    with listener("127.0.0.1") as v4:
        answer = [
            sockaddr("::1", refusing_port("::1")),
            sockaddr("127.0.0.1", v4.getsockname()[1]),
        ]
        careless = ConnectPolicy.build(family=V4, resolver=lambda host, port, family: answer)
        with connect(NAME, 1, SAFETY_TIMEOUT, careless) as sock:
            assert len(sock.connect_report.attempts) == 1
        accepted_from(v4)


def test_a_pinned_family_refuses_a_literal_of_the_other() -> None:
    with pytest.raises(SocketError, match="not an IPv6 address"):
        connect("127.0.0.1", 80, SAFETY_TIMEOUT, ConnectPolicy.build(family=V6))


def test_a_pinned_family_with_no_address_of_it_is_a_resolution_error() -> None:
    only_v4 = policy(sockaddr("127.0.0.1", 1))._replace(family=V6)
    with pytest.raises(SocketError, match=r"cannot resolve host 'dual\.test': no IPv6 address"):
        connect(NAME, 1, SAFETY_TIMEOUT, only_v4)


# -- failures --------------------------------------------------------------------------------


def test_every_address_refused_names_each_with_its_error() -> None:
    found = policy(
        sockaddr("::1", refusing_port("::1")), sockaddr("127.0.0.1", refusing_port("127.0.0.1"))
    )
    with pytest.raises(SocketError, match=rf"cannot connect to {NAME}:1: \[::1\]") as info:
        connect(NAME, 1, SAFETY_TIMEOUT, found)
    assert not isinstance(info.value, ConnectTimeout)
    assert str(info.value).count("Connection refused") == 2
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_an_unknown_name_is_a_resolution_error() -> None:
    with pytest.raises(SocketError, match=r"cannot resolve host 'other\.test'") as info:
        connect("other.test", 80, SAFETY_TIMEOUT, policy(sockaddr("127.0.0.1", 1)))
    assert isinstance(info.value.__cause__, socket.gaierror)


@pytest.mark.parametrize(
    "answer", [[("not", "an", "address")], [(socket.AF_UNIX, ("/tmp/x", 1))], [(V4, "127.0.0.1")]]
)
def test_a_resolver_answering_nonsense_is_an_invalid_request(answer: list[Any]) -> None:
    bad = ConnectPolicy.build(resolver=lambda host, port, family: answer)
    with pytest.raises(InvalidRequest, match="the resolver returned"):
        connect(NAME, 80, SAFETY_TIMEOUT, bad)


def test_an_ip_literal_is_never_given_to_the_resolver() -> None:
    def never(host: str, port: int, family: int) -> list[Any]:
        raise AssertionError(f"resolver called for {host}")

    with listener("::1") as v6:
        sock = connect(
            "::1", v6.getsockname()[1], SAFETY_TIMEOUT, ConnectPolicy.build(resolver=never)
        )
        sock.close()
        accepted_from(v6)


# -- the deadline --------------------------------------------------------------------------------


def test_the_deadline_bounds_a_resolver_that_never_answers() -> None:
    release = threading.Event()

    def stuck(host: str, port: int, family: int) -> list[Any]:
        release.wait(SAFETY_TIMEOUT)
        return []

    started = time.monotonic()
    try:
        with pytest.raises(
            ConnectTimeout, match=rf"timed out connecting to {NAME}:80 \(resolving"
        ):
            connect(NAME, 80, 0.3, ConnectPolicy.build(resolver=stuck))
    finally:
        release.set()
    assert 0.3 <= time.monotonic() - started < 0.3 + MARGIN


def test_the_deadline_bounds_resolving_and_connecting_together() -> None:
    def slow(host: str, port: int, family: int) -> list[Any]:
        threading.Event().wait(0.3)  # a slow DNS server
        return [hole]

    with black_hole("127.0.0.1") as hole:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout):
            connect(NAME, 80, 0.6, ConnectPolicy.build(resolver=slow))
        elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 0.6 + MARGIN  # not 0.3 + 0.6


def test_without_a_timeout_resolving_runs_in_the_callers_thread() -> None:
    threads: list[threading.Thread] = []

    def recording(host: str, port: int, family: int) -> list[Any]:
        threads.append(threading.current_thread())
        return [sockaddr("127.0.0.1", v4.getsockname()[1])]

    with listener("127.0.0.1") as v4:
        connect(NAME, 80, None, ConnectPolicy.build(resolver=recording)).close()
        connect(NAME, 80, SAFETY_TIMEOUT, ConnectPolicy.build(resolver=recording)).close()
        accepted_from(v4)
        accepted_from(v4)
    assert threads[0] is threading.current_thread()
    assert threads[1] is not threading.current_thread()


# -- nothing leaks ---------------------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_losing_and_failed_attempts_are_closed() -> None:
    with black_hole("::1") as hole, listener("127.0.0.1") as v4:
        won = policy(hole, sockaddr("127.0.0.1", v4.getsockname()[1]), delay=0.01)
        lost = policy(hole, sockaddr("127.0.0.1", refusing_port("127.0.0.1")), delay=0.01)
        before = open_descriptors()
        for _ in range(10):
            connect(NAME, 1, SAFETY_TIMEOUT, won).close()
            accepted_from(v4)
            with pytest.raises(ConnectTimeout):
                connect(NAME, 1, 0.05, lost)
        assert open_descriptors() == before


# -- through the connection classes -----------------------------------------------------------


def answer_ok(sock: socket.socket) -> None:
    """A one-response HTTP/1.1 server handler."""
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture
def dual_server(
    scripted_raw_server: Callable[..., Any],
) -> Iterator[tuple[Any, tuple[int, tuple[Any, ...]]]]:
    """An HTTP/1.1 server on 127.0.0.1 (TLS with the test certificate for ``localhost``), and
    a black hole on ::1 to list before it."""
    with (
        scripted_raw_server(answer_ok, tls=True, alpn=["http/1.1"]) as server,
        black_hole("::1") as hole,
    ):
        yield server, hole


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection])
def test_connections_race_addresses_with_their_arguments(
    cls: type[Any], dual_server: tuple[Any, Any], ca_cert_path: Path
) -> None:
    server, hole = dual_server
    resolver = StaticResolver("localhost", [hole, sockaddr("127.0.0.1", server.port)])
    conn = cls(
        "localhost",
        server.port,
        secure=True,
        ssl_context=init_context(cert_path=str(ca_cert_path)),
        timeout=SAFETY_TIMEOUT,
        happy_eyeballs_delay=0.1,
        resolver=resolver,
    )
    with conn:
        started = time.monotonic()
        conn.request("GET", "/")
        assert conn.get_response().read() == b"ok"
    assert 0.1 <= time.monotonic() - started < 0.1 + MARGIN + 0.5  # plus the TLS handshake
    assert resolver.calls == [("localhost", server.port, socket.AF_UNSPEC)]


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTP20Connection, HTTPConnection])
def test_every_connection_class_hands_its_arguments_to_the_race(cls: type[Any]) -> None:
    refused6, refused4 = refusing_port("::1"), refusing_port("127.0.0.1")
    resolver = StaticResolver(NAME, [sockaddr("::1", refused6), sockaddr("127.0.0.1", refused4)])
    conn = cls(NAME, 80, timeout=SAFETY_TIMEOUT, address_family=V4, resolver=resolver)
    with conn, pytest.raises(SocketError, match=rf"cannot connect to {NAME}:80: .*refused"):
        conn.connect()
    assert resolver.calls == [(NAME, 80, V4)]
    assert conn.connect_policy == ConnectPolicy(DEFAULT_DELAY, V4, resolver)


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTP20Connection, HTTPConnection])
def test_connections_check_their_connect_arguments(cls: type[Any]) -> None:
    for bad in ({"happy_eyeballs_delay": 0}, {"address_family": socket.AF_UNIX}, {"resolver": 1}):
        with pytest.raises(InvalidRequest):
            cls("localhost", 80, **bad)


def test_an_http_proxy_is_reached_with_happy_eyeballs() -> None:
    with black_hole("::1") as hole, listener("127.0.0.1") as proxy:
        found = policy(hole, sockaddr("127.0.0.1", proxy.getsockname()[1]), delay=0.1)
        sock, _ = open_connection(
            "origin.test",
            80,
            secure=False,
            proxy_host=NAME,
            proxy_port=1,
            tunnel=False,
            connect_timeout=SAFETY_TIMEOUT,
            connect_policy=found,
        )
        report = sock.connect_report
        sock.close()
        assert report is not None and report.address.host == "127.0.0.1"
        accepted_from(proxy)


def test_the_buffered_socket_tells_which_address_won() -> None:
    with listener("::1") as v6:
        port = v6.getsockname()[1]
        sock, _ = open_connection("::1", port, secure=False, connect_timeout=SAFETY_TIMEOUT)
        assert isinstance(sock, BufferedSocket)
        report = sock.connect_report
        sock.close()
        accepted_from(v6)
    assert report is not None
    assert report.address.sockaddr[:2] == ("::1", port)
    assert report.resolve_ended - report.resolve_started < 0.01  # a literal: no lookup
    assert report.resolve_ended <= report.attempts[0].started <= report.connected
