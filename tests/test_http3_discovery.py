"""Finding HTTP/3 the way browsers and curl do: ``HTTPConnection(http3=True)`` tries QUIC
first and races TCP shortly after, remembers what ``Alt-Svc`` fields advertise, and falls back
to TCP when UDP is refused or dropped.

The servers are real: Caddy serves HTTP/3 on the same port number as HTTP/1.1 and HTTP/2;
hypercorn serves it on another UDP port, which its TCP responses advertise with ``Alt-Svc``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from hyper import HTTPConnection, discovery
from hyper.common.altsvc import ALT_SVC_CACHE
from hyper.common.exceptions import HyperError, InvalidRequest
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.h3servers import SMALL_BODY, SMALL_FILE, CaddyServer, H3Server
from tests.support.helpers import quickly
from tests.support.tinyproxy import TinyproxyServer
from tests.support.udp_peers import UDPPeer, swallowing_peer

pytestmark = [pytest.mark.http3, pytest.mark.usefixtures("fresh_alt_svc_record")]


@pytest.fixture
def swallowing_udp() -> Iterator[UDPPeer]:
    """A UDP port where QUIC's packets go unanswered."""
    udp = swallowing_peer()
    yield udp
    udp.close()


#: A head start for QUIC no loaded test machine can overrun, for tests in which QUIC must
#: win: otherwise TCP may, fairly, when the machine is slow (hyper's default is 0.3 s).
PATIENT = 10.0


def _patient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "HTTP3_HEAD_START", PATIENT)


def _open(server: H3Server, **kwargs: Any) -> HTTPConnection:
    """An :class:`HTTPConnection` to ``server``'s TCP port, trusting the test CA."""
    context = init_context(cert_path=str(server.ca_cert_path))
    return HTTPConnection(
        server.host, server.tcp_port, secure=True, ssl_context=context, timeout=10, **kwargs
    )


def _get(conn: HTTPConnection, path: str) -> tuple[int, bytes]:
    stream_id = conn.request("GET", path)
    response = conn.get_response(stream_id)
    return response.status, response.read()


def _origin(server: H3Server) -> tuple[str, str, int]:
    return ("https", server.host, server.tcp_port)


# -- QUIC first -------------------------------------------------------------------------------


def test_a_server_that_answers_over_udp_is_reached_over_http3(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patient(monkeypatch)
    with _open(caddy_h3, http3=True) as conn:
        status, body = _get(conn, f"/{SMALL_FILE}")
        assert conn.version is HTTPVersion.http30
        assert (status, body) == (200, SMALL_BODY)
        assert isinstance(conn.request("GET", f"/{SMALL_FILE}"), int)
        assert conn.get_response().read() == SMALL_BODY
    assert not ALT_SVC_CACHE.broken(_origin(caddy_h3), caddy_h3.port)


def test_without_http3_quic_is_never_tried(caddy_h3: CaddyServer, swallowing_udp: UDPPeer) -> None:
    ALT_SVC_CACHE.remember(_origin(caddy_h3), [f'h3=":{swallowing_udp.port}"'])
    with _open(caddy_h3) as conn:
        assert _get(conn, f"/{SMALL_FILE}") == (200, SMALL_BODY)
        assert conn.version is HTTPVersion.http20
    assert swallowing_udp.received == 0


def test_connect_settles_the_protocol_too(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patient(monkeypatch)
    with _open(caddy_h3, http3=True) as conn:
        conn.connect()
        assert conn.version is HTTPVersion.http30
        assert conn.get_response(conn.request("GET", f"/{SMALL_FILE}")).read() == SMALL_BODY


# -- Alt-Svc --------------------------------------------------------------------------------


def test_alt_svc_from_a_tcp_response_sends_the_next_connection_to_http3(
    hypercorn_h3: H3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = _origin(hypercorn_h3)
    # First contact: nothing is known, and nothing answers QUIC on the TCP port's number, so
    # TCP wins the race; its response advertises the real UDP port.
    with _open(hypercorn_h3, http3=True) as first:
        status, _ = _get(first, "/get")
        assert status == 200
        assert first.version in (HTTPVersion.http20, HTTPVersion.http11)
    assert ALT_SVC_CACHE.lookup(origin) == hypercorn_h3.port
    assert ALT_SVC_CACHE.broken(origin, hypercorn_h3.tcp_port)
    _patient(monkeypatch)
    with _open(hypercorn_h3, http3=True) as second:
        stream_id = second.request("GET", "/get")
        response = second.get_response(stream_id)
        assert response.status == 200
        assert second.version is HTTPVersion.http30
        # The request names the origin, not the UDP port it went to.
        echoed = json.loads(response.read())
        assert echoed["headers"]["Host"] == f"{hypercorn_h3.host}:{hypercorn_h3.tcp_port}"


def test_alt_svc_clear_forgets_the_origin(caddy_h3: CaddyServer) -> None:
    origin = _origin(caddy_h3)
    ALT_SVC_CACHE.remember(origin, [f'h3=":{caddy_h3.port}"'])
    ALT_SVC_CACHE.remember(origin, ["clear"])
    assert ALT_SVC_CACHE.lookup(origin) is None


# -- falling back to TCP ----------------------------------------------------------------------


def test_dropped_udp_falls_back_to_tcp_after_the_head_start(
    caddy_h3: CaddyServer, swallowing_udp: UDPPeer
) -> None:
    origin = _origin(caddy_h3)
    ALT_SVC_CACHE.remember(origin, [f'h3=":{swallowing_udp.port}"'])
    with (
        quickly(5.0),
        _open(caddy_h3, http3=True) as conn,
    ):
        assert _get(conn, f"/{SMALL_FILE}") == (200, SMALL_BODY)
        assert conn.version is HTTPVersion.http20
    assert swallowing_udp.received > 0  # QUIC was tried first
    assert ALT_SVC_CACHE.broken(origin, swallowing_udp.port)
    # Caddy's own responses advertise its real UDP port, which replaces the dropped one.
    assert ALT_SVC_CACHE.lookup(origin) == caddy_h3.port


def test_after_a_failure_the_origin_goes_straight_to_tcp(caddy_h3: CaddyServer) -> None:
    origin = _origin(caddy_h3)
    ALT_SVC_CACHE.mark_broken(origin, caddy_h3.port)
    with _open(caddy_h3, http3=True) as conn:
        assert _get(conn, f"/{SMALL_FILE}") == (200, SMALL_BODY)
        assert conn.version is HTTPVersion.http20


def test_a_udp_port_nobody_listens_on_falls_back_to_tcp(hypercorn_h3: H3Server) -> None:
    with (
        quickly(5.0),
        _open(hypercorn_h3, http3=True) as conn,
    ):
        status, _ = _get(conn, "/get")
        assert status == 200
        assert conn.version is not HTTPVersion.http30
    assert ALT_SVC_CACHE.broken(_origin(hypercorn_h3), hypercorn_h3.tcp_port)


def test_when_neither_answers_the_error_is_tcps() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens on TCP or UDP there now
    with pytest.raises(HyperError) as plain:
        HTTPConnection("127.0.0.1", port, secure=True, timeout=1).connect()
    # QUIC waits out its connect timeout: TCP's refusal does not mean UDP is refused too.
    with quickly(3.0), pytest.raises(HyperError) as raced:
        HTTPConnection("127.0.0.1", port, secure=True, http3=True, timeout=1).connect()
    assert type(raced.value) is type(plain.value)


def test_through_a_proxy_quic_is_not_tried(
    caddy_h3: CaddyServer, swallowing_udp: UDPPeer, tinyproxy: TinyproxyServer
) -> None:
    ALT_SVC_CACHE.remember(_origin(caddy_h3), [f'h3=":{swallowing_udp.port}"'])
    with _open(caddy_h3, proxy_host=tinyproxy.host, proxy_port=tinyproxy.port, http3=True) as conn:
        assert _get(conn, f"/{SMALL_FILE}") == (200, SMALL_BODY)
        assert conn.version is not HTTPVersion.http30
    assert swallowing_udp.received == 0


def test_quic_settings_without_http3_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="http3=True"):
        HTTPConnection("example.org", 443, idle_timeout=5)
    with pytest.raises(InvalidRequest, match="idle_timeout"):
        HTTPConnection("example.org", 443, http3=True, idle_timeout=-1)


# -- the requests adapter ---------------------------------------------------------------------


def test_the_requests_adapter_reaches_http3(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patient(monkeypatch)
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter(http3=True))
        url = f"https://{caddy_h3.host}:{caddy_h3.tcp_port}/{SMALL_FILE}"
        for _ in range(2):  # the second request reuses the pooled HTTP/3 connection
            response = session.get(url, verify=str(caddy_h3.ca_cert_path), timeout=10)
            assert (response.status_code, response.content) == (200, SMALL_BODY)
            assert response.raw.version == 30


def test_the_requests_adapter_follows_alt_svc(
    hypercorn_h3: H3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    url = f"https://{hypercorn_h3.host}:{hypercorn_h3.tcp_port}/get"
    versions = []
    for attempt in range(2):  # a new session: a new pool, a new connection
        if attempt:
            _patient(monkeypatch)
        with requests.Session() as session:
            session.mount("https://", HTTP20Adapter(http3=True))
            response = session.get(url, verify=str(hypercorn_h3.ca_cert_path), timeout=10)
            assert response.status_code == 200
            assert response.json()["url"] == url
            versions.append(response.raw.version)
    assert versions[0] in (11, 20)
    assert versions[1] == 30


def test_the_requests_adapter_without_http3_stays_on_tcp(caddy_h3: CaddyServer) -> None:
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter())
        url = f"https://{caddy_h3.host}:{caddy_h3.tcp_port}/{SMALL_FILE}"
        response = session.get(url, verify=str(caddy_h3.ca_cert_path), timeout=10)
        assert response.raw.version == 20
