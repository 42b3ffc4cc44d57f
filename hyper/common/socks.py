"""
SOCKS proxies: telling a SOCKS proxy URL in ``proxy_host`` from an HTTP proxy, and asking a
proxy for a connection over a socket connected to it (:func:`handshake`; the protocol itself
is :mod:`hyper.common.socks_protocol`'s). :func:`hyper.common.sockets.open_connection`
connects to the proxy, with Happy Eyeballs like every TCP connection of hyper's.

A SOCKS proxy is a tunnel for everything, plain ``http`` included: hyper asks it for a TCP
connection to the origin and then speaks to the origin as it would directly (TLS with SNI and
certificate checks for the origin's name, origin-form requests, ``h2c``). ``socks4a://`` and
``socks5h://`` send the origin's name to the proxy, which resolves it; ``socks4://`` and
``socks5://`` resolve it locally and send an address.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple
from urllib.parse import unquote

from . import eyeballs
from .exceptions import ConnectTimeout, InvalidRequest, ProxyError, SocketError
from .eyeballs import ConnectPolicy
from .hosts import encode_host
from .request import HeadersArg
from .socks_protocol import Handshake, destination_field
from .util import authority_for, resolve_host_port, resolve_proxy

#: The SOCKS URL schemes: protocol version, and whether the proxy resolves host names.
SOCKS_SCHEMES: Mapping[str, tuple[int, bool]] = {
    "socks4": (4, False),
    "socks4a": (4, True),
    "socks5": (5, False),
    "socks5h": (5, True),
}

#: The port of a SOCKS proxy whose URL names none (the port IANA assigned to SOCKS).
DEFAULT_SOCKS_PORT = 1080

#: The port of an ``http://`` proxy URL that names none (as for a bare ``host``).
DEFAULT_HTTP_PROXY_PORT = 8080

#: The longest host name, user name or password a SOCKS5 request can carry (one length byte).
_MAX_FIELD = 255


class SocksProxy(NamedTuple):
    """
    A SOCKS proxy, as named by a ``socks4://``, ``socks4a://``, ``socks5://`` or
    ``socks5h://`` URL. (A named tuple: ``import hyper`` stays free of :mod:`dataclasses`,
    which costs as much to import as the rest of hyper's HTTP/1.1 side.)

    :ivar scheme: the URL's scheme, lower case.
    :ivar host: the proxy's host name or address (IPv6 without brackets).
    :ivar port: the proxy's port.
    :ivar username: the SOCKS5 user name, or the SOCKS4 user id; ``None`` for none.
    :ivar password: the SOCKS5 password (left out of ``repr``); ``None`` for none.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return (
            f"SocksProxy(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"username={self.username!r})"
        )

    @property
    def version(self) -> int:
        """The SOCKS protocol version: 4 or 5."""
        return SOCKS_SCHEMES[self.scheme][0]

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy resolves the origin's host name (``socks4a``, ``socks5h``)."""
        return SOCKS_SCHEMES[self.scheme][1]

    def __str__(self) -> str:
        """The proxy's URL without credentials, for messages."""
        return f"{self.scheme}://{authority_for(self.host, self.port, default_port=-1)}"


class ProxySettings(NamedTuple):
    """What a connection's ``proxy_host`` and ``proxy_port`` arguments name: an HTTP proxy
    (``http_host`` and ``http_port``), a SOCKS proxy (``socks``), or neither."""

    #: The HTTP proxy's host, or ``None``.
    http_host: str | None
    #: The HTTP proxy's port, or ``None``.
    http_port: int | None
    #: The SOCKS proxy, or ``None``.
    socks: SocksProxy | None


def parse_proxy(
    proxy_host: str | None,
    proxy_port: int | str | None,
    proxy_headers: HeadersArg | None = None,
) -> ProxySettings:
    """
    Read a connection's proxy arguments. ``proxy_host`` is one of:

    * ``None``: no proxy;
    * ``host`` or ``host:port``: an HTTP proxy, port 8080 by default;
    * ``http://host[:port]``: the same, said explicitly;
    * ``socks5h://[user:password@]host[:port]`` (or ``socks5``, ``socks4a``, ``socks4``
      with an optional user id): a SOCKS proxy, port 1080 by default.

    ``proxy_port``, when given, is the port whatever ``proxy_host`` says.

    :param proxy_headers: the connection's headers for the proxy: a SOCKS proxy takes none.
    :raises InvalidRequest: for an unusable host, port, scheme or credentials, or headers for
        a SOCKS proxy.
    """
    if proxy_host is None or not isinstance(proxy_host, str) or "://" not in proxy_host:
        return ProxySettings(*resolve_proxy(proxy_host, proxy_port), None)
    scheme, _, rest = proxy_host.partition("://")
    scheme = scheme.lower()
    # The authority ends at the first "/", "?" or "#" (never part of user info unencoded).
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    shown = f"{scheme}://{hostport}{tail}"  # never the credentials
    if tail not in ("", "/"):
        raise InvalidRequest(f"a proxy URL names a host and port only, not {shown!r}")
    if scheme == "http":
        if at:
            raise InvalidRequest(
                f"give the credentials of HTTP proxy {shown!r} as a Proxy-Authorization "
                "header in proxy_headers, not in its URL"
            )
        return ProxySettings(
            *resolve_host_port(hostport, proxy_port, DEFAULT_HTTP_PROXY_PORT), None
        )
    if scheme not in SOCKS_SCHEMES:
        raise InvalidRequest(
            f"unsupported proxy scheme in {shown!r}: hyper takes http://, socks4://, "
            "socks4a://, socks5:// and socks5h:// proxies"
        )
    if proxy_headers:
        raise InvalidRequest(
            f"SOCKS proxy {shown!r} takes no proxy_headers: put its credentials in the URL "
            f"({scheme}://user:password@host:port)"
        )
    host, port = resolve_host_port(hostport, proxy_port, DEFAULT_SOCKS_PORT)
    username, password = _credentials(userinfo if at else None, SOCKS_SCHEMES[scheme][0], shown)
    return ProxySettings(None, None, SocksProxy(scheme, host, port, username, password))


def _credentials(userinfo: str | None, version: int, shown: str) -> tuple[str | None, str | None]:
    """The user name and password of a SOCKS URL's ``user:password`` part, checked against
    what the protocol can carry (as hyper sends them: ASCII, which RFC 1929 leaves open)."""
    if userinfo is None:
        return None, None
    user_text, colon, password_text = userinfo.partition(":")
    username = unquote(user_text)
    password = unquote(password_text) if colon else None
    if version == 4:
        if password is not None:
            raise InvalidRequest(
                f"SOCKS4 has no passwords: give {shown!r} a user id alone (socks4://userid@...)"
            )
        if not username.isascii() or "\x00" in username:
            raise InvalidRequest(f"the SOCKS4 user id of {shown!r} must be ASCII without NUL")
        return username or None, None
    if password is None:
        raise InvalidRequest(f"SOCKS5 proxy {shown!r} has a user name but no password")
    for value in (username, password):
        if not value.isascii() or not 0 < len(value) <= _MAX_FIELD:
            raise InvalidRequest(
                f"the SOCKS5 user name and password of {shown!r} must be ASCII, 1 to "
                f"{_MAX_FIELD} characters each"
            )
    return username, password


def destination(
    proxy: SocksProxy,
    host: str,
    port: int,
    policy: ConnectPolicy,
    deadline: float | None,
) -> str:
    """
    What to ask ``proxy`` to connect to for ``host``: the name itself (its A-label form) for
    a proxy that resolves names (``socks5h``, ``socks4a``) and for an IP address; else the
    first address ``host`` resolves to here, with the connection's resolver and family
    (SOCKS4: IPv4).

    :param deadline: the :func:`time.monotonic` time resolving must end by (``None``: none).
    :raises InvalidRequest: for a host the proxy's protocol cannot name (an IPv6 address or
        ``address_family=AF_INET6`` for SOCKS4, a name too long), or no valid host name.
    :raises SocketError: if the name does not resolve here.
    :raises ConnectTimeout: if resolving does not end by ``deadline``.
    """
    name = encode_host(host)
    if proxy.version == 4 and ":" in name:
        raise InvalidRequest(
            f"SOCKS4 proxy {proxy} cannot reach the IPv6 address {host}: use socks5"
        )
    destination_field(name)  # refuses a name too long for the protocol
    if proxy.remote_dns or eyeballs.ip_literal(name, port) is not None:
        return name
    if proxy.version == 4:
        if policy.family == socket.AF_INET6:
            raise InvalidRequest(
                f"SOCKS4 proxy {proxy} takes IPv4 addresses only, and address_family asks "
                f"for IPv6: use socks4a or socks5"
            )
        policy = ConnectPolicy(policy.delay, socket.AF_INET, policy.resolver)
    try:
        addresses = eyeballs.resolve(name, port, policy, deadline)
    except ConnectTimeout:
        raise
    except SocketError as exc:
        raise SocketError(
            f"cannot resolve host {host!r} for SOCKS proxy {proxy}: {exc} "
            f"({proxy.scheme}:// resolves names locally)"
        ) from exc
    return addresses[0].host


def handshake(
    sock: socket.socket,
    proxy: SocksProxy,
    host: str | Callable[[], str],
    port: int,
    deadline: float | None,
) -> None:
    """
    Ask ``proxy``, over ``sock`` (a blocking socket connected to it), for a connection to
    ``host``:``port`` (what :func:`destination` gave). Nothing past the proxy's last reply
    is read: the socket is then a pipe to the destination.

    ``host`` may be a function giving it (one that resolves the name here): a SOCKS5
    handshake calls it once the proxy has accepted the client, right before the
    connection request, as curl and python-socks do; SOCKS4 calls it first.

    :param deadline: the :func:`time.monotonic` time the handshake must end by (``None``:
        no bound).
    :raises ConnectTimeout: if the proxy does not answer by ``deadline``.
    :raises ProxyError: if the proxy refuses (``status`` is its reply code when it sent one:
        its rules, an unreachable destination; ``None`` for refused credentials), breaks the
        protocol, closes the connection or fails.
    :raises InvalidRequest: for a destination the protocol cannot name.
    """
    later: Callable[[], str] | None = None
    named: str | None
    if not callable(host):
        named = host
    elif proxy.version == 5:
        later, named = host, None
    else:
        named = host()
    shake = Handshake(proxy.version, named, port, proxy.username, proxy.password, str(proxy))
    try:
        while not shake.done:
            if shake.needs_destination:
                assert later is not None
                shake.set_destination(later())
            outgoing = shake.data_to_send()
            if outgoing:
                sock.settimeout(_time_left(deadline, proxy))
                sock.sendall(outgoing)
            sock.settimeout(_time_left(deadline, proxy))
            data = sock.recv(shake.wanted)
            if not data:
                raise ProxyError(f"SOCKS proxy {proxy} closed the connection before it answered")
            shake.receive(data)
    except (ConnectTimeout, InvalidRequest, SocketError):
        raise  # hyper's own, from resolving the destination
    except TimeoutError as exc:
        raise ConnectTimeout(f"SOCKS proxy {proxy} did not answer in time") from exc
    except OSError as exc:
        raise ProxyError(f"SOCKS proxy {proxy} failed: {exc}") from exc


def _time_left(deadline: float | None, proxy: SocksProxy) -> float | None:
    """The seconds left to the handshake.

    :raises ConnectTimeout: if none are.
    """
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise ConnectTimeout(f"SOCKS proxy {proxy} did not answer in time")
    return left
