"""Fast checks of the HTTP/1.1 test infrastructure: nginx, tinyproxy and scripted HTTP/1.1.

These use ``http.client``, ``ssl``, raw sockets and ``httpx``, never the library under test.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.http11 import (
    HTTP11Responder,
    RawReply,
    Reply,
    Request,
    build_response,
    http11_responder,
    read_request,
    send_response,
)
from tests.support.nginx import CLOSE_BODY, NginxInstance, NginxServer
from tests.support.processes import free_port
from tests.support.scripted import ScriptedRawServer
from tests.support.tinyproxy import (
    AUTH_REJECTED_STATUS,
    AUTH_REQUIRED_STATUS,
    REFUSED_REASON,
    REFUSED_STATUS,
    UNREACHABLE_STATUS,
    TinyproxyServer,
)

TIMEOUT = 5.0


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _client_context(ca_cert_path: Path | None, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_cert_path) if ca_cert_path else None)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def _connection(server: NginxServer) -> http.client.HTTPConnection:
    """An ``http.client`` connection to ``server`` (HTTP/1.1; ALPN http/1.1 over TLS)."""
    if server.tls:
        return http.client.HTTPSConnection(
            server.host,
            server.port,
            timeout=TIMEOUT,
            context=_client_context(server.ca_cert_path, ["http/1.1"]),
        )
    return http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)


def _get(
    server: NginxServer, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = _connection(server)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def _negotiated_alpn(server: NginxServer, offered: list[str]) -> str | None:
    context = _client_context(server.ca_cert_path, offered)
    with (
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.selected_alpn_protocol()


def _recv_until_eof(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    """Everything the peer sends until it closes; fails if it keeps the connection open."""
    sock.settimeout(timeout)
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def _proxy_request(
    proxy: TinyproxyServer, request_line: str, headers: dict[str, str] | None = None
) -> tuple[socket.socket, http.client.HTTPResponse]:
    """Send ``request_line`` (e.g. ``CONNECT host:port HTTP/1.1``) to the proxy; return
    the socket (a tunnel after a 2xx CONNECT) and the parsed response head."""
    sock = socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT)
    target = request_line.split()[1]
    host = target.split("://", 1)[-1].split("/", 1)[0]
    lines = [request_line, f"Host: {host}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = http.client.HTTPResponse(sock, method=request_line.split()[0])
    response.begin()
    return sock, response


# -- nginx -------------------------------------------------------------------------------------


def test_nginx_h2_tls_negotiates_h2(nginx_h2_tls: NginxServer) -> None:
    assert nginx_h2_tls.alpn_protocols == ("h2", "http/1.1")
    assert _negotiated_alpn(nginx_h2_tls, ["h2", "http/1.1"]) == "h2"
    assert _negotiated_alpn(nginx_h2_tls, ["http/1.1"]) == "http/1.1"
    verify = _client_context(nginx_h2_tls.ca_cert_path)
    with httpx.Client(http2=True, verify=verify, timeout=TIMEOUT) as client:
        response = client.get(nginx_h2_tls.url("/1k.bin"))
    assert response.http_version == "HTTP/2"
    assert _sha256(response.content) == nginx_h2_tls.files["1k.bin"]


def test_nginx_h11_tls_negotiates_http11(nginx_h11_tls: NginxServer) -> None:
    assert _negotiated_alpn(nginx_h11_tls, ["h2", "http/1.1"]) == "http/1.1"
    response, body = _get(nginx_h11_tls, "/1k.bin")
    assert (response.status, response.version) == (200, 11)
    assert _sha256(body) == nginx_h11_tls.files["1k.bin"]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/1k.bin", "1k.bin"),
        ("/1m.bin", "1m.bin"),
        ("/empty.bin", "empty.bin"),
        ("/", "index.html"),
        ("/slow/1k.bin", "1k.bin"),
    ],
)
def test_nginx_plain_serves_files(nginx_plain: NginxServer, path: str, name: str) -> None:
    response, body = _get(nginx_plain, path)
    assert (response.status, response.version) == (200, 11)
    assert response.getheader("Content-Length") == str(nginx_plain.sizes[name])
    assert _sha256(body) == nginx_plain.files[name]


@pytest.mark.parametrize(
    ("path", "name"), [("/chunked/1m.bin", "1m.bin"), ("/chunked", "index.html")]
)
def test_nginx_chunked(nginx_plain: NginxServer, path: str, name: str) -> None:
    response, body = _get(nginx_plain, path)
    assert response.status == 200
    assert response.chunked
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert _sha256(body) == nginx_plain.files[name]


def test_nginx_gzip(nginx_plain: NginxServer) -> None:
    response, body = _get(nginx_plain, "/gzip/text.txt", {"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert len(body) < nginx_plain.sizes["text.txt"] // 10
    assert _sha256(gzip.decompress(body)) == nginx_plain.files["text.txt"]
    response, body = _get(nginx_plain, "/gzip/text.txt")
    assert response.getheader("Content-Encoding") is None
    assert _sha256(body) == nginx_plain.files["text.txt"]


def test_nginx_close_ends_the_connection(nginx_plain: NginxServer) -> None:
    response, body = _get(nginx_plain, "/close")
    assert response.getheader("Connection") == "close"
    assert response.will_close
    assert body == CLOSE_BODY
    # The server really closes, although the client asked for keep-alive.
    with socket.create_connection((nginx_plain.host, nginx_plain.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"GET /close/1k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
        )
        data = _recv_until_eof(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in data
    assert data.endswith(nginx_plain.read("1k.bin"))


def test_nginx_redirects_and_statuses(nginx_plain: NginxServer) -> None:
    paths = ["/redirect", "/redirect/302", "/redirect/absolute"]
    paths += ["/status/404", "/status/418", "/status/204"]
    results = {}
    conn = _connection(nginx_plain)
    try:
        for path in paths:  # all on one keep-alive connection
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            results[path] = (
                response.status,
                response.reason,
                response.getheader("Location"),
                body,
            )
    finally:
        conn.close()
    assert results["/redirect"][:3] == (301, "Moved Permanently", "/index.html")
    assert results["/redirect/302"][:3] == (302, "Moved Temporarily", "/index.html")
    assert results["/redirect/absolute"][2] == nginx_plain.url("/index.html")
    assert results["/status/404"][:2] == (404, "Not Found")
    assert results["/status/418"] == (418, "", None, b"status 418\n")  # no reason phrase
    assert results["/status/204"] == (204, "No Content", None, b"")


def test_nginx_keep_alive_is_logged(nginx_plain: NginxServer) -> None:
    since = nginx_plain.access_log.position()
    conn = _connection(nginx_plain)
    try:
        for _ in range(2):
            conn.request("GET", "/1k.bin", headers={"User-Agent": "keep-alive-probe"})
            conn.getresponse().read()
    finally:
        conn.close()
    second = nginx_plain.access_log.wait_for(
        r'conn=(\d+) req=2 "GET /1k.bin HTTP/1.1" 200 1024 HTTP/1.1 "keep-alive-probe"',
        since=since,
    )
    assert f"conn={second.group(1)} req=1 " in nginx_plain.access_log.read(since)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_nginx_workers_run_as_current_user(nginx: NginxInstance) -> None:
    workers = nginx.worker_pids()
    assert len(workers) == 1
    status = Path(f"/proc/{workers[0]}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert {int(uid) for uid in uids} == {os.geteuid()}


# -- tinyproxy ---------------------------------------------------------------------------------


def test_tinyproxy_tunnels_to_nginx(tinyproxy: TinyproxyServer, nginx_h2_tls: NginxServer) -> None:
    since = tinyproxy.log_position()
    conn = http.client.HTTPSConnection(
        tinyproxy.host,
        tinyproxy.port,
        timeout=TIMEOUT,
        context=_client_context(nginx_h2_tls.ca_cert_path, ["http/1.1"]),
    )
    conn.set_tunnel("localhost", nginx_h2_tls.port)
    try:
        conn.request("GET", "/1k.bin")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert (response.status, response.version) == (200, 11)
    assert _sha256(body) == nginx_h2_tls.files["1k.bin"]
    # http.client sends CONNECT as HTTP/1.0 before Python 3.12, as HTTP/1.1 since.
    (logged,) = tinyproxy.requests_since(since)
    assert re.fullmatch(rf"CONNECT localhost:{nginx_h2_tls.port} HTTP/1\.[01]", logged)


def test_tinyproxy_tunnel_carries_h2(
    tinyproxy: TinyproxyServer, nginx_h2_tls: NginxServer
) -> None:
    since = tinyproxy.log_position()
    verify = _client_context(nginx_h2_tls.ca_cert_path)
    with httpx.Client(http2=True, verify=verify, proxy=tinyproxy.url, timeout=TIMEOUT) as client:
        response = client.get(f"https://localhost:{nginx_h2_tls.port}/1k.bin")
    assert response.http_version == "HTTP/2"
    assert _sha256(response.content) == nginx_h2_tls.files["1k.bin"]
    assert f"CONNECT localhost:{nginx_h2_tls.port} HTTP/1.1" in tinyproxy.requests_since(since)


def test_tinyproxy_forwards_absolute_form(
    tinyproxy: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    since = tinyproxy.log_position()
    conn = http.client.HTTPConnection(tinyproxy.host, tinyproxy.port, timeout=TIMEOUT)
    try:
        conn.request("GET", nginx_plain.url("/1k.bin"))
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert "tinyproxy" in (response.getheader("Via") or "")
    assert _sha256(body) == nginx_plain.files["1k.bin"]
    assert tinyproxy.requests_since(since) == [f"GET {nginx_plain.url('/1k.bin')} HTTP/1.1"]


def test_tinyproxy_unreachable_origin(tinyproxy: TinyproxyServer) -> None:
    sock, response = _proxy_request(tinyproxy, f"CONNECT 127.0.0.1:{free_port()} HTTP/1.1")
    with sock:
        assert (response.status, response.reason) == (UNREACHABLE_STATUS, "Unable to connect")


def test_tinyproxy_refusing(tinyproxy_refusing: TinyproxyServer, nginx_plain: NginxServer) -> None:
    for line in (
        f"CONNECT {nginx_plain.authority} HTTP/1.1",
        f"GET {nginx_plain.url('/1k.bin')} HTTP/1.1",
    ):
        sock, response = _proxy_request(tinyproxy_refusing, line)
        with sock:
            assert (response.status, response.reason) == (REFUSED_STATUS, REFUSED_REASON)
            assert response.getheader("Connection") == "close"


def test_tinyproxy_auth(
    tinyproxy_auth: TinyproxyServer, nginx_h11_tls: NginxServer, nginx_plain: NginxServer
) -> None:
    assert tinyproxy_auth.auth is not None and tinyproxy_auth.proxy_authorization is not None
    connect = f"CONNECT localhost:{nginx_h11_tls.port} HTTP/1.1"
    sock, response = _proxy_request(tinyproxy_auth, connect)
    with sock:
        assert response.status == AUTH_REQUIRED_STATUS
        assert response.getheader("Proxy-Authenticate") == 'Basic realm="Tinyproxy"'
    sock, response = _proxy_request(
        tinyproxy_auth, connect, {"Proxy-Authorization": "Basic d3Jvbmc6d3Jvbmc="}
    )
    with sock:
        assert response.status == AUTH_REJECTED_STATUS
    good = {"Proxy-Authorization": tinyproxy_auth.proxy_authorization}
    sock, response = _proxy_request(tinyproxy_auth, connect, good)
    context = _client_context(nginx_h11_tls.ca_cert_path, ["h2", "http/1.1"])
    with sock, context.wrap_socket(sock, server_hostname="localhost") as tls:
        assert (response.status, response.reason) == (200, "Connection established")
        assert tls.selected_alpn_protocol() == "http/1.1"
    sock, response = _proxy_request(
        tinyproxy_auth, f"GET {nginx_plain.url('/1k.bin')} HTTP/1.1", good
    )
    with sock:
        assert response.status == 200
        assert _sha256(response.read()) == nginx_plain.files["1k.bin"]


# -- scripted HTTP/1.1 server ------------------------------------------------------------------


def test_http11_responder_keep_alive(
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    responder = http11_responder(
        {
            "/a": b"alpha",
            "POST /b": lambda request: Reply(201, [("X-Length", str(len(request.body)))], b"beta"),
        }
    )
    with scripted_raw_server(responder) as srv:
        conn = http.client.HTTPConnection(*srv.address, timeout=TIMEOUT)
        try:
            conn.request("GET", "/a?x=1")
            first = conn.getresponse()
            assert (first.status, first.read()) == (200, b"alpha")
            conn.request("POST", "/b", body=b"12345")
            second = conn.getresponse()
            assert (second.status, second.getheader("X-Length"), second.read()) == (
                201,
                "5",
                b"beta",
            )
        finally:
            conn.close()
        srv.join_handlers()
    assert srv.connection_count == 1
    assert [(r.method, r.path, r.body) for r in responder.requests] == [
        ("GET", "/a?x=1", b""),
        ("POST", "/b", b"12345"),
    ]
    assert responder.requests[0].connection_id == responder.requests[1].connection_id


def test_http11_responder_pipelined_chunked(
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    chunked_reply = Reply(
        200, [("X-A", "1")], [b"ab", b"", b"cde"], chunked=True, trailers=[("X-Trailer", "t")]
    )
    responder = http11_responder(
        {"/echo": lambda request: Reply(200, body=request.body), "/chunked": chunked_reply}
    )
    with (
        scripted_raw_server(responder) as srv,
        socket.create_connection(srv.address, timeout=TIMEOUT) as sock,
    ):
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
            b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = _recv_until_eof(sock)
    assert data == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde"
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n3\r\ncde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    echo = responder.requests[0]
    assert (echo.chunks, echo.trailers) == ([b"abc", b"de"], [(b"X-Sum", b"5")])


def test_http11_responder_expect_continue_and_head(
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    responder = http11_responder({"/up": lambda r: Reply(200, body=r.body), "/h": b"0123456789"})
    with (
        scripted_raw_server(responder) as srv,
        socket.create_connection(srv.address, timeout=TIMEOUT) as sock,
    ):
        sock.sendall(
            b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        received = b""
        while len(received) < len(interim):
            received += sock.recv(len(interim) - len(received))
        assert received == interim
        sock.sendall(b"data" + b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = _recv_until_eof(sock)
    assert data == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndata"
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",  # bare LF
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"HTTX/1.1 200 OK\r\n\r\n",
    ],
)
def test_http11_raw_reply_is_verbatim(
    scripted_raw_server: Callable[..., ScriptedRawServer], raw: bytes
) -> None:
    responder = http11_responder({}, default=RawReply([raw[:7], raw[7:]]))
    with (
        scripted_raw_server(responder) as srv,
        socket.create_connection(srv.address, timeout=TIMEOUT) as sock,
    ):
        sock.sendall(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _recv_until_eof(sock) == raw
    assert [r.path for r in responder.requests] == ["/anything"]


def test_http11_read_request_and_send_response_over_tls(
    scripted_raw_server: Callable[..., ScriptedRawServer], ca_cert_path: Path
) -> None:
    seen: list[Request] = []

    def handler(sock: socket.socket) -> None:
        for _ in range(2):
            request = read_request(sock)
            seen.append(request)
            send_response(sock, 200, None, [("X-Path", request.path)], request.body, chunked=True)

    with scripted_raw_server(handler, tls=True, alpn=["http/1.1"]) as srv:
        conn = http.client.HTTPSConnection(
            "localhost",
            srv.port,
            timeout=TIMEOUT,
            context=_client_context(ca_cert_path, ["http/1.1"]),
        )
        try:
            for body in (b"one", b"two"):
                conn.request("POST", f"http://localhost:{srv.port}/p", body=body)
                response = conn.getresponse()
                assert response.chunked
                assert (response.getheader("X-Path"), response.read()) == ("/p", body)
        finally:
            conn.close()
    assert [(r.target, r.path) for r in seen] == [(f"http://localhost:{srv.port}/p", "/p")] * 2


def test_build_response_defaults() -> None:
    assert build_response(404) == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    assert build_response(299, body=b"x") == b"HTTP/1.1 299 \r\nContent-Length: 1\r\n\r\nx"
    assert (
        build_response(304, headers=[("ETag", '"e"')])
        == b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n'
    )
    assert isinstance(http11_responder({}), HTTP11Responder)
