"""
Small helpers shared by the test modules: a scripted server with a connection to it, a time
bound on a block, raw GOAWAY bytes, a TLS server over memory BIOs, and a GET whatever the
connection class with a check of the file it fetched.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hyperframe.frame import GoAwayFrame

from hyper import HTTP20Connection

from .h2conn import PeerClosed

ServerFactory = Callable[..., Any]


@contextmanager
def serve(scripted_server: ServerFactory, handler: Any, **conn_kwargs: Any) -> Iterator[Any]:
    """Start ``handler`` on a scripted server and yield (server, connection)."""
    with scripted_server(handler) as server:
        conn_kwargs.setdefault("timeout", 5)
        conn = HTTP20Connection(server.host, server.port, secure=False, **conn_kwargs)
        try:
            yield server, conn
        finally:
            conn.close()


def localhost_tls(cls: Callable[..., Any], port: int, ca_cert_path: Any, **kwargs: Any) -> Any:
    """A connection of class ``cls`` to ``localhost:port`` over TLS, trusting the test CA,
    with ``localhost`` resolving to 127.0.0.1 alone (a resolver of the test's, so that
    the name is looked up: the DNS phase happens)."""
    from hyper.tls import init_context

    from .addresses import StaticResolver, sockaddr

    kwargs.setdefault("timeout", 5)
    return cls(
        "localhost",
        port,
        secure=True,
        ssl_context=init_context(cert_path=str(ca_cert_path)),
        resolver=StaticResolver("localhost", [sockaddr("127.0.0.1", port)]),
        **kwargs,
    )


@contextmanager
def quickly(limit: float = 2.0) -> Iterator[None]:
    """Assert the block finishes within ``limit`` seconds."""
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.2f}s, expected under {limit}s"


def fetch(conn: Any, path: str) -> Any:
    """GET ``path`` on any hyper connection and return the response
    (``HTTP11Connection.get_response`` takes no stream id)."""
    stream_id = conn.request("GET", path)
    if stream_id is None:
        return conn.get_response()
    return conn.get_response(stream_id)


def check_file(server: Any, name: str, body: bytes) -> None:
    """Assert ``body`` is docroot file ``name`` of ``server`` (an nghttpd or nginx fixture:
    its ``sizes`` and ``files`` map names to lengths and sha256 hex digests)."""
    assert len(body) == server.sizes[name], name
    assert hashlib.sha256(body).hexdigest() == server.files[name], name


def goaway_bytes(last_stream_id: int, error_code: int = 0) -> bytes:
    """A serialized GOAWAY frame. Sent raw, so the server's own h2 state stays open and it
    can go on answering the streams it accepted (h2 refuses to after its own GOAWAY)."""
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = error_code
    return frame.serialize()


class BioTLSServer:
    """Server-side TLS over memory BIOs, so a test can send a record in pieces."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def _feed(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise PeerClosed("the client closed the connection")
        self.incoming.write(data)

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self._feed()
        self.flush()

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def send(self, plaintext: bytes) -> None:
        self.tls.write(plaintext)
        self.flush()

    def recv(self) -> bytes:
        """The next plaintext; :class:`PeerClosed` once the client's close_notify (or TCP's
        end) arrives."""
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._feed()
                continue
            if not data:
                raise PeerClosed("the client sent its TLS closure alert")
            return data
