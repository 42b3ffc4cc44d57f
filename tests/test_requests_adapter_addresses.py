"""How the connections of :class:`hyper.contrib.HTTP20Adapter` pick addresses: its
``happy_eyeballs_delay`` and ``address_family`` reach every connection it opens, over HTTP/1.1,
HTTP/2, and the TCP attempt racing QUIC.

``localhost`` is made to resolve to a black-holed ``::1`` and the live ``127.0.0.1`` of the
server (the module's :func:`~hyper.common.eyeballs.system_resolver`, which connections without
a ``resolver`` call, is swapped; tests/support/addresses.py has the black hole). The servers'
certificates name ``localhost``, so TLS is checked as usual. Nothing leaves the machine.
"""

from __future__ import annotations

import pickle
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hyper.common import eyeballs
from hyper.common.exceptions import InvalidRequest
from hyper.contrib import HTTP20Adapter
from tests.support.adapter import session_with
from tests.support.addresses import (
    V4,
    StaticResolver,
    black_hole,
    ipv6_loopback_works,
    sockaddr,
)
from tests.support.http2bin import Http2binServer
from tests.support.http11 import http11_responder
from tests.support.scripted import ScriptedRawServer

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here"),
]


@pytest.fixture
def hole() -> Iterator[tuple[int, tuple[Any, ...]]]:
    """A black-holed address on ::1: an attempt on it neither connects nor fails."""
    with black_hole("::1") as address:
        yield address


def localhost_is(
    monkeypatch: pytest.MonkeyPatch, *answer: tuple[int, tuple[Any, ...]]
) -> StaticResolver:
    """Make ``localhost`` resolve to ``answer`` for every connection."""
    resolver = StaticResolver("localhost", answer)
    monkeypatch.setattr(eyeballs, "system_resolver", resolver)
    return resolver


@pytest.fixture
def plain_server(scripted_raw_server: Any) -> Iterator[ScriptedRawServer]:
    with scripted_raw_server(http11_responder({"/": b"ok"})) as server:
        yield server


# -- the delay -----------------------------------------------------------------------------------


def test_the_delay_reaches_http11_connections(
    monkeypatch: pytest.MonkeyPatch, hole: Any, plain_server: ScriptedRawServer
) -> None:
    localhost_is(monkeypatch, hole, sockaddr("127.0.0.1", plain_server.port))
    url = f"http://localhost:{plain_server.port}/"
    # Longer than the connect timeout: the IPv4 address never gets its turn.
    with (
        session_with(HTTP20Adapter(happy_eyeballs_delay=3)) as session,
        pytest.raises(requests.exceptions.ConnectTimeout),
    ):
        session.get(url, timeout=(0.5, 5))
    with session_with(HTTP20Adapter(happy_eyeballs_delay=0.05)) as session:
        assert session.get(url, timeout=(3, 5)).content == b"ok"


@pytest.mark.http2bin
def test_the_delay_reaches_http2_connections(
    monkeypatch: pytest.MonkeyPatch, hole: Any, http2bin_tls: Http2binServer
) -> None:
    localhost_is(monkeypatch, hole, sockaddr("127.0.0.1", http2bin_tls.port))
    url = f"https://localhost:{http2bin_tls.port}/get"
    verify = str(http2bin_tls.ca_cert_path)
    with (
        session_with(HTTP20Adapter(happy_eyeballs_delay=3)) as session,
        pytest.raises(requests.exceptions.ConnectTimeout),
    ):
        session.get(url, verify=verify, timeout=(0.5, 5))
    with session_with(HTTP20Adapter(happy_eyeballs_delay=0.05)) as session:
        response = session.get(url, verify=verify, timeout=(3, 5))
        assert response.raw.version == 20
        assert response.json()["url"] == url


# -- the family ----------------------------------------------------------------------------------


def test_the_family_reaches_http11_connections(
    monkeypatch: pytest.MonkeyPatch, hole: Any, plain_server: ScriptedRawServer
) -> None:
    resolver = localhost_is(monkeypatch, hole, sockaddr("127.0.0.1", plain_server.port))
    adapter = HTTP20Adapter(address_family=socket.AF_INET, happy_eyeballs_delay=5)
    with session_with(adapter) as session:
        # Were the black hole tried, the request would time out connecting.
        response = session.get(f"http://localhost:{plain_server.port}/", timeout=(1, 5))
    assert response.content == b"ok"
    assert resolver.calls == [("localhost", plain_server.port, V4)]


def test_the_family_reaches_the_tcp_attempt_racing_quic(
    monkeypatch: pytest.MonkeyPatch,
    hole: Any,
    scripted_raw_server: Any,
    ca_cert_path: Path,
) -> None:
    pytest.importorskip("qh3")
    # Nothing answers QUIC on the server's port: TCP, which HTTP/3 races, carries the request.
    responder = http11_responder({"/": b"over tcp"})
    with scripted_raw_server(responder, tls=True, alpn=["http/1.1"]) as server:
        resolver = localhost_is(monkeypatch, hole, sockaddr("127.0.0.1", server.port))
        adapter = HTTP20Adapter(http3=True, address_family=socket.AF_INET, happy_eyeballs_delay=5)
        with session_with(adapter) as session:
            response = session.get(
                f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=(2, 5)
            )
    assert response.content == b"over tcp"
    assert response.raw.version == 11
    assert ("localhost", server.port, V4) in resolver.calls


# -- checking and keeping the settings -----------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"happy_eyeballs_delay": 0},
        {"happy_eyeballs_delay": "fast"},
        {"address_family": socket.AF_UNIX},
    ],
)
def test_unusable_settings_fail_in_the_constructor(settings: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        HTTP20Adapter(**settings)


def test_the_settings_survive_pickling() -> None:
    adapter = HTTP20Adapter(happy_eyeballs_delay=0.1, address_family=socket.AF_INET6)
    copy = pickle.loads(pickle.dumps(adapter))
    assert (copy.happy_eyeballs_delay, copy.address_family) == (0.1, socket.AF_INET6)
    defaults = HTTP20Adapter()
    assert (defaults.happy_eyeballs_delay, defaults.address_family) == (0.25, None)
