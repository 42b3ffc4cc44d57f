"""
The client side of a SOCKS ``CONNECT`` handshake, without I/O: SOCKS5 (:rfc:`1928`) with no
authentication or a user name and password (:rfc:`1929`), and SOCKS4 with its 4a extension
(a host name for the proxy to resolve).

:class:`Handshake` says what to send and how many bytes of the proxy's reply it needs next;
the caller moves the bytes (:func:`hyper.common.sockets.open_connection` does, over a socket
it connected with Happy Eyeballs). It never asks for a byte past the end of the proxy's last
reply, so whatever the destination sends first (a plaintext HTTP/2 server's SETTINGS) stays
unread in the socket for the connection that runs through the tunnel.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

from .exceptions import InvalidRequest, ProxyError

__all__ = [
    "SOCKS4_GRANTED",
    "SOCKS4_REPLIES",
    "SOCKS5_REPLIES",
    "Handshake",
    "destination_field",
]

#: SOCKS5 reply codes (:rfc:`1928` section 6) and what they mean, in the RFC's words.
SOCKS5_REPLIES: Mapping[int, str] = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "Network unreachable",
    0x04: "Host unreachable",
    0x05: "Connection refused",
    0x06: "TTL expired",
    0x07: "Command not supported",
    0x08: "Address type not supported",
}

#: The SOCKS4 reply code that grants a request.
SOCKS4_GRANTED = 0x5A

#: SOCKS4 reply codes that refuse a request, and what they mean.
SOCKS4_REPLIES: Mapping[int, str] = {
    0x5B: "request rejected or failed",
    0x5C: "request rejected: the proxy cannot reach the identd of the client",
    0x5D: "request rejected: identd reports another user id than the request's",
}

#: SOCKS5 authentication methods: none, user name and password, none acceptable.
_NO_AUTH, _PASSWORD, _NONE_ACCEPTABLE = 0x00, 0x02, 0xFF
#: SOCKS5 address types.
_IPV4, _NAME, _IPV6 = 0x01, 0x03, 0x04
#: The CONNECT command, in both versions.
_CONNECT = 0x01

# The steps of a handshake: what the next reply answers.
(
    _METHOD,
    _AUTH,
    _DESTINATION,
    _REPLY_HEAD,
    _NAME_LENGTH,
    _BOUND_ADDRESS,
    _SOCKS4_REPLY,
    _DONE,
) = range(8)


def destination_field(host: str) -> tuple[int, bytes]:
    """
    How a SOCKS request names ``host``: an IPv4 or IPv6 address packed (address types 1 and
    4), anything else as a host name (type 3), which must already be ASCII (an A-label).

    :raises InvalidRequest: for a host name of more than 255 bytes, or one that is not
        ASCII.
    """
    for family, kind in ((socket.AF_INET, _IPV4), (socket.AF_INET6, _IPV6)):
        try:
            return kind, socket.inet_pton(family, host)
        except OSError:
            continue
    try:
        name = host.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidRequest(f"a SOCKS request names hosts in ASCII, not {host!r}") from None
    if not 0 < len(name) <= 255:
        raise InvalidRequest(f"host name too long for a SOCKS request: {host[:60]}...")
    return _NAME, name


class Handshake:
    """
    One client handshake asking a SOCKS proxy for a TCP connection to ``host``:``port``.

    Send :meth:`data_to_send`, read exactly :attr:`wanted` bytes (fewer at a time is fine)
    and give them to :meth:`receive`; repeat until :attr:`done`. A SOCKS5 handshake begun
    without its destination stops, once the proxy has accepted the client, at
    :attr:`needs_destination` until :meth:`set_destination` gives it.

    :param version: 4 or 5.
    :param host: the destination: an IP address as text, or (SOCKS5, SOCKS4a) an ASCII host
        name for the proxy to resolve. SOCKS4 takes IPv4 addresses and names only. ``None``
        (SOCKS5 only): given later, with :meth:`set_destination`.
    :param port: the destination port.
    :param username: the SOCKS5 user name, or the SOCKS4 user id (``None``: none).
    :param password: the SOCKS5 password; SOCKS5 authenticates when ``username`` and
        ``password`` are both given.
    :param proxy: how messages name the proxy (its URL without credentials).
    :raises InvalidRequest: for a destination the protocol cannot name.
    """

    __slots__ = (
        "_host",
        "_outgoing",
        "_password",
        "_pending",
        "_port",
        "_proxy",
        "_step",
        "_username",
        "_version",
        "wanted",
    )

    _step: int

    def __init__(
        self,
        version: int,
        host: str | None,
        port: int,
        username: str | None = None,
        password: str | None = None,
        proxy: str = "the SOCKS proxy",
    ) -> None:
        if version not in (4, 5):
            raise InvalidRequest(f"no SOCKS version {version!r}: 4 or 5")
        self._version = version
        if host is None and version == 4:
            raise InvalidRequest("a SOCKS4 request names its destination from the start")
        self._host = None if host is None else destination_field(host)
        if version == 4 and self._host is not None and self._host[0] == _IPV6:
            raise InvalidRequest(f"SOCKS4 cannot name the IPv6 address {host}: use SOCKS5")
        self._port = port
        self._username = username
        self._password = password
        self._proxy = proxy
        self._pending = bytearray()
        #: How many more bytes of the proxy's reply the handshake needs (0 once done).
        self.wanted = 0
        if version == 5:
            methods = bytes([_NO_AUTH, _PASSWORD] if self._authenticates else [_NO_AUTH])
            self._outgoing = bytes([5, len(methods)]) + methods
            self._expect(_METHOD, 2)
        else:
            self._outgoing = self._socks4_request()
            self._expect(_SOCKS4_REPLY, 8)

    @property
    def done(self) -> bool:
        """Whether the proxy granted the connection: the socket is now a pipe to the
        destination."""
        return self._step == _DONE

    @property
    def needs_destination(self) -> bool:
        """Whether the handshake waits for :meth:`set_destination` (the proxy accepted the
        client; the connection request is next)."""
        return self._step == _DESTINATION

    def set_destination(self, host: str) -> None:
        """
        Give the destination of a handshake begun without one: an IP address as text, or an
        ASCII host name for the proxy to resolve. The connection request is then
        :meth:`data_to_send`.

        :raises InvalidRequest: for a name the protocol cannot carry, or a destination given
            twice.
        """
        if self._host is not None:
            raise InvalidRequest("the SOCKS handshake already has its destination")
        self._host = destination_field(host)
        if self._step == _DESTINATION:
            self._send_connect()

    @property
    def _authenticates(self) -> bool:
        return self._username is not None and self._password is not None

    def data_to_send(self) -> bytes:
        """What to send the proxy now (``b""``: nothing until its next reply)."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive(self, data: bytes) -> None:
        """
        Take bytes of the proxy's reply: at most :attr:`wanted`.

        :raises ProxyError: if the proxy refused (``status``: its reply code, SOCKS5 or
            SOCKS4; ``None`` for a refused authentication) or broke the protocol.
        :raises ValueError: for more bytes than :attr:`wanted`.
        """
        if len(data) > self.wanted:
            raise ValueError(f"{len(data)} bytes given, {self.wanted} wanted")
        self._pending += data
        self.wanted -= len(data)
        if self.wanted:
            return
        reply, self._pending = bytes(self._pending), bytearray()
        step = self._step
        if step == _METHOD:
            self._method_chosen(reply)
        elif step == _AUTH:
            self._authenticated(reply)
        elif step == _REPLY_HEAD:
            self._reply_head(reply)
        elif step == _NAME_LENGTH:
            self._expect(_BOUND_ADDRESS, reply[0] + 2)
        elif step == _BOUND_ADDRESS:
            self._step = _DONE
        elif step == _SOCKS4_REPLY:
            self._socks4_reply(reply)

    # -- SOCKS5 ---------------------------------------------------------------------------------

    def _method_chosen(self, reply: bytes) -> None:
        self._check_version(reply[0], 5)
        method = reply[1]
        if method == _NO_AUTH:
            self._send_connect()
        elif method == _PASSWORD and self._authenticates:
            assert self._username is not None and self._password is not None
            user = self._username.encode("ascii")
            password = self._password.encode("ascii")
            self._outgoing = bytes([1, len(user)]) + user + bytes([len(password)]) + password
            self._expect(_AUTH, 2)
        elif method == _NONE_ACCEPTABLE:
            offered = "none or a user name and password" if self._authenticates else "none"
            hint = "" if self._authenticates else " (give credentials in the proxy URL)"
            raise ProxyError(
                f"SOCKS proxy {self._proxy} accepted no authentication method hyper offered: "
                f"{offered}{hint}"
            )
        else:
            raise self._invalid(f"it chose authentication method {method:#04x}, never offered")

    def _authenticated(self, reply: bytes) -> None:
        # RFC 1929's version byte is 1, but some proxies answer 5: only the status counts.
        status = reply[1]
        if status != 0:
            raise ProxyError(
                f"SOCKS proxy {self._proxy} refused the user name and password "
                f"(authentication failure, status {status:#04x})"
            )
        self._send_connect()

    def _send_connect(self) -> None:
        if self._host is None:
            self._expect(_DESTINATION, 0)
            return
        kind, field = self._host
        if kind == _NAME:
            field = bytes([len(field)]) + field
        self._outgoing = bytes([5, _CONNECT, 0, kind]) + field + struct.pack("!H", self._port)
        self._expect(_REPLY_HEAD, 4)

    def _reply_head(self, reply: bytes) -> None:
        self._check_version(reply[0], 5)
        code, kind = reply[1], reply[3]
        if code != 0:
            reason = SOCKS5_REPLIES.get(code, "unknown reply code")
            raise ProxyError(self._refusal(reason, code), code, reason)
        if kind == _IPV4:
            self._expect(_BOUND_ADDRESS, 4 + 2)
        elif kind == _IPV6:
            self._expect(_BOUND_ADDRESS, 16 + 2)
        elif kind == _NAME:
            self._expect(_NAME_LENGTH, 1)
        else:
            raise self._invalid(f"address type {kind:#04x} in its reply")

    # -- SOCKS4 ---------------------------------------------------------------------------------

    def _socks4_request(self) -> bytes:
        assert self._host is not None  # required for SOCKS4 (see __init__)
        kind, field = self._host
        user = (self._username or "").encode("ascii") + b"\0"
        port = struct.pack("!H", self._port)
        if kind == _IPV4:
            return bytes([4, _CONNECT]) + port + field + user
        # SOCKS4a: the address 0.0.0.x (x not 0) says that the name follows the user id.
        return bytes([4, _CONNECT]) + port + b"\0\0\0\1" + user + field + b"\0"

    def _socks4_reply(self, reply: bytes) -> None:
        self._check_version(reply[0], 0)
        code = reply[1]
        if code == SOCKS4_GRANTED:
            self._step = _DONE
            return
        reason = SOCKS4_REPLIES.get(code)
        if reason is None:
            raise self._invalid(f"reply code {code:#04x}")
        raise ProxyError(self._refusal(reason, code), code, reason)

    # -- common ---------------------------------------------------------------------------------

    def _expect(self, step: int, size: int) -> None:
        self._step = step
        self.wanted = size

    def _check_version(self, version: int, expected: int) -> None:
        if version != expected:
            raise self._invalid(f"SOCKS version {version} in its reply, not {expected}")

    def _refusal(self, reason: str, code: int) -> str:
        assert self._host is not None  # refusals answer the request, which named it
        kind, field = self._host
        if kind == _NAME:
            host = field.decode("ascii")
        else:
            family = socket.AF_INET if kind == _IPV4 else socket.AF_INET6
            host = socket.inet_ntop(family, field)
        where = f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}"
        return (
            f"SOCKS proxy {self._proxy} refused the connection to {where}: {reason} "
            f"(reply code {code:#04x})"
        )

    def _invalid(self, what: str) -> ProxyError:
        return ProxyError(f"SOCKS proxy {self._proxy} sent an invalid reply: {what}")
