"""Hostile HTTP/3 servers: the scripted server of :mod:`tests.support.h3peer`, with the means
to misbehave at the level of QUIC packets and HTTP/3 frames.

A script gets a :class:`HostileExchange`, which can, besides what
:class:`~tests.support.h3peer.Exchange` does:

* write any bytes on the request stream (:meth:`HostileExchange.send`): a response cut
  short, frames out of order, unknown frame types, a header block of any size or one
  declared longer than it is, QPACK references to nothing;
* make the whole connection go silent (:meth:`HostileExchange.go_silent`): from then on the
  server sends no packet at all, not even an acknowledgement, and ignores what arrives, as
  a server that crashed or a network that went dark;
* keep the connection alive without answering (:meth:`HostileExchange.keep_alive`): PING
  frames at an interval, so QUIC's idle timeout never passes;
* act once the client has acknowledged everything sent so far
  (:meth:`HostileExchange.when_acknowledged`), so that a reset comes after the data before
  it has surely arrived, without any sleep.

The server also keeps what the client sent on its unidirectional streams, so a test can read
the client's SETTINGS (:meth:`HostilePeer.client_settings`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qh3 import QuicConfiguration, QuicConnection
from qh3.asyncio import QuicConnectionProtocol
from qh3.quic.events import (
    ConnectionTerminated,
    PingAcknowledged,
    QuicEvent,
    StreamDataReceived,
)

from .certs import CertPaths
from .h3peer import (
    CONTROL_STREAM,
    DATA,
    HEADERS,
    SETTINGS,
    Exchange,
    H3Peer,
    frame,
    prefixed,
    qpack_literals,
    run_h3_peer,
)

#: SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 section 7.2.4.1).
MAX_FIELD_SECTION_SIZE_SETTING = 0x6
#: A reserved frame type (RFC 9114 section 7.2.8: 0x1f * N + 0x21), which must be ignored.
RESERVED_FRAME = 0x1F * 7 + 0x21
#: A frame type no specification defines, which must be ignored too (section 9).
UNKNOWN_FRAME = 0x2A


def read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """A QUIC variable-length integer at ``pos``, and the position after it."""
    length = 1 << (data[pos] >> 6)
    value = int.from_bytes(data[pos : pos + length], "big") & ((1 << (8 * length - 2)) - 1)
    return value, pos + length


def headers_frame(status: int, fields: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A HEADERS frame with ``:status`` and ``fields``, as QPACK literals."""
    return frame(HEADERS, qpack_literals([(b":status", str(status).encode()), *(fields or [])]))


def trailers_frame(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A HEADERS frame of trailers."""
    return frame(HEADERS, qpack_literals(fields))


def data_frame(body: bytes) -> bytes:
    """A DATA frame."""
    return frame(DATA, body)


def qpack_block(required_insert_count: int, *lines: bytes) -> bytes:
    """A QPACK field section (RFC 9204 section 4.5): its prefix with the encoded Required
    Insert Count and a Base equal to it, then ``lines`` as they are."""
    return prefixed(required_insert_count, 8, 0x00) + b"\x00" + b"".join(lines)


def indexed_line(index: int, *, static: bool) -> bytes:
    """An indexed field line (RFC 9204 section 4.5.2): a reference to the static table, or a
    relative one to the dynamic table."""
    return prefixed(index, 6, 0xC0 if static else 0x80)


@dataclass
class HostileExchange(Exchange):
    """One request, as :class:`~tests.support.h3peer.Exchange`, and the connection's
    protocol, to misbehave on."""

    protocol: HostileProtocol | None = None

    def _link(self) -> HostileProtocol:
        assert self.protocol is not None
        return self.protocol

    def send(self, data: bytes, end_stream: bool = False) -> None:
        """Write ``data`` on the request stream as it is."""
        self.quic.send_stream_data(self.stream_id, data, end_stream=end_stream)

    def go_silent(self) -> None:
        """Send what is queued, then nothing more on this connection, ever: no data, no
        acknowledgement, no answer to anything."""
        self._link().go_silent()

    def keep_alive(self, interval: float) -> None:
        """Send a PING every ``interval`` seconds from now on (until the connection goes
        silent or ends): the connection stays alive without anything else sent."""
        self._link().keep_alive(interval)

    def when_acknowledged(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the client has acknowledged what was sent so far (the
        packet of a PING sent after it)."""
        self._link().when_acknowledged(action)


class HostileProtocol(QuicConnectionProtocol):
    """One connection of a :class:`HostilePeer`: requests go to the peer's script as
    :class:`HostileExchange` objects."""

    def __init__(
        self, quic: QuicConnection, *, peer: HostilePeer, connection: int, **kwargs: Any
    ) -> None:
        super().__init__(quic, **kwargs)
        self.quic = quic
        self.peer = peer
        self.connection = connection
        self.requests: dict[int, int] = {}
        self.silent = False
        self.ended = False
        self.acknowledged: dict[int, Callable[[], None]] = {}
        self.ping_ids = itertools.count(1)

    # -- misbehaving ---------------------------------------------------------------------

    def go_silent(self) -> None:
        """See :meth:`HostileExchange.go_silent`."""
        self.transmit()
        self.silent = True

    def keep_alive(self, interval: float) -> None:
        """See :meth:`HostileExchange.keep_alive`."""
        loop = asyncio.get_running_loop()

        def ping() -> None:
            if self.silent or self.ended:
                return
            self.quic.send_ping(next(self.ping_ids))
            self.transmit()
            loop.call_later(interval, ping)

        loop.call_later(interval, ping)

    def when_acknowledged(self, action: Callable[[], None]) -> None:
        """See :meth:`HostileExchange.when_acknowledged`."""
        uid = next(self.ping_ids)
        self.acknowledged[uid] = action
        self.quic.send_ping(uid)

    # -- silence: nothing out, nothing in ------------------------------------------------

    def transmit(self) -> None:
        """Send what QUIC wants sent, unless the connection went silent."""
        if not self.silent:
            super().transmit()

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        """Process a datagram, unless the connection went silent."""
        if not self.silent:
            super().datagram_received(data, addr)

    def datagrams_received(self, data: list[bytes], addr: Any) -> None:
        """Process datagrams, unless the connection went silent."""
        if not self.silent:
            super().datagrams_received(data, addr)

    # -- events ----------------------------------------------------------------------------

    def quic_event_received(self, event: QuicEvent) -> None:
        """Hand each whole request to the script; keep the client's unidirectional
        streams; run the actions waiting for acknowledgements."""
        if isinstance(event, ConnectionTerminated):
            self.ended = True
        elif isinstance(event, PingAcknowledged):
            action = self.acknowledged.pop(event.uid, None)
            if action is not None:
                action()
                self.transmit()
        elif isinstance(event, StreamDataReceived):
            if event.stream_id % 4 == 2:
                key = (self.connection, event.stream_id)
                self.peer.client_streams.setdefault(key, bytearray()).extend(event.data)
            elif event.stream_id % 4 == 0:
                self._request_data(event)

    def _request_data(self, event: StreamDataReceived) -> None:
        peer = self.peer
        quic = self.quic
        peer.send_control(quic, b"")  # SETTINGS goes out before any answer
        index = self.requests.setdefault(event.stream_id, len(self.requests))
        if event.end_stream:
            peer.seen.append((self.connection, index, event.stream_id))
            exchange = HostileExchange(
                self.connection, index, event.stream_id, quic, peer, protocol=self
            )
            peer.script(exchange)
            self.transmit()


@dataclass
class HostilePeer(H3Peer):
    """A running hostile server (see :class:`~tests.support.h3peer.H3Peer`):
    ``client_streams`` holds what the client sent on each unidirectional stream, by
    ``(connection, stream_id)``; ``connections`` counts the connections so far."""

    client_streams: dict[tuple[int, int], bytearray] = field(default_factory=dict)
    connections: int = 0

    def protocol(self, quic: QuicConnection, **kwargs: Any) -> QuicConnectionProtocol:
        """The ``create_protocol`` for qh3's server: one hostile protocol per connection."""
        connection = self.connections
        self.connections += 1
        return HostileProtocol(quic, peer=self, connection=connection, **kwargs)

    def client_settings(self, connection: int = 0) -> dict[int, int]:
        """The SETTINGS the client sent on its control stream on ``connection``."""
        for (number, _), data in self.client_streams.items():
            if number != connection or not data:
                continue
            kind, pos = read_varint(data, 0)
            if kind != CONTROL_STREAM:
                continue
            frame_type, pos = read_varint(data, pos)
            length, pos = read_varint(data, pos)
            assert frame_type == SETTINGS, "SETTINGS must be the control stream's first frame"
            settings: dict[int, int] = {}
            end = pos + length
            while pos < end:
                identifier, pos = read_varint(data, pos)
                settings[identifier], pos = read_varint(data, pos)
            return settings
        raise AssertionError(f"no control stream from the client on connection {connection}")


#: What a hostile server does with a request.
HostileScript = Callable[[HostileExchange], None]


@contextmanager
def run_hostile_peer(
    cert: CertPaths,
    script: HostileScript,
    configure: Callable[[QuicConfiguration], None] | None = None,
) -> Iterator[HostilePeer]:
    """Run a hostile HTTP/3 server on a free UDP port of 127.0.0.1 until the block ends."""

    def dispatch(exchange: Exchange) -> None:
        assert isinstance(exchange, HostileExchange)
        script(exchange)

    with run_h3_peer(cert, dispatch, peer_type=HostilePeer, configure=configure) as peer:
        assert isinstance(peer, HostilePeer)
        yield peer
