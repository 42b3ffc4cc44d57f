"""
:class:`HTTP20Adapter`: a `requests <https://requests.readthedocs.io>`_ transport adapter that
sends requests through hyper, over HTTP/2 when the server speaks it and HTTP/1.1 otherwise.

    >>> import requests
    >>> from hyper.contrib import HTTP20Adapter
    >>> session = requests.Session()
    >>> session.mount("https://", HTTP20Adapter())
    >>> response = session.get("https://example.com/")
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import importlib
import os
import ssl
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3.exceptions
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import (
    ChunkedEncodingError,
    InvalidHeader,
    InvalidProxyURL,
    InvalidURL,
    RetryError,
)
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout as RequestsConnectTimeout
from requests.exceptions import ProxyError as RequestsProxyError
from requests.exceptions import ReadTimeout as RequestsReadTimeout
from requests.exceptions import SSLError as RequestsSSLError
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import (
    get_auth_from_url,
    get_encoding_from_headers,
    prepend_scheme_if_needed,
    select_proxy,
)
from urllib3.exceptions import InsecureRequestWarning, MaxRetryError
from urllib3.util import SKIP_HEADER, Retry, Timeout, Url, parse_url

from .. import tls
from ..common.exceptions import (
    ConnectionClosed,
    ConnectTimeout,
    ContentDecodingError,
    DeadlineExceeded,
    HyperError,
    IncompleteResponseHead,
    InvalidResponseHeader,
    ProxyError,
    ReadTimeout,
    SocketError,
    TLSError,
)
from ..common.eyeballs import DEFAULT_DELAY, ConnectPolicy
from ..common.response import BaseResponse
from ..common.socks import SOCKS_SCHEMES
from ..common.timeout import Deadline, WaitLimit
from ..common.trace import Timings, TraceHook, tracer_for
from ..common.util import HTTPVersion
from ..connection import HTTPConnection
from ..http20.window import BaseFlowControlManager

#: Pool key: scheme, host, port, TLS settings, proxy.
PoolKey = tuple[str, str, int, Any, str | None]

#: Seconds an idle pooled connection is kept before it is closed instead of reused.
DEFAULT_IDLE_TIMEOUT = 60.0


class HTTP20Adapter(HTTPAdapter):
    """
    A requests transport adapter that sends requests with hyper.

    Connections are pooled per scheme, host, port, TLS settings and proxy, and reused by
    every request that matches, whatever its ``timeout``: each request's timeout bounds its
    own waits. Over HTTP/2 one connection carries every request
    for its key at once; over HTTP/1.1 a connection carries one exchange at a time, and up
    to ``pool_maxsize`` are kept per key. Servers without HTTP/2 are spoken to over
    HTTP/1.1 (see :class:`hyper.HTTPConnection`).

    :param window_manager: the HTTP/2 flow-control policy class for new connections.
    :param pool_connections: how many keys (origins with their settings) keep pooled
        connections; the least recently used key's idle connections are closed beyond it.
    :param pool_maxsize: how many HTTP/1.1 connections are kept per key.
    :param max_retries: as for :class:`requests.adapters.HTTPAdapter`: an ``int`` (connect
        retries) or a :class:`urllib3.util.Retry`, whose connect, read and status rules,
        backoff and ``Retry-After`` handling apply to requests sent through hyper.
    :param pool_block: when every HTTP/1.1 connection of a full pool is busy, wait (up to
        the connect timeout) for one instead of opening one more that is closed after use.
    :param idle_timeout: seconds an idle connection stays pooled; ``None`` keeps it.
    :param http3: allow HTTP/3 for ``https`` URLs without a proxy: a new connection tries
        QUIC first and races TCP, and follows what ``Alt-Svc`` fields advertised (see
        :class:`hyper.HTTPConnection` and :doc:`http3`). Needs the ``http3`` extra.
    :param trust: what requests' ``verify=True`` verifies servers with: ``"certifi"``,
        certifi's CA bundle (as requests itself does), or ``"system"``, the operating
        system's trust store (needs the ``truststore`` extra; see :ref:`trust`). A ``verify``
        path (or ``REQUESTS_CA_BUNDLE``) still trusts that bundle alone.
    :param happy_eyeballs_delay: seconds each TCP connection attempt has to itself before
        the next address is tried beside it (see :doc:`connecting`); for every connection
        the adapter opens, to the server or a proxy, and the TCP attempt racing QUIC.
    :param address_family: ``socket.AF_INET`` or ``socket.AF_INET6`` to resolve names to,
        and connect over, that family only; ``None`` for both.
    :param trace: a trace hook given to every connection the adapter opens (see
        :doc:`timings`); each connection detaches it on its own if it raises. The timings of
        each response are ``response.raw.timings``.
    :raises InvalidRequest: for another ``trust``, a delay under 10 ms, another family, or a
        ``trace`` that is not callable.
    :raises TrustStoreUnavailable: (an :class:`ImportError`) for ``trust="system"`` without
        ``truststore``.
    """

    __attrs__ = [
        *HTTPAdapter.__attrs__,
        "window_manager",
        "pool_connections",
        "pool_maxsize",
        "pool_block",
        "idle_timeout",
        "http3",
        "trust",
        "happy_eyeballs_delay",
        "address_family",
        "trace",
    ]

    def __init__(
        self,
        window_manager: type[BaseFlowControlManager] | None = None,
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        max_retries: int | Retry = DEFAULT_RETRIES,
        pool_block: bool = DEFAULT_POOLBLOCK,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        *,
        http3: bool = False,
        trust: str = "certifi",
        happy_eyeballs_delay: float = DEFAULT_DELAY,
        address_family: int | None = None,
        trace: TraceHook | None = None,
    ) -> None:
        tracer_for(trace)  # a hook that cannot be called fails now, not at the first request
        if http3:
            # Without the QUIC stack this raises HTTP3Unavailable now, not at the first request.
            importlib.import_module("hyper.http30.stack")
        tls.check_trust(trust)  # a wrong value or a missing truststore fails now, too
        policy = ConnectPolicy.build(happy_eyeballs_delay, address_family)  # and these
        #: How every connection races addresses: its delay, and the family it keeps to.
        self.happy_eyeballs_delay = policy.delay
        self.address_family = policy.family
        self.http3 = http3
        #: What ``verify=True`` trusts: ``"certifi"`` or ``"system"``.
        self.trust = trust
        #: The trace hook every new connection gets (``None``: none).
        self.trace = trace
        self.window_manager = window_manager
        self.pool_connections = pool_connections
        self.pool_maxsize = pool_maxsize
        self.pool_block = pool_block
        self.idle_timeout = idle_timeout
        self._init_pool()
        super().__init__(pool_connections, pool_maxsize, max_retries, pool_block)

    def _init_pool(self) -> None:
        #: The pooled connections by key, least recently used first. An HTTP/2 connection
        #: carries every request for its key; HTTP/1.1 ones are added as needed.
        self.connections: OrderedDict[PoolKey, list[HTTPConnection]] = OrderedDict()
        self._pool_lock = threading.Condition()
        #: Responses handed out and not finished yet, per connection.
        self._outstanding: dict[HTTPConnection, int] = {}
        #: When each idle connection became idle.
        self._idle_since: dict[HTTPConnection, float] = {}
        #: Connections to close when their last response is done (the adapter was closed,
        #: their key was evicted, or they were opened beyond a full pool).
        self._retiring: set[HTTPConnection] = set()
        self._contexts: dict[Any, ssl.SSLContext] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for transient in (
            "connections",
            "_pool_lock",
            "_outstanding",
            "_idle_since",
            "_retiring",
            "_contexts",
        ):
            state.pop(transient, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._init_pool()

    # -- connections -----------------------------------------------------------------------------

    def get_connection(  # type: ignore[override]
        self,
        host: str,
        port: int,
        scheme: str,
        cert: Any = None,
        verify: Any = True,
        proxy: str | None = None,
        timeout: Any = None,
        deadline: Deadline | None = None,
    ) -> HTTPConnection:
        """
        Return a pooled connection for these parameters, creating it if needed: the HTTP/2
        connection of the key, or an HTTP/1.1 one that is not busy. When the key's pool is
        full of busy HTTP/1.1 connections, wait for one if ``pool_block`` (failing with
        :class:`requests.exceptions.ConnectionError` after the connect timeout, or with
        :class:`~hyper.common.exceptions.DeadlineExceeded` at ``deadline``), otherwise
        open one more, closed when its response is done.

        :param host: the server's host name or address.
        :param port: its port.
        :param scheme: ``"https"`` or ``"http"``.
        :param cert: a client certificate path, or a (certificate, key) pair.
        :param verify: ``True``, ``False`` or the path of a CA bundle or directory.
        :param proxy: the proxy URL to go through, if any.
        :param timeout: the timeout of the request the connection is for: its connect part
            bounds the wait for a busy pool, and a new connection takes it as its own
            (for socket writes; every request passes its own timeout for the rest).
        :param deadline: the request's total deadline, if it has one: it bounds the wait for
            a busy pool too.
        :returns: a :class:`hyper.HTTPConnection`.
        :raises DeadlineExceeded: if ``deadline`` passes while the pool is busy.
        """
        secure = scheme == "https"
        tls_key = (self._verify_key(verify), _cert_key(cert)) if secure else None
        key: PoolKey = (scheme, host.lower(), port, tls_key, proxy)
        proxy_host, proxy_headers = self._proxy_settings(proxy)
        wait = timeout[0] if isinstance(timeout, tuple) else timeout
        limit = (
            None if wait is None and deadline is None else WaitLimit(wait, None, deadline=deadline)
        )
        with self._pool_lock:
            pool = self._pool_for(key)
            while True:
                self._evict_idle(pool)
                for conn in pool:
                    if not conn.busy:
                        self._idle_since.pop(conn, None)
                        return conn
                if len(pool) < self.pool_maxsize or not self.pool_block:
                    break
                try:
                    remaining = None if limit is None else limit.remaining("a pooled connection")
                except DeadlineExceeded:
                    raise
                except ReadTimeout:
                    raise RequestsConnectionError(
                        f"every connection to {host}:{port} is busy (pool_maxsize="
                        f"{self.pool_maxsize}) and none was released in time"
                    ) from None
                self._pool_lock.wait(remaining)
            conn = HTTPConnection(
                host,
                port,
                secure=secure,
                window_manager=self.window_manager,
                ssl_context=self._context(verify, cert) if secure else None,
                proxy_host=proxy_host,
                proxy_headers=proxy_headers,
                timeout=timeout,
                happy_eyeballs_delay=self.happy_eyeballs_delay,
                address_family=self.address_family,
                trace=self.trace,
                **(self._http3_settings(verify, cert) if secure else {}),
            )
            if len(pool) < self.pool_maxsize:
                pool.append(conn)
            else:
                self._retiring.add(conn)
            return conn

    def _pool_for(self, key: PoolKey) -> list[HTTPConnection]:
        """The key's pool, now the most recently used; the least recently used keys beyond
        ``pool_connections`` give up their connections (lock held)."""
        pool = self.connections.get(key)
        if pool is not None:
            self.connections.move_to_end(key)
            return pool
        pool = self.connections[key] = []
        while len(self.connections) > max(self.pool_connections, 1):
            _, evicted = self.connections.popitem(last=False)
            for conn in evicted:
                self._retire(conn)
        return pool

    def _evict_idle(self, pool: list[HTTPConnection]) -> None:
        """Close the pool's connections idle for longer than ``idle_timeout`` (lock held)."""
        if self.idle_timeout is None:
            return
        now = time.monotonic()
        for conn in list(pool):
            since = self._idle_since.get(conn)
            if since is not None and now - since > self.idle_timeout:
                pool.remove(conn)
                self._idle_since.pop(conn, None)
                conn.close()

    def _retire(self, conn: HTTPConnection) -> None:
        """Close ``conn`` now if no response of it is unfinished, else when the last one is
        done (lock held)."""
        self._idle_since.pop(conn, None)
        if self._outstanding.get(conn):
            self._retiring.add(conn)
        else:
            self._retiring.discard(conn)
            conn.close()

    def _response_started(self, conn: HTTPConnection) -> Callable[[], None]:
        """Count a response handed out on ``conn``; return what to call when it is done."""
        with self._pool_lock:
            self._outstanding[conn] = self._outstanding.get(conn, 0) + 1

        def done() -> None:
            with self._pool_lock:
                left = self._outstanding.get(conn, 1) - 1
                if left > 0:
                    self._outstanding[conn] = left
                else:
                    self._outstanding.pop(conn, None)
                    if conn in self._retiring:
                        self._retire(conn)
                    else:
                        self._idle_since[conn] = time.monotonic()
                self._pool_lock.notify_all()

        return done

    @staticmethod
    def _verify_key(verify: Any) -> Any:
        return verify if isinstance(verify, (bool, str)) else bool(verify)

    def _http3_settings(self, verify: Any, cert: Any) -> dict[str, Any]:
        """What :class:`hyper.HTTPConnection` takes to allow HTTP/3 with ``verify`` and
        ``cert``: QUIC's TLS takes a client certificate and a CA directory apart from the
        context."""
        if not self.http3:
            return {}
        client_cert, password = _client_cert(cert)
        settings: dict[str, Any] = {"http3": True}
        if client_cert is not None:
            settings.update(cert=client_cert, cert_password=password)
        if isinstance(verify, str) and os.path.isdir(verify):
            settings["cert_path"] = verify
        return settings

    def _context(self, verify: Any, cert: Any) -> ssl.SSLContext:
        """The TLS context for ``verify`` and ``cert`` (built once per combination)."""
        key = (self._verify_key(verify), _cert_key(cert))
        context = self._contexts.get(key)
        if context is None:
            cert_path = verify if isinstance(verify, str) else None
            client_cert, password = _client_cert(cert)
            context = tls.init_context(
                cert_path=cert_path,
                cert=client_cert,
                cert_password=password,
                # A CA bundle named for the request is trusted alone, as requests does.
                trust="certifi" if cert_path is not None else self.trust,
            )
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[key] = context
        return context

    @staticmethod
    def _proxy_settings(proxy: str | None) -> tuple[str | None, dict[str, str] | None]:
        """What :class:`hyper.HTTPConnection` takes for requests' ``proxy`` URL: a SOCKS URL
        as it is (hyper reads its credentials); for an HTTP proxy, its host:port (80 when the
        URL names no port, as in urllib3) and Proxy-Authorization from its credentials."""
        if not proxy:
            return None, None
        parts = _proxy_url(proxy)
        if parts.scheme in SOCKS_SCHEMES:
            return prepend_scheme_if_needed(proxy, "http"), None
        if parts.scheme != "http":
            raise RequestsProxyError(
                f"hyper can only use HTTP (http://) and SOCKS proxies, not {proxy!r}"
            )
        username, password = get_auth_from_url(parts.url)
        headers = None
        if username:
            headers = {"Proxy-Authorization": basic_credentials(username, password)}
        host = parts.host or ""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{parts.port or 80}", headers

    def close(self) -> None:
        """Close every pooled connection; those with a response still being read (a
        ``stream=True`` body, say) are closed once it is done."""
        with self._pool_lock:
            pools, self.connections = list(self.connections.values()), OrderedDict()
            for pool in pools:
                for conn in pool:
                    self._retire(conn)
            for conn in list(self._retiring):
                self._retire(conn)
        super().close()

    # -- sending ----------------------------------------------------------------------------------

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Response:
        """
        Send a prepared request and return a :class:`requests.Response`, retrying as
        :attr:`max_retries` says.

        :param request: the request, as the Session prepared it.
        :param stream: leave the body unread until the caller iterates over it.
        :param timeout: seconds, a ``(connect, read)`` pair, or a :class:`urllib3.Timeout`,
            whose ``total`` becomes the request's total deadline (see :class:`hyper.Timeout`):
            the exchange, retries included, must be over (the body read, when ``stream`` is
            false) within it, or the request fails with requests' ``ReadTimeout`` (or
            ``ConnectTimeout``, while connecting).
        :param verify: verify the server's certificate (``True``/``False``), or the path of a
            CA bundle or directory to verify it with.
        :param cert: a client certificate path, or a (certificate, key) pair.
        :param proxies: requests' proxy mapping (``{"https": "http://proxy:3128"}``).
        :returns: the response.
        :raises requests.exceptions.RequestException: a subclass matching hyper's error.
        :raises ValueError: for a ``timeout`` requests would not accept either.
        :raises OSError: for a ``verify`` or ``cert`` path that does not exist.
        """
        url = request.url or ""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise RequestsConnectionError(f"hyper cannot send {scheme!r} URLs", request=request)
        host = parts.hostname or ""
        if not host:
            raise InvalidURL(f"Invalid URL {url!r}: No host supplied", request=request)
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = select_proxy(url, dict(proxies or {}))
        timeout, total = _timeout(timeout)
        # urllib3's total bounds the whole exchange, every try included, from here on.
        deadline = None if total is None else _deadline(timeout, total)
        request_timeout: Any = timeout if deadline is None else deadline
        _check_tls_paths(scheme, verify, cert)
        if scheme == "https" and verify is False:
            warnings.warn(
                f"Unverified HTTPS request is being made to host {host!r}. Adding certificate "
                "verification is strongly advised.",
                InsecureRequestWarning,
                stacklevel=2,
            )
        self.add_headers(request, stream=stream, timeout=timeout, verify=verify, cert=cert)
        method = request.method or "GET"
        body: Any = request.body  # bytes, str, a file or an iterable: hyper takes them all
        rewind = _rewinder(body)
        retries = self.max_retries
        while True:
            # Each try's timings start before it takes a connection and connects it.
            timings = Timings(time.monotonic())
            try:
                conn = self.get_connection(
                    host, port, scheme, cert, verify, proxy, timeout, deadline=deadline
                )
            except DeadlineExceeded as exc:
                raise _requests_error(exc, request, proxy) from exc
            try:
                conn.connect(timeout=request_timeout)
            except HyperError as exc:
                retries = self._next_try(
                    retries, request, exc, _connect_error(exc), proxy, deadline
                )
                continue
            try:
                stream_id = conn.request(
                    method,
                    request.path_url,
                    body=body,
                    headers=_sendable(request.headers),
                    timeout=request_timeout,
                    timings=timings,
                )
                hyper_response = _response_or_cancel(conn, stream_id)
            except HyperError as exc:
                if rewind is None:
                    # A body that was streamed out cannot be sent again.
                    raise _requests_error(exc, request, proxy) from exc
                retries = self._next_try(
                    retries, request, exc, _read_error(exc, url), proxy, deadline
                )
                rewind()
                continue
            response = self.build_response(request, hyper_response)
            response.raw.on_done(self._response_started(conn))
            if not retries.is_retry(
                method, response.status_code, "Retry-After" in response.headers
            ):
                return response
            try:
                retries = retries.increment(method, url, response=response.raw)
            except MaxRetryError as exc:
                if retries.raise_on_status:
                    response.close()
                    raise RetryError(exc, request=request) from exc
                return response
            response.close()
            try:
                _back_off(retries, response.raw, deadline)
            except DeadlineExceeded as exc:
                raise _requests_error(exc, request, proxy) from exc
            if rewind is None:
                raise RetryError(
                    f"the body of {method} {url} cannot be sent again", request=request
                )
            rewind()

    def _next_try(
        self,
        retries: Retry,
        request: PreparedRequest,
        error: HyperError,
        as_urllib3: Exception,
        proxy: str | None,
        deadline: Deadline | None,
    ) -> Retry:
        """The retry state after ``error`` (urllib3's rules, with ``as_urllib3`` as the error
        they classify), having waited its backoff; raises the requests error for ``error``
        when no retry is left or allowed, and for the total deadline when the backoff would
        outlast it."""
        try:
            retries = retries.increment(request.method, request.url, error=as_urllib3)
        except (MaxRetryError, urllib3.exceptions.HTTPError) as exc:
            raise _requests_error(error, request, proxy) from exc
        try:
            _back_off(retries, None, deadline)
        except DeadlineExceeded as exc:
            raise _requests_error(exc, request, proxy) from exc
        return retries

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        """
        Make a :class:`requests.Response` of hyper's response: status, reason, headers (a
        repeated field joined with commas, except Set-Cookie, which goes to the cookie
        jar), encoding, URL, and a ``raw`` object with the urllib3-style interface requests
        and HTTPie read the body through.

        :param req: the request.
        :param resp: hyper's response.
        :returns: the requests response.
        """
        response = Response()
        response.status_code = resp.status
        response.reason = resp.reason or http.client.responses.get(resp.status, "")
        response.headers = CaseInsensitiveDict(_joined_headers(resp.headers))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = HyperRawResponse(resp)
        response.url = req.url or ""
        response.request = req
        response.connection = self
        extract_cookies_to_jar(response.cookies, req, response.raw)
        return response


def _back_off(retries: Retry, response: Any, deadline: Deadline | None) -> None:
    """
    Wait before the next try as urllib3's ``Retry.sleep()`` does (the response's
    ``Retry-After`` when the rules respect it, else the backoff), but never past the
    request's total ``deadline``: a wait that would outlast it is not begun.

    :raises DeadlineExceeded: if the wait would end at or after ``deadline``.
    """
    if deadline is None:
        retries.sleep(response)
        return
    seconds = None
    if response is not None and retries.respect_retry_after_header:
        seconds = retries.get_retry_after(response) or None
    if seconds is None:
        seconds = retries.get_backoff_time()
    if seconds >= deadline.remaining():
        raise DeadlineExceeded(
            f"the next try would start after a wait of {seconds:g} s, past the request's "
            f"total deadline of {deadline.total:g} s"
        )
    if seconds > 0:
        time.sleep(seconds)


def _response_or_cancel(conn: HTTPConnection, stream_id: int | None) -> Any:
    """The response to ``stream_id``; a request whose response did not come in time is given
    up, so that it no longer holds one of the server's streams of a shared HTTP/2
    connection (over HTTP/1.1 a timed-out exchange closes its connection by itself)."""
    try:
        return conn.get_response(stream_id)
    except ReadTimeout:
        if stream_id is not None:
            with contextlib.suppress(HyperError):
                conn.cancel(stream_id)
        raise


def _rewinder(body: Any) -> Callable[[], None] | None:
    """How to make ``body`` ready to be sent again: nothing to do for bytes, text or no body,
    a seek back for a seekable file; ``None`` when it cannot be (an iterator, a pipe)."""
    if body is None or isinstance(body, (bytes, bytearray, memoryview, str)):
        return lambda: None
    seek, tell = getattr(body, "seek", None), getattr(body, "tell", None)
    if seek is None or tell is None:
        return None
    try:
        start = tell()
    except OSError:
        return None  # a pipe or socket: not seekable
    return lambda: seek(start)


def _proxy_url(proxy: str) -> Url:
    """``proxy`` parsed as requests parses it (``http://`` when it names no scheme).

    :raises InvalidProxyURL: if it names no host.
    """
    parts = parse_url(prepend_scheme_if_needed(proxy, "http"))
    if not parts.host:
        raise InvalidProxyURL(
            f"Please check proxy URL {proxy!r}. It is malformed and could be missing the host."
        )
    return parts


def _check_tls_paths(scheme: str, verify: Any, cert: Any) -> None:
    """requests' checks of the CA and client certificate paths, with its messages."""
    if scheme == "https" and isinstance(verify, str) and not os.path.exists(verify):
        raise OSError(
            f"Could not find a suitable TLS CA certificate bundle, invalid path: {verify}"
        )
    if not cert:
        return
    cert_file, key_file = (cert, None) if isinstance(cert, str) else (cert[0], cert[1])
    if cert_file and not os.path.exists(cert_file):
        raise OSError(f"Could not find the TLS certificate file, invalid path: {cert_file}")
    if key_file and not os.path.exists(key_file):
        raise OSError(f"Could not find the TLS key file, invalid path: {key_file}")


def _connect_error(exc: HyperError) -> Exception:
    """The urllib3 error urllib3's Retry counts for a failure to connect."""
    if isinstance(exc, ConnectTimeout):
        return urllib3.exceptions.ConnectTimeoutError(str(exc))
    if isinstance(exc, TLSError):
        return urllib3.exceptions.SSLError(str(exc))
    return urllib3.exceptions.NewConnectionError(None, str(exc))  # type: ignore[arg-type]


def _read_error(exc: HyperError, url: str) -> Exception:
    """The urllib3 error urllib3's Retry counts for a failure once the request was sent."""
    if isinstance(exc, ReadTimeout):
        return urllib3.exceptions.ReadTimeoutError(None, url, str(exc))  # type: ignore[arg-type]
    return urllib3.exceptions.ProtocolError(str(exc), exc)


def _sendable(headers: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """
    The request's headers minus those its sender asked to leave out: urllib3's ``SKIP_HEADER``
    value (which HTTPie uses to remove a default header such as User-Agent) means "do not
    send this header", not a value to send. requests' default ``Connection: keep-alive`` is
    left out too: hyper manages the connection (and the header would rule out an h2c
    upgrade).
    """
    return [
        (name, value)
        for name, value in headers.items()
        if value not in (SKIP_HEADER, SKIP_HEADER.encode("latin-1"))
        and not (str(name).lower() == "connection" and str(value).strip().lower() == "keep-alive")
    ]


def basic_credentials(username: str, password: str) -> str:
    """
    A ``Basic`` credentials value (RFC 7617) for ``username`` and ``password``, encoded as
    requests encodes them: Latin-1 when the text fits it, UTF-8 otherwise.
    """
    text = f"{username}:{password}"
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _cert_key(cert: Any) -> Any:
    return tuple(cert) if isinstance(cert, list) else cert


def _client_cert(cert: Any) -> tuple[Any, Any]:
    """The client certificate and key password in requests' ``cert``: a path, a
    ``(cert, key)`` pair (requests) or a ``(cert, key, password)`` triple (HTTPie)."""
    if not isinstance(cert, (list, tuple)):
        return cert, None
    password = cert[2] if len(cert) == 3 else None
    fields = [field for field in cert[:2] if field is not None]
    return (tuple(fields) if len(fields) == 2 else (fields[0] if fields else None)), password


def _timeout(timeout: Any) -> tuple[Any, float | None]:
    """requests' timeout (a number, a pair, or a urllib3 Timeout) as hyper takes it, checked
    as requests checks it (same errors, same messages), and urllib3's total (``None``
    without one). urllib3 already caps the connect and read parts by the total."""
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
        except ValueError:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, or a single "
                "float to set both timeouts to the same value."
            ) from None
        checked = Timeout(connect=connect, read=read)
    elif isinstance(timeout, Timeout):
        checked = timeout.clone()
    else:
        checked = Timeout(connect=timeout, read=timeout)
    # A total without a read part makes the read part what is left of the total once
    # connected, which urllib3 computes only for a timer it started (as its pool does).
    checked.start_connect()
    connect_s, read_s = (
        None if value is Timeout.DEFAULT_TIMEOUT else value
        for value in (checked.connect_timeout, checked.read_timeout)
    )
    total = checked.total if isinstance(checked.total, (int, float)) else None
    return (connect_s if connect_s == read_s else (connect_s, read_s)), total


def _deadline(timeout: Any, total: float) -> Deadline:
    """The total deadline of a request starting now, with its (connect, read) timeouts."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return Deadline(connect, read, total)


def _requests_error(exc: HyperError, request: PreparedRequest, proxy: str | None) -> Exception:
    """The requests exception a caller of requests expects for hyper's ``exc``."""
    error: Exception
    unreachable_proxy = (
        proxy is not None
        and isinstance(exc, SocketError)
        and not isinstance(exc, (ConnectionClosed, TLSError, ReadTimeout))
    )
    if isinstance(exc, ProxyError) or unreachable_proxy:
        error = RequestsProxyError(exc, request=request)
    elif isinstance(exc, ConnectTimeout):
        error = RequestsConnectTimeout(exc, request=request)
    elif isinstance(exc, ReadTimeout):
        # requests' own message, which callers look for.
        error = RequestsReadTimeout(ReadTimeout(f"Read timed out. ({exc})"), request=request)
    elif isinstance(exc, TLSError):
        error = RequestsSSLError(exc, request=request)
    elif isinstance(exc, IncompleteResponseHead):
        # requests' name for a response that broke off.
        error = ChunkedEncodingError(exc, request=request)
    elif isinstance(exc, InvalidResponseHeader):
        error = InvalidHeader(exc, request=request)
    else:
        error = RequestsConnectionError(exc, request=request)
    return error


def _joined_headers(headers: Any) -> dict[str, str]:
    """Headers for requests: one entry per name, repeated fields joined with ', '."""
    joined: dict[str, str] = {}
    for name_b, value_b in headers.iter_raw():
        name = name_b.decode("latin-1")
        value = value_b.decode("latin-1")
        key = name.lower()
        existing = next((k for k in joined if k.lower() == key), None)
        if existing is None:
            joined[name] = value
        else:
            joined[existing] = f"{joined[existing]}, {value}"
    return joined


def _urllib3_error(exc: HyperError) -> Exception:
    """The urllib3 exception requests expects from a failed body read."""
    if isinstance(exc, ReadTimeout):
        return urllib3.exceptions.ReadTimeoutError(None, None, str(exc))  # type: ignore[arg-type]
    if isinstance(exc, ContentDecodingError):
        return urllib3.exceptions.DecodeError(str(exc))
    return urllib3.exceptions.ProtocolError(str(exc), exc)


#: The protocol as urllib3 numbers it in ``HTTPResponse.version``.
_VERSION_NUMBERS = {HTTPVersion.http11: 11, HTTPVersion.http20: 20, HTTPVersion.http30: 30}


class _OriginalResponse:
    """
    The shape requests (cookies) and HTTPie read from ``raw._original_response``: an
    http.client-like response with ``msg``, ``version``, ``status`` and ``reason``.
    """

    def __init__(self, response: BaseResponse) -> None:
        self.msg = http.client.HTTPMessage()
        for name, value in response.headers.iter_raw():
            self.msg[name.decode("latin-1")] = value.decode("latin-1")
        self.headers = self.msg
        self.version = _VERSION_NUMBERS[response.version]
        self.status = response.status
        self.reason = response.reason or http.client.responses.get(response.status, "")

    def isclosed(self) -> bool:
        return False


class HyperRawResponse:
    """
    The ``raw`` of a :class:`requests.Response` built by :class:`HTTP20Adapter`: hyper's
    response behind the interface of urllib3's ``HTTPResponse`` that requests and HTTPie use.

    :param response: hyper's response.
    """

    def __init__(self, response: BaseResponse) -> None:
        self._response = response
        self._original_response = _OriginalResponse(response)
        self.status = response.status
        self.reason = self._original_response.reason
        self.version = self._original_response.version
        self.headers = CaseInsensitiveDict(_joined_headers(response.headers))
        self.decode_content = True
        self._closed = False
        self._fp_bytes_read = 0
        self._done: weakref.finalize[Any, Any] | None = None

    @property
    def timings(self) -> Timings:
        """When each phase of the request and of this response happened
        (:class:`~hyper.common.trace.Timings`, see :doc:`timings`). requests' own
        ``response.elapsed`` is something else: the time its ``Session.send`` spent in the
        adapter's ``send()``, connecting and waiting for the response headers included,
        reading the body not."""
        return self._response.timings

    def on_done(self, callback: Callable[[], None]) -> None:
        """
        Call ``callback`` once when the response is done: its body read to the end, the
        response closed or its connection released, or the response garbage collected.
        The adapter uses it to know when the connection has no more unfinished responses.
        """
        self._done = weakref.finalize(self, callback)

    def _finish(self) -> None:
        if self._done is not None:
            self._done()

    @property
    def closed(self) -> bool:
        """Whether the body has been read to its end or the response closed."""
        return self._closed

    def isclosed(self) -> bool:
        """Like :attr:`closed` (http.client spelling)."""
        return self._closed

    def readable(self) -> bool:
        """A raw response can be read."""
        return True

    def read(
        self, amt: int | None = None, decode_content: bool | None = None, **kwargs: Any
    ) -> bytes:
        """
        Read (up to ``amt`` bytes of) the body, decoded unless ``decode_content`` is False.
        """
        decode = self.decode_content if decode_content is None else decode_content
        try:
            data = self._response.read(amt, decode_content=decode)
        except HyperError as exc:
            # requests turns urllib3's errors (only) into its own exceptions while reading.
            raise _urllib3_error(exc) from exc
        self._fp_bytes_read += len(data)
        if amt is None or not data:
            self._closed = True
            self._finish()
        return data

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body in pieces of at most ``amt`` bytes until it ends."""
        while True:
            data = self.read(amt, decode_content=decode_content)
            if not data:
                return
            yield data

    def tell(self) -> int:
        """How many body bytes have been read so far."""
        return self._fp_bytes_read

    def fileno(self) -> int:
        """The file descriptor of the socket the response arrives on."""
        return int(self._response.fileno())  # type: ignore[attr-defined]

    def release_conn(self) -> None:
        """Give the connection back: this response no longer keeps it open."""
        self._finish()

    def close(self) -> None:
        """Close the response (an unread HTTP/2 body is cancelled; see hyper's close())."""
        if not self._closed:
            self._closed = True
            self._response.close()
        self._finish()

    def get_redirect_location(self) -> str | None:
        """The Location of a redirect response, or None."""
        if self.status in (301, 302, 303, 307, 308):
            return self.headers.get("location")
        return None
