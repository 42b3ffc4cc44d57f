"""HTTP11Connection, HTTP20Connection and HTTPConnection through a real HTTP proxy (tinyproxy).

* TLS origins go through a ``CONNECT`` tunnel; tinyproxy logs each request line before it
  answers, so :meth:`TinyproxyServer.requests_since` shows exactly what went through it.
* Plain ``http`` goes to the proxy in absolute form over HTTP/1.1 (HTTP11Connection and
  HTTPConnection, which then never asks for an h2c upgrade); HTTP20Connection (h2c with
  prior knowledge) tunnels with ``CONNECT`` instead.
* The proxy's refusals: 403 (filtering proxy), 407 (no credentials), 401 (wrong credentials:
  a tinyproxy quirk), 500 (origin unreachable). Refused tunnels raise :class:`ProxyError`;
  refused plain requests are ordinary responses.

tinyproxy closes the client connection after every plain (absolute-form) response without
saying ``Connection: close``; tests that send several plain requests through it wait (bounded)
for that end of stream before the next request, so that hyper's reconnect is deterministic
rather than a race with the proxy's close (see :func:`read_and_wait_for_proxy_close`).
"""

from __future__ import annotations

import hashlib
import re
import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.events
import pytest

from hyper import HTTP11Connection, HTTP11Response, HTTP20Connection, HTTPConnection
from hyper.common.exceptions import ProxyError, SocketError
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.certs import TLSMaterial
from tests.support.http11 import PeerClosed, Reply, http11_responder, reader_for, send_raw
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer
from tests.support.processes import free_port
from tests.support.scripted import ServerConnection, simple_responder
from tests.support.tinyproxy import (
    AUTH_REJECTED_STATUS,
    AUTH_REQUIRED_STATUS,
    REFUSED_REASON,
    REFUSED_STATUS,
    UNREACHABLE_STATUS,
    TinyproxyServer,
)

Connection = HTTP11Connection | HTTP20Connection | HTTPConnection
ConnectionClass = type[HTTP11Connection] | type[HTTP20Connection] | type[HTTPConnection]
WRONG_CREDENTIALS = "Basic d3Jvbmc6d3Jvbmc="  # wrong:wrong

# -- helpers -----------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_file(server: NghttpdServer | NginxServer, name: str, body: bytes) -> None:
    assert len(body) == server.sizes[name], name
    assert sha256(body) == server.files[name], name


def via(
    cls: ConnectionClass,
    proxy: TinyproxyServer,
    host: str,
    port: int,
    *,
    secure: bool,
    ca: Any = None,
    **kwargs: Any,
) -> Any:
    """A ``cls`` connection to ``host:port`` through ``proxy``."""
    if secure:
        kwargs["ssl_context"] = init_context(cert_path=str(ca))
    return cls(
        host,
        port,
        secure=secure,
        proxy_host=proxy.host,
        proxy_port=proxy.port,
        timeout=5,
        **kwargs,
    )


def via_tls(cls: ConnectionClass, proxy: TinyproxyServer, server: Any, **kwargs: Any) -> Any:
    return via(cls, proxy, server.host, server.port, secure=True, ca=server.ca_cert_path, **kwargs)


def fetch(conn: Connection, path: str, **kwargs: Any) -> Any:
    """GET ``path`` and return the response (HTTP11Connection.get_response takes no id)."""
    stream_id = conn.request("GET", path, **kwargs)
    if isinstance(conn, HTTP11Connection):
        assert stream_id is None
        return conn.get_response()
    return conn.get_response(stream_id)


def connect_line(authority: str) -> str:
    return f"CONNECT {authority} HTTP/1.1"


def read_and_wait_for_proxy_close(response: Any) -> bytes:
    """Read a plain response that came through tinyproxy, then wait (bounded) until the
    connection shows the end of stream tinyproxy sends after every plain response."""
    fileno = response.fileno()  # taken first: a finished body hands the socket back
    body: bytes = response.read()
    readable, _, _ = select.select([fileno], [], [], 5.0)
    assert readable, "tinyproxy kept the client connection open"
    return body


@pytest.fixture
def quick() -> Iterator[Callable[[], None]]:
    """Fails the test if the block it guards took longer than a second."""
    start = time.monotonic()

    def check() -> None:
        assert time.monotonic() - start < 1.0, "took longer than a second"

    yield check


ALL_CLASSES = [
    pytest.param(HTTP11Connection, id="http11"),
    pytest.param(HTTP20Connection, id="http20"),
    pytest.param(HTTPConnection, id="abstract"),
]


# -- HTTPS origins through CONNECT -------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param("nghttpd_tls", marks=pytest.mark.nghttpd),
        pytest.param("nginx_h2_tls", marks=pytest.mark.nginx),
    ],
)
def test_http20_tunnel_to_h2_origin(
    request: pytest.FixtureRequest, fixture: str, tinyproxy: TinyproxyServer
) -> None:
    server: NghttpdServer | NginxServer = request.getfixturevalue(fixture)
    since = tinyproxy.log_position()
    with via_tls(HTTP20Connection, tinyproxy, server) as conn:
        names = ["index.html", "1k.bin", "64k.bin"]
        stream_ids = [conn.request("GET", f"/{name}") for name in names]
        assert stream_ids == [1, 3, 5]
        for name, stream_id in reversed(list(zip(names, stream_ids, strict=True))):
            response = conn.get_response(stream_id)
            assert response.version is HTTPVersion.http20
            assert response.status == 200
            check_file(server, name, response.read())
    # One tunnel carried all three streams.
    assert tinyproxy.requests_since(since) == [connect_line(f"127.0.0.1:{server.port}")]


@pytest.mark.nginx
def test_http11_tunnel_to_https_origin(
    tinyproxy: TinyproxyServer, nginx_h11_tls: NginxServer
) -> None:
    since = tinyproxy.log_position()
    with via_tls(HTTP11Connection, tinyproxy, nginx_h11_tls) as conn:
        for name in ["index.html", "1k.bin", "64k.bin"]:
            response = fetch(conn, f"/{name}")
            assert response.version is HTTPVersion.http11
            assert response.status == 200
            check_file(nginx_h11_tls, name, response.read())
    # Keep-alive inside the tunnel: one CONNECT for the three requests.
    assert tinyproxy.requests_since(since) == [connect_line(nginx_h11_tls.authority)]


@pytest.mark.nginx
def test_abstract_tunnel_negotiates_h2(
    tinyproxy: TinyproxyServer, nginx_h2_tls: NginxServer
) -> None:
    since = tinyproxy.log_position()
    with via_tls(HTTPConnection, tinyproxy, nginx_h2_tls) as conn:
        first = conn.request("GET", "/1k.bin")
        second = conn.request("GET", "/index.html")
        assert (first, second) == (1, 3)
        assert conn.version is HTTPVersion.http20
        check_file(nginx_h2_tls, "index.html", conn.get_response(second).read())
        response = conn.get_response(first)
        assert response.version is HTTPVersion.http20
        check_file(nginx_h2_tls, "1k.bin", response.read())
    assert tinyproxy.requests_since(since) == [connect_line(nginx_h2_tls.authority)]


@pytest.mark.nginx
def test_abstract_tunnel_to_http11_origin(
    tinyproxy: TinyproxyServer, nginx_h11_tls: NginxServer
) -> None:
    since = tinyproxy.log_position()
    with via_tls(HTTPConnection, tinyproxy, nginx_h11_tls) as conn:
        for name in ["1k.bin", "index.html"]:
            assert conn.request("GET", f"/{name}") is None
            response = conn.get_response()
            assert response.version is HTTPVersion.http11
            check_file(nginx_h11_tls, name, response.read())
        assert conn.version is HTTPVersion.http11
    assert tinyproxy.requests_since(since) == [connect_line(nginx_h11_tls.authority)]


# -- plain http origins ------------------------------------------------------------------------


@pytest.mark.nginx
def test_http11_plain_uses_absolute_form(
    tinyproxy: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    since = tinyproxy.log_position()
    names = ["1k.bin", "index.html", "64k.bin"]
    with via(
        HTTP11Connection, tinyproxy, nginx_plain.host, nginx_plain.port, secure=False
    ) as conn:
        for name in names:
            response = fetch(conn, f"/{name}")
            assert isinstance(response, HTTP11Response)
            assert response.status == 200
            assert "tinyproxy" in response.headers[b"via"][0].decode()
            check_file(nginx_plain, name, read_and_wait_for_proxy_close(response))
    assert tinyproxy.requests_since(since) == [
        f"GET http://{nginx_plain.authority}/{name} HTTP/1.1" for name in names
    ]
    # tinyproxy does not keep client connections alive: hyper reconnected for each request.
    assert tinyproxy.log_since(since).count("Connect (file descriptor") == len(names)


@pytest.mark.nginx
def test_abstract_plain_through_proxy_stays_http11(
    tinyproxy: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    since = tinyproxy.log_position()
    with via(HTTPConnection, tinyproxy, nginx_plain.host, nginx_plain.port, secure=False) as conn:
        for name in ["index.html", "1k.bin"]:
            assert conn.request("GET", f"/{name}") is None
            response = conn.get_response()
            assert response.version is HTTPVersion.http11
            assert conn.version is HTTPVersion.http11
            check_file(nginx_plain, name, read_and_wait_for_proxy_close(response))
    assert tinyproxy.requests_since(since) == [
        f"GET http://{nginx_plain.authority}/index.html HTTP/1.1",
        f"GET http://{nginx_plain.authority}/1k.bin HTTP/1.1",
    ]


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_plain_request_to_proxy_is_clean_absolute_form(
    scripted_raw_server: Any, cls: ConnectionClass
) -> None:
    # A scripted server standing in for the proxy records exactly what hyper sends it.
    recorder = http11_responder({}, default=Reply(200, body=b"from the proxy"))
    credentials = {"Proxy-Authorization": "Basic c2VjcmV0"}
    with scripted_raw_server(recorder) as proxy:
        conn = cls(
            "origin.example",
            8081,
            secure=False,
            proxy_host=f"127.0.0.1:{proxy.port}",
            proxy_headers=credentials,
            timeout=5,
        )
        with conn:
            for path in ["/a?x=1", "/b"]:
                assert conn.request("GET", path) is None
                response = conn.get_response()
                assert response.version is HTTPVersion.http11
                assert response.read() == b"from the proxy"
    first, second = recorder.requests
    assert [r.target for r in recorder.requests] == [
        "http://origin.example:8081/a?x=1",
        "http://origin.example:8081/b",
    ]
    for recorded in (first, second):
        assert recorded.header("host") == b"origin.example:8081"
        # The credentials go with every request, and no h2c upgrade is asked for.
        assert recorded.header("proxy-authorization") == b"Basic c2VjcmV0"
        assert recorded.header("upgrade") is None
        assert recorded.header("http2-settings") is None
    assert first.connection_id == second.connection_id  # keep-alive with the proxy


@pytest.mark.nghttpd
def test_http20_plain_h2c_tunnels_with_connect(
    tinyproxy: TinyproxyServer, nghttpd_h2c: NghttpdServer
) -> None:
    since = tinyproxy.log_position()
    # Several tunnels: whether nghttpd's SETTINGS arrive in the same read as tinyproxy's 200
    # is timing (almost always so); every one of them must work.
    for _ in range(5):
        conn = via(HTTP20Connection, tinyproxy, nghttpd_h2c.host, nghttpd_h2c.port, secure=False)
        with conn:
            first = conn.request("GET", "/64k.bin")
            second = conn.request("GET", "/1k.bin")
            assert (first, second) == (1, 3)
            check_file(nghttpd_h2c, "1k.bin", conn.get_response(second).read())
            response = conn.get_response(first)
            assert response.version is HTTPVersion.http20
            check_file(nghttpd_h2c, "64k.bin", response.read())
    assert tinyproxy.requests_since(since) == [connect_line(nghttpd_h2c.authority)] * 5


def _tunnel_to_a_server_that_speaks_first(recorded: list[Any]) -> Any:
    """A scripted proxy + h2c origin in one: it answers CONNECT with 200 and the origin's
    SETTINGS in a single write (what tinyproxy relaying nghttpd usually amounts to), then
    serves HTTP/2 on the tunnel."""

    def handler(sock: Any) -> None:
        recorded.append(reader_for(sock).read_request())
        ctx = ServerConnection(sock)
        ctx.conn.initiate_connection()
        tunnel_ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
        send_raw(sock, tunnel_ok + ctx.conn.data_to_send())
        try:
            stream_id = ctx.wait_for_request().stream_id
            ctx.respond(stream_id, 200, [(b"content-length", b"2")], b"ok")
            ctx.wait_for(h2.events.ConnectionTerminated)
        except (AssertionError, PeerClosed):
            return  # the client gave up on the tunnel, or closed without GOAWAY

    return handler


def test_tunnel_keeps_bytes_the_origin_sent_first(scripted_raw_server: Any) -> None:
    recorded: list[Any] = []
    with scripted_raw_server(_tunnel_to_a_server_that_speaks_first(recorded)) as proxy:
        conn = HTTP20Connection(
            "origin.example", 8080, secure=False, proxy_host=proxy.authority, timeout=5
        )
        with conn:
            response = fetch(conn, "/")
            assert response.read() == b"ok"
    (connect,) = recorded
    assert (connect.method, connect.target) == ("CONNECT", "origin.example:8080")


# -- proxy_host / proxy_port -------------------------------------------------------------------


@pytest.mark.nginx
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_proxy_host_with_port_string(
    cls: ConnectionClass,
    tinyproxy: TinyproxyServer,
    nginx_h2_tls: NginxServer,
    nginx_h11_tls: NginxServer,
) -> None:
    server = nginx_h2_tls if cls is HTTP20Connection else nginx_h11_tls
    since = tinyproxy.log_position()
    conn = cls(
        server.host,
        server.port,
        secure=True,
        ssl_context=init_context(cert_path=str(server.ca_cert_path)),
        proxy_host=tinyproxy.authority,
        timeout=5,
    )
    with conn:
        assert (conn.proxy_host, conn.proxy_port) == (tinyproxy.host, tinyproxy.port)
        check_file(server, "1k.bin", fetch(conn, "/1k.bin").read())
    assert tinyproxy.requests_since(since) == [connect_line(server.authority)]


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_proxy_port_defaults_and_overrides(cls: ConnectionClass) -> None:
    assert cls("example.com", proxy_host="proxy.example").proxy_port == 8080
    conn = cls("example.com", proxy_host="proxy.example:3128")
    assert (conn.proxy_host, conn.proxy_port) == ("proxy.example", 3128)
    conn = cls("example.com", proxy_host="proxy.example", proxy_port=3129)
    assert (conn.proxy_host, conn.proxy_port) == ("proxy.example", 3129)
    conn = cls("example.com")
    assert (conn.proxy_host, conn.proxy_port) == (None, None)


# -- Proxy-Authorization -----------------------------------------------------------------------


def _auth_server(cls: ConnectionClass, request: pytest.FixtureRequest) -> NginxServer:
    name = "nginx_h2_tls" if cls is HTTP20Connection else "nginx_h11_tls"
    server: NginxServer = request.getfixturevalue(name)
    return server


@pytest.mark.nginx
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_connect_with_proxy_authorization(
    cls: ConnectionClass, request: pytest.FixtureRequest, tinyproxy_auth: TinyproxyServer
) -> None:
    server = _auth_server(cls, request)
    assert tinyproxy_auth.proxy_authorization is not None
    since = tinyproxy_auth.log_position()
    headers = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization}
    with via_tls(cls, tinyproxy_auth, server, proxy_headers=headers) as conn:
        check_file(server, "1k.bin", fetch(conn, "/1k.bin").read())
        check_file(server, "index.html", fetch(conn, "/index.html").read())
    assert tinyproxy_auth.requests_since(since) == [connect_line(server.authority)]


@pytest.mark.nginx
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_connect_without_credentials_raises_407(
    cls: ConnectionClass, request: pytest.FixtureRequest, tinyproxy_auth: TinyproxyServer
) -> None:
    server = _auth_server(cls, request)
    with via_tls(cls, tinyproxy_auth, server) as conn:
        with pytest.raises(ProxyError) as info:
            conn.request("GET", "/1k.bin")
        assert info.value.status == AUTH_REQUIRED_STATUS
        assert info.value.reason == "Proxy Authentication Required"
        assert "407" in str(info.value)


@pytest.mark.nginx
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_connect_with_wrong_credentials_raises_401(
    cls: ConnectionClass, request: pytest.FixtureRequest, tinyproxy_auth: TinyproxyServer
) -> None:
    server = _auth_server(cls, request)
    headers = {"Proxy-Authorization": WRONG_CREDENTIALS}
    with via_tls(cls, tinyproxy_auth, server, proxy_headers=headers) as conn:
        with pytest.raises(ProxyError) as info:
            conn.request("GET", "/1k.bin")
        # tinyproxy answers wrong credentials with 401, not 407.
        assert info.value.status == AUTH_REJECTED_STATUS
        assert info.value.reason == "Unauthorized"


@pytest.mark.nginx
@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_plain_with_proxy_authorization(
    cls: ConnectionClass, tinyproxy_auth: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    assert tinyproxy_auth.proxy_authorization is not None
    since = tinyproxy_auth.log_position()
    headers = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization}
    conn = via(
        cls,
        tinyproxy_auth,
        nginx_plain.host,
        nginx_plain.port,
        secure=False,
        proxy_headers=headers,
    )
    with conn:
        # tinyproxy closes after each response: each request is on a new connection, so
        # each one must carry the credentials itself.
        for name in ["1k.bin", "index.html"]:
            response = fetch(conn, f"/{name}")
            assert response.status == 200
            body = read_and_wait_for_proxy_close(response)
            check_file(nginx_plain, name, body)
    assert tinyproxy_auth.requests_since(since) == [
        f"GET http://{nginx_plain.authority}/1k.bin HTTP/1.1",
        f"GET http://{nginx_plain.authority}/index.html HTTP/1.1",
    ]


@pytest.mark.nginx
@pytest.mark.parametrize(
    ("credentials", "status", "reason"),
    [
        (None, AUTH_REQUIRED_STATUS, "Proxy Authentication Required"),
        (WRONG_CREDENTIALS, AUTH_REJECTED_STATUS, "Unauthorized"),
    ],
    ids=["missing", "wrong"],
)
@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_plain_refused_credentials_is_a_response(
    cls: ConnectionClass,
    credentials: str | None,
    status: int,
    reason: str,
    tinyproxy_auth: TinyproxyServer,
    nginx_plain: NginxServer,
) -> None:
    headers = None if credentials is None else {"Proxy-Authorization": credentials}
    conn = via(
        cls,
        tinyproxy_auth,
        nginx_plain.host,
        nginx_plain.port,
        secure=False,
        proxy_headers=headers,
    )
    with conn:
        response = fetch(conn, "/1k.bin")
        assert isinstance(response, HTTP11Response)
        assert (response.status, response.reason) == (status, reason)
        if status == AUTH_REQUIRED_STATUS:
            assert response.headers[b"proxy-authenticate"] == [b'Basic realm="Tinyproxy"']
        assert b"<html" in response.read().lower()


# -- refusals and failures ---------------------------------------------------------------------


@pytest.mark.nginx
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_refusing_proxy_connect_raises_403(
    cls: ConnectionClass, request: pytest.FixtureRequest, tinyproxy_refusing: TinyproxyServer
) -> None:
    server = _auth_server(cls, request)
    since = tinyproxy_refusing.log_position()
    with via_tls(cls, tinyproxy_refusing, server) as conn:
        with pytest.raises(ProxyError) as info:
            conn.request("GET", "/1k.bin")
        assert (info.value.status, info.value.reason) == (REFUSED_STATUS, REFUSED_REASON)
    assert tinyproxy_refusing.requests_since(since) == [connect_line(server.authority)]


@pytest.mark.nginx
@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_refusing_proxy_plain_get_is_a_403_response(
    cls: ConnectionClass, tinyproxy_refusing: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    conn = via(cls, tinyproxy_refusing, nginx_plain.host, nginx_plain.port, secure=False)
    with conn:
        response = fetch(conn, "/1k.bin")
        assert (response.status, response.reason) == (REFUSED_STATUS, REFUSED_REASON)
        assert response.version is HTTPVersion.http11
        response.read()


@pytest.mark.parametrize("cls", ALL_CLASSES)
@pytest.mark.parametrize("secure", [True, False], ids=["tls", "plain"])
def test_proxy_not_listening_raises_socket_error_fast(
    cls: ConnectionClass, secure: bool, quick: Callable[[], None], ca_cert_path: Any
) -> None:
    port = free_port()
    kwargs: dict[str, Any] = {}
    if secure:
        kwargs["ssl_context"] = init_context(cert_path=str(ca_cert_path))
    conn = cls(
        "127.0.0.1",
        443 if secure else 80,
        secure=secure,
        proxy_host=f"127.0.0.1:{port}",
        timeout=5,
        **kwargs,
    )
    with conn, pytest.raises(SocketError) as info:
        conn.request("GET", "/")
    assert str(port) in str(info.value)
    quick()


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_connect_to_closed_origin_port_raises_500(
    cls: ConnectionClass, tinyproxy: TinyproxyServer, ca_cert_path: Any, quick: Callable[[], None]
) -> None:
    port = free_port()
    since = tinyproxy.log_position()
    with via(cls, tinyproxy, "127.0.0.1", port, secure=True, ca=ca_cert_path) as conn:
        with pytest.raises(ProxyError) as info:
            conn.request("GET", "/")
        assert (info.value.status, info.value.reason) == (UNREACHABLE_STATUS, "Unable to connect")
    assert tinyproxy.requests_since(since) == [connect_line(f"127.0.0.1:{port}")]
    quick()


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_plain_to_closed_origin_port_is_a_500_response(
    cls: ConnectionClass, tinyproxy: TinyproxyServer
) -> None:
    port = free_port()
    with via(cls, tinyproxy, "127.0.0.1", port, secure=False) as conn:
        response = fetch(conn, "/")
        assert response.status == UNREACHABLE_STATUS
        response.read()


@pytest.mark.nginx
def test_connection_usable_after_refused_tunnel(
    tinyproxy_auth: TinyproxyServer, nginx_h2_tls: NginxServer
) -> None:
    # A refused CONNECT leaves the connection unsettled: with credentials added the next
    # request succeeds.
    assert tinyproxy_auth.proxy_authorization is not None
    with (
        via_tls(HTTPConnection, tinyproxy_auth, nginx_h2_tls) as conn,
        pytest.raises(ProxyError),
    ):
        conn.request("GET", "/1k.bin")
    good = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization}
    with via_tls(HTTPConnection, tinyproxy_auth, nginx_h2_tls, proxy_headers=good) as conn:
        assert conn.request("GET", "/1k.bin") == 1
        check_file(nginx_h2_tls, "1k.bin", conn.get_response(1).read())


# -- credentials stay with the proxy -----------------------------------------------------------


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection], ids=["http11", "abstract"])
def test_proxy_headers_not_sent_through_tunnel_http11(
    cls: ConnectionClass,
    scripted_raw_server: Any,
    tinyproxy_auth: TinyproxyServer,
    tls_material: TLSMaterial,
) -> None:
    assert tinyproxy_auth.proxy_authorization is not None
    origin_handler = http11_responder({"/secret": Reply(200, body=b"origin")})
    headers = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization, "X-Proxy-Only": "1"}
    with scripted_raw_server(origin_handler, tls=True, alpn=["http/1.1"]) as origin:
        since = tinyproxy_auth.log_position()
        conn = via(
            cls,
            tinyproxy_auth,
            "127.0.0.1",
            origin.port,
            secure=True,
            ca=tls_material.ca_cert_path,
            proxy_headers=headers,
        )
        with conn:
            for _ in range(2):
                response = fetch(conn, "/secret", headers={"X-Origin": "yes"})
                assert response.version is HTTPVersion.http11
                assert response.read() == b"origin"
    # Only tunnels to the origin went through the proxy. (Usually one; see
    # test_abstract_connection.py::test_tls13_session_ticket_does_not_cause_a_reconnect for why
    # HTTPConnection sometimes opens a second one to a TLS 1.3 origin.)
    tunnels = tinyproxy_auth.requests_since(since)
    assert tunnels and set(tunnels) == {connect_line(f"127.0.0.1:{origin.port}")}
    assert len(origin_handler.requests) == 2
    for recorded in origin_handler.requests:
        assert recorded.target == "/secret"  # origin form inside the tunnel
        assert recorded.header("x-origin") == b"yes"
        assert recorded.header("proxy-authorization") is None
        assert recorded.header("x-proxy-only") is None
        assert re.search(rb"(?i)proxy-authorization|x-proxy-only", recorded.raw_head) is None


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection], ids=["http20", "abstract"])
def test_proxy_headers_not_sent_through_tunnel_http2(
    cls: ConnectionClass,
    scripted_server: Any,
    tinyproxy_auth: TinyproxyServer,
    tls_material: TLSMaterial,
) -> None:
    assert tinyproxy_auth.proxy_authorization is not None
    responder = simple_responder({"/secret": b"origin"})
    headers = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization, "X-Proxy-Only": "1"}
    with scripted_server(responder, tls=True) as origin:
        conn = via(
            cls,
            tinyproxy_auth,
            "127.0.0.1",
            origin.port,
            secure=True,
            ca=tls_material.ca_cert_path,
            proxy_headers=headers,
        )
        with conn:
            response = fetch(conn, "/secret", headers={"X-Origin": "yes"})
            assert response.version is HTTPVersion.http20
            assert response.read() == b"origin"
    (recorded,) = responder.requests
    names = [name.lower() for name, _ in recorded.headers]
    assert recorded.header(b"x-origin") == b"yes"
    assert b"proxy-authorization" not in names
    assert b"x-proxy-only" not in names
