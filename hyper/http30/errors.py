"""
The error codes of QUIC (RFC 9000 section 20), HTTP/3 (RFC 9114 section 8.1) and QPACK
(RFC 9204 section 6), and the translation of a closed QUIC connection into the hyper
exception that says why.

Nothing here imports the QUIC stack: the translation works on the numbers and the reason
the stack reports.
"""

from __future__ import annotations

import enum

from ..common.exceptions import (
    CertificateError,
    ConnectionClosed,
    ConnectTimeout,
    HyperError,
    TLSError,
)
from .exceptions import ConnectionError, ProtocolError, QPACKError

__all__ = ["H3ErrorCode", "code_name", "termination_error"]


class H3ErrorCode(enum.IntEnum):
    """The HTTP/3 and QPACK application error codes (RFC 9114 section 8.1, RFC 9204
    section 6)."""

    H3_NO_ERROR = 0x100
    H3_GENERAL_PROTOCOL_ERROR = 0x101
    H3_INTERNAL_ERROR = 0x102
    H3_STREAM_CREATION_ERROR = 0x103
    H3_CLOSED_CRITICAL_STREAM = 0x104
    H3_FRAME_UNEXPECTED = 0x105
    H3_FRAME_ERROR = 0x106
    H3_EXCESSIVE_LOAD = 0x107
    H3_ID_ERROR = 0x108
    H3_SETTINGS_ERROR = 0x109
    H3_MISSING_SETTINGS = 0x10A
    H3_REQUEST_REJECTED = 0x10B
    H3_REQUEST_CANCELLED = 0x10C
    H3_REQUEST_INCOMPLETE = 0x10D
    H3_MESSAGE_ERROR = 0x10E
    H3_CONNECT_ERROR = 0x10F
    H3_VERSION_FALLBACK = 0x110
    QPACK_DECOMPRESSION_FAILED = 0x200
    QPACK_ENCODER_STREAM_ERROR = 0x201
    QPACK_DECODER_STREAM_ERROR = 0x202


#: QUIC transport error codes that mean a peer broke the protocol (RFC 9000 section 20.1):
#: FLOW_CONTROL_ERROR to CONNECTION_ID_LIMIT_ERROR, PROTOCOL_VIOLATION, INVALID_TOKEN,
#: CRYPTO_BUFFER_EXCEEDED, KEY_UPDATE_ERROR, AEAD_LIMIT_REACHED.
_QUIC_VIOLATIONS = frozenset({0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xA, 0xB, 0xD, 0xE, 0xF})
#: The HTTP/3 codes that mean a peer broke HTTP/3 (the others report a state).
_H3_VIOLATIONS = frozenset(
    {
        H3ErrorCode.H3_GENERAL_PROTOCOL_ERROR,
        H3ErrorCode.H3_STREAM_CREATION_ERROR,
        H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
        H3ErrorCode.H3_FRAME_UNEXPECTED,
        H3ErrorCode.H3_FRAME_ERROR,
        H3ErrorCode.H3_ID_ERROR,
        H3ErrorCode.H3_SETTINGS_ERROR,
        H3ErrorCode.H3_MISSING_SETTINGS,
        H3ErrorCode.H3_MESSAGE_ERROR,
    }
)
#: The TLS alerts about the certificate (RFC 8446 section 6.2): bad_certificate to
#: unknown_ca, and certificate_required.
_CERTIFICATE_ALERTS = frozenset({42, 43, 44, 45, 46, 48, 116})
#: The first QUIC error code that carries a TLS alert (CRYPTO_ERROR, RFC 9000 section 20.1).
_CRYPTO_ERROR = 0x100
#: The names of the TLS alerts a server may end a handshake with (RFC 8446 section 6).
_ALERT_NAMES = {
    10: "unexpected_message",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    48: "unknown_ca",
    51: "decrypt_error",
    80: "internal_error",
    116: "certificate_required",
    120: "no_application_protocol",
}


def code_name(code: int) -> str:
    """An HTTP/3 or QPACK error code by name (``H3_REQUEST_CANCELLED``), or in hex."""
    try:
        return H3ErrorCode(code).name
    except ValueError:
        return f"0x{code:x}"


def termination_error(
    code: int,
    reason: str,
    *,
    established: bool,
    origin: str,
    transport: bool = False,
    client_certificate: bool = False,
) -> HyperError:
    """
    The exception that says why a QUIC connection ended.

    :param code: the error code the connection ended with: a QUIC transport code, a TLS alert
        as ``0x100 + alert`` during the handshake, an HTTP/3 or QPACK code after it.
    :param reason: the reason phrase the QUIC stack reported.
    :param established: whether the handshake had completed.
    :param origin: ``host:port``, for the message.
    :param transport: whether ``code`` is a QUIC transport error code (a CONNECTION_CLOSE of
        QUIC's, not of HTTP/3's): after the handshake, ``0x100 + alert`` then is a TLS alert
        too, from a server that refused hyper's side of the handshake once hyper had
        finished it (TLS 1.3 clients finish first), which is how a refused client
        certificate shows.
    :param client_certificate: whether hyper sent a client certificate, for the message.
    """
    lowered = reason.lower()
    said = f" ({reason})" if reason else ""
    if "idle timeout" in lowered:
        if not established:
            return ConnectTimeout(f"{origin} did not complete the QUIC handshake{said}")
        return ConnectionClosed(f"the QUIC connection to {origin} timed out while idle")
    if "stateless reset" in lowered:
        return ConnectionClosed(f"{origin} reset the QUIC connection (stateless reset)")
    if "protocol version" in lowered:
        return ConnectionError(f"{origin} speaks no QUIC version hyper speaks{said}", code)
    alert = code - _CRYPTO_ERROR if _CRYPTO_ERROR <= code < _CRYPTO_ERROR + 0x100 else None
    if not established:
        if alert is not None:
            if alert in _CERTIFICATE_ALERTS:
                return CertificateError(f"the certificate of {origin} was refused{said}")
            return TLSError(f"the TLS handshake with {origin} failed: {_alert(alert)}{said}")
        if code in _QUIC_VIOLATIONS:
            return ProtocolError(f"the QUIC handshake with {origin} failed{said}", code)
        return ConnectionError(f"the QUIC handshake with {origin} failed{said}", code)
    if transport and alert is not None:
        return _refused_by_server(alert, said, origin, client_certificate)
    if code in (0, H3ErrorCode.H3_NO_ERROR):
        return ConnectionClosed(f"{origin} closed the QUIC connection{said}")
    if H3ErrorCode.QPACK_DECOMPRESSION_FAILED <= code <= H3ErrorCode.QPACK_DECODER_STREAM_ERROR:
        return QPACKError(f"QPACK failed on the connection to {origin}: {code_name(code)}", code)
    if code in _H3_VIOLATIONS or code in _QUIC_VIOLATIONS:
        return ProtocolError(
            f"the connection to {origin} ended with {code_name(code)}{said}", code
        )
    return ConnectionError(f"the connection to {origin} ended with {code_name(code)}{said}", code)


def _alert(alert: int) -> str:
    name = _ALERT_NAMES.get(alert)
    return f"alert {alert} ({name})" if name else f"alert {alert}"


def _refused_by_server(alert: int, said: str, origin: str, client_certificate: bool) -> TLSError:
    """A server's TLS alert after hyper finished the handshake: it refused hyper's side."""
    if alert not in _CERTIFICATE_ALERTS:
        return TLSError(f"{origin} refused the TLS handshake: {_alert(alert)}{said}")
    if client_certificate:
        why = "refused the client certificate hyper sent"
    else:
        why = "requires a client certificate (pass one with cert=)"
    return TLSError(f"{origin} {why}: {_alert(alert)}{said}")
