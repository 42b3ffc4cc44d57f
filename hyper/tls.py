"""
TLS: the :class:`ssl.SSLContext` hyper uses, the handshake that picks a protocol, and the
:class:`TLSChannel` a connection reads and writes through.

:func:`init_context` builds a context suitable for HTTP/2 (RFC 9113 section 9.2): TLS 1.2 or
newer, ALPN offering ``h2`` then ``http/1.1``, certificate and host name verification on, and
certifi's CA bundle unless told otherwise: ``trust="system"`` verifies with the operating
system's trust store instead (on macOS and Windows through the optional ``truststore``
package).

:func:`start_tls` runs the handshake over a connected socket through memory buffers
(:class:`ssl.MemoryBIO`): the socket is read in large pieces, every TLS record that has
arrived at once, and OpenSSL decrypts them from memory. Reading through
:class:`ssl.SSLSocket` instead costs two system calls per record (its header, then its body):
a hundred megabytes are some thirteen thousand of them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import platform
import re
import select
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .common.exceptions import (
    CertificateError,
    ConnectTimeout,
    InvalidRequest,
    TLSError,
    TrustStoreUnavailable,
)
from .common.hosts import encode_host
from .common.util import poll_step

log = logging.getLogger(__name__)

#: The ALPN protocols hyper offers, most preferred first.
SUPPORTED_PROTOCOLS: tuple[str, ...] = ("h2", "http/1.1")

#: The ALPN token for HTTP/2 over TLS.
H2_PROTOCOL = "h2"

PasswordType = str | bytes | bytearray | Callable[[], str | bytes | bytearray]

#: The trust stores :func:`init_context` verifies servers with: ``"certifi"``, the CA bundle
#: of the certifi package (hyper's default, the same on every machine), and ``"system"``, the
#: operating system's store.
TRUST_STORES: tuple[str, ...] = ("certifi", "system")

#: Whether the system's trust store is its own certificate verifier (macOS, Windows), which
#: only ``truststore`` reaches, rather than CA files OpenSSL reads (Linux, the BSDs).
OS_VERIFIER: bool = platform.system() in ("Darwin", "Windows")

#: Where Linux distributions keep their CA bundle, for a Python whose OpenSSL was built to
#: look elsewhere (one built by its own installer), in the order truststore tries them.
SYSTEM_CA_FILES: tuple[str, ...] = (
    "/etc/ssl/cert.pem",  # Alpine, Arch, Fedora 34-43, OpenWRT, RHEL 9-10, the BSDs
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora 44+, RHEL 11+
    "/etc/pki/tls/cert.pem",  # older Fedora, RHEL and CentOS
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/ca-bundle.pem",  # SUSE
)

#: The names OpenSSL looks certificates up by in a CA directory (``c_rehash``): ``1a2b3c4d.0``.
_HASHED_NAME = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")


class SystemTrustContext(ssl.SSLContext):
    """
    The :class:`ssl.SSLContext` :func:`init_context` makes for ``trust="system"`` where the
    system's trust store is CA files (not :data:`OS_VERIFIER`): it trusts
    :func:`system_ca_locations`, read when it was made. It adds nothing to
    :class:`ssl.SSLContext` but :attr:`ca_locations`; its type says what it trusts
    (:func:`uses_system_trust`), so that HTTP/3 can trust the same.
    """

    #: The CA file and directory the context loaded (``(cafile, capath)``, either ``None``).
    ca_locations: tuple[str | None, str | None] = (None, None)


def check_trust(trust: str) -> None:
    """
    Refuse a ``trust`` argument :func:`init_context` cannot honour.

    :param trust: ``"certifi"`` or ``"system"``.
    :raises InvalidRequest: for any other value.
    :raises TrustStoreUnavailable: (an :class:`ImportError`) for ``"system"`` on macOS and
        Windows when ``truststore`` is not installed.
    """
    if trust not in TRUST_STORES:
        raise InvalidRequest(f"trust must be 'certifi' or 'system', not {trust!r}")
    if trust == "system" and OS_VERIFIER:
        _truststore()


def _truststore() -> Any:
    """The truststore module, imported on first use (it is an optional dependency)."""
    try:
        import truststore
    except ImportError as exc:
        raise TrustStoreUnavailable(
            f"trust='system' needs the truststore package on {platform.system()}, which "
            f"cannot be imported ({exc}): install it with pip install 'hyper[truststore]'"
        ) from exc
    return truststore


def uses_system_trust(context: ssl.SSLContext) -> bool:
    """
    Whether ``context`` verifies servers with the operating system's trust store: it is a
    :class:`SystemTrustContext` or a ``truststore.SSLContext`` (as :func:`init_context` makes
    for ``trust="system"``, or as one made by hand is). HTTP/3, whose TLS is not OpenSSL's,
    asks this to find the same CAs itself.

    :param context: any context.
    :returns: whether it trusts the system's store.
    """
    if isinstance(context, SystemTrustContext):
        return True
    # Not imported here: a truststore context cannot exist before truststore is imported.
    truststore = sys.modules.get("truststore")
    return truststore is not None and isinstance(context, truststore.SSLContext)


def system_ca_locations() -> tuple[str | None, str | None]:
    """
    The CA file and directory of the system's trust store where it is CA files (Linux, the
    BSDs): OpenSSL's default ones, which the ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    environment variables replace, else the first of :data:`SYSTEM_CA_FILES` that exists. These
    are what truststore trusts there; they are read when this is called.

    :returns: ``(cafile, capath)``; one of them may be ``None``, never both.
    :raises TLSError: on macOS and Windows (:data:`OS_VERIFIER`), whose store is not files,
        or when no store is found.
    """
    if OS_VERIFIER:
        raise TLSError(
            f"the {platform.system()} trust store is not CA files: only the system's "
            "certificate verifier reaches it"
        )
    defaults = ssl.get_default_verify_paths()  # each None unless it exists
    capath: str | None = defaults.capath
    if capath is not None and not hashed_certificate_files(capath):
        capath = None
    cafile: str | None = defaults.cafile
    if cafile or capath:
        return cafile, capath
    for cafile in SYSTEM_CA_FILES:
        if os.path.isfile(cafile):
            return cafile, None
    raise TLSError(
        "no system trust store found: OpenSSL's default CA file and directory "
        f"({defaults.openssl_cafile}, {defaults.openssl_capath}) are missing or empty, and "
        f"so are {', '.join(SYSTEM_CA_FILES)}; set SSL_CERT_FILE"
    )


def hashed_certificate_files(capath: str) -> list[str]:
    """
    The certificate files of a CA directory that OpenSSL looks up (those named by subject
    hash, ``1a2b3c4d.0``, as ``c_rehash`` and ``openssl rehash`` make them), sorted.

    :param capath: the directory.
    :returns: their paths; empty if the directory cannot be read.
    """
    try:
        names = os.listdir(capath)
    except OSError:
        return []
    return sorted(os.path.join(capath, name) for name in names if _HASHED_NAME.match(name))


def init_context(
    cert_path: str | os.PathLike[str] | None = None,
    cert: str | os.PathLike[str] | tuple[str, str] | None = None,
    cert_password: PasswordType | None = None,
    *,
    trust: str = "certifi",
) -> ssl.SSLContext:
    """
    Create an :class:`ssl.SSLContext` ready for HTTP/2 and HTTP/1.1 connections.

    The context is an :class:`ssl.SSLContext`, so it can be adjusted (for example
    ``check_hostname = False`` and ``verify_mode = ssl.CERT_NONE`` to turn verification off)
    before it is passed to a connection as ``ssl_context``.

    If the environment variable ``SSLKEYLOGFILE`` names a file, TLS secrets are appended to it
    in the NSS key log format, so captures can be decrypted with Wireshark (whatever
    ``trust``).

    :param cert_path: a file of PEM CA certificates to trust instead of certifi's bundle, or a
        directory of them (prepared with ``c_rehash``). Not with ``trust="system"``.
    :param cert: a client certificate: the path of a PEM file holding the certificate, its
        chain and its private key, or a ``(certificate_path, key_path)`` pair.
    :param cert_password: the password of an encrypted private key: ``str`` (encoded as
        UTF-8), ``bytes``/``bytearray``, or a callable returning one of them, called only when
        the key is encrypted.
    :param trust: what verifies servers (:data:`TRUST_STORES`): ``"certifi"``, certifi's
        bundle (or ``cert_path``), or ``"system"``, the operating system's trust store. On
        Linux and the BSDs that is a :class:`SystemTrustContext` trusting
        :func:`system_ca_locations` (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` replace them), on
        macOS and Windows a ``truststore.SSLContext``, which asks the system's certificate
        verifier (the ``truststore`` extra). See :ref:`trust`.
    :returns: the new context.
    :raises InvalidRequest: for an unknown ``trust``, or ``cert_path`` with
        ``trust="system"``.
    :raises TrustStoreUnavailable: (an :class:`ImportError`) for ``trust="system"`` on macOS
        and Windows when ``truststore`` is not installed.
    :raises TLSError: if the CA certificates (``cert_path``, certifi's, or the system's) or
        the client certificate cannot be loaded.
    """
    check_trust(trust)
    if trust == "system" and cert_path is not None:
        # Both at once would be ambiguous (the system's roots and these, or these alone?),
        # and HTTP/3 could not tell what the context holds.
        raise InvalidRequest(
            "cert_path replaces certifi's CA bundle and cannot be combined with "
            "trust='system': add the CA to the system's trust store, or use cert_path alone"
        )
    context: ssl.SSLContext
    if trust == "certifi":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    elif OS_VERIFIER:
        context = _truststore().SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = SystemTrustContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # PROTOCOL_TLS_CLIENT already sets CERT_REQUIRED and check_hostname; set them explicitly
    # so that this function documents the defaults it promises.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    # RFC 9110 4.3.4 and RFC 6125: the host name is matched against subjectAltName only,
    # never the subject's common name (OpenSSL falls back to it by default).
    context.hostname_checks_common_name = False
    # RFC 9113 9.2.2 forbids TLS 1.2 compression and renegotiation for HTTP/2.
    context.options |= ssl.OP_NO_COMPRESSION
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(list(SUPPORTED_PROTOCOLS))
    if trust == "certifi":
        _load_certifi_or(context, cert_path)
    elif isinstance(context, SystemTrustContext):
        _load_system_store(context)

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
    return context


def _load_certifi_or(context: ssl.SSLContext, cert_path: str | os.PathLike[str] | None) -> None:
    """Trust the CAs of ``cert_path`` (a file or a hashed directory), else certifi's."""
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


def _load_system_store(context: SystemTrustContext) -> None:
    """Trust the system's CA file and directory, read once (truststore reads them before
    every handshake, which costs tens of milliseconds each with OpenSSL 3.0)."""
    cafile, capath = system_ca_locations()
    try:
        context.load_verify_locations(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(
            f"cannot load the system's CA certificates from {cafile or capath!r}: {exc}"
        ) from exc
    context.ca_locations = (cafile, capath)


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
    :param server_hostname: the name to send in SNI and to check the certificate against; a
        non-ASCII name in its IDNA 2008 form (:func:`~hyper.common.hosts.encode_host`).
    :param ssl_context: the context to use; :func:`default_context` when ``None``.
    :param force_proto: report this protocol whatever ALPN chose (for servers that speak a
        protocol without announcing it).
    :returns: the TLS socket and the negotiated protocol (``"h2"``, ``"http/1.1"`` or
        ``None`` when the server chose none).
    :raises InvalidRequest: if ``server_hostname`` is not a valid host name.
    :raises CertificateError: if the certificate is not trusted or does not match the host.
    :raises TLSError: if the handshake fails for any other reason.
    :raises ConnectTimeout: if the handshake does not finish within the socket's timeout.
    """
    # A str name would otherwise go through Python's IDNA 2003 codec inside ssl.
    server_hostname = encode_host(server_hostname)
    context = ssl_context if ssl_context is not None else default_context()
    with _handshake_failures(sock, server_hostname):
        try:
            tls_sock = context.wrap_socket(sock, server_hostname=server_hostname)
        except TimeoutError as exc:
            raise ConnectTimeout(f"TLS handshake with {server_hostname} timed out") from exc
    proto = force_proto or tls_sock.selected_alpn_protocol()
    _check_protocol(tls_sock, proto, server_hostname)
    return tls_sock, proto


@contextmanager
def _handshake_failures(sock: socket.socket, server_hostname: str) -> Iterator[None]:
    """Close ``sock`` and translate what a failed handshake raises into hyper's errors."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise CertificateError(
            f"certificate verification failed for {server_hostname}: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {server_hostname} failed: {exc}") from exc
    except (TLSError, ConnectTimeout):
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {server_hostname} failed: {exc}") from exc


def _check_protocol(
    tls: ssl.SSLSocket | ssl.SSLObject, proto: str | None, server_hostname: str
) -> None:
    """Refuse HTTP/2 over a TLS 1.2 cipher suite RFC 9113 prohibits (closing the socket)."""
    if proto != "h2" or tls.version() != "TLSv1.2":
        return
    cipher = tls.cipher()
    if cipher is not None and not h2_cipher_allowed(cipher[0]):
        if isinstance(tls, ssl.SSLSocket):
            tls.close()
        raise TLSError(
            f"{server_hostname} chose HTTP/2 over TLS 1.2 with the cipher suite "
            f"{cipher[0]}, which RFC 9113 section 9.2.2 prohibits for HTTP/2 "
            "(INADEQUATE_SECURITY)"
        )


#: How much ciphertext one read of the socket takes at most: every record that has arrived,
#: up to this much.
CIPHERTEXT_READ_SIZE = 256 * 1024
#: How much ciphertext is handed to OpenSSL at a time. Its memory buffer moves what remains
#: to the front before each write, so it is fed about two records at a time, not all that
#: one socket read brought.
_FEED_SIZE = 32 * 1024 + 512
#: The largest TLS record, with its header and expansion: a read is worth trying with this
#: much room, and the memory buffer is topped up when it holds less.
_RECORD_SIZE = 16 * 1024 + 256
#: How much plaintext is encrypted at once before it is sent, so that a large write does not
#: hold its whole ciphertext in memory.
PLAINTEXT_WRITE_SIZE = 256 * 1024

_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_IN = getattr(select, "POLLIN", 1)
_OUT = getattr(select, "POLLOUT", 4)


class TLSChannel:
    """
    TLS over a connected, non-blocking socket, through memory buffers.

    Reading takes every record that has arrived in one system call and decrypts them from
    memory; writing encrypts into memory and sends what the socket takes. Neither ever waits:
    when the socket has nothing (or takes nothing) the call raises :class:`BlockingIOError`
    and the caller waits for the socket (:meth:`fileno`) itself. One thread at a time may use
    a channel (hyper's connections hold their lock).

    Channels come from :func:`start_tls`.

    :param sock: the connected TCP socket, non-blocking.
    :param sslobj: the TLS state, over ``incoming`` and ``outgoing``.
    :param incoming: the memory buffer ciphertext from the socket goes into.
    :param outgoing: the memory buffer OpenSSL writes ciphertext to.
    """

    __slots__ = (
        "_cipher",
        "_ended",
        "_failure",
        "_fed",
        "_incoming",
        "_more",
        "_outgoing",
        "_received",
        "_sslobj",
        "_starved",
        "_unsent",
        "sock",
    )

    def __init__(
        self,
        sock: socket.socket,
        sslobj: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        #: The TCP socket underneath.
        self.sock = sock
        self._sslobj = sslobj
        self._incoming = incoming
        self._outgoing = outgoing
        #: Ciphertext read from the socket: ``_cipher[_fed:_received]`` is not yet OpenSSL's.
        self._cipher = memoryview(bytearray(CIPHERTEXT_READ_SIZE))
        self._fed = self._received = 0
        #: Ciphertext taken from ``outgoing`` that the socket has not taken yet.
        self._unsent: memoryview | None = None
        #: The last read found only part of a record in memory: what is there cannot be
        #: decrypted until more arrives.
        self._starved = False
        #: A failure met after some records were read: raised by the next read.
        self._failure: OSError | None = None
        #: The peer's close_notify was read: every later read returns 0.
        self._ended = False
        #: The last read stopped because the buffer was full, not for want of data. Only
        #: then can TLS hold decrypted data not yet taken (every other read goes on until
        #: nothing is left in memory), so this stands for ``sslobj.pending()``, which costs
        #: a call into the ssl module.
        self._more = False

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self.sock.fileno()

    def ready(self) -> bool:
        """Whether a read may return data, the end, or a failure without the socket:
        plaintext not yet taken may be in OpenSSL's buffers, ciphertext not yet decrypted is
        in memory (and the last read did not find it to be only part of a record), or the
        end of the stream or a failure was met behind the data the last read returned."""
        return (
            self._more
            or self._ended
            or self._failure is not None
            or ((self._incoming.pending > 0 or self._fed < self._received) and not self._starved)
        )

    def read_into(self, buffer: memoryview) -> int:
        """
        Decrypt what has arrived into ``buffer``: every record in memory, while the buffer has
        room for another; when there is none, one read of the socket first.

        :returns: how many bytes were written; 0 at the end of the stream.
        :raises BlockingIOError: nothing can be read now (wait for the socket).
        :raises ssl.SSLEOFError: the peer closed the connection without a close_notify.
        :raises ssl.SSLError: a TLS failure.
        :raises OSError: a socket failure.
        """
        failure = self._failure
        if failure is not None:
            self._failure = None
            raise failure
        sslobj = self._sslobj
        incoming = self._incoming
        room = len(buffer)
        total = 0
        while True:
            if self._fed < self._received and incoming.pending < _RECORD_SIZE:
                self._feed()
            count = -1  # -1: no whole record in memory
            # With nothing in memory, asking TLS would only raise SSLWantReadError, which
            # costs more than looking first.
            if incoming.pending or incoming.eof or self._more or self._ended:
                try:
                    # typeshed says bytes; given a buffer, read() returns the count.
                    count = int(sslobj.read(room - total, buffer[total:]))
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    self._ended = True
                    return total  # close_notify: the end of the stream (0 once all is taken)
                except OSError as exc:
                    if not total:
                        raise
                    # The records before it are good: return them, and the failure next time.
                    self._failure = exc
                    return total
            if count < 0:
                if self._fed < self._received:
                    self._feed()
                    continue
                self._more = False
                if total:
                    return total
                if self._unsent is None and self._outgoing.pending:
                    self.flush()  # an answer OpenSSL owes (a key update), sent in order
                self._starved = True
                received = self.sock.recv_into(self._cipher)  # BlockingIOError: wait
                self._starved = False
                if not received:
                    incoming.write_eof()
                    continue
                self._fed, self._received = 0, received
                continue
            if not count:
                self._ended = True  # close_notify (read as 0 once OpenSSL has seen it)
                return total
            total += count
            if room - total < _RECORD_SIZE:
                # Full: more may wait in TLS's own buffers, where nothing else can see it.
                self._more = True
                return total

    def _feed(self) -> None:
        """Hand OpenSSL the next piece of the ciphertext read from the socket."""
        fed = self._fed
        following = min(fed + _FEED_SIZE, self._received)
        self._incoming.write(self._cipher[fed:following])
        self._fed = following

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """
        Encrypt ``data`` for sending. Call :meth:`flush` until it returns True after.

        :raises ssl.SSLWantReadError: TLS must first read the rest of a message the peer sent
            after the handshake (a session ticket in several records): wait for the socket,
            :meth:`pull`, and write again.
        """
        while True:
            try:
                self._sslobj.write(data)
                return
            except ssl.SSLWantReadError:
                if self._fed < self._received:
                    self._feed()  # the rest may be read already
                    continue
                raise

    def pull(self) -> bool:
        """
        Read what the socket has into memory, without decrypting it (for a :meth:`write` that
        must first read). Everything read before has been handed to TLS already.

        :returns: whether anything (or the end of the stream) was read.
        :raises OSError: a socket failure.
        """
        if self._fed < self._received:
            self._feed()
            return True
        try:
            received = self.sock.recv_into(self._cipher)
        except _WOULD_BLOCK:
            return False
        if not received:
            self._incoming.write_eof()
            return True
        self._starved = False
        self._fed, self._received = 0, received
        self._feed()
        return True

    def flush(self) -> bool:
        """
        Send the ciphertext waiting to go out, as much as the socket takes now.

        :returns: whether everything went out.
        :raises OSError: a socket failure (:class:`BlockingIOError` is not raised: False).
        """
        while True:
            unsent = self._unsent
            if unsent is None:
                if not self._outgoing.pending:
                    return True
                unsent = self._unsent = memoryview(self._outgoing.read())
            try:
                sent = self.sock.send(unsent)
            except _WOULD_BLOCK:
                return False
            self._unsent = unsent[sent:] if sent < len(unsent) else None

    @property
    def unsent(self) -> int:
        """How many bytes of ciphertext wait to go out (:meth:`flush` sends them)."""
        unsent = self._unsent
        return (len(unsent) if unsent is not None else 0) + self._outgoing.pending

    def send_close_notify(self) -> None:
        """
        Send the TLS closure alert (``close_notify``, RFC 8446 section 6.1) as far as the
        socket takes it now, without waiting for the peer's: the connection is being closed,
        and the alert tells the peer that nothing it received was cut short. Failures are
        ignored (the peer may be gone).
        """
        try:
            self._sslobj.unwrap()  # writes the alert, then wants the peer's: not waited for
        except (ssl.SSLError, ValueError):
            pass
        try:
            self.flush()
        except OSError:
            pass

    def peer_certificate(self) -> dict[str, Any] | None:
        """The server's certificate as :meth:`ssl.SSLSocket.getpeercert` gives it."""
        return self._sslobj.getpeercert()

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN settled on, if any."""
        return self._sslobj.selected_alpn_protocol()

    def version(self) -> str | None:
        """The TLS version in use (``"TLSv1.3"``...)."""
        return self._sslobj.version()

    def cipher(self) -> tuple[str, str, int] | None:
        """The cipher suite in use: (name, protocol version, secret bits)."""
        return self._sslobj.cipher()


def start_tls(
    sock: socket.socket,
    server_hostname: str,
    ssl_context: ssl.SSLContext | None = None,
    force_proto: str | None = None,
) -> tuple[TLSChannel, str | None]:
    """
    Run the TLS handshake on a connected socket, through memory buffers.

    :param sock: the TCP socket; its timeout bounds the handshake, and it is non-blocking
        afterwards (its timeout is kept for the caller to apply).
    :param server_hostname: the name to send in SNI and to check the certificate against; a
        non-ASCII name in its IDNA 2008 form (:func:`~hyper.common.hosts.encode_host`).
    :param ssl_context: the context to use; :func:`default_context` when ``None``.
    :param force_proto: report this protocol whatever ALPN chose.
    :returns: the channel, and the negotiated protocol (``"h2"``, ``"http/1.1"`` or ``None``).
    :raises InvalidRequest: if ``server_hostname`` is not a valid host name.
    :raises CertificateError: if the certificate is not trusted or does not match the host.
    :raises TLSError: if the handshake fails for any other reason.
    :raises ConnectTimeout: if the handshake does not finish within the socket's timeout.
    """
    # A str name would otherwise go through Python's IDNA 2003 codec inside ssl.
    server_hostname = encode_host(server_hostname)
    context = ssl_context if ssl_context is not None else default_context()
    timeout = sock.gettimeout()
    deadline = None if timeout is None else time.monotonic() + timeout
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        sslobj = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    except (ssl.SSLError, ValueError) as exc:
        sock.close()
        raise TLSError(f"cannot start TLS with {server_hostname}: {exc}") from exc
    channel = TLSChannel(sock, sslobj, incoming, outgoing)
    sock.setblocking(False)
    first_reply = True
    with _handshake_failures(sock, server_hostname):
        while True:
            try:
                sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                _send_all(channel, deadline, server_hostname)
                _wait(sock, _IN, deadline, server_hostname)
                received = sock.recv(CIPHERTEXT_READ_SIZE)
                if not received:
                    raise TLSError(
                        f"TLS handshake with {server_hostname} failed: the server closed the "
                        "connection"
                    ) from None
                if first_reply:
                    _check_tls_reply(received, server_hostname)
                    first_reply = False
                incoming.write(received)
        _send_all(channel, deadline, server_hostname)  # the client's Finished
    sock.settimeout(timeout)
    proto = force_proto or sslobj.selected_alpn_protocol()
    try:
        _check_protocol(sslobj, proto, server_hostname)
    except TLSError:
        sock.close()
        raise
    return channel, proto


#: The first byte of a TLS record: its content type (change_cipher_spec 20, alert 21,
#: handshake 22, application_data 23, heartbeat 24; RFC 8446 section 5.1).
_RECORD_TYPES = range(20, 25)


def _check_tls_reply(data: bytes, server_hostname: str) -> None:
    """Refuse a first answer to the ClientHello that is not a TLS record: the server speaks
    something else on this port (most often plain HTTP, answering "400 Bad Request"), which
    OpenSSL would only report as a "wrong version number"."""
    if data[0] in _RECORD_TYPES:
        return
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")[:80].decode("ascii", "replace")
    answer = (
        f"it answered in plain HTTP ({first_line.strip()!r})"
        if first_line.startswith("HTTP/")
        else f"its first bytes, {first_line[:16]!r}, are not a TLS record"
    )
    raise TLSError(
        f"TLS handshake with {server_hostname} failed: the server does not speak TLS on this "
        f"port: {answer}"
    )


def h2_cipher_allowed(name: str) -> bool:
    """
    Whether HTTP/2 may run over the TLS 1.2 cipher suite ``name`` (an OpenSSL name).

    RFC 9113 (section 9.2.2 and appendix A) prohibits every TLS 1.2 suite without an
    ephemeral key exchange or without an AEAD cipher; hyper offers them all the same, as the
    RFC allows, so that a server that picks one can answer over HTTP/1.1.

    :param name: e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``.
    :returns: whether the suite has an ephemeral (EC)DHE key exchange and an AEAD cipher.
    """
    ephemeral = name.startswith(("ECDHE-", "DHE-"))
    aead = "GCM" in name or "CHACHA20" in name or "CCM" in name
    return ephemeral and aead


def _send_all(channel: TLSChannel, deadline: float | None, host: str) -> None:
    """Send the handshake's ciphertext, waiting for the socket as needed."""
    while not channel.flush():
        _wait(channel.sock, _OUT, deadline, host)


def _wait(sock: socket.socket, events: int, deadline: float | None, host: str) -> None:
    """Wait for ``sock`` during the handshake; time out at ``deadline``."""
    while True:
        step, last = poll_step(deadline)
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock.fileno(), events)
            ready = bool(poller.poll(int(step * 1000) + 1))
        else:  # Windows
            reading = events == _IN
            found = select.select([sock] if reading else [], [] if reading else [sock], [], step)
            ready = bool(found[0] or found[1])
        if ready:
            return
        if last:
            raise ConnectTimeout(f"TLS handshake with {host} timed out")
