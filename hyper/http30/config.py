"""
The QUIC configuration of an HTTP/3 connection: TLS 1.3 settings read off an
:class:`ssl.SSLContext` where QUIC can use them, the client certificate, the idle timeout and
the flow-control windows.

QUIC does its own TLS (the QUIC stack's, not the :mod:`ssl` module's), so an
:class:`ssl.SSLContext` cannot be used as it is. What it says that QUIC can honour is taken
from it: whether to verify the certificate and the host name, the CA certificates it loaded
from a file or from memory, and the file it logs TLS secrets to.

A context that verifies with the operating system's trust store
(:func:`hyper.tls.uses_system_trust`) is not asked for its CAs (it lists only those loaded
from a file, a truststore one none at all). Where that store is CA files (Linux, the BSDs),
QUIC is given the same file and directory (:func:`hyper.tls.system_ca_locations`). On macOS
and Windows the store is the system's own certificate verifier, which QUIC's TLS cannot
call: such a context is refused there (:class:`~hyper.common.exceptions.TLSError`), unless
``cert_path`` names the CAs to trust instead.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from dataclasses import dataclass
from typing import TextIO

from ..common.exceptions import TLSError
from ..tls import (
    SystemTrustContext,
    hashed_certificate_files,
    system_ca_locations,
    uses_system_trust,
)
from .stack import H3_ALPN, QuicConfiguration

__all__ = ["QuicSettings", "quic_configuration"]

log = logging.getLogger("hyper.http30")

#: The idle timeout hyper asks for, in seconds (the peer's may be shorter: the shorter wins).
DEFAULT_IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class QuicSettings:
    """
    What an :class:`~hyper.HTTP30Connection` asks of each QUIC connection it opens.

    :param server_name: the name to send (SNI) and to verify the certificate against.
    :param ssl_context: verification settings, CAs and the key log file, read from it.
    :param cert: a client certificate: a PEM file with the certificate and its key, or a
        ``(certificate, key)`` pair of paths.
    :param cert_path: a PEM file of CA certificates to trust instead of certifi's bundle
        (or of those the ``ssl_context`` loaded).
    :param cert_password: the password of an encrypted client key.
    :param idle_timeout: seconds without a packet after which the connection ends.
    :param max_data: the connection's receive window, in bytes (``None``: the QUIC stack's).
    :param max_stream_data: each stream's receive window, in bytes (``None``: the QUIC
        stack's).
    """

    server_name: str
    ssl_context: ssl.SSLContext | None = None
    cert: str | os.PathLike[str] | tuple[str, str] | None = None
    cert_path: str | os.PathLike[str] | None = None
    cert_password: str | bytes | None = None
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_data: int | None = None
    max_stream_data: int | None = None


def quic_configuration(settings: QuicSettings) -> tuple[QuicConfiguration, TextIO | None]:
    """
    A new client configuration for the QUIC stack, ALPN ``h3``.

    :returns: the configuration, and the key log file it writes to (opened here; the caller
        closes it with the connection), or ``None``.
    :raises TLSError: if the CA file or the client certificate cannot be loaded.
    """
    context = settings.ssl_context
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=list(H3_ALPN),
        server_name=settings.server_name,
        idle_timeout=settings.idle_timeout,
    )
    if settings.max_data is not None:
        configuration.max_data = settings.max_data
    if settings.max_stream_data is not None:
        configuration.max_stream_data = settings.max_stream_data
    verify = True
    if context is not None:
        verify = context.verify_mode != ssl.CERT_NONE
        configuration.verify_mode = context.verify_mode
        configuration.verify_hostname = context.check_hostname
        configuration.hostname_checks_common_name = context.hostname_checks_common_name
    else:
        configuration.verify_mode = ssl.CERT_REQUIRED
    if verify:
        _load_authorities(configuration, settings)
    if settings.cert is not None:
        _load_client_certificate(configuration, settings)
    keylog = _open_key_log(context)
    if keylog is not None:
        configuration.secrets_log_file = keylog
    return configuration, keylog


def _load_authorities(configuration: QuicConfiguration, settings: QuicSettings) -> None:
    """Trust ``cert_path``, else the system's store for a system-trust context, else the CAs
    the context loaded, else certifi's bundle."""
    if settings.cert_path is not None:
        path = os.fspath(settings.cert_path)
        try:
            if os.path.isdir(path):
                # As OpenSSL reads a CA directory: its hash-named files (the QUIC stack would
                # read every entry, and fail on a subdirectory).
                cadata = _read_certificates(hashed_certificate_files(path))
                if cadata is None:
                    raise TLSError(
                        f"cannot load CA certificates from {path!r}: no certificate named by "
                        "subject hash in it (run openssl rehash on it)"
                    )
                configuration.load_verify_locations(cadata=cadata)
            elif os.path.isfile(path):
                configuration.load_verify_locations(cafile=path)
            else:
                raise TLSError(f"cannot load CA certificates from {path!r}: no such file")
        except TLSError:
            raise
        except Exception as exc:
            # The QUIC stack reports a file it cannot parse in many ways: a file not loaded.
            raise TLSError(f"cannot load CA certificates from {path!r}: {exc!r}") from exc
        return
    context = settings.ssl_context
    if context is not None and uses_system_trust(context):
        _load_system_authorities(configuration, context)
        return
    if context is not None:
        # The certificates a context loaded from a file or from memory; those of a CA
        # directory are loaded lazily by OpenSSL and cannot be listed (pass cert_path).
        loaded = context.get_ca_certs(binary_form=True)
        if loaded:
            pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in loaded)
            configuration.load_verify_locations(cadata=pem.encode("ascii"))
            return
    import certifi  # only when its bundle is used: it costs import time

    configuration.load_verify_locations(cafile=certifi.where())


def _load_system_authorities(configuration: QuicConfiguration, context: ssl.SSLContext) -> None:
    """Trust the CA file and directory the context trusts over TCP; refuse where the
    system's store is its certificate verifier, which QUIC's TLS cannot call."""
    try:
        # truststore's context reads the system's files before each handshake: read now.
        loaded = context.ca_locations if isinstance(context, SystemTrustContext) else None
        cafile, capath = loaded if loaded and any(loaded) else system_ca_locations()
    except TLSError as exc:
        raise TLSError(
            f"HTTP/3 cannot verify with the system trust store: {exc}. Give HTTP30Connection "
            "cert_path (CA certificates to trust instead), or use trust='certifi'"
        ) from exc
    # The QUIC stack reads every entry of a capath, and fails on a subdirectory (Debian's
    # /etc/ssl/certs has one, java/): it is given the certificates OpenSSL would look up.
    cadata = _read_certificates(hashed_certificate_files(capath)) if capath else None
    configuration.load_verify_locations(cafile=cafile, cadata=cadata)


def _read_certificates(paths: list[str]) -> bytes | None:
    """The PEM certificates of these files, one after the other (``None`` for none)."""
    pem = []
    for path in paths:
        try:
            with open(path, "rb") as file:
                pem.append(file.read().strip() + b"\n")
        except OSError as exc:
            log.warning("cannot read the CA certificate %s: %s", path, exc)
    return b"".join(pem) or None


#: A PEM private key block, of any kind (PKCS#8, EC, RSA, encrypted).
_PEM_KEY = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----\s*", re.S
)


def _load_client_certificate(configuration: QuicConfiguration, settings: QuicSettings) -> None:
    cert = settings.cert
    try:
        if isinstance(cert, tuple):
            certfile, keyfile = cert
            configuration.load_cert_chain(certfile, keyfile, settings.cert_password)
            return
        assert cert is not None
        certificates, key = _split_pem(os.fspath(cert))
        if key is None:
            raise TLSError(f"cannot load client certificate {cert!r}: it holds no private key")
        configuration.load_cert_chain(certificates, key, settings.cert_password)
    except TLSError:
        raise
    except Exception as exc:
        # The QUIC stack reports a file it cannot parse in many ways (OSError, ValueError,
        # IndexError for a PEM file without a certificate): every one is a file not loaded.
        raise TLSError(f"cannot load client certificate {cert!r}: {exc!r}") from exc


def _split_pem(path: str) -> tuple[bytes, bytes | None]:
    """The certificates and the private key of one PEM file. The QUIC stack finds the key in
    such a file only when it follows the certificates and is in PKCS#8 form (otherwise it
    loads the certificate alone, and a server that asks for it refuses the handshake): hyper
    hands it the two apart, whatever their order and form."""
    with open(path, "rb") as pem:
        data = pem.read()
    match = _PEM_KEY.search(data)
    if match is None:
        return data, None
    return data[: match.start()] + data[match.end() :], match.group(0)


def _open_key_log(context: ssl.SSLContext | None) -> TextIO | None:
    """The file TLS secrets go to: the context's ``keylog_filename``, else
    ``SSLKEYLOGFILE``; ``None`` for neither."""
    path = context.keylog_filename if context is not None else None
    path = path or os.environ.get("SSLKEYLOGFILE")
    if not path:
        return None
    try:
        # Closed with the connection (QuicEngine.release).
        return open(path, "a", encoding="ascii")
    except OSError as exc:
        # A debugging aid must not break connections: say so and carry on without it.
        log.warning("cannot write TLS secrets to %r: %s", path, exc)
        return None
