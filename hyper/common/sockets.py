"""
Opening the TCP connection a hyper connection runs on: directly, through an HTTP proxy's
``CONNECT`` tunnel, or through a SOCKS proxy (:mod:`hyper.common.socks`). TLS is added on top
by :mod:`hyper.tls`.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping

from .. import tls
from . import eyeballs, socks
from .bufsocket import DEFAULT_BUFFER_SIZE, BufferedSocket
from .exceptions import (
    ConnectTimeout,
    InvalidRequest,
    InvalidResponse,
    ProxyError,
    SocketError,
    SocketTimeout,
)
from .eyeballs import DEFAULT_POLICY, ConnectPolicy
from .hosts import encode_host
from .request import HeadersArg, iter_header_pairs
from .socks import SocksProxy
from .trace import TLS_END, TLS_START, ConnectRecorder
from .util import authority_for

#: The longest status or header line accepted from a proxy, and the most header lines.
_MAX_PROXY_LINE = 8192
_MAX_PROXY_HEADERS = 100


def open_tcp(
    host: str,
    port: int,
    timeout: float | None,
    policy: ConnectPolicy = DEFAULT_POLICY,
    recorder: ConnectRecorder | None = None,
) -> socket.socket:
    """
    Connect to ``host``:``port`` with TCP_NODELAY set, racing its addresses with Happy
    Eyeballs (:func:`hyper.common.eyeballs.connect`; the socket's ``connect_report`` says
    which address won). A non-ASCII ``host`` is resolved in its IDNA 2008 form
    (:func:`~hyper.common.hosts.encode_host`).

    :param timeout: bound on resolving and connecting together, in seconds (``None``: no
        bound of hyper's).
    :param policy: the delay between attempts, the family to keep to, the resolver.
    :param recorder: where the DNS and connect phases and each attempt's events go.
    :raises InvalidRequest: if ``host`` is not a valid host name.
    :raises ConnectTimeout: if the attempt takes longer than ``timeout``.
    :raises SocketError: if the name does not resolve or every address refused.
    """
    # A str host would otherwise go through Python's IDNA 2003 codec inside socket.
    sock = eyeballs.connect(encode_host(host), port, timeout, policy, recorder)
    # Requests are written in one burst each; Nagle's algorithm would only add latency.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def open_socks(
    proxy: SocksProxy,
    host: str,
    port: int,
    timeout: float | None,
    policy: ConnectPolicy = DEFAULT_POLICY,
    recorder: ConnectRecorder | None = None,
) -> socket.socket:
    """
    Connect to ``host``:``port`` through a SOCKS proxy: TCP to the proxy, its addresses raced
    with Happy Eyeballs (:func:`open_tcp`; the socket's ``connect_report`` says which one
    won), then the proxy's handshake (:func:`hyper.common.socks.handshake`). ``socks5`` and
    ``socks4`` resolve ``host`` here first, with the same policy.

    :param timeout: bound on resolving, connecting to the proxy and its handshake together,
        in seconds (``None``: no bound).
    :param recorder: where the DNS and connect phases of reaching the proxy, and each
        attempt's events, go (:func:`open_tcp`).
    :returns: the socket, with TCP_NODELAY set: a byte pipe to the origin (TLS not yet
        started).
    :raises InvalidRequest: for an origin the proxy's protocol cannot name, or an invalid
        host name.
    :raises ConnectTimeout: if the proxy is not reached, or does not answer, within
        ``timeout``.
    :raises SocketError: if the proxy cannot be reached, or (``socks4``, ``socks5``) the
        origin's name does not resolve here.
    :raises ProxyError: if the proxy refuses or breaks the protocol (see
        :func:`~hyper.common.socks.handshake`).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    target: str | Callable[[], str]
    if proxy.version == 5 and not proxy.remote_dns:
        # Resolved when the proxy has accepted the client, as curl and python-socks do.
        def target() -> str:
            return socks.destination(proxy, host, port, policy, deadline)
    else:
        target = socks.destination(proxy, host, port, policy, deadline)
    left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        sock = open_tcp(proxy.host, proxy.port, left, policy, recorder)
    except ConnectTimeout as exc:
        raise ConnectTimeout(f"timed out connecting to SOCKS proxy {proxy}: {exc}") from exc
    except InvalidRequest:
        raise
    except SocketError as exc:
        raise SocketError(f"cannot connect to SOCKS proxy {proxy}: {exc}") from exc
    try:
        socks.handshake(sock, proxy, target, port, deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def header_lines(headers: HeadersArg | None) -> list[bytes]:
    """
    Turn caller-supplied headers into ``b"Name: value"`` lines, refusing CR, LF and NUL.

    :raises InvalidRequest: if a name or value could inject a line break or is empty.
    """
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [name + b": " + value for name, value in iter_header_pairs(pairs)]


def open_tunnel(
    proxy_host: str,
    proxy_port: int,
    host: str,
    port: int,
    proxy_headers: HeadersArg | None = None,
    timeout: float | None = None,
    policy: ConnectPolicy = DEFAULT_POLICY,
    recorder: ConnectRecorder | None = None,
) -> socket.socket:
    """
    Connect to an HTTP proxy and ask it for a ``CONNECT`` tunnel to ``host``:``port``
    (``host`` in its IDNA 2008 form, :func:`~hyper.common.hosts.encode_host`).

    :param proxy_headers: extra headers for the CONNECT request (``Proxy-Authorization``...).
    :param timeout: bound on connecting and on the proxy's answer, in seconds.
    :param policy: how to race the proxy's addresses (:func:`open_tcp`).
    :param recorder: where the phases of connecting to the proxy go (:func:`open_tcp`).
    :returns: the socket, now a byte pipe to the origin (TLS not yet started).
    :raises InvalidRequest: if ``host`` or ``proxy_host`` is not a valid host name.
    :raises ProxyError: if the proxy answers anything but 2xx, or answers nonsense (the
        exception carries the proxy's status and reason), or if bytes arrive from the origin
        before the client spoke, which cannot happen before TLS.
    """
    sock, early, (status, reason) = _open_tunnel(
        proxy_host, proxy_port, host, port, proxy_headers, timeout, policy, recorder
    )
    if early:
        sock.close()
        raise ProxyError(
            "data arrived through the tunnel before the TLS handshake", status, reason
        )
    return sock


def _open_tunnel(
    proxy_host: str,
    proxy_port: int,
    host: str,
    port: int,
    proxy_headers: HeadersArg | None,
    timeout: float | None,
    policy: ConnectPolicy,
    recorder: ConnectRecorder | None = None,
) -> tuple[socket.socket, bytes, tuple[int, str]]:
    """
    :func:`open_tunnel`, also returning what the origin already sent through the tunnel and
    the proxy's status and reason.
    """
    target = authority_for(encode_host(host), port, default_port=-1).encode("ascii")
    request = [b"CONNECT " + target + b" HTTP/1.1", b"Host: " + target]
    request.extend(header_lines(proxy_headers))
    sock = open_tcp(proxy_host, proxy_port, timeout, policy=policy, recorder=recorder)
    try:
        buffered = BufferedSocket(sock, buffer_size=16384)
        buffered.sendall(b"\r\n".join(request) + b"\r\n\r\n")
        answer = _read_proxy_answer(buffered)
        # A plaintext HTTP/2 server speaks first (its SETTINGS): whatever came behind the
        # proxy's answer belongs to the connection that runs through the tunnel.
        early = bytes(buffered.peek())
        buffered.release()
    except ProxyError:
        sock.close()
        raise
    except SocketTimeout as exc:
        sock.close()
        raise ConnectTimeout(
            f"proxy {proxy_host}:{proxy_port} did not answer the CONNECT request in time"
        ) from exc
    except (SocketError, InvalidResponse) as exc:
        sock.close()
        raise ProxyError(f"proxy {proxy_host}:{proxy_port} failed: {exc}") from exc
    return sock, early, answer


def _read_proxy_answer(sock: BufferedSocket) -> tuple[int, str]:
    line = bytes(sock.readline(_MAX_PROXY_LINE))
    parts = line.rstrip(b"\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProxyError(f"proxy sent an invalid status line: {line[:100]!r}")
    status = int(parts[1])
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    for _ in range(_MAX_PROXY_HEADERS):
        header = sock.readline(_MAX_PROXY_LINE)
        if not header:
            raise ProxyError("proxy closed the connection in its response headers", status, reason)
        if bytes(header) in (b"\r\n", b"\n"):
            break
    else:
        raise ProxyError("proxy sent too many header lines", status, reason)
    if not 200 <= status < 300:
        raise ProxyError(f"proxy refused the tunnel: {status} {reason}", status, reason)
    return status, reason


def _start_tls(
    raw: socket.socket,
    host: str,
    context: ssl.SSLContext | None,
    force_proto: str | None,
    recorder: ConnectRecorder | None,
) -> tuple[tls.TLSChannel, str | None]:
    """:func:`hyper.tls.start_tls`, recorded as the TLS phase."""
    if recorder is None:
        return tls.start_tls(raw, host, context, force_proto)
    recorder.mark(TLS_START, {"server_name": host})
    try:
        channel, proto = tls.start_tls(raw, host, context, force_proto)
    except BaseException as exc:
        recorder.mark(TLS_END, {"error": exc})
        raise
    alpn = channel.selected_alpn_protocol()  # what the server chose, even if force_proto
    recorder.mark(TLS_END, {"version": channel.version(), "alpn": alpn})
    return channel, proto


def open_connection(
    host: str,
    port: int,
    *,
    secure: bool,
    ssl_context: ssl.SSLContext | None = None,
    proxy_host: str | None = None,
    proxy_port: int | None = None,
    proxy_headers: HeadersArg | None = None,
    tunnel: bool = True,
    socks_proxy: SocksProxy | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    force_proto: str | None = None,
    connect_policy: ConnectPolicy = DEFAULT_POLICY,
    recorder: ConnectRecorder | None = None,
) -> tuple[BufferedSocket, str | None]:
    """
    Open the socket a connection runs on: TCP to the server, to an HTTP proxy (through a
    ``CONNECT`` tunnel when ``tunnel``; as is, for proxying plain http), or to the server
    through a SOCKS proxy; then TLS with ALPN when ``secure``.

    :param ssl_context: the TLS context; :func:`hyper.tls.default_context` when ``None``.
    :param socks_proxy: a SOCKS proxy to reach the server through (not with ``proxy_host``).
    :param force_proto: report this protocol whatever ALPN chose.
    :param connect_policy: how to race the addresses of the server or proxy
        (:func:`open_tcp`).
    :param recorder: where the phases of opening the connection (DNS, connect, TLS) and
        their events go: DNS and connect are the proxy's when there is one (through a SOCKS
        proxy, connect ends when the proxy's address connected, before its handshake); DNS
        is absent for an IP address.
    :returns: the buffered socket (its timeout set to ``read_timeout``) and the protocol ALPN
        selected (``None`` without TLS or without ALPN).
    :raises HyperError: (a subclass) for any failure; see :func:`open_tcp`,
        :func:`open_tunnel`, :func:`open_socks` and :func:`hyper.tls.start_tls`.
    """
    early = b""
    if socks_proxy is not None:
        if proxy_host is not None:
            raise InvalidRequest(
                "a connection goes through one proxy, not an HTTP and a SOCKS one"
            )
        raw = open_socks(socks_proxy, host, port, connect_timeout, connect_policy, recorder)
    elif proxy_host is not None:
        if proxy_port is None:
            raise InvalidRequest("a proxy needs a port")
        if tunnel:
            route = (proxy_host, proxy_port, host, port, proxy_headers, connect_timeout)
            if secure:
                raw = open_tunnel(*route, connect_policy, recorder)
            else:
                raw, early, _ = _open_tunnel(*route, connect_policy, recorder)
        else:
            raw = open_tcp(
                proxy_host, proxy_port, connect_timeout, policy=connect_policy, recorder=recorder
            )
    else:
        raw = open_tcp(host, port, connect_timeout, policy=connect_policy, recorder=recorder)
    proto = force_proto
    if secure:
        channel, proto = _start_tls(raw, host, ssl_context, force_proto, recorder)
        raw.settimeout(read_timeout)
        return BufferedSocket(channel, buffer_size), proto
    raw.settimeout(read_timeout)
    return BufferedSocket(raw, buffer_size, initial=early), proto
