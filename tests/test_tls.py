"""TLS: hyper.tls.init_context, certificate verification, ALPN, and network failures."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import pytest
from cryptography.hazmat.primitives import serialization

from hyper import HTTP20Connection, tls
from hyper.common.exceptions import (
    CertificateError,
    ConnectTimeout,
    HyperError,
    ReadTimeout,
    SocketError,
    SocketTimeout,
    TLSError,
)
from hyper.http20.exceptions import HTTP20Error
from hyper.tls import init_context
from tests.support.certs import CertPaths, TLSMaterial
from tests.support.h2conn import ServerConnection
from tests.support.nghttpd import NghttpdServer
from tests.support.scripted import ScriptedRawServer, ScriptedServer, simple_responder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: Failures must be reported quickly, never by a long timeout.
FAST = 5.0


def _get(conn: HTTP20Connection, path: str = "/") -> bytes:
    response = conn.get_response(conn.request("GET", path))
    assert response.status == 200
    return response.read()


def _recv_until_eof(sock: socket.socket) -> None:
    """Handler body: read and ignore everything until the client (or server) closes."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


# -- init_context ------------------------------------------------------------------------------


def test_init_context_defaults() -> None:
    context = init_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert context.options & ssl.OP_NO_COMPRESSION


def test_init_context_loads_certifi_by_default() -> None:
    context = init_context()
    loaded = context.cert_store_stats()["x509_ca"]
    assert loaded > 0
    assert context.get_ca_certs()
    # The whole certifi bundle, nothing more, nothing less.
    reference = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reference.load_verify_locations(cafile=certifi.where())
    assert loaded == reference.cert_store_stats()["x509_ca"]


def test_init_context_cert_path_replaces_certifi(ca_cert_path: Path) -> None:
    for path in (str(ca_cert_path), ca_cert_path):
        context = init_context(cert_path=path)
        assert context.cert_store_stats()["x509_ca"] == 1
        (ca,) = context.get_ca_certs()
        assert ("organizationName", "hyper test CA") in [
            pair for rdn in ca["subject"] for pair in rdn
        ]


def test_cert_path_works_against_nghttpd(nghttpd_tls: NghttpdServer) -> None:
    context = init_context(cert_path=str(nghttpd_tls.ca_cert_path))
    with HTTP20Connection(
        nghttpd_tls.host, nghttpd_tls.port, secure=True, ssl_context=context, timeout=10
    ) as conn:
        body = _get(conn, "/64k.bin")
    assert hashlib.sha256(body).hexdigest() == nghttpd_tls.files["64k.bin"]


def test_cert_path_directory_works_against_nghttpd(
    nghttpd_tls: NghttpdServer, ca_cert_path: Path, tmp_path: Path
) -> None:
    subject_hash = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash", "-in", str(ca_cert_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    (tmp_path / f"{subject_hash}.0").write_bytes(ca_cert_path.read_bytes())
    context = init_context(cert_path=str(tmp_path))
    with HTTP20Connection(
        "localhost", nghttpd_tls.port, secure=True, ssl_context=context, timeout=10
    ) as conn:
        assert _get(conn, "/index.html") == nghttpd_tls.read("index.html")


def test_default_context_does_not_trust_the_test_ca(nghttpd_tls: NghttpdServer) -> None:
    # No ssl_context: hyper's shared default context (certifi) is used.
    assert tls.default_context() is tls.default_context()
    conn = HTTP20Connection(nghttpd_tls.host, nghttpd_tls.port, secure=True, timeout=10)
    with pytest.raises(CertificateError, match="unable to get local issuer"):
        conn.request("GET", "/1k.bin")
    conn.close()


def test_wrap_socket_negotiates_and_verifies(nghttpd_tls: NghttpdServer) -> None:
    """hyper.tls.wrap_socket, the blocking handshake: ALPN h2 with the test CA; the same
    server refused with CertificateError under certifi, its socket closed."""
    context = init_context(cert_path=str(nghttpd_tls.ca_cert_path))
    raw = socket.create_connection((nghttpd_tls.host, nghttpd_tls.port), timeout=10)
    tls_sock, proto = tls.wrap_socket(raw, "localhost", context)
    with tls_sock:
        assert isinstance(tls_sock, ssl.SSLSocket)
        assert proto == "h2"
    raw = socket.create_connection((nghttpd_tls.host, nghttpd_tls.port), timeout=10)
    with pytest.raises(CertificateError, match="unable to get local issuer") as info:
        tls.wrap_socket(raw, "localhost")
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert raw.fileno() == -1  # closed


def test_missing_ca_file_raises_tls_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(TLSError) as info:
        init_context(cert_path=str(missing))
    assert isinstance(info.value, HyperError)
    assert "no-such-ca.pem" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_garbage_ca_file_raises_tls_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n")
    with pytest.raises(TLSError):
        init_context(cert_path=garbage)


# -- client certificates -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_cert(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A client certificate from the test CA, as combined PEM, cert + key, and encrypted keys."""
    directory = tmp_path_factory.mktemp("client-cert")
    leaf = tls_material.ca.issue_cert("client.hyper.test")
    paths = {
        "cert": directory / "client.pem",
        "key": directory / "client.key",
        "combined": directory / "client.combined.pem",
        "encrypted_key": directory / "client.enc.key",
        "encrypted_combined": directory / "client.enc.combined.pem",
        "unicode_key": directory / "client.unicode.key",
    }
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    paths["cert"].write_bytes(chain)
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(paths["combined"]))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)

    def encrypted(password: bytes) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )

    paths["encrypted_key"].write_bytes(encrypted(b"s3cret"))
    paths["encrypted_combined"].write_bytes(encrypted(b"s3cret") + chain)
    paths["unicode_key"].write_bytes(encrypted("pässwörd☃".encode()))
    return paths


def _client_auth_server(
    scripted_server: Callable[..., ScriptedServer], ca_cert_path: Path, seen: list[Any]
) -> ScriptedServer:
    """A TLS h2 server that requires a client certificate and records the one it got."""
    responder = simple_responder({"/": b"hello client"})

    def handler(ctx: ServerConnection) -> None:
        assert isinstance(ctx.sock, ssl.SSLSocket)
        seen.append(ctx.sock.getpeercert())
        responder(ctx)

    server = scripted_server(handler, tls=True)
    assert server.ssl_context is not None
    server.ssl_context.verify_mode = ssl.CERT_REQUIRED
    server.ssl_context.load_verify_locations(cafile=str(ca_cert_path))
    return server


def _subject_alt_names(cert: dict[str, Any]) -> list[str]:
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]


@pytest.mark.parametrize(
    "form",
    ["combined", "pair", "encrypted-str", "encrypted-bytes", "encrypted-callable", "enc-combined"],
)
def test_client_certificate_is_presented(
    form: str,
    client_cert: dict[str, Path],
    ca_cert_path: Path,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    calls: list[int] = []

    def password() -> str:
        calls.append(1)
        return "s3cret"

    options: dict[str, Any] = {
        "combined": {"cert": str(client_cert["combined"])},
        "pair": {"cert": (str(client_cert["cert"]), str(client_cert["key"]))},
        "encrypted-str": {
            "cert": (str(client_cert["cert"]), str(client_cert["encrypted_key"])),
            "cert_password": "s3cret",
        },
        "encrypted-bytes": {
            "cert": (str(client_cert["cert"]), str(client_cert["encrypted_key"])),
            "cert_password": b"s3cret",
        },
        "encrypted-callable": {
            "cert": (str(client_cert["cert"]), str(client_cert["encrypted_key"])),
            "cert_password": password,
        },
        "enc-combined": {
            "cert": str(client_cert["encrypted_combined"]),
            "cert_password": "s3cret",
        },
    }[form]
    context = init_context(cert_path=str(ca_cert_path), **options)
    seen: list[Any] = []
    with _client_auth_server(scripted_server, ca_cert_path, seen) as server:
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        )
        with conn:
            assert _get(conn) == b"hello client"
    assert len(seen) == 1
    assert _subject_alt_names(seen[0]) == ["client.hyper.test"]
    if form == "encrypted-callable":
        assert calls == [1]


def test_password_callable_not_called_for_plain_key(
    client_cert: dict[str, Path], ca_cert_path: Path
) -> None:
    calls: list[int] = []

    def password() -> bytes:
        calls.append(1)
        return b"unused"

    init_context(cert_path=ca_cert_path, cert=str(client_cert["combined"]), cert_password=password)
    assert calls == []


def test_non_ascii_str_password_is_utf8(client_cert: dict[str, Path], ca_cert_path: Path) -> None:
    pair = (str(client_cert["cert"]), str(client_cert["unicode_key"]))
    init_context(cert_path=ca_cert_path, cert=pair, cert_password="pässwörd☃")
    init_context(cert_path=ca_cert_path, cert=pair, cert_password=bytearray("pässwörd☃".encode()))
    with pytest.raises(TLSError):
        init_context(
            cert_path=ca_cert_path,
            cert=pair,
            cert_password="pässwörd☃".encode("latin-1", "replace"),
        )


@pytest.mark.parametrize("password", ["wrong", b"wrong", lambda: "wrong"], ids=type)
def test_wrong_key_password_raises_tls_error(
    client_cert: dict[str, Path], ca_cert_path: Path, password: Any
) -> None:
    pair = (str(client_cert["cert"]), str(client_cert["encrypted_key"]))
    with pytest.raises(TLSError) as info:
        init_context(cert_path=ca_cert_path, cert=pair, cert_password=password)
    assert isinstance(info.value.__cause__, ssl.SSLError)


def test_bad_client_certificate_files_raise_tls_error(
    client_cert: dict[str, Path], ca_cert_path: Path, tmp_path: Path
) -> None:
    # A certificate without its key.
    with pytest.raises(TLSError):
        init_context(cert_path=ca_cert_path, cert=str(client_cert["cert"]))
    # Files that do not exist.
    with pytest.raises(TLSError):
        init_context(cert_path=ca_cert_path, cert=str(tmp_path / "nope.pem"))
    with pytest.raises(TLSError):
        init_context(cert_path=ca_cert_path, cert=(str(client_cert["cert"]), str(tmp_path / "k")))


def test_sslkeylogfile(
    nghttpd_tls: NghttpdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    context = init_context(cert_path=str(nghttpd_tls.ca_cert_path))
    assert context.keylog_filename == str(keylog)
    with HTTP20Connection(
        nghttpd_tls.host, nghttpd_tls.port, secure=True, ssl_context=context, timeout=10
    ) as conn:
        assert _get(conn, "/1k.bin") == nghttpd_tls.read("1k.bin")
    lines = keylog.read_text().splitlines()
    assert lines
    client_lines = [line for line in lines if line.startswith("CLIENT_")]
    assert client_lines
    # NSS key log format: LABEL <64 hex client random> <hex secret>
    _label, client_random, secret = client_lines[0].split(" ")
    assert len(client_random) == 64
    int(client_random, 16)
    int(secret, 16)


def test_no_keylog_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    assert init_context().keylog_filename is None


# -- certificate verification against scripted servers ---------------------------------------


BAD_CERTS = [
    ("wrong_host_cert", "(Hostname|IP address) mismatch"),
    ("expired_cert", "expired"),
    ("untrusted_cert", "unable to get local issuer"),
]


@pytest.mark.parametrize(("cert_fixture", "reason"), BAD_CERTS)
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_bad_certificate_raises_certificate_error(
    cert_fixture: str,
    reason: str,
    host: str,
    request: pytest.FixtureRequest,
    ca_cert_path: Path,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    cert: CertPaths = request.getfixturevalue(cert_fixture)
    responder = simple_responder({"/": b"should not be seen"})
    with scripted_server(responder, tls=True, cert=cert) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(host, server.port, secure=True, ssl_context=context, timeout=10)
        start = time.monotonic()
        with pytest.raises(CertificateError) as info:
            conn.request("GET", "/")
        assert time.monotonic() - start < FAST
        conn.close()
    error = info.value
    assert isinstance(error, HyperError)
    assert isinstance(error, TLSError)
    assert re.search(reason, str(error))
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
    assert responder.requests == []


@pytest.mark.parametrize("cert_fixture", ["wrong_host_cert", "expired_cert", "untrusted_cert"])
def test_verification_can_be_disabled(
    cert_fixture: str,
    request: pytest.FixtureRequest,
    ca_cert_path: Path,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    cert: CertPaths = request.getfixturevalue(cert_fixture)
    responder = simple_responder({"/": b"unverified but here"})
    context = init_context(cert_path=str(ca_cert_path))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with scripted_server(responder, tls=True, cert=cert) as server:
        with HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        ) as conn:
            assert _get(conn) == b"unverified but here"
        assert server.connections[0].alpn_protocol == "h2"
    assert [r.path for r in responder.requests] == ["/"]


def test_hostname_check_alone_can_be_disabled(
    wrong_host_cert: CertPaths,
    expired_cert: CertPaths,
    ca_cert_path: Path,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    context = init_context(cert_path=str(ca_cert_path))
    context.check_hostname = False  # the chain is still verified
    responder = simple_responder({"/": b"ok"})
    with (
        scripted_server(responder, tls=True, cert=wrong_host_cert) as srv,
        HTTP20Connection("localhost", srv.port, secure=True, ssl_context=context, timeout=5) as c,
    ):
        assert _get(c) == b"ok"
    with scripted_server(simple_responder({"/": b"ok"}), tls=True, cert=expired_cert) as srv:
        conn = HTTP20Connection("localhost", srv.port, secure=True, ssl_context=context, timeout=5)
        with pytest.raises(CertificateError, match="expired"):
            conn.connect()
        conn.close()


def test_good_certificate_negotiates_h2(
    ca_cert_path: Path, scripted_server: Callable[..., ScriptedServer]
) -> None:
    responder = simple_responder({"/": b"good"})
    with scripted_server(responder, tls=True) as server:
        context = init_context(cert_path=str(ca_cert_path))
        for host in ("localhost", "127.0.0.1"):
            with HTTP20Connection(
                host, server.port, secure=True, ssl_context=context, timeout=5
            ) as conn:
                assert _get(conn) == b"good"
        assert [c.alpn_protocol for c in server.connections] == ["h2", "h2"]
    authorities = [r.header(b":authority") for r in responder.requests]
    assert authorities == [
        f"localhost:{server.port}".encode(),
        f"127.0.0.1:{server.port}".encode(),
    ]
    assert [r.header(b":scheme") for r in responder.requests] == [b"https", b"https"]


# -- ALPN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpn", [("http/1.1",), None], ids=["http1.1-only", "no-alpn"])
def test_server_without_h2_raises_http20_error(
    alpn: tuple[str, ...] | None,
    ca_cert_path: Path,
    scripted_raw_server: Callable[..., ScriptedRawServer],
) -> None:
    with scripted_raw_server(_recv_until_eof, tls=True, alpn=alpn) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=5
        )
        start = time.monotonic()
        with pytest.raises(HTTP20Error, match="HTTP/2") as info:
            conn.request("GET", "/")
        assert time.monotonic() - start < FAST
        conn.close()
    assert isinstance(info.value, HyperError)
    assert not isinstance(info.value, SocketError)
    assert repr(alpn[0] if alpn else None) in str(info.value)


def test_force_proto_h2_proceeds(
    ca_cert_path: Path, scripted_raw_server: Callable[..., ScriptedRawServer]
) -> None:
    received: list[bytes] = []

    def handler(sock: socket.socket) -> None:
        data = b""
        while len(data) < len(PREFACE):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        received.append(data)
        # ... and hang up without answering.

    with scripted_raw_server(handler, tls=True, alpn=("http/1.1",)) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "localhost",
            server.port,
            secure=True,
            ssl_context=context,
            timeout=5,
            force_proto="h2",
        )
        start = time.monotonic()
        with pytest.raises(HyperError) as info:
            # POST: a GET would be tried once more after the server hung up.
            conn.get_response(conn.request("POST", "/", body=b"x"))
        assert time.monotonic() - start < FAST
        conn.close()
        server.join_handlers()
    assert "did not negotiate" not in str(info.value)
    assert not isinstance(info.value, SocketTimeout)
    # Once, or twice when hyper noticed the hang-up before sending and tried a new connection.
    assert 1 <= len(received) <= 3
    assert all(data.startswith(PREFACE) for data in received)


# -- network failures ----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("secure", [False, True])
def test_connection_refused(secure: bool, ca_cert_path: Path) -> None:
    port = _closed_port()
    context = init_context(cert_path=str(ca_cert_path)) if secure else None
    conn = HTTP20Connection("127.0.0.1", port, secure=secure, ssl_context=context, timeout=5)
    start = time.monotonic()
    with pytest.raises(SocketError) as info:
        conn.request("GET", "/")
    assert time.monotonic() - start < FAST
    assert isinstance(info.value, HyperError)
    assert not isinstance(info.value, SocketTimeout)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    with pytest.raises(SocketError):
        conn.connect()


@pytest.mark.parametrize("secure", [False, True])
def test_read_timeout(
    secure: bool, ca_cert_path: Path, scripted_raw_server: Callable[..., ScriptedRawServer]
) -> None:
    # The server accepts (and completes TLS with ALPN h2) but never says a word.
    alpn = ("h2",) if secure else None
    with scripted_raw_server(_recv_until_eof, tls=secure, alpn=alpn) as server:
        context = init_context(cert_path=str(ca_cert_path)) if secure else None
        conn = HTTP20Connection(
            "127.0.0.1",
            server.port,
            secure=secure,
            ssl_context=context,
            timeout=(0.5, 0.5),
        )
        start = time.monotonic()
        with pytest.raises(ReadTimeout) as info:
            conn.get_response(conn.request("GET", "/"))
        elapsed = time.monotonic() - start
        conn.close()
    assert 0.4 <= elapsed < 2.0
    assert isinstance(info.value, SocketTimeout)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, HyperError)
    assert not isinstance(info.value, ConnectTimeout)


def test_tls_handshake_timeout_is_connect_timeout(
    ca_cert_path: Path, scripted_raw_server: Callable[..., ScriptedRawServer]
) -> None:
    # A plaintext server that never answers the ClientHello.
    with scripted_raw_server(_recv_until_eof) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "127.0.0.1",
            server.port,
            secure=True,
            ssl_context=context,
            timeout=(0.5, 10),
        )
        start = time.monotonic()
        with pytest.raises(ConnectTimeout):
            conn.connect()
        elapsed = time.monotonic() - start
        conn.close()
    assert 0.4 <= elapsed < 2.0


def test_tls_garbage_from_server_is_tls_error(
    ca_cert_path: Path, scripted_raw_server: Callable[..., ScriptedRawServer]
) -> None:
    def handler(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with scripted_raw_server(handler) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "127.0.0.1", server.port, secure=True, ssl_context=context, timeout=5
        )
        with pytest.raises(TLSError) as info:
            conn.connect()
        conn.close()
    assert not isinstance(info.value, CertificateError)
