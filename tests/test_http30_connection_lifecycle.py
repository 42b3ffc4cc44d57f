"""HTTP30Connection's connection itself: opening it (certificates, a server that does not
answer over UDP), time-outs, the idle timeout and the new connection after it, closing, and a
100 MiB download in bounded memory.

Servers: hypercorn with HTTP/3 (:mod:`tests.support.h3_app`) and Caddy serving files.
"""

from __future__ import annotations

import hashlib
import random
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper import HTTP30Connection
from hyper.common.exceptions import (
    CertificateError,
    ConnectionClosed,
    ConnectTimeout,
    InvalidRequest,
    ReadTimeout,
    TLSError,
)
from hyper.http30.exceptions import ClosedByCaller
from hyper.http30.exceptions import ConnectionError as HTTP3ConnectionError
from tests.support.certs import TLSMaterial
from tests.support.h3servers import BIG_FILE, BIG_SIZE, CaddyServer, H3Server
from tests.support.udp_peers import UDPPeer, version_negotiation

TIMEOUT = 20.0


@pytest.fixture
def conn(hypercorn_h3_conn: HTTP30Connection) -> HTTP30Connection:
    """A connection to the hypercorn HTTP/3 server, closed after the test."""
    return hypercorn_h3_conn


# -- opening ------------------------------------------------------------------------------------


def test_a_certificate_from_an_unknown_ca_fails_quickly(
    hypercorn_h3: H3Server, tls_material: TLSMaterial
) -> None:
    # Trust a CA that did not issue the server's certificate (the test CA's own certificate
    # is not in certifi's bundle either).
    started = time.monotonic()
    conn = HTTP30Connection(hypercorn_h3.host, hypercorn_h3.port, timeout=TIMEOUT)
    with conn, pytest.raises(CertificateError) as caught:
        conn.request("GET", "/get")
    assert time.monotonic() - started < 5
    assert hypercorn_h3.authority in str(caught.value)
    assert "issuer" in str(caught.value)  # the QUIC stack's reason is in the message
    assert caught.value.safe_to_retry  # nothing of the request left hyper


def test_verification_follows_the_ssl_context(
    hypercorn_h3: H3Server, tls_material: TLSMaterial
) -> None:
    context = ssl.create_default_context(cafile=str(tls_material.ca_cert_path))
    with HTTP30Connection(
        hypercorn_h3.host, hypercorn_h3.port, ssl_context=context, timeout=TIMEOUT
    ) as conn:
        assert conn.get_response(conn.request("GET", "/get")).status == 200
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with HTTP30Connection(
        hypercorn_h3.host, hypercorn_h3.port, ssl_context=unverified, timeout=TIMEOUT
    ) as conn:
        assert conn.get_response(conn.request("GET", "/get")).status == 200


def test_tls_secrets_go_to_sslkeylogfile(
    hypercorn_h3: H3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    with HTTP30Connection(
        hypercorn_h3.host, hypercorn_h3.port, cert_path=hypercorn_h3.ca_cert_path, timeout=TIMEOUT
    ) as conn:
        assert conn.get_response(conn.request("GET", "/get")).status == 200
    labels = {line.split()[0] for line in keylog.read_text().splitlines() if line.strip()}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"} <= labels


def test_certificate_files_that_cannot_be_loaded_are_tls_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    conn = HTTP30Connection("127.0.0.1", 1, cert_path=missing)
    with conn, pytest.raises(TLSError, match="CA certificates"):
        conn.connect()
    conn = HTTP30Connection("127.0.0.1", 1, cert=str(garbage))
    with conn, pytest.raises(TLSError, match="client certificate"):
        conn.connect()
    conn = HTTP30Connection("127.0.0.1", 1, cert_path=tmp_path)  # no hash-named file in it
    with conn, pytest.raises(TLSError, match="rehash"):
        conn.connect()


def test_a_ca_directory_is_read_as_openssl_reads_it(
    hypercorn_h3: H3Server, tmp_path: Path
) -> None:
    hashed = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(hypercorn_h3.ca_cert_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    (tmp_path / f"{hashed}.0").write_bytes(hypercorn_h3.ca_cert_path.read_bytes())
    (tmp_path / "java").mkdir()  # as in Debian's /etc/ssl/certs: not a certificate
    (tmp_path / "README").write_text("not a certificate either")
    with HTTP30Connection(
        hypercorn_h3.host, hypercorn_h3.port, cert_path=tmp_path, timeout=TIMEOUT
    ) as conn:
        assert conn.get_response(conn.request("GET", "/get")).status == 200


def _udp_port_nobody_answers() -> tuple[socket.socket, int]:
    """A bound UDP socket that never answers: datagrams to it vanish, as behind a firewall
    that drops UDP (no ICMP comes back either)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    return sink, sink.getsockname()[1]


def test_a_server_that_does_not_answer_fails_within_the_connect_timeout() -> None:
    sink, port = _udp_port_nobody_answers()
    with sink, HTTP30Connection("127.0.0.1", port, timeout=(0.8, 30)) as conn:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as caught:
            conn.request("GET", "/")
        elapsed = time.monotonic() - started
    assert 0.7 < elapsed < 3
    assert "does not answer over UDP" in str(caught.value)


def test_without_a_connect_timeout_quics_idle_timeout_ends_the_handshake() -> None:
    sink, port = _udp_port_nobody_answers()
    with sink, HTTP30Connection("127.0.0.1", port, timeout=None, idle_timeout=0.6) as conn:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as caught:
            conn.connect()
        assert time.monotonic() - started < 5
    assert "does not answer over UDP" in str(caught.value)


def test_a_port_nobody_listens_on_fails_within_the_connect_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there now: the network answers with ICMP "port unreachable".
    with HTTP30Connection("127.0.0.1", port, timeout=(0.8, 30)) as conn:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as caught:
            conn.connect()
        assert time.monotonic() - started < 3
    assert "unreachable" in str(caught.value)


def test_a_server_offering_no_common_quic_version_fails_at_once() -> None:
    negotiator = UDPPeer(version_negotiation)
    try:
        with HTTP30Connection("127.0.0.1", negotiator.port, timeout=10) as conn:
            started = time.monotonic()
            with pytest.raises(HTTP3ConnectionError) as caught:
                conn.connect()
            assert time.monotonic() - started < 3  # not the connect timeout
    finally:
        negotiator.close()
    assert negotiator.received >= 1
    assert "QUIC version" in str(caught.value)


def test_close_ends_a_handshake_under_way_in_another_thread() -> None:
    sink, port = _udp_port_nobody_answers()
    failures: list[BaseException] = []
    conn = HTTP30Connection("127.0.0.1", port, timeout=30)

    def connect() -> None:
        try:
            conn.connect()
        except BaseException as exc:
            failures.append(exc)

    with sink:
        waiter = threading.Thread(target=connect)
        waiter.start()
        sink.settimeout(10)
        sink.recv(65536)  # the handshake has begun: its first packet arrived
        started = time.monotonic()
        conn.close()
        waiter.join(5)
        assert not waiter.is_alive()
        assert time.monotonic() - started < 3
    assert len(failures) == 1 and isinstance(failures[0], ClosedByCaller)


def test_bad_arguments_are_refused() -> None:
    for kwargs in ({"idle_timeout": 0}, {"max_data": 10}, {"max_stream_data": "big"}):
        with pytest.raises(InvalidRequest):
            HTTP30Connection("localhost", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        HTTP30Connection("localhost", ssl_context="not a context")  # type: ignore[arg-type]


# -- time-outs ----------------------------------------------------------------------------------


def test_a_request_timeout_bounds_its_own_wait_only(conn: HTTP30Connection) -> None:
    slow = conn.request("GET", "/slow/1500", timeout=0.3)
    quick = conn.request("GET", "/bytes/10")
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        conn.get_response(slow)
    assert time.monotonic() - started < 1.2
    assert conn.get_response(quick).read() == random.Random(10).randbytes(10)
    # The request that timed out stays pending: waiting again (0.3 s at a time, as its own
    # timeout says) gets its response once the server sends it.
    for _ in range(20):
        try:
            response = conn.get_response(slow)
            break
        except ReadTimeout:
            continue
    assert response.read() == b"slept 1500ms"
    assert time.monotonic() - started >= 1.5


# -- the idle timeout ---------------------------------------------------------------------------


def test_a_connection_past_its_idle_timeout_is_replaced(hypercorn_h3: H3Server) -> None:
    with HTTP30Connection(
        hypercorn_h3.host,
        hypercorn_h3.port,
        cert_path=hypercorn_h3.ca_cert_path,
        timeout=TIMEOUT,
        idle_timeout=1.0,
    ) as conn:
        assert conn.get_response(conn.request("GET", "/get")).status == 200
        assert not conn.expired  # for 0.75 s: a quarter of the idle timeout is its margin
        # QUIC's idle timer runs while we wait: the connection ends by itself.
        assert conn.wait_closed(5)
        assert conn.expired
        assert conn.connections_opened == 1
        assert conn.get_response(conn.request("GET", "/get")).status == 200
        assert conn.connections_opened == 2


# -- closing ------------------------------------------------------------------------------------


def test_close_keeps_complete_responses_and_ends_the_others(conn: HTTP30Connection) -> None:
    done = conn.get_response(conn.request("GET", "/bytes/1000"))
    head = done.read(10)
    assert done.trailers is None  # reads the rest of the body, which stays readable
    # A request whose body is not finished: the server waits for the rest.
    unfinished = conn.putrequest("PUT", "/echo")
    conn.endheaders(b"part of the body", stream_id=unfinished)
    conn.close()
    assert head + done.read() == random.Random(1000).randbytes(1000)
    with pytest.raises(ClosedByCaller) as caught:
        conn.get_response(unfinished)
    assert isinstance(caught.value, ConnectionClosed)
    assert caught.value.safe_to_retry  # a PUT is idempotent; but close() means no resend
    # A new request opens a new connection.
    assert conn.get_response(conn.request("GET", "/bytes/5")).status == 200
    assert conn.connections_opened == 2


# -- bulk data ----------------------------------------------------------------------------------


def test_a_100_mib_download_in_bounded_memory(caddy_h3: CaddyServer) -> None:
    with HTTP30Connection(
        caddy_h3.host, caddy_h3.port, cert_path=caddy_h3.ca_cert_path, timeout=TIMEOUT
    ) as conn:
        response = conn.get_response(conn.request("GET", f"/{BIG_FILE}"))
        digest = hashlib.sha256()
        size = 0
        tracemalloc.start()
        try:
            for piece in response.read_chunked():
                digest.update(piece)
                size += len(piece)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert size == BIG_SIZE
    assert digest.hexdigest() == caddy_h3.big_sha256
    assert peak < 8 * 1024 * 1024, f"reading in chunks peaked at {peak} bytes"
