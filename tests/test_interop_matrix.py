"""The interop matrix: hyper against nghttpd, nginx, h2o, Apache httpd and hypercorn.

One test per ``(server, mode, check)`` cell (see :mod:`tests.support.interop` for the axes
and for the cells that are n/a, with the reasons).  Each test opens a fresh connection in
its mode and proves the protocol first:

* ``h2-tls``: :class:`hyper.HTTPConnection` over TLS must negotiate ``h2`` by ALPN;
* ``h11-tls``: :class:`hyper.HTTPConnection` against a TLS endpoint configured for
  ``http/1.1`` only (nginx, Apache) must fall back to HTTP/1.1; where the server always
  offers ``h2`` (h2o, hypercorn), :class:`hyper.HTTP11Connection` offers ``http/1.1`` only;
* ``h2c-upgrade``: :class:`hyper.HTTPConnection` in plaintext sends a GET asking for
  ``Upgrade: h2c``; its body is checked and the connection must speak HTTP/2 afterwards,
  on the same TCP connection where the server implements the upgrade (h2o, Apache,
  hypercorn), on a second one with prior knowledge where it does not (nghttpd, nginx);
* ``h2c-prior``: :class:`hyper.HTTP20Connection` in plaintext (prior knowledge).

Then the check runs on that connection, and must not have needed a second one:

* ``get``: a 256 KiB file, byte for byte;
* ``post-10m``: 10 MiB up, and the server sends them back (echo; see the server modules for
  how each one does it), sha256 compared;
* ``gzip``: ``accept-encoding: gzip``, the server compresses, hyper decodes;
* ``multiplex-50``: 50 different files; over HTTP/2 all 50 requests are sent before the
  first response is read (``get_response`` in reverse order), over HTTP/1.1 they go one by
  one on the kept-alive connection;
* ``get-100m``: 100 MiB read with ``read(1 MiB)`` (bounded memory), sha256 compared;
* ``trailers``: the response trailer ``x-interop-trailer: yes``;
* ``push``: ``/push/page.html`` comes with a pushed ``/push/style.css``.

The matrix is printed at the end of the session (:mod:`tests.support.interop_matrix`).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hyper import (
    HTTP11Connection,
    HTTP11Response,
    HTTP20Connection,
    HTTP20Response,
    HTTPConnection,
)
from hyper.common import sockets as hyper_sockets
from hyper.common.response import BaseResponse
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.helpers import goaway_bytes, serve
from tests.support.interop import (
    CHECKS,
    MODES,
    MULTIPLEX_COUNT,
    PUSHED_FILE,
    SERVERS,
    TEXT_FILE,
    TRAILER,
    InteropTarget,
    multiplex_file,
    not_applicable,
    post_body,
)
from tests.support.interop_matrix import NA_PREFIX
from tests.support.scripted import ServerConnection
from tests.support.versions import LOWEST_VERSIONS

AnyConnection = HTTPConnection | HTTP20Connection | HTTP11Connection
AnyResponse = HTTP11Response | HTTP20Response
#: Read size of the big download: memory stays bounded by it.
READ_SIZE = 1024 * 1024
#: Network timeout of every connection: far above what any exchange here needs.
TIMEOUT = 30

#: Cells that fail because of a hyper bug: ``(server, mode, check)`` -> diagnosis.
HYPER_BUGS: dict[tuple[str, str, str], str] = {}


def _cases() -> Iterator[Any]:
    for server in SERVERS:
        for mode in MODES:
            for check in CHECKS:
                if not_applicable(server, mode, check) is not None:
                    continue
                marks = [pytest.mark.interop(server, mode, check)]
                bug = HYPER_BUGS.get((server, mode, check))
                if bug is not None:
                    marks.append(pytest.mark.xfail(strict=True, reason=f"hyper bug: {bug}"))
                yield pytest.param(server, mode, check, marks=marks, id=f"{server}-{mode}-{check}")


# -- helpers -----------------------------------------------------------------------------------


class ConnectionCounter:
    """Counts TCP connections hyper opens (through ``hyper.common.sockets.open_tcp``) to one
    port."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.port: int | None = None
        original = hyper_sockets.open_tcp

        def counting(host: str, port: int, *args: Any, **kwargs: Any) -> socket.socket:
            if self.port is not None and port == self.port:
                self.count += 1
            return original(host, port, *args, **kwargs)

        monkeypatch.setattr(hyper_sockets, "open_tcp", counting)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> ConnectionCounter:
    """A :class:`ConnectionCounter` active for the test."""
    return ConnectionCounter(monkeypatch)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_hashed(response: BaseResponse) -> tuple[int, str]:
    """Read the whole body with ``read(READ_SIZE)``; return its length and sha256."""
    digest = hashlib.sha256()
    total = 0
    while True:
        piece = response.read(READ_SIZE)
        if not piece:
            return total, digest.hexdigest()
        assert len(piece) <= READ_SIZE  # memory stays bounded by the read size
        digest.update(piece)
        total += len(piece)


def fetch(conn: AnyConnection, path: str, method: str = "GET", **kwargs: Any) -> AnyResponse:
    stream_id = conn.request(method, path, **kwargs)
    # Like http.client, HTTP11Connection.get_response() takes no stream id.
    if isinstance(conn, HTTP11Connection):
        return conn.get_response()
    return conn.get_response(stream_id)


@contextlib.contextmanager
def connect(
    target: InteropTarget, mode: str, counter: ConnectionCounter, *, enable_push: bool = False
) -> Iterator[AnyConnection]:
    """A connection in ``mode`` whose protocol has been checked (see the module docstring)."""
    endpoint = target.endpoints[mode]
    counter.port = endpoint.port
    conn: AnyConnection
    expected = HTTPVersion.http11 if mode == "h11-tls" else HTTPVersion.http20
    if endpoint.tls:
        context = init_context(cert_path=str(target.ca_cert_path))
        if mode == "h11-tls" and endpoint.h2_in_alpn:
            context.set_alpn_protocols(["http/1.1"])
            conn = HTTP11Connection(
                endpoint.host, endpoint.port, secure=True, ssl_context=context, timeout=TIMEOUT
            )
        else:
            conn = HTTPConnection(
                endpoint.host,
                endpoint.port,
                secure=True,
                ssl_context=context,
                enable_push=enable_push,
                timeout=TIMEOUT,
            )
        conn.connect()
    elif mode == "h2c-upgrade":
        conn = HTTPConnection(
            endpoint.host, endpoint.port, secure=False, enable_push=enable_push, timeout=TIMEOUT
        )
        response = fetch(conn, "/index.html")
        assert response.status == 200
        assert response.read() == target.docroot.read("index.html")
        # A server that answers 101 keeps the connection; one that speaks only HTTP/2 on
        # the port makes hyper resend the request with prior knowledge on a second one.
        assert counter.count == (1 if target.upgrade else 2)
        if target.closes_after_upgrade:
            # The server's GOAWAY follows the upgrade response, but on a loaded machine it
            # can come after one or more further requests were answered on the first
            # connection.  Send GETs until hyper has moved to its second connection (it
            # resends a GET the GOAWAY refused by itself), so that the check never races
            # the GOAWAY (see test_upload_refused_by_goaway_midway_is_sent_again for what
            # a POST does).  The deadline turns a server that stops sending it into a
            # failure rather than a hang.
            deadline = time.monotonic() + TIMEOUT
            while counter.count < 2:
                assert time.monotonic() < deadline, "no GOAWAY followed the upgrade"
                response = fetch(conn, "/index.html")
                assert response.status == 200
                assert response.read() == target.docroot.read("index.html")
            assert counter.count == 2
    else:
        conn = HTTP20Connection(
            endpoint.host, endpoint.port, secure=False, enable_push=enable_push, timeout=TIMEOUT
        )
        conn.connect()
    try:
        assert conn.version is expected
        opened = counter.count
        yield conn
        # Every check runs on the connection it was given: no reconnection on the way.
        assert counter.count == opened, "the check needed a new connection"
        assert conn.version is expected
    finally:
        conn.close()


# -- checks ------------------------------------------------------------------------------------


def check_get(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    response = fetch(conn, target.path("get"))
    assert response.status == 200
    body = response.read()
    name = target.path("get").lstrip("/")
    assert len(body) == target.docroot.sizes[name]
    assert sha256(body) == target.docroot.files[name]


def check_post(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    body = post_body()
    response = fetch(
        conn,
        target.path("post-10m"),
        method="POST",
        body=body,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status == 200
    assert read_hashed(response) == (len(body), sha256(body))


def check_gzip(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    response = fetch(conn, target.path("gzip"), headers={"accept-encoding": "gzip"})
    assert response.status == 200
    assert response.headers.get(b"content-encoding") == [b"gzip"]
    assert response.read() == target.docroot.read(TEXT_FILE)


def check_multiplex(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    names = [multiplex_file(index) for index in range(MULTIPLEX_COUNT)]
    bodies: dict[str, bytes] = {}
    if conn.version is HTTPVersion.http20:
        assert not isinstance(conn, HTTP11Connection)
        stream_ids = [conn.request("GET", f"/{name}") for name in names]
        assert len(set(stream_ids)) == MULTIPLEX_COUNT
        # Read in reverse order: the last request's response must not depend on the others.
        for name, stream_id in reversed(list(zip(names, stream_ids, strict=True))):
            response = conn.get_response(stream_id)
            assert response.status == 200, name
            bodies[name] = response.read()
    else:
        for name in names:
            response = fetch(conn, f"/{name}")
            assert response.status == 200, name
            bodies[name] = response.read()
    for name in names:
        assert sha256(bodies[name]) == target.docroot.files[name], name


def check_download(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    path = target.path("get-100m")
    response = fetch(conn, path)
    assert response.status == 200
    name = path.lstrip("/")
    assert read_hashed(response) == (target.docroot.sizes[name], target.docroot.files[name])


def check_trailers(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    path = target.path("trailers")
    response = fetch(conn, path, headers={"te": "trailers"})
    assert response.status == 200
    assert response.read() == target.docroot.read("index.html")
    trailers = response.trailers
    assert trailers is not None, "no trailers received"
    assert trailers.get(TRAILER[0]) == [TRAILER[1]]


def check_push(conn: AnyConnection, target: InteropTarget, mode: str) -> None:
    if not target.push:
        pytest.skip(f"{NA_PREFIX} {target.version} cannot push (http2_push was removed)")
    assert not isinstance(conn, HTTP11Connection)  # push is only tested over HTTP/2
    stream_id = conn.request("GET", target.path("push"))
    pushes = list(conn.get_pushes(stream_id, capture_all=True))
    response = conn.get_response(stream_id)
    assert response.status == 200
    assert response.read() == target.docroot.read(target.path("push").lstrip("/"))
    assert [push.path for push in pushes] == [f"/{PUSHED_FILE}".encode()]
    pushed = pushes[0].get_response()
    assert pushed.status == 200
    assert pushed.read() == target.docroot.read(PUSHED_FILE)


CHECK_FUNCTIONS: dict[str, Callable[[AnyConnection, InteropTarget, str], None]] = {
    "get": check_get,
    "post-10m": check_post,
    "gzip": check_gzip,
    "multiplex-50": check_multiplex,
    "get-100m": check_download,
    "trailers": check_trailers,
    "push": check_push,
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("server", "mode", "check"), list(_cases()))
def test_interop(
    request: pytest.FixtureRequest, counter: ConnectionCounter, server: str, mode: str, check: str
) -> None:
    if LOWEST_VERSIONS and server == "hypercorn" and check == "trailers":
        pytest.skip("hypercorn sends no trailers on the lowest h2 the tests allow")
    target: InteropTarget = request.getfixturevalue(f"interop_{server}")
    with connect(target, mode, counter, enable_push=check == "push") as conn:
        CHECK_FUNCTIONS[check](conn, target, mode)


def test_every_cell_is_run_or_explained() -> None:
    """The parametrisation and the n/a table together cover the whole matrix."""
    run = {tuple(case.values) for case in _cases()}
    for server in SERVERS:
        for mode in MODES:
            for check in CHECKS:
                explained = not_applicable(server, mode, check) is not None
                assert ((server, mode, check) in run) != explained, (server, mode, check)
    assert set(CHECK_FUNCTIONS) == set(CHECKS)


# -- a hyper bug the matrix ran into (Apache, h2c upgrade, POST 10 MiB) ------------------------
# Apache ends an upgraded connection with GOAWAY(last_stream_id=1) right after the upgrade
# request's response.  When hyper has already started the next request, a large POST, and
# is waiting for flow-control window when that GOAWAY arrives, request() raises "did not
# process this request; it is safe to send it again" instead of sending it again, although
# its body is in memory (get_response() does resend such requests).  In the matrix this is
# a race; here a scripted server makes it deterministic.


@pytest.mark.timeout(30)
def test_upload_refused_by_goaway_midway_is_sent_again(
    scripted_server: Callable[..., Any],
) -> None:
    body = post_body()[: 1024 * 1024]
    connections: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        connections.append(len(connections))  # handlers run one connection at a time here
        if len(connections) == 1:
            ctx.auto_ack = False  # grant no window: the client stays blocked mid-body
            ctx.handshake()
            ctx.wait_for_request()
            ctx.send_raw(goaway_bytes(0))  # stream 1 was never processed
            ctx.wait_closed()
            return
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        _, received = ctx.read_request(stream_id)
        ctx.respond(stream_id, 200, [(b"content-type", b"text/plain")], sha256(received).encode())
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=5) as (server, conn):
        stream_id = conn.request("POST", "/upload", body=body)
        assert conn.get_response(stream_id).read() == sha256(body).encode()
    assert server.connection_count == 2
