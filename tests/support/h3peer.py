"""A scripted HTTP/3 server: qh3's QUIC in server mode, HTTP/3 frames written by hand, so
that a test decides what each request gets (an answer, a reset, a GOAWAY, the end of the
connection).

It runs qh3's asyncio server in a thread of its own. QUIC and TLS are qh3's; HTTP/3 is this
module's, minimal on purpose: a control stream with an empty SETTINGS frame, responses whose
header sections are QPACK literals (no dynamic table, no Huffman coding), and requests
recognised by their order on the connection, not decoded. That is all a client needs to see,
and it lets the script send what a normal server would not.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qh3 import QuicConfiguration, QuicConnection
from qh3.asyncio import QuicConnectionProtocol, serve
from qh3.quic.events import QuicEvent, StreamDataReceived

from .certs import CertPaths

#: HTTP/3 frame and stream types (RFC 9114 sections 6.2 and 7.2).
DATA, HEADERS, SETTINGS, GOAWAY = 0x0, 0x1, 0x4, 0x7
CONTROL_STREAM = 0x0


def varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 section 16)."""
    if value < 0x40:
        return value.to_bytes(1, "big")
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    return (value | 0xC000000000000000).to_bytes(8, "big")


def frame(kind: int, payload: bytes) -> bytes:
    """One HTTP/3 frame."""
    return varint(kind) + varint(len(payload)) + payload


def prefixed(value: int, bits: int, flags: int) -> bytes:
    """An HPACK/QPACK prefixed integer (RFC 7541 section 5.1) under ``flags``."""
    limit = (1 << bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def qpack_literals(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A QPACK field section of literal field lines with literal names (RFC 9204 section
    4.5.6), referring to no table."""
    out = bytearray(b"\x00\x00")  # Required Insert Count 0, Base 0
    for name, value in headers:
        out += prefixed(len(name), 3, 0x20) + name
        out += prefixed(len(value), 7, 0x00) + value
    return bytes(out)


def response_frames(
    status: int, body: bytes, fields: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """HEADERS and DATA of a complete response; ``fields`` replace the default
    ``content-length``."""
    if fields is None:
        fields = [(b"content-length", str(len(body)).encode())]
    headers = [(b":status", str(status).encode()), *fields]
    return frame(HEADERS, qpack_literals(headers)) + (frame(DATA, body) if body else b"")


@dataclass
class Exchange:
    """One request as the server saw it, and the means to answer it."""

    #: Which connection (0 for the first) and which request on it (0 for the first).
    connection: int
    index: int
    stream_id: int
    quic: QuicConnection
    peer: H3Peer

    def respond(
        self,
        status: int = 200,
        body: bytes = b"ok",
        fields: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Send a whole response and end the stream (``fields``: see
        :func:`response_frames`)."""
        data = response_frames(status, body, fields)
        self.quic.send_stream_data(self.stream_id, data, end_stream=True)

    def reset(self, error_code: int) -> None:
        """Reset the stream (RESET_STREAM) with an HTTP/3 error code."""
        self.quic.reset_stream(self.stream_id, error_code)

    def goaway(self, stream_id: int) -> None:
        """Send GOAWAY on the control stream: requests from ``stream_id`` on are not
        processed."""
        self.peer.send_control(self.quic, frame(GOAWAY, varint(stream_id)))

    def close(self, error_code: int, reason: str = "scripted") -> None:
        """End the connection with CONNECTION_CLOSE and ``error_code``."""
        self.quic.close(error_code=error_code, reason_phrase=reason)


#: What the server does with a request: called with it once its request has arrived whole.
Script = Callable[[Exchange], None]


@dataclass
class H3Peer:
    """A running scripted server: ``port`` is its UDP port; ``seen`` lists the
    ``(connection, index, stream_id)`` of every request that arrived."""

    host: str
    port: int
    script: Script
    seen: list[tuple[int, int, int]] = field(default_factory=list)
    _controls: dict[int, int] = field(default_factory=dict)
    _connections: int = 0

    def send_control(self, quic: QuicConnection, data: bytes) -> None:
        """Write ``data`` on this connection's control stream (opened with SETTINGS first)."""
        key = id(quic)
        stream_id = self._controls.get(key)
        if stream_id is None:
            stream_id = quic.get_next_available_stream_id(is_unidirectional=True)
            self._controls[key] = stream_id
            quic.send_stream_data(stream_id, varint(CONTROL_STREAM) + frame(SETTINGS, b""))
        quic.send_stream_data(stream_id, data)

    def protocol(self, quic: QuicConnection, **kwargs: Any) -> QuicConnectionProtocol:
        """The ``create_protocol`` for qh3's server: one scripted protocol per connection."""
        connection = self._connections
        self._connections += 1
        peer = self
        requests: dict[int, int] = {}

        class Scripted(QuicConnectionProtocol):
            def quic_event_received(self, event: QuicEvent) -> None:
                if not isinstance(event, StreamDataReceived) or event.stream_id % 4 != 0:
                    return  # only client-initiated bidirectional (request) streams matter
                peer.send_control(quic, b"")  # SETTINGS goes out before any answer
                index = requests.setdefault(event.stream_id, len(requests))
                if event.end_stream:
                    peer.seen.append((connection, index, event.stream_id))
                    peer.script(Exchange(connection, index, event.stream_id, quic, peer))
                    self.transmit()

        return Scripted(quic, **kwargs)


@contextmanager
def run_h3_peer(
    cert: CertPaths,
    script: Script,
    host: str = "127.0.0.1",
    *,
    peer_type: type[H3Peer] = H3Peer,
    configure: Callable[[QuicConfiguration], None] | None = None,
) -> Iterator[H3Peer]:
    """Run a scripted HTTP/3 server on a free UDP port of ``host`` until the block ends.

    :param peer_type: the peer to run (a subclass scripts more than :class:`H3Peer`).
    :param configure: changes the server's QUIC configuration before it starts.
    """
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    configuration.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    if configure is not None:
        configure(configuration)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    peer = peer_type(host, port, script)
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                serve(host, port, configuration=configuration, create_protocol=peer.protocol)
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    thread = threading.Thread(target=run, name="h3-peer", daemon=True)
    thread.start()
    if not ready.wait(10) or failure:
        raise RuntimeError(f"the scripted HTTP/3 server did not start: {failure}")
    try:
        yield peer
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
