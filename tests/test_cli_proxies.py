"""Proxies in the ``hyper`` command: ``--proxy``, the ``*_proxy`` environment variables,
``NO_PROXY`` and ``--noproxy``, and credentials in a proxy URL.

tinyproxy logs each request line before it answers, so a test knows exactly what went
through it; a "proxy" on a port nobody listens on shows that a request did *not* go through
one (it would fail to connect).
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator

import pytest

from hyper.cli.errors import UsageError
from hyper.cli.proxies import DEFAULT_PROXY_PORT, Proxy, bypasses_proxy, parse_proxy_url, proxy_for
from hyper.cli.request import Target, parse_url
from tests.support.cli import assert_one_line_error, err_text, run_cli
from tests.support.dante import DanteServer
from tests.support.http2bin import Http2binServer
from tests.support.nginx import NginxServer
from tests.support.tinyproxy import TinyproxyServer


@pytest.fixture
def dead_proxy() -> Iterator[str]:
    """The URL of a proxy that refuses connections (a port closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


# -- through tinyproxy ---------------------------------------------------------------------------


def test_proxy_option_for_plain_http(
    tinyproxy: TinyproxyServer, http2bin_plain: Http2binServer
) -> None:
    since = tinyproxy.log_position()
    result = run_cli("--proxy", tinyproxy.url, http2bin_plain.url("/get"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/1.1 200")  # plain http through a proxy: HTTP/1.1
    assert json.loads(result.stdout)["url"] == http2bin_plain.url("/get")
    assert tinyproxy.requests_since(since) == [f"GET {http2bin_plain.url('/get')} HTTP/1.1"]


def test_https_proxy_variable_tunnels_tls(
    tinyproxy: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    since = tinyproxy.log_position()
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/get"),
        env={"HTTPS_PROXY": tinyproxy.authority, "HTTP_PROXY": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")  # HTTP/2 inside the tunnel
    assert tinyproxy.requests_since(since) == [f"CONNECT {http2bin_tls.authority} HTTP/1.1"]


def test_lower_case_variable_wins(
    tinyproxy: TinyproxyServer, http2bin_plain: Http2binServer, dead_proxy: str
) -> None:
    since = tinyproxy.log_position()
    env = {"http_proxy": tinyproxy.url, "HTTP_PROXY": dead_proxy}
    result = run_cli(http2bin_plain.url("/get"), env=env)
    assert result.returncode == 0, err_text(result)
    assert len(tinyproxy.requests_since(since)) == 1


def test_all_proxy_is_the_fallback(
    tinyproxy: TinyproxyServer, http2bin_plain: Http2binServer
) -> None:
    since = tinyproxy.log_position()
    result = run_cli("--http2", http2bin_plain.url("/get"), env={"ALL_PROXY": tinyproxy.url})
    assert result.returncode == 0, err_text(result)
    # HTTP/2 with prior knowledge cannot be forwarded: it goes through a tunnel.
    assert err_text(result).startswith("HTTP/2 200")
    assert tinyproxy.requests_since(since) == [f"CONNECT {http2bin_plain.authority} HTTP/1.1"]


def test_proxy_credentials_become_proxy_authorization(
    tinyproxy_auth: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    assert tinyproxy_auth.auth is not None
    user, password = tinyproxy_auth.auth
    url = f"http://{user}:{password}@{tinyproxy_auth.authority}"
    result = run_cli(
        "--proxy", url, "--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/headers")
    )
    assert result.returncode == 0, err_text(result)
    # Meant for the proxy: the server never sees it.
    assert "Proxy-Authorization" not in json.loads(result.stdout)["headers"]


def test_proxy_refusing_the_tunnel_is_one_line(
    tinyproxy_auth: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    result = run_cli(
        "--proxy",
        tinyproxy_auth.url,
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/get"),
    )
    line = assert_one_line_error(result, 1)
    assert "proxy refused the tunnel: 407" in line


def test_verbose_names_the_proxy(
    tinyproxy: TinyproxyServer, http2bin_plain: Http2binServer
) -> None:
    result = run_cli("-v", http2bin_plain.url("/get"), env={"http_proxy": tinyproxy.authority})
    assert result.returncode == 0, err_text(result)
    assert result.stdout.decode().splitlines()[0] == f"* proxy {tinyproxy.url}"


# -- bypassing the proxy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {"NO_PROXY": "127.0.0.1"}),
        ([], {"no_proxy": "localhost, 127.0.0.0/8"}),
        ([], {"NO_PROXY": "*"}),
        (["--noproxy", "*"], {"NO_PROXY": "example.com"}),  # --noproxy replaces NO_PROXY
        (["--proxy", ""], {}),  # no proxy at all
    ],
)
def test_proxy_bypassed(
    http2bin_plain: Http2binServer, dead_proxy: str, args: list[str], env: dict[str, str]
) -> None:
    result = run_cli(*args, http2bin_plain.url("/get"), env={"HTTP_PROXY": dead_proxy, **env})
    assert result.returncode == 0, err_text(result)


def test_proxy_used_when_no_proxy_does_not_match(
    http2bin_plain: Http2binServer, dead_proxy: str
) -> None:
    env = {"HTTP_PROXY": dead_proxy, "NO_PROXY": "example.com,127.0.0.1:1"}
    line = assert_one_line_error(run_cli(http2bin_plain.url("/get"), env=env), 1)
    assert "cannot connect to 127.0.0.1" in line  # to the dead proxy


def test_httpoxy_upper_case_variable_ignored_under_cgi(
    http2bin_plain: Http2binServer, dead_proxy: str
) -> None:
    env = {"HTTP_PROXY": dead_proxy, "REQUEST_METHOD": "GET"}
    result = run_cli(http2bin_plain.url("/get"), env=env)
    assert result.returncode == 0, err_text(result)


@pytest.mark.parametrize("scheme", ["socks5h", "socks4"])
def test_through_a_socks_proxy(dante: DanteServer, nginx_h2_tls: NginxServer, scheme: str) -> None:
    """--proxy with a SOCKS URL: TLS and HTTP/2 end to end through a real SOCKS proxy."""
    since = dante.log.position()
    result = run_cli(
        "-v",
        "--cacert",
        str(nginx_h2_tls.ca_cert_path),
        "--proxy",
        dante.url(scheme),
        nginx_h2_tls.url("/"),
    )
    assert result.returncode == 0, err_text(result)
    assert f"* proxy {dante.url(scheme)}" in result.stdout.decode()
    dante.wait_for_tunnel(nginx_h2_tls.port, since=since)


def test_invalid_proxy_variable_is_a_usage_error() -> None:
    result = run_cli("https://127.0.0.1:9/", env={"https_proxy": "ftp://127.0.0.1:2121"})
    assert result.returncode == 2
    assert err_text(result).splitlines()[-1] == (
        "hyper: error: https_proxy: unsupported proxy scheme 'ftp' (use http://, socks5h://, "
        "socks5://, socks4a:// or socks4://)"
    )


# -- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypassed"),
    [
        ("http://example.com/", "example.com", True),
        ("http://www.example.com/", "example.com", True),
        ("http://www.example.com/", ".example.com", True),
        ("http://example.com/", ".example.com", True),
        ("http://a.b.example.com/", "*.example.com", True),
        ("http://badexample.com/", "example.com", False),
        ("http://example.com.evil/", "example.com", False),
        ("http://EXAMPLE.com./", "Example.COM", True),
        ("http://example.com:8080/", "example.com:8080", True),
        ("http://example.com:8081/", "example.com:8080", False),
        ("https://example.com/", "example.com:443", True),
        ("http://example.com/", "other.org, example.com", True),
        ("http://example.com/", "other.org example.com", True),
        ("http://example.com/", "", False),
        ("http://example.com/", " , ,", False),
        ("http://anything/", "*", True),
        ("http://10.1.2.3/", "10.0.0.0/8", True),
        ("http://11.1.2.3/", "10.0.0.0/8", False),
        ("http://10.1.2.3/", "10.1.2.3", True),
        ("http://10.1.2.3/", "example.com", False),
        ("http://[::1]:8080/", "::1", True),
        ("http://[::1]:8080/", "[::1]:8080", True),
        ("http://[::1]:8080/", "[::1]:9", False),
        ("http://[2001:db8::5]/", "2001:db8::/32", True),
        ("http://localhost/", "127.0.0.1", False),  # names are not resolved
    ],
)
def test_bypasses_proxy(url: str, no_proxy: str, bypassed: bool) -> None:
    assert bypasses_proxy(parse_url(url), no_proxy) is bypassed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://proxy:3128", Proxy("proxy", 3128)),
        ("proxy:3128", Proxy("proxy", 3128)),
        ("http://proxy", Proxy("proxy", DEFAULT_PROXY_PORT)),
        ("HTTP://[::1]:8080/", Proxy("::1", 8080)),
        (
            "socks5h://user:pw@proxy",
            Proxy("proxy", DEFAULT_PROXY_PORT, socks_url="socks5h://user:pw@proxy"),
        ),
        (
            "http://us%40er:p%3Ass@proxy:1",
            Proxy(
                "proxy",
                1,
                (("Proxy-Authorization", "Basic " + base64.b64encode(b"us@er:p:ss").decode()),),
            ),
        ),
    ],
)
def test_parse_proxy_url(text: str, expected: Proxy) -> None:
    assert parse_proxy_url(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://proxy:443", "unsupported proxy scheme 'https'"),
        ("ftp://proxy", "unsupported proxy scheme 'ftp'"),
        ("http://proxy:http", "invalid port"),
        ("http://:8080", "no host"),
    ],
)
def test_parse_proxy_url_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_proxy_url(text, "HTTP_PROXY")


def test_proxy_url_shows_no_credentials() -> None:
    assert parse_proxy_url("http://u:secret@[::1]:3128").url == "http://[::1]:3128"


@pytest.mark.parametrize(
    ("target", "env", "option", "noproxy", "expected"),
    [
        ("http://h/", {"http_proxy": "p1:1", "HTTP_PROXY": "p2:2"}, None, None, "p1"),
        ("http://h/", {"http_proxy": " ", "HTTP_PROXY": "p2:2"}, None, None, "p2"),
        ("https://h/", {"http_proxy": "p1:1"}, None, None, None),
        ("https://h/", {"HTTPS_PROXY": "p3:3", "ALL_PROXY": "p4:4"}, None, None, "p3"),
        ("https://h/", {"all_proxy": "p4:4"}, None, None, "p4"),
        ("http://h/", {"http_proxy": "p1:1"}, "p5:5", None, "p5"),
        ("http://h/", {"http_proxy": "p1:1"}, "", None, None),
        ("http://h/", {"http_proxy": "p1:1", "no_proxy": "h"}, None, None, None),
        ("http://h/", {"http_proxy": "p1:1", "NO_PROXY": "h"}, None, "", "p1"),
        ("http://h/", {}, "p5:5", "h", None),  # --noproxy applies to --proxy too
        ("http://h/", {"HTTP_PROXY": "p2:2", "REQUEST_METHOD": "GET"}, None, None, None),
        ("http://h/", {"http_proxy": "p1:1", "REQUEST_METHOD": "GET"}, None, None, "p1"),
    ],
)
def test_proxy_for(
    target: str,
    env: dict[str, str],
    option: str | None,
    noproxy: str | None,
    expected: str | None,
) -> None:
    proxy = proxy_for(parse_url(target), env, option, noproxy)
    assert (proxy.host if proxy is not None else None) == expected


def test_target_origin() -> None:
    assert Target(True, "h", 443, "/a").origin == ("https", "h", 443)
    assert parse_url("http://h:80/x").origin == parse_url("h/y").origin
