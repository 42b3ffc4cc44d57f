"""A scripted SOCKS4/4a/5 proxy: the handler of a
:class:`~tests.support.scripted.ScriptedRawServer` that records exactly what each client asked
for, checks SOCKS5 credentials or a SOCKS4 user id, and relays the connection to the
destination it was asked for (or refuses it).

Dante covers the protocol against a real proxy; this peer covers what Dante cannot show or
do: whether the client sent a host name or an address, SOCKS4a, and SOCKS5 username/password
authentication (RFC 1928, RFC 1929; SOCKS4 and 4a as in their protocol notes).
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import struct
import threading
from dataclasses import dataclass

from .threaded import DEFAULT_TIMEOUT

#: SOCKS5 reply codes (RFC 1928 section 6) the peer sends.
SOCKS5_SUCCEEDED = 0x00
SOCKS5_NOT_ALLOWED = 0x02
SOCKS5_REFUSED = 0x05
#: SOCKS4 reply codes.
SOCKS4_GRANTED = 0x5A
SOCKS4_REJECTED = 0x5B
#: The longest a relayed connection may stay silent both ways before the peer drops it.
RELAY_IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class SocksRequest:
    """One CONNECT request as the peer received it.

    ``host`` is the address (as text) or the name the client sent; ``by_name`` says which
    (SOCKS5 address type 3, or a SOCKS4a name). ``username`` and ``password`` are the SOCKS5
    credentials (``username`` alone: the SOCKS4 user id), ``None`` when none were sent.
    """

    version: int
    host: str
    port: int
    by_name: bool
    username: str | None = None
    password: str | None = None


class _Closed(Exception):
    """The client closed the connection in the middle of the handshake."""


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return bytes(data)


def _read_until_nul(sock: socket.socket, limit: int = 1024) -> bytes:
    data = bytearray()
    while (byte := _read_exactly(sock, 1)) != b"\x00":
        data += byte
        if len(data) > limit:
            raise AssertionError("SOCKS4 field without its NUL")
    return bytes(data)


class SocksPeer:
    """The handler: ``scripted_raw_server(SocksPeer(...))``.

    :param credentials: ``(user, password)`` the SOCKS5 client must authenticate with
        (``None``: no authentication).
    :param refuse: a SOCKS5 reply code to refuse every CONNECT with (SOCKS4: rejected).
    :ivar requests: the requests received, in order.
    """

    def __init__(
        self, *, credentials: tuple[str, str] | None = None, refuse: int | None = None
    ) -> None:
        self.credentials = credentials
        self.refuse = refuse
        self.requests: list[SocksRequest] = []
        self._lock = threading.Lock()

    def __call__(self, sock: socket.socket) -> None:
        sock.settimeout(DEFAULT_TIMEOUT)
        try:
            version = _read_exactly(sock, 1)[0]
            if version == 5:
                upstream = self._socks5(sock)
            elif version == 4:
                upstream = self._socks4(sock)
            else:
                raise AssertionError(f"not a SOCKS client: first byte {version:#04x}")
        except _Closed:
            return
        if upstream is not None:
            with upstream:
                _relay(sock, upstream)

    def _record(self, request: SocksRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- SOCKS5 -------------------------------------------------------------------------------

    def _socks5(self, sock: socket.socket) -> socket.socket | None:
        methods = _read_exactly(sock, _read_exactly(sock, 1)[0])
        wanted = 0x02 if self.credentials is not None else 0x00
        if wanted not in methods:
            sock.sendall(b"\x05\xff")  # no acceptable method
            return None
        sock.sendall(bytes([5, wanted]))
        username = password = None
        if wanted == 0x02:
            assert _read_exactly(sock, 1) == b"\x01", "RFC 1929 sub-negotiation version"
            username = _read_exactly(sock, _read_exactly(sock, 1)[0]).decode("latin-1")
            password = _read_exactly(sock, _read_exactly(sock, 1)[0]).decode("latin-1")
            if (username, password) != self.credentials:
                sock.sendall(b"\x01\x01")
                return None
            sock.sendall(b"\x01\x00")
        version, command, _, address_type = _read_exactly(sock, 4)
        assert (version, command) == (5, 1), "a SOCKS5 CONNECT"
        if address_type == 1:
            host = socket.inet_ntop(socket.AF_INET, _read_exactly(sock, 4))
        elif address_type == 4:
            host = socket.inet_ntop(socket.AF_INET6, _read_exactly(sock, 16))
        else:
            assert address_type == 3, f"address type {address_type}"
            host = _read_exactly(sock, _read_exactly(sock, 1)[0]).decode("ascii")
        (port,) = struct.unpack("!H", _read_exactly(sock, 2))
        self._record(SocksRequest(5, host, port, address_type == 3, username, password))
        upstream = None if self.refuse is not None else _dial(host, port)
        if upstream is None:
            code = self.refuse if self.refuse is not None else SOCKS5_REFUSED
            sock.sendall(bytes([5, code, 0, 1]) + bytes(6))
            return None
        sock.sendall(bytes([5, SOCKS5_SUCCEEDED, 0, 1]) + bytes(6))
        return upstream

    # -- SOCKS4 and 4a ------------------------------------------------------------------------

    def _socks4(self, sock: socket.socket) -> socket.socket | None:
        command, port, packed = struct.unpack("!BH4s", _read_exactly(sock, 7))
        assert command == 1, "a SOCKS4 CONNECT"
        user_id = _read_until_nul(sock).decode("latin-1")
        address = ipaddress.IPv4Address(packed)
        # SOCKS4a: 0.0.0.x (x != 0) means "the name follows".
        by_name = packed[:3] == b"\x00\x00\x00" and packed[3] != 0
        host = _read_until_nul(sock).decode("ascii") if by_name else str(address)
        self._record(SocksRequest(4, host, port, by_name, user_id or None))
        expected_user = self.credentials[0] if self.credentials is not None else None
        refused = self.refuse is not None or (
            expected_user is not None and user_id != expected_user
        )
        upstream = None if refused else _dial(host, port)
        code = SOCKS4_GRANTED if upstream is not None else SOCKS4_REJECTED
        sock.sendall(bytes([0, code]) + bytes(6))
        return upstream


def _dial(host: str, port: int) -> socket.socket | None:
    """Connect to the destination (the peer resolves names, as a proxy does)."""
    try:
        return socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT)
    except OSError:
        return None


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or both stay silent too long)."""
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            ready = selector.select(RELAY_IDLE_TIMEOUT)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    with contextlib.suppress(OSError):
                        key.data.shutdown(socket.SHUT_WR)
                    return
                try:
                    key.data.sendall(data)
                except OSError:
                    return
