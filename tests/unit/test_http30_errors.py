"""How the end of a QUIC connection becomes a hyper exception (hyper.http30.errors): what
the handshake's failures, the idle timeout, a stateless reset and the error codes of QUIC,
HTTP/3 and QPACK (RFC 9000 section 20, RFC 9114 section 8.1, RFC 9204 section 6) say."""

from __future__ import annotations

import pytest

from hyper.common.exceptions import (
    CertificateError,
    ConnectionClosed,
    ConnectTimeout,
    HyperError,
    TLSError,
)
from hyper.http30.errors import H3ErrorCode, code_name, termination_error
from hyper.http30.exceptions import ConnectionError, ProtocolError, QPACKError

ORIGIN = "example.test:443"


def _error(code: int, reason: str = "", established: bool = True) -> HyperError:
    return termination_error(code, reason, established=established, origin=ORIGIN)


@pytest.mark.parametrize("alert", [42, 45, 48])
def test_a_refused_certificate_is_a_certificate_error(alert: int) -> None:
    error = _error(0x100 + alert, "unable to get local issuer certificate", established=False)
    assert type(error) is CertificateError
    assert ORIGIN in str(error) and "unable to get local issuer certificate" in str(error)


def test_another_alert_during_the_handshake_is_a_tls_error() -> None:
    error = _error(0x100 + 40, "handshake_failure", established=False)  # handshake_failure
    assert type(error) is TLSError
    assert "alert 40" in str(error)


@pytest.mark.parametrize(
    ("client_certificate", "says"),
    [
        (False, "requires a client certificate (pass one with cert=)"),
        (True, "refused the client certificate hyper sent"),
    ],
)
@pytest.mark.parametrize("alert", [42, 116])
def test_a_certificate_alert_after_the_handshake_is_about_the_client_certificate(
    alert: int, client_certificate: bool, says: str
) -> None:
    # TLS 1.3: the server checks the client's certificate after the client has finished.
    error = termination_error(
        0x100 + alert,
        "",
        established=True,
        origin=ORIGIN,
        transport=True,
        client_certificate=client_certificate,
    )
    assert type(error) is TLSError
    assert says in str(error) and f"alert {alert} (" in str(error) and ORIGIN in str(error)


def test_another_alert_after_the_handshake_is_a_tls_error() -> None:
    error = termination_error(0x10A, "", established=True, origin=ORIGIN, transport=True)
    assert type(error) is TLSError
    assert "alert 10 (unexpected_message)" in str(error)


def test_an_application_close_in_the_same_numbers_is_http3s() -> None:
    # Without the transport flag 0x10A is H3_MISSING_SETTINGS, not a TLS alert.
    assert type(_error(0x10A)) is ProtocolError


def test_the_idle_timeout_during_the_handshake_is_a_connect_timeout() -> None:
    assert type(_error(1, "Idle timeout", established=False)) is ConnectTimeout


def test_the_idle_timeout_later_closes_the_connection() -> None:
    error = _error(1, "Idle timeout")
    assert type(error) is ConnectionClosed
    assert "idle" in str(error)


def test_a_stateless_reset_closes_the_connection() -> None:
    assert type(_error(0, "Stateless reset")) is ConnectionClosed


def test_no_common_version_is_a_connection_error() -> None:
    error = _error(1, "Could not find a common protocol version", established=False)
    assert type(error) is ConnectionError
    assert "QUIC version" in str(error)


@pytest.mark.parametrize("code", [0, H3ErrorCode.H3_NO_ERROR])
def test_a_close_without_error_is_connection_closed(code: int) -> None:
    assert type(_error(code)) is ConnectionClosed


@pytest.mark.parametrize(
    "code",
    [H3ErrorCode.H3_FRAME_UNEXPECTED, H3ErrorCode.H3_MISSING_SETTINGS, 0xA],  # 0xA: QUIC's
)
def test_a_protocol_violation_is_a_protocol_error(code: int) -> None:
    error = _error(code)
    assert type(error) is ProtocolError
    assert isinstance(error, ConnectionError) and error.error_code == code


@pytest.mark.parametrize("code", list(range(0x200, 0x203)))
def test_a_qpack_failure_is_a_qpack_error(code: int) -> None:
    error = _error(code)
    assert type(error) is QPACKError and error.error_code == code
    assert code_name(code) in str(error)


def test_other_codes_are_connection_errors_that_name_the_code() -> None:
    error = _error(H3ErrorCode.H3_EXCESSIVE_LOAD, "busy")
    assert type(error) is ConnectionError
    assert "H3_EXCESSIVE_LOAD" in str(error) and "busy" in str(error)
    assert code_name(0x1F1F) == "0x1f1f"
