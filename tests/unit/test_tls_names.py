"""Tests for hyper.tls.certificate_names and certificate_covers (the push authority check).

``certificate_names`` reads the subjectAltName of a certificate as
:meth:`ssl.SSLSocket.getpeercert` returns it; the tests use hand-written dicts of that shape
and real certificates decoded by CPython (trustme-issued, decoded with the same code
``getpeercert`` uses), so the spelling of IP addresses is the one hyper meets in practice.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from hyper.tls import certificate_covers, certificate_names


def decoded(tmp_path: Path, *identities: str) -> dict[str, Any]:
    """A trustme certificate for ``identities``, as getpeercert() would return it."""
    leaf = trustme.CA().issue_cert(*identities)
    path = tmp_path / "leaf.pem"
    leaf.cert_chain_pems[0].write_to_path(str(path))
    # The decoder behind SSLSocket.getpeercert(), reachable without a handshake.
    return ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined,no-any-return]


# -- certificate_names -------------------------------------------------------------------------


def test_names_collects_dns_and_ip_entries_lowercased() -> None:
    cert = {
        "subject": ((("commonName", "ignored.example"),),),
        "subjectAltName": (
            ("DNS", "Example.COM"),
            ("DNS", "*.Example.com"),
            ("IP Address", "192.0.2.7"),
            ("IP Address", "2001:DB8:0:0:0:0:0:1"),
        ),
    }
    names = certificate_names(cert)
    assert isinstance(names, frozenset)
    assert len(names) == 4
    assert {"example.com", "*.example.com", "192.0.2.7"} <= names
    # The IPv6 entry is kept in some spelling; whichever, it covers the address.
    (ipv6,) = names - {"example.com", "*.example.com", "192.0.2.7"}
    assert ipv6 == ipv6.lower()
    assert certificate_covers(names, "2001:db8:0:0:0:0:0:1")
    assert certificate_covers(names, "2001:db8::1")
    assert not certificate_covers(names, "ignored.example")


def test_names_ignore_other_san_types_and_the_subject() -> None:
    cert = {
        "subject": ((("commonName", "cn.example"),),),
        "subjectAltName": (
            ("email", "someone@mail.example"),
            ("URI", "https://uri.example/"),
            ("DirName", ((("commonName", "dir.example"),),)),
            ("DNS", "only.example"),
        ),
    }
    assert certificate_names(cert) == frozenset({"only.example"})


def test_names_strip_the_newline_old_pythons_appended_to_ipv6() -> None:
    names = certificate_names({"subjectAltName": (("IP Address", "0:0:0:0:0:0:0:1\n"),)})
    assert len(names) == 1
    assert not [name for name in names if name != name.strip()]
    assert certificate_covers(names, "0:0:0:0:0:0:0:1")


@pytest.mark.parametrize(
    "cert",
    [
        None,
        {},
        {"subject": ((("commonName", "cn.example"),),)},  # no SAN: the CN is not used
        {"subjectAltName": ()},
    ],
    ids=["none", "empty-dict", "no-san", "empty-san"],
)
def test_names_without_san_are_empty(cert: dict[str, Any] | None) -> None:
    names = certificate_names(cert)
    assert names == frozenset()
    assert isinstance(names, frozenset)
    assert not certificate_covers(names, "cn.example")


def test_names_of_a_real_certificate(tmp_path: Path) -> None:
    cert = decoded(tmp_path, "LocalHost", "*.Example.org", "127.0.0.1", "::1")
    names = certificate_names(cert)
    assert {"localhost", "*.example.org", "127.0.0.1"} <= names
    assert len(names) == 4  # ::1, in whatever spelling the decoder uses
    assert certificate_covers(names, "localhost")
    assert certificate_covers(names, "www.example.org")
    assert certificate_covers(names, "127.0.0.1")
    assert not certificate_covers(names, "example.org")
    assert not certificate_covers(names, "127.0.0.2")


# -- certificate_covers: names ------------------------------------------------------------------

NAMES = frozenset({"example.com", "*.example.com", "api.service.test", "localhost"})


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("example.com", True),
        ("localhost", True),
        ("api.service.test", True),
        ("EXAMPLE.com", True),  # case-insensitive
        ("LocalHost", True),
        ("example.com.", True),  # a trailing dot names the same host
        ("API.Service.Test.", True),
        ("other.test", False),
        ("service.test", False),
        ("xapi.service.test", False),
        ("example.co", False),
        ("example.com.evil", False),
        ("", False),
        (".", False),
    ],
)
def test_covers_exact_names(host: str, covered: bool) -> None:
    assert certificate_covers(NAMES, host) is covered


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("a.example.com", True),
        ("www.example.com", True),
        ("WWW.Example.COM", True),
        ("www.example.com.", True),
        ("123.example.com", True),  # a numeric label is still a name, not an IP
        ("xn--bcher-kva.example.com", True),
        ("a.b.example.com", False),  # one label only
        ("x.y.z.example.com", False),
        (".example.com", False),  # an empty label
        ("a.example.org", False),
        ("aexample.com", False),
    ],
)
def test_wildcard_covers_exactly_one_leftmost_label(host: str, covered: bool) -> None:
    names = frozenset({"*.example.com"})
    assert certificate_covers(names, host) is covered


def test_wildcard_does_not_cover_its_parent() -> None:
    assert not certificate_covers(frozenset({"*.example.com"}), "example.com")
    assert certificate_covers(frozenset({"*.example.com", "example.com"}), "example.com")


@pytest.mark.parametrize("pattern", ["f*.example.com", "*oo.example.com", "www.*.com"])
def test_partial_and_inner_wildcards_cover_nothing_else(pattern: str) -> None:
    names = frozenset({pattern})
    for host in ("foo.example.com", "www.example.com", "www.a.com"):
        assert not certificate_covers(names, host)


def test_empty_names_cover_nothing() -> None:
    for host in ("localhost", "example.com", "127.0.0.1", "::1"):
        assert not certificate_covers(frozenset(), host)


# -- certificate_covers: IP addresses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "host"),
    [
        ({"*.0.0.1"}, "127.0.0.1"),
        ({"*.2.0.192"}, "192.0.2.1"),  # reversed-looking, still never a wildcard match
        ({"*.0.2.1"}, "192.0.2.1"),
        ({"*.168.1.1"}, "10.168.1.1"),
        ({"*.1"}, "10.1"),
        ({"*.example.com"}, "10.0.0.1"),
    ],
)
def test_wildcards_never_cover_ipv4_addresses(names: set[str], host: str) -> None:
    assert not certificate_covers(frozenset(names), host)


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("192.0.2.70", False),
        ("2001:db8:0:0:0:0:0:1", True),
        ("2001:DB8:0:0:0:0:0:1", True),  # hex digits in either case
        ("2001:db8:0:0:0:0:0:2", False),
        ("0:0:0:0:0:0:0:1", False),
        ("fe80:0:0:0:0:0:0:1", False),
    ],
)
def test_ip_addresses_are_matched_exactly(host: str, covered: bool) -> None:
    names = certificate_names(
        {
            "subjectAltName": (
                ("IP Address", "192.0.2.7"),
                ("IP Address", "2001:DB8:0:0:0:0:0:1"),
            )
        }
    )
    assert certificate_covers(names, host) is covered


def test_wildcards_never_cover_ipv6_addresses() -> None:
    names = frozenset({"*.example.com", "*:db8:0:0:0:0:0:1", "*"})
    for host in ("2001:db8:0:0:0:0:0:1", "::1", "0:0:0:0:0:0:0:1"):
        assert not certificate_covers(names, host)


@pytest.mark.parametrize(
    ("san", "host"),
    [
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:0db8::0001"),
        ("FE80:0:0:0:0:0:0:1", "fe80::1"),
    ],
)
def test_ipv6_addresses_match_whatever_their_spelling(san: str, host: str) -> None:
    names = certificate_names({"subjectAltName": (("IP Address", san),)})
    assert certificate_covers(names, host)


def test_real_certificate_covers_ipv6_loopback(tmp_path: Path) -> None:
    names = certificate_names(decoded(tmp_path, "localhost", "::1"))
    assert certificate_covers(names, "::1")
    assert certificate_covers(names, "0:0:0:0:0:0:0:1")
    assert certificate_covers(names, "0000:0000:0000:0000:0000:0000:0000:0001")


def test_real_certificate_ipv6_entry_does_not_cover_other_addresses(tmp_path: Path) -> None:
    names = certificate_names(decoded(tmp_path, "localhost", "::1"))
    for host in ("::2", "0:0:0:0:0:0:0:2", "127.0.0.1", "fe80::1"):
        assert not certificate_covers(names, host)
