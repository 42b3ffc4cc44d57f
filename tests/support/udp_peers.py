"""UDP peers that stand where a QUIC server would: one that swallows every datagram (a
firewall that drops QUIC), and one that answers with Version Negotiation."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

#: The datagram that stops a peer's thread (sent by :meth:`UDPPeer.close` from its own host).
_STOP = b"hyper-tests-stop"


class UDPPeer:
    """
    A UDP socket on 127.0.0.1 served by a thread: ``answer`` gets each datagram and returns
    the reply to send, or ``None`` for none. ``received`` counts the datagrams.
    """

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.received = 0
        self._answer = answer
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            packet, peer = self.sock.recvfrom(65536)
            if packet == _STOP and self._stopping:
                return
            self.received += 1
            reply = self._answer(packet)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self._stopping = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(_STOP, ("127.0.0.1", self.port))
        self._thread.join(5)
        self.sock.close()


def swallowing_peer() -> UDPPeer:
    """A peer that reads every datagram and never answers."""
    return UDPPeer(lambda packet: None)


#: A reserved QUIC version (the 0x?a?a?a?a pattern of RFC 9000 section 15): no client
#: speaks it.
UNSPOKEN_VERSION = 0x1A2A3A4A


def version_negotiation(packet: bytes) -> bytes | None:
    """The Version Negotiation packet (RFC 9000 section 17.2.1) answering a long-header
    ``packet``, offering only :data:`UNSPOKEN_VERSION`; ``None`` for anything else."""
    if len(packet) < 7 or not packet[0] & 0x80:
        return None
    dcid_len = packet[5]
    dcid = packet[6 : 6 + dcid_len]
    scid_len = packet[6 + dcid_len]
    scid = packet[7 + dcid_len : 7 + dcid_len + scid_len]
    # The peer's connection ids swap places in the answer.
    return (
        bytes([0x80 | 0x2B])
        + (0).to_bytes(4, "big")
        + bytes([len(scid)])
        + scid
        + bytes([len(dcid)])
        + dcid
        + UNSPOKEN_VERSION.to_bytes(4, "big")
    )
