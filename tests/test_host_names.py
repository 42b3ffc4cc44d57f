"""Host names: the form hyper resolves, sends in TLS SNI, checks the certificate against and
writes into ``Host`` / ``:authority`` (:func:`hyper.common.hosts.encode_host`, applied where
a host name enters hyper).

* A non-ASCII name becomes IDNA 2008 A-labels after UTS 46 mapping, as in requests and
  browsers: ``faß.de`` is ``xn--fa-hia.de``, not the IDNA 2003 ``fass.de`` of Python's codec.
* ASCII names (A-labels included) and IP literals pass as given.
* A name IDNA refuses is an :class:`InvalidRequest` naming it, raised by the constructor.
* On the wire: a local server on 127.0.0.1 standing in for a proxy sees the A-label in the
  request target and ``Host`` (plain http), and in the ``CONNECT`` line, SNI, ``Host`` or
  ``:authority`` of a TLS origin behind the tunnel, whose certificate names only the A-label.
  No international name has to resolve: hyper only ever connects to the proxy's address.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import idna
import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.cli.errors import UsageError
from hyper.cli.request import parse_url, prepare_request
from hyper.common.exceptions import HyperError, InvalidRequest
from hyper.common.hosts import MAX_INTERNATIONAL_LENGTH, encode_host
from hyper.common.request import split_absolute_url
from hyper.common.util import HTTPVersion
from hyper.tls import init_context
from tests.support.certs import TLSMaterial
from tests.support.http11 import DEFAULT_TIMEOUT, Reply, http11_responder, reader_for, send_raw
from tests.support.scripted import ServerConnection, simple_responder

ConnectionClass = type[HTTP11Connection] | type[HTTP20Connection] | type[HTTPConnection]
CLASSES = [HTTPConnection, HTTP11Connection, HTTP20Connection]

# -- non-ASCII names become IDNA 2008 A-labels -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 keeps ß (IDNA 2003: fass.de)
        ("straße.de", "xn--strae-oqa.de"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example", "xn--bcher-kva.example"),  # UTS 46 folds upper case, ASCII too
        ("ÖBB.at", "xn--bb-eka.at"),
        ("\uff42ücher.example", "xn--bcher-kva.example"),  # a full-width b is mapped
        ("Bücher。example", "xn--bcher-kva.example"),  # so is the ideographic full stop
        ("bücher.example.", "xn--bcher-kva.example."),  # a final dot stays
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ],
)
def test_non_ascii_names_become_a_labels(name: str, expected: str) -> None:
    assert encode_host(name) == expected


def test_sharp_s_is_kept_where_pythons_idna_codec_folds_it() -> None:
    # The built-in codec, which socket and ssl apply to a str host, names another domain.
    assert "faß.de".encode("idna") == b"fass.de"
    assert encode_host("faß.de") == "xn--fa-hia.de"


# -- ASCII names and IP literals pass as given -------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "example.com",
        "Example.COM",  # case is kept: hyper 0.7 sent ASCII names as given
        "localhost",
        "example.com.",
        "xn--bcher-kva.example",  # already an A-label
        "XN--BCHER-KVA.example",
        "my_service.internal",  # not a valid IDNA label, but ASCII names are not checked so
        "a" * 63 + ".example",
    ],
)
def test_ascii_names_pass_as_given(name: str) -> None:
    assert encode_host(name) == name


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "[::1]", "2001:db8::7", "fe80::1%eth0", "[fe80::1%25eth0]"],
)
def test_ip_literals_pass_untouched(address: str) -> None:
    assert encode_host(address) == address


def test_full_width_digits_map_to_an_ipv4_address() -> None:
    # 127.0.0.1 written with FULLWIDTH DIGIT characters.
    full_width = "\uff11\uff12\uff17.\uff10.\uff10.\uff11"
    assert encode_host(full_width) == "127.0.0.1"


# -- names IDNA refuses are InvalidRequest -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bücher..example", "Empty Label"),
        (".bücher.example", "Empty Label"),
        ("ü" * 64 + ".de", "too long"),
        ("😀.de", "U+1F600"),
        ("bü_cher.de", "U+005F"),
        ("bücher.exa mple", "U+0020"),
        ("\ud800", "U+D800"),
        ("xn--zz.bücher", "A-label"),
    ],
)
def test_names_idna_refuses_are_invalid_request(name: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        encode_host(name)
    message = str(info.value)
    assert f"invalid host name {name!r}" in message
    assert reason in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, idna.IDNAError)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a..example", "empty label"),
        (".example", "empty label"),
        (".", "empty label"),
        ("a" * 64 + ".example", "longer than 63"),
        ("fe80::1%ëth0", "IPv6"),
    ],
)
def test_invalid_ascii_names_and_addresses_are_invalid_request(name: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason) as info:
        encode_host(name)
    assert f"invalid host name {name!r}" in str(info.value)


def test_an_overlong_international_name_is_refused_before_idna_processing() -> None:
    name = "ü\u00ad" * MAX_INTERNATIONAL_LENGTH  # soft hyphens, which UTS 46 drops
    with pytest.raises(InvalidRequest, match=f"longer than {MAX_INTERNATIONAL_LENGTH}") as info:
        encode_host(name)
    assert info.value.__cause__ is None


# -- the constructors ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("bücher.example", 8443, ("xn--bcher-kva.example", 8443)),
        ("bücher.example:8443", None, ("xn--bcher-kva.example", 8443)),
        ("FAß.de", None, ("xn--fa-hia.de", 443)),
        ("Example.COM:81", None, ("Example.COM", 81)),
        ("[fe80::1%eth0]:81", None, ("fe80::1%eth0", 81)),
    ],
)
def test_constructors_hold_the_encoded_host(
    cls: ConnectionClass, host: str, port: int | None, expected: tuple[str, int]
) -> None:
    conn = cls(host, port, secure=True)
    assert (conn.host, conn.port) == expected


@pytest.mark.parametrize("cls", CLASSES)
def test_a_63_character_label_before_a_port_is_accepted(cls: ConnectionClass) -> None:
    # The port is not part of the last label: Python's idna codec, applied to the whole
    # authority, counted ":8443" in and refused the name with a bare UnicodeError.
    host = "example." + "a" * 63
    conn = cls(f"{host}:8443", secure=True)
    assert (conn.host, conn.port) == (host, 8443)


@pytest.mark.parametrize("cls", CLASSES)
def test_proxy_host_is_encoded_too(cls: ConnectionClass) -> None:
    conn = cls("bücher.example", secure=True, proxy_host="prøxy.example:3128")
    assert (conn.proxy_host, conn.proxy_port) == ("xn--prxy-hra.example", 3128)


@pytest.mark.parametrize(
    ("url", "authority"),
    [
        ("https://faß.de:8443/x?y", b"xn--fa-hia.de:8443"),
        ("http://user@Bücher.example/", b"xn--bcher-kva.example"),
        ("https://example.org/", b"example.org"),
    ],
)
def test_absolute_urls_given_to_request_carry_the_a_label(url: str, authority: bytes) -> None:
    """An absolute URL passed to ``request()`` (a proxy's, or an HTTP/2 :authority) names
    its host as an A-label too."""
    assert split_absolute_url(url)[1] == authority


def test_an_absolute_url_with_a_non_ascii_path_is_still_refused() -> None:
    with pytest.raises(InvalidRequest, match="invalid request target"):
        split_absolute_url("http://bücher.example/ä")


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "bücher..example"},
        {"host": "bü_cher.example:8080"},
        {"host": "example.com", "proxy_host": "prøxy..example"},
    ],
)
def test_constructors_refuse_invalid_names(cls: ConnectionClass, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        cls(**kwargs)
    bad = kwargs.get("proxy_host") or kwargs["host"].partition(":")[0]
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, HyperError)


# -- what goes on the wire -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection])
@pytest.mark.parametrize(
    ("host", "wire"),
    [("Bücher.example", "xn--bcher-kva.example"), ("Example.COM", "Example.COM")],
)
def test_plain_http_request_names_the_a_label(
    scripted_raw_server: Any, cls: ConnectionClass, host: str, wire: str
) -> None:
    # Plain http through a proxy: the origin's name only appears in what hyper sends.
    recorder = http11_responder({}, default=Reply(200, body=b"ok"))
    with (
        scripted_raw_server(recorder) as proxy,
        cls(host, 8080, secure=False, proxy_host=proxy.authority, timeout=5) as conn,
    ):
        conn.request("GET", "/x")
        assert conn.get_response().read() == b"ok"
    (request,) = recorder.requests
    assert request.target == f"http://{wire}:8080/x"
    assert request.header("host") == f"{wire}:8080".encode()


@dataclass
class TunnelRecord:
    """What the proxy-and-origin saw: the CONNECT request, the SNI, the origin's requests."""

    connect: Any = None
    sni: list[str | None] = field(default_factory=list)
    origin_requests: list[Any] = field(default_factory=list)


def proxy_to_tls_origin(
    record: TunnelRecord, tls_material: TLSMaterial, name: str, alpn: list[str]
) -> Callable[[socket.socket], None]:
    """A handler that is a proxy and the TLS origin behind it in one: it answers CONNECT
    with 200, then does the TLS handshake with a certificate valid for ``name`` only and
    answers every request with ``ok``, over whichever of ``alpn`` was chosen."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_material.ca.issue_cert(name).configure_cert(context)
    context.set_alpn_protocols(alpn)
    context.sni_callback = lambda _sock, server_name, _ctx: record.sni.append(server_name)

    def handler(sock: socket.socket) -> None:
        record.connect = reader_for(sock).read_request()
        send_raw(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")
        sock.settimeout(DEFAULT_TIMEOUT)  # bounds the handshake
        with context.wrap_socket(sock, server_side=True) as tls:
            if tls.selected_alpn_protocol() == "h2":
                h2_responder = simple_responder({}, default=b"ok")
                h2_responder(ServerConnection(tls))
                record.origin_requests.extend(h2_responder.requests)
            else:
                h11_responder = http11_responder({}, default=Reply(200, body=b"ok"))
                h11_responder(tls)
                record.origin_requests.extend(h11_responder.requests)

    return handler


@pytest.mark.parametrize(
    ("cls", "alpn", "version"),
    [
        (HTTPConnection, ["h2", "http/1.1"], HTTPVersion.http20),
        (HTTP20Connection, ["h2"], HTTPVersion.http20),
        (HTTP11Connection, ["http/1.1"], HTTPVersion.http11),
    ],
)
def test_tls_origin_sees_the_a_label_in_connect_sni_and_authority(
    scripted_raw_server: Any,
    tls_material: TLSMaterial,
    cls: ConnectionClass,
    alpn: list[str],
    version: HTTPVersion,
) -> None:
    record = TunnelRecord()
    handler = proxy_to_tls_origin(record, tls_material, "xn--fa-hia.de", alpn)
    context = init_context(cert_path=str(tls_material.ca_cert_path))
    with (
        scripted_raw_server(handler) as proxy,
        cls("faß.de", secure=True, ssl_context=context, proxy_host=proxy.authority) as conn,
    ):
        conn.request("GET", "/")
        response = conn.get_response()
        # The handshake succeeded: the certificate, valid for the A-label only, was checked
        # against the A-label.
        assert response.read() == b"ok"
        assert response.version is version
    assert (record.connect.method, record.connect.target) == ("CONNECT", "xn--fa-hia.de:443")
    assert record.connect.header("host") == b"xn--fa-hia.de:443"
    assert record.sni == ["xn--fa-hia.de"]
    (request,) = record.origin_requests
    if version is HTTPVersion.http20:
        assert request.header(":authority") == b"xn--fa-hia.de"
        assert request.header("host") is None
    else:
        assert request.header("host") == b"xn--fa-hia.de"


# -- the command-line tool -------------------------------------------------------------------


def test_cli_host_header_names_the_a_label() -> None:
    prepared = prepare_request(None, "http://faß.de:8080/x", [])
    assert prepared.target.host == "xn--fa-hia.de"
    assert ("Host", "xn--fa-hia.de:8080") in prepared.headers


def test_cli_refuses_an_invalid_name_as_a_usage_error() -> None:
    with pytest.raises(UsageError, match=re.escape("invalid host name 'bücher..example'")):
        parse_url("http://bücher..example/")
