"""hyper's security defaults, one test (or one parametrized group) per default documented in
``docs/security.rst``:

* certificates and host names are verified by default, for every connection class;
* TLS 1.2 is the minimum: a server that offers only TLS 1.1 is refused;
* no silent downgrade: an ``HTTP20Connection`` never falls back to HTTP/1.1, and
  ``force_proto="h2"`` is honoured by ``HTTPConnection`` too;
* proxy credentials go to the proxy only (the ``CONNECT`` request), never through the tunnel
  to the origin; ``Authorization`` does not follow a redirect to another origin through the
  ``requests`` adapter;
* server push is off unless asked for (``SETTINGS_ENABLE_PUSH=0``); the checks on accepted
  pushes (same origin, safe method, scheme) are tested in ``tests/test_push.py``.

All servers are in-process on 127.0.0.1 (scripted, with the session's trustme certificates),
so nothing here needs an external binary.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection, tls
from hyper.common.exceptions import CertificateError, InvalidResponse, TLSError
from hyper.contrib import HTTP20Adapter
from hyper.http20.exceptions import HTTP20Error
from tests.support.certs import CertPaths, TLSMaterial
from tests.support.h2conn import ServerConnection
from tests.support.http11 import Reply, http11_responder
from tests.support.scripted import ScriptedRawServer, ScriptedServer, simple_responder

RawFactory = Callable[..., ScriptedRawServer]
H2Factory = Callable[..., ScriptedServer]
ConnectionClass = type[HTTPConnection] | type[HTTP11Connection] | type[HTTP20Connection]

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIMEOUT = 5.0
ALL_CLASSES = [HTTPConnection, HTTP11Connection, HTTP20Connection]


def _recv_head(sock: socket.socket) -> bytes:
    """Read up to the end of an HTTP/1.1 head (bounded by the socket timeout)."""
    sock.settimeout(TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _drain(sock: socket.socket, sink: bytearray | None = None) -> None:
    """Read until the client closes; keep the bytes in ``sink``."""
    sock.settimeout(TIMEOUT)
    with contextlib.suppress(OSError):
        while data := sock.recv(65536):
            if sink is not None:
                sink.extend(data)


# -- certificate and host name verification ---------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_default_context_verifies_against_certifi(
    cls: ConnectionClass, scripted_raw_server: RawFactory
) -> None:
    """Without an ``ssl_context``, the server's certificate must chain to certifi's CAs:
    a certificate from the test CA is refused before any request byte is sent."""
    received = bytearray()
    with scripted_raw_server(
        lambda sock: _drain(sock, received), tls=True, alpn=("h2", "http/1.1")
    ) as server:
        conn = cls("localhost", server.port, secure=True, timeout=TIMEOUT)
        with pytest.raises(CertificateError):
            conn.request("GET", "/")
        conn.close()
    assert received == b""


def test_default_context_settings() -> None:
    """The shared default context: CERT_REQUIRED, host names checked, TLS 1.2 or newer,
    no TLS compression, ALPN h2 then http/1.1."""
    context = tls.default_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert tls.SUPPORTED_PROTOCOLS == ("h2", "http/1.1")


@pytest.mark.parametrize(
    ("cert_name", "reason"),
    [
        ("wrong_host", "(Hostname|IP address) mismatch"),
        ("expired", "expired"),
        ("untrusted", "unable to get local issuer"),
    ],
)
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_bad_certificates_are_refused_by_every_connection_class(
    cls: ConnectionClass,
    cert_name: str,
    reason: str,
    tls_material: TLSMaterial,
    scripted_raw_server: RawFactory,
) -> None:
    """With a context that trusts the test CA (and is otherwise hyper's default), a
    certificate for another name, an expired one, or one from another CA is refused with
    CertificateError, before the request is sent. (``tests/test_tls.py`` covers the same
    for HTTP20Connection in more detail.)"""
    cert: CertPaths = getattr(tls_material, cert_name)
    received = bytearray()
    context = tls.init_context(cert_path=str(tls_material.ca_cert_path))
    with scripted_raw_server(
        lambda sock: _drain(sock, received), tls=True, cert=cert, alpn=("h2", "http/1.1")
    ) as server:
        conn = cls("localhost", server.port, secure=True, ssl_context=context, timeout=TIMEOUT)
        with pytest.raises(CertificateError, match=reason):
            conn.request("GET", "/")
        conn.close()
    assert received == b""


# -- TLS 1.2 minimum --------------------------------------------------------------------------


def _capped_server_context(cert: CertPaths, version: ssl.TLSVersion) -> ssl.SSLContext | None:
    """A server context offering TLS up to ``version`` only, or None if this OpenSSL cannot
    be configured for it (TLS 1.1 is compiled out or forbidden by policy in some builds)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    try:
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = version
        # Old protocol versions need the old ciphers and security level 0 in OpenSSL 3.
        context.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    return context


class _CappedTLSServer:
    """A one-connection TLS server on 127.0.0.1 with the given server context; records
    whether a handshake completed and any application bytes received."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshake_error: BaseException | None = None
        self.version: str | None = None
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.listener.settimeout(TIMEOUT)
        try:
            raw, _ = self.listener.accept()
        except OSError as exc:
            self.handshake_error = exc
            return
        raw.settimeout(TIMEOUT)
        try:
            with self.context.wrap_socket(raw, server_side=True) as sock:
                self.version = sock.version()
                _drain(sock, self.received)
        except (OSError, ssl.SSLError) as exc:
            self.handshake_error = exc
        finally:
            raw.close()

    def __enter__(self) -> _CappedTLSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive()


def _can_offer(version: ssl.TLSVersion, cert: CertPaths) -> bool:
    """Whether this machine's OpenSSL can complete a handshake at ``version`` at all
    (checked with a permissive client), so a refusal by hyper means something."""
    context = _capped_server_context(cert, version)
    if context is None:
        return False
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        client.minimum_version = version
        client.maximum_version = version
        client.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return False
    with _CappedTLSServer(context) as server:
        try:
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as raw,
                client.wrap_socket(raw) as sock,
            ):
                sock.version()
        except (OSError, ssl.SSLError):
            return False
    return server.version is not None


#: The tests below configure old TLS versions on purpose, for the server side.
OLD_TLS_OK = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


@OLD_TLS_OK
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_tls_1_1_server_is_refused(cls: ConnectionClass, tls_material: TLSMaterial) -> None:
    """A server that offers at most TLS 1.1 fails the handshake with TLSError; nothing of
    the request reaches it. Where this OpenSSL cannot speak TLS 1.1 at all, the context's
    minimum_version is checked instead (the refusal is then OpenSSL's, not hyper's)."""
    context = tls.init_context(cert_path=str(tls_material.ca_cert_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    if not _can_offer(ssl.TLSVersion.TLSv1_1, tls_material.server):
        pytest.skip("this OpenSSL cannot negotiate TLS 1.1 even when asked to")
    server_context = _capped_server_context(tls_material.server, ssl.TLSVersion.TLSv1_1)
    assert server_context is not None
    with _CappedTLSServer(server_context) as server:
        conn = cls("localhost", server.port, secure=True, ssl_context=context, timeout=TIMEOUT)
        with pytest.raises(TLSError) as info:
            conn.request("GET", "/")
        conn.close()
    assert not isinstance(info.value, CertificateError)
    assert server.version is None
    assert server.received == b""


@OLD_TLS_OK
def test_tls_1_2_server_is_accepted(tls_material: TLSMaterial) -> None:
    """The control for the test above: the same server capped at TLS 1.2 is accepted, so
    the refusal is about the version and nothing else."""
    context = tls.init_context(cert_path=str(tls_material.ca_cert_path))
    server_context = _capped_server_context(tls_material.server, ssl.TLSVersion.TLSv1_2)
    assert server_context is not None
    server_context.set_alpn_protocols(["http/1.1"])
    with _CappedTLSServer(server_context) as server:
        conn = HTTP11Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=TIMEOUT
        )
        conn.connect()
        conn.close()
    assert server.version == "TLSv1.2"


# -- no silent downgrade ----------------------------------------------------------------------


@pytest.mark.parametrize("alpn", [("http/1.1",), None], ids=["alpn-http1.1", "no-alpn"])
def test_http20_connection_never_falls_back_to_http11_over_tls(
    alpn: tuple[str, ...] | None, tls_material: TLSMaterial, scripted_raw_server: RawFactory
) -> None:
    """HTTP20Connection to a TLS server that does not select h2: HTTP20Error, and the
    request was sent neither as HTTP/1.1 nor as HTTP/2."""
    received = bytearray()
    context = tls.init_context(cert_path=str(tls_material.ca_cert_path))
    with scripted_raw_server(lambda sock: _drain(sock, received), tls=True, alpn=alpn) as server:
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=TIMEOUT
        )
        with pytest.raises(HTTP20Error, match="did not negotiate HTTP/2"):
            conn.request("GET", "/secret")
        conn.close()
    assert received == b""


def test_http20_connection_never_falls_back_to_http11_in_plaintext(
    scripted_raw_server: RawFactory,
) -> None:
    """A plaintext server that answers in HTTP/1.1: a documented HTTP/2 error, and hyper
    sent only HTTP/2 (its preface and frames), never an HTTP/1.1 request line."""
    received = bytearray()

    def handler(sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        received.extend(sock.recv(65536))
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        _drain(sock, received)

    with scripted_raw_server(handler) as server:
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
        with pytest.raises((HTTP20Error, InvalidResponse)) as info:
            conn.get_response(conn.request("GET", "/"))
        conn.close()
    assert "HTTP/2" in str(info.value)
    assert bytes(received).startswith(H2_PREFACE)
    assert b"GET / HTTP/1.1" not in received


def test_http_connection_force_proto_h2_is_honoured(
    tls_material: TLSMaterial, scripted_server: H2Factory
) -> None:
    """HTTPConnection(force_proto="h2") against a server whose ALPN picks http/1.1 still
    speaks HTTP/2: forcing the protocol is never silently undone."""
    responder = simple_responder({"/": b"spoken in h2"})
    context = tls.init_context(cert_path=str(tls_material.ca_cert_path))
    context.set_alpn_protocols(["http/1.1"])  # the server will choose http/1.1
    with (
        scripted_server(responder, tls=True) as server,
        HTTPConnection(
            "localhost",
            server.port,
            secure=True,
            ssl_context=context,
            timeout=TIMEOUT,
            force_proto="h2",
        ) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.read() == b"spoken in h2"
        assert conn.version.value == "HTTP/2"
    assert [r.path for r in responder.requests] == ["/"]


# -- credentials stay with their origin -------------------------------------------------------


class _TunnellingProxy:
    """A CONNECT proxy and origin in one: records the CONNECT head, answers 200, then serves
    the tunnelled connection itself (HTTP/1.1, or HTTP/2 with prior knowledge)."""

    def __init__(self, http2: bool, tls_context: ssl.SSLContext | None = None) -> None:
        self.http2 = http2
        self.tls_context = tls_context
        self.connect_heads: list[bytes] = []
        self.origin_headers: list[list[tuple[bytes, bytes]]] = []

    def __call__(self, sock: socket.socket) -> None:
        head = _recv_head(sock)
        self.connect_heads.append(head)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(sock, server_side=True)
        if self.http2:
            ctx = ServerConnection(sock)
            ctx.handshake()
            event = ctx.wait_for_request()
            self.origin_headers.append([(bytes(n), bytes(v)) for n, v in event.headers])
            ctx.respond(event.stream_id, 200, body=b"through the tunnel")
            ctx.wait_closed()
        else:
            request = _recv_head(sock)
            lines = request.split(b"\r\n")[1:]
            fields = [line.split(b":", 1) for line in lines if b":" in line]
            self.origin_headers.append([(name.strip(), value.strip()) for name, value in fields])
            body = b"through the tunnel"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            _drain(sock)


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTP20Connection])
def test_proxy_headers_go_to_the_proxy_only(
    cls: ConnectionClass, tls_material: TLSMaterial, scripted_raw_server: RawFactory
) -> None:
    """``proxy_headers`` (Proxy-Authorization) are sent in the CONNECT request, and not in
    the request that goes through the tunnel to the origin: https over HTTP/1.1, and
    plaintext HTTP/2 (tunnelled too). ``tests/test_proxies.py`` checks the same against
    tinyproxy."""
    secret = b"Basic dXNlcjpzZWNyZXQ="
    kwargs: dict[str, Any] = {"proxy_headers": {"Proxy-Authorization": secret}}
    if cls is HTTP11Connection:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(
            str(tls_material.server.cert_path), str(tls_material.server.key_path)
        )
        proxy = _TunnellingProxy(http2=False, tls_context=server_context)
        kwargs["ssl_context"] = tls.init_context(cert_path=str(tls_material.ca_cert_path))
        origin: tuple[str, int, bool] = ("localhost", 443, True)
    else:
        proxy = _TunnellingProxy(http2=True)
        origin = ("origin.invalid", 80, False)
    with scripted_raw_server(proxy) as server:
        host, port, secure = origin
        conn = cls(
            host,
            port,
            secure=secure,
            proxy_host=server.host,
            proxy_port=server.port,
            timeout=TIMEOUT,
            **kwargs,
        )
        conn.request("GET", "/")
        assert conn.get_response().read() == b"through the tunnel"
        conn.close()
    connect_head = proxy.connect_heads[0]
    assert connect_head.startswith(b"CONNECT ")
    assert b"proxy-authorization: " + secret.lower() in connect_head.lower()
    assert proxy.origin_headers, "no request came through the tunnel"
    for name, value in proxy.origin_headers[0]:
        assert name.lower() != b"proxy-authorization"
        assert secret not in value


def test_http11_absolute_form_sends_proxy_headers_to_the_proxy(
    scripted_raw_server: RawFactory,
) -> None:
    """Plain http through a proxy: the request goes to the proxy itself (absolute form), so
    the proxy headers belong in it, and the target is the origin's absolute URL."""
    responder = http11_responder({"http://origin.invalid/": Reply(200, body=b"proxied")})
    with scripted_raw_server(responder) as server:
        conn = HTTP11Connection(
            "origin.invalid",
            80,
            secure=False,
            proxy_host=server.host,
            proxy_port=server.port,
            proxy_headers={"Proxy-Authorization": "Basic eA=="},
            timeout=TIMEOUT,
        )
        conn.request("GET", "/")
        assert conn.get_response().read() == b"proxied"
        conn.close()
    (request,) = responder.requests
    assert request.target == "http://origin.invalid/"
    assert request.header("proxy-authorization") == b"Basic eA=="


def test_requests_adapter_drops_authorization_on_cross_origin_redirect(
    scripted_raw_server: RawFactory,
) -> None:
    """Through hyper's requests adapter, a redirect to another origin does not carry the
    Authorization header along (requests strips it; the adapter must not re-add it)."""
    other = http11_responder({"/landing": Reply(200, body=b"landed")})
    with scripted_raw_server(other) as target:
        location = f"http://localhost:{target.port}/landing".encode()
        first = http11_responder({"/start": Reply(302, [(b"Location", location)])})
        with scripted_raw_server(first) as origin:
            session = requests.Session()
            session.mount("http://", HTTP20Adapter())
            try:
                response = session.get(
                    f"http://127.0.0.1:{origin.port}/start",
                    headers={"Authorization": "Bearer secret-token"},
                    timeout=TIMEOUT,
                )
            finally:
                session.close()
    assert response.status_code == 200
    assert response.content == b"landed"
    assert first.requests[0].header("authorization") == b"Bearer secret-token"
    assert other.requests, "the redirect was not followed"
    for request in other.requests:
        assert request.header("authorization") is None


# -- server push ------------------------------------------------------------------------------


def _client_settings(data: bytes) -> dict[int, int]:
    """The settings in effect after the client's SETTINGS frames (h2 sends its defaults in
    the first one, and hyper's own values follow in a second one, before any request)."""
    assert data.startswith(H2_PREFACE)
    settings: dict[int, int] = {}
    pos = len(H2_PREFACE)
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        if data[pos + 3] == 0x4 and not data[pos + 4] & 0x1:  # SETTINGS, not an ACK
            payload = data[pos + 9 : pos + 9 + length]
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HL", payload[i : i + 6])
                settings[key] = value
        pos += 9 + length
    return settings


def _frame_types(data: bytes) -> list[int]:
    """The types of the complete frames in ``data`` after the preface."""
    types = []
    pos = len(H2_PREFACE)
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        if pos + 9 + length > len(data):
            break
        types.append(data[pos + 3])
        pos += 9 + length
    return types


def test_push_is_disabled_unless_asked_for(scripted_raw_server: RawFactory) -> None:
    """By default the client's SETTINGS say ENABLE_PUSH=0, so a compliant server pushes
    nothing; a push that comes anyway is refused (``tests/test_push.py``), and with
    ``enable_push=True`` only same-origin, safe, same-scheme pushes are accepted (ditto)."""
    received = bytearray()
    done = threading.Event()

    def handler(sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        with contextlib.suppress(OSError):
            # The preface, h2's SETTINGS, hyper's SETTINGS and its WINDOW_UPDATE.
            while 0x8 not in _frame_types(bytes(received)):
                data = sock.recv(65536)
                if not data:
                    break
                received.extend(data)
        done.set()
        _drain(sock)

    with scripted_raw_server(handler) as server:
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
        conn.connect()
        assert done.wait(TIMEOUT)
        conn.close()
    assert _client_settings(bytes(received))[0x2] == 0  # SETTINGS_ENABLE_PUSH


def test_enable_push_true_is_advertised(scripted_raw_server: RawFactory) -> None:
    """The control: with ``enable_push=True`` the effective ENABLE_PUSH is 1, so the test
    above would see the difference."""
    received = bytearray()
    done = threading.Event()

    def handler(sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        with contextlib.suppress(OSError):
            while 0x8 not in _frame_types(bytes(received)):
                data = sock.recv(65536)
                if not data:
                    break
                received.extend(data)
        done.set()
        _drain(sock)

    with scripted_raw_server(handler) as server:
        conn = HTTP20Connection(
            server.host, server.port, secure=False, enable_push=True, timeout=TIMEOUT
        )
        conn.connect()
        assert done.wait(TIMEOUT)
        conn.close()
    assert _client_settings(bytes(received))[0x2] == 1
