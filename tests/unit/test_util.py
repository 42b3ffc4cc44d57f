"""Tests for hyper.common.util: host strings, ports, authorities, bytes and versions."""

from __future__ import annotations

import pytest

from hyper.common.exceptions import InvalidRequest
from hyper.common.util import (
    HTTPVersion,
    authority_for,
    parse_port,
    to_bytestring,
    to_host_port_tuple,
    to_native_string,
)

# -- to_host_port_tuple ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", 443)),
        ("example.com:8443", ("example.com", 8443)),
        ("127.0.0.1", ("127.0.0.1", 443)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("localhost:1", ("localhost", 1)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]", ("::1", 443)),
        ("[::1]:8443", ("::1", 8443)),
        ("[2001:db8::7]:80", ("2001:db8::7", 80)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        ("::1", ("::1", 443)),
        ("2001:db8::7", ("2001:db8::7", 443)),
        ("  example.com:81  ", ("example.com", 81)),
        ("xn--bcher-kva.de", ("xn--bcher-kva.de", 443)),
    ],
)
def test_to_host_port_tuple_accepts(text: str, expected: tuple[str, int]) -> None:
    assert to_host_port_tuple(text, 443) == expected


def test_to_host_port_tuple_uses_the_default_port() -> None:
    assert to_host_port_tuple("example.com", 80) == ("example.com", 80)
    assert to_host_port_tuple("[::1]", 8080) == ("::1", 8080)
    # An explicit port wins over the default, even when they are equal.
    assert to_host_port_tuple("example.com:80", 80) == ("example.com", 80)


def test_to_host_port_tuple_returns_int_port() -> None:
    host, port = to_host_port_tuple("example.com:81", 443)
    assert isinstance(port, int)
    assert isinstance(host, str)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        ":80",
        "example.com:",
        "example.com:http",
        "example.com:0",
        "example.com:65536",
        "example.com:-1",
        "example.com:+80",
        "example.com:8 0",
        "[::1",
        "[::1]80",
        "[::1]:",
        "[::1]:x",
        "[::1]:70000",
        "[]",
        "[]:80",
        "exa mple.com",
        "example.com/path",
        "user@example.com",
        "example.com\r\nX-Injected: 1",
        "example\x00.com",
    ],
)
def test_to_host_port_tuple_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest):
        to_host_port_tuple(text, 443)


@pytest.mark.parametrize("value", [None, b"example.com", 443, ("example.com", 443)])
def test_to_host_port_tuple_rejects_non_str(value: object) -> None:
    with pytest.raises(InvalidRequest, match="must be a str"):
        to_host_port_tuple(value, 443)  # type: ignore[arg-type]


def test_to_host_port_tuple_rejects_unbalanced_closing_bracket() -> None:
    # The docstring promises InvalidRequest for an unbalanced bracket; "[" alone is caught,
    # a lone "]" ends up inside the host name.
    with pytest.raises(InvalidRequest):
        to_host_port_tuple("example.com]:80", 443)


# -- parse_port --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("80", 80), ("65535", 65535), (443, 443), (1, 1), (65535, 65535)],
)
def test_parse_port_accepts(value: str | int, expected: int) -> None:
    result = parse_port(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        "0",
        0,
        "65536",
        65536,
        "-1",
        -1,
        "",
        "http",
        "80a",
        "+80",
        "8_0",
        "٨٠",  # Arabic-Indic digits: int() takes them, a port must not
        "80.0",
        80.5,
        None,
        True,
    ],
)
def test_parse_port_rejects(value: object) -> None:
    with pytest.raises(InvalidRequest, match="invalid port"):
        parse_port(value)  # type: ignore[arg-type]


def test_parse_port_error_names_its_context() -> None:
    with pytest.raises(InvalidRequest, match=r"invalid port 'x' in 'host:x'"):
        parse_port("x", "host:x")
    with pytest.raises(InvalidRequest) as info:
        parse_port("x")
    assert " in " not in str(info.value)


# -- authority_for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "default", "expected"),
    [
        ("example.com", 443, 443, "example.com"),
        ("example.com", 8443, 443, "example.com:8443"),
        ("example.com", 80, 80, "example.com"),
        ("example.com", 443, 80, "example.com:443"),
        ("127.0.0.1", 8080, 80, "127.0.0.1:8080"),
        ("::1", 443, 443, "[::1]"),
        ("::1", 8443, 443, "[::1]:8443"),
        ("2001:db8::7", 80, 443, "[2001:db8::7]:80"),
        ("example.com", 443, -1, "example.com:443"),
    ],
)
def test_authority_for(host: str, port: int, default: int, expected: str) -> None:
    assert authority_for(host, port, default) == expected


def test_authority_round_trips_through_to_host_port_tuple() -> None:
    for host, port in [("example.com", 8443), ("::1", 8443), ("10.0.0.1", 81)]:
        assert to_host_port_tuple(authority_for(host, port, 443), 443) == (host, port)
        assert to_host_port_tuple(authority_for(host, 443, 443), 443) == (host, 443)


# -- to_bytestring / to_native_string ---------------------------------------------------------


def test_to_bytestring_returns_bytes_unchanged() -> None:
    value = b"abc"
    assert to_bytestring(value) is value


def test_to_bytestring_encodes_text_as_utf8() -> None:
    assert to_bytestring("abc") == b"abc"
    assert to_bytestring("é✓") == "é✓".encode()
    assert to_bytestring("") == b""


@pytest.mark.parametrize("value", [bytearray(b"xyz"), memoryview(b"xyz")])
def test_to_bytestring_copies_bytes_like(value: bytearray | memoryview) -> None:
    result = to_bytestring(value)
    assert result == b"xyz"
    assert type(result) is bytes


def test_to_bytestring_copies_bytearray_contents() -> None:
    source = bytearray(b"abc")
    result = to_bytestring(source)
    source[0] = ord("z")
    assert result == b"abc"


@pytest.mark.parametrize("value", [None, 1, 1.5, ["a"], object()])
def test_to_bytestring_rejects_other_types(value: object) -> None:
    with pytest.raises(InvalidRequest, match="expected str or bytes"):
        to_bytestring(value)  # type: ignore[arg-type]


def test_to_native_string() -> None:
    assert to_native_string("abc") == "abc"
    assert to_native_string(b"abc") == "abc"
    assert to_native_string("é".encode()) == "é"
    assert to_native_string(b"\xe9", "latin-1") == "é"
    with pytest.raises(UnicodeDecodeError):
        to_native_string(b"\xff")


# -- HTTPVersion -------------------------------------------------------------------------------


def test_http_version_values() -> None:
    assert HTTPVersion.http11.value == "HTTP/1.1"
    assert HTTPVersion.http20.value == "HTTP/2"
    assert HTTPVersion("HTTP/2") is HTTPVersion.http20
    assert HTTPVersion("HTTP/1.1") is HTTPVersion.http11
    assert HTTPVersion("HTTP/3") is HTTPVersion.http30
    assert len(HTTPVersion) == 3
    assert HTTPVersion.http11 != HTTPVersion.http20
