"""The operating system's trust store, ``trust="system"``: which context each system gets,
that it trusts what the system's store holds (and only that), over TCP, HTTP/3, the requests
adapter and the command line, and that everything else a context carries (ALPN, versions,
cipher suites, ``SSLKEYLOGFILE``) works through it.

No test touches the machine's own store. OpenSSL takes its default CA file and directory
from ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` when they are set, read at the moment a store is
loaded, so a test points them at the test CA (or at certifi's bundle, which does not hold
it) for its own duration; the command line's test also runs hyper in a subprocess with them
set.

Both ways to the system store run here whatever the system: the CA files hyper loads itself
(Linux, the BSDs) and truststore's context (what macOS and Windows get; on Linux truststore
reads the same files before each handshake), chosen through ``hyper.tls.OS_VERIFIER``.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import certifi
import pytest

from hyper import HTTPConnection, tls
from hyper.common.exceptions import (
    CertificateError,
    InvalidRequest,
    TLSError,
    TrustStoreUnavailable,
)
from tests.support.certs import CertPaths
from tests.support.cli import assert_one_line_error, err_text, run_cli, run_cli_process
from tests.support.h2conn import PeerClosed
from tests.support.h3servers import H3Server
from tests.support.http2bin import Http2binServer
from tests.support.http11 import read_request, send_response
from tests.support.nghttpd import NghttpdServer
from tests.support.processes import in_ci
from tests.support.scripted import ScriptedRawServer

if not in_ci():  # in CI (the test extra installs it) a missing truststore is a failure
    pytest.importorskip("truststore", reason="truststore's context needs the truststore package")
import truststore  # imported before OS_VERIFIER is patched: for this platform

TIMEOUT = 10.0

#: Points the system trust store at a CA file (and a CA directory, empty unless given).
PointStore = Callable[..., None]


@pytest.fixture(params=["files", "truststore"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``files``: the CA files hyper loads itself (Linux, the BSDs); ``truststore``: the
    truststore context macOS and Windows get."""
    monkeypatch.setattr(tls, "OS_VERIFIER", request.param == "truststore")
    return str(request.param)


@pytest.fixture
def system_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PointStore:
    """A function pointing OpenSSL's default CA file and directory (the system store on
    Linux) elsewhere for this test."""
    empty = tmp_path / "empty-ca-directory"
    empty.mkdir()

    def point(cafile: Path | str, capath: Path | None = None) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
        monkeypatch.setenv("SSL_CERT_DIR", str(capath or empty))

    return point


def _get(port: int, context: ssl.SSLContext, path: str = "/") -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1 over TLS: the status and the protocol spoken."""
    with HTTPConnection("127.0.0.1", port, secure=True, ssl_context=context, timeout=TIMEOUT) as c:
        response = c.get_response(c.request("GET", path))
        response.read()
        return response.status, c.version.value


# -- choosing the store --------------------------------------------------------------------------


def test_trust_is_certifi_or_system() -> None:
    with pytest.raises(InvalidRequest, match="trust must be 'certifi' or 'system', not 'os'"):
        tls.init_context(trust="os")
    with pytest.raises(ValueError):  # InvalidRequest is one
        tls.check_trust("System")


def test_cert_path_cannot_be_combined_with_the_system_store(ca_cert_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot be combined with trust='system'"):
        tls.init_context(ca_cert_path, trust="system")


def test_each_system_gets_its_kind_of_context(backend: str) -> None:
    context = tls.init_context(trust="system")
    if backend == "files":
        assert type(context) is tls.SystemTrustContext
    else:
        assert isinstance(context, truststore.SSLContext)
    assert isinstance(context, ssl.SSLContext)
    assert tls.uses_system_trust(context)
    assert not tls.uses_system_trust(tls.init_context())
    assert not tls.uses_system_trust(ssl.create_default_context())


def test_truststore_is_needed_only_where_the_store_is_the_os_verifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "truststore", None)  # as if it were not installed
    monkeypatch.setattr(tls, "OS_VERIFIER", False)
    assert type(tls.init_context(trust="system")) is tls.SystemTrustContext
    monkeypatch.setattr(tls, "OS_VERIFIER", True)
    with pytest.raises(TrustStoreUnavailable) as caught:
        tls.init_context(trust="system")
    assert isinstance(caught.value, ImportError)
    assert "pip install 'hyper[truststore]'" in str(caught.value)


def _hashed_directory(tmp_path: Path, ca_cert_path: Path) -> Path:
    """A CA directory as ``c_rehash`` makes it, holding the test CA, with a subdirectory (as
    Debian's /etc/ssl/certs has ``java/``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to name a certificate by its subject hash")
    found = subprocess.run(
        [openssl, "x509", "-noout", "-subject_hash", "-in", str(ca_cert_path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    directory = tmp_path / "hashed"
    (directory / "java").mkdir(parents=True)
    shutil.copy(ca_cert_path, directory / f"{found.stdout.strip()}.0")
    return directory


def test_the_system_store_is_openssl_s_default_file_and_directory(
    system_store: PointStore, ca_cert_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "OS_VERIFIER", False)
    hashed = _hashed_directory(tmp_path, ca_cert_path)
    system_store(ca_cert_path, hashed)
    assert tls.system_ca_locations() == (str(ca_cert_path), str(hashed))
    system_store(ca_cert_path)  # a directory without hashed names is no store
    assert tls.system_ca_locations() == (str(ca_cert_path), None)
    system_store(tmp_path / "missing.pem", hashed)
    assert tls.system_ca_locations() == (None, str(hashed))
    assert tls.hashed_certificate_files(str(hashed)) == [str(path) for path in hashed.glob("*.0")]
    monkeypatch.setattr(tls, "OS_VERIFIER", True)
    with pytest.raises(TLSError, match="not CA files"):
        tls.system_ca_locations()


# -- over TCP ------------------------------------------------------------------------------------


def test_the_system_store_trusts_what_it_holds(
    backend: str, system_store: PointStore, nghttpd_tls: NghttpdServer, ca_cert_path: Path
) -> None:
    system_store(ca_cert_path)
    assert _get(nghttpd_tls.port, tls.init_context(trust="system")) == (200, "HTTP/2")
    with pytest.raises(CertificateError, match="local issuer"):
        _get(nghttpd_tls.port, tls.init_context())  # certifi's bundle lacks the test CA


def test_the_system_store_trusts_nothing_else(
    backend: str, system_store: PointStore, nghttpd_tls: NghttpdServer, ca_cert_path: Path
) -> None:
    system_store(certifi.where())  # a store without the test CA
    with pytest.raises(CertificateError, match="local issuer"):
        _get(nghttpd_tls.port, tls.init_context(trust="system"))
    assert _get(nghttpd_tls.port, tls.init_context(ca_cert_path))[0] == 200


def test_a_hashed_ca_directory_alone_is_a_store(
    backend: str,
    system_store: PointStore,
    nghttpd_tls: NghttpdServer,
    ca_cert_path: Path,
    tmp_path: Path,
) -> None:
    system_store(tmp_path / "missing.pem", _hashed_directory(tmp_path, ca_cert_path))
    assert _get(nghttpd_tls.port, tls.init_context(trust="system"))[0] == 200


@pytest.fixture
def raw_tls_server() -> Iterator[Callable[..., ScriptedRawServer]]:
    """Factory: a TLS server with ``cert`` offering ``alpn`` (default ``http/1.1``) that
    answers one HTTP/1.1 request per connection; its ``ssl_context`` may be changed before it
    is started."""
    servers: list[ScriptedRawServer] = []

    def answer(sock: socket.socket) -> None:
        try:
            read_request(sock, TIMEOUT)
        except PeerClosed:  # a handshake-only client
            return
        send_response(sock, 200, body=b"ok")

    def make(cert: CertPaths, alpn: tuple[str, ...] = ("http/1.1",)) -> ScriptedRawServer:
        server = ScriptedRawServer(
            answer, tls=True, certfile=cert.cert_path, keyfile=cert.key_path, alpn=alpn
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_host_name_and_validity_are_still_checked(
    backend: str,
    system_store: PointStore,
    ca_cert_path: Path,
    raw_tls_server: Callable[..., ScriptedRawServer],
    wrong_host_cert: CertPaths,
    expired_cert: CertPaths,
) -> None:
    system_store(ca_cert_path)
    for cert, reason in ((wrong_host_cert, "Hostname mismatch"), (expired_cert, "expired")):
        with raw_tls_server(cert) as server:
            sock = socket.create_connection(server.address, timeout=TIMEOUT)
            with pytest.raises(CertificateError, match=reason):
                tls.start_tls(sock, "localhost", tls.init_context(trust="system"))


def test_alpn_versions_and_cipher_suites_go_through_the_context(
    backend: str,
    system_store: PointStore,
    ca_cert_path: Path,
    raw_tls_server: Callable[..., ScriptedRawServer],
    server_cert: CertPaths,
) -> None:
    system_store(ca_cert_path)
    with raw_tls_server(server_cert, ("h2", "http/1.1")) as server:
        context = tls.init_context(trust="system")
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.options & ssl.OP_NO_COMPRESSION
        assert not context.hostname_checks_common_name
        sock = socket.create_connection(server.address, timeout=TIMEOUT)
        channel, proto = tls.start_tls(sock, "localhost", context)
        channel.sock.close()
        assert (proto, channel.version()) == ("h2", "TLSv1.3")

        context = tls.init_context(trust="system")
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE+CHACHA20")
        context.set_alpn_protocols(["http/1.1"])
        sock = socket.create_connection(server.address, timeout=TIMEOUT)
        channel, proto = tls.start_tls(sock, "localhost", context)
        channel.sock.close()
        cipher = channel.cipher()
        assert cipher is not None
        assert (proto, channel.version()) == ("http/1.1", "TLSv1.2")
        assert "CHACHA20" in cipher[0]


def _secrets(path: Path) -> set[str]:
    """The key log's secret lines (OpenSSL starts it with a comment)."""
    return {line for line in path.read_text().splitlines() if line and not line.startswith("#")}


def test_sslkeylogfile_gets_the_same_secrets_as_the_server(
    backend: str,
    system_store: PointStore,
    ca_cert_path: Path,
    raw_tls_server: Callable[..., ScriptedRawServer],
    server_cert: CertPaths,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system_store(ca_cert_path)
    client_log, server_log = tmp_path / "client.keys", tmp_path / "server.keys"
    monkeypatch.setenv("SSLKEYLOGFILE", str(client_log))
    context = tls.init_context(trust="system")
    assert context.keylog_filename == str(client_log)
    server = raw_tls_server(server_cert)
    assert server.ssl_context is not None
    server.ssl_context.keylog_filename = str(server_log)
    with server:
        # hyper's connections (memory buffers), and a TLS socket (tls.wrap_socket).
        assert _get(server.port, context) == (200, "HTTP/1.1")
        sock = socket.create_connection(server.address, timeout=TIMEOUT)
        tls_sock, _ = tls.wrap_socket(sock, "localhost", context)
        tls_sock.close()
    secrets = _secrets(client_log)
    assert {line.split()[0] for line in secrets} >= {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    }
    assert len({line.split()[1] for line in secrets}) == 2  # two handshakes' client randoms
    assert secrets == _secrets(server_log)  # the very secrets the server used


# -- over HTTP/3 ---------------------------------------------------------------------------------


@pytest.fixture
def http3() -> None:
    """Skips (outside CI) without the QUIC stack."""
    if not in_ci():
        pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")


def _get_h3(host: str, port: int, **kwargs: object) -> int:
    from hyper import HTTP30Connection

    with HTTP30Connection(host, port, timeout=TIMEOUT, **kwargs) as conn:  # type: ignore[arg-type]
        response = conn.get_response(conn.request("GET", "/get"))
        response.read()
        return response.status


def test_http3_trusts_the_same_ca_files(
    http3: None,
    hypercorn_h3: H3Server,
    system_store: PointStore,
    ca_cert_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tls, "OS_VERIFIER", False)
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    system_store(ca_cert_path)
    context = tls.init_context(trust="system")
    assert _get_h3(hypercorn_h3.host, hypercorn_h3.port, ssl_context=context) == 200
    assert "CLIENT_TRAFFIC_SECRET_0" in keylog.read_text()
    system_store(certifi.where())
    # The context's CAs were read when it was made, for QUIC as for TCP.
    assert _get_h3(hypercorn_h3.host, hypercorn_h3.port, ssl_context=context) == 200
    with pytest.raises(CertificateError):
        _get_h3(hypercorn_h3.host, hypercorn_h3.port, ssl_context=tls.init_context(trust="system"))
    # A hashed directory (with a subdirectory in it) alone.
    system_store(tmp_path / "missing.pem", _hashed_directory(tmp_path, ca_cert_path))
    context = tls.init_context(trust="system")
    assert _get_h3(hypercorn_h3.host, hypercorn_h3.port, ssl_context=context) == 200


def test_http3_refuses_the_os_verifier_unless_given_cas(
    http3: None,
    hypercorn_h3: H3Server,
    ca_cert_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tls, "OS_VERIFIER", True)
    context = tls.init_context(trust="system")
    with pytest.raises(TLSError, match="HTTP/3 cannot verify with the system trust store") as c:
        _get_h3(hypercorn_h3.host, hypercorn_h3.port, ssl_context=context)
    assert "cert_path" in str(c.value)
    assert not isinstance(c.value, CertificateError)  # nothing was sent
    status = _get_h3(
        hypercorn_h3.host, hypercorn_h3.port, ssl_context=context, cert_path=ca_cert_path
    )
    assert status == 200


# -- the requests adapter and the command line ---------------------------------------------------


def test_the_adapter_trusts_the_system_store_when_told(
    system_store: PointStore,
    http2bin_tls: Http2binServer,
    ca_cert_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests' verify=path for all
        monkeypatch.delenv(name, raising=False)
    system_store(ca_cert_path)
    url = http2bin_tls.url("/get")
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter(trust="system"))
        assert session.get(url, timeout=TIMEOUT).status_code == 200
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter())  # certifi's bundle, as requests
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, timeout=TIMEOUT)
    system_store(certifi.where())
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter(trust="system"))
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, timeout=TIMEOUT)
        # A CA bundle named for the request is trusted alone.
        assert session.get(url, timeout=TIMEOUT, verify=str(ca_cert_path)).status_code == 200
    with pytest.raises(InvalidRequest, match="trust must be"):
        HTTP20Adapter(trust="os")


def test_the_command_line_trusts_the_system_store_with_trust_system(
    http2bin_tls: Http2binServer, ca_cert_path: Path, tmp_path: Path
) -> None:
    store = {"SSL_CERT_FILE": str(ca_cert_path), "SSL_CERT_DIR": str(tmp_path)}
    url = http2bin_tls.url("/get")
    result = run_cli_process("--trust-system", url, env=store)  # a process of its own
    assert result.returncode == 0, err_text(result)
    assert b'"url"' in result.stdout
    result = run_cli("--trust-system", "--http1.1", url, env=store)
    assert result.returncode == 0, err_text(result)
    line = assert_one_line_error(run_cli(url, env=store), 1)  # certifi's bundle
    assert "certificate verification failed" in line


def test_the_command_line_s_trust_options_exclude_each_other(ca_cert_path: Path) -> None:
    result = run_cli("--trust-system", "--cacert", ca_cert_path, "https://127.0.0.1:1/")
    assert result.returncode == 2
    assert "--cacert: not allowed with argument --trust-system" in err_text(result)


def test_the_command_line_says_how_to_install_truststore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "truststore", None)
    monkeypatch.setattr(tls, "OS_VERIFIER", True)
    result = run_cli("--trust-system", "https://127.0.0.1:1/")
    assert result.returncode == 2
    assert "--trust-system: trust='system' needs the truststore package" in err_text(result)
    assert "pip install 'hyper[truststore]'" in err_text(result)
