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
import http.client
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import (
    ConnectionError as RequestsConnectionError,
)
from requests.exceptions import (
    ConnectTimeout as RequestsConnectTimeout,
)
from requests.exceptions import (
    ProxyError as RequestsProxyError,
)
from requests.exceptions import (
    ReadTimeout as RequestsReadTimeout,
)
from requests.exceptions import (
    SSLError as RequestsSSLError,
)
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import get_auth_from_url, get_encoding_from_headers, select_proxy
from urllib3.util import SKIP_HEADER

from .. import tls
from ..common.exceptions import (
    ConnectionClosed,
    ConnectTimeout,
    ContentDecodingError,
    HyperError,
    ProxyError,
    ReadTimeout,
    SocketError,
    TLSError,
)
from ..common.response import BaseResponse
from ..common.util import HTTPVersion
from ..connection import HTTPConnection
from ..http20.window import BaseFlowControlManager

#: Pool key: scheme, host, port, TLS settings, proxy.
PoolKey = tuple[str, str, int, Any, Any, str | None]


class HTTP20Adapter(HTTPAdapter):
    """
    A requests transport adapter that sends requests with hyper.

    Connections are pooled per scheme, host, port, TLS settings and proxy, and reused by
    every request that matches; HTTP/2 carries many requests on one of them at once.
    Servers without HTTP/2 are spoken to over HTTP/1.1 (see :class:`hyper.HTTPConnection`).

    :param window_manager: the HTTP/2 flow-control policy class for new connections.
    :param args: passed on to :class:`requests.adapters.HTTPAdapter`.
    :param kwargs: passed on to :class:`requests.adapters.HTTPAdapter`.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "window_manager"]

    def __init__(
        self,
        window_manager: type[BaseFlowControlManager] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.window_manager = window_manager
        #: The pooled connections, by (scheme, host, port, TLS settings, proxy, timeout). An
        #: HTTP/2 connection carries every request for its key; HTTP/1.1 ones are added as
        #: needed, one per request in progress.
        self.connections: dict[PoolKey, list[HTTPConnection]] = {}
        self._pool_lock = threading.Lock()
        self._contexts: dict[Any, ssl.SSLContext] = {}
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for transient in ("connections", "_pool_lock", "_contexts"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.connections = {}
        self._pool_lock = threading.Lock()
        self._contexts = {}

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
    ) -> HTTPConnection:
        """
        Return the pooled connection for these parameters, creating it if needed.

        :param host: the server's host name or address.
        :param port: its port.
        :param scheme: ``"https"`` or ``"http"``.
        :param cert: a client certificate path, or a (certificate, key) pair.
        :param verify: ``True``, ``False`` or the path of a CA bundle or directory.
        :param proxy: the proxy URL to go through, if any.
        :param timeout: the timeout a new connection gets (a number or a pair).
        :returns: a :class:`hyper.HTTPConnection`.
        """
        secure = scheme == "https"
        tls_key = (self._verify_key(verify), _cert_key(cert)) if secure else None
        key: PoolKey = (scheme, host.lower(), port, tls_key, _timeout_key(timeout), proxy)
        with self._pool_lock:
            pool = self.connections.setdefault(key, [])
            for conn in pool:
                if not conn.busy:
                    return conn
            proxy_host, proxy_headers = self._proxy_settings(proxy)
            conn = HTTPConnection(
                host,
                port,
                secure=secure,
                window_manager=self.window_manager,
                ssl_context=self._context(verify, cert) if secure else None,
                proxy_host=proxy_host,
                proxy_headers=proxy_headers,
                timeout=timeout,
            )
            pool.append(conn)
            return conn

    @staticmethod
    def _verify_key(verify: Any) -> Any:
        return verify if isinstance(verify, (bool, str)) else bool(verify)

    def _context(self, verify: Any, cert: Any) -> ssl.SSLContext:
        """The TLS context for ``verify`` and ``cert`` (built once per combination)."""
        key = (self._verify_key(verify), _cert_key(cert))
        context = self._contexts.get(key)
        if context is None:
            cert_path = verify if isinstance(verify, str) else None
            client_cert: Any = cert
            password = None
            if isinstance(cert, (list, tuple)):
                # requests passes (cert, key); HTTPie (cert, key, key password).
                fields = [field for field in cert if field is not None]
                if len(cert) == 3:
                    password = cert[2]
                    fields = [field for field in cert[:2] if field is not None]
                client_cert = (
                    tuple(fields) if len(fields) == 2 else (fields[0] if fields else None)
                )
            context = tls.init_context(
                cert_path=cert_path, cert=client_cert, cert_password=password
            )
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[key] = context
        return context

    @staticmethod
    def _proxy_settings(proxy: str | None) -> tuple[str | None, dict[str, str] | None]:
        """The proxy's host:port and its headers (credentials in its URL become
        Proxy-Authorization)."""
        if not proxy:
            return None, None
        if "://" not in proxy:
            proxy = "http://" + proxy
        parts = urlsplit(proxy)
        if parts.scheme not in ("http", ""):
            raise RequestsProxyError(f"hyper can only use HTTP proxies, not {proxy!r}")
        username, password = get_auth_from_url(proxy)
        headers = None
        if username:
            headers = {"Proxy-Authorization": basic_credentials(username, password)}
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port or 8080}", headers

    def close(self) -> None:
        """Close every pooled connection."""
        with self._pool_lock:
            pools, self.connections = list(self.connections.values()), {}
        for pool in pools:
            for conn in pool:
                conn.close()
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
        Send a prepared request and return a :class:`requests.Response`.

        :param request: the request, as the Session prepared it.
        :param stream: leave the body unread until the caller iterates over it.
        :param timeout: seconds, or a ``(connect, read)`` pair.
        :param verify: verify the server's certificate (``True``/``False``), or the path of a
            CA bundle or directory to verify it with.
        :param cert: a client certificate path, or a (certificate, key) pair.
        :param proxies: requests' proxy mapping (``{"https": "http://proxy:3128"}``).
        :returns: the response.
        :raises requests.exceptions.RequestException: a subclass matching hyper's error.
        """
        url = request.url or ""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise RequestsConnectionError(f"hyper cannot send {scheme!r} URLs", request=request)
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = select_proxy(url, dict(proxies or {}))
        timeout = _timeout(timeout)
        try:
            conn = self.get_connection(host, port, scheme, cert, verify, proxy, timeout)
            self.add_headers(request, stream=stream, timeout=timeout, verify=verify, cert=cert)
            path = request.path_url
            body: Any = request.body  # bytes, str, a file or an iterable: hyper takes them all
            stream_id = conn.request(
                request.method or "GET", path, body=body, headers=_sendable(request.headers)
            )
            response = conn.get_response(stream_id)
        except HyperError as exc:
            raise _requests_error(exc, request, proxy) from exc
        return self.build_response(request, response)

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


def _timeout_key(timeout: Any) -> Any:
    return timeout if isinstance(timeout, (int, float, tuple, type(None))) else repr(timeout)


def _cert_key(cert: Any) -> Any:
    return tuple(cert) if isinstance(cert, list) else cert


def _timeout(timeout: Any) -> Any:
    """requests' timeout (a number, a pair, or a urllib3 Timeout) as hyper takes it."""
    if timeout is None or isinstance(timeout, (int, float)):
        return timeout
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (connect, read)
    connect = getattr(timeout, "connect_timeout", None)
    read = getattr(timeout, "read_timeout", None)
    return (connect, read)


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
        error = RequestsReadTimeout(exc, request=request)
    elif isinstance(exc, TLSError):
        error = RequestsSSLError(exc, request=request)
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
        self.version = 20 if response.version is HTTPVersion.http20 else 11
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
        """Give the connection back (hyper's connections need no such step)."""

    def close(self) -> None:
        """Close the response (an unread HTTP/2 body is cancelled; see hyper's close())."""
        if not self._closed:
            self._closed = True
            self._response.close()

    def get_redirect_location(self) -> str | None:
        """The Location of a redirect response, or None."""
        if self.status in (301, 302, 303, 307, 308):
            return self.headers.get("location")
        return None
