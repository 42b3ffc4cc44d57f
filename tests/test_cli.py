"""The ``hyper`` command-line tool: run as a subprocess against the local servers, plus unit
tests of its pure functions (item parsing, method and URL detection, output helpers)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hyper
from hyper import cli
from tests.support.http2bin import Http2binServer
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer

REPO_ROOT = Path(__file__).resolve().parent.parent
#: No single run of the tool may take longer than this.
TIMEOUT = 15.0


def _env() -> dict[str, str]:
    """The environment of the subprocess: the working tree's hyper, no key logging."""
    env = {k: v for k, v in os.environ.items() if k != "SSLKEYLOGFILE"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def hyper_cmd(*args: object) -> list[str]:
    """The command line running ``hyper`` with ``args``."""
    return [sys.executable, "-m", "hyper", *map(str, args)]


def run_cli(*args: object) -> subprocess.CompletedProcess[bytes]:
    """Run ``hyper`` with ``args``, stdout and stderr captured (pipes, not terminals)."""
    return subprocess.run(
        hyper_cmd(*args), capture_output=True, env=_env(), timeout=TIMEOUT, check=False
    )


def err_text(result: subprocess.CompletedProcess[bytes]) -> str:
    """The decoded stderr of a run."""
    return result.stderr.decode("utf-8", "replace")


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], status: int) -> str:
    """The run failed with ``status`` and one ``hyper: error:`` line, no traceback."""
    stderr = err_text(result)
    assert result.returncode == status, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hyper: error: ")
    return lines[0]


def sha256(data: bytes) -> str:
    """The hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def run_in_pty(args: list[object], tty: str) -> tuple[int, bytes, bytes]:
    """Run ``hyper`` with stdout or stderr (``tty``) on a pseudo-terminal.

    :returns: the exit status, what the terminal showed, and the other stream.
    """
    master, slave = pty.openpty()
    streams: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, tty: slave}
    proc = subprocess.Popen(hyper_cmd(*args), env=_env(), **streams)
    os.close(slave)
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    reader.join(TIMEOUT)
    os.close(master)
    return proc.returncode, b"".join(shown), out if tty == "stderr" else err


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


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli(f"127.0.0.1:{port}/")
    line = assert_one_line_error(result, 1)
    assert "cannot connect" in line


def test_read_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel completes the handshake; nobody ever answers
        port = listener.getsockname()[1]
        result = run_cli("--timeout", "0.5", f"127.0.0.1:{port}/")
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
            env=_env(),
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


def test_debug_logs_frames(http2bin_tls: Http2binServer) -> None:
    result = run_cli("--debug", "--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    stderr = err_text(result)
    assert "HeadersFrame" in stderr
    assert "SettingsFrame" in stderr


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


def test_progress_bar_on_a_terminal(nghttpd_h2c: NghttpdServer, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    status, shown, out = run_in_pty(["--h2", "-o", target, nghttpd_h2c.url("/1m.bin")], "stderr")
    assert status == 0, shown
    assert out == b""
    assert sha256(target.read_bytes()) == nghttpd_h2c.files["1m.bin"]
    assert b"\r" + b"100% [" + b"#" * 30 + b"]" in shown
    assert b"hyper: saved 1048576 bytes (1.0 MiB)" in shown


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
    assert cli.parse_item(text) == cli.RequestItem(kind, name, value)  # type: ignore[arg-type]


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
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_item(text)


def test_parse_items_groups_by_kind() -> None:
    parsed = cli.parse_items(["A:1", "p==1", "x=1", "A:2", "p==2", "x=2", "y:=[]"])
    assert parsed.headers == [("A", "1"), ("A", "2")]
    assert parsed.params == [("p", "1"), ("p", "2")]
    assert parsed.data == {"x": "2", "y": []}
    assert cli.parse_items(["A:1"]).data is None


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
    assert cli.split_words(words) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/get?a=1", cli.Target(True, "example.com", 443, "/get?a=1")),
        ("http://example.com", cli.Target(False, "example.com", 80, "/")),
        ("HTTPS://Example.COM:8443", cli.Target(True, "example.com", 8443, "/")),
        ("localhost:8000/x", cli.Target(False, "localhost", 8000, "/x")),
        ("localhost", cli.Target(False, "localhost", 80, "/")),
        ("https://[::1]:8443/p", cli.Target(True, "::1", 8443, "/p")),
        ("h/a b?q=x y#frag", cli.Target(False, "h", 80, "/a%20b?q=x%20y")),
        ("h/%41?x=%2F", cli.Target(False, "h", 80, "/%41?x=%2F")),
    ],
)
def test_parse_url(url: str, expected: cli.Target) -> None:
    assert cli.parse_url(url) == expected


def test_parse_url_appends_params() -> None:
    target = cli.parse_url("h/get?a=1", [("b", "x y"), ("c", "&=/")])
    assert target.path == "/get?a=1&b=x%20y&c=%26%3D%2F"
    assert cli.parse_url("h", [("q", "1")]).path == "/?q=1"


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
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_url(url)


def test_target_authority() -> None:
    assert cli.Target(True, "h", 443, "/").authority == "h"
    assert cli.Target(False, "h", 8080, "/").authority == "h:8080"
    assert cli.Target(True, "::1", 8443, "/").authority == "[::1]:8443"


def test_prepare_request_defaults() -> None:
    get = cli.prepare_request(None, "h:81/x", ["X-A:1", "q==2"])
    assert get.method == "GET"
    assert get.body is None
    assert get.target.path == "/x?q=2"
    names = [name for name, _ in get.headers]
    assert names[0] == "Host"
    assert "Content-Type" not in names
    assert dict(get.headers)["Host"] == "h:81"
    assert dict(get.headers)["X-A"] == "1"

    post = cli.prepare_request(None, "h", ["n:=1", "Accept:text/plain"])
    assert post.method == "POST"
    assert post.body is not None and json.loads(post.body) == {"n": 1}
    headers = dict(post.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(post.body))
    assert headers["Accept"] == "text/plain"  # given: replaces the default
    assert [name.lower() for name, _ in post.headers].count("accept") == 1

    put = cli.prepare_request("PUT", "h", ["a=b", "content-type:application/vnd+json"])
    assert put.method == "PUT"
    assert dict(put.headers)["content-type"] == "application/vnd+json"
    assert "Content-Type" not in dict(put.headers)


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
    assert cli.write_body(pieces(data), out, pretty, json_type) == len(data)
    assert out.getvalue() == expected


def test_write_body_streams_large_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "JSON_SNIFF_LIMIT", 10)
    data = b"[" + b"1," * 20 + b"1]"
    out = FakeOut(True)
    assert cli.write_body(pieces(data), out, True, True) == len(data)
    assert out.getvalue() == data  # too large to sniff: written as it came


def test_render_progress() -> None:
    assert cli.render_progress(0, 1000, width=10) == "  0% [..........] 0 B"
    assert cli.render_progress(500, 1000, width=10) == " 50% [#####.....] 500 B"
    assert cli.render_progress(2048, 2048, width=10) == "100% [##########] 2.0 KiB"
    assert cli.render_progress(3 * 1024 * 1024, None) == "3.0 MiB received"


class FakeTerminal(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    progress = cli.Progress(quiet, 6)
    assert list(progress.track(pieces(b"abcdef"))) == [b"abc", b"def"]
    assert progress.done == 6
    assert quiet.getvalue() == ""

    terminal = FakeTerminal()
    progress = cli.Progress(terminal, 6)
    assert b"".join(progress.track(pieces(b"abcdef"))) == b"abcdef"
    shown = terminal.getvalue()
    assert shown.startswith("\r")
    assert shown.endswith("100% [" + "#" * 30 + "] 6 B\n")


@pytest.mark.parametrize(
    ("status", "check", "expected"),
    [(200, True, 0), (302, True, 0), (404, False, 0), (404, True, 4), (503, True, 5)],
)
def test_exit_status(status: int, check: bool, expected: int) -> None:
    assert cli.exit_status(status, check) == expected
