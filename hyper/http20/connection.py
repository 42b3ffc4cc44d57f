"""
:class:`HTTP20Connection`: one HTTP/2 connection to one server, with the http.client-style API.

The connection builds requests, hands out stream ids and responses, and decides what only it
can: which push to accept, which request to send again, when to open a new transport. The
socket and the protocol state it runs on form a :class:`~hyper.http20.transport.Transport`
(see there for the threading model), whose :class:`~hyper.http20.engine.Engine` speaks the
protocol. A connection opens a new transport when it has none, after
:meth:`~HTTP20Connection.close`, when the server sent GOAWAY (the old transport drains
meanwhile), or when stream ids run out. Requests the server never processed are sent again on
the new transport when that is safe.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import tls
from ..common.bufsocket import HTTP2_BUFFER_SIZE, BufferedSocket
from ..common.condition import connect_time_left, take_connect_lock
from ..common.exceptions import (
    ConnectionClosed,
    HyperError,
    InvalidRequest,
    ReadTimeout,
    SocketError,
)
from ..common.eyeballs import DEFAULT_DELAY, ConnectPolicy, Resolver
from ..common.grammar import CONNECTION_SPECIFIC_FIELDS
from ..common.multiplexed import (
    MultiplexedConnection,
    PendingRequest,
    RequestTable,
    StreamOpener,
    mark_headers_sent,
    mark_queued,
    ready_locked,
    retire_locked,
    send_body,
)
from ..common.request import (
    HeadersArg,
    to_header_bytes,
)
from ..common.sockets import open_connection
from ..common.socks import parse_proxy
from ..common.timeout import split_wait
from ..common.trace import ConnectRecorder, Timings, TraceHook, Tracer, tracer_for
from ..common.util import (  # TimeoutArg and split_timeout are re-exported from here
    CONNECTION_TIMEOUT,
    HTTPVersion,
    RequestTimeoutArg,
    TimeoutArg,
    WaitArg,
    authority_for,
    check_ssl_context,
    request_timeouts,
    resolve_host_port,
    split_timeout,
    to_host_port_tuple,
    total_timeout,
)
from .engine import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_HEADER_LIST_SIZE, Engine
from .errors import ErrorCodes
from .exceptions import ClosedByCaller, HTTP20Error, ProtocolError, StreamResetError
from .exceptions import ConnectionError as HTTP2ConnectionError
from .response import HTTP20Push, HTTP20Response
from .stream import HeaderList, Stream
from .transport import Transport
from .window import BaseFlowControlManager, FlowControlManager

__all__ = ["HTTP20Connection", "StreamResetError"]

log = logging.getLogger(__name__)

#: Headers that describe a single HTTP/1.1 hop; HTTP/2 forbids them (RFC 9113 8.2.2).
CONNECTION_SPECIFIC_HEADERS = CONNECTION_SPECIFIC_FIELDS

#: The most pushed responses one connection keeps waiting to be collected with
#: :meth:`HTTP20Connection.get_pushes`; further pushes are refused (``REFUSED_STREAM``).
MAX_BUFFERED_PUSHES = 100

#: The highest stream identifier HTTP/2 allows.
MAX_STREAM_ID = 2**31 - 1

__all__ += ["DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_HEADER_LIST_SIZE", "MAX_BUFFERED_PUSHES"]


#: A request the caller holds a stream id for
#: (:class:`~hyper.common.multiplexed.PendingRequest`).
_Request = PendingRequest[Transport, Stream]


def _connection_died(error: HyperError | None) -> bool:
    """Whether a stream's error means its connection ended under it (see
    :func:`~hyper.common.multiplexed.retry_verdict`)."""
    return (isinstance(error, SocketError) and not isinstance(error, ReadTimeout)) or (
        isinstance(error, HTTP2ConnectionError) and not isinstance(error, ProtocolError)
    )


class HTTP20Connection(MultiplexedConnection[HTTP20Response]):
    """
    A connection to one server, speaking HTTP/2 over TLS (ALPN ``h2``) or in plaintext with
    prior knowledge (``h2c``).

    It looks like :class:`http.client.HTTPConnection`, with one difference that matters:
    many requests may be in flight at once. :meth:`request` returns the new stream's id, and
    :meth:`get_response` takes it to fetch the matching response, in any order.

    Every method may be called from any thread; threads share the connection safely.

    :param host: the server's host name or IP address, optionally with a port:
        ``"example.com"``, ``"example.com:8443"``, ``"127.0.0.1"``, ``"[::1]:8443"``. A
        non-ASCII name is encoded as IDNA 2008 A-labels (:func:`~hyper.common.hosts.encode_host`).
    :param port: the port, when ``host`` names none. Defaults to 443.
    :param secure: whether to use TLS. Defaults to ``True`` for port 443 and ``False``
        otherwise (plaintext HTTP/2 with prior knowledge).
    :param window_manager: the flow-control policy: a subclass of
        :class:`~hyper.http20.window.BaseFlowControlManager` (the class, not an instance).
        Defaults to :class:`~hyper.http20.window.FlowControlManager`.
    :param enable_push: whether the server may push responses (see :meth:`get_pushes`).
        Pushes are refused when this is ``False``.
    :param ssl_context: the :class:`ssl.SSLContext` for TLS; hyper's default context
        (:func:`hyper.tls.init_context`) when ``None``.
    :param proxy_host: a proxy to tunnel through: an HTTP proxy (``CONNECT``) as
        ``host[:port]`` or ``http://host[:port]``, or a SOCKS proxy as a URL,
        ``socks5h://[user:password@]host[:port]`` (also ``socks5``, ``socks4a``, ``socks4``
        with an optional user id). ``socks5h`` and ``socks4a`` let the proxy resolve
        ``host``.
    :param proxy_port: the proxy's port when ``proxy_host`` names none. Defaults to 8080
        (1080 for SOCKS).
    :param force_proto: assume this protocol was negotiated (``"h2"``) even if ALPN said
        otherwise; for servers that speak HTTP/2 without announcing it.
    :param proxy_headers: headers for an HTTP proxy's ``CONNECT`` request (for example
        ``Proxy-Authorization``). A SOCKS proxy takes none.
    :param timeout: seconds to wait for the network: one number, or a ``(connect, read)``
        pair. ``None`` waits forever.
    :param happy_eyeballs_delay: how addresses are raced (:doc:`connecting`); as for
        :class:`~hyper.HTTP11Connection`.
    :param address_family: the one address family to use, or ``None``; likewise.
    :param resolver: the function resolving host names, or ``None``; likewise.
    :param trace: a trace hook: a callable given each
        :class:`~hyper.common.trace.TraceEvent` of this connection as it happens, or a
        :class:`~hyper.common.trace.Tracer` to share; ``None`` for none (see
        :doc:`timings`). It is called in whichever thread drives the event: the thread
        reading the connection may report another stream's reset, or a GOAWAY.
    :raises InvalidRequest: for an unusable host, port, timeout or connect setting, a
        ``trace`` that is not callable, or an unknown keyword.
    """

    #: The protocol this connection speaks.
    version = HTTPVersion.http20

    #: The size of the receive buffer, in bytes (256 KiB by default: a bulk download then
    #: takes fewer trips through the protocol layer). Changing it affects the next socket
    #: this connection opens.
    network_buffer_size: int = HTTP2_BUFFER_SIZE

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
        force_proto: str | None = None,
        proxy_headers: HeadersArg | None = None,
        timeout: TimeoutArg = None,
        *,
        happy_eyeballs_delay: float = DEFAULT_DELAY,
        address_family: int | None = None,
        resolver: Resolver | None = None,
        trace: TraceHook | Tracer | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise InvalidRequest(
                f"HTTP20Connection got unexpected keyword arguments: {', '.join(sorted(kwargs))}"
            )
        self.host, self.port = resolve_host_port(host, port, 443)
        #: Whether the connection uses TLS.
        self.secure = bool(secure) if secure is not None else self.port == 443
        self.ssl_context = ssl_context
        self.force_proto = force_proto
        self.enable_push = bool(enable_push)
        if window_manager is None:
            window_manager = FlowControlManager
        elif not (
            isinstance(window_manager, type) and issubclass(window_manager, BaseFlowControlManager)
        ):
            raise InvalidRequest("window_manager must be a subclass of BaseFlowControlManager")
        self.window_manager_cls: type[BaseFlowControlManager] = window_manager
        #: The HTTP proxy's host and port, and the SOCKS proxy (a
        #: :class:`~hyper.common.socks.SocksProxy`); ``None`` for the kind not in use.
        self.proxy_host, self.proxy_port, self.socks_proxy = parse_proxy(
            proxy_host, proxy_port, proxy_headers
        )
        self.proxy_headers = proxy_headers
        self.timeout = timeout
        check_ssl_context(ssl_context)
        self._connect_timeout, self._read_timeout = split_timeout(timeout)
        #: How addresses are resolved and raced (:class:`~hyper.common.eyeballs.ConnectPolicy`).
        self.connect_policy = ConnectPolicy.build(happy_eyeballs_delay, address_family, resolver)
        self._total_timeout = total_timeout(timeout)

        self._scheme = b"https" if self.secure else b"http"

        #: The requests this connection holds stream ids for, oldest first, and the lock that
        #: guards them and the transports (the methods of MultiplexedConnection use them too).
        self._requests: RequestTable[_Request] = RequestTable()
        self._lock, self._cond = self._requests.lock, self._requests.cond
        self._awaiting = self._requests.awaiting
        self._connect_lock = threading.Lock()

        #: The transport new streams go on (None before the first connect).
        self._transport: Transport | None = None
        #: Older transports finishing the streams they carry after a GOAWAY.
        self._draining: list[Transport] = []
        #: Requests started by putrequest() whose headers are not sent yet: id -> thread id.
        self._reserved: dict[int, int] = {}
        self._next_stream_id = 1
        #: The engine prepared for an ``Upgrade: h2c`` request (hyper.HTTPConnection).
        self._upgrade_engine: Engine | None = None
        # The phases of the transport opened last without a request (connect(),
        # adopt_socket()), until a request claims them.
        self._fresh_phases: Timings | None = None
        tracer = tracer_for(trace)
        super().__init__(
            self._requests,
            StreamOpener(
                open=self._open_stream,
                send_headers=self._send_reserved,
                reserve_locked=self._reserve_locked,
                release_locked=self._release_locked,
                resend=self._resend,
                connection_died=_connection_died,
                closed_by_caller=ClosedByCaller,
                cancel_code=ErrorCodes.CANCEL,
            ),
            HTTP20Response,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            total_timeout=self._total_timeout,
            scheme=self._scheme,
            authority=authority_for(self.host, self.port, 443 if self.secure else 80).encode(
                "ascii"
            ),
            secure=self.secure,
            tracer=tracer,
        )

    def __repr__(self) -> str:
        state = "open" if self._usable() else "closed"
        return f"<HTTP20Connection {self.host}:{self.port} {state}>"

    # -- state ------------------------------------------------------------------------------------

    def _usable(self) -> bool:
        """New streams may be opened on the current transport."""
        transport = self._transport
        return transport is not None and transport.usable()

    @property
    def last_ping_ack(self) -> bytes | None:
        """The payload of the last PING the server acknowledged (``None`` before any)."""
        transport = self._transport
        return transport.last_ping_ack if transport is not None else None

    @property
    def open_streams(self) -> int:
        """How many streams are open on this connection now (requests in flight, and
        pushes), on the current transport and on any still draining."""
        with self._lock:
            transports = [self._transport, *self._draining]
            return sum(len(t.engine.streams) for t in transports if t is not None)

    # -- connecting -------------------------------------------------------------------------------

    def connect(self, *, timeout: RequestTimeoutArg = CONNECTION_TIMEOUT) -> None:
        """
        Open the connection: TCP (through the proxy's tunnel if one is set), TLS with ALPN when
        secure, then the HTTP/2 preface and settings. Does nothing if the connection is already
        open; :meth:`request` calls it as needed, so calling it is optional.

        Safe to call from several threads: one connects, the others wait for it, each within
        its connect timeout.

        :param timeout: bounds opening the connection instead of the connection's connect
            timeout, in the forms :meth:`request` takes (of a pair, the connect part
            counts; a total deadline bounds it too).

        :raises ConnectTimeout: if connecting takes longer than the connect timeout.
        :raises CertificateError: if the server's certificate can't be verified.
        :raises TLSError: if the TLS handshake fails.
        :raises ProxyError: if the proxy refuses the tunnel (``CONNECT`` or SOCKS).
        :raises HTTP20Error: if the server does not offer HTTP/2 over TLS.
        :raises SocketError: for any other network failure.
        """
        phases = self._connect(
            request_timeouts(timeout, self._connect_timeout, self._read_timeout)[0]
        )
        if phases is not None:
            with self._lock:
                self._fresh_phases = phases  # for the first request on it

    def _connect(self, connect_timeout: WaitArg) -> Timings | None:
        """:meth:`connect`, opening the socket within ``connect_timeout`` (a request's, or
        what is left of its total deadline). Returns the phases of opening it if this call
        did, ``None`` if the connection was usable (or another thread opened it)."""
        if self._usable():
            return None
        # Another thread may be opening it: this request waits for that by its own limits.
        limit = take_connect_lock(self._connect_lock, connect_timeout)
        try:
            if self._usable():
                return None
            with self._lock:
                self._set_aside_locked()
                self._fresh_phases = None
                if not self._reserved and not self._awaiting:
                    # Nothing from the old transport can be confused with new streams; else
                    # ids keep counting up on the new one (HTTP/2 allows any start).
                    self._next_stream_id = 1
            recorder = ConnectRecorder(self.tracer)
            sock = self._open_socket(connect_time_left(limit), recorder)
            engine = self._new_engine()
            engine.start()
            try:
                self._install(sock, engine)
            except BaseException:
                sock.close()
                raise
            return recorder.phases
        finally:
            self._connect_lock.release()

    def _set_aside_locked(self) -> None:
        """Retire the current transport: let it drain if it still carries streams, else
        close it."""
        old, self._transport = self._transport, None
        self._draining = retire_locked(
            old,
            self._draining,
            lambda idle: idle.close_locked(
                ErrorCodes.NO_ERROR, ConnectionClosed("the connection was closed")
            ),
        )

    def _new_engine(self) -> Engine:
        return Engine(
            enable_push=self.enable_push,
            window_manager=self.window_manager_cls,
            tracer=self.tracer,
        )

    def _install(self, sock: BufferedSocket, engine: Engine) -> Transport:
        """Start HTTP/2 on ``sock`` with ``engine`` (its preface queued): the new current
        transport."""
        transport = Transport(sock, engine, self._cond, self._read_timeout, self._push_policy)
        with self._lock:
            transport.flush_locked()
            self._transport = transport
            self._cond.notify_all()
        return transport

    def adopt_socket(self, sock: BufferedSocket, phases: Timings | None = None) -> None:
        """
        Speak HTTP/2 on a socket that is already connected and has negotiated it (ALPN), as
        :class:`hyper.HTTPConnection` does after its own handshake.

        :param sock: the socket; the connection owns it from now on.
        :param phases: the phases of opening it
            (:attr:`hyper.common.trace.ConnectRecorder.phases`), for the timings of the first
            request sent on it.
        """
        sock.grow(self.network_buffer_size)
        sock.settimeout(self._read_timeout)
        engine = self._new_engine()
        engine.start()
        with self._connect_lock:
            self._install(sock, engine)
            with self._lock:
                self._fresh_phases = phases

    def prepare_upgrade(self) -> bytes:
        """
        Start an ``Upgrade: h2c`` (RFC 7540 section 3.2): return the ``HTTP2-Settings``
        value for the HTTP/1.1 request that asks for it. :meth:`complete_upgrade` follows
        once the server agreed.
        """
        engine = self._new_engine()
        self._upgrade_engine = engine
        return engine.upgrade_settings()

    def complete_upgrade(
        self,
        sock: BufferedSocket,
        head_request: bool = False,
        *,
        timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
        timings: Timings | None = None,
    ) -> int:
        """
        Take over ``sock`` after ``101 Switching Protocols``: the request that asked for the
        upgrade becomes stream 1, whose response arrives over HTTP/2.

        :param sock: the socket the 101 came on, with whatever followed it still buffered.
        :param head_request: whether the upgrade request was a HEAD.
        :param timeout: that request's own timeout, if it had one (see :meth:`request`).
        :param timings: that request's timings (those of the 101 response), which its
            response over HTTP/2 completes.
        :returns: the stream id of that request (1).
        :raises HTTP20Error: if no upgrade was prepared.
        :raises InvalidRequest: for an invalid ``timeout``.
        """
        connect_timeout, read_timeout = request_timeouts(
            timeout, self._connect_timeout, self._read_timeout, self._total_timeout
        )
        engine = self._upgrade_engine
        if engine is None:
            raise HTTP20Error("no h2c upgrade was prepared")
        self._upgrade_engine = None
        sock.grow(self.network_buffer_size)
        sock.settimeout(self._read_timeout)
        stream = engine.start_upgraded(head_request)
        with self._connect_lock:
            transport = self._install(sock, engine)
            with self._lock:
                request = _Request(1, [], connect_timeout, read_timeout, timings)
                request.timings.protocol = self.version.value
                request.timings.body_done = None  # the 101's: the body comes over HTTP/2
                stream.timings = request.timings
                request.sent = True
                request.transport, request.stream = transport, stream
                self._awaiting[1] = request
                self._requests.latest = 1
                self._next_stream_id = max(self._next_stream_id, 3)
        return 1

    def _open_socket(
        self, connect_timeout: float | None, recorder: ConnectRecorder
    ) -> BufferedSocket:
        # Through an HTTP proxy, HTTP/2 always needs a tunnel: there is no absolute-form for it.
        sock, proto = open_connection(
            self.host,
            self.port,
            secure=self.secure,
            ssl_context=self.ssl_context,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
            proxy_headers=self.proxy_headers,
            socks_proxy=self.socks_proxy,
            connect_timeout=connect_timeout,
            # The socket is shared: its own timeout (for writes) stays the connection's.
            read_timeout=self._read_timeout,
            buffer_size=self.network_buffer_size,
            connect_policy=self.connect_policy,
            force_proto=self.force_proto,
            recorder=recorder,
        )
        if self.secure and proto != tls.H2_PROTOCOL:
            sock.close()
            raise HTTP20Error(
                f"{self.host}:{self.port} did not negotiate HTTP/2 (ALPN chose {proto!r}); "
                "use hyper.HTTPConnection to fall back to HTTP/1.1, or pass force_proto='h2' "
                "if the server speaks HTTP/2 without announcing it"
            )
        return sock

    # -- closing ----------------------------------------------------------------------------------

    def close(self, error_code: int | None = None) -> None:
        """
        Close the connection: send GOAWAY (with ``error_code``, ``NO_ERROR`` by default) and
        close the socket. Responses whose body was fully received stay readable; reading the
        others raises :class:`~hyper.common.exceptions.ConnectionClosed`. A later
        :meth:`request` opens a new connection.

        :param error_code: the HTTP/2 error code to send in the GOAWAY frame.
        """
        if error_code is not None and (
            not isinstance(error_code, int) or not 0 <= error_code < 2**32
        ):
            raise InvalidRequest(f"invalid HTTP/2 error code {error_code!r}")
        with self._lock:
            error = ClosedByCaller("the connection was closed by close()")
            for transport in [*self._draining, self._transport]:
                if transport is not None:
                    transport.close_locked(error_code or ErrorCodes.NO_ERROR, error)
            self._draining.clear()
            self._requests.fail_locked(error)

    # -- opening streams (the StreamOpener) -------------------------------------------------------

    def _reserve_locked(self) -> int:
        """The stream id of a request putrequest() starts, held until its headers go out."""
        stream_id = self._allocate_stream_id_locked()
        self._reserved[stream_id] = threading.get_ident()
        return stream_id

    def _release_locked(self, request: _Request) -> None:
        self._reserved.pop(request.handle, None)

    def _send_reserved(self, request: _Request, end_stream: bool) -> None:
        """Send the headers of a request started with putrequest(), on its reserved id."""
        self._open_stream(
            request.headers,
            end_stream,
            request.connect_timeout,
            request.read_timeout,
            request.timings,
            request,
        )

    def _allocate_stream_id_locked(self) -> int:
        """
        The next stream id. When HTTP/2's ids run out, the current transport is set aside (it
        drains) and ids start again at 1 for the next one, skipping ids that still name a
        request the caller has not collected, so handles never clash.
        """
        if self._next_stream_id > MAX_STREAM_ID:
            self._set_aside_locked()
            self._next_stream_id = 1
        stream_id = self._next_stream_id
        while stream_id in self._awaiting or stream_id in self._reserved:
            stream_id += 2
        if stream_id > MAX_STREAM_ID:
            raise HTTP20Error("every HTTP/2 stream id names a request still waiting")
        self._next_stream_id = stream_id + 2
        return stream_id

    def _open_stream(
        self,
        headers: HeaderList,
        end_stream: bool,
        connect_timeout: WaitArg,
        read_timeout: WaitArg,
        timings: Timings,
        reserved: _Request | None = None,
    ) -> _Request:
        """Send a HEADERS frame, on a new stream or on one reserved by putrequest(), waiting
        for the connection and for room within the request's timeouts; record its phases in
        ``timings``."""
        me = threading.get_ident()
        wait, total = split_wait(read_timeout)
        deadline = None if wait is None else time.monotonic() + wait
        lost: list[Transport] = []
        reserved_id = reserved.handle if reserved is not None else None
        phases: Timings | None = None
        while True:
            # Opens a transport, or a new one after close(), a GOAWAY or a server's close.
            phases = self._connect(connect_timeout) or phases
            with self._lock:
                transport = self._transport
                if transport is None or not ready_locked(transport, lost):
                    continue
                lower = [sid for sid in self._reserved if reserved_id is None or sid < reserved_id]
                if lower:
                    if any(self._reserved[sid] == me for sid in lower):
                        raise InvalidRequest(
                            f"stream {min(lower)} was started with putrequest() and its "
                            "headers not sent; call endheaders() for it first"
                        )
                    # Another thread is building a request with a lower id, which must go
                    # out first: HTTP/2 stream ids only ever increase.
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise ReadTimeout("timed out waiting for another thread's request")
                    self._cond.wait(remaining if total is None else total.wait(remaining))
                    continue
                if self._next_stream_id > MAX_STREAM_ID and reserved_id is None:
                    # Out of stream ids: new streams go on a new transport, ids from 1 again.
                    self._set_aside_locked()
                    self._next_stream_id = 1
                    continue
                if self._can_open_stream_locked(transport):
                    return self._send_headers_locked(
                        transport,
                        headers,
                        end_stream,
                        reserved,
                        connect_timeout,
                        read_timeout,
                        timings,
                        phases,
                    )
            # The server allows no more streams now: read until one ends (or it goes away).
            mark_queued(timings, self.tracer, reserved_id)
            transport.read_until(self._room_or_gone(transport), read_timeout)

    def _room_or_gone(self, transport: Transport) -> Callable[[], bool]:
        """A predicate: ``transport`` can take another stream, or can take none at all."""
        return lambda: not transport.usable() or self._can_open_stream_locked(transport)

    def _can_open_stream_locked(self, transport: Transport) -> bool:
        """Whether the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves room for a stream."""
        engine = transport.engine
        if not engine.peer_settings_received:
            # The server's limit is unknown until its SETTINGS arrive (they come with its
            # preface, right away): one stream at a time until then, so a burst of requests
            # on a fresh connection cannot overrun a small limit.
            return not engine.open_count and not self._reserved
        return engine.open_count + len(self._reserved) < engine.peer_max_concurrent_streams

    def _send_headers_locked(
        self,
        transport: Transport,
        headers: HeaderList,
        end_stream: bool,
        reserved: _Request | None,
        connect_timeout: WaitArg,
        read_timeout: WaitArg,
        timings: Timings,
        phases: Timings | None,
    ) -> _Request:
        """Send the headers on ``transport`` (lock held). ``phases``: those of the transport
        this request opened, if it did; else it takes those of a transport opened without
        a request, if nobody did yet."""
        if reserved is None:
            stream_id = self._allocate_stream_id_locked()
            request = _Request(stream_id, headers, connect_timeout, read_timeout, timings)
            self._requests.latest = stream_id
        else:
            request = reserved
            stream_id = reserved.handle
        try:
            stream = transport.open_stream_locked(stream_id, headers, end_stream)
        finally:
            self._cond.notify_all()
        stream.timings = timings
        if phases is None:
            phases, self._fresh_phases = self._fresh_phases, None
        if phases is not None:
            timings.adopt_connection(phases)
        else:
            timings.reused = True
        self._reserved.pop(stream_id, None)
        request.transport, request.stream, request.sent = transport, stream, True
        mark_headers_sent(request, end_stream, self.tracer)
        self._awaiting[request.handle] = request
        return request

    # -- responses --------------------------------------------------------------------------------

    def get_response(self, stream_id: int | None = None) -> HTTP20Response:
        """
        Wait for and return the response to a request, reading and buffering the frames of
        other streams that arrive meanwhile.

        If the server says it never processed the request (a GOAWAY below it, or
        REFUSED_STREAM), it is sent again on a new connection when its body was in memory
        (bytes, str or none), and the same ``stream_id`` keeps working; otherwise
        :class:`~hyper.http20.exceptions.ConnectionError` says it is safe to retry.

        :param stream_id: the stream id :meth:`request` returned. ``None`` takes the oldest
            request whose response has not been fetched yet.
        :returns: the response; its body is read with :meth:`HTTP20Response.read`.
        :raises InvalidRequest: if no such request is waiting for its response.
        :raises ~hyper.http20.exceptions.StreamResetError: if the server reset the stream before
            answering.
        :raises ~hyper.http20.exceptions.ConnectionError: if the connection failed, or the request
            was not processed
            and could not be sent again.
        :raises ReadTimeout: if the response does not come within the request's read
            timeout (its own, or the connection's). The request stays pending: call
            ``get_response()`` again to wait more, or :meth:`cancel` to give it up.
        """
        return super().get_response(stream_id)

    def _resend(self, request: _Request) -> None:
        """
        Send an unprocessed request again (on whatever transport is current); the caller's
        stream id keeps naming it.
        """
        assert request.replay is not None
        headers, data = request.replay
        request.timings.first_byte = None  # of the failed attempt, if any of a head came
        new = self._open_stream(
            headers, not data, request.connect_timeout, request.read_timeout, request.timings
        )
        transport, stream = new.transport, new.stream
        assert transport is not None and stream is not None
        with self._lock:
            self._awaiting.pop(new.handle, None)
            request.transport, request.stream = transport, stream
            request.body_sent = 0  # the body goes out again from its start
            self._awaiting[request.handle] = request
        if data:
            try:
                # The body fits its Content-Length: it did the first time.
                send_body(request, iter((data,)), True, lambda: None, self.tracer)
            except BaseException:
                with self._lock:
                    transport.reset_locked(stream, ErrorCodes.CANCEL)
                    self._cond.notify_all()
                raise

    def get_pushes(
        self, stream_id: int | None = None, capture_all: bool = False
    ) -> Iterator[HTTP20Push]:
        """
        Return a generator of the pushes the server promised.

        Each push is yielded once: a later call does not yield it again.

        :param stream_id: the request whose pushes to return; the latest request when
            ``None``.
        :param capture_all: ``False`` yields the pushes already received, without blocking.
            ``True`` then keeps reading the connection and yields pushes as they arrive, until
            the request's stream ends.
        :returns: a generator of :class:`~hyper.HTTP20Push`.
        """
        if stream_id is None:
            stream_id = self._requests.latest
        if stream_id is None:
            return iter(())
        transport: Transport | None
        parent: Stream | None
        with self._lock:
            request = self._awaiting.get(stream_id)
            if request is not None and request.transport is not None:
                transport, parent = request.transport, request.stream
            else:
                transport, parent = self._find_stream_locked(stream_id)
        if transport is None:
            return iter(())
        # A request sent again keeps the caller's id but has a new stream id: its pushes are
        # filed under the latter.
        key = parent.stream_id if parent is not None else stream_id
        return self._iter_pushes(transport, key, parent, capture_all)

    def _find_stream_locked(self, stream_id: int) -> tuple[Transport | None, Stream | None]:
        """The transport holding stream ``stream_id`` (open, or with pushes to collect)."""
        for transport in (self._transport, *self._draining):
            if transport is None:
                continue
            stream = transport.engine.streams.get(stream_id)
            if stream is not None or stream_id in transport.promises:
                return transport, stream
        return None, None

    def _iter_pushes(
        self, transport: Transport, key: int, parent: Stream | None, capture_all: bool
    ) -> Iterator[HTTP20Push]:
        while True:
            with self._lock:
                pushed = transport.take_promise_locked(key)
            if pushed is not None:
                yield HTTP20Push(pushed.request_headers, transport.handle(pushed))
                continue
            if not capture_all or parent is None or parent.finished:
                return
            transport.read_until(lambda: bool(transport.promises.get(key)) or parent.finished)

    def _push_policy(
        self, transport: Transport, parent_id: int, headers: HeaderList
    ) -> tuple[int, str] | None:
        """Why a promised push is refused and the error code to reset it with, or None to
        accept it (lock held)."""
        if not self.enable_push:
            return ErrorCodes.REFUSED_STREAM, "push is disabled"
        transports = [self._transport, *self._draining]
        waiting = sum(t.promised_count() for t in transports if t is not None)
        if waiting >= MAX_BUFFERED_PUSHES:
            return ErrorCodes.REFUSED_STREAM, "too many pushes nobody collected"
        pseudo = {name: value for name, value in headers if name[:1] == b":"}
        scheme = pseudo.get(b":scheme", b"")
        method = pseudo.get(b":method", b"")
        authority = pseudo.get(b":authority", b"")
        path = pseudo.get(b":path", b"")
        if any(name == b"content-length" and value != b"0" for name, value in headers):
            # RFC 9113 8.4.1: a promised request carries no content.
            return ErrorCodes.PROTOCOL_ERROR, "a promised request with content"
        names = transport.certificate_names()
        if self.push_allowed(scheme, method, authority, path, names):
            return None
        # A push the RFC lets a client take, declined by policy, is refused; one it does not
        # (RFC 9113 8.4: a server not authoritative for it, a method not safe and cacheable)
        # is a stream error of type PROTOCOL_ERROR.
        lawful = self._push_is_lawful(scheme, method, authority, names)
        code = ErrorCodes.REFUSED_STREAM if lawful else ErrorCodes.PROTOCOL_ERROR
        return code, f"push of {method!r} {scheme!r}://{authority!r}{path!r} not allowed"

    def push_allowed(
        self,
        scheme: bytes,
        method: bytes,
        authority: bytes,
        path: bytes,
        certificate_names: frozenset[str] | None,
    ) -> bool:
        """
        Decide whether to accept a pushed response. Override to change the policy; the
        connection is unaffected by a refusal.

        It is called in whichever thread is reading the connection, with the connection's
        lock held: it must decide from its arguments alone, without calling the connection
        (that would deadlock), and not raise (an exception ends the connection).

        The default accepts only what a client may treat as the server's own answer
        (RFC 9113 8.4): a safe method (``GET`` or ``HEAD``), the connection's scheme, and an
        authority this server is authoritative for: the connection's own host and port,
        or, over TLS, another name the server's certificate covers, on the same port. A push
        it refuses is reset with ``PROTOCOL_ERROR``, as the RFC requires; a push that meets
        those rules but that an override refuses is reset with ``REFUSED_STREAM``.

        :param scheme: the promised request's ``:scheme``.
        :param method: its ``:method``.
        :param authority: its ``:authority``.
        :param path: its ``:path``.
        :param certificate_names: the DNS names and IP addresses in the server's certificate
            (``None`` without TLS).
        :returns: whether to accept the push.
        """
        # The engine has checked that the promised request is complete (a non-empty :path).
        return self._push_is_lawful(scheme, method, authority, certificate_names)

    def _push_is_lawful(
        self, scheme: bytes, method: bytes, authority: bytes, names: frozenset[str] | None
    ) -> bool:
        """Whether RFC 9113 8.4 lets a client accept this push (see :meth:`push_allowed`);
        ``names`` are those the server's certificate covers."""
        if method not in (b"GET", b"HEAD"):
            return False
        if scheme.lower() != self._scheme:
            return False
        try:
            host, port = to_host_port_tuple(authority.decode("ascii"), 443 if self.secure else 80)
        except (UnicodeDecodeError, InvalidRequest):
            return False
        if port != self.port:
            return False
        host = host.lower()
        if host == self.host.lower():
            return True
        return names is not None and tls.certificate_covers(names, host)

    def ping(self, opaque_data: bytes) -> None:
        """
        Send a PING frame. The server's acknowledgement is processed whenever the connection
        is next read; its payload is then in :attr:`last_ping_ack`.

        :param opaque_data: exactly 8 bytes, echoed back by the server.
        :raises InvalidRequest: if ``opaque_data`` is not 8 bytes.
        """
        data = to_header_bytes(opaque_data, "PING payload")
        if len(data) != 8:
            raise InvalidRequest("the PING payload must be exactly 8 bytes")
        self.connect()
        with self._lock:
            transport = self._transport
            if transport is None:
                raise ConnectionClosed("the connection is closed")
            transport.ping_locked(data)
