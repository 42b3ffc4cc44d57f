"""The ``hyper`` command over HTTP/3: ``--http3`` tries QUIC first and falls back to TCP,
``--http3-only`` speaks nothing else."""

from __future__ import annotations

import socket

import pytest

from hyper import discovery
from tests.support.cli import assert_one_line_error, err_text, run_cli
from tests.support.h3servers import SMALL_BODY, SMALL_FILE, CaddyServer, H3Server
from tests.support.helpers import quickly

pytestmark = [pytest.mark.http3, pytest.mark.usefixtures("fresh_alt_svc_record")]


def _url(server: H3Server, path: str, port: int | None = None) -> str:
    return f"https://{server.host}:{port or server.tcp_port}{path}"


def test_http3_reaches_a_server_that_serves_it(
    caddy_h3: CaddyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Time enough for QUIC to win on a loaded machine (hyper's default head start is 0.3 s).
    monkeypatch.setattr(discovery, "HTTP3_HEAD_START", 10.0)
    result = run_cli(
        "--http3", "--cacert", caddy_h3.ca_cert_path, _url(caddy_h3, f"/{SMALL_FILE}")
    )
    assert result.returncode == 0, err_text(result)
    assert result.stdout == SMALL_BODY
    assert err_text(result).splitlines()[0] == "HTTP/3 200"


def test_http3_falls_back_to_tcp(hypercorn_h3: H3Server) -> None:
    # Nothing answers QUIC on the TCP port's number, and nothing is known from Alt-Svc yet.
    result = run_cli("--http3", "--cacert", hypercorn_h3.ca_cert_path, _url(hypercorn_h3, "/get"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).splitlines()[0] in ("HTTP/2 200", "HTTP/1.1 200")


def test_http3_only_speaks_http3(hypercorn_h3: H3Server) -> None:
    url = _url(hypercorn_h3, "/get", port=hypercorn_h3.port)
    result = run_cli("--http3-only", "-v", "--cacert", hypercorn_h3.ca_cert_path, url)
    assert result.returncode == 0, err_text(result)
    assert b'"url"' in result.stdout
    assert "HTTP/3 200" in result.stdout.decode() + err_text(result)


def test_http3_only_fails_in_bounded_time_where_udp_gets_no_answer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with quickly(5.0):
            result = run_cli("--http3-only", "--timeout", "1", f"https://127.0.0.1:{port}/")
    line = assert_one_line_error(result, 1)
    assert "QUIC" in line and "UDP" in line


def test_http3_only_refuses_plain_http_and_proxies() -> None:
    result = run_cli("--http3-only", "http://127.0.0.1:9/")
    assert result.returncode == 2
    assert "https://" in err_text(result)
    result = run_cli("--http3-only", "--proxy", "http://127.0.0.1:9", "https://127.0.0.1:9/")
    assert result.returncode == 2
    assert "proxy" in err_text(result)


def test_http3_and_http3_only_exclude_the_other_protocol_options() -> None:
    for other in ("--http2", "--http1.1", "--http3-only"):
        result = run_cli("--http3", other, "https://127.0.0.1:9/")
        assert result.returncode == 2, other
        assert "not allowed with" in err_text(result)
