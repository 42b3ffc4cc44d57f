"""
TLS record boundaries end to end: hyper's clients (contexts from ``init_context``) against a
TLS server over memory BIOs that writes exact records and sends several of them in one TCP
write, so that one read of the socket brings many records, and data, control records and the
end of the stream share a segment. HTTP/1.1: head, body and close_notify in one segment;
chunked bodies in 5-byte records after interim responses; TLS 1.3 session tickets and a
response right after the handshake. HTTP/2: SETTINGS, response, GOAWAY and close_notify in
one segment; many streams from several threads; ALPN through ``HTTPConnection``. A record
left unseen in memory by a reader that waits on the socket shows as a ReadTimeout.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trustme

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.helpers import BioTLSServer

TIMEOUT = 3.0  # the client's read timeout: a hang shows up as ReadTimeout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def server_context(ca: trustme.CA, alpn: list[str], tickets: int = 0) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    ctx.num_tickets = tickets
    ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(ca_path: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = init_context(cert_path=ca_path)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class RecordWriter:
    """Collects records (one TLS record per piece) and sends them in one TCP write."""

    def __init__(self, bio: BioTLSServer) -> None:
        self.bio = bio
        self.wire = bytearray()

    def record(self, plaintext: bytes) -> None:
        for i in range(0, len(plaintext), 16384):
            self.bio.tls.write(plaintext[i : i + 16384])
            self.wire += self.bio.outgoing.read()

    def close_notify(self) -> None:
        try:
            self.bio.tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self.wire += self.bio.outgoing.read()

    def flush(self) -> None:
        self.bio.sock.sendall(bytes(self.wire))
        self.wire.clear()


class Server:
    """Accepts connections; runs handler(bio, number) for each in a thread."""

    def __init__(self, ctx: ssl.SSLContext, handler: Callable[[BioTLSServer, int], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.ctx = ctx
        self.handler = handler
        self.failures: list[BaseException] = []
        self.connections = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            n = self.connections
            threading.Thread(target=self.serve, args=(sock, n), daemon=True).start()

    def serve(self, sock: socket.socket, n: int) -> None:
        sock.settimeout(10)
        try:
            bio = BioTLSServer(sock, self.ctx)
            bio.handshake()
            self.handler(bio, n)
        except Exception as exc:
            if "closed" not in str(exc):
                self.failures.append(exc)
        finally:
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


def read_request(bio: BioTLSServer, buf: bytearray) -> bytes:
    while b"\r\n\r\n" not in buf:
        buf += bio.recv()
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    return head


@contextlib.contextmanager
def served(
    pki: tuple[trustme.CA, str],
    handler: Callable[[BioTLSServer, int], None],
    connection_class: Any,
    *,
    alpn: list[str],
    client_alpn: list[str] | None = None,
    tickets: int = 2,
    buffer_size: int | None = None,
) -> Iterator[tuple[Any, Server]]:
    """A :class:`Server` running ``handler`` and a hyper connection of ``connection_class``
    to it; both closed at the end, and the server's failures reported."""
    ca, ca_path = pki
    server = Server(server_context(ca, alpn, tickets=tickets), handler)
    conn = connection_class(
        "localhost",
        server.port,
        secure=True,
        ssl_context=client_context(ca_path, client_alpn),
        timeout=TIMEOUT,
    )
    if buffer_size is not None:
        conn.network_buffer_size = buffer_size
    try:
        yield conn, server
    finally:
        conn.close()
        server.close()
    assert not server.failures, server.failures


# -- HTTP/1.1 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer_size", [1024, 65536])
def test_h11_head_and_body_records_then_close_notify_in_one_segment(
    pki: Any, buffer_size: int
) -> None:
    body = bytes(range(256)) * 40  # 10 KiB

    def handler(bio: BioTLSServer, n: int) -> None:
        buf = bytearray()
        read_request(bio, buf)
        w = RecordWriter(bio)
        w.record(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 700):
            w.record(body[i : i + 700])
        w.close_notify()
        w.flush()

    with served(pki, handler, HTTP11Connection, alpn=["http/1.1"], buffer_size=buffer_size) as (
        conn,
        server,
    ):
        for _ in range(3):
            conn.request("GET", "/")
            r = conn.get_response()
            assert r.read() == body
        assert server.connections == 3  # each close_notify noticed before reuse


@pytest.mark.parametrize("buffer_size", [1024, 65536])
def test_h11_chunked_in_tiny_records_and_interim_responses(pki: Any, buffer_size: int) -> None:
    pieces = [bytes([65 + i % 26]) * (i * 37 % 900 + 1) for i in range(60)]

    def handler(bio: BioTLSServer, n: int) -> None:
        buf = bytearray()
        for _ in range(3):
            read_request(bio, buf)
            w = RecordWriter(bio)
            w.record(b"HTTP/1.1 100 Continue\r\n\r\n")
            w.record(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
            w.record(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for p in pieces:
                data = b"%x\r\n" % len(p) + p + b"\r\n"
                for i in range(0, len(data), 5):  # 5-byte records
                    w.record(data[i : i + 5])
            w.record(b"0\r\n")
            w.record(b"\r\n")
            w.flush()

    with served(pki, handler, HTTP11Connection, alpn=["http/1.1"], buffer_size=buffer_size) as (
        conn,
        server,
    ):
        for _ in range(3):
            conn.request("GET", "/")
            r = conn.get_response()
            assert r.status == 200
            assert r.read() == b"".join(pieces)
        assert server.connections == 1


def test_h11_response_pipelined_with_tickets_right_after_handshake(pki: Any) -> None:
    """Tickets and the whole response come in one segment; read_chunked pieces."""

    def handler(bio: BioTLSServer, n: int) -> None:
        buf = bytearray()
        read_request(bio, buf)
        w = RecordWriter(bio)
        w.record(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        w.record(b"abc")
        w.record(b"def")
        w.flush()
        # then nothing: keep-alive
        read_request(bio, buf)
        w.record(b"HTTP/1.1 204 No Content\r\n\r\n")
        w.flush()

    with served(pki, handler, HTTP11Connection, alpn=["http/1.1"], tickets=4) as (conn, server):
        conn.request("GET", "/")
        r = conn.get_response()
        assert r.read(3) == b"abc"
        assert r.read() == b"def"
        conn.request("GET", "/")
        assert conn.get_response().status == 204
        assert server.connections == 1


# -- HTTP/2 ---------------------------------------------------------------------------------------


def h2_server(
    bio: BioTLSServer,
    respond: Callable[[h2.connection.H2Connection, RecordWriter, int, list], bool],
) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    w = RecordWriter(bio)
    w.record(conn.data_to_send())
    w.flush()
    state: list = []
    while True:
        try:
            data = bio.recv()
        except Exception:
            return
        if not data:
            return
        events = conn.receive_data(data)
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived) and respond(conn, w, ev.stream_id, state):
                return
        out = conn.data_to_send()
        if out:
            w.record(out)
        if w.wire:
            w.flush()


@pytest.mark.parametrize("buffer_size", [1024, 65536])
def test_h2_response_goaway_close_notify_in_one_segment(pki: Any, buffer_size: int) -> None:

    def respond(conn: Any, w: RecordWriter, sid: int, state: list) -> bool:
        out = conn.data_to_send()
        if out:
            w.record(out)
        conn.send_headers(sid, [(":status", "200"), ("content-length", "5")])
        w.record(conn.data_to_send())
        conn.send_data(sid, b"hello", end_stream=True)
        w.record(conn.data_to_send())
        conn.close_connection(last_stream_id=sid)
        w.record(conn.data_to_send())
        w.close_notify()
        w.flush()
        return True

    with served(
        pki,
        lambda bio, n: h2_server(bio, respond),
        HTTP20Connection,
        alpn=["h2"],
        client_alpn=["h2"],
        buffer_size=buffer_size,
    ) as (conn, server):
        for _ in range(3):
            sid = conn.request("GET", "/")
            assert conn.get_response(sid).read() == b"hello"
        assert server.connections == 3


def test_h2_many_streams_threads(pki: Any) -> None:

    def respond(conn: Any, w: RecordWriter, sid: int, state: list) -> bool:
        conn.send_headers(sid, [(":status", "200")])
        w.record(conn.data_to_send())
        for i in range(5):
            conn.send_data(sid, b"x" * (sid * 13 % 200 + 1), end_stream=(i == 4))
            w.record(conn.data_to_send())
        conn.ping(b"12345678")
        w.record(conn.data_to_send())
        w.flush()
        return False

    errors: list[BaseException] = []

    def worker(conn: HTTP20Connection) -> None:
        try:
            for _ in range(30):
                sid = conn.request("GET", "/")
                data = conn.get_response(sid).read()
                assert data == b"x" * (sid * 13 % 200 + 1) * 5
        except BaseException as exc:
            errors.append(exc)

    handler = lambda bio, n: h2_server(bio, respond)  # noqa: E731
    with served(pki, handler, HTTP20Connection, alpn=["h2"], client_alpn=["h2"]) as (conn, _):
        threads = [threading.Thread(target=worker, args=(conn,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a reader hung"
    assert not errors, errors


def test_httpconnection_alpn_h2(pki: Any) -> None:

    def respond(conn: Any, w: RecordWriter, sid: int, state: list) -> bool:
        conn.send_headers(sid, [(":status", "200")])
        w.record(conn.data_to_send())
        conn.send_data(sid, b"ok", end_stream=True)
        w.record(conn.data_to_send())
        w.flush()
        return False

    with served(
        pki,
        lambda bio, n: h2_server(bio, respond),
        HTTPConnection,
        alpn=["h2"],
        client_alpn=["h2", "http/1.1"],
    ) as (conn, server):
        for _ in range(5):
            sid = conn.request("GET", "/")
            assert conn.get_response(sid).read() == b"ok"
        assert conn.version is HTTPVersion.http20
        assert server.connections == 1
