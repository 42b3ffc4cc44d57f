"""HTTPie with hyper's transport plugin (:mod:`hyper.contrib.httpie`), end to end.

Apart from two in-process checks of the plugin class, the tests run the real ``http``
command (``python -m httpie``) in a subprocess, against the local test servers, with an
isolated HTTPie configuration directory and no proxy or CA-bundle variables inherited from
the environment. HTTPie on its own only speaks HTTP/1.1, so an HTTP/2 status line in its
output proves the request went through hyper.

HTTPie 3.2.4 prints HTTP/2 responses as ``HTTP/2.0 200 OK``: it maps the ``version`` 20 of
``raw._original_response`` to ``"2.0"`` (``httpie.models.HTTPResponse.version``). The
pattern below also accepts ``HTTP/2``, should a later HTTPie print that.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpie")

from httpie.client import build_requests_session
from httpie.plugins import TransportPlugin
from httpie.plugins.registry import plugin_manager

from hyper.contrib import HTTP20Adapter
from hyper.contrib.httpie import HTTP2TransportPlugin

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Upper bound of one ``http`` run (it takes well under a second here).
HTTP_TIMEOUT = 20.0
#: A response status line as HTTPie prints it for HTTP/2 (group 1: the status code).
H2_STATUS = re.compile(r"^HTTP/2(?:\.0)? (\d{3}) ", re.MULTILINE)
#: Any response status line (group 1: the version, group 2: the status code).
ANY_STATUS = re.compile(r"^HTTP/(\S+) (\d{3}) ", re.MULTILINE)
#: Environment variables that would change where HTTPie connects or what it trusts.
_ENV_DROPPED = {
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "requests_ca_bundle",
    "curl_ca_bundle",
    "ssl_cert_file",
    "ssl_cert_dir",
    "httpie_config_dir",
}

HTTPRunner = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture
def http(tmp_path: Path) -> HTTPRunner:
    """Run ``http ARGS...`` and return the completed process (stdout/stderr as bytes).

    ``stdin`` (bytes) becomes the request body; without it ``--ignore-stdin`` is passed.
    """
    config_dir = tmp_path / "httpie-config"
    config_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k.lower() not in _ENV_DROPPED}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["HTTPIE_CONFIG_DIR"] = str(config_dir)

    def run(
        *args: str, stdin: bytes | None = None, module: str = "httpie"
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [sys.executable, "-m", module]
        if stdin is None and module == "httpie":
            argv.append("--ignore-stdin")
        argv.extend(args)
        return subprocess.run(
            argv,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=HTTP_TIMEOUT,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    return run


def _text(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The process's stdout as text, with plain newlines."""
    return proc.stdout.decode("utf-8", "replace").replace("\r\n", "\n")


def _ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    """Assert ``http`` succeeded and return its stdout (text)."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return _text(proc)


def _response(output: str) -> tuple[str, str]:
    """Split ``http`` output at the first response status line: (response head, body)."""
    match = ANY_STATUS.search(output)
    assert match, output
    head, _, body = output[match.start() :].partition("\n\n")
    return head, body


def _header(head: str, name: str) -> str | None:
    """The value of header ``name`` (any case) in a printed response head."""
    for line in head.splitlines()[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# -- the plugin ----------------------------------------------------------------------------------


def test_plugin_class_and_adapter() -> None:
    plugin = HTTP2TransportPlugin()
    assert isinstance(plugin, TransportPlugin)
    assert plugin.prefix == "https://"
    assert "hyper" in plugin.name
    adapter = plugin.get_adapter()
    try:
        assert isinstance(adapter, HTTP20Adapter)
    finally:
        adapter.close()


def test_httpie_mounts_the_adapter_on_https_only() -> None:
    plugin_manager.register(HTTP2TransportPlugin)
    try:
        session = build_requests_session(verify=True)
    finally:
        plugin_manager.unregister(HTTP2TransportPlugin)
    try:
        assert isinstance(session.get_adapter("https://example.com/"), HTTP20Adapter)
        assert not isinstance(session.get_adapter("http://example.com/"), HTTP20Adapter)
    finally:
        session.close()


def test_plugin_is_installed(http: HTTPRunner) -> None:
    listing = http("cli", "plugins", "list", module="httpie.manager")
    text = _ok(listing)
    assert "hyper (httpie.plugins.transport.v1)" in text, text

    debug = http("--debug", "--offline", "https://example.invalid/")
    assert debug.returncode == 0, debug.stderr[-2000:]
    assert b"hyper.contrib.httpie.HTTP2TransportPlugin" in debug.stderr


# -- HTTP/2 and the fallback -------------------------------------------------------------------


def test_get_over_http2(http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path) -> None:
    url = f"https://localhost:{http2bin_tls.port}/get"
    output = _ok(http("--print=hHbB", f"--verify={ca_cert_path}", url))
    # The request as HTTPie prints it (it always writes HTTP/1.1 there).
    assert output.startswith("GET /get HTTP/1.1\n"), output
    match = H2_STATUS.search(output)
    assert match and match.group(1) == "200", output
    head, body = _response(output)
    assert _header(head, "content-type") == "application/json"
    data = json.loads(body)
    assert data["url"] == url
    assert data["headers"]["User-Agent"].startswith("HTTPie/")
    assert data["headers"]["Host"] == f"localhost:{http2bin_tls.port}"


def test_http11_only_server(http: HTTPRunner, nginx_h11_tls: Any, ca_cert_path: Path) -> None:
    output = _ok(http("--print=hb", f"--verify={ca_cert_path}", nginx_h11_tls.url("/")))
    head, body = _response(output)
    assert head.startswith("HTTP/1.1 200 OK\n"), head
    assert body.encode() == nginx_h11_tls.read("index.html")


def test_plain_http_keeps_httpie_transport(http: HTTPRunner, http2bin_plain: Any) -> None:
    # hypercorn accepts an h2c upgrade here: hyper would ask for it and get HTTP/2, HTTPie's
    # own transport does not ask. (hypercorn's HTTP/1.1 sends no reason phrase.)
    output = _ok(http("--print=h", http2bin_plain.url("/get")))
    head, _ = _response(output)
    assert re.match(r"HTTP/1\.1 200\b", head), head
    assert _header(head, "server") == "hypercorn-h11"


def test_redirects_followed_on_one_connection(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path
) -> None:
    output = _ok(
        http(
            "--print=h",
            "--follow",
            "--all",
            f"--verify={ca_cert_path}",
            http2bin_tls.url("/redirect/2"),
        )
    )
    assert [int(code) for code in H2_STATUS.findall(output)] == [302, 302, 200], output


def test_head_request(http: HTTPRunner, nghttpd_tls: Any, ca_cert_path: Path) -> None:
    output = _ok(
        http("--print=hb", f"--verify={ca_cert_path}", "HEAD", nghttpd_tls.url("/1k.bin"))
    )
    head, body = _response(output)
    assert H2_STATUS.match(head), head
    assert _header(head, "content-length") == "1024"
    assert body.strip() == ""


def test_error_status_with_check_status(
    http: HTTPRunner, nghttpd_tls: Any, ca_cert_path: Path
) -> None:
    proc = http(
        "--print=h", "--check-status", f"--verify={ca_cert_path}", nghttpd_tls.url("/nope")
    )
    assert proc.returncode == 4, (proc.returncode, proc.stderr)  # ExitStatus.ERROR_HTTP_4XX
    match = H2_STATUS.search(_text(proc))
    assert match and match.group(1) == "404"


# -- request data --------------------------------------------------------------------------------


def test_json_items_and_headers_reach_the_server(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path
) -> None:
    output = _ok(
        http(
            "--print=hb",
            f"--verify={ca_cert_path}",
            http2bin_tls.url("/post"),
            "name=value",
            "count:=3",
            "X-Test:1",
            "q==search",
        )
    )
    head, body = _response(output)
    assert H2_STATUS.match(head), head
    data = json.loads(body)
    assert data["json"] == {"name": "value", "count": 3}
    assert data["args"] == {"q": "search"}
    assert data["headers"]["X-Test"] == "1"
    assert data["headers"]["Content-Type"] == "application/json"


def test_form_and_repeated_headers(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path
) -> None:
    output = _ok(
        http(
            "--print=b",
            "--form",
            f"--verify={ca_cert_path}",
            "POST",
            http2bin_tls.url("/post"),
            "a=1",
            "X-Multi:one",
            "X-Multi:two",
            "X-Empty;",
        )
    )
    data = json.loads(output)
    assert data["form"] == {"a": "1"}
    assert data["headers"]["X-Empty"] == ""
    assert re.fullmatch(r"one, ?two", data["headers"]["X-Multi"]), data["headers"]


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_stdin_body_upload(
    http: HTTPRunner, nghttpd_tls: Any, ca_cert_path: Path, chunked: bool
) -> None:
    payload = bytes(range(256)) * 1200  # 300 KiB: several DATA frames and windows
    args = ["--print=b", f"--verify={ca_cert_path}", "POST", nghttpd_tls.url("/echo")]
    if chunked:
        args.insert(0, "--chunked")
    proc = http(*args, stdin=payload)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_unset_default_header(http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path) -> None:
    output = _ok(
        http("--print=b", f"--verify={ca_cert_path}", http2bin_tls.url("/headers"), "User-Agent:")
    )
    assert "User-Agent" not in json.loads(output)["headers"]


# -- responses -----------------------------------------------------------------------------------


def test_download_writes_exact_bytes(
    http: HTTPRunner, nghttpd_tls: Any, ca_cert_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "1m.bin"
    proc = http("-d", "-o", str(target), f"--verify={ca_cert_path}", nghttpd_tls.url("/1m.bin"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == nghttpd_tls.files["1m.bin"]


def test_download_resumes(
    http: HTTPRunner, nginx_h2_tls: Any, ca_cert_path: Path, tmp_path: Path
) -> None:
    data = nginx_h2_tls.read("1m.bin")
    target = tmp_path / "partial.bin"
    target.write_bytes(data[:300_000])
    url = nginx_h2_tls.url("/1m.bin")
    proc = http("-d", "-c", "-o", str(target), f"--verify={ca_cert_path}", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert target.read_bytes() == data
    # HTTPie asked for the rest only (Range), over HTTP/2, and got it (206).
    assert f'"GET /1m.bin HTTP/2.0" 206 {len(data) - 300_000}' in nginx_h2_tls.access_log.read()


def test_stream_prints_lines(http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path) -> None:
    output = _ok(
        http("--stream", "--print=b", f"--verify={ca_cert_path}", http2bin_tls.url("/stream/5"))
    )
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert [line["id"] for line in lines] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("path", "flag"), [("/gzip", "gzipped"), ("/brotli", "brotli")])
def test_compressed_bodies_are_decoded(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path, path: str, flag: str
) -> None:
    output = _ok(http("--print=hb", f"--verify={ca_cert_path}", http2bin_tls.url(path)))
    head, body = _response(output)
    assert H2_STATUS.match(head), head
    assert _header(head, "content-encoding") in {"gzip", "deflate", "br"}
    assert json.loads(body)[flag] is True


def test_session_keeps_cookies(http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path) -> None:
    verify = f"--verify={ca_cert_path}"
    _ok(http("--print=h", "--session=./s.json", verify, http2bin_tls.url("/cookies/set?a=1&b=2")))
    output = _ok(http("--print=b", "--session=./s.json", verify, http2bin_tls.url("/cookies")))
    assert json.loads(output)["cookies"] == {"a": "1", "b": "2"}


# -- TLS, proxies, timeouts ---------------------------------------------------------------------


def test_untrusted_certificate_is_refused(http: HTTPRunner, http2bin_tls: Any) -> None:
    # The test CA is not in the default trust store.
    proc = http("--print=h", http2bin_tls.url("/get"))
    assert proc.returncode != 0
    assert b"certificate" in proc.stderr.lower(), proc.stderr[-2000:]
    assert proc.stdout == b""


@pytest.mark.parametrize("verify", ["ca", "no"])
def test_verify_option(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path, verify: str
) -> None:
    value = str(ca_cert_path) if verify == "ca" else "no"
    output = _ok(http("--print=h", f"--verify={value}", http2bin_tls.url("/get")))
    match = H2_STATUS.search(output)
    assert match and match.group(1) == "200", output


def test_client_certificate_file(
    http: HTTPRunner,
    http2bin_tls: Any,
    ca_cert_path: Path,
    server_cert_path: Path,
    server_key_path: Path,
    tmp_path: Path,
) -> None:
    # The server asks for no client certificate: this checks that HTTPie's --cert (one PEM
    # file with the key and the chain) loads into hyper's TLS context.
    combined = tmp_path / "client.pem"
    combined.write_bytes(server_key_path.read_bytes() + server_cert_path.read_bytes())
    output = _ok(
        http(
            "--print=h", f"--cert={combined}", f"--verify={ca_cert_path}", http2bin_tls.url("/get")
        )
    )
    assert H2_STATUS.search(output), output

    # hyper's own error for a file it cannot load proves the option reached it.
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    proc = http(
        "--print=h", f"--cert={broken}", f"--verify={ca_cert_path}", http2bin_tls.url("/get")
    )
    assert proc.returncode != 0
    assert b"cannot load client certificate" in proc.stderr, proc.stderr[-2000:]


def test_client_certificate_and_key_files(
    http: HTTPRunner,
    http2bin_tls: Any,
    ca_cert_path: Path,
    server_cert_path: Path,
    server_key_path: Path,
) -> None:
    output = _ok(
        http(
            "--print=h",
            f"--cert={server_cert_path}",
            f"--cert-key={server_key_path}",
            f"--verify={ca_cert_path}",
            http2bin_tls.url("/get"),
        )
    )
    assert H2_STATUS.search(output), output


def test_through_a_proxy(
    http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path, tinyproxy: Any
) -> None:
    output = _ok(
        http(
            "--print=h",
            f"--proxy=https:{tinyproxy.url}",
            f"--verify={ca_cert_path}",
            http2bin_tls.url("/get"),
        )
    )
    match = H2_STATUS.search(output)
    assert match and match.group(1) == "200", output
    assert f"CONNECT {http2bin_tls.authority}" in Path(tinyproxy.log_path).read_text()


def test_timeout(http: HTTPRunner, http2bin_tls: Any, ca_cert_path: Path) -> None:
    proc = http("--timeout=0.5", f"--verify={ca_cert_path}", http2bin_tls.url("/delay/5"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # ExitStatus.ERROR_TIMEOUT
    assert b"timed out" in proc.stderr
