"""
:class:`HTTP11Connection`: one HTTP/1.1 connection to one server, kept alive across requests.

One request is in flight at a time: :meth:`~HTTP11Connection.request` sends it,
:meth:`~HTTP11Connection.get_response` reads the response head, and reading the body to its
end makes the connection ready for the next request. Threads that share a connection take
turns: a request waits until the previous response has been read or closed.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

from .. import tls
from ..common.bufsocket import DEFAULT_BUFFER_SIZE, BufferedSocket
from ..common.condition import (
    ChangeSignal,
    acquire_within,
    connect_time_left,
    take_connect_lock,
)
from ..common.decoder import SUPPORTED_ENCODINGS
from ..common.exceptions import (
    ConnectionClosed,
    HTTP2PriorKnowledgeOnly,
    HyperError,
    IncompleteResponseHead,
    InvalidRequest,
    LineTooLongError,
    ReadTimeout,
    SocketError,
    TLSError,
)
from ..common.eyeballs import DEFAULT_DELAY, ConnectPolicy, Resolver
from ..common.request import (
    IDEMPOTENT_METHODS,
    METHODS_EXPECTING_BODY,
    BodyArg,
    HeadersArg,
    RequestBody,
    check_method,
    check_scheme_is_secured,
    iter_header_pairs,
    split_absolute_url,
)
from ..common.sockets import open_connection
from ..common.socks import parse_proxy
from ..common.timeout import WaitLimit, connect_limit, split_wait
from ..common.trace import (
    REQUEST_BODY_SENT,
    REQUEST_HEADERS_SENT,
    RESPONSE_HEADERS,
    ConnectRecorder,
    Timings,
    TraceHook,
    Tracer,
    tracer_for,
)
from ..common.util import (
    CONNECTION_TIMEOUT,
    ClosingContextManager,
    DefaultTimeout,
    HTTPVersion,
    RequestTimeoutArg,
    TimeoutArg,
    WaitArg,
    authority_for,
    check_ssl_context,
    request_timeouts,
    resolve_host_port,
    split_timeout,
    total_timeout,
)
from .parser import DEFAULT_MAX_LINE, Parser
from .response import ConnectionLease, HTTP11Response, connection_persists

#: Bodies up to this size are sent in the same write as the request head.
SMALL_BODY = 64 * 1024

#: A request kept to be sent again: head, body, whether chunked, the caller's
#: Content-Length, and its own (connect, read) timeouts if it has them.
_Replay = tuple[bytes, RequestBody, bool, int | None, tuple[WaitArg, WaitArg] | None]

_ACCEPT_ENCODING = ", ".join(SUPPORTED_ENCODINGS).encode("ascii")


class HTTP11Connection(ClosingContextManager):
    """
    A keep-alive HTTP/1.1 connection to one server, over TLS or in plaintext, directly or
    through an HTTP or SOCKS proxy.

    :param host: the server's host name or IP address, optionally with a port:
        ``"example.com"``, ``"example.com:8080"``, ``"[::1]:8443"``. A non-ASCII name is
        encoded as IDNA 2008 A-labels (:func:`~hyper.common.hosts.encode_host`).
    :param port: the port, when ``host`` names none. Defaults to 80, or 443 when ``secure``.
    :param secure: whether to use TLS. Defaults to ``True`` for port 443 and ``False``
        otherwise.
    :param ssl_context: the :class:`ssl.SSLContext` for TLS. By default a context from
        :func:`hyper.tls.init_context` that offers only ``http/1.1`` in ALPN.
    :param proxy_host: a proxy: an HTTP proxy as ``host[:port]`` or ``http://host[:port]``
        (plain ``http`` requests go to it in absolute form, TLS connections through a
        ``CONNECT`` tunnel), or a SOCKS proxy as a URL,
        ``socks5h://[user:password@]host[:port]`` (also ``socks5``, ``socks4a``, ``socks4``
        with an optional user id), through which every connection
        runs as if direct. ``socks5h`` and ``socks4a`` let the proxy resolve ``host``.
    :param proxy_port: the proxy's port when ``proxy_host`` names none. Defaults to 8080
        (1080 for SOCKS).
    :param proxy_headers: headers for an HTTP proxy: sent on the ``CONNECT`` request, or with
        every request when proxying plain ``http``. A SOCKS proxy takes none.
    :param timeout: seconds to wait for the network: one number, or a ``(connect, read)``
        pair. ``None`` waits forever.
    :param happy_eyeballs_delay: seconds each connection attempt has to itself before the
        next address of the server (or HTTP proxy) is tried beside it (Happy Eyeballs,
        :doc:`connecting`). At least 0.01.
    :param address_family: ``socket.AF_INET`` or ``socket.AF_INET6`` to connect over that
        family only; ``None`` (the default) for both.
    :param resolver: a function ``(host, port, family)`` returning the addresses to try as
        ``(family, sockaddr)`` pairs (see :data:`hyper.common.eyeballs.Resolver`); ``None``
        for the system's :func:`socket.getaddrinfo`.
    :param trace: a trace hook: a callable given each
        :class:`~hyper.common.trace.TraceEvent` of this connection as it happens (see
        :doc:`timings`), or a :class:`~hyper.common.trace.Tracer` to share; ``None`` for
        none.
    :raises InvalidRequest: for an unusable host, port, timeout or connect setting, a
        ``trace`` that is not callable, or an unknown keyword.
    """

    #: The protocol this connection speaks.
    version = HTTPVersion.http11

    #: The size of the receive buffer, in bytes (64 KiB by default). It also bounds the size
    #: of a response head. Changing it affects the next socket this connection opens.
    network_buffer_size: int = DEFAULT_BUFFER_SIZE

    def __init__(
        self,
        host: str,
        port: int | None = None,
        secure: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
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
                f"HTTP11Connection got unexpected keyword arguments: {', '.join(sorted(kwargs))}"
            )
        default_port = 443 if secure else 80
        self.host, self.port = resolve_host_port(host, port, default_port)
        #: Whether the connection uses TLS.
        self.secure = bool(secure) if secure is not None else self.port == 443
        self.ssl_context = ssl_context
        #: The HTTP proxy's host and port, and the SOCKS proxy (a
        #: :class:`~hyper.common.socks.SocksProxy`); ``None`` for the kind not in use.
        self.proxy_host, self.proxy_port, self.socks_proxy = parse_proxy(
            proxy_host, proxy_port, proxy_headers
        )
        self.proxy_headers = proxy_headers
        self._proxy_lines = [
            name + b": " + value for name, value in iter_header_pairs(proxy_headers)
        ]
        self.timeout = timeout
        check_ssl_context(ssl_context)
        self._connect_timeout, self._read_timeout = split_timeout(timeout)
        #: How addresses are resolved and raced (:class:`~hyper.common.eyeballs.ConnectPolicy`).
        self.connect_policy = ConnectPolicy.build(happy_eyeballs_delay, address_family, resolver)
        self._total_timeout = total_timeout(timeout)
        #: Where this connection's trace events go (:class:`~hyper.common.trace.Tracer`).
        self.tracer = tracer_for(trace)
        # The phases of the socket opened last, until a request claims them.
        self._fresh_phases: Timings | None = None
        # The timings of the request sent and awaiting get_response().
        self._timings: Timings | None = None
        #: The object that parses response heads; see :class:`hyper.http11.parser.Parser`.
        self.parser = Parser()
        self._scheme = "https" if self.secure else "http"
        self._authority = authority_for(self.host, self.port, 443 if self.secure else 80)
        self._host_header = self._authority.encode("ascii")
        #: Plain http through a proxy: requests go to the proxy in absolute form.
        self._absolute_form = self.proxy_host is not None and not self.secure

        self._sock: BufferedSocket | None = None
        # Re-entrant: a response may report its end while get_response() holds the lock.
        self._lock = threading.RLock()
        #: Counts the exchanges that ended (and other changes of ``_owner``), for the
        #: threads waiting for one without the lock.
        self._idle = ChangeSignal()
        #: The thread whose exchange (request, then response until read) is under way.
        self._owner: int | None = None
        #: A 101 response switched the socket to another protocol.
        self._switched = False
        #: The request sent and awaiting get_response(): its method, or None.
        self._pending_method: bytes | None = None
        # Whether the request in progress said Connection: close.
        self._last_request = False
        # The socket kept after a complete exchange, while it waits for the next request:
        # the server may close it any moment, which a request sent on it may meet.
        self._reused_socket: BufferedSocket | None = None
        # The request in progress (head, body, framing), kept while sending it again on a
        # new connection is allowed: idempotent, in memory, on a reused connection.
        self._replay: _Replay | None = None
        # The socket an HTTP/1.0 response came on, if it is kept alive.
        self._http10_socket: BufferedSocket | None = None
        #: The lease of the response whose body is still being read.
        self._lease: ConnectionLease | None = None
        #: The (connect, read) timeouts of the exchange under way, when its request has its
        #: own (None: the connection's apply); with a total deadline, both are its
        #: :class:`~hyper.common.timeout.Deadline`. The socket carries the read one (and the
        #: deadline) until the exchange ends.
        self._exchange_timeouts: tuple[WaitArg, WaitArg] | None = None

    def __repr__(self) -> str:
        state = "open" if self._sock is not None else "closed"
        return f"<HTTP11Connection {self.host}:{self.port} {state}>"

    # -- connecting -------------------------------------------------------------------------------

    def connect(self, *, timeout: RequestTimeoutArg = CONNECTION_TIMEOUT) -> None:
        """
        Open the connection (TCP, through the proxy if one is set, then TLS when secure).
        Does nothing if it is open; :meth:`request` calls it as needed.

        :param timeout: bounds opening the connection instead of the connection's connect
            timeout, in the forms :meth:`request` takes (of a pair, the connect part
            counts; a total deadline bounds it too). Another thread's exchange, which keeps
            the connection while it sends and while it waits for its response head, is
            waited for within it.
        :raises ConnectTimeout: if connecting takes longer than the connect timeout.
        :raises CertificateError: if the server's certificate can't be verified.
        :raises TLSError: if the TLS handshake fails, or the server insists on HTTP/2.
        :raises ProxyError: if the proxy refuses the tunnel (``CONNECT`` or SOCKS).
        :raises SocketError: for any other network failure.
        """
        if self._sock is not None:
            return
        connect_timeout = request_timeouts(timeout, self._connect_timeout, self._read_timeout)[0]
        limit = take_connect_lock(self._lock, connect_timeout)
        try:
            if self._sock is None:
                self._sock = self._open_socket(connect_time_left(limit))
        finally:
            self._lock.release()

    def _open_socket(
        self, connect: float | DefaultTimeout | None = CONNECTION_TIMEOUT
    ) -> BufferedSocket:
        # A request with its own timeouts that has to connect does so within them.
        connect_timeout, read_timeout = self._exchange_timeouts or (
            self._connect_timeout,
            self._read_timeout,
        )
        wait, total = split_wait(read_timeout)
        if connect is CONNECTION_TIMEOUT:
            connect = connect_limit(connect_timeout)
        recorder = ConnectRecorder(self.tracer)
        sock, proto = open_connection(
            self.host,
            self.port,
            secure=self.secure,
            ssl_context=self.ssl_context if self.ssl_context is not None else _http11_context(),
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
            proxy_headers=self.proxy_headers,
            # Plain http goes to the proxy in absolute form; TLS needs a tunnel.
            tunnel=self.secure,
            socks_proxy=self.socks_proxy,
            connect_timeout=connect,
            read_timeout=wait,
            buffer_size=self.network_buffer_size,
            connect_policy=self.connect_policy,
            recorder=recorder,
        )
        self._fresh_phases = recorder.phases
        sock.set_deadline(total)
        if proto == tls.H2_PROTOCOL:
            sock.close()
            raise TLSError(
                f"{self.host}:{self.port} chose HTTP/2 in ALPN, which an HTTP11Connection "
                "cannot speak; use hyper.HTTPConnection, or an ssl_context offering only "
                "http/1.1"
            )
        return sock

    @property
    def busy(self) -> bool:
        """Whether an exchange is under way: a request was sent and its response's body has
        not been read to its end (or closed) yet. A new request waits until it is over."""
        return self._owner is not None

    def adopt_socket(self, sock: BufferedSocket, phases: Timings | None = None) -> None:
        """
        Speak HTTP/1.1 on a socket that is already connected (and, over TLS, negotiated), as
        :class:`hyper.HTTPConnection` does after its own handshake.

        :param sock: the socket; the connection owns it from now on.
        :param phases: the phases of opening it
            (:attr:`hyper.common.trace.ConnectRecorder.phases`), for the next request's
            timings.
        """
        sock.settimeout(self._read_timeout)
        with self._lock:
            self._sock = sock
            self._fresh_phases = phases

    def detach_socket(self) -> BufferedSocket:
        """
        Give up the socket, with whatever it has buffered: after ``101 Switching Protocols``
        it belongs to the protocol switched to. The next request opens a new connection.

        :returns: the socket.
        :raises ConnectionClosed: if the connection has no socket.
        """
        with self._lock:
            sock, self._sock = self._sock, None
            self._lease = None
            self._pending_method = None
            self._timings = None
            self._owner = None
            self._switched = False
            self._exchange_timeouts = None  # the socket's new owner sets its timeout
            self._idle.notify_all()
        if sock is None:
            raise ConnectionClosed("the connection is closed")
        sock.set_deadline(None)  # the exchange that set it is over for this protocol
        return sock

    # -- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """
        Close the connection. A response whose body was not read to the end can no longer be
        read. The next :meth:`request` opens a new connection.
        """
        with self._lock:
            self._close_socket_locked()

    def _close_socket_locked(self) -> None:
        sock, self._sock = self._sock, None
        lease, self._lease = self._lease, None
        self._pending_method = None
        self._owner = None
        self._fresh_phases = None
        self._switched = False
        self._exchange_timeouts = None
        if lease is not None:
            lease.revoke()
        if sock is not None:
            sock.close()
        self._idle.notify_all()

    # -- requests ---------------------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        body: BodyArg = None,
        headers: HeadersArg | None = None,
        *,
        timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
        timings: Timings | None = None,
    ) -> None:
        """
        Send a request. Call :meth:`get_response` to read the answer; read its body (or close
        it) before the next request on this connection.

        :param method: the request method, e.g. ``"GET"``.
        :param url: the path (``"/search?q=1"``), or an absolute ``http(s)`` URL whose
            authority then becomes the ``Host``.
        :param body: ``bytes``, ``str`` (sent as UTF-8), a file-like object opened in binary
            mode, or an iterable of ``bytes``. A body of known length is sent with
            Content-Length; one of unknown length with ``Transfer-Encoding: chunked``, unless
            the caller set Content-Length, which must then be exact.
        :param headers: a mapping or an iterable of ``(name, value)`` pairs (str or bytes).
            ``Host`` and ``Accept-Encoding`` are added when missing.
        :param timeout: this request's own timeout, in the forms the constructor takes (one
            number, a ``(connect, read)`` pair, ``None`` for no limit), instead of the
            connection's. The read timeout is the socket's from sending the request until its
            response's body has been read (or the response closed), the wait for another
            thread's exchange included; the connection's applies again after that. The
            connect timeout applies when the request has to open the connection. See
            :ref:`request-timeouts`.
        :param timings: the :class:`~hyper.common.trace.Timings` to record this request's
            phases in (its response's :attr:`~HTTP11Response.timings`), when the caller began
            them earlier; a new one, started now, by default.
        :returns: ``None`` (HTTP/1.1 has no stream ids).
        :raises InvalidRequest: for an invalid method, URL, header, body or timeout, or when a
            request is sent before the previous one's response was fetched; nothing is sent
            then.
        """
        # Reused unless it turns out to open the connection (below).
        if timings is None:
            timings = Timings(time.monotonic(), True, "HTTP/1.1")
        else:
            timings.protocol = "HTTP/1.1"
            timings.reused = True
        method_b = check_method(method)
        timeouts = (
            None
            if timeout is CONNECTION_TIMEOUT and self._total_timeout is None
            else request_timeouts(
                timeout, self._connect_timeout, self._read_timeout, self._total_timeout
            )
        )
        request_body = RequestBody(body)
        head, chunked, declared, closes = self._build_head(method_b, url, headers, request_body)
        self._claim(self._read_timeout if timeouts is None else timeouts[1])
        try:
            # From here until the exchange ends, the socket waits by the request's timeouts.
            self._exchange_timeouts = timeouts
            try:
                sock = self._ensure_socket_locked()
            except HyperError as failure:
                self._exchange_timeouts = None
                raise failure.for_request(True) from failure.__cause__  # nothing of it left hyper
            if chunked and sock is self._http10_socket:
                self._exchange_timeouts = None
                # RFC 9112 6.1: chunked only to a server known to speak HTTP/1.1.
                raise InvalidRequest(
                    "the server answered in HTTP/1.0 on this connection, which cannot read a "
                    "chunked body: give the body's length (a Content-Length, or bytes)"
                )
            if timeouts is not None:
                wait, total = split_wait(timeouts[1])
                sock.settimeout(wait)
                sock.set_deadline(total)
            if self._fresh_phases is not None:  # the socket was opened for this request
                timings.adopt_connection(self._fresh_phases)
                self._fresh_phases = None
            self._timings = timings
            self._pending_method = method_b
            # A request that says Connection: close is the connection's last (RFC 9112 9.6).
            self._last_request = closes
            self._owner = threading.get_ident()
            # On a reused connection the server may have closed it a moment ago: an idempotent
            # request with its body in memory is then sent again on a new one (see retries).
            replayable = request_body.data is not None and method_b in IDEMPOTENT_METHODS
            reused = sock is self._reused_socket
            self._replay = (
                (head, request_body, chunked, declared, timeouts)
                if replayable and reused
                else None
            )
            try:
                self._send_locked(sock, head, request_body, chunked, declared, timings)
            except InvalidRequest:
                self._close_socket_locked()
                raise
            except HyperError as failure:
                self._close_socket_locked()
                error = failure
                if self._replay is not None:
                    try:
                        self._resend_locked(method_b)
                        return
                    except HyperError as again:
                        error = again
                raise error.for_request(method_b in IDEMPOTENT_METHODS) from error.__cause__
            except BaseException:
                self._close_socket_locked()
                raise
        finally:
            self._lock.release()

    def _resend_locked(self, method: bytes) -> None:
        """Send the request kept in ``_replay`` again, once, on a new socket (lock held)."""
        replay, self._replay = self._replay, None
        assert replay is not None
        head, body, chunked, declared, timeouts = replay
        self._exchange_timeouts = timeouts  # closing the failed socket forgot them
        sock = self._ensure_socket_locked()
        self._pending_method = method
        self._owner = threading.get_ident()
        timings = self._timings
        assert timings is not None
        # The new socket's phases are this request's now.
        phases, self._fresh_phases = self._fresh_phases, None
        if phases is not None:
            timings.adopt_connection(phases)
        timings.first_byte = None  # of the failed attempt, if any of a head came
        try:
            self._send_locked(sock, head, body, chunked, declared, timings)
        except BaseException:
            self._close_socket_locked()
            raise

    def _build_head(
        self,
        method: bytes,
        url: str | bytes,
        headers: HeadersArg | None,
        body: RequestBody,
    ) -> tuple[bytes, bool, int | None, bool]:
        """Return the request head, whether to chunk the body, a caller-set length, and
        whether the caller's Connection field asks to close after this exchange."""
        scheme, authority, path = split_absolute_url(url)
        if scheme is not None:
            check_scheme_is_secured(scheme, self.secure)
        host = authority or self._host_header
        if self._absolute_form:
            target = b"http://" + host + path if path != b"*" else path
        else:
            target = path
        lines = [method + b" " + target + b" HTTP/1.1"]
        seen: set[bytes] = set()
        declared: int | None = None
        transfer: list[bytes] = []
        caller_host: bytes | None = None
        closes = False
        for name, value in iter_header_pairs(headers):
            lowered = name.lower()
            seen.add(lowered)
            if lowered == b"content-length":
                if not value.isdigit() or (declared is not None and int(value) != declared):
                    raise InvalidRequest(f"invalid Content-Length {value[:30]!r}")
                declared = int(value)
            elif lowered == b"transfer-encoding":
                transfer.extend(t.strip().lower() for t in value.split(b","))
            elif lowered == b"connection":
                closes = closes or b"close" in (t.strip().lower() for t in value.split(b","))
            elif lowered == b"host":
                if caller_host is not None:
                    raise InvalidRequest("a request has one Host header, not several")
                caller_host = name + b": " + value
                continue
            lines.append(name + b": " + value)
        # Host goes first among the fields (RFC 9110 7.2), the caller's or hyper's.
        lines.insert(1, caller_host if caller_host is not None else b"Host: " + host)
        if b"accept-encoding" not in seen:
            lines.append(b"Accept-Encoding: " + _ACCEPT_ENCODING)
        if self._absolute_form:
            lines.extend(self._proxy_lines)
        chunked = False
        if transfer:
            if declared is not None:
                raise InvalidRequest(
                    "a request cannot have both Content-Length and Transfer-Encoding"
                )
            if transfer[-1] != b"chunked":
                raise InvalidRequest("Transfer-Encoding must end with chunked")
            chunked = True
        elif declared is not None:
            if body.length is not None and body.length != declared:
                raise InvalidRequest(
                    f"Content-Length says {declared} but the body has {body.length} bytes"
                )
        elif body.length is None:
            lines.append(b"Transfer-Encoding: chunked")
            chunked = True
        elif body.length or method in METHODS_EXPECTING_BODY:
            lines.append(b"Content-Length: " + str(body.length).encode())
        lines.append(b"\r\n")
        return b"\r\n".join(lines), chunked, declared, closes

    def _claim(self, timeout: WaitArg) -> None:
        """
        Take the connection's lock once no other thread's exchange is under way (its
        response read to the end, or closed). The thread of that exchange holds the lock
        while it sends its request and while it waits for its response head, so the lock is
        taken, and the end of that exchange waited for (without the lock), each within
        ``timeout``: the request's read timeout, and its total deadline. The caller's own
        exchange is an error, since waiting for oneself would never end.

        :raises ReadTimeout: if the other exchange is not over within the read timeout.
        :raises DeadlineExceeded: if the request's total deadline passes first.
        :raises InvalidRequest: if the caller's own exchange is under way.
        """
        wait, total = split_wait(timeout)
        limit = None if wait is None and total is None else WaitLimit(wait, None, deadline=total)
        lock = self._lock
        while True:
            acquire_within(lock, limit, _OTHER_EXCHANGE)
            owner = self._owner
            if owner is None:
                return
            if owner == threading.get_ident():
                fetched = self._pending_method is None
                lock.release()
                if not fetched:
                    raise InvalidRequest(
                        "the previous request's response has not been fetched: call "
                        "get_response() before sending another request on this HTTP/1.1 "
                        "connection"
                    )
                raise InvalidRequest(
                    "the previous response's body has not been read: read it to the end or "
                    "close it before sending another request on this HTTP/1.1 connection"
                )
            mark = self._idle.count
            lock.release()
            self._idle.wait_past(mark, limit, _OTHER_EXCHANGE)

    def _ensure_socket_locked(self) -> BufferedSocket:
        sock = self._sock
        if sock is not None and self._switched:
            # A 101 handed the socket to another protocol that nobody took over.
            sock.close()
            sock = self._sock = None
            self._switched = False
        if sock is not None and sock.peer_closed():
            # Between responses the server should send nothing: readable means it closed
            # the connection (idle timeout) or sent junk. Either way, start afresh.
            sock.close()
            sock = self._sock = None
        if sock is None:
            sock = self._sock = self._open_socket()
        return sock

    def _send_locked(
        self,
        sock: BufferedSocket,
        head: bytes,
        body: RequestBody,
        chunked: bool,
        declared: int | None,
        timings: Timings,
    ) -> None:
        """
        Send the request. A server may answer before the body has all gone out (RFC 9112
        section 9.5): the body then stops early when :meth:`_stops_body` says so, and a send
        that fails (the server closed, or stopped reading) after an answer arrived leaves
        that answer to :meth:`get_response` instead of raising. Either way the server did
        not get the whole request, so the connection ends with this exchange.
        """
        data = body.data
        try:
            if data is not None and not chunked and len(data) <= SMALL_BODY:
                sock.sendall(head + bytes(data) if data else head)
                timings.headers_sent = timings.request_sent = time.monotonic()
                if self.tracer.hook is not None:
                    self._trace_sent(head, len(data) if data else 0, timings)
                return
            sock.sendall(head)
            timings.headers_sent = time.monotonic()
            sent = self._send_body(sock, body, chunked, declared)
        except SocketError:
            # An answer may be waiting behind the failure (curl and urllib3 return it too).
            sock.receive_available()
            if not sock.buffered:
                raise
            sent = None
        if sent is None:
            self._last_request = True
            return
        timings.request_sent = time.monotonic()
        if self.tracer.hook is not None:
            self._trace_sent(head, sent, timings)

    def _send_body(
        self, sock: BufferedSocket, body: RequestBody, chunked: bool, declared: int | None
    ) -> int | None:
        """Send the body after the head, while the server lets it: the body bytes sent
        once all went out, ``None`` if the server stopped it."""

        def watch() -> bool:
            return self._stops_body(sock)

        sent = 0
        for piece in body.chunks():
            if chunked:
                piece = b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n"
            else:
                sent += len(piece)
                if declared is not None and sent > declared:
                    raise InvalidRequest(f"the body is longer than its Content-Length {declared}")
            if not sock.sendall(piece, watch):
                return None
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        elif declared is not None and sent != declared and body.data is None:
            raise InvalidRequest(
                f"the body had {sent} bytes, not the {declared} its Content-Length announced"
            )
        return sent

    def _stops_body(self, sock: BufferedSocket) -> bool:
        """
        The server sent something while the request body goes out: whether the body stops
        there. Interim (1xx) responses are taken off the buffer, as :meth:`get_response`
        would skip them, and the body goes on. A final response stops it when it says the
        connection closes after it: the server then does not want the rest (RFC 9112
        section 9.5). One that keeps the connection open, a refusal included, lets the body
        go on to its end, as RFC 9110 section 7.5 asks: by not closing, the server said it
        reads on (RFC 9110 section 10.1.1). So does a ``101``: the request goes out whole
        before the protocol changes. The end of the stream and bytes that do not parse stop
        the body (:meth:`get_response` reports them), and so does a response that fills the
        receive buffer: a server that waits for its answer to be read before it reads on
        would otherwise wait for hyper forever.
        """
        while not sock.at_eof:
            try:
                head = self.parser.parse_response(sock.peek())
            except HyperError:
                return True
            if head is not None and 100 <= head.status < 200 and head.status != 101:
                sock.advance(head.consumed)
                continue
            if sock.buffered >= sock.buffer_size:
                return True
            if head is None:
                return False  # the rest of the head is still to come
            connection = [value for name, value in head.headers if name.lower() == b"connection"]
            return not connection_persists(connection, head.minor_version)
        return True

    def _trace_sent(self, head: bytes, size: int, timings: Timings) -> None:
        """Report a request sent: its head, then its end."""
        method, target = head[: head.index(b"\r\n")].split(b" ")[:2]
        info = {"method": method.decode("latin-1"), "target": target.decode("latin-1")}
        self.tracer.emit(REQUEST_HEADERS_SENT, None, info, timings.headers_sent)
        self.tracer.emit(REQUEST_BODY_SENT, None, {"bytes": size}, timings.request_sent)

    # -- responses --------------------------------------------------------------------------------

    def get_response(self) -> HTTP11Response:
        """
        Read the response head of the request sent last. Interim (1xx) responses other than
        ``101 Switching Protocols`` are skipped.

        :returns: the response; its body is read with :meth:`HTTP11Response.read`.
        :raises InvalidRequest: if no request is waiting for its response.
        :raises InvalidResponse: (or a subclass) if the response head is malformed.
        :raises ConnectionClosed: if the server closed the connection without answering.
        :raises ReadTimeout: if the response does not come within the read timeout.
        """
        with self._lock:
            method = self._pending_method
            sock = self._sock
            timings = self._timings
            if method is None or sock is None or timings is None:
                raise InvalidRequest("there is no request waiting for a response")
            try:
                head = self._read_final_head_locked(sock, timings)
            except HyperError as failure:
                # Nothing of a response came before the reused connection failed: the request
                # kept for that goes out again on a new one, once.
                self._close_socket_locked()
                if self._replay is None or not _connection_died(failure):
                    raise failure.for_request(method in IDEMPOTENT_METHODS) from failure.__cause__
                try:
                    self._resend_locked(method)
                    sock = self._sock
                    assert sock is not None
                    head = self._read_final_head_locked(sock, timings)
                except HyperError as again:
                    self._close_socket_locked()
                    raise again.for_request(True) from again.__cause__
            self._replay = None
            try:
                # The exchange is this thread's until the body is done (the lease returned).
                # Positional arguments here and below: a class called with keywords builds a
                # dict for them, once per response.
                lease = self._lease = ConnectionLease(
                    sock,
                    head.minor_version,
                    getattr(self.parser, "max_line_length", DEFAULT_MAX_LINE),
                    self._lease_returned,
                    self.close,
                )
                self._owner = threading.get_ident()
                if head.minor_version == 0:
                    self._http10_socket = sock
                # Refused framing (an ambiguous body) must close the socket too: reading on
                # from it is exactly what a smuggled response counts on.
                response = HTTP11Response(
                    head.status,
                    head.reason,
                    head.headers,
                    sock,
                    lease,
                    method,
                    timings,
                    self.tracer,
                )
            except BaseException:
                self._close_socket_locked()
                raise
            self._pending_method = None
            self._timings = None
            if head.status == 101:
                # The socket now belongs to whichever protocol was switched to.
                lease.revoke()
                self._lease = None
                self._switched = True
                self._owner = None
                self._exchange_timeouts = None
                self._idle.notify_all()
            return response

    def _read_final_head_locked(self, sock: BufferedSocket, timings: Timings) -> Any:
        """The head of the final response, interim (1xx) ones skipped; ``_replay`` is
        dropped as soon as any head arrived (the server answered)."""
        while True:
            head = self._read_head_locked(sock, timings)
            self._replay = None
            if self.tracer.hook is not None:
                self.tracer.emit(RESPONSE_HEADERS, None, {"status": head.status})
            if head.status == 101 or not 100 <= head.status < 200:
                return head

    def _read_head_locked(self, sock: BufferedSocket, timings: Timings) -> Any:
        parser = self.parser
        if not sock.buffered:
            sock.fill()  # nothing to parse yet: wait for the server first
        if timings.first_byte is None:
            # A head that fails to arrive fails the request: the value is then never seen
            # (a request sent again clears it).
            timings.first_byte = time.monotonic()
        while True:
            buffered = sock.peek()
            if len(buffered) >= 9 and _looks_like_http2_settings(bytes(buffered[:9])):
                raise HTTP2PriorKnowledgeOnly(
                    f"{self.host}:{self.port} answered with HTTP/2 frames: it only speaks "
                    "HTTP/2 with prior knowledge"
                )
            head = parser.parse_response(buffered)
            if head is not None:
                sock.advance(head.consumed)
                return head
            count = sock.fill()
            if count == 0:
                if sock.buffered:
                    raise IncompleteResponseHead(
                        "the server closed the connection mid-response head"
                    )
                raise ConnectionClosed("the server closed the connection without a response")
            if count < 0:
                raise LineTooLongError(
                    f"response head larger than the {sock.buffer_size} byte buffer"
                )

    def _lease_returned(self, lease: ConnectionLease, reusable: bool) -> None:
        """A response's body is done (read to its end, or abandoned)."""
        with self._lock:
            if self._lease is lease:
                self._lease = None
                self._owner = None
                sock = self._sock
                if self._exchange_timeouts is not None and sock is not None:
                    sock.settimeout(self._read_timeout)  # the request's own ends with it
                    sock.set_deadline(None)
                self._exchange_timeouts = None
                if not reusable or self._last_request:
                    self._close_socket_locked()
                else:
                    self._reused_socket = self._sock
            self._idle.notify_all()


#: What a request waits for while another thread's exchange holds the connection.
_OTHER_EXCHANGE = "another thread's exchange on this HTTP/1.1 connection to finish"


def _connection_died(error: HyperError) -> bool:
    """Whether ``error`` is the connection ending under a request (closed, reset, a TLS
    failure) before any of the response arrived, rather than a time-out or a bad answer."""
    return isinstance(error, SocketError) and not isinstance(error, ReadTimeout)


def _looks_like_http2_settings(header: bytes) -> bool:
    """Whether 9 bytes are the header of an HTTP/2 SETTINGS frame (a server's preface)."""
    length = int.from_bytes(header[:3], "big")
    return header[3] == 0x4 and length % 6 == 0 and header[5:9] == b"\0\0\0\0"


_http11_only_context: ssl.SSLContext | None = None


def _http11_context() -> ssl.SSLContext:
    """hyper's default TLS settings, offering only http/1.1 in ALPN."""
    global _http11_only_context
    if _http11_only_context is None:
        context = tls.init_context()
        context.set_alpn_protocols(["http/1.1"])
        _http11_only_context = context
    return _http11_only_context
