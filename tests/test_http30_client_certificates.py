"""Client certificates over HTTP/3 (``cert=``), against Caddy requiring one issued by the
test CA: a request with one succeeds, whichever way the certificate and key are given; one
without, or with a certificate the server does not trust, fails with a TLSError that says
which. In TLS 1.3 the client finishes its handshake before the server has checked its
certificate, so the refusal comes just after the handshake, as the end of the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper import HTTP30Connection
from hyper.common.exceptions import CertificateError, TLSError
from hyper.http30.config import QuicSettings, quic_configuration
from tests.support.certs import TLSMaterial
from tests.support.h3servers import SMALL_BODY, SMALL_FILE, CaddyServer, run_caddy

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def client_cert(tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client certificate issued by the test CA, with its key first in one PEM file (as
    trustme writes it)."""
    path = tmp_path_factory.mktemp("client-cert") / "client.pem"
    tls_material.ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(path)
    return path


@pytest.fixture(scope="module")
def caddy_asks(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CaddyServer]:
    """Caddy serving :data:`SMALL_FILE` over HTTP/3 to clients with a certificate from the
    test CA only."""
    docroot = tmp_path_factory.mktemp("caddy-client-auth-docroot")
    (docroot / SMALL_FILE).write_bytes(SMALL_BODY)
    with run_caddy(
        docroot,
        "",
        tmp_path_factory.mktemp("caddy-client-auth"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
        client_ca=tls_material.ca_cert_path,
    ) as server:
        yield server


def _fetch(server: CaddyServer, cert: object) -> bytes:
    with HTTP30Connection(
        server.host,
        server.port,
        cert_path=server.ca_cert_path,
        cert=cert,  # type: ignore[arg-type]
        timeout=TIMEOUT,
    ) as conn:
        return conn.get_response(conn.request("GET", f"/{SMALL_FILE}")).read()


def test_a_certificate_and_its_key_in_one_file_are_accepted(
    caddy_asks: CaddyServer, client_cert: Path
) -> None:
    assert _fetch(caddy_asks, str(client_cert)) == SMALL_BODY


def test_a_certificate_and_key_in_two_files_are_accepted(
    caddy_asks: CaddyServer, tls_material: TLSMaterial, tmp_path: Path
) -> None:
    leaf = tls_material.ca.issue_cert("client.example")
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(cert_file)
    leaf.private_key_pem.write_to_path(key_file)
    assert _fetch(caddy_asks, (str(cert_file), str(key_file))) == SMALL_BODY


def test_without_a_certificate_the_server_s_refusal_says_one_is_required(
    caddy_asks: CaddyServer,
) -> None:
    with pytest.raises(TLSError) as caught:
        _fetch(caddy_asks, None)
    assert type(caught.value) is TLSError  # not the server's certificate: CertificateError
    assert "requires a client certificate (pass one with cert=)" in str(caught.value)
    assert caddy_asks.authority in str(caught.value)


def test_a_certificate_the_server_does_not_trust_is_refused(
    caddy_asks: CaddyServer, tls_material: TLSMaterial
) -> None:
    with pytest.raises(TLSError) as caught:
        _fetch(caddy_asks, str(tls_material.untrusted.combined_path))
    assert not isinstance(caught.value, CertificateError)
    assert "refused the client certificate hyper sent" in str(caught.value)


def test_the_key_is_loaded_whatever_its_place_in_the_file(
    client_cert: Path, tmp_path: Path
) -> None:
    # trustme writes the key first; the QUIC stack alone would load no key from such a file.
    text = client_cert.read_text()
    key_end = text.index("-----END EC PRIVATE KEY-----\n") + len("-----END EC PRIVATE KEY-----\n")
    key_last = tmp_path / "key-last.pem"
    key_last.write_text(text[key_end:] + text[:key_end])
    for path in (client_cert, key_last):
        configuration, _ = quic_configuration(QuicSettings(server_name="x", cert=str(path)))
        assert configuration.certificate is not None
        assert configuration.private_key is not None


def test_a_certificate_file_without_its_key_is_refused_before_connecting(
    tls_material: TLSMaterial,
) -> None:
    with pytest.raises(TLSError, match="holds no private key"):
        HTTP30Connection(
            "127.0.0.1", 1, cert=str(tls_material.server.cert_path), timeout=TIMEOUT
        ).request("GET", "/")


@pytest.mark.usefixtures("fresh_alt_svc_record")
def test_the_requests_adapter_sends_its_client_certificate_over_http3(
    caddy_asks: CaddyServer, client_cert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = pytest.importorskip("requests")
    from hyper import discovery
    from hyper.contrib import HTTP20Adapter

    # QUIC must win the race: the TCP side has the same certificate and would answer too.
    monkeypatch.setattr(discovery, "HTTP3_HEAD_START", 10.0)
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter(http3=True))
        response = session.get(
            f"https://{caddy_asks.host}:{caddy_asks.tcp_port}/{SMALL_FILE}",
            verify=str(caddy_asks.ca_cert_path),
            cert=str(client_cert),
            timeout=TIMEOUT,
        )
    assert (response.status_code, response.content) == (200, SMALL_BODY)
    assert response.raw.version == 30
