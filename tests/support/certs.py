"""Throw-away TLS material for the test suite, generated with :mod:`trustme`.

Everything is written below one directory (normally a ``tmp_path_factory``
directory) so that external servers such as ``nghttpd`` and ``hypercorn`` can
load the files by path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme

#: Identities the main server certificate is valid for.
SERVER_IDENTITIES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
#: Host name of the deliberately mismatching certificate.
WRONG_HOST = "wrong.example"


@dataclass(frozen=True)
class CertPaths:
    """PEM files making up one server identity.

    ``cert_path`` holds the leaf certificate followed by any intermediates
    (what servers expect as "certificate file"), ``key_path`` holds the
    private key and ``combined_path`` holds key + chain in one file.
    """

    cert_path: Path
    key_path: Path
    combined_path: Path
    identities: tuple[str, ...]


@dataclass(frozen=True)
class TLSMaterial:
    """All certificates of a test session.

    ``ca`` is the trusted CA (it can issue more certificates in tests);
    ``server`` is valid for :data:`SERVER_IDENTITIES`; ``wrong_host`` is valid
    only for :data:`WRONG_HOST`; ``expired`` is valid for the right names but
    expired yesterday; ``untrusted`` is valid for the right names but issued
    by a CA the client does not trust.
    """

    ca: trustme.CA
    ca_cert_path: Path
    server: CertPaths
    wrong_host: CertPaths
    expired: CertPaths
    untrusted: CertPaths


def _issue(
    ca: trustme.CA,
    directory: Path,
    stem: str,
    identities: tuple[str, ...],
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> CertPaths:
    """Issue a leaf for ``identities`` and write ``<stem>.pem``, ``.key`` and ``.combined.pem``."""
    leaf = ca.issue_cert(*identities, not_before=not_before, not_after=not_after)
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    combined_path = directory / f"{stem}.combined.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_path))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(combined_path))
    return CertPaths(cert_path, key_path, combined_path, identities)


def make_tls_material(directory: Path) -> TLSMaterial:
    """Create a CA and the server certificates used by the suite below ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="hyper test CA")
    ca_cert_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_cert_path))

    now = dt.datetime.now(dt.timezone.utc)
    rogue_ca = trustme.CA(organization_name="hyper untrusted CA")
    return TLSMaterial(
        ca=ca,
        ca_cert_path=ca_cert_path,
        server=_issue(ca, directory, "server", SERVER_IDENTITIES),
        wrong_host=_issue(ca, directory, "wrong-host", (WRONG_HOST,)),
        expired=_issue(
            ca,
            directory,
            "expired",
            SERVER_IDENTITIES,
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        ),
        untrusted=_issue(rogue_ca, directory, "untrusted", SERVER_IDENTITIES),
    )
