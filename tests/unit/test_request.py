"""Tests for hyper.common.request: methods, targets, URLs, header pairs and request bodies."""

from __future__ import annotations

import array
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper.common.exceptions import InvalidRequest
from hyper.common.headers import HTTPHeaderMap
from hyper.common.request import (
    BODY_READ_SIZE,
    RequestBody,
    check_method,
    check_target,
    iter_header_pairs,
    split_absolute_url,
    to_header_bytes,
)

# -- to_header_bytes ---------------------------------------------------------------------------


def test_to_header_bytes_conversions() -> None:
    assert to_header_bytes(b"x", "value") == b"x"
    assert to_header_bytes("é", "value") == "é".encode()
    assert to_header_bytes(42, "value") == b"42"
    assert to_header_bytes(bytearray(b"ab"), "value") == b"ab"
    assert to_header_bytes(memoryview(b"ab"), "value") == b"ab"


@pytest.mark.parametrize("value", [True, None, 1.5, ["a"]])
def test_to_header_bytes_rejects(value: object) -> None:
    with pytest.raises(InvalidRequest, match="header value must be str or bytes"):
        to_header_bytes(value, "value")


# -- check_method ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", b"GET"),
        (b"POST", b"POST"),
        ("M-SEARCH", b"M-SEARCH"),
        ("PROPFIND", b"PROPFIND"),
        ("get", b"get"),  # methods are case-sensitive: kept as given
        ("X!#$%&'*+.^_`|~9", b"X!#$%&'*+.^_`|~9"),
    ],
)
def test_check_method_accepts_tokens(method: str | bytes, expected: bytes) -> None:
    assert check_method(method) == expected


@pytest.mark.parametrize(
    "method",
    ["", "GE T", "GET\r\n", "GET\n", "GET\x00", "GET\t", "G(E)T", "GÉT", b"GET /", "GET:"],
)
def test_check_method_rejects(method: str | bytes) -> None:
    with pytest.raises(InvalidRequest, match="invalid request method"):
        check_method(method)


def test_check_method_rejects_non_text() -> None:
    with pytest.raises(InvalidRequest):
        check_method(None)  # type: ignore[arg-type]


# -- check_target ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["/", "*", "/path?q=1&r=%20", "https://example.com/x", b"/bytes", "/a;b,c@d:e"],
)
def test_check_target_accepts(target: str | bytes) -> None:
    expected = target if isinstance(target, bytes) else target.encode()
    assert check_target(target) == expected


@pytest.mark.parametrize(
    "target",
    ["", "/a b", "/a\tb", "/a\r\nHost: evil", "/a\n", "/a\x00", "/a\x7f", "/a\x1b", b"/\x0b"],
)
def test_check_target_rejects(target: str | bytes) -> None:
    with pytest.raises(InvalidRequest, match="invalid request target"):
        check_target(target)


def test_check_target_truncates_long_targets_in_the_message() -> None:
    with pytest.raises(InvalidRequest) as info:
        check_target("/" + "a" * 5000 + " ")
    assert len(str(info.value)) < 400


# -- split_absolute_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", (None, None, b"/")),
        ("/path?q=1", (None, None, b"/path?q=1")),
        (b"/bytes", (None, None, b"/bytes")),
        ("*", (None, None, b"*")),
        ("https://example.com:8443/path?q", (b"https", b"example.com:8443", b"/path?q")),
        ("http://example.com", (b"http", b"example.com", b"/")),
        ("http://example.com?q=1", (b"http", b"example.com", b"/?q=1")),
        ("https://example.com/a/b/", (b"https", b"example.com", b"/a/b/")),
        ("HTTPS://Example.com/x", (b"https", b"Example.com", b"/x")),
        ("http://[::1]:8080/x", (b"http", b"[::1]:8080", b"/x")),
        (b"https://example.com/x", (b"https", b"example.com", b"/x")),
    ],
)
def test_split_absolute_url(
    url: str | bytes, expected: tuple[bytes | None, bytes | None, bytes]
) -> None:
    assert split_absolute_url(url) == expected


def test_split_absolute_url_drops_user_info() -> None:
    scheme, authority, path = split_absolute_url("https://user:secret@example.com:8443/p")
    assert authority == b"example.com:8443"
    assert b"secret" not in authority
    assert (scheme, path) == (b"https", b"/p")


def test_split_absolute_url_drops_the_fragment() -> None:
    assert split_absolute_url("https://example.com/p?q=1#frag") == (
        b"https",
        b"example.com",
        b"/p?q=1",
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com/path",
        "ftp://example.com/file",
        "ws://example.com/",
        "http:///path",
        "http:/path",
        "https://exa mple.com/",
        "https://example.com/a b",
        "https://example.com/\r\nX: y",
        # A non-ASCII host is encoded (tests/test_host_names.py); a non-ASCII path is not.
        "https://bücher.de/ä",
        "https://bü cher.de/",
    ],
)
def test_split_absolute_url_rejects(url: str) -> None:
    with pytest.raises(InvalidRequest):
        split_absolute_url(url)


def test_split_absolute_url_rejects_user_info_without_host() -> None:
    with pytest.raises(InvalidRequest):
        split_absolute_url("http://user@/path")


# -- iter_header_pairs -------------------------------------------------------------------------


def test_iter_header_pairs_none_and_empty() -> None:
    assert list(iter_header_pairs(None)) == []
    assert list(iter_header_pairs({})) == []
    assert list(iter_header_pairs([])) == []


def test_iter_header_pairs_from_mapping_keeps_order_and_case() -> None:
    pairs = list(iter_header_pairs({"X-First": "1", b"x-second": b"2", "Accept": "*/*"}))
    assert pairs == [(b"X-First", b"1"), (b"x-second", b"2"), (b"Accept", b"*/*")]


def test_iter_header_pairs_mapping_with_list_values() -> None:
    pairs = list(iter_header_pairs({"Cookie": ["a=1", b"b=2"], "X-T": ("x", "y"), "One": "v"}))
    assert pairs == [
        (b"Cookie", b"a=1"),
        (b"Cookie", b"b=2"),
        (b"X-T", b"x"),
        (b"X-T", b"y"),
        (b"One", b"v"),
    ]


def test_iter_header_pairs_from_list_keeps_duplicates() -> None:
    pairs = list(iter_header_pairs([("A", "1"), ("B", "2"), ("a", "3")]))
    assert pairs == [(b"A", b"1"), (b"B", b"2"), (b"a", b"3")]


def test_iter_header_pairs_list_pair_with_list_value() -> None:
    assert list(iter_header_pairs([("A", ["1", "2"])])) == [(b"A", b"1"), (b"A", b"2")]


def test_iter_header_pairs_from_generator() -> None:
    def gen() -> Iterator[tuple[str, str]]:
        yield "A", "1"
        yield "B", "2"

    assert list(iter_header_pairs(gen())) == [(b"A", b"1"), (b"B", b"2")]


def test_iter_header_pairs_from_header_map_uses_raw_fields() -> None:
    headers = HTTPHeaderMap([("Accept", "text/html, text/plain"), ("X-Case", "v")])
    headers["accept"] = "*/*"
    pairs = list(iter_header_pairs(headers))
    # Original case, comma-joined values left unsplit, order kept.
    assert pairs == [
        (b"Accept", b"text/html, text/plain"),
        (b"X-Case", b"v"),
        (b"accept", b"*/*"),
    ]


def test_iter_header_pairs_converts_ints_and_strips_values() -> None:
    pairs = list(iter_header_pairs([("Content-Length", 42), ("X-Pad", " \t v a \t ")]))
    assert pairs == [(b"Content-Length", b"42"), (b"X-Pad", b"v a")]


def test_iter_header_pairs_allows_empty_value_and_utf8() -> None:
    pairs = list(iter_header_pairs([("X-Empty", ""), ("X-Text", "café")]))
    assert pairs == [(b"X-Empty", b""), (b"X-Text", "café".encode())]


@pytest.mark.parametrize(
    "name", ["", "Bad Name", "Bad:Name", "Bad\r\nName", "Bad\x00", "Bad\tName", "Bäd", "(x)"]
)
def test_iter_header_pairs_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid header name"):
        list(iter_header_pairs([(name, "v")]))


@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: 1", "a\rb", "a\nb", "a\x00b", b"a\nb", ["ok", "bad\r\n"]]
)
def test_iter_header_pairs_rejects_bad_values(value: object) -> None:
    with pytest.raises(InvalidRequest, match="CR, LF or NUL"):
        list(iter_header_pairs([("X-Test", value)]))


@pytest.mark.parametrize("value", [None, 1.5, object(), True])
def test_iter_header_pairs_rejects_non_text_values(value: object) -> None:
    with pytest.raises(InvalidRequest):
        list(iter_header_pairs({"X-Test": value}))


@pytest.mark.parametrize("item", [("only-one",), ("a", "b", "c"), 5, None])
def test_iter_header_pairs_rejects_non_pairs(item: object) -> None:
    with pytest.raises(InvalidRequest, match="pairs"):
        list(iter_header_pairs([item]))  # type: ignore[list-item]


def test_iter_header_pairs_rejects_string_items() -> None:
    # "XY" is not a pair, but tuple-unpacking a 2-character string succeeds.
    with pytest.raises(InvalidRequest, match="pairs"):
        list(iter_header_pairs([("A", "1"), "XY"]))  # type: ignore[list-item]


def test_iter_header_pairs_checks_lazily_but_before_yielding_bad_pair() -> None:
    pairs = iter_header_pairs([("Good", "1"), ("Bad", "x\ny")])
    assert next(pairs) == (b"Good", b"1")
    with pytest.raises(InvalidRequest):
        next(pairs)


# -- RequestBody: in memory --------------------------------------------------------------------


def test_body_none() -> None:
    body = RequestBody(None)
    assert body.data == b""
    assert body.length == 0
    assert body.is_empty
    assert list(body.chunks()) == []


def test_body_bytes_is_kept_without_copy() -> None:
    data = b"hello world"
    body = RequestBody(data)
    assert body.data is data
    assert body.length == 11
    assert not body.is_empty
    chunks = list(body.chunks())
    assert chunks == [data]
    assert chunks[0] is data


def test_body_empty_bytes() -> None:
    body = RequestBody(b"")
    assert body.length == 0
    assert body.is_empty
    assert list(body.chunks()) == []


def test_body_bytearray() -> None:
    body = RequestBody(bytearray(b"abc"))
    assert body.length == 3
    assert [bytes(c) for c in body.chunks()] == [b"abc"]


def test_body_memoryview_of_wide_items_counts_bytes() -> None:
    items = array.array("H", [1, 2, 3])
    body = RequestBody(memoryview(items))
    assert body.length == 6
    (chunk,) = body.chunks()
    assert bytes(chunk) == items.tobytes()


def test_body_empty_memoryview() -> None:
    body = RequestBody(memoryview(b""))
    assert body.is_empty
    assert list(body.chunks()) == []


def test_body_non_contiguous_memoryview() -> None:
    view = memoryview(b"abcdef")[::2]
    body = RequestBody(view)
    assert body.length == 3
    assert b"".join(bytes(c) for c in body.chunks()) == b"ace"


def test_body_str_is_utf8_and_length_counts_bytes() -> None:
    body = RequestBody("é✓")
    assert body.data == "é✓".encode()
    assert body.length == 5
    assert list(body.chunks()) == ["é✓".encode()]


# -- RequestBody: files ------------------------------------------------------------------------


def test_body_bytesio_length_from_position() -> None:
    source = io.BytesIO(b"0123456789")
    source.seek(3)
    body = RequestBody(source)
    assert body.data is None
    assert body.length == 7
    assert not body.is_empty
    assert b"".join(body.chunks()) == b"3456789"


def test_body_bytesio_at_end_is_empty() -> None:
    source = io.BytesIO(b"abc")
    source.read()
    body = RequestBody(source)
    assert body.length == 0
    assert body.is_empty
    assert list(body.chunks()) == []


def test_body_real_file_length_is_size_minus_position(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    payload = os.urandom(BODY_READ_SIZE * 2 + 100)
    path.write_bytes(payload)
    with path.open("rb") as source:
        source.seek(50)
        body = RequestBody(source)
        assert body.length == len(payload) - 50
        chunks = list(body.chunks())
    assert b"".join(chunks) == payload[50:]
    assert all(0 < len(c) <= BODY_READ_SIZE for c in chunks)
    assert len(chunks) == 3


def test_body_unbuffered_file(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"abcdef")
    with path.open("rb", buffering=0) as source:
        body = RequestBody(source)
        assert body.length == 6
        assert b"".join(body.chunks()) == b"abcdef"


def test_body_file_positioned_past_its_end(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"abc")
    with path.open("rb") as source:
        source.seek(10)
        body = RequestBody(source)
        assert body.length == 0
        assert list(body.chunks()) == []


def test_body_text_file_has_unknown_length_and_is_encoded(tmp_path: Path) -> None:
    path = tmp_path / "body.txt"
    path.write_text("héllo\nwörld\n", encoding="utf-8")
    with path.open("r", encoding="utf-8", newline="") as source:
        body = RequestBody(source)
        assert body.length is None
        assert not body.is_empty
        data = b"".join(body.chunks())
    assert data == "héllo\nwörld\n".encode()


def test_body_stringio() -> None:
    body = RequestBody(io.StringIO("ünïcode"))
    assert body.length is None
    chunks = list(body.chunks())
    assert all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) == "ünïcode".encode()


def test_body_pipe_has_unknown_length() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(b"through a pipe")
        body = RequestBody(reader)
        assert body.length is None
        assert not body.is_empty
        assert b"".join(body.chunks()) == b"through a pipe"


def test_body_readable_without_fileno() -> None:
    class Reader:
        def __init__(self) -> None:
            self.pieces = [b"ab", "cé", b""]

        def read(self, size: int = -1) -> bytes | str:
            assert size == BODY_READ_SIZE
            return self.pieces.pop(0)

    body = RequestBody(Reader())
    assert body.length is None
    assert list(body.chunks()) == [b"ab", "cé".encode()]


def test_body_buffered_reader_over_bytesio_has_unknown_length() -> None:
    # fileno() raises io.UnsupportedOperation here; that must mean "unknown", not an error.
    body = RequestBody(io.BufferedReader(io.BytesIO(b"wrapped")))
    assert body.length is None
    assert b"".join(body.chunks()) == b"wrapped"


# -- RequestBody: iterables --------------------------------------------------------------------


def test_body_generator() -> None:
    def gen() -> Iterator[bytes | str]:
        yield b"one,"
        yield b""
        yield "two,"
        yield bytearray(b"three")

    body = RequestBody(gen())
    assert body.data is None
    assert body.length is None
    assert not body.is_empty
    chunks = list(body.chunks())
    assert chunks == [b"one,", b"two,", bytearray(b"three")]


def test_body_list_of_bytes() -> None:
    # A list or tuple is already in memory: checked and joined at once, so its length is
    # known and the request can be sent again.
    body = RequestBody([b"a", "b", bytearray(b"c")])
    assert body.length == 3
    assert body.data == b"abc"
    assert list(body.chunks()) == [b"abc"]


def test_body_list_with_a_bad_piece_is_refused_at_once() -> None:
    with pytest.raises(InvalidRequest):
        RequestBody((b"ok", 42))


def test_body_iterable_yielding_non_bytes_fails_when_sent() -> None:
    body = RequestBody(iter([b"ok", 42]))
    chunks = body.chunks()
    assert next(chunks) == b"ok"
    with pytest.raises(InvalidRequest, match="gave int"):
        next(chunks)


@pytest.mark.parametrize("value", [42, 1.5, {"a": b"b"}, object(), True])
def test_body_invalid_types(value: object) -> None:
    with pytest.raises(InvalidRequest, match="body must be"):
        RequestBody(value)  # type: ignore[arg-type]
