"""
:class:`HTTPConnection`: a connection that speaks HTTP/2 when the server does and HTTP/1.1
otherwise, so the caller does not have to know which.

The protocol is settled once, by the first request:

* Over TLS, ALPN decides: ``h2`` gives an :class:`~hyper.HTTP20Connection` on the same
  socket, anything else an :class:`~hyper.HTTP11Connection`.
* In plaintext, the first request that has no body (or a small in-memory one) goes out over
  HTTP/1.1 asking for ``Upgrade: h2c``. If the server answers ``101 Switching Protocols`` the
  connection continues as HTTP/2 and that request's response arrives on stream 1; otherwise
  it stays HTTP/1.1. Requests with larger bodies go out as plain HTTP/1.1 until then.
* Plain ``http`` through an HTTP proxy stays HTTP/1.1 (an upgrade cannot pass a forward
  proxy); through a SOCKS proxy it negotiates as on a direct connection.
* With ``http3=True``, a secure connection without a proxy tries HTTP/3 over QUIC first and
  races TCP shortly after (:mod:`hyper.discovery`); ``Alt-Svc`` fields in responses tell it
  where the origin serves HTTP/3 (:mod:`hyper.common.altsvc`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import discovery
from .common import sockets
from .common.altsvc import ALT_SVC_CACHE, Origin
from .common.bufsocket import BufferedSocket
from .common.condition import (
    ChangeSignal,
    acquire_within,
    connect_time_left,
)
from .common.exceptions import (
    HTTP2PriorKnowledgeOnly,
    InvalidRequest,
    InvalidResponse,
)
from .common.eyeballs import DEFAULT_DELAY, Resolver
from .common.request import BodyArg, HeadersArg, RequestBody, iter_header_pairs
from .common.response import BaseResponse
from .common.timeout import (
    Deadline,
    Timeout,
    WaitLimit,
    connect_limit,
    connect_wait,
    split_wait,
)
from .common.trace import ConnectRecorder, Timings, TraceHook, Tracer, tracer_for
from .common.util import (
    CONNECTION_TIMEOUT,
    ClosingContextManager,
    HTTPVersion,
    RequestTimeoutArg,
    TimeoutArg,
    WaitArg,
    check_ssl_context,
    request_timeouts,
    resolve_host_port,
    split_timeout,
    total_timeout,
)
from .http11.connection import HTTP11Connection
from .http11.response import HTTP11Response
from .http20.window import BaseFlowControlManager

if TYPE_CHECKING:
    from .http20.connection import HTTP20Connection
    from .http20.response import HTTP20Push, HTTP20Response
    from .http30.connection import HTTP30Connection
    from .http30.response import HTTP30Response


def _http2() -> type[HTTP20Connection]:
    """The HTTP/2 connection class, imported when first needed (importing hyper stays
    cheap for code that never speaks HTTP/2)."""
    from .http20.connection import HTTP20Connection

    return HTTP20Connection


def _http3() -> type[HTTP30Connection]:
    """The HTTP/3 connection class, imported (with the QUIC stack) when first needed.

    :raises HTTP3Unavailable: when ``qh3`` is not installed.
    """
    from .http30.connection import HTTP30Connection

    return HTTP30Connection


#: The largest in-memory body sent with an ``Upgrade: h2c`` request: the whole request must
#: go out over HTTP/1.1 before the switch.
UPGRADE_BODY_LIMIT = 64 * 1024

#: Headers that, set by the caller, rule out an upgrade on that request.
_UPGRADE_CONFLICTS = frozenset({b"connection", b"upgrade", b"http2-settings"})

#: A request kept while the protocol is unsettled, to send again over HTTP/2: method, URL,
#: in-memory body, header pairs and its ``timeout`` argument.
_Record = tuple[Any, Any, Any, Any, Any]


class HTTPConnection(ClosingContextManager):
    """
    A connection to one server over HTTP/2 or HTTP/1.1, whichever the server supports.

    It has the methods of both protocols' connections: :meth:`request` returns a stream id
    when the connection speaks HTTP/2 and ``None`` for HTTP/1.1, :meth:`get_response` accepts
    that value back either way, and other attributes are those of the connection in use
    (see :attr:`version`).

    :param host: the server's host name or IP address, optionally with a port. A non-ASCII
        name is encoded as IDNA 2008 A-labels (:func:`~hyper.common.hosts.encode_host`).
    :param port: the port, when ``host`` names none. Defaults to 80, or 443 when ``secure``.
    :param secure: whether to use TLS. Defaults to ``True`` for port 443 and ``False``
        otherwise.
    :param window_manager: the HTTP/2 flow-control policy class (see
        :class:`~hyper.HTTP20Connection`).
    :param enable_push: whether an HTTP/2 server may push responses.
    :param ssl_context: the :class:`ssl.SSLContext` for TLS; it should offer ``h2`` and
        ``http/1.1`` in ALPN, as :func:`hyper.tls.init_context` does.
    :param proxy_host: a proxy: an HTTP proxy as ``host[:port]`` or ``http://host[:port]``,
        or a SOCKS proxy as a URL, ``socks5h://[user:password@]host[:port]`` (also
        ``socks5``, ``socks4a``, ``socks4`` with an optional user id). ``socks5h`` and
        ``socks4a`` let the proxy resolve ``host``.
        Through a SOCKS proxy the connection behaves as a direct one (ALPN, ``h2c``).
    :param proxy_port: the proxy's port when ``proxy_host`` names none. Defaults to 8080
        (1080 for SOCKS).
    :param proxy_headers: headers for an HTTP proxy (``Proxy-Authorization``...). A SOCKS
        proxy takes none.
    :param timeout: seconds to wait for the network: one number, or a ``(connect, read)``
        pair. ``None`` waits forever.
    :param http3: allow HTTP/3. A secure connection without a proxy then tries QUIC first,
        on the port the origin advertised with ``Alt-Svc`` or else on its own port number,
        and starts TCP beside it after :data:`~hyper.discovery.HTTP3_HEAD_START` seconds;
        whichever completes first is used (see :doc:`http3`). Needs the ``http3`` extra.
    :param happy_eyeballs_delay: seconds each TCP connection attempt has to itself before the
        next address is tried beside it (see :doc:`connecting`).
    :param address_family: ``socket.AF_INET`` or ``socket.AF_INET6`` to connect over TCP
        with that family only; ``None`` for both.
    :param resolver: a function resolving host names for TCP connections (see
        :data:`hyper.common.eyeballs.Resolver`); ``None`` for :func:`socket.getaddrinfo`.
    :param trace: a trace hook: a callable given each
        :class:`~hyper.common.trace.TraceEvent` of this connection (negotiation included)
        as it happens, whichever protocol it settles on (see :doc:`timings`); with
        ``http3=True``, those of both attempts of the race between QUIC and TCP, labelled
        with their ``transport`` (see :doc:`http3`). ``None`` for none.
    :param kwargs: ``force_proto`` (see :class:`~hyper.HTTP20Connection`): over TLS, assume
        this protocol whatever ALPN said. With ``http3=True``, also the QUIC settings of
        :class:`~hyper.HTTP30Connection`: ``cert`` and ``cert_password`` (a client
        certificate for QUIC, whose TLS cannot take it from ``ssl_context``), ``cert_path``
        (a CA directory: QUIC's TLS cannot list what ``ssl_context`` loads from one),
        ``idle_timeout``, ``max_data`` and ``max_stream_data``.
    :raises InvalidRequest: for an unusable host, port or timeout, a ``trace`` that is not
        callable, or an unknown keyword.
    :raises HTTP3Unavailable: (an :class:`ImportError`) for ``http3=True`` without ``qh3``.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        secure: bool | None = None,
        window_manager: type[BaseFlowControlManager] | None = None,
        enable_push: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_headers: HeadersArg | None = None,
        timeout: TimeoutArg = None,
        *,
        http3: bool = False,
        happy_eyeballs_delay: float = DEFAULT_DELAY,
        address_family: int | None = None,
        resolver: Resolver | None = None,
        trace: TraceHook | Tracer | None = None,
        **kwargs: Any,
    ) -> None:
        host, port = resolve_host_port(host, port, 443 if secure else 80)
        #: Where this connection's trace events go; the connection it delegates to shares it
        #: (:class:`~hyper.common.trace.Tracer`).
        self.tracer = tracer_for(trace)
        self.host = host
        self.port = port
        self.secure = bool(secure) if secure is not None else port == 443
        shared: dict[str, Any] = {
            "host": host,
            "port": port,
            "secure": self.secure,
            "ssl_context": ssl_context,
            "proxy_host": proxy_host,
            "proxy_port": proxy_port,
            "proxy_headers": proxy_headers,
            "timeout": timeout,
            "happy_eyeballs_delay": happy_eyeballs_delay,
            "address_family": address_family,
            "resolver": resolver,
            "trace": self.tracer,
        }
        # Keywords only one protocol takes go to that protocol; unknown ones are an error.
        http11_only = {k: kwargs.pop(k) for k in list(kwargs) if k in _HTTP11_ONLY}
        http20_only = {k: kwargs.pop(k) for k in list(kwargs) if k in _HTTP20_ONLY}
        http30_only = {k: kwargs.pop(k) for k in list(kwargs) if k in _HTTP30_ONLY}
        if kwargs:
            raise InvalidRequest(
                f"HTTPConnection got unexpected keyword arguments: {', '.join(sorted(kwargs))}"
            )
        if http30_only and not http3:
            raise InvalidRequest(
                f"{', '.join(sorted(http30_only))} only apply to HTTP/3: pass http3=True too"
            )
        #: Whether the connection may speak HTTP/3 (the ``http3`` argument).
        self.http3 = bool(http3)
        self._origin: Origin = ("https", host.lower(), port)
        self._http20_kwargs = {
            **shared,
            **http20_only,
            "window_manager": window_manager,
            "enable_push": enable_push,
        }
        check_ssl_context(ssl_context)
        self._connect_timeout, self._read_timeout = split_timeout(timeout)
        self._total_timeout = total_timeout(timeout)
        self._ssl_context = ssl_context
        self._conn: HTTP11Connection | HTTP20Connection | HTTP30Connection = HTTP11Connection(
            **shared, **http11_only
        )
        # HTTP20Connection validates these now, so a bad window manager fails here too.
        _http2()(**self._http20_kwargs)
        self._http30_kwargs = {"ssl_context": ssl_context, **http30_only}
        if self.http3:
            # The same for the QUIC settings; raises HTTP3Unavailable without qh3.
            _http3()(host, port, timeout=timeout, **self._http30_kwargs)
        #: Whether the protocol is settled (ALPN done, or an upgrade answered).
        self._settled = False
        #: The HTTP/2 connection waiting for the answer to an Upgrade: h2c request.
        self._upgrading: HTTP20Connection | None = None
        #: The buffer size the caller set (None: each protocol's default).
        self._buffer_size: int | None = None
        #: That request, to send again if the server only speaks HTTP/2.
        self._upgrade_request: _Record | None = None
        #: First requests sent as plain HTTP/1.1 while unsettled, by thread, for the same.
        self._plain_requests: dict[int, _Record] = {}
        #: The HTTP/1.1 connection each thread's last request went out on.
        self._http11_pending: dict[int, HTTP11Connection] = {}
        #: Held while the protocol is being settled (connecting, an upgrade's answer).
        self._negotiation = threading.Lock()
        #: Counts the upgrades that ended, for the threads waiting for one without the lock.
        self._settling = ChangeSignal()
        #: The thread that sent the upgrade request (only it must not wait for the answer).
        self._upgrade_owner: int | None = None

    def __repr__(self) -> str:
        return f"<HTTPConnection {self.host}:{self.port} {self.version.value}>"

    @property
    def busy(self) -> bool:
        """Whether the connection is in the middle of an HTTP/1.1 exchange (a request sent,
        its response body not read to its end): another request would wait for it. Over
        HTTP/2 a connection is never busy: requests share it."""
        conn = self._conn
        return isinstance(conn, HTTP11Connection) and conn.busy

    @property
    def version(self) -> HTTPVersion:
        """The protocol in use: HTTP/1.1 until the connection has settled on HTTP/2 or
        HTTP/3."""
        return self._conn.version

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class does not define: those of the protocol in use.
        if name.startswith("__") or name == "_conn":
            raise AttributeError(name)
        return getattr(self._conn, name)

    @property
    def network_buffer_size(self) -> int:
        """
        The receive buffer size of the connection over TCP (by default 64 KiB for HTTP/1.1,
        256 KiB for HTTP/2); setting it applies to both. HTTP/3 reads whole datagrams and
        has none: over it this is the HTTP/1.1 default, and setting it changes nothing.
        """
        conn = self._conn
        if isinstance(conn, (HTTP11Connection, _http2())):
            return conn.network_buffer_size
        return self._buffer_size or HTTP11Connection.network_buffer_size

    @network_buffer_size.setter
    def network_buffer_size(self, size: int) -> None:
        self._buffer_size = size
        conn = self._conn
        if isinstance(conn, (HTTP11Connection, _http2())):
            conn.network_buffer_size = size

    def _apply_buffer_size(self, http2: HTTP20Connection) -> None:
        """Give a new HTTP/2 connection the caller's buffer size, if the caller chose one."""
        if self._buffer_size is not None:
            http2.network_buffer_size = self._buffer_size

    # -- negotiation ------------------------------------------------------------------------------

    def connect(self, *, timeout: RequestTimeoutArg = CONNECTION_TIMEOUT) -> None:
        """
        Connect and settle the protocol now: over TLS, ALPN picks it; in plaintext the
        connection starts as HTTP/1.1 (the upgrade rides on the first suitable request).

        :param timeout: bounds opening the connection instead of the connection's connect
            timeout, in the forms :meth:`request` takes (of a pair, the connect part
            counts; a total deadline bounds it too). Another thread settling the protocol
            is waited for within it (in plaintext, where that thread awaits an upgrade's
            answer, within the read timeout).
        """
        connect_timeout, read_timeout = request_timeouts(
            timeout, self._connect_timeout, self._read_timeout
        )
        limit = self._settling_limit(connect_timeout, read_timeout)
        acquire_within(self._negotiation, limit, _SETTLING)
        try:
            if not self.secure:
                self._conn.connect(timeout=_connect_part(connect_timeout, self._read_timeout))
            elif not self._settled:
                self._negotiate_tls(connect_time_left(limit))
            else:
                self._conn.connect(timeout=(connect_time_left(limit), self._read_timeout))
        finally:
            self._negotiation.release()

    def _settling_limit(self, connect_timeout: WaitArg, read_timeout: WaitArg) -> WaitLimit | None:
        """
        How long a request waits for another thread that holds the negotiation: over TLS that
        thread is opening the connection, so the wait is part of opening it (the connect
        timeout and the total deadline); in plaintext it awaits an upgrade's answer (the
        read timeout and the total deadline). ``None`` when nothing bounds the wait.
        """
        if self.secure:
            return connect_wait(connect_timeout)
        wait, total = split_wait(read_timeout)
        return (
            WaitLimit(wait, None, deadline=total)
            if wait is not None or total is not None
            else None
        )

    def _negotiate_tls(self, connect_timeout: float | None) -> None:
        """Settle the protocol of a secure connection: HTTP/3 if allowed and QUIC wins its
        race with TCP, else what ALPN picks (lock held)."""
        conn = self._conn
        assert isinstance(conn, HTTP11Connection)
        direct = conn.proxy_host is None and conn.socks_proxy is None
        udp_port = discovery.quic_port(self._origin, ALT_SVC_CACHE) if direct else None
        if not self.http3 or udp_port is None:
            self._adopt_tls(*self._open_tls(connect_timeout))
            self._settled = True
            return
        http3 = _http3()(
            self.host,
            udp_port,
            timeout=(self._connect_timeout, self._read_timeout),
            origin_port=self.port,
            trace=self.tracer,
            **self._http30_kwargs,
        )

        def quic() -> HTTP30Connection:
            http3.connect(timeout=(connect_timeout, None))
            return http3

        result = discovery.race(
            quic,
            http3.close,
            # The hook tells the attempts' events apart by the transport in their details.
            lambda: self._open_tls(connect_timeout, discovery.labelled(self.tracer, "tcp")),
            lambda opened: opened[0].close(),
        )
        if result.first is not None:
            self._conn = http3
        else:
            assert result.second is not None
            # QUIC failed or was slower than TCP: stay off it for this origin for a while.
            ALT_SVC_CACHE.mark_broken(self._origin, udp_port)
            self._adopt_tls(*result.second)
        self._settled = True

    def _open_tls(
        self, connect_timeout: float | None, tracer: Tracer | None = None
    ) -> tuple[BufferedSocket, str | None, Timings]:
        """A TLS connection over TCP, the protocol ALPN picked, and the phases of opening
        it, whose events go to ``tracer`` (the connection's by default)."""
        conn = self._conn
        assert isinstance(conn, HTTP11Connection)
        recorder = ConnectRecorder(self.tracer if tracer is None else tracer)
        sock, proto = sockets.open_connection(
            self.host,
            self.port,
            secure=True,
            ssl_context=self._ssl_context,
            proxy_host=conn.proxy_host,
            proxy_port=conn.proxy_port,
            proxy_headers=self._http20_kwargs["proxy_headers"],
            socks_proxy=conn.socks_proxy,
            connect_timeout=connect_timeout,
            read_timeout=self._read_timeout,
            buffer_size=conn.network_buffer_size,
            force_proto=self._http20_kwargs.get("force_proto"),
            connect_policy=conn.connect_policy,
            recorder=recorder,
        )
        return sock, proto, recorder.phases

    def _adopt_tls(self, sock: BufferedSocket, proto: str | None, phases: Timings) -> None:
        """Speak over ``sock`` what ALPN picked; the next request takes ``phases``."""
        if proto == "h2":
            http2 = _http2()(**self._http20_kwargs)
            self._apply_buffer_size(http2)
            try:
                http2.adopt_socket(sock, phases)
            except BaseException:
                sock.close()
                raise
            self._conn = http2
        else:
            assert isinstance(self._conn, HTTP11Connection)
            self._conn.adopt_socket(sock, phases)

    def _upgrade_headers(
        self, body: RequestBody, pairs: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]] | None:
        """The caller's headers plus an h2c upgrade request, or None if this one can't ask."""
        if body.data is None or len(body.data) > UPGRADE_BODY_LIMIT:
            return None
        if any(name.lower() in _UPGRADE_CONFLICTS for name, _ in pairs):
            return None
        pairs = list(pairs)
        http2 = _http2()(**self._http20_kwargs)
        self._apply_buffer_size(http2)
        settings = http2.prepare_upgrade()
        self._upgrading = http2
        pairs += [
            (b"Connection", b"Upgrade, HTTP2-Settings"),
            (b"Upgrade", b"h2c"),
            # base64url of whole 6-byte settings entries: never any '=' padding to strip.
            (b"HTTP2-Settings", settings),
        ]
        return pairs

    # -- requests and responses -------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        body: BodyArg = None,
        headers: HeadersArg | None = None,
        *,
        timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
        timings: Timings | None = None,
    ) -> int | None:
        """
        Send a request (see :meth:`HTTP20Connection.request <hyper.HTTP20Connection.request>`
        and :meth:`HTTP11Connection.request <hyper.HTTP11Connection.request>`).

        :param timeout: this request's own timeout, in the forms the constructor takes,
            instead of the connection's; it also bounds settling the protocol when this
            request does that (see :ref:`request-timeouts`).
        :param timings: the :class:`~hyper.common.trace.Timings` to record this request's
            phases in, when the caller began them earlier (say, before its own
            ``connect()``); a new one, started now, by default.
        :returns: the stream id when the connection speaks HTTP/2; ``None`` over HTTP/1.1
            (including the request that asks to upgrade a plaintext connection).
        :raises InvalidRequest: for an invalid method, URL, header, body or timeout.
        """
        # Its timings start here: settling the protocol is part of the first request.
        if timings is None:
            timings = Timings(time.monotonic())
        if self._total_timeout is not None or isinstance(timeout, Timeout):
            # One deadline from here, settling the protocol included, to the response's end.
            started = request_timeouts(
                timeout, self._connect_timeout, self._read_timeout, self._total_timeout
            )[1]
            if isinstance(started, Deadline):
                timeout = started
        if not self._settled:
            sent, headers = self._negotiate(method, url, body, headers, timeout, timings)
            if sent:
                return None  # sent over HTTP/1.1, asking to upgrade
        conn = self._conn
        result = conn.request(
            method, url, body=body, headers=headers, timeout=timeout, timings=timings
        )
        if isinstance(conn, HTTP11Connection):
            # Its response must come from this connection, even if the protocol is settled
            # to HTTP/2 by another thread's upgrade before this thread asks for it.
            self._http11_pending[threading.get_ident()] = conn
        return result

    def _negotiate(
        self,
        method: str | bytes,
        url: str | bytes,
        body: BodyArg,
        headers: HeadersArg | None,
        timeout: RequestTimeoutArg,
        timings: Timings,
    ) -> tuple[bool, HeadersArg | None]:
        """
        Settle the protocol if this request can: ALPN over TLS, or send it asking for an h2c
        upgrade, within the request's timeouts. Returns whether the request was sent that
        way, and the caller's headers (as a list once read, since an iterator can only be
        read once).
        """
        me = threading.get_ident()
        connect_timeout, read_timeout = request_timeouts(
            timeout, self._connect_timeout, self._read_timeout
        )
        # The thread settling the protocol holds the lock while it connects, or while it
        # waits for its upgrade's answer: this one gives up on it by its own limits.
        limit = self._settling_limit(connect_timeout, read_timeout)
        while True:
            acquire_within(self._negotiation, limit, _SETTLING)
            if self._upgrading is None:
                break
            # Another request's upgrade answer is pending: its outcome decides for us.
            if self._upgrade_owner == me:
                self._negotiation.release()
                raise InvalidRequest(
                    "call get_response() for the previous request first: its answer "
                    "decides whether this connection speaks HTTP/2"
                )
            mark = self._settling.count
            self._negotiation.release()
            self._settling.wait_past(mark, limit, _SETTLING)
        try:
            if self._settled:
                return False, headers
            if self.secure:
                self._negotiate_tls(connect_limit(connect_timeout))
                return False, headers
            assert isinstance(self._conn, HTTP11Connection)
            if self._conn.proxy_host is not None:
                self._settled = True  # through a forward proxy, HTTP/1.1 it stays
                return False, headers
            request_body = RequestBody(body)
            pairs = list(iter_header_pairs(headers))
            # Not while another thread's HTTP/1.1 exchange is under way: the upgrade request
            # would wait for it while holding the negotiation (and its get_response too).
            busy = self._conn.busy
            upgrade = None if busy else self._upgrade_headers(request_body, pairs)
            replayable = (method, url, request_body.data, pairs, timeout)
            if upgrade is None:
                # Sent as plain HTTP/1.1, outside the lock. Kept in case the server turns out
                # to speak only HTTP/2, if the body can be sent again.
                if request_body.data is not None:
                    self._plain_requests[me] = replayable
                return False, pairs
            try:
                self._conn.request(
                    method,
                    url,
                    body=request_body.data,
                    headers=upgrade,
                    timeout=timeout,
                    timings=timings,
                )
            except BaseException:
                self._upgrading = None
                self._settling.notify_all()
                raise
            self._upgrade_owner = me
            self._upgrade_request = replayable
            return True, pairs
        finally:
            self._negotiation.release()

    def get_response(
        self, *args: Any, **kwargs: Any
    ) -> HTTP11Response | HTTP20Response | HTTP30Response:
        """
        Return the response to a request. Over HTTP/2 and HTTP/3 the arguments are those of
        :meth:`HTTP20Connection.get_response <hyper.HTTP20Connection.get_response>`; over
        HTTP/1.1 a stream id of ``None`` (what :meth:`request` returned) is accepted.

        With ``http3=True``, over TLS, an ``Alt-Svc`` field in the response is remembered for
        the origin (:data:`~hyper.common.altsvc.ALT_SVC_CACHE`): a later connection with
        ``http3=True`` tries HTTP/3 where it says.
        """
        response = self._get_response(args, kwargs)
        if self.http3 and self.secure:
            # Only connections that may use HTTP/3 pay for looking: the others never ask.
            advertised = response.headers.get(b"alt-svc")
            if advertised:
                values = [value.decode("latin-1") for value in advertised]
                ALT_SVC_CACHE.remember(self._origin, values)
        return response

    def _get_response(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HTTP11Response | HTTP20Response | HTTP30Response:
        conn = self._conn
        pending = self._http11_pending.pop(threading.get_ident(), None)
        if pending is not None and pending is not conn:
            # This thread's request went out over HTTP/1.1 before the protocol was settled.
            return self._plain_response(pending)
        if not isinstance(conn, HTTP11Connection):
            return conn.get_response(*args, **kwargs)
        stream_id = kwargs.pop("stream_id", args[0] if args else None)
        if len(args) > 1 or kwargs or stream_id is not None:
            raise InvalidRequest("an HTTP/1.1 connection has no stream ids")
        if self._upgrading is None or self._upgrade_owner != threading.get_ident():
            return self._plain_response(conn)
        with self._negotiation:
            # None: another thread settled the protocol meanwhile.
            upgraded = None if self._upgrading is None else self._finish_upgrade(conn)
            self._settling.notify_all()
        if upgraded is None:
            return self._conn.get_response(*args)
        if isinstance(upgraded, BaseResponse):
            return upgraded  # the server stayed with HTTP/1.1
        return upgraded.get_response(1)

    def _plain_response(self, conn: HTTP11Connection) -> HTTP11Response | HTTP20Response:
        """An HTTP/1.1 response, or, from a server that turns out to speak only HTTP/2, the
        response to the same request sent again over HTTP/2."""
        me = threading.get_ident()
        try:
            return conn.get_response()
        except HTTP2PriorKnowledgeOnly:
            record = self._plain_requests.pop(me, None)
            if record is None:
                raise
            with self._negotiation:
                response = self._switch_to_prior_knowledge(record)
                self._settling.notify_all()
            return response
        finally:
            self._plain_requests.pop(me, None)

    def _finish_upgrade(
        self, conn: HTTP11Connection
    ) -> HTTP11Response | HTTP20Response | HTTP20Connection:
        """Read the answer to the upgrade request and settle the protocol (lock held)."""
        try:
            response = conn.get_response()
        except HTTP2PriorKnowledgeOnly:
            assert self._upgrade_request is not None
            return self._switch_to_prior_knowledge(self._upgrade_request)
        except BaseException:
            self._upgrading = self._upgrade_request = None
            raise
        http2, self._upgrading = self._upgrading, None
        record, self._upgrade_request = self._upgrade_request, None
        method = record[0] if record is not None else b""
        timeout = record[4] if record is not None else CONNECTION_TIMEOUT
        self._settled = True
        if response.status != 101 or http2 is None:
            return response  # the server stays with HTTP/1.1
        protocols = {
            token.strip().lower()
            for value in response.headers.get(b"upgrade", [])
            for token in value.split(b",")
        }
        if b"h2c" not in protocols:
            conn.close()
            raise InvalidResponse(
                "the server switched protocols (101) to "
                f"{b', '.join(sorted(protocols)).decode('latin-1') or 'nothing named'}, "
                "not to h2c, which hyper asked for"
            )
        head = method in (b"HEAD", "HEAD")
        http2.complete_upgrade(
            conn.detach_socket(), head_request=head, timeout=timeout, timings=response.timings
        )
        self._conn = http2
        return http2

    def _switch_to_prior_knowledge(self, record: _Record) -> HTTP20Response:
        """
        The server only speaks h2c with prior knowledge: send the request again that way. It
        is safe to: the server never read it as a request (lock held).
        """
        method, url, body, headers, timeout = record
        self._upgrading = self._upgrade_request = self._upgrade_owner = None
        self._settled = True
        if not isinstance(self._conn, HTTP11Connection):
            http2 = self._conn  # another thread switched already
            assert isinstance(http2, _http2())  # in plaintext, never HTTP/3
        else:
            old = self._conn
            old.close()
            http2 = _http2()(**self._http20_kwargs)
            self._apply_buffer_size(http2)
            self._conn = http2
        stream_id = http2.request(method, url, body=body, headers=headers, timeout=timeout)
        return http2.get_response(stream_id)

    def get_pushes(
        self, stream_id: int | None = None, capture_all: bool = False
    ) -> Iterator[HTTP20Push]:
        """
        The pushes the server promised (see :meth:`HTTP20Connection.get_pushes
        <hyper.HTTP20Connection.get_pushes>`); none over HTTP/1.1 or HTTP/3 (hyper does
        not let an HTTP/3 server push).
        """
        conn = self._conn
        if isinstance(conn, _http2()):
            return conn.get_pushes(stream_id, capture_all)
        return iter(())

    def close(self) -> None:
        """
        Close the connection, whichever protocol it speaks. An upgrade still awaiting its
        answer is forgotten: the next request starts the negotiation again.
        """
        # Close first, without the lock: a thread waiting on the socket wakes up at once.
        self._conn.close()
        with self._negotiation:
            self._upgrading = self._upgrade_request = self._upgrade_owner = None
            self._plain_requests.clear()
            self._settling.notify_all()


#: What a request waits for while another thread settles the protocol.
_SETTLING = "the protocol to be settled"


def _connect_part(connect_timeout: WaitArg, read_timeout: float | None) -> RequestTimeoutArg:
    """A request's connect timeout (a number, ``None``, or its total deadline) in a form
    ``connect(timeout=)`` takes."""
    if isinstance(connect_timeout, Deadline):
        return connect_timeout
    return (connect_timeout, read_timeout)


#: Keyword arguments only one protocol's connection takes.
_HTTP11_ONLY: frozenset[str] = frozenset()
_HTTP20_ONLY: frozenset[str] = frozenset({"force_proto"})
_HTTP30_ONLY: frozenset[str] = frozenset(
    {"cert", "cert_password", "cert_path", "idle_timeout", "max_data", "max_stream_data"}
)
