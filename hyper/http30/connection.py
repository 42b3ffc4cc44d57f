"""
:class:`HTTP30Connection`: HTTP/3 to one server over QUIC, with the http.client-style API of
:class:`~hyper.HTTP20Connection`.

The connection builds requests, hands out request ids and responses, and decides what only it
can: which request to send again, and when to open a new QUIC connection. The UDP socket and
the protocol state it runs on form a :class:`~hyper.http30.transport.Transport` (see there for
the threading model), whose :class:`~hyper.http30.engine.QuicEngine` drives the QUIC stack. A
connection opens a new transport when it has none, after :meth:`~HTTP30Connection.close`,
when the server sent GOAWAY (the old transport drains meanwhile), or when the old one ended by
itself (QUIC's idle timeout passed, the server closed it). Requests the server never processed
are sent again on the new transport when that is safe.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from typing import Any

from ..common.condition import connect_time_left, take_connect_lock
from ..common.exceptions import (
    ConnectionClosed,
    HyperError,
    InvalidRequest,
    ReadTimeout,
    SocketError,
)
from ..common.header_list import HeaderList
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
from ..common.trace import ConnectRecorder, Timings, TraceHook, Tracer, tracer_for
from ..common.util import (
    CONNECTION_TIMEOUT,
    HTTPVersion,
    RequestTimeoutArg,
    TimeoutArg,
    WaitArg,
    authority_for,
    check_ssl_context,
    parse_port,
    request_timeouts,
    resolve_host_port,
    split_timeout,
    total_timeout,
)
from .config import DEFAULT_IDLE_TIMEOUT, QuicSettings, quic_configuration
from .engine import QuicEngine
from .errors import H3ErrorCode
from .exceptions import ClosedByCaller, ProtocolError
from .exceptions import ConnectionError as HTTP3ConnectionError
from .response import HTTP30Response
from .stream import RequestStream
from .transport import Transport
from .udp import open_datagram_socket

__all__ = ["HTTP30Connection"]

log = logging.getLogger("hyper.http30")


#: A request the caller holds an id for (:class:`~hyper.common.multiplexed.PendingRequest`).
_Request = PendingRequest[Transport, RequestStream]


def _connection_died(error: HyperError | None) -> bool:
    """Whether a stream's error means its QUIC connection ended under it (see
    :func:`~hyper.common.multiplexed.retry_verdict`): closed, timed out while idle, reset,
    or ended by the server with an error that is not a protocol violation."""
    return (isinstance(error, SocketError) and not isinstance(error, ReadTimeout)) or (
        isinstance(error, HTTP3ConnectionError) and not isinstance(error, ProtocolError)
    )


class HTTP30Connection(MultiplexedConnection[HTTP30Response]):
    """
    A connection to one server speaking HTTP/3 over QUIC (UDP, TLS 1.3, ALPN ``h3``).

    It has the API of :class:`~hyper.HTTP20Connection`: many requests may be in flight at
    once; :meth:`request` returns an id, and :meth:`get_response` takes it to fetch the
    matching response, in any order. Every method may be called from any thread; threads
    share the connection safely, and hyper starts no thread of its own.

    Needs the ``http3`` extra (``pip install 'hyper[http3]'``, which installs ``qh3``).

    :param host: the server's host name or IP address, optionally with a port, as for
        :class:`~hyper.HTTP20Connection`.
    :param port: the UDP port, when ``host`` names none. Defaults to 443.
    :param ssl_context: an :class:`ssl.SSLContext` whose settings QUIC's TLS follows where it
        can: ``verify_mode`` (``ssl.CERT_NONE`` turns verification off), ``check_hostname``,
        the CA certificates it loaded from a file or from memory, and ``keylog_filename``.
        ``None``: verify against certifi's bundle (or ``cert_path``).
    :param timeout: seconds to wait for the network: one number, or a ``(connect, read)``
        pair; the connect timeout bounds the QUIC handshake. ``None`` waits without limit
        (a server that never answers then fails when QUIC's idle timeout passes).
    :param cert: a client certificate: the path of a PEM file holding the certificate and
        its private key, or a ``(certificate_path, key_path)`` pair.
    :param cert_path: a PEM file (or a directory) of CA certificates to trust instead of
        certifi's bundle or those of ``ssl_context``.
    :param cert_password: the password of an encrypted client key.
    :param idle_timeout: seconds without any packet after which QUIC ends the connection
        (the server's, if shorter, wins). The next request then opens a new one.
    :param max_data: the connection's QUIC receive window in bytes (``None``: the QUIC
        stack's default, 15 MiB).
    :param max_stream_data: each stream's QUIC receive window in bytes (``None``: the QUIC
        stack's default, 6 MiB).
    :param origin_port: the port of the origin this connection serves as its HTTP/3
        alternative (RFC 7838: ``Alt-Svc: h3=":port"`` from a server on another port).
        ``:authority`` then names this port, and ``port`` is only where QUIC goes. ``None``:
        ``port`` is the origin's.
    :param trace: a trace hook: a callable given each
        :class:`~hyper.common.trace.TraceEvent` of this connection as it happens, or a
        :class:`~hyper.common.trace.Tracer` to share; ``None`` for none (see
        :doc:`timings`). It is called in whichever thread drives the event: the thread
        reading the connection may report another stream's reset, or a GOAWAY.
    :raises InvalidRequest: for an unusable host, port, timeout or argument, or a
        ``trace`` that is not callable.
    :raises HTTP3Unavailable: (an :class:`ImportError`) when ``qh3`` is not installed; it
        is raised when this class is first looked up.
    """

    #: The protocol this connection speaks.
    version = HTTPVersion.http30

    def __init__(
        self,
        host: str,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: TimeoutArg = None,
        cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        *,
        cert_path: str | os.PathLike[str] | None = None,
        cert_password: str | bytes | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_data: int | None = None,
        max_stream_data: int | None = None,
        origin_port: int | None = None,
        trace: TraceHook | Tracer | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise InvalidRequest(
                f"HTTP30Connection got unexpected keyword arguments: {', '.join(sorted(kwargs))}"
            )
        self.host, self.port = resolve_host_port(host, port, 443)
        check_ssl_context(ssl_context)
        for name, value in (("max_data", max_data), ("max_stream_data", max_stream_data)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidRequest(f"{name} must be an int or None, not {value!r}")
            if value is not None and value < 1024:
                raise InvalidRequest(f"{name} must be at least 1024 bytes, not {value}")
        if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)):
            raise InvalidRequest(f"idle_timeout must be a number of seconds, not {idle_timeout!r}")
        if not idle_timeout > 0:
            raise InvalidRequest(f"idle_timeout must be more than 0 seconds, not {idle_timeout}")
        #: Whether the connection uses TLS: always, over QUIC.
        self.secure = True
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._connect_timeout, self._read_timeout = split_timeout(timeout)
        self._total_timeout = total_timeout(timeout)
        self._settings = QuicSettings(
            server_name=self.host,
            ssl_context=ssl_context,
            cert=cert,
            cert_path=cert_path,
            cert_password=cert_password,
            idle_timeout=float(idle_timeout),
            max_data=max_data,
            max_stream_data=max_stream_data,
        )
        authority_port = self.port if origin_port is None else parse_port(origin_port)
        self._origin = authority_for(self.host, self.port, 0)
        tracer = tracer_for(trace)

        #: The requests this connection holds ids for, oldest first, and the lock that
        #: guards them and the transports (the methods of MultiplexedConnection use them too).
        self._requests: RequestTable[_Request] = RequestTable()
        self._lock, self._cond = self._requests.lock, self._requests.cond
        self._awaiting = self._requests.awaiting
        self._connect_lock = threading.Lock()
        #: The transport new requests go on (None before the first connect).
        self._transport: Transport | None = None
        #: The transport whose handshake is under way, for close() to end it.
        self._handshaking: Transport | None = None
        #: Older transports finishing the requests they carry.
        self._draining: list[Transport] = []
        self._next_handle = 1
        super().__init__(
            self._requests,
            StreamOpener(
                open=self._open_request,
                send_headers=self._send_headers,
                reserve_locked=self._new_handle_locked,
                release_locked=lambda request: None,  # a request holds nothing else
                resend=self._resend,
                connection_died=_connection_died,
                closed_by_caller=ClosedByCaller,
                cancel_code=H3ErrorCode.H3_REQUEST_CANCELLED,
            ),
            HTTP30Response,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            total_timeout=self._total_timeout,
            scheme=b"https",
            authority=authority_for(self.host, authority_port, 443).encode("ascii"),
            secure=True,
            tracer=tracer,
        )
        #: How many QUIC connections this object has opened.
        self.connections_opened = 0

    def __repr__(self) -> str:
        state = "open" if self._usable() else "closed"
        return f"<HTTP30Connection {self._origin} {state}>"

    # -- state ------------------------------------------------------------------------------------

    def _usable(self) -> bool:
        transport = self._transport
        return transport is not None and transport.usable()

    @property
    def open_streams(self) -> int:
        """How many requests are under way on this connection now (on the current QUIC
        connection and on any still draining)."""
        with self._lock:
            transports = [self._transport, *self._draining]
            return sum(len(t.engine.streams) for t in transports if t is not None)

    @property
    def expired(self) -> bool:
        """
        Whether the current QUIC connection has ended by itself: its idle timeout passed, or
        the server closed it or sent GOAWAY. Asking processes whatever has arrived and runs
        QUIC's timers that are due, without waiting. The next request opens a new QUIC
        connection; ``False`` also before the first one and after :meth:`close`.
        """
        with self._lock:
            transport = self._transport
            if transport is None or transport.retired:
                return False
            transport.poll_locked()
            return not transport.usable()

    # -- connecting -------------------------------------------------------------------------------

    def connect(self, *, timeout: RequestTimeoutArg = CONNECTION_TIMEOUT) -> None:
        """
        Open the QUIC connection and complete its handshake, if it is not open already;
        :meth:`request` calls it as needed, so calling it is optional. Safe to call from
        several threads: one connects, the others wait for it, each within its own connect
        timeout.

        :param timeout: bounds this handshake instead of the connection's connect timeout,
            in the forms the constructor takes (of a pair, the connect part counts).

        :raises ConnectTimeout: if the handshake does not complete within the connect timeout
            (for example a server, or a firewall, that does not answer over UDP).
        :raises CertificateError: if the server's certificate can't be verified.
        :raises TLSError: if the TLS handshake fails otherwise.
        :raises ~hyper.http30.exceptions.HTTP30Error: if the server does not speak HTTP/3 or QUIC
            as hyper does.
        :raises SocketError: for any other network failure (a name that does not resolve).
        """
        connect_timeout = request_timeouts(timeout, self._connect_timeout, self._read_timeout)[0]
        self._connect(connect_timeout, claim=False)

    def _connect(
        self, connect_timeout: WaitArg, *, claim: bool = True
    ) -> tuple[Transport, Timings | None]:
        """
        :meth:`connect`, within ``connect_timeout`` (a request's, or what is left of its
        total deadline); returns the transport new requests go on, and the phases of opening
        it if this call opened it and ``claim`` (``None`` if it was open, or another thread
        opened it). A transport opened without ``claim`` keeps its phases for the first
        request sent on it.
        """
        transport = self._transport
        if transport is not None and transport.usable():
            return transport, None
        # Another thread may be handshaking: this request waits for that by its own limits.
        limit = take_connect_lock(self._connect_lock, connect_timeout)
        try:
            with self._lock:
                transport = self._transport
                if transport is not None:
                    transport.poll_locked()
                    if transport.usable():
                        return transport, None
                self._set_aside_locked()
            recorder = ConnectRecorder(self.tracer)
            configuration, key_log = quic_configuration(self._settings)
            try:
                sock = open_datagram_socket(
                    self.host, self.port, connect_time_left(limit), recorder
                )
            except BaseException:
                if key_log is not None:
                    key_log.close()
                raise
            engine = QuicEngine(configuration, sock.address, self._origin, key_log, self.tracer)
            transport = Transport(sock, engine, self._cond, self._read_timeout)
            with self._lock:
                self._handshaking = transport
            try:
                transport.handshake(connect_time_left(limit), recorder)
            finally:
                with self._lock:
                    self._handshaking = None
            with self._lock:
                if not transport.alive():
                    # close() ran as the handshake completed: the caller gave up on it.
                    transport.raise_if_dead_locked()
                if not claim:
                    transport.phases = recorder.phases
                self._transport = transport
                self.connections_opened += 1
                self._cond.notify_all()
            return transport, recorder.phases if claim else None
        finally:
            self._connect_lock.release()

    def _set_aside_locked(self) -> None:
        """Retire the current transport: let it drain if it still carries requests, else
        close it."""
        old, self._transport = self._transport, None
        self._draining = retire_locked(
            old,
            self._draining,
            lambda idle: idle.close_locked(ConnectionClosed("the connection was closed")),
        )

    # -- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """
        Close the connection: send CONNECTION_CLOSE (``H3_NO_ERROR``) and close the socket.
        Responses whose body was fully received stay readable; reading the others raises
        :class:`~hyper.common.exceptions.ConnectionClosed`. A handshake under way in another
        thread ends at once, its :meth:`connect` raising
        :class:`~hyper.http30.exceptions.ClosedByCaller`. A later :meth:`request` opens a new
        connection.
        """
        with self._lock:
            error = ClosedByCaller("the connection was closed by close()")
            for transport in [*self._draining, self._transport, self._handshaking]:
                if transport is not None:
                    transport.close_locked(error)
            self._draining.clear()
            self._transport = None
            self._requests.fail_locked(error)

    # -- opening streams (the StreamOpener) -------------------------------------------------------

    def _new_handle_locked(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    def _open_request(
        self,
        headers: HeaderList,
        end_stream: bool,
        connect_timeout: WaitArg,
        read_timeout: WaitArg,
        timings: Timings,
    ) -> _Request:
        """A new request, its headers sent (see :meth:`_send_headers`); ``timings`` is where
        its phases go."""
        with self._lock:
            handle = self._new_handle_locked()
            request = _Request(handle, headers, connect_timeout, read_timeout, timings)
        self._send_headers(request, end_stream)
        return request

    def _send_headers(self, request: _Request, end_stream: bool) -> None:
        """Send a request's headers on a new stream of the current QUIC connection (opening
        one if needed), waiting for room under the server's stream limit within the
        request's read timeout; record its phases in its timings."""
        lost: list[Transport] = []
        # The transport this request opened, and the phases of opening it.
        opened: tuple[Transport, Timings] | None = None
        while True:
            transport, phases = self._connect(request.connect_timeout)
            if phases is not None:
                opened = transport, phases
            with self._lock:
                if not ready_locked(transport, lost):
                    continue
                if transport.engine.can_open_stream():
                    stream = transport.open_stream_locked(request.headers, end_stream)
                    timings = stream.timings = request.timings
                    if opened is not None and opened[0] is transport:
                        timings.adopt_connection(opened[1])
                    elif transport.phases is not None:
                        # Opened by connect(): the first request on it takes its phases.
                        timings.adopt_connection(transport.phases)
                        transport.phases = None
                    elif timings.connect_start is None:
                        # Unless an earlier attempt of this request opened a connection,
                        # whose phases it keeps, it runs on one opened before it.
                        timings.reused = True
                    request.transport, request.stream, request.sent = transport, stream, True
                    mark_headers_sent(request, end_stream, self.tracer)
                    self._awaiting[request.handle] = request
                    self._requests.latest = request.handle
                    return
            # The server allows no more streams now: read until one ends (or it goes away).
            mark_queued(request.timings, self.tracer, None)
            transport.read_until(self._room_or_gone(transport), request.read_timeout)

    @staticmethod
    def _room_or_gone(transport: Transport) -> Callable[[], bool]:
        """A predicate: ``transport`` can take another stream, or can take none at all."""
        return lambda: not transport.usable() or transport.engine.can_open_stream()

    # -- responses --------------------------------------------------------------------------------

    def get_response(self, stream_id: int | None = None) -> HTTP30Response:
        """
        Wait for and return the response to a request, processing what arrives for other
        requests meanwhile.

        If the server says it never processed the request (a GOAWAY below it, or
        ``H3_REQUEST_REJECTED``), or the connection ended before any of the response came and
        the method is idempotent, the request is sent again once on a new connection when
        its body was in memory, and the same id keeps working (see :ref:`which requests hyper sends
        again <retries>`);
        otherwise the error says whether it is safe to retry.

        :param stream_id: the id :meth:`request` returned. ``None`` takes the oldest request
            whose response has not been fetched yet.
        :returns: the response.
        :raises InvalidRequest: if no such request is waiting for its response.
        :raises ~hyper.http30.exceptions.StreamResetError: if the server reset the stream before
            answering.
        :raises ConnectionClosed: if the connection ended before the response came.
        :raises ReadTimeout: if the response does not come within the request's read
            timeout. The request stays pending: call ``get_response()`` again to wait more,
            or :meth:`cancel` to give it up.
        """
        return super().get_response(stream_id)

    def _resend(self, request: _Request) -> None:
        """Send an unprocessed request again (on a usable transport); the caller's id keeps
        naming it."""
        assert request.replay is not None
        headers, data = request.replay
        request.headers = headers
        request.body_sent = 0  # the body goes out again from its start
        request.timings.first_byte = None  # of the failed attempt, if any of a head came
        self._send_headers(request, not data)
        if data:
            # The body fits its Content-Length: it did the first time.
            send_body(request, iter((data,)), True, lambda: None, self.tracer)

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the current QUIC connection to end by itself
        (its idle timeout, or the server's close), processing what arrives; returns whether
        it ended. For tests and diagnostics.

        :raises InvalidRequest: if ``timeout`` is not a number of seconds.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise InvalidRequest(f"timeout must be a number of seconds, not {timeout!r}")
        transport = self._transport
        if transport is None:
            return True
        try:
            transport.read_until(lambda: not transport.alive(), timeout)
        except ReadTimeout:
            return False
        except HyperError:
            pass  # it ended: that is what was waited for
        return True
