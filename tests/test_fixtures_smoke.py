"""Fast checks that the test infrastructure itself works (servers, certificates, helpers).

These use ``httpx`` or the raw ``h2`` client in ``tests.support.h2client``,
never the library under test.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import h2.events
import httpx
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame

from tests.support.certs import CertPaths
from tests.support.h2client import h2_request
from tests.support.http2bin import Http2binServer
from tests.support.nghttpd import NghttpdServer
from tests.support.processes import (
    ServerProcess,
    ServerStartError,
    missing_requirement,
    require_binary,
)
from tests.support.scripted import (
    Reply,
    Request,
    ScriptedRawServer,
    ScriptedServer,
    ServerConnection,
    simple_responder,
)


def _httpx_client(ca_cert_path: Path | None = None, **kwargs: object) -> httpx.Client:
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_cert_path)) if ca_cert_path else True
    )
    return httpx.Client(http2=True, verify=verify, timeout=10.0, **kwargs)  # type: ignore[arg-type]


# -- certificates ------------------------------------------------------------------------------


def test_certificate_files_exist(
    ca_cert_path: Path, server_cert_path: Path, server_key_path: Path
) -> None:
    assert b"BEGIN CERTIFICATE" in ca_cert_path.read_bytes()
    assert b"BEGIN CERTIFICATE" in server_cert_path.read_bytes()
    assert b"PRIVATE KEY" in server_key_path.read_bytes()


@pytest.mark.parametrize(
    ("cert_fixture", "reason"),
    [
        ("wrong_host_cert", "Hostname mismatch"),
        ("expired_cert", "expired"),
        ("untrusted_cert", "unable to get local issuer"),
    ],
)
def test_bad_certificates_are_rejected(
    cert_fixture: str,
    reason: str,
    request: pytest.FixtureRequest,
    ca_cert_path: Path,
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    cert: CertPaths = request.getfixturevalue(cert_fixture)
    with scripted_raw_server(lambda sock: None, tls=True, cert=cert) as srv:
        context = ssl.create_default_context(cafile=str(ca_cert_path))
        with (
            socket.create_connection(srv.address, timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=reason),
        ):
            context.wrap_socket(raw, server_hostname="localhost")


# -- nghttpd -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1k.bin", "1m.bin", "10m.bin", "empty.bin"])
def test_nghttpd_tls_serves_files_over_h2(nghttpd_tls: NghttpdServer, name: str) -> None:
    assert nghttpd_tls.ca_cert_path is not None
    with _httpx_client(nghttpd_tls.ca_cert_path) as client:
        response = client.get(f"https://localhost:{nghttpd_tls.port}/{name}")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert len(response.content) == nghttpd_tls.sizes[name]
    assert hashlib.sha256(response.content).hexdigest() == nghttpd_tls.files[name]


def test_nghttpd_tls_echoes_uploads(nghttpd_tls: NghttpdServer) -> None:
    payload = bytes(range(256)) * 300
    with _httpx_client(nghttpd_tls.ca_cert_path) as client:
        response = client.post(f"https://localhost:{nghttpd_tls.port}/echo", content=payload)
    assert response.http_version == "HTTP/2"
    assert response.content == payload


def test_nghttpd_h2c_prior_knowledge(nghttpd_h2c: NghttpdServer) -> None:
    response = h2_request(nghttpd_h2c.host, nghttpd_h2c.port, "/64k.bin")
    assert response.status == 200
    assert hashlib.sha256(response.body).hexdigest() == nghttpd_h2c.files["64k.bin"]
    assert nghttpd_h2c.read("index.html").startswith(b"<!DOCTYPE html>")


# -- hypercorn + httpbin -----------------------------------------------------------------------


def test_http2bin_tls_get_is_json_over_h2(http2bin_tls: Http2binServer) -> None:
    with _httpx_client(http2bin_tls.ca_cert_path) as client:
        response = client.get(f"https://localhost:{http2bin_tls.port}/get?a=1")
    assert response.http_version == "HTTP/2"
    assert response.json()["args"] == {"a": "1"}


_HTTPBIN_CHECKS: list[tuple[str, str, Callable[[httpx.Response], bool]]] = [
    ("GET", "/headers", lambda r: r.json()["headers"]["X-Probe"] == "yes"),
    ("POST", "/post", lambda r: r.json()["json"] == {"k": "v"}),
    ("GET", "/gzip", lambda r: r.json()["gzipped"] is True),
    ("GET", "/deflate", lambda r: r.json()["deflated"] is True),
    ("GET", "/brotli", lambda r: r.json()["brotli"] is True),
    ("GET", "/stream/3", lambda r: len(r.text.splitlines()) == 3),
    ("GET", "/bytes/1000", lambda r: len(r.content) == 1000),
    ("GET", "/drip?duration=0&numbytes=5&delay=0", lambda r: r.content == b"*****"),
    ("GET", "/status/418", lambda r: r.status_code == 418),
]


@pytest.mark.parametrize(("method", "path", "check"), _HTTPBIN_CHECKS, ids=lambda v: str(v))
def test_http2bin_endpoints(
    http2bin_tls: Http2binServer,
    method: str,
    path: str,
    check: Callable[[httpx.Response], bool],
) -> None:
    with _httpx_client(http2bin_tls.ca_cert_path) as client:
        response = client.request(
            method,
            f"https://localhost:{http2bin_tls.port}{path}",
            headers={"X-Probe": "yes"},
            json={"k": "v"} if method == "POST" else None,
        )
    assert response.http_version == "HTTP/2"
    assert check(response), response.text[:500]


def test_http2bin_plain_http11_and_prior_knowledge(http2bin_plain: Http2binServer) -> None:
    with httpx.Client(timeout=10.0) as client:
        response = client.get(http2bin_plain.url("/get"))
    assert response.http_version == "HTTP/1.1"
    assert response.json()["url"].endswith("/get")
    h2_response = h2_request(http2bin_plain.host, http2bin_plain.port, "/get")
    assert h2_response.status == 200
    assert json.loads(h2_response.body)["url"].endswith("/get")


# -- scripted servers --------------------------------------------------------------------------


def _echo(request: Request) -> Reply:
    return Reply(201, headers=[("x-method", request.method)], body=request.body)


def test_scripted_simple_responder_plaintext(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    responder = simple_responder(
        {"/hello": b"hi", "/echo": _echo, "/trailers": Reply(body=b"t", trailers=[("x-t", "1")])}
    )
    with scripted_server(responder) as srv:
        hello = h2_request(srv.host, srv.port, "/hello")
        echo = h2_request(srv.host, srv.port, "/echo", method="PUT", body=b"x" * 100_000)
        trailers = h2_request(srv.host, srv.port, "/trailers")
        missing = h2_request(srv.host, srv.port, "/nope")
    assert (hello.status, hello.body, hello.header("content-length")) == (200, b"hi", b"2")
    assert (echo.status, echo.header("x-method"), echo.body) == (201, b"PUT", b"x" * 100_000)
    assert trailers.trailers == [(b"x-t", b"1")]
    assert missing.status == 404
    assert [r.path for r in responder.requests] == ["/hello", "/echo", "/trailers", "/nope"]
    assert srv.connection_count == 4


def test_scripted_tls_with_httpx_reuses_connection(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: needs WINDOW_UPDATEs from the client
    with (
        scripted_server(simple_responder({"/big": body}), tls=True) as srv,
        _httpx_client(ca_cert_path) as client,
    ):
        for _ in range(3):
            response = client.get(f"https://localhost:{srv.port}/big")
            assert response.http_version == "HTTP/2"
            assert response.content == body
    assert srv.connection_count == 1
    assert srv.connections[0].alpn_protocol == "h2"


def test_scripted_frame_level_handler(scripted_server: Callable[..., ScriptedServer]) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        request = ctx.wait_for_request()
        headers, body = ctx.read_request(request.stream_id)
        assert (b":path", b"/x") in headers
        assert body == b""
        ctx.respond(request.stream_id, 200, [("a", "b")], body=b"", end=False)
        ctx.send_body(request.stream_id, b"")  # zero-length DATA with END_STREAM
        ctx.wait_for(h2.events.ConnectionTerminated)

    with scripted_server(handler) as srv:
        response = h2_request(srv.host, srv.port, "/x")
    assert (response.status, response.header("a"), response.body) == (200, b"b", b"")


def test_scripted_raw_frames_share_the_hpack_encoder(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        request = ctx.wait_for_request()
        ctx.send_headers_frame(request.stream_id, [(":status", "200"), ("x-raw", "1")])
        ctx.send_frame(DataFrame(request.stream_id, data=b"abc", flags=["END_STREAM"]))
        ctx.wait_closed()

    with scripted_server(handler) as srv:
        first = h2_request(srv.host, srv.port, "/")
        second = h2_request(srv.host, srv.port, "/")
    assert (first.status, first.header("x-raw"), first.body) == (200, b"1", b"abc")
    assert second.body == b"abc"


def test_scripted_reset_mid_body(scripted_server: Callable[..., ScriptedServer]) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        request = ctx.wait_for_request()
        ctx.respond(request.stream_id, 200, body=b"partial", end=False)
        ctx.conn.reset_stream(request.stream_id, ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        ctx.wait_closed()

    with scripted_server(handler) as srv, pytest.raises(AssertionError, match="stream reset"):
        h2_request(srv.host, srv.port, "/")


def test_scripted_handler_error_surfaces_via_check(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    def broken(ctx: ServerConnection) -> None:
        ctx.handshake()
        raise ValueError("script bug")

    with scripted_server(broken) as srv:
        with pytest.raises(AssertionError):
            h2_request(srv.host, srv.port, "/")  # server hangs up on the client
        srv.join_handlers()
        with pytest.raises(AssertionError, match="script bug"):
            srv.check()
        srv.check()  # reported errors are cleared


def test_scripted_handler_error_surfaces_on_exit(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    def broken(ctx: ServerConnection) -> None:
        raise RuntimeError("script bug on exit")

    with (
        pytest.raises(AssertionError, match="script bug on exit"),
        scripted_server(broken) as srv,
        socket.create_connection(srv.address, timeout=5) as sock,
    ):
        assert sock.recv(10) == b""  # handler died, connection closed


def test_scripted_server_timeout_is_reported(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    def impatient(ctx: ServerConnection) -> None:
        ctx.handshake(timeout=0.2)

    with (
        pytest.raises(AssertionError, match="RemoteSettingsChanged"),
        scripted_server(impatient) as srv,
        socket.create_connection(srv.address),
    ):
        srv.wait_connections(1)
        srv.join_handlers()  # the client never sends its preface


def test_scripted_raw_server(scripted_raw_server: Callable[..., ScriptedRawServer]) -> None:
    def garbage(sock: socket.socket) -> None:
        sock.sendall(b"\x00garbage\xff")

    with (
        scripted_raw_server(garbage) as srv,
        socket.create_connection(srv.address, timeout=5) as client,
    ):
        received = b""
        while chunk := client.recv(100):
            received += chunk
    assert received == b"\x00garbage\xff"


# -- process helper and skip/fail policy -------------------------------------------------------


def test_server_process_ready_line_and_port(tmp_path: Path) -> None:
    script = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print('listening on port', s.getsockname()[1], flush=True)\n"
        "while True: s.accept()[0].close()\n"
    )
    with ServerProcess(
        "py-server",
        [sys.executable, "-c", script],
        log_path=tmp_path / "py.log",
        ready_pattern=r"listening on port (?P<port>\d+)",
    ) as proc:
        assert proc.is_running()
        socket.create_connection(("127.0.0.1", proc.port), timeout=5).close()
    assert not proc.is_running()
    assert "listening on port" in (tmp_path / "py.log").read_text()


def test_server_process_failure_includes_log_tail(tmp_path: Path) -> None:
    proc = ServerProcess(
        "dies",
        [sys.executable, "-c", "print('fatal: no config'); raise SystemExit(3)"],
        log_path=tmp_path / "dies.log",
        port=1,
    )
    with pytest.raises(ServerStartError, match="fatal: no config"):
        proc.start()


def test_server_process_startup_deadline(tmp_path: Path) -> None:
    proc = ServerProcess(
        "hangs",
        [sys.executable, "-c", "import threading; threading.Event().wait()"],
        log_path=tmp_path / "hangs.log",
        ready_pattern=r"never (?P<port>\d+)",
        startup_timeout=0.5,
        stop_timeout=2.0,
    )
    with pytest.raises(ServerStartError, match="no ready line"):
        proc.start()
    assert not proc.is_running()


def test_missing_requirement_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-binary"):
        require_binary("no-such-binary-for-hyper-tests")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        missing_requirement("tool x missing")
