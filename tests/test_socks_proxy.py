"""HTTP11Connection, HTTP20Connection and HTTPConnection through SOCKS proxies.

``proxy_host`` names a SOCKS proxy by URL (``socks5h://``, ``socks5://``, ``socks4a://``,
``socks4://``). A SOCKS proxy is a tunnel for everything: TLS runs end to end with the
origin's name (SNI, certificate), and plain http behaves as on a direct connection
(origin-form targets, ``h2c`` upgrade or prior knowledge) -- unlike an HTTP forward proxy.

* Dante (a real SOCKS4/SOCKS5 proxy, :mod:`tests.support.dante`) carries HTTPS and plain http
  to nginx, nghttpd and hypercorn, and refuses a blocked port; its log shows each tunnel.
* A scripted peer (:mod:`tests.support.socks_peer`) records exactly what hyper sent: a host
  name (``socks5h``, ``socks4a``: the proxy resolves it) or an address (``socks5``,
  ``socks4``: resolved locally), SOCKS5 credentials and the SOCKS4 user id, which Dante
  cannot show (nor speak SOCKS4a, nor check credentials without system accounts).
* Proxy URLs are read when the connection is made: bad ones raise InvalidRequest at once.
* The proxy is reached with Happy Eyeballs, as every TCP connection: a proxy name resolving
  to a black-holed ``::1`` and a live ``127.0.0.1`` (the connection's ``resolver``) costs
  the delay, not the connect timeout.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.exceptions import (
    CertificateError,
    ConnectTimeout,
    InvalidRequest,
    ProxyError,
    SocketError,
)
from hyper.common.eyeballs import ConnectPolicy
from hyper.common.sockets import open_connection
from hyper.common.socks import SocksProxy
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.addresses import (
    V4,
    StaticResolver,
    black_hole,
    ipv6_loopback_works,
    sockaddr,
)
from tests.support.certs import CertPaths
from tests.support.dante import DanteServer
from tests.support.helpers import check_file, fetch, quickly
from tests.support.http2bin import Http2binServer
from tests.support.http11 import http11_responder
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer
from tests.support.socks_peer import (
    SOCKS4_REJECTED,
    SOCKS5_NOT_ALLOWED,
    SOCKS5_REFUSED,
    SocksPeer,
    SocksRequest,
)

ConnectionClass = type[HTTP11Connection] | type[HTTP20Connection] | type[HTTPConnection]

ALL_CLASSES = [
    pytest.param(HTTP11Connection, id="http11"),
    pytest.param(HTTP20Connection, id="http20"),
    pytest.param(HTTPConnection, id="abstract"),
]
#: SOCKS reply code "host unreachable" (RFC 1928 section 6).
SOCKS5_HOST_UNREACHABLE = 0x04

# -- helpers -----------------------------------------------------------------------------------


def through(
    cls: ConnectionClass, proxy_url: str, host: str, port: int, *, ca: Any = None, **kwargs: Any
) -> Any:
    """A ``cls`` connection to ``host:port`` through the proxy at ``proxy_url``: TLS trusting
    ``ca`` when given, else plaintext."""
    if ca is not None:
        kwargs["ssl_context"] = init_context(cert_path=str(ca))
    kwargs.setdefault("timeout", 5)
    return cls(host, port, secure=ca is not None, proxy_host=proxy_url, **kwargs)


def assert_one_connection_from_dante(
    dante: DanteServer, server: NginxServer, tag: str, count: int, since: tuple[int, int]
) -> None:
    """Assert that nginx got the ``count`` requests whose query is ``?<tag>=<i>`` on one
    connection, whose client end was Dante's connection to it. ``since`` holds the positions
    of Dante's log and nginx's access log before the requests."""
    dante_since, access_since = since
    # nginx logs a request once its response went out: wait (bounded) for the last one.
    server.access_log.wait_for(rf"\?{tag}={count - 1} ", since=access_since)
    pattern = rf'127\.0\.0\.1:(\d+) conn=(\d+) req=\d+ "GET /\S*\?{tag}=(\d+) '
    found = re.findall(pattern, server.access_log.read(access_since))
    assert [int(i) for _, _, i in found] == list(range(count)), found
    assert len({(port, conn) for port, conn, _ in found}) == 1, found
    dante.wait_for_tunnel(server.port, since=dante_since, from_port=int(found[0][0]))


def log_positions(dante: DanteServer, server: NginxServer) -> tuple[int, int]:
    """Where Dante's log and ``server``'s access log end now."""
    return dante.log.position(), server.access_log.position()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections: bound (so nobody else gets it) but not
    listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


# -- naming a proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "proxy_port", "expected"),
    [
        ("socks5h://127.0.0.1:1081", None, SocksProxy("socks5h", "127.0.0.1", 1081)),
        ("socks5://[::1]", None, SocksProxy("socks5", "::1", 1080)),
        ("SOCKS4A://proxy.example", 1090, SocksProxy("socks4a", "proxy.example", 1090)),
        (
            "socks4://alice@proxy.example/",
            None,
            SocksProxy("socks4", "proxy.example", 1080, "alice"),
        ),
        (
            "socks5h://a%40b:p%3Ass%2F@proxy.example:9",
            None,
            SocksProxy("socks5h", "proxy.example", 9, "a@b", "p:ss/"),
        ),
    ],
)
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_socks_url_names_a_socks_proxy(
    cls: ConnectionClass, url: str, proxy_port: int | None, expected: SocksProxy
) -> None:
    conn = cls("example.com", 443, proxy_host=url, proxy_port=proxy_port)
    assert conn.socks_proxy == expected
    # No HTTP proxy: plain http is sent as to the origin, with no proxy headers.
    assert (conn.proxy_host, conn.proxy_port) == (None, None)


@pytest.mark.parametrize(
    ("proxy_host", "proxy_port", "expected"),
    [
        ("http://proxy.example:3128", None, ("proxy.example", 3128)),
        ("HTTP://proxy.example", None, ("proxy.example", 8080)),
        ("http://[::1]:3128/", None, ("::1", 3128)),
        ("proxy.example:3128", None, ("proxy.example", 3128)),
        ("proxy.example", 3129, ("proxy.example", 3129)),
    ],
)
def test_http_proxy_by_url_or_host(
    proxy_host: str, proxy_port: int | None, expected: tuple[str, int]
) -> None:
    conn = HTTP11Connection("example.com", 80, proxy_host=proxy_host, proxy_port=proxy_port)
    assert (conn.proxy_host, conn.proxy_port) == expected
    assert conn.socks_proxy is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://proxy.example:3128", "unsupported proxy scheme"),
        ("socks6://proxy.example", "unsupported proxy scheme"),
        ("socks5h://proxy.example:1080/path", "host and port only"),
        ("socks5h://proxy.example:1080?x=1", "host and port only"),
        ("socks5h://proxy.example/a@elsewhere:1", "host and port only"),
        ("socks5h://", "must not be empty"),
        ("socks5h://proxy.example:99999", "invalid port"),
        ("socks4://user:hunter2@proxy.example", "SOCKS4 has no passwords"),
        ("socks5://user@proxy.example", "no password"),
        ("socks5://us\u00e9r:hunter2@proxy.example", "ASCII"),
        (f"socks5://{'u' * 256}:hunter2@proxy.example", "1 to 255"),
        ("http://user:hunter2@proxy.example:3128", "Proxy-Authorization"),
    ],
)
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_unusable_proxy_url_raises_invalid_request(
    cls: ConnectionClass, url: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        cls("example.com", 443, proxy_host=url)
    assert "hunter2" not in str(info.value)  # passwords stay out of messages


def test_socks_proxy_takes_no_proxy_headers() -> None:
    with pytest.raises(InvalidRequest, match="takes no proxy_headers"):
        HTTPConnection(
            "example.com",
            443,
            proxy_host="socks5h://127.0.0.1:1080",
            proxy_headers={"Proxy-Authorization": "Basic eDp5"},
        )


def test_socks_proxy_shows_no_password() -> None:
    proxy = HTTP20Connection(
        "example.com", 443, proxy_host="socks5h://user:hunter2@127.0.0.1"
    ).socks_proxy
    assert proxy is not None
    assert proxy.password == "hunter2"
    assert "hunter2" not in repr(proxy)
    assert str(proxy) == "socks5h://127.0.0.1:1080"


def test_socks4_cannot_reach_an_ipv6_origin(closed_port: int) -> None:
    conn = HTTP11Connection("::1", 80, proxy_host=f"socks4://127.0.0.1:{closed_port}")
    with conn, pytest.raises(InvalidRequest, match="cannot reach the IPv6 address"):
        conn.connect()


# -- HTTPS through Dante -----------------------------------------------------------------------


@pytest.mark.nginx
@pytest.mark.parametrize(
    ("cls", "scheme", "fixture", "version"),
    [
        (HTTP20Connection, "socks5h", "nginx_h2_tls", HTTPVersion.http20),
        # socks5 and socks4: hyper resolves "localhost" itself and sends the address.
        (HTTPConnection, "socks5", "nginx_h2_tls", HTTPVersion.http20),
        (HTTP11Connection, "socks4", "nginx_h11_tls", HTTPVersion.http11),
    ],
)
def test_https_through_socks_runs_tls_with_the_origin(
    request: pytest.FixtureRequest,
    dante: DanteServer,
    cls: ConnectionClass,
    scheme: str,
    fixture: str,
    version: HTTPVersion,
) -> None:
    server: NginxServer = request.getfixturevalue(fixture)
    since = log_positions(dante, server)
    tag = f"https-{scheme}"
    # The certificate is checked for "localhost", and ALPN chooses the protocol.
    conn = through(cls, dante.url(scheme), "localhost", server.port, ca=server.ca_cert_path)
    with conn:
        for i, name in enumerate(["index.html", "1k.bin", "64k.bin"]):
            response = fetch(conn, f"/{name}?{tag}={i}")
            assert response.version is version
            assert response.status == 200
            check_file(server, name, response.read())
        assert conn.version is version
    assert_one_connection_from_dante(dante, server, tag, 3, since)


def test_origin_certificate_is_checked_through_socks(
    dante: DanteServer, scripted_raw_server: Any, wrong_host_cert: CertPaths, ca_cert_path: Any
) -> None:
    # The origin presents a certificate for wrong.example: TLS runs with the origin, not the
    # proxy, so hyper checks it against the origin's name and refuses it.
    with scripted_raw_server(lambda sock: None, tls=True, cert=wrong_host_cert) as origin:
        conn = through(HTTP11Connection, dante.url(), "localhost", origin.port, ca=ca_cert_path)
        with conn, pytest.raises(CertificateError):
            conn.connect()


# -- plain http through Dante ------------------------------------------------------------------


@pytest.mark.nginx
def test_http11_plain_through_socks_sends_origin_form(
    dante: DanteServer, nginx_plain: NginxServer
) -> None:
    since = log_positions(dante, nginx_plain)
    with through(HTTP11Connection, dante.url(), "localhost", nginx_plain.port) as conn:
        for i in range(2):
            response = fetch(conn, f"/1k.bin?plain={i}")
            check_file(nginx_plain, "1k.bin", response.read())
    assert_one_connection_from_dante(dante, nginx_plain, "plain", 2, since)
    # Unlike through an HTTP proxy (absolute form, "GET http://..."), the origin gets the
    # request as a direct client sends it.
    assert '"GET /1k.bin?plain=1 HTTP/1.1"' in nginx_plain.access_log.read(since[1])


@pytest.mark.http2bin
def test_abstract_plain_through_socks_upgrades_to_h2c(
    dante: DanteServer, http2bin_plain: Http2binServer
) -> None:
    since = dante.log.position()
    conn = through(HTTPConnection, dante.url("socks5"), "127.0.0.1", http2bin_plain.port)
    with conn:
        response = fetch(conn, "/get?via=socks")
        # An HTTP forward proxy would keep this connection on HTTP/1.1.
        assert response.version is HTTPVersion.http20
        assert conn.version is HTTPVersion.http20
        assert json.loads(response.read())["args"] == {"via": "socks"}
    dante.wait_for_tunnel(http2bin_plain.port, since=since)


@pytest.mark.nghttpd
def test_http20_plain_prior_knowledge_through_socks(
    dante: DanteServer, nghttpd_h2c: NghttpdServer
) -> None:
    since = dante.log.position()
    conn = through(HTTP20Connection, dante.url(), "localhost", nghttpd_h2c.port)
    with conn:
        first = conn.request("GET", "/64k.bin")
        second = conn.request("GET", "/1k.bin")
        check_file(nghttpd_h2c, "1k.bin", conn.get_response(second).read())
        response = conn.get_response(first)
        assert response.version is HTTPVersion.http20
        check_file(nghttpd_h2c, "64k.bin", response.read())
    dante.wait_for_tunnel(nghttpd_h2c.port, since=since)


# -- refusals and failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "status", "message"),
    [
        ("socks5h", SOCKS5_NOT_ALLOWED, "not allowed by ruleset"),
        ("socks4", SOCKS4_REJECTED, "rejected"),
    ],
)
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_proxy_refusing_the_destination_raises_proxy_error(
    dante: DanteServer, cls: ConnectionClass, scheme: str, status: int, message: str
) -> None:
    conn = through(cls, dante.url(scheme), "127.0.0.1", dante.blocked_port)
    with conn, pytest.raises(ProxyError, match=message) as info:
        conn.request("GET", "/")
    assert info.value.status == status
    assert dante.url(scheme) in str(info.value)
    assert f"127.0.0.1:{dante.blocked_port}" in str(info.value)


def test_origin_refusing_the_proxy_raises_proxy_error(
    dante: DanteServer, closed_port: int
) -> None:
    conn = through(HTTP11Connection, dante.url(), "127.0.0.1", closed_port)
    with conn, pytest.raises(ProxyError, match="Connection refused") as info:
        conn.request("GET", "/")
    assert info.value.status == SOCKS5_REFUSED


@pytest.mark.parametrize("cls", ALL_CLASSES)
@pytest.mark.parametrize("secure", [True, False], ids=["tls", "plain"])
def test_proxy_not_listening_raises_socket_error_fast(
    cls: ConnectionClass, secure: bool, closed_port: int, ca_cert_path: Any
) -> None:
    url = f"socks5h://127.0.0.1:{closed_port}"
    conn = through(cls, url, "localhost", 443, ca=ca_cert_path if secure else None)
    with (
        quickly(1.0),
        conn,
        pytest.raises(SocketError, match="cannot connect to SOCKS proxy") as info,
    ):
        conn.request("GET", "/")
    assert url in str(info.value)


def _silent(sock: socket.socket) -> None:
    """A peer that accepts and never answers (until the test ends)."""
    sock.settimeout(10)
    try:
        while sock.recv(1024):
            pass
    except OSError:
        return


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_connect_timeout_bounds_a_silent_proxy(
    cls: ConnectionClass, scripted_raw_server: Any
) -> None:
    with scripted_raw_server(_silent) as peer:
        url = f"socks5h://127.0.0.1:{peer.port}"
        conn = through(cls, url, "localhost", 80, timeout=(0.3, 5))
        start = time.monotonic()
        with conn, pytest.raises(ConnectTimeout, match="did not answer in time"):
            conn.request("GET", "/")
        assert 0.25 < time.monotonic() - start < 3


def _read_greeting(sock: socket.socket) -> None:
    """Read the client's SOCKS5 greeting without credentials: version, one method, none."""
    sock.settimeout(5)
    greeting = b""
    while len(greeting) < 3:
        chunk = sock.recv(3 - len(greeting))
        assert chunk, "the client hung up"
        greeting += chunk
    assert greeting == b"\x05\x01\x00"


def _hangs_up_after_greeting(sock: socket.socket) -> None:
    _read_greeting(sock)


def _answers_http(sock: socket.socket) -> None:
    _read_greeting(sock)
    sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        pytest.param(_hangs_up_after_greeting, "closed the connection", id="hangs-up"),
        pytest.param(_answers_http, "SOCKS version", id="not-socks"),
    ],
)
def test_proxy_breaking_the_protocol_raises_proxy_error(
    scripted_raw_server: Any, handler: Callable[[socket.socket], None], message: str
) -> None:
    with scripted_raw_server(handler) as peer:
        conn = through(HTTP11Connection, f"socks5h://127.0.0.1:{peer.port}", "localhost", 80)
        with conn, pytest.raises(ProxyError, match=message) as info:
            conn.request("GET", "/")
        assert info.value.status is None


def test_socks5_resolves_the_origin_after_the_proxy_accepted_the_client(
    scripted_raw_server: Any,
) -> None:
    """socks5:// resolves the origin's name here, but only once the proxy has accepted the
    client (as curl and python-socks do): a proxy that hangs up after the greeting has seen
    the greeting, and the name was never looked up."""
    looked_up: list[str] = []

    def resolver(host: str, port: int, family: int) -> list[Any]:
        looked_up.append(host)
        raise OSError("no such name")

    greetings: list[bytes] = []

    def hangs_up_after_greeting(sock: socket.socket) -> None:
        sock.settimeout(5)
        greetings.append(sock.recv(3))

    with scripted_raw_server(hangs_up_after_greeting) as peer:
        url = f"socks5://127.0.0.1:{peer.port}"
        conn = through(HTTP11Connection, url, "origin.invalid", 80, resolver=resolver)
        with conn, pytest.raises(ProxyError, match="closed the connection"):
            conn.request("GET", "/")
    assert greetings == [b"\x05\x01\x00"]
    assert looked_up == []


def _accepts_then_hangs_up(sock: socket.socket) -> None:
    _read_greeting(sock)
    sock.sendall(b"\x05\x00")  # no authentication: the connection request comes next
    sock.settimeout(5)
    sock.recv(1024)


def test_socks5_unresolvable_origin_fails_after_the_greeting(scripted_raw_server: Any) -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int, family: int) -> list[Any]:
        looked_up.append(host)
        raise OSError("no such name")

    with scripted_raw_server(_accepts_then_hangs_up) as peer:
        url = f"socks5://127.0.0.1:{peer.port}"
        conn = through(HTTP11Connection, url, "origin.invalid", 80, resolver=resolver)
        with conn, pytest.raises(SocketError, match="resolves names locally"):
            conn.request("GET", "/")
    assert looked_up == ["origin.invalid"]


# -- what goes to the proxy (scripted peer) ----------------------------------------------------


@pytest.mark.nginx
@pytest.mark.parametrize(
    ("scheme", "sent"),
    [
        ("socks5h", SocksRequest(5, "localhost", 0, by_name=True)),
        ("socks5", SocksRequest(5, "127.0.0.1", 0, by_name=False)),
        ("socks4a", SocksRequest(4, "localhost", 0, by_name=True)),
        ("socks4", SocksRequest(4, "127.0.0.1", 0, by_name=False)),
    ],
)
def test_who_resolves_the_origin_name(
    scripted_raw_server: Any, nginx_h2_tls: NginxServer, scheme: str, sent: SocksRequest
) -> None:
    peer = SocksPeer()
    server = nginx_h2_tls
    with scripted_raw_server(peer) as proxy:
        url = f"{scheme}://127.0.0.1:{proxy.port}"
        conn = through(HTTPConnection, url, "localhost", server.port, ca=server.ca_cert_path)
        with conn:
            response = fetch(conn, "/index.html")
            assert response.version is HTTPVersion.http20  # ALPN with the origin
            check_file(server, "index.html", response.read())
    assert peer.requests == [
        SocksRequest(sent.version, sent.host, server.port, by_name=sent.by_name)
    ]


def test_socks5h_leaves_an_unknown_name_to_the_proxy(scripted_raw_server: Any) -> None:
    # hyper does not try to resolve the name (which would fail here): the proxy says it
    # cannot reach the host.
    peer = SocksPeer(refuse=SOCKS5_HOST_UNREACHABLE)
    with scripted_raw_server(peer) as proxy:
        url = f"socks5h://127.0.0.1:{proxy.port}"
        conn = through(HTTP11Connection, url, "nowhere.invalid", 80)
        with conn, pytest.raises(ProxyError, match="Host unreachable") as info:
            conn.request("GET", "/")
    assert info.value.status == SOCKS5_HOST_UNREACHABLE
    assert peer.requests == [SocksRequest(5, "nowhere.invalid", 80, by_name=True)]


@pytest.mark.nginx
def test_socks5_credentials_from_the_url(
    scripted_raw_server: Any, nginx_plain: NginxServer
) -> None:
    peer = SocksPeer(credentials=("hyper user", "p@ss:w/rd"))
    with scripted_raw_server(peer) as proxy:
        url = f"socks5h://hyper%20user:p%40ss%3Aw%2Frd@127.0.0.1:{proxy.port}"
        with through(HTTP11Connection, url, "localhost", nginx_plain.port) as conn:
            check_file(nginx_plain, "1k.bin", fetch(conn, "/1k.bin").read())
    (request,) = peer.requests
    assert (request.username, request.password) == ("hyper user", "p@ss:w/rd")


@pytest.mark.parametrize(
    ("userinfo", "message"),
    [
        ("hyper:wrong@", "authentication failure"),
        ("", "accepted no authentication method"),
    ],
    ids=["wrong-credentials", "no-credentials"],
)
def test_socks5_authentication_refused_raises_proxy_error(
    scripted_raw_server: Any, userinfo: str, message: str
) -> None:
    peer = SocksPeer(credentials=("hyper", "right"))
    with scripted_raw_server(peer) as proxy:
        url = f"socks5h://{userinfo}127.0.0.1:{proxy.port}"
        conn = through(HTTP20Connection, url, "localhost", 80)
        with conn, pytest.raises(ProxyError, match=message) as info:
            conn.request("GET", "/")
    assert "wrong" not in str(info.value)
    assert peer.requests == []  # refused before any CONNECT


@pytest.mark.nginx
def test_socks4_user_id_from_the_url(scripted_raw_server: Any, nginx_plain: NginxServer) -> None:
    peer = SocksPeer()
    with scripted_raw_server(peer) as proxy:
        url = f"socks4a://alice@127.0.0.1:{proxy.port}"
        with through(HTTP11Connection, url, "localhost", nginx_plain.port) as conn:
            check_file(nginx_plain, "1k.bin", fetch(conn, "/1k.bin").read())
    assert peer.requests == [
        SocksRequest(4, "localhost", nginx_plain.port, by_name=True, username="alice")
    ]


# -- reaching the proxy: Happy Eyeballs -------------------------------------------------------

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here")


@pytest.fixture
def origin(scripted_raw_server: Any) -> Iterator[Any]:
    """A plain HTTP/1.1 server on 127.0.0.1 answering ``ok``."""
    with scripted_raw_server(http11_responder({"/": b"ok"})) as server:
        yield server


@needs_ipv6
@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection])
def test_the_proxys_addresses_are_raced(
    scripted_raw_server: Any, origin: Any, cls: ConnectionClass
) -> None:
    peer = SocksPeer()
    with scripted_raw_server(peer) as proxy, black_hole("::1") as hole:
        resolver = StaticResolver("proxy.test", [hole, sockaddr("127.0.0.1", proxy.port)])
        conn = cls(
            "127.0.0.1",
            origin.port,
            proxy_host=f"socks5h://proxy.test:{proxy.port}",
            resolver=resolver,
            happy_eyeballs_delay=0.1,
            # One address after the other, the black hole would take all of it.
            timeout=(2, 5),
        )
        started = time.monotonic()
        with conn:
            assert fetch(conn, "/").read() == b"ok"
        elapsed = time.monotonic() - started
    assert resolver.calls == [("proxy.test", proxy.port, socket.AF_UNSPEC)]
    assert peer.requests == [SocksRequest(5, "127.0.0.1", origin.port, by_name=False)]
    assert 0.1 <= elapsed < 1.5


@needs_ipv6
def test_the_socket_reports_which_proxy_address_won(scripted_raw_server: Any, origin: Any) -> None:
    peer = SocksPeer()
    with scripted_raw_server(peer) as proxy, black_hole("::1") as hole:
        policy = ConnectPolicy.build(
            0.05, None, StaticResolver("proxy.test", [hole, sockaddr("127.0.0.1", proxy.port)])
        )
        sock, _ = open_connection(
            "127.0.0.1",
            origin.port,
            secure=False,
            socks_proxy=SocksProxy("socks4", "proxy.test", proxy.port),
            connect_timeout=5,
            connect_policy=policy,
        )
        report = sock.connect_report
        sock.close()
    assert report is not None
    assert report.address.sockaddr[:2] == ("127.0.0.1", proxy.port)
    assert [attempt.address.host for attempt in report.attempts] == ["::1", "127.0.0.1"]
    assert peer.requests == [SocksRequest(4, "127.0.0.1", origin.port, by_name=False)]


@pytest.mark.parametrize(("scheme", "version"), [("socks5", 5), ("socks4", 4)])
def test_a_locally_resolved_origin_uses_the_connections_resolver(
    scripted_raw_server: Any, origin: Any, scheme: str, version: int
) -> None:
    peer = SocksPeer()
    resolver = StaticResolver("origin.test", [sockaddr("127.0.0.1", origin.port)])
    with scripted_raw_server(peer) as proxy:
        conn = HTTP11Connection(
            "origin.test",
            origin.port,
            proxy_host=f"{scheme}://127.0.0.1:{proxy.port}",
            resolver=resolver,
            timeout=5,
        )
        with conn:
            assert fetch(conn, "/").read() == b"ok"
    # A SOCKS4 request carries IPv4 addresses only: only those are asked for.
    family = V4 if version == 4 else socket.AF_UNSPEC
    assert resolver.calls == [("origin.test", origin.port, family)]
    assert peer.requests == [SocksRequest(version, "127.0.0.1", origin.port, by_name=False)]


def test_socks4_with_ipv6_pinned_cannot_name_a_resolved_origin(closed_port: int) -> None:
    conn = HTTP11Connection(
        "origin.test",
        80,
        proxy_host=f"socks4://127.0.0.1:{closed_port}",
        address_family=socket.AF_INET6,
    )
    with conn, pytest.raises(InvalidRequest, match="takes IPv4 addresses only"):
        conn.connect()


def test_no_third_party_library_is_needed(
    scripted_raw_server: Any, origin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes an import fail as if the package were missing.
    monkeypatch.setitem(sys.modules, "python_socks", None)
    peer = SocksPeer()
    with scripted_raw_server(peer) as proxy:
        url = f"socks5h://127.0.0.1:{proxy.port}"
        with through(HTTPConnection, url, "127.0.0.1", origin.port) as conn:
            assert fetch(conn, "/").read() == b"ok"
    assert len(peer.requests) == 1
