"""
:class:`HTTP20Connection`: one HTTP/2 connection to one server, with the http.client-style API.

The connection builds and sends requests and hands out responses; the socket and h2 state it
runs on form a :class:`~hyper.http20.session.Session` (see there for the threading model). A
connection opens a new session when it has none, after :meth:`~HTTP20Connection.close`, when
the server sent GOAWAY (the old session drains meanwhile), or when stream ids run out. Requests
the server never processed because of a GOAWAY are sent again on the new session when that is
safe.

Errors from h2, hpack and the socket are translated in the session (and in
:mod:`hyper.common.bufsocket`) into hyper's exceptions, with the original chained.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack.exceptions

from .. import tls
from ..common.bufsocket import HTTP2_BUFFER_SIZE, BufferedSocket
from ..common.condition import Condition
from ..common.decoder import SUPPORTED_ENCODINGS
from ..common.exceptions import (
    ConnectionClosed,
    HyperError,
    InvalidRequest,
    ReadTimeout,
)
from ..common.request import (
    BodyArg,
    HeadersArg,
    RequestBody,
    check_method,
    iter_header_pairs,
    split_absolute_url,
    to_header_bytes,
)
from ..common.sockets import open_connection
from ..common.util import (  # TimeoutArg and split_timeout are re-exported from here
    ClosingContextManager,
    HTTPVersion,
    TimeoutArg,
    authority_for,
    resolve_host_port,
    resolve_proxy,
    split_timeout,
    to_host_port_tuple,
)
from .exceptions import (
    HPACKEncodingError,
    HTTP20Error,
    StreamResetError,
)
from .legacy_stream import HeaderList, Stream
from .response import HTTP20Push, HTTP20Response
from .session import (
    MAX_BUFFERED_PUSHES,
    ClosedByCaller,
    Session,
    _H2Connection,
    _H2Logger,
    _log_frames,
)
from .window import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    BaseFlowControlManager,
    FlowControlManager,
)

log = logging.getLogger(__name__)

#: Headers that describe a single HTTP/1.1 hop; HTTP/2 forbids them (RFC 9113 8.2.2).
CONNECTION_SPECIFIC_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

#: The largest frame payload hyper accepts (SETTINGS_MAX_FRAME_SIZE); bigger frames mean
#: fewer events per megabyte on bulk downloads.
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024

#: The largest response header list hyper accepts (SETTINGS_MAX_HEADER_LIST_SIZE).
DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024

#: Sent unless the caller sets Accept-Encoding: every coding hyper decodes transparently.
ACCEPT_ENCODING = (b"accept-encoding", ", ".join(SUPPORTED_ENCODINGS).encode("ascii"))

#: The most pushed responses held for :meth:`HTTP20Connection.get_pushes` before further
#: pushes are refused (``REFUSED_STREAM``).
MAX_BUFFERED_PUSHES = MAX_BUFFERED_PUSHES

#: Methods whose requests are sent again by themselves after a connection died unanswered.
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})

#: The highest stream identifier HTTP/2 allows.
MAX_STREAM_ID = 2**31 - 1


def _peer_names(session: Session) -> frozenset[str] | None:
    """The names the server's certificate covers (None without TLS), cached per session."""
    if session.peer_names is None and session.sock is not None and session.sock.is_tls:
        sock = session.sock.socket
        session.peer_names = tls.certificate_names(sock.getpeercert())  # type: ignore[attr-defined]
    return session.peer_names


class HTTP20Connection(ClosingContextManager):
    """
    A connection to one server, speaking HTTP/2 over TLS (ALPN ``h2``) or in plaintext with
    prior knowledge (``h2c``).

    It looks like :class:`http.client.HTTPConnection`, with one difference that matters:
    many requests may be in flight at once. :meth:`request` returns the new stream's id, and
    :meth:`get_response` takes it to fetch the matching response, in any order.

    Every method may be called from any thread; threads share the connection safely.

    :param host: the server's host name or IP address, optionally with a port:
        ``"example.com"``, ``"example.com:8443"``, ``"127.0.0.1"``, ``"[::1]:8443"``.
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
    :param proxy_host: an HTTP proxy to tunnel through (``CONNECT``), optionally with a port.
    :param proxy_port: the proxy's port when ``proxy_host`` names none. Defaults to 8080.
    :param force_proto: assume this protocol was negotiated (``"h2"``) even if ALPN said
        otherwise; for servers that speak HTTP/2 without announcing it.
    :param proxy_headers: headers for the proxy's ``CONNECT`` request (for example
        ``Proxy-Authorization``).
    :param timeout: seconds to wait for the network: one number, or a ``(connect, read)``
        pair. ``None`` waits forever.
    :raises InvalidRequest: for an unusable host, port or timeout, or an unknown keyword.
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
        self.proxy_host, self.proxy_port = resolve_proxy(proxy_host, proxy_port)
        self.proxy_headers = proxy_headers
        self.timeout = timeout
        self._connect_timeout, self._read_timeout = split_timeout(timeout)

        scheme = b"https" if self.secure else b"http"
        self._scheme = scheme
        self._authority = authority_for(self.host, self.port, 443 if self.secure else 80).encode(
            "idna"
        )

        self._lock = threading.Lock()
        self._cond = Condition(self._lock)
        self._connect_lock = threading.Lock()

        #: The session new streams go on (None before the first connect).
        self._session: Session | None = None
        #: Older sessions finishing the streams they carry after a GOAWAY.
        self._draining: list[Session] = []
        #: Streams whose response has not been fetched with get_response, oldest first.
        self._awaiting: dict[int, Stream] = {}
        #: Streams created by putrequest() whose headers are not sent yet: id -> thread id.
        self._reserved: dict[int, int] = {}
        #: Pushes promised and not yet collected by get_pushes(): parent id -> pushes.
        self._promises: dict[int, deque[Stream]] = {}
        self._next_stream_id = 1
        self._recent_stream_id: int | None = None
        self._debug = False
        #: h2 state prepared for an ``Upgrade: h2c`` request (hyper.HTTPConnection).
        self._upgrade_h2: _H2Connection | None = None
        #: The payload of the last PING acknowledged by the server.
        self.last_ping_ack: bytes | None = None

    def __repr__(self) -> str:
        state = "open" if self._usable() else "closed"
        return f"<HTTP20Connection {self.host}:{self.port} {state}>"

    # -- connecting -------------------------------------------------------------------------------

    def _alive(self) -> bool:
        """The current session is open and has not failed."""
        session = self._session
        return session is not None and session.alive()

    def _usable(self) -> bool:
        """New streams may be opened on the current session."""
        session = self._session
        return session is not None and session.usable()

    # Views of the current session, for introspection and tests.

    @property
    def _sock(self) -> BufferedSocket | None:
        return self._session.sock if self._session is not None else None

    @property
    def _h2(self) -> _H2Connection | None:
        return self._session.h2 if self._session is not None else None

    @property
    def _streams(self) -> dict[int, Stream]:
        return self._session.streams if self._session is not None else {}

    @property
    def _goaway(self) -> h2.events.ConnectionTerminated | None:
        return self._session.goaway if self._session is not None else None

    @property
    def _error(self) -> HyperError | None:
        return self._session.error if self._session is not None else None

    def _read_until(self, ready: Any) -> None:
        session = self._session
        if session is None:
            raise ConnectionClosed("the connection is not open")
        session.read_until(ready)

    def connect(self) -> None:
        """
        Open the connection: TCP (through the proxy's tunnel if one is set), TLS with ALPN when
        secure, then the HTTP/2 preface and settings. Does nothing if the connection is already
        open; :meth:`request` calls it as needed, so calling it is optional.

        Safe to call from several threads: one connects, the others wait for it.

        :raises ConnectTimeout: if connecting takes longer than the connect timeout.
        :raises CertificateError: if the server's certificate can't be verified.
        :raises TLSError: if the TLS handshake fails.
        :raises ProxyError: if the proxy refuses the tunnel.
        :raises HTTP20Error: if the server does not offer HTTP/2 over TLS.
        :raises SocketError: for any other network failure.
        """
        if self._usable():
            return
        with self._connect_lock:
            if self._usable():
                return
            with self._lock:
                self._set_aside_locked()
                if not self._reserved and not self._awaiting:
                    # Nothing from the old session can be confused with new streams; else
                    # ids keep counting up on the new one (HTTP/2 allows any start).
                    self._next_stream_id = 1
            sock = self._open_socket()
            try:
                conn, manager = self._start_h2(sock)
            except BaseException:
                sock.close()
                raise
            self._install(sock, conn, manager)

    def _set_aside_locked(self) -> None:
        """Retire the current session: let it drain if it still owes responses, else close."""
        old = self._session
        if old is None:
            return
        self._session = None
        old.retired = True
        if old.alive() and old.unfinished_streams():
            self._draining.append(old)  # closed by its last stream (Session.drained_locked)
        elif old.sock is not None:
            old.close_locked(0)

    def _install(
        self, sock: BufferedSocket, conn: _H2Connection, manager: BaseFlowControlManager
    ) -> Session:
        with self._lock:
            session = self._session = Session(self, sock, conn, manager)
            self._cond.notify_all()
            return session

    def _session_retired_locked(self, session: Session, error: HyperError) -> None:
        """A session closed: fail the requests still waiting on it, forget its pushes."""
        for stream in self._awaiting.values():
            if stream.session is session and stream.headers_sent and not stream.finished:
                stream.error = error
        for parent, pushes in list(self._promises.items()):
            kept = [p for p in pushes if p.session is not session]
            if kept:
                pushes.clear()
                pushes.extend(kept)
            else:
                del self._promises[parent]
        if session in self._draining:
            self._draining.remove(session)

    def _adopt_socket(self, sock: BufferedSocket) -> None:
        """Speak HTTP/2 on a socket already connected and negotiated (hyper.HTTPConnection)."""
        sock.grow(self.network_buffer_size)
        sock.settimeout(self._read_timeout)
        with self._connect_lock:
            self._install(sock, *self._start_h2(sock))

    def _prepare_upgrade(self) -> bytes:
        """
        Start an ``Upgrade: h2c``: return the ``HTTP2-Settings`` value for the HTTP/1.1
        request that asks for it. :meth:`_complete_upgrade` follows once the server agreed.
        """
        conn = self._make_h2()
        settings = conn.initiate_upgrade_connection()
        assert settings is not None
        self._upgrade_h2 = conn
        return settings

    def _complete_upgrade(self, sock: BufferedSocket) -> int:
        """
        Take over ``sock`` after ``101 Switching Protocols``: the request that asked for the
        upgrade becomes stream 1, whose response arrives over HTTP/2.

        :returns: the stream id of that request (1).
        """
        conn = self._upgrade_h2
        if conn is None:
            raise HTTP20Error("no h2c upgrade was prepared")
        self._upgrade_h2 = None
        sock.grow(self.network_buffer_size)
        sock.settimeout(self._read_timeout)
        with self._connect_lock:
            manager = self._configure_h2(conn)
            self._send_preface(sock, conn.data_to_send())
            session = self._install(sock, conn, manager)
            with self._lock:
                stream = Stream(1, self, self._new_stream_manager())
                stream.session = session
                stream.headers_sent = True
                stream.local_closed = True
                session.streams[1] = stream
                self._awaiting[1] = stream
                self._recent_stream_id = 1
                self._next_stream_id = max(self._next_stream_id, 3)
        return 1

    def _open_socket(self) -> BufferedSocket:
        # Through a proxy, HTTP/2 always needs a tunnel: there is no absolute-form for it.
        sock, proto = open_connection(
            self.host,
            self.port,
            secure=self.secure,
            ssl_context=self.ssl_context,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
            proxy_headers=self.proxy_headers,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            buffer_size=self.network_buffer_size,
            force_proto=self.force_proto,
        )
        if self.secure and proto != tls.H2_PROTOCOL:
            sock.close()
            raise HTTP20Error(
                f"{self.host}:{self.port} did not negotiate HTTP/2 (ALPN chose {proto!r}); "
                "use hyper.HTTPConnection to fall back to HTTP/1.1, or pass force_proto='h2' "
                "if the server speaks HTTP/2 without announcing it"
            )
        return sock

    def _start_h2(self, sock: BufferedSocket) -> tuple[_H2Connection, BaseFlowControlManager]:
        """Begin HTTP/2 on ``sock``: preface, settings, window; return the h2 state."""
        conn = self._make_h2()
        conn.initiate_connection()
        manager = self._configure_h2(conn)
        self._send_preface(sock, conn.data_to_send())
        return conn, manager

    def _send_preface(self, sock: BufferedSocket, data: bytes) -> None:
        if self._debug:
            _log_frames(data)
        sock.sendall(data)

    def _make_h2(self) -> _H2Connection:
        self._debug = log.isEnabledFor(logging.DEBUG)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            # hyper checks outgoing headers itself (iter_header_pairs) before they get here.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
            # hyper checks received header blocks itself, in one pass, and treats a malformed
            # one as the stream error RFC 9113 makes it (hyper.http20.validation).
            validate_inbound_headers=False,
            logger=_H2Logger() if self._debug else None,  # type: ignore[arg-type]
        )
        return _H2Connection(config=config)

    def _configure_h2(self, conn: _H2Connection) -> BaseFlowControlManager:
        """hyper's settings and connection window, after the preface is queued."""
        conn.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: int(self.enable_push),
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: DEFAULT_STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: DEFAULT_MAX_FRAME_SIZE,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: DEFAULT_MAX_HEADER_LIST_SIZE,
            }
        )
        # h2 raises its frame size limit only when the server ACKs these settings, and applies
        # it only from the next receive_data() call: a large frame right behind the ACK would
        # be refused. Accepting what we advertise from the start is safe (we chose the size).
        conn.max_inbound_frame_size = DEFAULT_MAX_FRAME_SIZE
        manager = self.window_manager_cls(DEFAULT_CONNECTION_WINDOW)
        # The connection window starts at 65,535 bytes; open it to the manager's size at once.
        conn.increment_flow_control_window(DEFAULT_CONNECTION_WINDOW - 65535)
        return manager

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
            sessions = [*self._draining, self._session]
            for session in sessions:
                if session is not None:
                    session.close_locked(error_code or 0, by_caller=True)
            self._draining.clear()
            self._promises.clear()
            self._cond.notify_all()

    # -- sending requests -------------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        body: BodyArg = None,
        headers: HeadersArg | None = None,
    ) -> int:
        """
        Send a request and return its stream id without waiting for the response.

        :param method: the request method, e.g. ``"GET"``.
        :param url: the path (``"/search?q=1"``), or an absolute ``http(s)`` URL whose
            authority then replaces the connection's in ``:authority``.
        :param body: ``bytes``, ``str`` (sent as UTF-8), a file-like object opened in binary
            mode, or an iterable of ``bytes``. Content-Length is set when the length is known
            and the caller did not set it. The body is sent in frames as large as the server
            and flow control allow.
        :param headers: a mapping or an iterable of ``(name, value)`` pairs (str or bytes).
            Headers that only mean something to HTTP/1.1 (``Connection``, ``Keep-Alive``,
            ``Transfer-Encoding``, ``Upgrade``, ``Proxy-Connection`` and those ``Connection``
            names) are left out; ``Host`` becomes ``:authority``.
        :returns: the stream id, to pass to :meth:`get_response`.
        :raises InvalidRequest: for an invalid method, URL, header or body, before anything
            is sent.
        :raises ReadTimeout: if the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves no room
            for a new stream within the read timeout (``request()`` waits for one, reading
            other streams' data meanwhile).
        :raises StreamResetError: if the server reset the stream while the body was sent.
        """
        request_body = RequestBody(body)
        header_list = self._build_headers(method, url, headers, request_body.length)
        end_stream = request_body.is_empty
        stream = self._open_stream(header_list, end_stream, reserved_id=None)
        if request_body.data is not None:
            # In memory: it can be sent again if a GOAWAY says it was never processed.
            stream.replay = (header_list, request_body.data)
        if not end_stream:
            try:
                self._send_body(stream, request_body.chunks(), final=True)
            except HyperError:
                if not self._resend_unprocessed_upload(stream):
                    self._abandon_stream(stream)
                    raise
            except BaseException:
                # The caller never gets this stream's id: do not leave it behind.
                self._abandon_stream(stream)
                raise
        return stream.stream_id

    def _resend_unprocessed_upload(self, stream: Stream) -> bool:
        """
        The server refused ``stream`` while its body was going out (a GOAWAY below it, or
        REFUSED_STREAM), so it never processed it: send it again, as :meth:`get_response`
        does for a refusal that comes later, if the body is in memory. Return whether it went
        out again; the caller's handle stays ``stream.stream_id``.
        """
        handle = stream.stream_id
        current = stream
        for _ in range(3):
            if not current.unprocessed or current.replay is None:
                return False
            try:
                self._resend(handle, current)
            except HyperError:
                # Refused again, or no new connection: look at the latest attempt.
                with self._lock:
                    current = self._awaiting.get(handle, current)
                continue
            return True
        return False

    def putrequest(self, method: str | bytes, selector: str | bytes, **kwargs: Any) -> int:
        """
        Start building a request piece by piece (the http.client way). Nothing is sent until
        :meth:`endheaders`.

        :param method: the request method.
        :param selector: the path, or an absolute URL.
        :param kwargs: http.client's ``skip_host`` and ``skip_accept_encoding`` are accepted
            (HTTP/2 has no Host header; Accept-Encoding is only added by :meth:`request`);
            anything else raises :class:`~hyper.common.exceptions.InvalidRequest`.
        :returns: the stream id of the new request; pass it to :meth:`putheader`,
            :meth:`endheaders` and :meth:`send` (they default to the latest one).
        """
        unknown = set(kwargs) - {"skip_host", "skip_accept_encoding"}
        if unknown:
            raise InvalidRequest(f"putrequest() got unexpected arguments: {sorted(unknown)}")
        header_list = self._build_headers(method, selector, None, None)
        del header_list[4:]  # no default Accept-Encoding: the caller builds the headers
        with self._lock:
            stream_id = self._allocate_stream_id_locked()
            self._reserved[stream_id] = threading.get_ident()
            stream = Stream(stream_id, self, self._new_stream_manager())
            stream.request_headers = header_list
            self._awaiting[stream_id] = stream
            self._recent_stream_id = stream_id
        return stream_id

    def putheader(
        self,
        header: str | bytes,
        argument: str | bytes,
        stream_id: int | None = None,
        replace: bool = False,
    ) -> None:
        """
        Add a header to a request started with :meth:`putrequest`. Nothing is sent yet.

        Connection-specific headers are dropped when the headers are sent, as for
        :meth:`request`.

        :param header: the header name.
        :param argument: the header value.
        :param stream_id: the request's stream id; the latest request when ``None``.
        :param replace: replace any values already set for this header instead of adding one.
        :raises InvalidRequest: for an invalid name or value, or a request already sent.
        """
        stream = self._pending_request(stream_id)
        pairs = list(iter_header_pairs([(header, argument)]))
        name = pairs[0][0].lower()
        with self._lock:
            if replace:
                stream.request_headers[:] = [
                    pair for pair in stream.request_headers if pair[0] != name
                ]
            stream.request_headers.extend((name, value) for _, value in pairs)

    def endheaders(
        self,
        message_body: BodyArg = None,
        final: bool = False,
        stream_id: int | None = None,
    ) -> None:
        """
        Send the headers of a request started with :meth:`putrequest`, and optionally a body.

        :param message_body: data to send after the headers (same types as
            :meth:`request`'s ``body``).
        :param final: whether the request ends here. Leave it ``False`` to send more with
            :meth:`send`.
        :param stream_id: the request's stream id; the latest request when ``None``.
        """
        stream = self._pending_request(stream_id)
        try:
            body = RequestBody(message_body)
            # The body's length is the request's length only if no send() calls follow.
            length = body.length if final else None
            headers = self._finish_header_list(stream.request_headers, length)
            end_now = final and body.is_empty
            self._open_stream(headers, end_now, reserved_id=stream.stream_id, stream=stream)
            if not body.is_empty:
                self._send_body(stream, body.chunks(), final=final)
        except BaseException:
            # A half-built request would block every later one: give its stream up.
            self._abandon_stream(stream)
            raise

    def send(self, data: BodyArg, final: bool = False, stream_id: int | None = None) -> None:
        """
        Send (more) body data on a request whose headers were sent with :meth:`endheaders`.
        Data goes out as flow control allows, waiting for the server to open its window.

        :param data: the data (same types as :meth:`request`'s ``body``).
        :param final: whether this is the end of the request body.
        :param stream_id: the request's stream id; the latest request when ``None``.
        :raises StreamResetError: if the server reset the stream.
        """
        stream = self._stream_for(stream_id)
        if not stream.headers_sent:
            raise InvalidRequest(f"call endheaders() for stream {stream.stream_id} first")
        self._send_body(stream, RequestBody(data).chunks(), final=final)

    def _pending_request(self, stream_id: int | None) -> Stream:
        stream = self._stream_for(stream_id)
        if stream.headers_sent:
            raise InvalidRequest(f"the headers of stream {stream.stream_id} were already sent")
        return stream

    def _stream_for(self, stream_id: int | None) -> Stream:
        if stream_id is None:
            stream_id = self._recent_stream_id
        stream = None
        if stream_id is not None:
            stream = self._awaiting.get(stream_id) or self._streams.get(stream_id)
        if stream is None:
            raise InvalidRequest(f"no open request with stream id {stream_id}")
        return stream

    def _build_headers(
        self,
        method: str | bytes,
        url: str | bytes,
        headers: HeadersArg | None,
        body_length: int | None,
    ) -> HeaderList:
        scheme, authority, path = split_absolute_url(url)
        pseudo = [
            (b":method", check_method(method)),
            (b":scheme", scheme or self._scheme),
            (b":authority", authority or self._authority),
            (b":path", path),
        ]
        if headers is None:
            pseudo.append(ACCEPT_ENCODING)
            if body_length:
                pseudo.append((b"content-length", str(body_length).encode()))
            return pseudo
        pseudo.extend((name.lower(), value) for name, value in iter_header_pairs(headers))
        if not any(name == b"accept-encoding" for name, _ in pseudo):
            pseudo.append(ACCEPT_ENCODING)
        return self._finish_header_list(pseudo, body_length)

    @staticmethod
    def _finish_header_list(headers: HeaderList, body_length: int | None) -> HeaderList:
        """Apply HTTP/2's header rules to a request header list (pseudo-headers first)."""
        dropped = set(CONNECTION_SPECIFIC_HEADERS)
        for name, value in headers:
            if name == b"connection":
                tokens = (token.strip().lower() for token in value.split(b","))
                dropped.update(t for t in tokens if t and not t.startswith(b":"))
        result: HeaderList = []
        host: bytes | None = None
        has_length = False
        for name, value in headers:
            if name in dropped:
                continue
            if name == b"host":
                host = host or value
                continue
            if name == b"te" and value.lower() != b"trailers":
                continue  # the only TE value HTTP/2 allows
            if name == b"content-length":
                has_length = True
            result.append((name, value))
        if host is not None:
            result = [(b":authority", host) if n == b":authority" else (n, v) for n, v in result]
        if body_length and not has_length:
            result.append((b"content-length", str(body_length).encode()))
        return result

    def _allocate_stream_id_locked(self) -> int:
        """
        The next stream id. When HTTP/2's ids run out, the current session is set aside (it
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
        reserved_id: int | None,
        stream: Stream | None = None,
    ) -> Stream:
        """Send a HEADERS frame, on a new stream or on one reserved by putrequest()."""
        me = threading.get_ident()
        deadline = None if self._read_timeout is None else time.monotonic() + self._read_timeout
        lost: list[Session] = []
        while True:
            # Opens a session, or a new one after close(), a GOAWAY or a server's close.
            self.connect()
            with self._lock:
                session = self._session
                if session is None:
                    continue
                if not session.streams:
                    # Idle: a GOAWAY or the server's close of an idle connection may be
                    # waiting unread. Notice it now rather than send into a closed socket.
                    session.poll_locked()
                if not session.usable():
                    if session not in lost:
                        lost.append(session)
                    if len(lost) > 2:
                        # The server closes fresh connections at once: no point going on.
                        session.raise_if_dead_locked()
                        raise ConnectionClosed("the server keeps closing new connections")
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
                    self._cond.wait(remaining)
                    continue
                if self._next_stream_id > MAX_STREAM_ID and reserved_id is None:
                    # Out of stream ids: new streams go on a new session, ids from 1 again.
                    self._set_aside_locked()
                    self._next_stream_id = 1
                    continue
                if self._can_open_stream_locked(session):
                    return self._send_headers_locked(
                        session, headers, end_stream, reserved_id, stream
                    )
            # The server allows no more streams now: read until one ends (or it goes away).
            session.read_until(self._room_or_gone(session))

    def _room_or_gone(self, session: Session) -> Callable[[], bool]:
        """A predicate: ``session`` can take another stream, or can take none at all."""
        return lambda: not session.usable() or self._can_open_stream_locked(session)

    def _can_open_stream_locked(self, session: Session) -> bool:
        """Whether the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves room for a stream."""
        conn = session.h2
        if conn is None:
            return True  # the caller finds out why
        if not session.settings_received:
            # The server's limit is unknown until its SETTINGS arrive (they come with its
            # preface, right away): one stream at a time until then, so a burst of requests
            # on a fresh connection cannot overrun a small limit.
            return not session.streams and not self._reserved
        limit = conn.remote_settings.max_concurrent_streams
        if len(session.streams) + len(self._reserved) < limit:
            return True
        # hyper's own count includes streams whose response is complete but unread; ask h2
        # for the exact number (its cheap upper bound could be too high here).
        return conn.exact_open_outbound_streams() + len(self._reserved) < limit

    def _send_headers_locked(
        self,
        session: Session,
        headers: HeaderList,
        end_stream: bool,
        reserved_id: int | None,
        stream: Stream | None,
    ) -> Stream:
        conn = session.h2
        assert conn is not None
        if reserved_id is None:
            stream_id = self._allocate_stream_id_locked()
            stream = Stream(stream_id, self, self._new_stream_manager())
            self._recent_stream_id = stream_id
        else:
            assert stream is not None
            stream_id = reserved_id
        try:
            conn.send_headers(stream_id, headers, end_stream=end_stream)
        except hpack.exceptions.HPACKError as exc:
            raise HPACKEncodingError(f"cannot encode request headers: {exc}") from exc
        except h2.exceptions.H2Error as exc:
            raise HTTP20Error(f"cannot send request headers: {exc}") from exc
        finally:
            self._cond.notify_all()
        self._reserved.pop(stream_id, None)
        self._awaiting[stream_id] = stream
        stream.session = session
        stream.headers_sent = True
        stream.local_closed = end_stream
        session.streams[stream_id] = stream
        session.flush_locked()
        return stream

    def _abandon_stream(self, stream: Stream) -> None:
        """A request failed on its way out: release its id, reset it if it was sent."""
        with self._lock:
            self._reserved.pop(stream.stream_id, None)
            session = stream.session
            if session is not None:
                if stream.headers_sent and not stream.finished and session.alive():
                    session.reset_locked(stream, h2.errors.ErrorCodes.CANCEL)
                session.streams.pop(stream.stream_id, None)
            self._awaiting.pop(stream.stream_id, None)
            self._cond.notify_all()

    def _send_body(
        self, stream: Stream, chunks: Iterator[bytes | memoryview], final: bool
    ) -> None:
        """Send body pieces, marking the last one END_STREAM when ``final``."""
        previous: bytes | memoryview | None = None
        for chunk in chunks:
            if previous is not None:
                self._send_data(stream, previous, end_stream=False)
            previous = chunk
        if previous is not None:
            self._send_data(stream, previous, end_stream=final)
        elif final:
            self._send_data(stream, b"", end_stream=True)

    def _send_data(self, stream: Stream, data: bytes | memoryview, end_stream: bool) -> None:
        """Send one piece of body data as flow control allows, in frames as large as allowed."""
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        total = len(view)
        offset = 0
        stream_id = stream.stream_id
        session = stream.session
        assert session is not None

        def writable() -> bool:
            return stream.finished or session.send_window(stream_id) > 0 or not session.alive()

        while True:
            with self._lock:
                session.raise_if_dead_locked()
                if stream.remote_closed or stream.reset_code == h2.errors.ErrorCodes.NO_ERROR:
                    # The server answered without waiting for the rest of the body (RFC 9113
                    # 8.1): stop sending, and end our side so the stream is closed for both.
                    if not stream.local_closed:
                        stream.local_closed = True
                        session.reset_locked(stream, h2.errors.ErrorCodes.NO_ERROR)
                    return
                stream.raise_if_failed()
                conn = session.h2
                assert conn is not None
                if stream.local_closed:
                    raise InvalidRequest(f"the request on stream {stream_id} was already ended")
                window = session.send_window(stream_id)
                max_frame = conn.max_outbound_frame_size
                try:
                    while offset < total and window > 0:
                        size = min(window, max_frame, total - offset)
                        last = end_stream and offset + size == total
                        piece = view[offset : offset + size]
                        # Frames in the middle of a body skip h2's frame objects; the last
                        # one (END_STREAM changes the stream's state) goes through h2.
                        if last or not session.queue_body_locked(stream_id, piece):
                            conn.send_data(stream_id, piece, end_stream=last)
                        offset += size
                        window -= size
                    if offset == total and end_stream and total == 0:
                        conn.end_stream(stream_id)
                except h2.exceptions.H2Error as exc:
                    session.flush_locked()  # what was queued before the refusal is valid
                    raise HTTP20Error(f"cannot send data on stream {stream_id}: {exc}") from exc
                if offset == total:
                    stream.local_closed = end_stream
                    session.flush_locked()
                    return
                session.flush_locked()
            session.read_until(writable)

    def _new_stream_manager(self, document_size: int | None = None) -> BaseFlowControlManager:
        return self.window_manager_cls(DEFAULT_STREAM_WINDOW, document_size)

    # -- responses --------------------------------------------------------------------------------

    def get_response(self, stream_id: int | None = None) -> HTTP20Response:
        """
        Wait for and return the response to a request, reading and buffering the frames of
        other streams that arrive meanwhile.

        If a graceful GOAWAY says the server never processed the request, it is sent again
        on a new connection when its body was in memory (bytes, str or none), and the same
        ``stream_id`` keeps working; otherwise :class:`~hyper.http20.exceptions.ConnectionError`
        says it is safe to retry.

        :param stream_id: the stream id :meth:`request` returned. ``None`` takes the oldest
            request whose response has not been fetched yet.
        :returns: the response; its body is read with :meth:`HTTP20Response.read`.
        :raises InvalidRequest: if no such request is waiting for its response.
        :raises StreamResetError: if the server reset the stream before answering.
        :raises ConnectionError: if the connection failed, or the request was not processed
            and could not be sent again.
        :raises ReadTimeout: if the response does not come within the read timeout.
        """
        if stream_id is not None and (
            isinstance(stream_id, bool) or not isinstance(stream_id, int)
        ):
            raise InvalidRequest(f"stream_id must be an int, not {type(stream_id).__name__}")
        with self._lock:
            if stream_id is None:
                if not self._awaiting:
                    raise InvalidRequest("there is no request waiting for a response")
                stream_id = next(iter(self._awaiting))
            stream = self._awaiting.get(stream_id)
            if stream is None:
                raise InvalidRequest(f"no request is waiting for a response on stream {stream_id}")
            if not stream.headers_sent:
                raise InvalidRequest(f"the request on stream {stream_id} was not sent yet")
        attempts = 0
        while True:
            if not stream.has_headers():
                assert stream.session is not None
                stream.session.read_until(stream.has_headers)
            if not self._should_resend(stream, attempts):
                break
            attempts += 1
            stream = self._resend(stream_id, stream)
        with self._lock:
            self._awaiting.pop(stream_id, None)
        if stream.response_headers is None:
            stream.raise_if_failed()
            raise ConnectionClosed(f"stream {stream_id} ended without a response")
        return HTTP20Response(stream.response_headers, stream)

    @staticmethod
    def _should_resend(stream: Stream, attempts: int) -> bool:
        """
        Whether a request that got no response should go out again by itself: only with its
        body in memory, and only when that is safe: the server said it never processed it
        (GOAWAY above it, or REFUSED_STREAM), or, once, a safe method (GET, HEAD, OPTIONS)
        whose connection died before any answer, as browsers retry.
        """
        if stream.replay is None or stream.response_headers is not None or attempts >= 3:
            return False
        if isinstance(stream.error, ClosedByCaller):
            return False  # close() ends what is pending; it is not a failure to work around
        if stream.unprocessed:
            return True
        if attempts == 0 and isinstance(stream.error, ConnectionClosed):
            method = next((v for n, v in stream.replay[0] if n == b":method"), b"")
            return method in SAFE_METHODS
        return False

    def _resend(self, handle: int, stream: Stream) -> Stream:
        """
        Send an unprocessed request again (on whatever session is current) and file the new
        stream under the caller's original id.
        """
        assert stream.replay is not None
        headers, data = stream.replay
        new = self._open_stream(headers, end_stream=not data, reserved_id=None)
        new.replay = stream.replay
        with self._lock:
            self._awaiting.pop(new.stream_id, None)
            self._awaiting[handle] = new
        if data:
            try:
                self._send_body(new, iter((data,)), final=True)
            except BaseException:
                self._abandon_stream(new)
                raise
        return new

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
            stream_id = self._recent_stream_id
        if stream_id is None:
            return iter(())
        parent = self._awaiting.get(stream_id)
        if parent is None:
            for session in (self._session, *self._draining):
                if session is not None and stream_id in session.streams:
                    parent = session.streams[stream_id]
                    break
        # A request sent again after a GOAWAY keeps the caller's id but has a new stream id:
        # its pushes are filed under the latter.
        key = parent.stream_id if parent is not None else stream_id
        return self._iter_pushes(key, parent, capture_all)

    def _iter_pushes(
        self, stream_id: int, parent: Stream | None, capture_all: bool
    ) -> Iterator[HTTP20Push]:
        while True:
            with self._lock:
                queue = self._promises.get(stream_id)
                pushed = queue.popleft() if queue else None
                if queue is not None and not queue:
                    del self._promises[stream_id]
            if pushed is not None:
                yield HTTP20Push(pushed.request_headers, pushed)
                continue
            if not capture_all or parent is None or parent.finished or parent.session is None:
                return
            parent.session.read_until(
                lambda: bool(self._promises.get(stream_id)) or parent.finished
            )

    # -- what responses call (stream I/O) ---------------------------------------------------------

    def _read_body(self, stream: Stream, amt: int | None) -> bytes:
        """Return up to ``amt`` raw body bytes of ``stream`` (all of them when ``None``)."""
        session = stream.session
        assert session is not None
        if amt is None and stream.finished:
            # The whole body is already here (a small response, usually): take it at once.
            with self._lock:
                data = stream.take(None) if stream.buffered else b""
            stream.raise_if_failed()
            self._forget_if_done(stream)
            return data
        parts: list[bytes] = []
        needed = amt
        # Wait for all that is wanted at once rather than taking each socket read's few
        # frames: a large read is then one join, not one per socket read. But take what is
        # buffered once it fills half the stream's open window, so that the window manager
        # can reopen it before the server has to stop.
        manager = stream.window_manager

        def enough() -> bool:
            buffered = stream.buffered
            return (
                (needed is not None and buffered >= needed)
                or buffered >= max(manager.window_size // 2, 1)
                or stream.finished
            )

        while needed is None or needed > 0:
            if not enough():
                session.read_until(enough)
            with self._lock:
                if stream.buffered:
                    data = stream.take(needed)
                    session.consumed_locked(stream, len(data))
                    parts.append(data)
                    if needed is not None:
                        needed -= len(data)
                elif stream.finished:
                    break
        if amt is None or not parts:
            stream.raise_if_failed()
        self._forget_if_done(stream)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _read_frame(self, stream: Stream) -> bytes | None:
        """Return the next DATA frame's payload of ``stream``, or None at the end."""
        session = stream.session
        assert session is not None
        while True:
            if not stream.has_chunk():
                session.read_until(stream.has_chunk)
            with self._lock:
                if stream.chunks:
                    data = stream.take_chunk()
                    session.consumed_locked(stream, len(data))
                    return data
            stream.raise_if_failed()
            self._forget_if_done(stream)
            return None

    def _close_stream(self, stream: Stream) -> None:
        """The caller is done with ``stream``: reset it if unfinished and free its data."""
        with self._lock:
            session = stream.session
            if session is not None and not stream.finished and session.alive():
                session.reset_locked(stream, h2.errors.ErrorCodes.CANCEL)
                stream.reset_code = h2.errors.ErrorCodes.CANCEL
            # Pushes promised on it and never collected are not wanted either.
            for pushed in self._promises.pop(stream.stream_id, ()):
                pushed_session = pushed.session
                if pushed_session is not None:
                    if not pushed.finished and pushed_session.alive():
                        pushed_session.reset_locked(pushed, h2.errors.ErrorCodes.CANCEL)
                    pushed_session.streams.pop(pushed.stream_id, None)
                pushed.discard()
                if pushed_session is not None:
                    pushed_session.release_views_locked(pushed)
            stream.discard()
            self._awaiting.pop(stream.stream_id, None)
            if session is not None:
                session.streams.pop(stream.stream_id, None)
                session.release_views_locked(stream)
                if session.reader_active and session.sock is not None:
                    # The reader may be waiting for this stream's data: let it look again.
                    session.sock.wake()
                session.drained_locked()
            self._cond.notify_all()

    def _forget_if_done(self, stream: Stream) -> None:
        session = stream.session
        if session is not None and stream.finished and not stream.buffered:
            with self._lock:
                session.streams.pop(stream.stream_id, None)
                session.release_views_locked(stream)
                session.drained_locked()

    def _push_refusal_locked(
        self, session: Session, parent_id: int, headers: list[tuple[bytes, bytes]]
    ) -> str | None:
        """Why a promised push is refused, or None to accept it (lock held)."""
        if not self.enable_push:
            return "push is disabled"
        if sum(len(queue) for queue in self._promises.values()) >= MAX_BUFFERED_PUSHES:
            return "too many pushes nobody collected"
        pseudo = {name: value for name, value in headers if name[:1] == b":"}
        scheme = pseudo.get(b":scheme", b"")
        method = pseudo.get(b":method", b"")
        authority = pseudo.get(b":authority", b"")
        path = pseudo.get(b":path", b"")
        if not self.push_allowed(scheme, method, authority, path, _peer_names(session)):
            return f"push of {method!r} {scheme!r}://{authority!r}{path!r} not allowed"
        return None

    def push_allowed(
        self,
        scheme: bytes,
        method: bytes,
        authority: bytes,
        path: bytes,
        certificate_names: frozenset[str] | None,
    ) -> bool:
        """
        Decide whether to accept a pushed response. Refused pushes are reset with
        ``REFUSED_STREAM``; the connection is unaffected. Override to change the policy.

        It is called in whichever thread is reading the connection, with the connection's
        lock held: it must decide from its arguments alone, without calling the connection
        (that would deadlock), and not raise (an exception ends the connection).

        The default accepts only what a client may treat as the server's own answer
        (RFC 9113 8.4): a safe method (``GET`` or ``HEAD``), the connection's scheme, and an
        authority this server is authoritative for: the connection's own host and port,
        or, over TLS, another name the server's certificate covers, on the same port.

        :param scheme: the promised request's ``:scheme``.
        :param method: its ``:method``.
        :param authority: its ``:authority``.
        :param path: its ``:path``.
        :param certificate_names: the DNS names and IP addresses in the server's certificate
            (``None`` without TLS).
        :returns: whether to accept the push.
        """
        if method not in (b"GET", b"HEAD") or not path:
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
        return certificate_names is not None and tls.certificate_covers(certificate_names, host)

    def _fileno(self, stream: Stream | None = None) -> int:
        session = stream.session if stream is not None else self._session
        sock = session.sock if session is not None else None
        if sock is None:
            raise ConnectionClosed("the connection is closed")
        return sock.fileno()

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
            session = self._session
            if session is None:
                raise ConnectionClosed("the connection is closed")
            session.raise_if_dead_locked()
            assert session.h2 is not None
            session.h2.ping(data)
            session.flush_locked()


__all__ = ["HTTP20Connection", "StreamResetError"]
