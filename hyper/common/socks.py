"""
SOCKS proxies: telling a SOCKS proxy URL in ``proxy_host`` from an HTTP proxy, and opening a
connection through one with the optional ``python-socks`` library (``pip install
hyper[socks]``).

A SOCKS proxy is a tunnel for everything, plain ``http`` included: hyper asks it for a TCP
connection to the origin and then speaks to the origin as it would directly (TLS with SNI and
certificate checks for the origin's name, origin-form requests, ``h2c``). ``socks4a://`` and
``socks5h://`` send the origin's name to the proxy, which resolves it; ``socks4://`` and
``socks5://`` resolve it locally and send an address.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from types import ModuleType
from typing import NamedTuple
from urllib.parse import unquote

from .exceptions import ConnectTimeout, HyperError, InvalidRequest, ProxyError, SocketError
from .request import HeadersArg
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

#: What to install when python-socks is missing.
INSTALL_HINT = "pip install 'hyper[socks]'"

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
    :raises InvalidRequest: for an unusable host, port, scheme or credentials, headers for a
        SOCKS proxy, or a SOCKS proxy while python-socks is not installed.
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
    load_python_socks(shown)
    return ProxySettings(None, None, SocksProxy(scheme, host, port, username, password))


def _credentials(userinfo: str | None, version: int, shown: str) -> tuple[str | None, str | None]:
    """The user name and password of a SOCKS URL's ``user:password`` part, checked against
    what the protocol (and python-socks, which sends them as ASCII) can carry."""
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


def load_python_socks(proxy: object) -> ModuleType:
    """
    The ``python_socks.sync`` module, which connects through SOCKS proxies.

    :param proxy: the proxy that needs it, named in the error.
    :raises InvalidRequest: if python-socks is not installed (its message says what to
        install).
    """
    try:
        import python_socks.sync
    except ImportError as exc:
        raise InvalidRequest(
            f"SOCKS proxy {proxy} needs the python-socks library: {INSTALL_HINT}"
        ) from exc
    return python_socks.sync


def open_socks(proxy: SocksProxy, host: str, port: int, timeout: float | None) -> socket.socket:
    """
    Connect to ``host``:``port`` through a SOCKS proxy.

    :param timeout: bound on connecting to the proxy and on each step of its handshake, in
        seconds. ``None`` leaves python-socks' own bound of 60 seconds a step.
    :returns: the socket, with TCP_NODELAY set: a byte pipe to the origin (TLS not yet
        started).
    :raises InvalidRequest: for an origin SOCKS4 cannot name (IPv6), a host name too long
        for the protocol, or python-socks missing.
    :raises ConnectTimeout: if the proxy does not accept or answer within ``timeout``.
    :raises SocketError: if the proxy cannot be reached, or (``socks4``, ``socks5``) the
        origin's name does not resolve locally.
    :raises ProxyError: if the proxy refuses (credentials, its rules, an unreachable origin:
        ``status`` is the SOCKS reply code when it sent one) or breaks the protocol.
    """
    sync = load_python_socks(proxy)
    import python_socks

    _check_destination(proxy, host)
    proxy_type = (
        python_socks.ProxyType.SOCKS5 if proxy.version == 5 else python_socks.ProxyType.SOCKS4
    )
    client = sync.Proxy(
        proxy_type,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.remote_dns,
    )
    try:
        sock: socket.socket = client.connect(host, port, timeout=timeout)
    except (python_socks.ProxyError, OSError, ValueError) as exc:
        raise _translate(exc, proxy, host, port) from exc
    # Requests are written in one burst each; Nagle's algorithm would only add latency.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _translate(exc: Exception, proxy: SocksProxy, host: str, port: int) -> HyperError:
    """The hyper error for what python-socks (or the socket under it) raised."""
    import python_socks

    where = authority_for(host, port, default_port=-1)
    if isinstance(exc, python_socks.ProxyTimeoutError):
        return ConnectTimeout(f"SOCKS proxy {proxy} did not answer in time")
    if isinstance(exc, python_socks.ProxyConnectionError):
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(cause, TimeoutError):
            return ConnectTimeout(f"timed out connecting to SOCKS proxy {proxy}")
        return SocketError(f"cannot connect to SOCKS proxy {proxy}: {cause}")
    if isinstance(exc, python_socks.ProxyError):
        code = exc.error_code
        if code is None:  # authentication refused, or the handshake broke off
            message = f"SOCKS proxy {proxy} failed to connect to {where}: {exc}"
        else:
            message = f"SOCKS proxy {proxy} refused the connection to {where}: {exc} "
            message += f"(reply code {code:#04x})"
        return ProxyError(message, code, str(exc))
    if isinstance(exc, socket.gaierror):
        # Only the origin's name: python-socks reports the proxy's own as a connection error.
        return SocketError(
            f"cannot resolve host {host!r} for SOCKS proxy {proxy}: {exc} "
            f"({proxy.scheme}:// resolves names locally)"
        )
    if isinstance(exc, OSError):
        return ProxyError(f"SOCKS proxy {proxy} failed: {exc}")
    return ProxyError(f"SOCKS proxy {proxy} sent an invalid reply: {exc}")


def _check_destination(proxy: SocksProxy, host: str) -> None:
    """Refuse an origin the proxy's protocol cannot name."""
    if proxy.version == 4 and ":" in host:
        raise InvalidRequest(
            f"SOCKS4 proxy {proxy} cannot reach the IPv6 address {host}: use socks5"
        )
    if ":" not in host and len(host.encode("idna")) > _MAX_FIELD:
        raise InvalidRequest(f"host name too long for a SOCKS request: {host[:60]}...")
