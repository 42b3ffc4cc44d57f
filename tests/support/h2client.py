"""A tiny, independent HTTP/2 client (raw socket + ``h2``) for checking test servers.

It exists so that fixtures can be verified without depending on the library
under test: one request per connection, bounded by a deadline.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

Header = tuple[bytes | str, bytes | str]


@dataclass
class H2Response:
    """Result of :func:`h2_request`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    alpn_protocol: str | None = None

    def header(self, name: bytes | str) -> bytes | None:
        """First value of header ``name`` (case-insensitive), or None."""
        wanted = (name.encode() if isinstance(name, str) else name).lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)


def client_ssl_context(ca_cert_path: str | None = None) -> ssl.SSLContext:
    """A verifying client context trusting ``ca_cert_path`` and offering ALPN ``h2``."""
    context = ssl.create_default_context(cafile=ca_cert_path)
    context.set_alpn_protocols(["h2"])
    return context


def h2_request(
    host: str,
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[Header] = (),
    body: bytes = b"",
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str = "localhost",
    timeout: float = 5.0,
) -> H2Response:
    """Send one request over a fresh HTTP/2 connection (prior knowledge when no TLS).

    :raises AssertionError: on timeout, EOF, stream reset or GOAWAY before the end.
    """
    deadline = time.monotonic() + timeout
    raw = socket.create_connection((host, port), timeout=timeout)
    sock: socket.socket = raw
    try:
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(raw, server_hostname=server_hostname)
        alpn = sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else None
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.initiate_connection()
        scheme = "https" if ssl_context is not None else "http"
        request_headers: list[Header] = [
            (":method", method),
            (":scheme", scheme),
            (":authority", f"{host}:{port}"),
            (":path", path),
            *headers,
        ]
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, request_headers, end_stream=not body)
        sock.sendall(conn.data_to_send())
        unsent = memoryview(body)
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        trailers: list[tuple[bytes, bytes]] = []
        received = bytearray()
        while True:
            while unsent:
                size = min(
                    conn.local_flow_control_window(stream_id),
                    conn.max_outbound_frame_size,
                    len(unsent),
                )
                if size <= 0:
                    break
                conn.send_data(stream_id, bytes(unsent[:size]), end_stream=size == len(unsent))
                unsent = unsent[size:]
                sock.sendall(conn.data_to_send())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no complete response for {path} within {timeout}s")
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"server closed the connection before {path} completed")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = [(bytes(n), bytes(v)) for n, v in event.headers]
                    status = int(dict(response_headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    received += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = [(bytes(n), bytes(v)) for n, v in event.headers]
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream reset by server: {event.error_code!r}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise AssertionError(f"GOAWAY from server: {event.error_code!r}")
                elif isinstance(event, h2.events.StreamEnded):
                    conn.close_connection()
                    sock.sendall(conn.data_to_send())
                    return H2Response(status, response_headers, bytes(received), trailers, alpn)
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
    finally:
        sock.close()
