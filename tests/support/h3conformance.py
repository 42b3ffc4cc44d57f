"""A raw HTTP/3 server for the conformance tests of RFC 9114 and RFC 9204.

QUIC and TLS are qh3's, in server mode; everything above QUIC is the test's. The server
records every byte the client sends on every stream, how the client reset or stopped
streams and how it closed the connection, so a test can check what hyper put on the wire;
and a test's script decides, stream by stream, what the server sends back: well-formed
responses (:meth:`RawConnection.respond`) or any bytes on any stream, including streams the
server opens itself.

It runs in one thread of its own with a plain UDP socket: datagrams in, QUIC's timers, then
datagrams out, without asyncio. Scripts run in that thread with the server's lock held; the
test's thread reads what was recorded under the same lock (:meth:`RawH3Server.wait_for`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pylsqpack
from qh3 import QuicConfiguration, QuicConnection
from qh3.quic.events import (
    ConnectionTerminated,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)

from hyper import HTTP30Connection

from .certs import CertPaths, TLSMaterial
from .h3peer import CONTROL_STREAM, HEADERS, SETTINGS, frame, prefixed, response_frames, varint

#: HTTP/3 unidirectional stream types (RFC 9114 section 6.2, RFC 9204 section 4.2).
PUSH_STREAM, ENCODER_STREAM, DECODER_STREAM = 0x1, 0x2, 0x3
#: HTTP/3 frame types not in :mod:`tests.support.h3peer` (RFC 9114 section 7.2).
CANCEL_PUSH, PUSH_PROMISE, MAX_PUSH_ID = 0x3, 0x5, 0xD
#: SETTINGS identifiers (RFC 9114 section 7.2.4.1, RFC 9204 section 5).
QPACK_MAX_TABLE_CAPACITY, MAX_FIELD_SECTION_SIZE, QPACK_BLOCKED_STREAMS = 0x1, 0x6, 0x7

#: The longest a test waits for the client to do something.
WAIT = 5.0


def read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """The QUIC variable-length integer at ``offset`` and the offset after it."""
    length = 1 << (data[offset] >> 6)
    value = data[offset] & 0x3F
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    return value, offset + length


def _varints(data: bytes) -> Iterator[int]:
    offset = 0
    while offset < len(data):
        value, offset = read_varint(data, offset)
        yield value


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The ``(type, payload)`` of every whole HTTP/3 frame in ``data``."""
    frames = []
    offset = 0
    while offset < len(data):
        kind, offset = read_varint(data, offset)
        length, offset = read_varint(data, offset)
        frames.append((kind, data[offset : offset + length]))
        offset += length
    return frames


def settings_payload(settings: dict[int, int] | list[tuple[int, int]]) -> bytes:
    """A SETTINGS frame's payload: identifier and value pairs, in order."""
    pairs = settings.items() if isinstance(settings, dict) else settings
    return b"".join(varint(key) + varint(value) for key, value in pairs)


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    """The identifier and value pairs of a SETTINGS payload, in order."""
    values = list(_varints(payload))
    return list(zip(values[::2], values[1::2], strict=True))


def qpack_string(data: bytes, bits: int, flags: int = 0) -> bytes:
    """A QPACK string literal without Huffman coding, its length on ``bits`` bits."""
    return prefixed(len(data), bits, flags) + data


# -- QPACK instructions and field lines (RFC 9204 sections 4.3 to 4.5), written by hand -----


def set_capacity(capacity: int) -> bytes:
    """Encoder instruction: Set Dynamic Table Capacity."""
    return prefixed(capacity, 5, 0x20)


def insert_literal(name: bytes, value: bytes) -> bytes:
    """Encoder instruction: Insert with Literal Name."""
    return qpack_string(name, 5, 0x40) + qpack_string(value, 7)


def insert_static_name(index: int, value: bytes) -> bytes:
    """Encoder instruction: Insert with Name Reference to the static table."""
    return prefixed(index, 6, 0xC0) + qpack_string(value, 7)


def duplicate(relative: int) -> bytes:
    """Encoder instruction: Duplicate the entry at a relative index."""
    return prefixed(relative, 5, 0x00)


def section_prefix(encoded_insert_count: int, delta_base: int = 0, sign: bool = False) -> bytes:
    """An encoded field section's prefix: the Required Insert Count as encoded (section
    4.5.1.1: ``insert count % (2 * max entries) + 1``, 0 for none) and the Base."""
    return prefixed(encoded_insert_count, 8, 0x00) + prefixed(delta_base, 7, 0x80 if sign else 0)


def indexed_static(index: int) -> bytes:
    """Field line: Indexed Field Line into the static table."""
    return prefixed(index, 6, 0xC0)


def indexed_dynamic(relative: int) -> bytes:
    """Field line: Indexed Field Line into the dynamic table, relative to the Base."""
    return prefixed(relative, 6, 0x80)


def indexed_post_base(index: int) -> bytes:
    """Field line: Indexed Field Line with Post-Base Index."""
    return prefixed(index, 4, 0x10)


#: The static table's ``:status: 200`` (RFC 9204 Appendix A).
STATUS_200 = 25


#: A script: called in the server's thread for each piece of a request stream that arrives
#: (``ended`` once the request's end arrived).
Script = Callable[["RawConnection", int, bool], None]


def answer_ok(connection: RawConnection, stream_id: int, ended: bool) -> None:
    """The default script: a 200 response with the body ``ok`` to every whole request."""
    if ended:
        connection.respond(stream_id)


@dataclass
class RawConnection:
    """One QUIC connection of the server, what the client sent on it, and the means to
    answer."""

    index: int
    quic: QuicConnection
    #: The bytes the client sent on each stream.
    streams: dict[int, bytearray] = field(default_factory=dict)
    #: The streams the client ended (FIN), in order.
    ended: list[int] = field(default_factory=list)
    #: RESET_STREAM and STOP_SENDING from the client: stream id -> error code.
    resets: dict[int, int] = field(default_factory=dict)
    stops: dict[int, int] = field(default_factory=dict)
    #: How the connection ended, once it has.
    terminated: ConnectionTerminated | None = None
    #: The server's control stream, once opened.
    control_id: int | None = None

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """Send ``data`` on a stream."""
        self.quic.send_stream_data(stream_id, data, end_stream=end)

    def open_uni(self, data: bytes, end: bool = False) -> int:
        """Open a unidirectional stream and send ``data`` (its type first) on it."""
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=True)
        self.send(stream_id, data, end)
        return stream_id

    def open_control(self, payload: bytes) -> None:
        """Open the server's control stream with ``payload`` as its first bytes."""
        self.control_id = self.open_uni(varint(CONTROL_STREAM) + payload)

    def control(self, data: bytes, end: bool = False) -> None:
        """Send more on the server's control stream."""
        assert self.control_id is not None
        self.send(self.control_id, data, end)

    def respond(
        self,
        stream_id: int,
        status: int = 200,
        body: bytes = b"ok",
        fields: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Send a whole response of QPACK literals and end the stream."""
        self.send(stream_id, response_frames(status, body, fields), end=True)

    def client_uni_streams(self) -> dict[int, bytes]:
        """The client's unidirectional streams by stream id, their bytes type first."""
        return {sid: bytes(data) for sid, data in self.streams.items() if sid % 4 == 2}

    def client_stream_of_type(self, kind: int) -> bytes:
        """What the client sent on its unidirectional stream of type ``kind``, after the
        type."""
        for data in self.client_uni_streams().values():
            if data:
                value, offset = read_varint(data)
                if value == kind:
                    return data[offset:]
        raise AssertionError(f"the client opened no stream of type {kind}")

    def request_frames(self, stream_id: int) -> list[tuple[int, bytes]]:
        """The HTTP/3 frames of a request stream."""
        return parse_frames(bytes(self.streams.get(stream_id, b"")))

    def request_headers(self, stream_id: int) -> list[tuple[bytes, bytes]]:
        """The request's header section, decoded (the server advertised no dynamic table,
        so it refers to none)."""
        headers = [payload for kind, payload in self.request_frames(stream_id) if kind == HEADERS]
        assert headers, f"no HEADERS frame on stream {stream_id}"
        decoder = pylsqpack.Decoder(0, 0)
        _, fields = decoder.feed_header(stream_id, headers[0])
        return list(fields)

    def close_code(self) -> int | None:
        """The error code the client closed the connection with, if it did."""
        return self.terminated.error_code if self.terminated is not None else None


class RawH3Server:
    """
    The server: ``port`` is its UDP port on ``host``.

    :param configuration: qh3's server configuration (ALPN ``h3``, the certificate).
    :param script: what to do with request streams (see :data:`Script`).
    :param preface: what the server's control stream carries after its type, sent as soon as
        the client's first packet is processed; ``None`` opens no control stream.
    :param on_open: called with each new connection after the preface is queued.
    """

    def __init__(
        self,
        configuration: QuicConfiguration,
        script: Script,
        preface: bytes | None,
        on_open: Callable[[RawConnection], None] | None,
        host: str,
    ) -> None:
        self.configuration = configuration
        self.script = script
        self.preface = preface
        self.on_open = on_open
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]
        self.connections: list[RawConnection] = []
        self.cond = threading.Condition()
        self._by_address: dict[tuple[str, int], RawConnection] = {}
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="h3-raw", daemon=True)

    def stop(self) -> None:
        """Stop the server's thread and close its socket."""
        self._stop = True
        self.thread.join(10)
        self.sock.close()

    def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT) -> bool:
        """Wait, up to ``timeout`` seconds, until ``predicate`` (called with the lock held)
        is true; returns whether it became true."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def connection(self, index: int = 0) -> RawConnection:
        """The ``index``-th connection, once it exists (waits up to :data:`WAIT`)."""
        assert self.wait_for(lambda: len(self.connections) > index), "no such connection"
        return self.connections[index]

    def closed_with(self, index: int = 0) -> int | None:
        """Wait for the client to close connection ``index``; its error code."""
        connection = self.connection(index)
        self.wait_for(lambda: connection.terminated is not None)
        return connection.close_code()

    # -- the server's thread ------------------------------------------------------------

    def _run(self) -> None:
        sock = self.sock
        while not self._stop:
            now = time.monotonic()
            timers = [t for c in self.connections if (t := c.quic.get_timer()) is not None]
            wait = min([0.05, *(t - now for t in timers)])
            sock.settimeout(max(wait, 0.001))
            try:
                data, address = sock.recvfrom(65536)
            except (TimeoutError, OSError):
                data, address = b"", None
            with self.cond:
                now = time.monotonic()
                if address is not None:
                    self._datagram(data, address, now)
                for connection in self.connections:
                    timer = connection.quic.get_timer()
                    if timer is not None and timer <= now:
                        connection.quic.handle_timer(now)
                    self._events(connection)
                    for datagram, to in connection.quic.datagrams_to_send(now):
                        sock.sendto(datagram, to)
                self.cond.notify_all()

    def _datagram(self, data: bytes, address: tuple[str, int], now: float) -> None:
        connection = self._by_address.get(address)
        if connection is None:
            if len(data) < 7 or not data[0] & 0x80:
                return  # not a long header packet: not the start of a connection
            dcid = data[6 : 6 + data[5]]  # the Initial's Destination Connection ID
            quic = QuicConnection(
                configuration=self.configuration, original_destination_connection_id=dcid
            )
            connection = RawConnection(len(self.connections), quic)
            self.connections.append(connection)
            self._by_address[address] = connection
            connection.quic.receive_datagram(data, address, now)
            if self.preface is not None:
                connection.open_control(self.preface)
            if self.on_open is not None:
                self.on_open(connection)
            return
        connection.quic.receive_datagram(data, address, now)

    def _events(self, connection: RawConnection) -> None:
        while (event := connection.quic.next_event()) is not None:
            if isinstance(event, StreamDataReceived):
                stream = connection.streams.setdefault(event.stream_id, bytearray())
                stream += event.data
                if event.end_stream:
                    connection.ended.append(event.stream_id)
                if event.stream_id % 4 == 0:
                    self.script(connection, event.stream_id, event.end_stream)
            elif isinstance(event, StreamReset):
                connection.resets[event.stream_id] = event.error_code
            elif isinstance(event, StopSendingReceived):
                connection.stops[event.stream_id] = event.error_code
            elif isinstance(event, ConnectionTerminated):
                connection.terminated = event


#: What the server's control stream carries by default: an empty SETTINGS frame.
EMPTY_SETTINGS = frame(SETTINGS, b"")


@contextmanager
def run_raw_h3(
    cert: CertPaths,
    script: Script = answer_ok,
    *,
    preface: bytes | None = EMPTY_SETTINGS,
    on_open: Callable[[RawConnection], None] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[RawH3Server]:
    """Run a :class:`RawH3Server` on a free UDP port of ``host`` until the block ends."""
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    configuration.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    server = RawH3Server(configuration, script, preface, on_open, host)
    server.thread.start()
    try:
        yield server
    finally:
        server.stop()


def connect_client(
    server: RawH3Server, tls: TLSMaterial, timeout: float = 10.0
) -> HTTP30Connection:
    """An :class:`~hyper.HTTP30Connection` to ``server`` that trusts the test CA."""
    return HTTP30Connection(server.host, server.port, cert_path=tls.ca_cert_path, timeout=timeout)
