"""
The connections of the ``hyper`` command: which class speaks to a target (negotiation,
``--http1.1``, ``--http2``, ``--http3`` or ``--http3-only``), its TLS context, and one
connection kept open while redirects stay on the same origin.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..common.response import BaseResponse
from ..common.timeout import Deadline
from ..common.trace import Timings
from ..common.util import CONNECTION_TIMEOUT, RequestTimeoutArg, TimeoutArg
from ..connection import HTTPConnection
from ..http11.connection import HTTP11Connection
from ..http20.connection import HTTP20Connection

if TYPE_CHECKING:
    from ..http30.connection import HTTP30Connection
from ..tls import init_context
from .errors import CommandError, UsageError
from .proxies import Proxy
from .request import PreparedRequest, Target

#: ``auto`` negotiates (ALPN over TLS, an h2c upgrade in plaintext); ``http3`` negotiates with
#: HTTP/3 allowed (QUIC first, racing TCP); the others force one protocol.
Protocol = Literal["auto", "http1.1", "http2", "http3", "http3-only"]

#: HTTP/3's class stays unloaded (with the QUIC stack) unless ``--http3-only`` needs it.
Connection: TypeAlias = "HTTPConnection | HTTP11Connection | HTTP20Connection | HTTP30Connection"


def tls_context(
    cacert: str | None, insecure: bool, protocol: Protocol, trust: str = "certifi"
) -> ssl.SSLContext:
    """
    hyper's TLS context (:func:`~hyper.tls.init_context`), trusting ``cacert`` if given, else
    the ``trust`` store (``"certifi"`` or ``"system"``). ``insecure`` turns verification off;
    with ``http1.1`` only ``http/1.1`` is offered in ALPN, so that the server cannot pick
    HTTP/2.
    """
    context = init_context(cacert, trust=trust)
    if protocol == "http1.1":
        context.set_alpn_protocols(["http/1.1"])
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def check_http3_only(target: Target, proxy: Proxy | None) -> None:
    """:raises UsageError: if ``--http3-only`` cannot reach ``target`` (an ``http://`` URL,
    or a proxy to go through)."""
    if not target.secure:
        raise UsageError("--http3-only needs an https:// URL: HTTP/3 always uses TLS")
    if proxy is not None:
        raise UsageError(
            "--http3-only cannot go through a proxy (QUIC passes neither HTTP nor SOCKS "
            "proxies): add --noproxy '*', or use --http3"
        )


def open_connection(
    target: Target,
    context: ssl.SSLContext | None,
    protocol: Protocol,
    timeout: TimeoutArg,
    proxy: Proxy | None = None,
    tcp_options: Mapping[str, Any] | None = None,
) -> Connection:
    """
    The connection for ``target``: an :class:`~hyper.HTTPConnection` (ALPN over TLS, an h2c
    upgrade in plaintext; with ``http3``, QUIC first), with ``http1.1`` an
    :class:`~hyper.HTTP11Connection`, with ``http2`` an :class:`~hyper.HTTP20Connection`
    (prior knowledge in plaintext, ``force_proto="h2"`` over TLS), or with ``http3-only`` an
    :class:`~hyper.HTTP30Connection`; through ``proxy`` if given.

    :param tcp_options: how TCP connections race addresses, as the connection classes take
        it (``address_family``, ``happy_eyeballs_delay``); ``http3-only`` opens none.

    :raises CommandError: for ``http3-only`` with an ``http://`` URL or a proxy (a
        redirect to one: :func:`check_http3_only` checks the command line's URL sooner).
    """
    if protocol == "http3-only":
        try:
            check_http3_only(target, proxy)
        except UsageError as exc:
            raise CommandError(f"cannot follow the redirect to {target.url}: {exc}") from None
        from ..http30.connection import HTTP30Connection  # loads the QUIC stack

        return HTTP30Connection(target.host, target.port, ssl_context=context, timeout=timeout)
    common: dict[str, Any] = {
        "secure": target.secure,
        "ssl_context": context,
        "timeout": timeout,
        "proxy_host": None if proxy is None else (proxy.socks_url or proxy.host),
        "proxy_port": None if proxy is None or proxy.socks_url else proxy.port,
        "proxy_headers": list(proxy.headers) if proxy is not None and proxy.headers else None,
        **(tcp_options or {}),
    }
    if protocol == "http2":
        force = "h2" if target.secure else None
        return HTTP20Connection(target.host, target.port, force_proto=force, **common)
    if protocol == "http1.1":
        return HTTP11Connection(target.host, target.port, **common)
    return HTTPConnection(target.host, target.port, http3=protocol == "http3", **common)


def send(
    conn: Connection,
    request: PreparedRequest,
    timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
    timings: Timings | None = None,
) -> BaseResponse:
    """Send ``request`` on ``conn`` and return its response (head read, body not), within
    ``timeout`` (by default the connection's), recording its phases in ``timings`` (begun
    before the connection was opened for it, if it was)."""
    body = request.body.payload() if request.body is not None else None
    stream_id = conn.request(
        request.method,
        request.target.path,
        body=body,
        headers=request.headers,
        timeout=timeout,
        timings=timings,
    )
    if isinstance(conn, HTTP11Connection):
        return conn.get_response()
    return conn.get_response(stream_id)


class Connector:
    """
    Opens the command's connections and keeps the last one open: a request to the same
    origin through the same proxy (a redirect to another path) reuses it, any other closes
    it first. The TLS context is built once, when the first ``https`` target needs it.

    :param context_factory: builds the TLS context.
    :param protocol: see :data:`Protocol`.
    :param timeout: the connect and read timeout, in seconds.
    :param deadline: the total deadline of the whole transfer (``--max-time``), if any: it
        bounds connecting, and every request is sent with it.
    :param tcp_options: how TCP connections race addresses (see :func:`open_connection`).
    """

    def __init__(
        self,
        context_factory: Callable[[], ssl.SSLContext],
        protocol: Protocol,
        timeout: float,
        deadline: Deadline | None = None,
        tcp_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._context_factory = context_factory
        self._context: ssl.SSLContext | None = None
        self.protocol = protocol
        self.timeout = timeout
        self.deadline = deadline
        self.tcp_options = dict(tcp_options or {})
        #: The ``timeout`` every request is sent with: the deadline, or the connection's.
        self.request_timeout: RequestTimeoutArg = (
            CONNECTION_TIMEOUT if deadline is None else deadline
        )
        self._conn: Connection | None = None
        self._key: tuple[object, ...] | None = None

    def connection(self, target: Target, proxy: Proxy | None) -> Connection:
        """The open connection for ``target`` through ``proxy`` (connected)."""
        key = (target.origin, proxy)
        if self._conn is None or self._key != key:
            self.close()
            context = None
            if target.secure:
                if self._context is None:
                    self._context = self._context_factory()
                context = self._context
            deadline = self.deadline
            timeout: TimeoutArg = self.timeout
            if deadline is not None:
                # Connecting (below, or on a redirect) is bounded by what is left too.
                timeout = (deadline.connect_timeout(), self.timeout)
            self._conn = open_connection(
                target, context, self.protocol, timeout, proxy, self.tcp_options
            )
            self._key = key
        self._conn.connect()
        return self._conn

    def close(self) -> None:
        """Close the open connection, if any."""
        if self._conn is not None:
            conn, self._conn, self._key = self._conn, None, None
            conn.close()
