"""HTTP/1.1: a response that arrives while the request body is still going out.

RFC 9112 section 9.5: a client sending a body watches for an error response, and stops
sending when the server does not want the body and is closing the connection. These tests
script servers that answer after the request head: hyper must give the caller that answer in
bounded time, stop the body when the answer closes the connection, and never reuse a
connection whose request did not go out whole. A 1xx, and any answer that keeps the
connection open, let the body go on to its end (RFC 9110 section 7.5).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyper import HTTP11Connection
from hyper.common.exceptions import ConnectionClosed
from hyper.common.request import BodyArg
from hyper.tls import init_context
from tests.support.h11_peer import recv_head
from tests.support.http11 import build_response, reader_for, send_raw
from tests.support.introspect import http11_socket
from tests.support.scripted import ScriptedRawServer, abort_socket

ServerFactory = Callable[..., ScriptedRawServer]

#: The client's timeout. A body hyper failed to stop would block its send this long (the
#: servers here stop reading), so a test that ends well within it shows the body stopped.
TIMEOUT = 10.0
#: Bound for the servers' own waits.
WAIT = 5.0
#: Uploads are PIECES pieces of PIECE bytes: far more than the socket buffers hold, so a
#: server that stops reading makes the send wait.
PIECE = 64 * 1024
PIECES = 1024
TOTAL = PIECE * PIECES
#: The refusal the servers send, and its body.
TOO_BIG = build_response(413, headers=[("Connection", "close")], body=b"too big")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: What a server answers a request that has no body to refuse.
NEXT = build_response(200, body=b"next")

BODY_KINDS = ["content-length", "chunked", "file", "bytes"]


class Upload:
    """A request body of TOTAL bytes in one of the shapes hyper sends, and how much of it
    hyper took (read from the file, or drawn from the iterable)."""

    def __init__(self, kind: str, tmp_path: Path | None = None) -> None:
        self.kind = kind
        self.headers: dict[str, str] = {}
        self._drawn = 0
        self._file: Any = None
        self.body: BodyArg
        if kind == "file":
            assert tmp_path is not None, "a file body needs a directory"
            path = tmp_path / "upload.bin"
            with path.open("wb") as out:
                out.truncate(TOTAL)  # sparse: costs no disk
            self._file = self.body = path.open("rb")
        elif kind == "bytes":
            self.body = bytes(TOTAL)
        else:
            self.body = self._pieces()
            if kind == "content-length":
                self.headers["Content-Length"] = str(TOTAL)

    def _pieces(self) -> Iterator[bytes]:
        piece = b"u" * PIECE
        for _ in range(PIECES):
            self._drawn += PIECE
            yield piece

    @property
    def taken(self) -> int | None:
        """How much of the body hyper took (``None`` for bytes, which are all there)."""
        if self._file is not None:
            return int(self._file.tell())
        return None if self.kind == "bytes" else self._drawn

    def close(self) -> None:
        """Close the file, if the body is one."""
        if self._file is not None:
            self._file.close()


@pytest.fixture(params=BODY_KINDS)
def upload(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Upload]:
    """The request body, in each shape."""
    body = Upload(request.param, tmp_path)
    yield body
    body.close()


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def tls(request: pytest.FixtureRequest) -> bool:
    """Whether the connection uses TLS."""
    return bool(request.param)


def _client(server: ScriptedRawServer, tls: bool, ca_cert_path: Path) -> HTTP11Connection:
    if not tls:
        return HTTP11Connection(*server.address, timeout=TIMEOUT)
    context = init_context(cert_path=str(ca_cert_path))
    context.set_alpn_protocols(["http/1.1"])
    return HTTP11Connection(
        "127.0.0.1", server.port, secure=True, ssl_context=context, timeout=TIMEOUT
    )


def _body_start(head: bytes) -> int:
    """How many body bytes came with the request head."""
    return len(head) - head.index(b"\r\n\r\n") - 4


def _drain(sock: socket.socket) -> int:
    """Read until the client closes the connection; how many bytes came. A client that
    never closes it fails the handler with a time-out. Over TLS the client may end with an
    alert: the servers here shut TCP without a closure alert, which TLS reports as an
    error."""
    sock.settimeout(WAIT)
    count = 0
    with contextlib.suppress(ConnectionResetError, ssl.SSLError):
        while data := sock.recv(PIECE):
            count += len(data)
    return count


def _read_exactly(sock: socket.socket, count: int) -> None:
    """Read and drop ``count`` bytes of the request body."""
    sock.settimeout(WAIT)
    while count:
        data = sock.recv(min(count, PIECE))
        assert data, "the client closed the connection mid-body"
        count -= len(data)


def _refusing_server(
    received: list[int],
    *,
    reads_on: bool,
    release: threading.Event,
    before: Callable[[socket.socket], int] | None = None,
) -> Callable[[socket.socket], None]:
    """A server that refuses every POST with 413 and Connection: close, after its head (and
    after ``before(sock)``, which returns how many body bytes it read). It then shuts its
    sending side and either goes on reading (``reads_on``: a lingering close) or reads
    nothing until ``release``; either way it records in ``received`` how much of the body
    it got by the time the client closed. Other requests get 200."""

    def handler(sock: socket.socket) -> None:
        head = recv_head(sock, WAIT)
        if head is None:
            return
        if not head.startswith(b"POST "):
            send_raw(sock, NEXT)
            return
        count = _body_start(head) + (before(sock) if before is not None else 0)
        send_raw(sock, TOO_BIG)
        socket.socket.shutdown(sock, socket.SHUT_WR)
        if not reads_on:
            assert release.wait(WAIT)
        received.append(count + _drain(sock))

    return handler


# -- an answer that closes the connection stops the body ------------------------------------------


@pytest.mark.parametrize("reads_on", [False, True], ids=["stops-reading", "reads-on"])
def test_a_closing_refusal_stops_the_body_and_the_connection_is_not_reused(
    scripted_raw_server: ServerFactory,
    ca_cert_path: Path,
    tls: bool,
    upload: Upload,
    reads_on: bool,
) -> None:
    received: list[int] = []
    release = threading.Event()
    handler = _refusing_server(received, reads_on=reads_on, release=release)
    with scripted_raw_server(handler, tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            started = time.monotonic()
            conn.request("POST", "/upload", body=upload.body, headers=upload.headers)
            response = conn.get_response()
            assert (response.status, response.read()) == (413, b"too big")
            elapsed = time.monotonic() - started
            assert http11_socket(conn) is None  # closed once the response was read
            release.set()
            conn.request("GET", "/next")
            assert conn.get_response().read() == b"next"
        srv.join_handlers()
    assert elapsed < TIMEOUT / 2
    assert srv.connection_count == 2
    assert len(received) == 1 and received[0] < TOTAL
    taken = upload.taken
    assert taken is None or taken < TOTAL


def test_an_interim_response_does_not_stop_the_body(
    scripted_raw_server: ServerFactory, ca_cert_path: Path, tls: bool
) -> None:
    """A 100 (Continue) is skipped and the body goes on; the 413 after it stops it."""
    read_before_refusing = 4 * PIECE
    received: list[int] = []

    def read_some(sock: socket.socket) -> int:
        send_raw(sock, CONTINUE)
        _read_exactly(sock, read_before_refusing)
        return read_before_refusing

    handler = _refusing_server(
        received, reads_on=True, release=threading.Event(), before=read_some
    )
    upload = Upload("chunked")
    with scripted_raw_server(handler, tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            conn.request("POST", "/upload", body=upload.body, headers={"Expect": "100-continue"})
            response = conn.get_response()
            assert (response.status, response.read()) == (413, b"too big")
        srv.join_handlers()
    assert read_before_refusing <= received[0] < TOTAL
    assert upload.taken is not None and upload.taken < TOTAL


# -- answers that let the body go on --------------------------------------------------------------


def _early_answer_server(
    answer: bytes, received: list[int], paths: list[str]
) -> Callable[[socket.socket], None]:
    """A server that sends ``answer`` right after a POST's head, then reads the whole body
    (Content-Length) and serves the requests that follow on the same connection."""

    def handler(sock: socket.socket) -> None:
        head = recv_head(sock, WAIT)
        if head is None:
            return
        send_raw(sock, answer)
        _read_exactly(sock, TOTAL - _body_start(head))
        received.append(TOTAL)
        while (request := reader_for(sock).next_request(wait=WAIT)) is not None:
            paths.append(request.path)
            send_raw(sock, NEXT)

    return handler


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (CONTINUE + build_response(200, body=b"stored"), 200, b"stored"),
        (build_response(201, body=b"created"), 201, b"created"),
        (build_response(303, headers=[("Location", "/elsewhere")], body=b""), 303, b""),
        (build_response(401, body=b"who are you?"), 401, b"who are you?"),
    ],
    ids=["continue-then-200", "early-201", "early-303", "early-401"],
)
def test_an_early_answer_that_keeps_the_connection_lets_the_body_finish(
    scripted_raw_server: ServerFactory,
    ca_cert_path: Path,
    tls: bool,
    answer: bytes,
    status: int,
    body: bytes,
) -> None:
    """The server answered without closing: it said it reads on (RFC 9110 10.1.1), so the
    body goes out whole (RFC 9110 7.5), a refusal's too, and the connection carries the
    next request."""
    received: list[int] = []
    paths: list[str] = []
    upload = Upload("content-length")
    with scripted_raw_server(_early_answer_server(answer, received, paths), tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            conn.request("POST", "/upload", body=upload.body, headers=upload.headers)
            response = conn.get_response()
            assert (response.status, response.read()) == (status, body)
            conn.request("GET", "/next")
            assert conn.get_response().read() == b"next"
        srv.join_handlers()
    assert received == [TOTAL]
    assert upload.taken == TOTAL
    assert paths == ["/next"]
    assert srv.connection_count == 1


def test_an_early_success_that_closes_stops_the_body(
    scripted_raw_server: ServerFactory, ca_cert_path: Path, tls: bool
) -> None:
    received: list[int] = []
    upload = Upload("content-length")

    def handler(sock: socket.socket) -> None:
        head = recv_head(sock, WAIT)
        if head is None:
            return
        send_raw(sock, build_response(200, headers=[("Connection", "close")], body=b"enough"))
        socket.socket.shutdown(sock, socket.SHUT_WR)
        received.append(_body_start(head) + _drain(sock))

    with scripted_raw_server(handler, tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            conn.request("POST", "/upload", body=upload.body, headers=upload.headers)
            response = conn.get_response()
            assert (response.status, response.read()) == (200, b"enough")
            assert http11_socket(conn) is None
        srv.join_handlers()
    assert received[0] < TOTAL
    assert upload.taken is not None and upload.taken < TOTAL


@pytest.mark.parametrize("status", [200, 413])
def test_an_early_answer_whose_server_stops_reading_is_returned_after_the_send_times_out(
    scripted_raw_server: ServerFactory, status: int
) -> None:
    """An answer that keeps the connection lets the body go on; when the server then reads
    nothing (breaking its word), the send times out, and the caller still gets the answer,
    not the time-out. The connection, its request cut short, is not reused."""
    release = threading.Event()

    def handler(sock: socket.socket) -> None:
        if recv_head(sock, WAIT) is None:
            return
        send_raw(sock, build_response(status, body=b"early"))
        assert release.wait(WAIT)

    upload = Upload("content-length")
    with scripted_raw_server(handler) as srv:
        with HTTP11Connection(*srv.address, timeout=0.5) as conn:
            conn.request("POST", "/upload", body=upload.body, headers=upload.headers)
            response = conn.get_response()
            assert (response.status, response.read()) == (status, b"early")
            assert http11_socket(conn) is None
            release.set()
        srv.join_handlers()
    assert upload.taken is not None and upload.taken < TOTAL


# -- a send the server's close cuts short ---------------------------------------------------------


def _gated_body(gate: threading.Event) -> Iterator[bytes]:
    """A body whose first piece waits for ``gate``: the server has acted by then."""
    assert gate.wait(WAIT)
    for _ in range(PIECES):
        yield b"u" * PIECE


def test_a_send_the_server_reset_after_answering_returns_the_answer(
    scripted_raw_server: ServerFactory, ca_cert_path: Path, tls: bool
) -> None:
    answered = threading.Event()

    def handler(sock: socket.socket) -> None:
        head = recv_head(sock, WAIT)
        if head is None:
            return
        if head.startswith(b"POST "):
            send_raw(sock, TOO_BIG)
            abort_socket(sock)  # a reset: the client's next send fails
            answered.set()
        else:
            send_raw(sock, NEXT)

    with scripted_raw_server(handler, tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            conn.request("POST", "/upload", body=_gated_body(answered))
            response = conn.get_response()
            assert (response.status, response.read()) == (413, b"too big")
            conn.request("GET", "/next")
            assert conn.get_response().read() == b"next"
        srv.join_handlers()
    assert srv.connection_count == 2


def test_a_send_the_server_reset_without_answering_raises(
    scripted_raw_server: ServerFactory, ca_cert_path: Path, tls: bool
) -> None:
    closed = threading.Event()

    def handler(sock: socket.socket) -> None:
        if recv_head(sock, WAIT) is not None:
            abort_socket(sock)
        closed.set()

    with scripted_raw_server(handler, tls=tls) as srv:
        with _client(srv, tls, ca_cert_path) as conn:
            with pytest.raises(ConnectionClosed):
                conn.request("POST", "/upload", body=_gated_body(closed))
            assert http11_socket(conn) is None
        srv.join_handlers()
