"""The requests transport adapter (:class:`hyper.contrib.HTTP20Adapter`) driven by the real
``requests`` package against real and scripted servers.

Every test mounts the adapter on a :class:`requests.Session` exactly as a user would, so the
whole of requests runs on top of it: body preparation, cookies, redirects, auth, streaming,
``raise_for_status``, proxies from the call or from the environment.

* ``http2bin_tls`` / ``http2bin_plain`` (hypercorn + httpbin) echo requests back as JSON;
  ``nghttpd_tls`` serves files of known digest and echoes uploads byte for byte; nginx serves
  HTTP/1.1 (``nginx_h11_tls``, ``nginx_plain``) and HTTP/2 (``nginx_h2_tls``); tinyproxy is
  the proxy; scripted servers script what no real server does on demand (hang, hold a body
  back, require a client certificate).
* Sessions do not trust the environment (``trust_env = False``) unless a test says so: the
  machine's ``REQUESTS_CA_BUNDLE`` or proxy variables must not change what is tested.
* Regression tests for adapter bugs found while writing these tests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import pickle
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
import requests.exceptions
import urllib3
from urllib3.exceptions import InsecureRequestWarning

import hyper.common.sockets
from hyper.common.eyeballs import DEFAULT_POLICY, ConnectPolicy
from hyper.common.trace import ConnectRecorder
from hyper.contrib import HTTP20Adapter, HyperRawResponse
from tests.support.certs import TLSMaterial
from tests.support.dante import DanteServer
from tests.support.http2bin import Http2binServer
from tests.support.http11 import Reply as Reply11
from tests.support.http11 import Request as Request11
from tests.support.http11 import http11_responder
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer
from tests.support.scripted import (
    Reply,
    Request,
    ScriptedRawServer,
    ScriptedServer,
    ServerConnection,
    simple_responder,
)
from tests.support.tinyproxy import TinyproxyServer

pytestmark = pytest.mark.timeout(10)

#: Upper bound for anything that should be "immediate" (no timeout waited for).
FAST = 2.0


# -- helpers -----------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_session(*, trust_env: bool = False) -> requests.Session:
    """A session with one HTTP20Adapter for https:// and another for http://."""
    session = requests.Session()
    session.trust_env = trust_env
    session.mount("https://", HTTP20Adapter())
    session.mount("http://", HTTP20Adapter())
    return session


def adapter_for(session: requests.Session, url: str) -> HTTP20Adapter:
    adapter = session.get_adapter(url)
    assert isinstance(adapter, HTTP20Adapter)
    return adapter


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = make_session()
    yield s
    s.close()


@pytest.fixture
def tcp_opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection hyper opens, as (host, port), recorded by wrapping
    :func:`hyper.common.sockets.open_tcp` (used directly, and for proxy tunnels)."""
    opened: list[tuple[str, int]] = []
    lock = threading.Lock()
    real = hyper.common.sockets.open_tcp

    def counting(
        host: str,
        port: int,
        timeout: float | None,
        policy: ConnectPolicy = DEFAULT_POLICY,
        recorder: ConnectRecorder | None = None,
    ) -> socket.socket:
        with lock:
            opened.append((host, port))
        return real(host, port, timeout, policy, recorder)

    monkeypatch.setattr(hyper.common.sockets, "open_tcp", counting)
    return opened


@contextlib.contextmanager
def quick(limit: float = FAST) -> Iterator[None]:
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.2f}s (limit {limit}s)"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hang_after_request(ctx: ServerConnection) -> None:
    """HTTP/2 handler: complete the handshake, take the request, never answer."""
    ctx.handshake()
    ctx.wait_for_request()
    ctx.wait_closed(timeout=10)


def recv_until_eof(sock: socket.socket) -> None:
    """Raw handler: read whatever comes (never answer) until the client goes away."""
    sock.settimeout(10)
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


# -- GET and protocol selection ------------------------------------------------------------------


def test_get_over_tls_speaks_http2(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.get(
        http2bin_tls.url("/get?x=1&y=%C3%A9"),
        headers={"X-Custom": "custom value"},
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.reason == "OK"  # HTTP/2 has no reason phrase: the standard one is filled in
    assert r.ok
    assert r.raw.version == 20
    assert r.raw.status == 200
    assert r.raw._original_response.version == 20
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["content-type"] == "application/json"  # case-insensitive
    assert int(r.headers["Content-Length"]) == len(r.content)
    body = r.json()
    assert body["args"] == {"x": "1", "y": "é"}
    assert body["headers"]["X-Custom"] == "custom value"
    assert body["headers"]["Host"] == http2bin_tls.authority
    assert body["url"] == http2bin_tls.url("/get?x=1&y=é")
    assert r.url == http2bin_tls.url("/get?x=1&y=%C3%A9")
    assert r.request.method == "GET"
    assert r.connection is adapter_for(session, r.url)
    assert isinstance(r.raw, HyperRawResponse)
    assert r.elapsed.total_seconds() > 0


def test_mount_for_one_origin_only(
    http2bin_tls: Http2binServer, nginx_h11_tls: NginxServer
) -> None:
    # As in the hyper 0.7 docs: s.mount("https://http2bin.org", HTTP20Adapter()).
    with requests.Session() as s:
        s.trust_env = False
        adapter = HTTP20Adapter()
        s.mount(http2bin_tls.url(""), adapter)
        ours = s.get(http2bin_tls.url("/get"), verify=str(http2bin_tls.ca_cert_path), timeout=5)
        theirs = s.get(
            nginx_h11_tls.url("/1k.bin"), verify=str(nginx_h11_tls.ca_cert_path), timeout=5
        )
        assert ours.connection is adapter
        assert ours.raw.version == 20
        assert isinstance(theirs.connection, requests.adapters.HTTPAdapter)
        assert not isinstance(theirs.connection, HTTP20Adapter)
        assert isinstance(theirs.raw, urllib3.HTTPResponse)
        assert sha256(theirs.content) == nginx_h11_tls.files["1k.bin"]
        assert len(adapter.connections) == 1


def test_text_decoded_with_declared_charset(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.get(
        http2bin_tls.url("/encoding/utf8"), verify=str(http2bin_tls.ca_cert_path), timeout=5
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.encoding == "utf-8"
    assert "∮ E⋅da = Q" in r.text
    assert r.text.encode("utf-8") == r.content


def test_tls_server_without_h2_falls_back_to_http11(
    session: requests.Session, nginx_h11_tls: NginxServer
) -> None:
    r = session.get(
        nginx_h11_tls.url("/64k.bin"), verify=str(nginx_h11_tls.ca_cert_path), timeout=5
    )
    assert r.status_code == 200
    assert r.reason == "OK"
    assert r.raw.version == 11
    assert r.raw._original_response.version == 11
    assert sha256(r.content) == nginx_h11_tls.files["64k.bin"]
    assert r.headers["Server"].startswith("nginx")


def test_nginx_h2_over_tls(session: requests.Session, nginx_h2_tls: NginxServer) -> None:
    r = session.get(nginx_h2_tls.url("/1k.bin"), verify=str(nginx_h2_tls.ca_cert_path), timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 20
    assert sha256(r.content) == nginx_h2_tls.files["1k.bin"]


def test_plain_http_to_http11_server(session: requests.Session, nginx_plain: NginxServer) -> None:
    r = session.get(nginx_plain.url("/index.html"), timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 11
    assert r.content == nginx_plain.read("index.html")
    assert r.headers["Content-Type"].startswith("text/html")


def test_plain_http_upgrades_to_h2c(
    session: requests.Session, http2bin_plain: Http2binServer
) -> None:
    first = session.get(http2bin_plain.url("/get?n=1"), timeout=5)
    second = session.get(http2bin_plain.url("/get?n=2"), timeout=5)
    assert first.json()["args"] == {"n": "1"}
    assert second.json()["args"] == {"n": "2"}
    assert second.raw.version == 20


def test_plain_http_to_http2bin_works(
    session: requests.Session, http2bin_plain: Http2binServer
) -> None:
    # Whatever protocol ends up being used, plain http against an h2c-capable server works.
    for n in range(3):
        r = session.get(http2bin_plain.url(f"/get?n={n}"), timeout=5)
        assert r.status_code == 200
        assert r.json()["args"] == {"n": str(n)}
    assert r.raw.version in (11, 20)


def test_head_has_no_body(session: requests.Session, nghttpd_tls: NghttpdServer) -> None:
    ca = str(nghttpd_tls.ca_cert_path)
    with quick():
        r = session.head(nghttpd_tls.url("/64k.bin"), verify=ca, timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 20
    assert r.content == b""
    assert r.headers["Content-Length"] == str(nghttpd_tls.sizes["64k.bin"])
    # The connection is still fine afterwards.
    r = session.get(nghttpd_tls.url("/1k.bin"), verify=ca, timeout=5)
    assert sha256(r.content) == nghttpd_tls.files["1k.bin"]


@pytest.mark.parametrize("fixture", ["nginx_h11_tls", "nginx_h2_tls", "nginx_plain"])
def test_head_and_bodiless_statuses_on_nginx(
    session: requests.Session, fixture: str, request: pytest.FixtureRequest
) -> None:
    server: NginxServer = request.getfixturevalue(fixture)
    verify = str(server.ca_cert_path) if server.tls else True
    with quick():
        head = session.head(server.url("/64k.bin"), verify=verify, timeout=5)
        no_content = session.get(server.url("/status/204"), verify=verify, timeout=5)
        not_modified = session.get(server.url("/status/304"), verify=verify, timeout=5)
        after = session.get(server.url("/1k.bin"), verify=verify, timeout=5)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(server.sizes["64k.bin"])
    assert (no_content.status_code, no_content.content) == (204, b"")
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert sha256(after.content) == server.files["1k.bin"]
    assert len(adapter_for(session, server.url()).connections) == 1


def test_error_status_and_raise_for_status(
    session: requests.Session, http2bin_tls: Http2binServer, nginx_h11_tls: NginxServer
) -> None:
    teapot = session.get(
        http2bin_tls.url("/status/418"), verify=str(http2bin_tls.ca_cert_path), timeout=5
    )
    assert teapot.status_code == 418
    assert not teapot.ok
    assert "teapot" in teapot.text
    with pytest.raises(requests.exceptions.HTTPError) as info:
        teapot.raise_for_status()
    assert info.value.response is teapot
    missing = session.get(
        nginx_h11_tls.url("/status/404"), verify=str(nginx_h11_tls.ca_cert_path), timeout=5
    )
    assert (missing.status_code, missing.reason, missing.text) == (
        404,
        "Not Found",
        "status 404\n",
    )


# -- request bodies ------------------------------------------------------------------------------


@pytest.fixture
def post(session: requests.Session, http2bin_tls: Http2binServer) -> Callable[..., dict[str, Any]]:
    """POST to httpbin's /post over TLS (HTTP/2) and return the echo."""

    def do(**kwargs: Any) -> dict[str, Any]:
        r = session.post(
            http2bin_tls.url("/post"),
            verify=str(http2bin_tls.ca_cert_path),
            timeout=5,
            **kwargs,
        )
        assert r.status_code == 200, r.text
        assert r.raw.version == 20
        echo: dict[str, Any] = r.json()
        return echo

    return do


def test_post_bytes(post: Callable[..., dict[str, Any]]) -> None:
    echo = post(data=b"raw bytes body", headers={"Content-Type": "application/octet-stream"})
    assert echo["data"] == "raw bytes body"
    assert echo["headers"]["Content-Length"] == "14"
    assert echo["form"] == {}


def test_post_str_is_utf8(post: Callable[..., dict[str, Any]]) -> None:
    text = "héllo ✓ wörld"
    echo = post(data=text, headers={"Content-Type": "text/plain; charset=utf-8"})
    assert echo["data"] == text
    assert echo["headers"]["Content-Length"] == str(len(text.encode("utf-8")))


def test_post_form_dict(post: Callable[..., dict[str, Any]]) -> None:
    echo = post(data={"a": "1", "b": ["x", "y"], "c": "é&="})
    assert echo["form"] == {"a": "1", "b": ["x", "y"], "c": "é&="}
    assert echo["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_post_json(post: Callable[..., dict[str, Any]]) -> None:
    payload = {"n": 1, "list": [1, 2, 3], "nested": {"ü": None}}
    echo = post(json=payload)
    assert echo["json"] == payload
    assert echo["headers"]["Content-Type"] == "application/json"


def test_post_multipart_files(post: Callable[..., dict[str, Any]]) -> None:
    echo = post(
        data={"field": "value"},
        files={"upload": ("hello.txt", b"file contents\n", "text/plain")},
    )
    assert echo["files"] == {"upload": "file contents\n"}
    assert echo["form"] == {"field": "value"}
    assert echo["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


def test_post_open_file(post: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "upload.txt"
    content = b"line one\nline two\n" * 500
    path.write_bytes(content)
    with path.open("rb") as f:
        echo = post(data=f, headers={"Content-Type": "text/plain"})
    assert echo["data"] == content.decode()
    assert echo["headers"]["Content-Length"] == str(len(content))


def test_post_generator_http2(
    session: requests.Session, scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    # requests sends a generator with Transfer-Encoding: chunked, a header HTTP/2 forbids:
    # it must not reach the server, and the body must arrive whole, unframed.
    def pieces() -> Iterator[bytes]:
        for i in range(5):
            yield f"piece {i};".encode()

    responder = simple_responder({"/upload": lambda req: Reply(200, body=req.body)})
    with scripted_server(responder, tls=True) as server:
        r = session.post(
            f"https://localhost:{server.port}/upload",
            data=pieces(),
            verify=str(ca_cert_path),
            timeout=5,
        )
        assert r.status_code == 200
        assert r.raw.version == 20
        assert r.content == "".join(f"piece {i};" for i in range(5)).encode()
    (seen,) = responder.requests
    names = {name.lower() for name, _ in seen.headers}
    assert b"transfer-encoding" not in names
    assert b"connection" not in names
    assert seen.method == "POST"


def test_post_generator_echoed_byte_for_byte(
    session: requests.Session, nghttpd_tls: NghttpdServer
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, beyond the initial flow-control windows

    def pieces() -> Iterator[bytes]:
        view = memoryview(data)
        for offset in range(0, len(data), 10_000):
            yield bytes(view[offset : offset + 10_000])

    r = session.post(
        nghttpd_tls.url("/echo"),
        data=pieces(),
        verify=str(nghttpd_tls.ca_cert_path),
        timeout=5,
    )
    assert r.raw.version == 20
    assert r.content == data


def test_large_bytes_upload_http2(session: requests.Session, nghttpd_tls: NghttpdServer) -> None:
    data = hashlib.sha512(b"seed").digest() * (1024 * 1024 // 64)  # 1 MiB
    r = session.put(
        f"https://{nghttpd_tls.host}:{nghttpd_tls.port}/upload",
        data=data,
        verify=str(nghttpd_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert sha256(r.content) == sha256(data)


@pytest.fixture
def http11_echo(
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> Iterator[tuple[ScriptedRawServer, list[Request11]]]:
    """A strict HTTP/1.1 server echoing request bodies (X-Chunked: yes|no) over TLS."""
    responder = http11_responder(
        {},
        default=lambda req: Reply11(
            200,
            [("X-Chunked", "yes" if req.chunked else "no"), ("Content-Type", "text/plain")],
            req.body,
        ),
    )
    with scripted_raw_server(responder, tls=True, alpn=("http/1.1",)) as server:
        yield server, responder.requests


def test_post_generator_http11_is_chunked_once(
    session: requests.Session,
    http11_echo: tuple[ScriptedRawServer, list[Request11]],
    ca_cert_path: Path,
) -> None:
    server, seen = http11_echo

    def pieces() -> Iterator[bytes]:
        yield b"alpha,"
        yield b"beta,"
        yield b"gamma"

    r = session.post(
        f"https://localhost:{server.port}/upload",
        data=pieces(),
        verify=str(ca_cert_path),
        timeout=5,
    )
    assert r.raw.version == 11
    assert r.content == b"alpha,beta,gamma"
    assert r.headers["X-Chunked"] == "yes"
    assert len(seen) == 1
    # One Transfer-Encoding, no Content-Length: not chunked twice, not both framings.
    assert seen[0].header_values("transfer-encoding") == [b"chunked"]
    assert seen[0].header("content-length") is None


def test_bodies_over_http11(
    session: requests.Session,
    http11_echo: tuple[ScriptedRawServer, list[Request11]],
    ca_cert_path: Path,
    tmp_path: Path,
) -> None:
    server, seen = http11_echo
    url = f"https://localhost:{server.port}/upload"
    path = tmp_path / "f.bin"
    path.write_bytes(b"\x00\x01file\xff" * 1000)
    kw: dict[str, Any] = {"verify": str(ca_cert_path), "timeout": 5}
    assert session.post(url, data=b"bytes", **kw).content == b"bytes"
    assert session.post(url, data="tëxt", **kw).content == "tëxt".encode()
    assert session.post(url, data={"k": "v w"}, **kw).content == b"k=v+w"
    assert json.loads(session.post(url, json={"j": [1]}, **kw).content) == {"j": [1]}
    with path.open("rb") as f:
        assert session.post(url, data=f, **kw).content == path.read_bytes()
    multipart = session.post(url, files={"f": ("n.txt", b"payload")}, **kw).content
    assert b'name="f"; filename="n.txt"' in multipart and b"payload" in multipart
    assert [req.header("content-length") for req in seen] == [
        b"5",
        b"5",
        b"5",
        b"10",
        str(path.stat().st_size).encode(),
        str(len(multipart)).encode(),
    ]
    assert all(not req.chunked for req in seen)
    assert {req.connection_id for req in seen} == {0}  # one keep-alive connection


# -- headers, cookies, redirects -----------------------------------------------------------------


def test_custom_headers_reach_the_server(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    session.headers["X-Session-Header"] = "from session"
    r = session.get(
        http2bin_tls.url("/headers"),
        headers={"X-Request-Header": "from request", "User-Agent": "adapter-test/1.0"},
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    headers = r.json()["headers"]
    assert headers["X-Session-Header"] == "from session"
    assert headers["X-Request-Header"] == "from request"
    assert headers["User-Agent"] == "adapter-test/1.0"
    assert "gzip" in headers["Accept-Encoding"]


def test_repeated_response_headers_are_joined(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.get(
        http2bin_tls.url("/response-headers?X-Multi=one&X-Multi=two"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.headers["X-Multi"] == "one, two"
    assert r.raw.headers["x-multi"] == "one, two"
    assert r.raw._original_response.msg.get_all("X-Multi") == ["one", "two"]


def test_set_cookie_headers_fill_the_cookie_jar(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    ca = str(http2bin_tls.ca_cert_path)
    r = session.get(http2bin_tls.url("/cookies/set?a=1&b=2"), verify=ca, timeout=5)
    # httpbin sets the cookies on a 302 to /cookies, which echoes what the client sent.
    assert r.status_code == 200
    assert len(r.history) == 1
    assert r.history[0].status_code == 302
    assert session.cookies.get("a") == "1"
    assert session.cookies.get("b") == "2"
    assert r.json()["cookies"] == {"a": "1", "b": "2"}
    # Both Set-Cookie fields of the redirect were seen separately.
    assert r.history[0].raw._original_response.msg.get_all("Set-Cookie") is not None
    assert len(r.history[0].raw._original_response.msg.get_all("Set-Cookie")) == 2
    assert set(r.history[0].cookies.keys()) == {"a", "b"}
    # And are sent back on later requests.
    again = session.get(http2bin_tls.url("/cookies"), verify=ca, timeout=5)
    assert again.json()["cookies"] == {"a": "1", "b": "2"}


def test_cookies_without_redirect(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    r = session.get(
        http2bin_tls.url("/cookies/set?x=10&y=20"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
        allow_redirects=False,
    )
    assert r.status_code == 302
    assert r.cookies.get_dict() == {"x": "10", "y": "20"}
    assert session.cookies.get_dict() == {"x": "10", "y": "20"}


@pytest.mark.parametrize("kind", ["redirect", "absolute-redirect", "relative-redirect"])
def test_redirect_history(
    session: requests.Session, http2bin_tls: Http2binServer, kind: str
) -> None:
    r = session.get(
        http2bin_tls.url(f"/{kind}/3"), verify=str(http2bin_tls.ca_cert_path), timeout=5
    )
    assert r.status_code == 200
    assert len(r.history) == 3
    assert all(h.status_code == 302 for h in r.history)
    assert all(h.raw.version == 20 for h in r.history)
    assert r.url == http2bin_tls.url("/get")
    assert r.json()["url"] == http2bin_tls.url("/get")
    assert len(adapter_for(session, r.url).connections) == 1


def test_allow_redirects_false(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    r = session.get(
        http2bin_tls.url("/redirect/3"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
        allow_redirects=False,
    )
    assert r.status_code == 302
    assert r.is_redirect
    assert r.history == []
    assert r.headers["Location"] == "/relative-redirect/2"
    assert r.raw.get_redirect_location() == "/relative-redirect/2"
    assert r.next is not None
    assert r.next.url == http2bin_tls.url("/relative-redirect/2")


def test_post_303_redirect_becomes_get(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.post(
        http2bin_tls.url("/redirect-to?url=/get&status_code=303"),
        data=b"dropped",
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.request.method == "GET"
    assert [h.status_code for h in r.history] == [303]
    assert r.json()["url"] == http2bin_tls.url("/get")


def test_307_redirect_resends_the_body(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.post(
        http2bin_tls.url("/redirect-to?url=/post&status_code=307"),
        data=b"kept",
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.json()["data"] == "kept"


def test_redirect_across_origins_and_protocols(
    session: requests.Session, http2bin_tls: Http2binServer, nginx_h11_tls: NginxServer
) -> None:
    # http2bin (HTTP/2) redirects to nginx (HTTP/1.1), which redirects to its index.html.
    ca = str(http2bin_tls.ca_cert_path)
    target = nginx_h11_tls.url("/redirect")
    r = session.get(http2bin_tls.url("/redirect-to"), params={"url": target}, verify=ca, timeout=5)
    assert r.status_code == 200
    assert r.url == nginx_h11_tls.url("/index.html")
    assert [h.raw.version for h in r.history] == [20, 11]
    assert r.raw.version == 11
    assert r.content == nginx_h11_tls.read("index.html")
    assert len(adapter_for(session, r.url).connections) == 2


def test_basic_auth(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    r = session.get(
        http2bin_tls.url("/basic-auth/user/p4ss"),
        auth=("user", "p4ss"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.json() == {"authenticated": True, "user": "user"}


def test_basic_auth_from_url(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    url = http2bin_tls.url("/basic-auth/u/p").replace("https://", "https://u:p@")
    r = session.get(url, verify=str(http2bin_tls.ca_cert_path), timeout=5)
    assert r.status_code == 200
    assert r.json()["user"] == "u"


# -- timeouts and errors -------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0.5, (2, 0.5), (None, 0.5)], ids=["number", "pair", "read"])
def test_read_timeout(
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
    timeout: Any,
) -> None:
    with scripted_server(hang_after_request, tls=True) as server, make_session() as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout) as info:
            s.get(f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=timeout)
        elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < FAST
    assert isinstance(info.value, requests.exceptions.Timeout)
    assert not isinstance(info.value, requests.exceptions.ConnectTimeout)
    assert info.value.request is not None


def test_read_timeout_http11(
    scripted_raw_server: Callable[..., ScriptedRawServer], ca_cert_path: Path
) -> None:
    # TLS with ALPN http/1.1, then silence.
    with (
        scripted_raw_server(recv_until_eof, tls=True, alpn=("http/1.1",)) as server,
        make_session() as s,
        quick(),
        pytest.raises(requests.exceptions.ReadTimeout),
    ):
        s.get(f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=0.5)


def test_read_timeout_urllib3_timeout_object(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    with (
        scripted_server(hang_after_request, tls=True) as server,
        make_session() as s,
        quick(),
        pytest.raises(requests.exceptions.ReadTimeout),
    ):
        s.get(
            f"https://localhost:{server.port}/",
            verify=str(ca_cert_path),
            timeout=urllib3.Timeout(connect=2, read=0.5),
        )


BODY_ERROR_BUG = (
    "BUG: errors while reading the body escape as hyper exceptions "
    "(hyper.common.exceptions.ReadTimeout, ConnectionClosed...) instead of requests "
    "exceptions: adapter.py HyperRawResponse.read() passes them through, and requests' "
    "iter_content() only translates urllib3's ReadTimeoutError/ProtocolError/DecodeError; "
    "read() should re-raise them as those urllib3 exceptions (or requests' own)"
)


def test_read_timeout_while_streaming_body(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    # /drip sends its 4 bytes over 4 s: the body read times out.
    r = session.get(
        http2bin_tls.url("/drip?duration=4&numbytes=4&delay=0"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=(2, 0.3),
        stream=True,
    )
    assert r.status_code == 200
    with quick(), pytest.raises(requests.exceptions.ConnectionError):
        # requests turns urllib3's ReadTimeoutError from the body into ConnectionError.
        r.content  # noqa: B018


def _truncating_handler(ctx: ServerConnection) -> None:
    """Announce 100 body bytes, send 10, then close the connection (FIN, no GOAWAY): the
    client always gets the head first, then an early end of the body."""
    ctx.handshake()
    stream_id = ctx.wait_for_request().stream_id
    ctx.respond(stream_id, 200, [("content-length", "100")], b"x" * 10, end=False)
    ctx.close()
    with contextlib.suppress(ssl.SSLError):  # the client's TLS layer may complain
        ctx.wait_closed()


@pytest.mark.parametrize("stream", [True, False])
def test_connection_lost_mid_body_is_a_requests_error(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
    stream: bool,
) -> None:
    with (
        scripted_server(_truncating_handler, tls=True) as server,
        quick(),
        pytest.raises(requests.exceptions.RequestException),
    ):
        r = session.get(
            f"https://localhost:{server.port}/",
            verify=str(ca_cert_path),
            timeout=5,
            stream=stream,
        )
        r.content  # noqa: B018


def test_connection_lost_mid_body_raises(
    session: requests.Session, scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    # Whatever its class, the truncated body is an error, never a short success.
    with (
        scripted_server(_truncating_handler, tls=True) as server,
        quick(),
        pytest.raises(Exception) as info,
    ):
        session.get(f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=5)
    assert not isinstance(info.value, AssertionError)


def test_timeout_of_later_request_on_pooled_connection_is_honoured(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    done = threading.Event()

    def slow(_: Request) -> bytes:
        done.wait(2.5)
        return b"late"

    responder = simple_responder({"/fast": b"fast", "/slow": slow})
    with scripted_server(responder, tls=True) as server, make_session() as s:
        base = f"https://localhost:{server.port}"
        try:
            assert s.get(base + "/fast", verify=str(ca_cert_path)).content == b"fast"
            start = time.monotonic()
            with pytest.raises(requests.exceptions.ReadTimeout):
                s.get(base + "/slow", verify=str(ca_cert_path), timeout=0.5)
            assert time.monotonic() - start < FAST
        finally:
            done.set()


def test_requests_with_different_timeouts_share_one_http2_connection(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    """Each request's timeout bounds its own wait on the one multiplexed connection: a slow
    response times out for the request with 0.3 s while one with 5 s, sent from another
    thread at the same time on the same connection, gets its answer."""
    release = threading.Event()

    def slow(_: Request) -> bytes:
        release.wait(5)
        return b"late"

    responder = simple_responder({"/slow": slow, "/fast": b"fast"})
    with scripted_server(responder, tls=True) as server, make_session() as s:
        base = f"https://localhost:{server.port}"
        ca = str(ca_cert_path)
        assert s.get(base + "/fast", verify=ca, timeout=5).content == b"fast"
        patient: list[bytes] = []
        waiting = threading.Thread(
            target=lambda: patient.append(s.get(base + "/slow", verify=ca, timeout=5).content)
        )
        waiting.start()
        try:
            start = time.monotonic()
            with pytest.raises(requests.exceptions.ReadTimeout):
                s.get(base + "/slow", verify=ca, timeout=(5, 0.3))
            assert 0.3 <= time.monotonic() - start < FAST
        finally:
            release.set()
            waiting.join(5)
        assert patient == [b"late"]
        assert len(adapter_for(s, base).connections) == 1
    assert server.connection_count == 1


def test_session_usable_after_read_timeout(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    ca = str(http2bin_tls.ca_cert_path)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(http2bin_tls.url("/delay/2"), verify=ca, timeout=0.5)
    r = session.get(http2bin_tls.url("/get?after=timeout"), verify=ca, timeout=0.5)
    assert r.json()["args"] == {"after": "timeout"}


def test_tls_handshake_timeout_is_connect_timeout(
    scripted_raw_server: Callable[..., ScriptedRawServer], ca_cert_path: Path
) -> None:
    # A plaintext server that never answers the ClientHello.
    with scripted_raw_server(recv_until_eof) as server, make_session() as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectTimeout) as info:
            s.get(f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=(0.5, 5))
        elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < FAST
    assert isinstance(info.value, requests.exceptions.ConnectionError)
    assert isinstance(info.value, requests.exceptions.Timeout)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_connection_refused(session: requests.Session, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}/"
    with quick(), pytest.raises(requests.exceptions.ConnectionError) as info:
        session.get(url, timeout=5)
    assert not isinstance(info.value, requests.exceptions.Timeout)
    assert not isinstance(info.value, requests.exceptions.SSLError)
    assert info.value.request is not None and info.value.request.url == url


def test_unresolvable_host(session: requests.Session) -> None:
    with quick(5), pytest.raises(requests.exceptions.ConnectionError):
        session.get("http://does-not-exist.invalid/", timeout=3)


def test_untrusted_certificate_is_ssl_error(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    # verify=True uses the default trust store (certifi), which does not know the test CA.
    with quick(), pytest.raises(requests.exceptions.SSLError) as info:
        session.get(http2bin_tls.url("/get"), timeout=5)
    assert "certificate" in str(info.value).lower()


@pytest.mark.parametrize("which", ["untrusted", "wrong_host", "expired"])
def test_bad_certificates_are_ssl_errors(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    tls_material: TLSMaterial,
    which: str,
) -> None:
    cert = getattr(tls_material, which)
    responder = simple_responder({"/": b"never"})
    with scripted_server(responder, tls=True, cert=cert) as server:
        with quick(), pytest.raises(requests.exceptions.SSLError):
            session.get(
                f"https://localhost:{server.port}/",
                verify=str(tls_material.ca_cert_path),
                timeout=5,
            )
        assert responder.requests == []


def test_verify_false_accepts_untrusted_certificate(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    tls_material: TLSMaterial,
) -> None:
    responder = simple_responder({"/": b"insecure but fine"})
    with scripted_server(responder, tls=True, cert=tls_material.untrusted) as server:
        url = f"https://localhost:{server.port}/"
        # As with requests' own adapter: a warning for every unverified request.
        with pytest.warns(InsecureRequestWarning, match="localhost"):
            r = session.get(url, verify=False, timeout=5)
        assert r.status_code == 200
        assert r.content == b"insecure but fine"
        assert r.raw.version == 20
        # The same origin with verification on is a separate pool entry, and fails.
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, verify=str(tls_material.ca_cert_path), timeout=5)
        assert session.get(url, verify=False, timeout=5).content == b"insecure but fine"
        assert len(adapter_for(session, url).connections) == 2


def test_verify_with_ca_directory(
    session: requests.Session, http2bin_tls: Http2binServer, tmp_path: Path
) -> None:
    import subprocess

    assert http2bin_tls.ca_cert_path is not None
    subject_hash = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash", "-in", str(http2bin_tls.ca_cert_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    (tmp_path / f"{subject_hash}.0").write_bytes(http2bin_tls.ca_cert_path.read_bytes())
    r = session.get(http2bin_tls.url("/get"), verify=str(tmp_path), timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 20


def test_verify_from_requests_ca_bundle_environment(
    http2bin_tls: Http2binServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With trust_env (requests' default) verify=True becomes $REQUESTS_CA_BUNDLE.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(http2bin_tls.ca_cert_path))
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with make_session(trust_env=True) as s:
        r = s.get(http2bin_tls.url("/get"), timeout=5)
        assert r.status_code == 200
        assert r.raw.version == 20


def test_ipv6_literal_url(
    session: requests.Session, scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    responder = simple_responder(
        {"/v6": lambda req: Reply(200, body=req.header(b":authority") or b"")}
    )
    try:
        server = scripted_server(responder, tls=True, host="::1")
        server.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on ::1: {exc}")
    # (The scripted_server fixture closes and checks the server.)
    r = session.get(f"https://[::1]:{server.port}/v6", verify=str(ca_cert_path), timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 20
    assert r.content == f"[::1]:{server.port}".encode()


# -- client certificates -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_cert(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A client certificate from the test CA: combined PEM, and certificate + key."""
    directory = tmp_path_factory.mktemp("adapter-client-cert")
    leaf = tls_material.ca.issue_cert("client.hyper.test")
    paths = {
        "cert": directory / "client.pem",
        "key": directory / "client.key",
        "combined": directory / "client.combined.pem",
    }
    paths["cert"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(paths["combined"]))
    return paths


@contextlib.contextmanager
def client_auth_server(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> Iterator[tuple[ScriptedServer, list[Any]]]:
    """A TLS h2 server requiring a client certificate; records the peer certificates."""
    responder = simple_responder({"/": b"hello client"})
    seen: list[Any] = []

    def handler(ctx: ServerConnection) -> None:
        assert isinstance(ctx.sock, ssl.SSLSocket)
        seen.append(ctx.sock.getpeercert())
        responder(ctx)

    server = scripted_server(handler, tls=True)
    assert server.ssl_context is not None
    server.ssl_context.verify_mode = ssl.CERT_REQUIRED
    server.ssl_context.load_verify_locations(cafile=str(ca_cert_path))
    with server:
        yield server, seen


def _client_names(peer: dict[str, Any]) -> list[str]:
    return [value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"]


@pytest.mark.parametrize("form", ["combined", "pair", "list"])
def test_client_certificate(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
    client_cert: dict[str, Path],
    form: str,
) -> None:
    cert: Any = {
        "combined": str(client_cert["combined"]),
        "pair": (str(client_cert["cert"]), str(client_cert["key"])),
        "list": [str(client_cert["cert"]), str(client_cert["key"])],
    }[form]
    with client_auth_server(scripted_server, ca_cert_path) as (server, seen):
        url = f"https://localhost:{server.port}/"
        r = session.get(url, cert=cert, verify=str(ca_cert_path), timeout=5)
        assert r.content == b"hello client"
        assert r.raw.version == 20
        # Session-level cert, and a second request reusing the connection.
        session.cert = cert
        assert session.get(url, verify=str(ca_cert_path), timeout=5).status_code == 200
    assert len(seen) == 1
    assert _client_names(seen[0]) == ["client.hyper.test"]


def test_missing_client_certificate_fails(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
) -> None:
    with (
        client_auth_server(scripted_server, ca_cert_path) as (server, seen),
        quick(),
        pytest.raises(requests.exceptions.ConnectionError) as info,
    ):
        session.get(f"https://localhost:{server.port}/", verify=str(ca_cert_path), timeout=2)
    assert not isinstance(info.value, requests.exceptions.Timeout)
    assert seen == []  # the handshake never completed on the server side
    assert server.tls_errors, "the server did not reject the handshake"


def test_client_certificate_gets_its_own_pool_entry(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
    client_cert: dict[str, Path],
) -> None:
    with client_auth_server(scripted_server, ca_cert_path) as (server, seen):
        url = f"https://localhost:{server.port}/"
        pair = (str(client_cert["cert"]), str(client_cert["key"]))
        combined = str(client_cert["combined"])
        assert session.get(url, cert=pair, verify=str(ca_cert_path), timeout=5).ok
        assert session.get(url, cert=combined, verify=str(ca_cert_path), timeout=5).ok
        assert session.get(url, cert=pair, verify=str(ca_cert_path), timeout=5).ok
        assert len(adapter_for(session, url).connections) == 2
    assert len(seen) == 2


# -- stream=True ---------------------------------------------------------------------------------


def test_stream_true_does_not_read_the_body(
    session: requests.Session, scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    release = threading.Event()
    body = b"0123456789" * 100

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, [("content-length", str(len(body)))], end=False)
        release.wait(5)  # the body only comes once the test has looked at the response
        ctx.send_body(stream_id, body)
        ctx.wait_closed()

    with scripted_server(handler, tls=True) as server:
        with quick():
            r = session.get(
                f"https://localhost:{server.port}/",
                verify=str(ca_cert_path),
                timeout=5,
                stream=True,
            )
        assert r.status_code == 200
        assert not release.is_set()
        assert r.raw.tell() == 0
        assert not r.raw.closed
        release.set()
        assert r.content == body
        assert r.raw.tell() == len(body)
        session.close()


def test_stream_iter_content(session: requests.Session, nghttpd_tls: NghttpdServer) -> None:
    r = session.get(
        nghttpd_tls.url("/1m.bin"),
        verify=str(nghttpd_tls.ca_cert_path),
        timeout=5,
        stream=True,
    )
    assert r.raw.tell() == 0
    digest = hashlib.sha256()
    sizes = []
    for chunk in r.iter_content(chunk_size=8192):
        sizes.append(len(chunk))
        digest.update(chunk)
    assert digest.hexdigest() == nghttpd_tls.files["1m.bin"]
    assert sum(sizes) == nghttpd_tls.sizes["1m.bin"]
    assert max(sizes) <= 8192
    assert len(sizes) >= nghttpd_tls.sizes["1m.bin"] // 8192
    assert r.raw.closed


def test_stream_iter_lines(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    r = session.get(
        http2bin_tls.url("/stream/7"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
        stream=True,
    )
    lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line["id"] for line in lines] == list(range(7))
    assert all(line["url"] == http2bin_tls.url("/stream/7") for line in lines)


def test_raw_read_and_stream(session: requests.Session, nghttpd_tls: NghttpdServer) -> None:
    url = f"https://{nghttpd_tls.host}:{nghttpd_tls.port}/64k.bin"
    r = session.get(url, verify=str(nghttpd_tls.ca_cert_path), timeout=5, stream=True)
    head = r.raw.read(10)
    assert len(head) == 10
    assert r.raw.tell() == 10
    pieces = list(r.raw.stream(1024))
    assert all(0 < len(p) <= 1024 for p in pieces)
    assert sha256(head + b"".join(pieces)) == nghttpd_tls.files["64k.bin"]
    assert r.raw.tell() == nghttpd_tls.sizes["64k.bin"]
    assert r.raw.read() == b""
    assert r.raw.closed


@pytest.mark.parametrize("fixture", ["nghttpd_tls", "nginx_h11_tls"])
def test_close_mid_body_then_more_requests(
    session: requests.Session,
    fixture: str,
    request: pytest.FixtureRequest,
    tcp_opens: list[tuple[str, int]],
) -> None:
    server: Any = request.getfixturevalue(fixture)
    base = f"https://{server.host}:{server.port}"
    ca = str(server.ca_cert_path)
    with quick():
        r = session.get(base + "/10m.bin", verify=ca, timeout=5, stream=True)
        first = next(r.iter_content(4096))
        assert len(first) == 4096
        r.close()
        assert r.raw.closed
        for _ in range(3):
            again = session.get(base + "/64k.bin", verify=ca, timeout=5)
            assert sha256(again.content) == server.files["64k.bin"]
    assert len(adapter_for(session, base).connections) == 1
    # HTTP/2 cancels the stream and keeps the connection; HTTP/1.1 must reconnect once.
    assert len(tcp_opens) == (1 if fixture == "nghttpd_tls" else 2)


def test_stream_context_manager_closes(
    session: requests.Session, nghttpd_tls: NghttpdServer
) -> None:
    base = f"https://{nghttpd_tls.host}:{nghttpd_tls.port}"
    ca = str(nghttpd_tls.ca_cert_path)
    with session.get(base + "/10m.bin", verify=ca, timeout=5, stream=True) as r:
        assert len(r.raw.read(100)) == 100
    assert r.raw.closed
    assert session.get(base + "/1k.bin", verify=ca, timeout=5).status_code == 200


def test_two_unread_streams_at_once_over_http2(
    session: requests.Session, nghttpd_tls: NghttpdServer
) -> None:
    base = f"https://{nghttpd_tls.host}:{nghttpd_tls.port}"
    ca = str(nghttpd_tls.ca_cert_path)
    a = session.get(base + "/64k.bin", verify=ca, timeout=5, stream=True)
    b = session.get(base + "/1k.bin", verify=ca, timeout=5, stream=True)
    assert sha256(b.content) == nghttpd_tls.files["1k.bin"]
    assert sha256(a.content) == nghttpd_tls.files["64k.bin"]


def test_second_request_while_http11_stream_unread(
    session: requests.Session, nginx_h11_tls: NginxServer
) -> None:
    ca = str(nginx_h11_tls.ca_cert_path)
    a = session.get(nginx_h11_tls.url("/64k.bin"), verify=ca, timeout=5, stream=True)
    with quick():
        b = session.get(nginx_h11_tls.url("/1k.bin"), verify=ca, timeout=5)
    assert sha256(b.content) == nginx_h11_tls.files["1k.bin"]
    assert sha256(a.content) == nginx_h11_tls.files["64k.bin"]


# -- content codings -----------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "brotli"])
def test_compressed_responses_are_decoded(
    session: requests.Session, http2bin_tls: Http2binServer, coding: str
) -> None:
    if coding == "brotli":
        pytest.importorskip("brotli")
    r = session.get(
        http2bin_tls.url(f"/{coding}"), verify=str(http2bin_tls.ca_cert_path), timeout=5
    )
    assert r.status_code == 200
    expected = {"gzip": "gzip", "deflate": "deflate", "brotli": "br"}[coding]
    assert r.headers["Content-Encoding"] == expected
    assert r.json()[{"gzip": "gzipped", "deflate": "deflated", "brotli": "brotli"}[coding]]


def test_gzip_raw_bytes_with_decode_content_false(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    r = session.get(
        http2bin_tls.url("/gzip"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
        stream=True,
    )
    raw = r.raw.read(decode_content=False)
    assert raw[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(raw))["gzipped"] is True


def test_gzip_over_http11_chunked(session: requests.Session, nginx_h11_tls: NginxServer) -> None:
    url = nginx_h11_tls.url("/gzip/text.txt")
    ca = str(nginx_h11_tls.ca_cert_path)
    r = session.get(url, verify=ca, timeout=5)
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.content == nginx_h11_tls.read("text.txt")
    streamed = session.get(url, verify=ca, timeout=5, stream=True)
    raw = streamed.raw.read(decode_content=False)
    assert len(raw) < len(r.content)
    assert zlib.decompress(raw, 16 + zlib.MAX_WBITS) == r.content


# -- pooling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["http2bin_tls", "nginx_h11_tls"])
def test_many_requests_reuse_one_connection(
    session: requests.Session,
    tcp_opens: list[tuple[str, int]],
    fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    server: Any = request.getfixturevalue(fixture)
    ca = str(server.ca_cert_path)
    path = "/get?n={}" if fixture == "http2bin_tls" else "/1k.bin?n={}"
    for n in range(50):
        r = session.get(server.url(path.format(n)), verify=ca, timeout=5)
        assert r.status_code == 200
        if fixture == "http2bin_tls":
            assert r.json()["args"] == {"n": str(n)}
    adapter = adapter_for(session, server.url())
    assert len(adapter.connections) == 1
    assert tcp_opens == [(server.host, server.port)]


def test_pool_entries_per_origin_and_tls_settings(
    session: requests.Session,
    tcp_opens: list[tuple[str, int]],
    http2bin_tls: Http2binServer,
) -> None:
    ca = str(http2bin_tls.ca_cert_path)
    by_ip = http2bin_tls.url("/get")
    by_name = f"https://localhost:{http2bin_tls.port}/get"
    for _ in range(3):
        assert session.get(by_ip, verify=ca, timeout=5).ok
        assert session.get(by_name, verify=ca, timeout=5).ok
        assert session.get(by_ip, verify=False, timeout=5).ok
        upper = f"https://LOCALHOST:{http2bin_tls.port}/get"
        assert session.get(upper, verify=ca, timeout=5).ok
    adapter = adapter_for(session, by_ip)
    assert len(adapter.connections) == 3
    assert len(tcp_opens) == 3
    keys = {(k[0], k[1], k[2]) for k in adapter.connections}
    assert keys == {
        ("https", http2bin_tls.host, http2bin_tls.port),
        ("https", "localhost", http2bin_tls.port),
    }


def test_session_close_closes_pooled_connections(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path
) -> None:
    closed = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, [("content-length", "2")], b"ok")
        ctx.wait_closed(timeout=5)
        closed.set()

    with scripted_server(handler, tls=True) as server:
        s = make_session()
        url = f"https://localhost:{server.port}/"
        assert s.get(url, verify=str(ca_cert_path), timeout=5).content == b"ok"
        adapter = adapter_for(s, url)
        assert len(adapter.connections) == 1
        assert not closed.is_set()
        s.close()
        assert adapter.connections == {}
        assert closed.wait(FAST), "the server never saw the connection close"


def test_session_context_manager_and_reuse_after_close(http2bin_tls: Http2binServer) -> None:
    ca = str(http2bin_tls.ca_cert_path)
    with make_session() as s:
        assert s.get(http2bin_tls.url("/get"), verify=ca, timeout=5).ok
        adapter = adapter_for(s, http2bin_tls.url())
        assert len(adapter.connections) == 1
    assert adapter.connections == {}
    # A closed session's adapter connects again if used.
    assert s.get(http2bin_tls.url("/get"), verify=ca, timeout=5).ok
    assert len(adapter.connections) == 1
    s.close()


def test_new_connection_after_server_goaway(
    session: requests.Session,
    scripted_server: Callable[..., ScriptedServer],
    ca_cert_path: Path,
) -> None:
    def handler(ctx: ServerConnection) -> None:
        # One response per connection, then GOAWAY and close.
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.read_request(stream_id)
        ctx.respond(stream_id, 200, [("content-length", "4")], b"done")
        ctx.goaway(last_stream_id=stream_id)
        ctx.close()
        ctx.wait_closed()

    with scripted_server(handler, tls=True) as server:
        url = f"https://localhost:{server.port}/"
        for _ in range(3):
            assert session.get(url, verify=str(ca_cert_path), timeout=5).content == b"done"
        assert server.connection_count == 3


def test_new_connection_after_idle_server_close(
    session: requests.Session, hypercorn_short_keepalive: Any, tcp_opens: list[tuple[str, int]]
) -> None:
    # hypercorn closes an idle HTTP/2 connection after 1 s, without a GOAWAY: the pooled
    # connection is dead and the next request must go out on a new one.
    server = hypercorn_short_keepalive
    ca = str(server.ca_cert_path)
    r = session.get(server.url("/bytes/10"), verify=ca, timeout=5)
    assert r.raw.version == 20
    assert len(r.content) == 10
    fileno = r.raw.fileno()
    readable, _, _ = select.select([fileno], [], [], 4.0)
    assert readable, "hypercorn kept the idle connection open"
    again = session.get(server.url("/bytes/100"), verify=ca, timeout=5)
    assert again.status_code == 200
    assert len(again.content) == 100
    assert len(tcp_opens) == 2


def test_new_connection_after_http11_connection_close(
    session: requests.Session, nginx_plain: NginxServer, tcp_opens: list[tuple[str, int]]
) -> None:
    closing = session.get(nginx_plain.url("/close"), timeout=5)
    assert closing.headers["Connection"] == "close"
    after = session.get(nginx_plain.url("/64k.bin"), timeout=5)
    assert sha256(after.content) == nginx_plain.files["64k.bin"]
    assert len(tcp_opens) == 2


def test_adapter_pickles_without_connections(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    assert session.get(
        http2bin_tls.url("/get"), verify=str(http2bin_tls.ca_cert_path), timeout=5
    ).ok
    copy = pickle.loads(pickle.dumps(session))
    adapter = adapter_for(copy, http2bin_tls.url())
    assert adapter.connections == {}
    r = copy.get(http2bin_tls.url("/get?p=1"), verify=str(http2bin_tls.ca_cert_path), timeout=5)
    assert r.json()["args"] == {"p": "1"}
    copy.close()


# -- proxies -------------------------------------------------------------------------------------


def test_https_through_proxy_tunnels_http2(
    session: requests.Session, tinyproxy: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    position = tinyproxy.log_position()
    ca = str(http2bin_tls.ca_cert_path)
    proxies = {"https": tinyproxy.url}
    for n in range(3):
        url = http2bin_tls.url(f"/get?n={n}&show_env=1")
        r = session.get(url, proxies=proxies, verify=ca, timeout=5)
        assert r.json()["args"] == {"n": str(n), "show_env": "1"}
        assert r.raw.version == 20
    # One tunnel carries all three requests; the proxy never saw them in clear.
    assert tinyproxy.requests_since(position) == [f"CONNECT {http2bin_tls.authority} HTTP/1.1"]
    assert "Via" not in r.json()["headers"]
    adapter = adapter_for(session, http2bin_tls.url())
    assert [k[-1] for k in adapter.connections] == [tinyproxy.url]


def test_plain_http_through_proxy_uses_absolute_form(
    session: requests.Session, tinyproxy: TinyproxyServer, http2bin_plain: Http2binServer
) -> None:
    position = tinyproxy.log_position()
    url = http2bin_plain.url("/get?show_env=1")
    r = session.get(url, proxies={"http": tinyproxy.url}, timeout=5)
    assert r.status_code == 200
    assert r.raw.version == 11
    assert r.json()["args"] == {"show_env": "1"}
    assert "tinyproxy" in r.json()["headers"].get("Via", "")
    assert tinyproxy.requests_since(position) == [f"GET {url} HTTP/1.1"]


def test_proxy_credentials_from_url_connect(
    session: requests.Session, tinyproxy_auth: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    position = tinyproxy_auth.log_position()
    r = session.get(
        http2bin_tls.url("/get"),
        proxies={"https": tinyproxy_auth.url_with_auth},
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.raw.version == 20
    # Proxy credentials go to the proxy only, never to the origin through the tunnel.
    assert "Proxy-Authorization" not in r.json()["headers"]
    assert tinyproxy_auth.requests_since(position) == [
        f"CONNECT {http2bin_tls.authority} HTTP/1.1"
    ]


def test_proxy_credentials_from_url_plain(
    session: requests.Session, tinyproxy_auth: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    r = session.get(
        nginx_plain.url("/1k.bin"),
        proxies={"http": tinyproxy_auth.url_with_auth},
        timeout=5,
    )
    assert r.status_code == 200
    assert sha256(r.content) == nginx_plain.files["1k.bin"]


def test_proxy_without_credentials_is_proxy_error(
    session: requests.Session, tinyproxy_auth: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    with quick(), pytest.raises(requests.exceptions.ProxyError) as info:
        session.get(
            http2bin_tls.url("/get"),
            proxies={"https": tinyproxy_auth.url},
            verify=str(http2bin_tls.ca_cert_path),
            timeout=5,
        )
    assert "407" in str(info.value)


def test_refusing_proxy_is_proxy_error(
    session: requests.Session, tinyproxy_refusing: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    with quick(), pytest.raises(requests.exceptions.ProxyError) as info:
        session.get(
            http2bin_tls.url("/get"),
            proxies={"https": tinyproxy_refusing.url},
            verify=str(http2bin_tls.ca_cert_path),
            timeout=5,
        )
    assert "403" in str(info.value)
    assert isinstance(info.value, requests.exceptions.ConnectionError)


def test_refusing_proxy_plain_request_is_a_response(
    session: requests.Session, tinyproxy_refusing: TinyproxyServer, nginx_plain: NginxServer
) -> None:
    r = session.get(
        nginx_plain.url("/1k.bin"), proxies={"http": tinyproxy_refusing.url}, timeout=5
    )
    assert r.status_code == 403
    assert r.reason == "Filtered"


def test_unreachable_proxy_is_proxy_error(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    with quick(), pytest.raises(requests.exceptions.ProxyError):
        session.get(
            http2bin_tls.url("/get"),
            proxies={"https": f"http://127.0.0.1:{closed_port()}"},
            verify=str(http2bin_tls.ca_cert_path),
            timeout=5,
        )


def test_an_unknown_proxy_scheme_is_rejected(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    with quick(), pytest.raises(requests.exceptions.ProxyError, match="SOCKS proxies"):
        session.get(
            http2bin_tls.url("/get"),
            proxies={"https": "ftp://127.0.0.1:2121"},
            verify=str(http2bin_tls.ca_cert_path),
            timeout=5,
        )


@pytest.mark.parametrize("scheme", ["socks5h", "socks5", "socks4"])
def test_socks_proxy_carries_https_over_http2(
    session: requests.Session, dante: DanteServer, nginx_h2_tls: NginxServer, scheme: str
) -> None:
    """requests' socks URLs (as PySocks users write them) go to hyper's SOCKS support:
    TLS and HTTP/2 end to end through a real SOCKS proxy."""
    since = dante.log.position()
    r = session.get(
        nginx_h2_tls.url("/"),
        proxies={"https": dante.url(scheme)},
        verify=str(nginx_h2_tls.ca_cert_path),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.raw.version == 20
    dante.wait_for_tunnel(nginx_h2_tls.port, since=since)


def test_socks_proxy_from_the_environment_for_plain_http(
    dante: DanteServer, nginx_plain: NginxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", dante.url("socks5h"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    since = dante.log.position()
    with make_session(trust_env=True) as session:
        r = session.get(nginx_plain.url("/"), timeout=5)
    assert r.status_code == 200
    dante.wait_for_tunnel(nginx_plain.port, since=since)


def test_a_socks_proxy_that_refuses_is_a_proxy_error(
    session: requests.Session, dante: DanteServer
) -> None:
    with quick(), pytest.raises(requests.exceptions.ProxyError):
        session.get(
            f"http://127.0.0.1:{dante.blocked_port}/",
            proxies={"http": dante.url("socks5h")},
            timeout=5,
        )


def test_proxy_from_environment(
    monkeypatch: pytest.MonkeyPatch, tinyproxy: TinyproxyServer, http2bin_tls: Http2binServer
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    position = tinyproxy.log_position()
    with make_session(trust_env=True) as s:
        r = s.get(http2bin_tls.url("/get"), verify=str(http2bin_tls.ca_cert_path), timeout=5)
    assert r.raw.version == 20
    assert tinyproxy.requests_since(position) == [f"CONNECT {http2bin_tls.authority} HTTP/1.1"]


# -- threads -------------------------------------------------------------------------------------


def test_threads_share_one_session(
    session: requests.Session, http2bin_tls: Http2binServer, tcp_opens: list[tuple[str, int]]
) -> None:
    ca = str(http2bin_tls.ca_cert_path)
    errors: list[BaseException] = []
    results: dict[tuple[int, int], dict[str, str]] = {}
    barrier = threading.Barrier(8, timeout=5)

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(20):
                r = session.get(
                    http2bin_tls.url("/get"), params={"t": t, "i": i}, verify=ca, timeout=5
                )
                assert r.status_code == 200
                assert r.raw.version == 20
                results[(t, i)] = r.json()["args"]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(results) == 160
    assert all(args == {"t": str(t), "i": str(i)} for (t, i), args in results.items())
    assert len(adapter_for(session, http2bin_tls.url()).connections) == 1
    assert len(tcp_opens) == 1
    assert time.monotonic() - start < 15


def test_threads_share_one_session_http11(
    session: requests.Session, nginx_h11_tls: NginxServer
) -> None:
    ca = str(nginx_h11_tls.ca_cert_path)
    errors: list[BaseException] = []
    count = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal count
        try:
            for _ in range(20):
                r = session.get(nginx_h11_tls.url("/1k.bin"), verify=ca, timeout=5)
                assert sha256(r.content) == nginx_h11_tls.files["1k.bin"]
                with lock:
                    count += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert count == 160


# -- the raw object ------------------------------------------------------------------------------


def test_raw_response_interface(session: requests.Session, http2bin_tls: Http2binServer) -> None:
    r = session.get(
        http2bin_tls.url("/response-headers?X-A=1"),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=5,
        stream=True,
    )
    raw = r.raw
    assert raw.status == 200
    assert raw.reason == "OK"
    assert raw.version == 20
    assert raw.headers["X-A"] == "1"
    assert raw.readable()
    assert isinstance(raw.fileno(), int)
    assert raw.get_redirect_location() is None
    assert raw._original_response.status == 200
    assert raw._original_response.msg["x-a"] == "1"
    assert not raw.isclosed()
    raw.release_conn()  # a no-op that must exist
    data = b"".join(raw.stream(16))
    assert json.loads(data)["X-A"] == "1"
    assert raw.isclosed()
    assert raw.tell() == len(data)
