"""
TLS set-up: the :class:`ssl.SSLContext` hyper uses, and the handshake that picks a protocol.

:func:`init_context` builds a context suitable for HTTP/2 (RFC 9113 section 9.2): TLS 1.2 or
newer, ALPN offering ``h2`` then ``http/1.1``, certificate and host name verification on, and
certifi's CA bundle unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Callable

from .common import readahead
from .common.exceptions import CertificateError, ConnectTimeout, TLSError

log = logging.getLogger(__name__)

#: The ALPN protocols hyper offers, most preferred first.
SUPPORTED_PROTOCOLS: tuple[str, ...] = ("h2", "http/1.1")

#: The ALPN token for HTTP/2 over TLS.
H2_PROTOCOL = "h2"

PasswordType = str | bytes | bytearray | Callable[[], str | bytes | bytearray]


def init_context(
    cert_path: str | os.PathLike[str] | None = None,
    cert: str | os.PathLike[str] | tuple[str, str] | None = None,
    cert_password: PasswordType | None = None,
) -> ssl.SSLContext:
    """
    Create an :class:`ssl.SSLContext` ready for HTTP/2 and HTTP/1.1 connections.

    The context is a normal stdlib context, so it can be adjusted (for example
    ``check_hostname = False`` and ``verify_mode = ssl.CERT_NONE`` to turn verification off)
    before it is passed to a connection as ``ssl_context``.

    If the environment variable ``SSLKEYLOGFILE`` names a file, TLS secrets are appended to it
    in the NSS key log format, so captures can be decrypted with Wireshark.

    Where the interpreter allows it (CPython 3.10 to 3.14), OpenSSL's read-ahead is turned on
    (see :mod:`hyper.common.readahead`): a socket read takes every record that has arrived
    rather than one record in two system calls. hyper's connections account for the records
    OpenSSL then holds. Other code using the context with its own sockets must read until
    :class:`ssl.SSLWantReadError` before waiting on the socket, as the standard library's
    blocking reads and :mod:`asyncio` do.

    :param cert_path: a file of PEM CA certificates to trust instead of certifi's bundle, or a
        directory of them (prepared with ``c_rehash``).
    :param cert: a client certificate: the path of a PEM file holding the certificate, its
        chain and its private key, or a ``(certificate_path, key_path)`` pair.
    :param cert_password: the password of an encrypted private key: ``str`` (encoded as
        UTF-8), ``bytes``/``bytearray``, or a callable returning one of them, called only when
        the key is encrypted.
    :returns: the new context.
    :raises TLSError: if the CA file or the client certificate cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # PROTOCOL_TLS_CLIENT already sets CERT_REQUIRED and check_hostname; set them explicitly
    # so that this function documents the defaults it promises.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    # RFC 9113 9.2.2 forbids TLS 1.2 compression and renegotiation for HTTP/2.
    context.options |= ssl.OP_NO_COMPRESSION
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(list(SUPPORTED_PROTOCOLS))

    try:
        if cert_path is not None:
            ca = os.fspath(cert_path)
        else:
            import certifi  # only when its bundle is used: it costs import time

            ca = certifi.where()
        if os.path.isdir(ca):
            context.load_verify_locations(capath=ca)
        else:
            context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load CA certificates from {cert_path!r}: {exc}") from exc

    if cert is not None:
        if isinstance(cert, tuple):
            certfile, keyfile = cert
        else:
            certfile, keyfile = os.fspath(cert), None
        password = _password_for_ssl(cert_password)
        try:
            context.load_cert_chain(certfile, keyfile, password)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load client certificate {cert!r}: {exc}") from exc

    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog:
        try:
            context.keylog_filename = keylog
        except OSError as exc:
            # A debugging aid must not break connections: say so and carry on without it.
            log.warning("cannot write TLS secrets to SSLKEYLOGFILE=%r: %s", keylog, exc)
    # Whole reads instead of two system calls per TLS record (see hyper.common.readahead).
    readahead.enable(context)
    return context


def _password_for_ssl(
    password: PasswordType | None,
) -> str | bytes | bytearray | Callable[[], str | bytes | bytearray] | None:
    # ssl accepts str, bytes, bytearray and callables itself; strings are encoded as UTF-8
    # by CPython. Normalise str here anyway so the encoding is ours, not an implementation's.
    if isinstance(password, str):
        return password.encode("utf-8")
    return password


def certificate_names(certificate: dict[str, object] | None) -> frozenset[str]:
    """
    The host names and IP addresses a peer certificate is valid for: its subjectAltName DNS
    and IP entries, lower-cased.

    :param certificate: the certificate as :meth:`ssl.SSLSocket.getpeercert` returns it
        (``None`` or empty when verification is off).
    :returns: the names (empty when there are none).
    """
    if not certificate:
        return frozenset()
    names = set()
    for kind, value in certificate.get("subjectAltName", ()):  # type: ignore[attr-defined]
        if kind == "DNS":
            names.add(str(value).lower())
        elif kind == "IP Address":
            names.add(_normal_ip(str(value)) or str(value).lower())
    return frozenset(names)


def _normal_ip(text: str) -> str | None:
    """An IP address in its canonical spelling (``::1``), or None if ``text`` is not one."""
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def certificate_covers(names: frozenset[str], host: str) -> bool:
    """
    Whether a certificate with these subjectAltName entries is valid for ``host``. A
    wildcard (``*.example.com``) covers exactly one leftmost label, as RFC 6125 says; it never
    covers an IP address.

    :param names: the certificate's names, from :func:`certificate_names`.
    :param host: a host name or IP address.
    :returns: whether the certificate covers ``host``.
    """
    address = _normal_ip(host)
    if address is not None:
        return address in names  # an IP address: only an exact entry matches, never a wildcard
    host = host.lower().rstrip(".")
    if host in names:
        return True
    if host.replace(".", "").isdigit():
        return False  # numeric, like a (short-form) address: wildcards never cover those
    label, dot, rest = host.partition(".")
    return bool(dot and label and rest and f"*.{rest}" in names)


_default_context: ssl.SSLContext | None = None


def default_context() -> ssl.SSLContext:
    """
    Return hyper's shared default context (built once by :func:`init_context`).

    Building a context and loading the CA bundle costs milliseconds, so connections made
    without an ``ssl_context`` share this one.
    """
    global _default_context
    if _default_context is None:
        _default_context = init_context()
    return _default_context


def wrap_socket(
    sock: socket.socket,
    server_hostname: str,
    ssl_context: ssl.SSLContext | None = None,
    force_proto: str | None = None,
) -> tuple[ssl.SSLSocket, str | None]:
    """
    Run the TLS handshake on a connected socket.

    :param sock: the TCP socket (its timeout bounds the handshake).
    :param server_hostname: the name to send in SNI and to check the certificate against.
    :param ssl_context: the context to use; :func:`default_context` when ``None``.
    :param force_proto: report this protocol whatever ALPN chose (for servers that speak a
        protocol without announcing it).
    :returns: the TLS socket and the negotiated protocol (``"h2"``, ``"http/1.1"`` or
        ``None`` when the server chose none).
    :raises CertificateError: if the certificate is not trusted or does not match the host.
    :raises TLSError: if the handshake fails for any other reason.
    :raises ConnectTimeout: if the handshake does not finish within the socket's timeout.
    """
    context = ssl_context if ssl_context is not None else default_context()
    sni: str | None = server_hostname
    try:
        tls_sock = context.wrap_socket(sock, server_hostname=sni)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise CertificateError(
            f"certificate verification failed for {server_hostname}: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {server_hostname} failed: {exc}") from exc
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeout(f"TLS handshake with {server_hostname} timed out") from exc
    except OSError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {server_hostname} failed: {exc}") from exc
    proto = force_proto or tls_sock.selected_alpn_protocol()
    return tls_sock, proto
