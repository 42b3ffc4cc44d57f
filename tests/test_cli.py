"""The ``hyper`` command-line tool: requests against the local servers (in-process through
:func:`hyper.cli.main`, or as a subprocess where a signal or terminal is needed), its errors
and exit statuses, and unit tests of its pure functions (item parsing, method and URL
detection, output helpers).

Redirects, request bodies, proxies, progress and the debug output have files of their own
(``tests/test_cli_*.py``).
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hyper
from hyper.cli import items, output, request
from hyper.cli.command import exit_status
from hyper.cli.errors import UsageError
from hyper.common.exceptions import TLSError
from tests.support.cli import (
    TIMEOUT,
    IdleListener,
    assert_one_line_error,
    err_text,
    hyper_cmd,
    process_env,
    run_cli,
    run_in_pty,
    sha256,
)
from tests.support.http2bin import Http2binServer
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer
from tests.support.scripted import ScriptedRawServer


@pytest.fixture
def listener() -> Iterator[IdleListener]:
    """A port nobody answers on (see :class:`IdleListener`)."""
    with IdleListener() as idle:
        yield idle


# -- against real servers ----------------------------------------------------------------------


def test_get_over_tls_prints_json_and_http2_status(http2bin_tls: Http2binServer) -> None:
    result = run_cli("--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    body = json.loads(result.stdout)
    assert body["url"].endswith("/get")
    stderr = err_text(result).splitlines()
    assert stderr[0] == "HTTP/2 200"
    assert any(line.lower().startswith("content-type: application/json") for line in stderr)


def test_http11_only_server(nginx_h11_tls: NginxServer) -> None:
    assert nginx_h11_tls.ca_cert_path is not None
    url = f"https://{nginx_h11_tls.authority}/index.html"
    result = run_cli("--cacert", nginx_h11_tls.ca_cert_path, url)
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/1.1 200")
    assert result.stdout == (nginx_h11_tls.docroot / "index.html").read_bytes()


def test_header_items_reach_the_server(http2bin_tls: Http2binServer) -> None:
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/headers"),
        "X-Hyper-Test:one",
        "X-Spaced: two words",
        "User-Agent:cli-test/1",
    )
    assert result.returncode == 0, err_text(result)
    headers = json.loads(result.stdout)["headers"]
    assert headers["X-Hyper-Test"] == "one"
    assert headers["X-Spaced"] == "two words"
    assert headers["User-Agent"] == "cli-test/1"  # an item replaces the default


def test_param_items_reach_the_query_string(http2bin_tls: Http2binServer) -> None:
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        "GET",
        http2bin_tls.url("/get?fixed=1"),
        "search==hyper",
        "q==a b&c",
    )
    assert result.returncode == 0, err_text(result)
    assert json.loads(result.stdout)["args"] == {"fixed": "1", "search": "hyper", "q": "a b&c"}


def test_json_body_fields(http2bin_tls: Http2binServer) -> None:
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        "POST",
        http2bin_tls.url("/post"),
        "name=Hyper",
        "language=Python",
    )
    assert result.returncode == 0, err_text(result)
    echoed = json.loads(result.stdout)
    assert echoed["json"] == {"name": "Hyper", "language": "Python"}
    assert echoed["headers"]["Content-Type"] == "application/json"
    assert echoed["headers"]["Accept"] == "application/json"


def test_raw_json_fields_and_default_post(http2bin_tls: Http2binServer) -> None:
    # No METHOD: the body makes it POST (/post answers 405 to anything else).
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/post"),
        "count:=3",
        "flags:=[1,2]",
        "ok:=true",
        'meta:={"a": null}',
    )
    assert result.returncode == 0, err_text(result)
    assert json.loads(result.stdout)["json"] == {
        "count": 3,
        "flags": [1, 2],
        "ok": True,
        "meta": {"a": None},
    }


def test_h2_prior_knowledge_nghttpd(nghttpd_h2c: NghttpdServer) -> None:
    result = run_cli("--h2", nghttpd_h2c.url("/1k.bin"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")
    assert sha256(result.stdout) == nghttpd_h2c.files["1k.bin"]


def test_h2_prior_knowledge_http2bin_without_scheme(http2bin_plain: Http2binServer) -> None:
    result = run_cli("--h2", f"{http2bin_plain.authority}/get")
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")
    body = json.loads(result.stdout)
    assert body["url"] == f"http://{http2bin_plain.authority}/get"
    assert "Upgrade" not in body["headers"]  # prior knowledge: no h2c upgrade asked


def test_insecure_skips_verification_with_a_warning(http2bin_tls: Http2binServer) -> None:
    # No --cacert: the test CA is not trusted.
    result = run_cli("-k", http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    assert json.loads(result.stdout)["url"].endswith("/get")
    stderr = err_text(result).splitlines()
    assert stderr[0].startswith("hyper: warning:")
    assert "HTTP/2 200" in stderr


def test_untrusted_certificate_fails(http2bin_tls: Http2binServer) -> None:
    result = run_cli(http2bin_tls.url("/get"))
    line = assert_one_line_error(result, 1)
    assert "certificate" in line
    assert result.stdout == b""


def test_output_file_is_byte_exact_without_bar(nghttpd_tls: NghttpdServer, tmp_path: Path) -> None:
    assert nghttpd_tls.ca_cert_path is not None
    target = tmp_path / "out.bin"
    result = run_cli(
        "--cacert", nghttpd_tls.ca_cert_path, "-o", target, nghttpd_tls.url("/1m.bin")
    )
    assert result.returncode == 0, err_text(result)
    assert sha256(target.read_bytes()) == nghttpd_tls.files["1m.bin"]
    assert result.stdout == b""
    assert b"\r" not in result.stderr  # not a terminal: no progress bar
    assert f"saved {1024 * 1024} bytes" in err_text(result).splitlines()[-1]


def test_binary_body_to_stdout(nghttpd_tls: NghttpdServer) -> None:
    assert nghttpd_tls.ca_cert_path is not None
    result = run_cli("--cacert", nghttpd_tls.ca_cert_path, nghttpd_tls.url("/64k.bin"))
    assert result.returncode == 0, err_text(result)
    assert len(result.stdout) == 64 * 1024
    assert sha256(result.stdout) == nghttpd_tls.files["64k.bin"]


def test_verbose_prints_both_heads_on_stdout(http2bin_tls: Http2binServer) -> None:
    result = run_cli("-v", "--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    head, _, body = result.stdout.decode().partition("\n< \n")  # an empty "< " line ends it
    lines = head.splitlines()
    assert lines[0] == "> GET /get HTTP/2"
    assert f"> Host: {http2bin_tls.authority}" in lines
    assert "< HTTP/2 200" in lines
    assert "> " in lines  # the empty line that ends the request head
    assert json.loads(body)["url"].endswith("/get")
    assert "HTTP/2 200" not in err_text(result)


def test_http11_forced_over_tls(http2bin_tls: Http2binServer) -> None:
    # The server offers HTTP/2 in ALPN: --http1.1 offers only http/1.1.
    result = run_cli("--http1.1", "--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/1.1 200")


def test_http11_forced_in_plaintext_asks_no_upgrade(http2bin_plain: Http2binServer) -> None:
    result = run_cli("--http1.1", http2bin_plain.url("/headers"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/1.1 200")
    assert "Upgrade" not in json.loads(result.stdout)["headers"]


def test_http2_forced_over_tls(nginx_h2_tls: NginxServer) -> None:
    assert nginx_h2_tls.ca_cert_path is not None
    url = f"https://{nginx_h2_tls.authority}/index.html"
    result = run_cli("--http2", "--cacert", nginx_h2_tls.ca_cert_path, url)
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")
    assert result.stdout == (nginx_h2_tls.docroot / "index.html").read_bytes()


def test_http11_and_http2_exclude_each_other() -> None:
    result = run_cli("--http1.1", "--http2", "127.0.0.1:9/")
    assert result.returncode == 2
    assert "not allowed with argument" in err_text(result)


def test_https_to_a_plaintext_port_says_so(http2bin_plain: Http2binServer) -> None:
    result = run_cli(f"https://{http2bin_plain.authority}/get")
    line = assert_one_line_error(result, 1)
    assert "does not speak TLS on this port" in line
    assert "plain HTTP ('HTTP/1.1 400" in line  # what the server answered the ClientHello
    assert "WRONG_VERSION_NUMBER" not in line


def test_plaintext_port_error_comes_from_the_library(
    http2bin_plain: Http2binServer, scripted_raw_server: Callable[..., ScriptedRawServer]
) -> None:
    # Every hyper connection gets the message, not only the tool.
    conn = hyper.HTTPConnection("127.0.0.1", http2bin_plain.port, secure=True, timeout=5)
    with conn, pytest.raises(TLSError, match="does not speak TLS on this port: it answered"):
        conn.request("GET", "/")

    def ssh_banner(sock: socket.socket) -> None:
        sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")  # before the ClientHello arrives, as sshd does
        sock.recv(65536)

    with scripted_raw_server(ssh_banner) as server:
        result = run_cli(f"https://127.0.0.1:{server.port}/")
    line = assert_one_line_error(result, 1)
    assert line.endswith(
        "does not speak TLS on this port: its first bytes, 'SSH-2.0-OpenSSH_', "
        "are not a TLS record"
    )


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli(f"127.0.0.1:{port}/")
    line = assert_one_line_error(result, 1)
    assert "cannot connect" in line


def test_read_timeout() -> None:
    with IdleListener() as listener:  # the kernel completes the handshake; nobody answers
        result = run_cli("--timeout", "0.5", f"127.0.0.1:{listener.port}/")
    line = assert_one_line_error(result, 1)
    assert "timed out" in line


def test_interrupt_exits_130() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            hyper_cmd(f"127.0.0.1:{port}/"),
            env=process_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            conn, _ = listener.accept()  # the tool is connected and waits for an answer
            with conn:
                conn.recv(1)  # and has sent its request
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.decode() == "hyper: interrupted\n"


def test_debug_shows_traceback_on_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("--debug", f"127.0.0.1:{port}/")
    assert result.returncode == 1
    stderr = err_text(result)
    assert "Traceback" in stderr
    assert stderr.splitlines()[-1].startswith("hyper: error: cannot connect")


def test_invalid_raw_json_is_a_usage_error() -> None:
    # Rejected before any connection is attempted: no server needed.
    result = run_cli("127.0.0.1:9/post", "count:=three")
    assert result.returncode == 2
    stderr = err_text(result)
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("hyper: error: invalid JSON in request item")


def test_unknown_item_and_scheme_are_usage_errors() -> None:
    assert run_cli("127.0.0.1:9/", "oops").returncode == 2
    result = run_cli("ftp://127.0.0.1/")
    assert result.returncode == 2
    assert "unsupported URL scheme 'ftp'" in err_text(result)


def test_no_arguments_asks_for_a_url() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert err_text(result).splitlines() == [
        "usage: hyper [OPTIONS] [METHOD] URL [REQUEST_ITEM ...]",
        "hyper: error: a URL is required (see hyper --help)",
    ]
    assert result.stdout == b""


def test_unknown_option_is_a_usage_error() -> None:
    result = run_cli("--no-such-option", "127.0.0.1:9/")
    assert result.returncode == 2
    assert err_text(result).splitlines()[-1].startswith("hyper: error: unrecognized arguments")


def test_output_file_that_cannot_be_created_fails_before_sending(
    listener: IdleListener, tmp_path: Path
) -> None:
    port = listener.port
    missing = tmp_path / "no-such-dir" / "out.bin"
    result = run_cli("-o", missing, f"127.0.0.1:{port}/")
    line = assert_one_line_error(result, 2)
    assert line == (
        f"hyper: error: cannot write the output file {str(missing)!r}: No such file or directory"
    )
    listener.assert_nothing_sent()


def test_output_file_is_left_alone_when_the_request_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"keep me")
    created = tmp_path / "created.bin"
    for path in (existing, created):
        assert_one_line_error(run_cli("-o", path, f"127.0.0.1:{port}/"), 1)
    assert existing.read_bytes() == b"keep me"  # not truncated: no body came
    assert not created.exists()  # made for the body that never came, and removed


def test_output_file_replaces_a_longer_file(
    http2bin_plain: Http2binServer, tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"x" * 100_000)
    result = run_cli("-o", target, http2bin_plain.url("/get"))
    assert result.returncode == 0, err_text(result)
    assert json.loads(target.read_bytes())["url"].endswith("/get")


def test_missing_cacert_is_one_line(listener: IdleListener, tmp_path: Path) -> None:
    port = listener.port
    result = run_cli("--cacert", tmp_path / "nope.pem", f"https://127.0.0.1:{port}/")
    line = assert_one_line_error(result, 2)
    assert "nope.pem" in line
    listener.assert_nothing_sent()


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode() == f"hyper {hyper.__version__}\n"


def test_check_status(http2bin_tls: Http2binServer) -> None:
    url = http2bin_tls.url("/status/418")
    plain = run_cli("--cacert", http2bin_tls.ca_cert_path, url)
    assert plain.returncode == 0  # an HTTP error is still a response
    assert b"teapot" in plain.stdout
    assert err_text(plain).startswith("HTTP/2 418")
    checked = run_cli("--check-status", "--cacert", http2bin_tls.ca_cert_path, url)
    assert checked.returncode == 4
    assert b"teapot" in checked.stdout


def test_json_pretty_printed_on_a_terminal(http2bin_plain: Http2binServer) -> None:
    # /base64/... answers the decoded text, compact JSON, as text/html: it parses as JSON.
    url = f"{http2bin_plain.authority}/base64/eyJiIjpbMSwyXSwiYSI6dHJ1ZX0="  # {"b":[1,2],"a":true}
    status, shown, err = run_in_pty([url], "stdout")
    assert status == 0, err
    expected = '{\n  "b": [\n    1,\n    2\n  ],\n  "a": true\n}\n'
    assert shown.replace(b"\r\n", b"\n").decode() == expected


# -- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "name", "value"),
    [
        ("X-Foo:bar", "header", "X-Foo", "bar"),
        ("X-Foo:  spaced value ", "header", "X-Foo", "spaced value"),
        ("X-Empty:", "header", "X-Empty", ""),
        ("X-Eq: =a", "header", "X-Eq", "=a"),
        ("Link:<http://x/>; rel=a", "header", "Link", "<http://x/>; rel=a"),
        ("q==hyper", "param", "q", "hyper"),
        ("q===x", "param", "q", "=x"),
        ("q==a:b=c", "param", "q", "a:b=c"),
        ("name=Hyper", "field", "name", "Hyper"),
        ("url=http://x:1/?a=b", "field", "url", "http://x:1/?a=b"),
        ("empty=", "field", "empty", ""),
        ("n:=3", "json", "n", 3),
        ("f:=1.5", "json", "f", 1.5),
        ("neg:=-1", "json", "neg", -1),
        ("ok:=false", "json", "ok", False),
        ("none:=null", "json", "none", None),
        ('list:=[1, "a"]', "json", "list", [1, "a"]),
        ('obj:={"k": {"v": 1}}', "json", "obj", {"k": {"v": 1}}),
        ('s:="text"', "json", "s", "text"),
        # Escapes: a backslash makes the next separator character part of the name.
        ("a\\:b=c", "field", "a:b", "c"),
        ("a\\=b==c", "param", "a=b", "c"),
        ("a\\=\\=b=c", "field", "a==b", "c"),
        ("back\\\\slash=1", "field", "back\\slash", "1"),
        ("C\\d=1", "field", "C\\d", "1"),  # no escape: the backslash stays
    ],
)
def test_parse_item(text: str, kind: str, name: str, value: Any) -> None:
    assert items.parse_item(text) == items.RequestItem(kind, name, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nothing", "is not a request item"),
        ("a\\=b", "is not a request item"),
        ("=value", "has no name"),
        (":value", "has no name"),
        ("Bad Header:x", "invalid header name"),
        ("X-Split:a\r\nInjected: 1", "CR, LF or NUL"),
        ("n:=three", "invalid JSON"),
        ("n:=[1,", "invalid JSON"),
        ("n:=", "invalid JSON"),
    ],
)
def test_parse_item_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        items.parse_item(text)


def test_parse_items_groups_by_kind() -> None:
    parsed = items.parse_items(["A:1", "p==1", "x=1", "A:2", "p==2", "x=2", "y:=[]"])
    assert parsed.headers == [("A", "1"), ("A", "2")]
    assert parsed.params == [("p", "1"), ("p", "2")]
    assert [(f.kind, f.name, f.value) for f in parsed.fields] == [
        ("field", "x", "1"),
        ("field", "x", "2"),
        ("json", "y", []),
    ]
    assert not items.parse_items(["A:1"]).has_body
    body = items.parse_items(["@data.bin", "A:1"])
    assert body.body_file == "data.bin"
    assert body.has_body and not body.fields


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["@a", "@b"], "only one @file body"),
        (["@a", "x=1"], "cannot have fields"),
        (["x=1", "f@a"], None),  # an upload beside a field: a --form body, checked later
    ],
)
def test_parse_items_body_conflicts(texts: list[str], message: str | None) -> None:
    if message is None:
        assert len(items.parse_items(texts).fields) == 2
        return
    with pytest.raises(UsageError, match=message):
        items.parse_items(texts)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["localhost/get"], (None, "localhost/get", [])),
        (["GET", "localhost/get"], ("GET", "localhost/get", [])),
        (["DELETE", "h/x", "a:b"], ("DELETE", "h/x", ["a:b"])),
        (["M-SEARCH", "h"], ("M-SEARCH", "h", [])),
        (["h/x", "a=b", "c:d"], (None, "h/x", ["a=b", "c:d"])),
        (["GET"], (None, "GET", [])),  # a lone word is the URL
        (["get", "h"], (None, "get", ["h"])),  # lower case is not a method
        (["LOCALHOST:80/x", "a=b"], (None, "LOCALHOST:80/x", ["a=b"])),
    ],
)
def test_split_words(words: list[str], expected: tuple[Any, ...]) -> None:
    assert items.split_words(words) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/get?a=1", request.Target(True, "example.com", 443, "/get?a=1")),
        ("http://example.com", request.Target(False, "example.com", 80, "/")),
        ("HTTPS://Example.COM:8443", request.Target(True, "example.com", 8443, "/")),
        ("localhost:8000/x", request.Target(False, "localhost", 8000, "/x")),
        ("localhost", request.Target(False, "localhost", 80, "/")),
        ("https://[::1]:8443/p", request.Target(True, "::1", 8443, "/p")),
        ("h/a b?q=x y#frag", request.Target(False, "h", 80, "/a%20b?q=x%20y")),
        ("h/%41?x=%2F", request.Target(False, "h", 80, "/%41?x=%2F")),
    ],
)
def test_parse_url(url: str, expected: request.Target) -> None:
    assert request.parse_url(url) == expected


def test_parse_url_appends_params() -> None:
    target = request.parse_url("h/get?a=1", [("b", "x y"), ("c", "&=/")])
    assert target.path == "/get?a=1&b=x%20y&c=%26%3D%2F"
    assert request.parse_url("h", [("q", "1")]).path == "/?q=1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://h/", "unsupported URL scheme"),
        ("http://user:pw@h/", "credentials"),
        ("http://h:99999/", "invalid port"),
        ("http://h:port/", "invalid port"),
        ("http:///path", "no host"),
    ],
)
def test_parse_url_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        request.parse_url(url)


def test_target_authority() -> None:
    assert request.Target(True, "h", 443, "/").authority == "h"
    assert request.Target(False, "h", 8080, "/").authority == "h:8080"
    assert request.Target(True, "::1", 8443, "/").authority == "[::1]:8443"


def test_prepare_request_defaults() -> None:
    get = request.prepare_request(None, "h:81/x", ["X-A:1", "q==2"])
    assert get.method == "GET"
    assert get.body is None
    assert get.target.path == "/x?q=2"
    names = [name for name, _ in get.headers]
    assert names[0] == "Host"
    assert "Content-Type" not in names
    assert dict(get.headers)["Host"] == "h:81"
    assert dict(get.headers)["X-A"] == "1"

    post = request.prepare_request(None, "h", ["n:=1", "Accept:text/plain"])
    assert post.method == "POST"
    assert post.body is not None and post.body.data is not None
    assert json.loads(post.body.data) == {"n": 1}
    headers = dict(post.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(post.body.data))
    assert headers["Accept"] == "text/plain"  # given: replaces the default
    assert [name.lower() for name, _ in post.headers].count("accept") == 1

    put = request.prepare_request("PUT", "h", ["a=b", "content-type:application/vnd+json"])
    assert put.method == "PUT"
    assert dict(put.headers)["content-type"] == "application/vnd+json"
    assert "Content-Type" not in dict(put.headers)


def test_prepare_request_reads_stdin_only_without_body_items() -> None:
    calls: list[int] = []

    def stdin() -> bytes:
        calls.append(1)
        return b'{"piped": true}'

    piped = request.prepare_request(None, "h/post", [], stdin=stdin)
    assert piped.method == "POST"
    assert piped.body is not None and piped.body.data == b'{"piped": true}'
    assert dict(piped.headers)["Content-Type"] == "application/json"
    assert dict(piped.headers)["Accept"] == "*/*"
    form = request.prepare_request("PUT", "h", [], form=True, stdin=stdin)
    assert dict(form.headers)["Content-Type"] == "application/x-www-form-urlencoded"
    assert len(calls) == 2
    request.prepare_request(None, "h", ["a=1"], stdin=stdin)
    assert len(calls) == 2  # items make the body: standard input is left alone
    empty = request.prepare_request(None, "h", [], stdin=lambda: b"")
    assert empty.method == "GET" and empty.body is None


class FakeOut(io.BytesIO):
    """A binary stream that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def pieces(data: bytes, size: int = 3) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    ("data", "pretty", "json_type", "expected"),
    [
        (b'{"b":1,"a":[2]}', True, False, b'{\n  "b": 1,\n  "a": [\n    2\n  ]\n}\n'),
        (b'{"b":1}', False, True, b'{"b":1}'),  # not a terminal: raw
        (b"42", True, True, b"42\n"),  # declared JSON: any JSON value
        (b"42", True, False, b"42"),  # undeclared: only objects and arrays are sniffed
        (b"{not json", True, True, b"{not json"),
        (b'{"s": "\xc3\xa9"}', True, True, '{\n  "s": "\u00e9"\n}\n'.encode()),
        (b"", True, True, b""),
        (bytes(range(256)), True, False, bytes(range(256))),
    ],
)
def test_write_body(data: bytes, pretty: bool, json_type: bool, expected: bytes) -> None:
    out = FakeOut(pretty)
    assert output.write_body(pieces(data), out, pretty, json_type) == len(data)
    assert out.getvalue() == expected


def test_write_body_streams_large_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "JSON_SNIFF_LIMIT", 10)
    data = b"[" + b"1," * 20 + b"1]"
    out = FakeOut(True)
    assert output.write_body(pieces(data), out, True, True) == len(data)
    assert out.getvalue() == data  # too large to sniff: written as it came


@pytest.mark.parametrize(
    ("status", "check", "followed", "expected"),
    [
        (200, True, False, 0),
        (302, False, False, 0),
        (302, True, False, 3),  # a redirect not followed
        (304, True, True, 0),  # followed, yet final: not an error
        (404, False, False, 0),
        (404, True, False, 4),
        (503, True, True, 5),
    ],
)
def test_exit_status(status: int, check: bool, followed: bool, expected: int) -> None:
    assert exit_status(status, check, followed) == expected
