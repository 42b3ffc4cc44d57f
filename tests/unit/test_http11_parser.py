"""Sans-I/O tests of the HTTP/1.1 response head parser (hyper.http11.parser.Parser)."""

from __future__ import annotations

import pytest

from hyper.common.exceptions import InvalidResponse, InvalidResponseHeader, LineTooLongError
from hyper.http11.parser import DEFAULT_MAX_HEADERS, DEFAULT_MAX_LINE, Parser, ResponseHead

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\n"
    b"X-Empty:\r\n"
    b"Set-Cookie: a=1\r\n"
    b"Set-Cookie: b=2\r\n"
    b"\r\n"
)
BODY = b"hello"
EXPECTED_HEADERS = [
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"Content-Length", b"5"),
    (b"X-Empty", b""),
    (b"Set-Cookie", b"a=1"),
    (b"Set-Cookie", b"b=2"),
]


def _parse(data: bytes, **kwargs: int) -> ResponseHead:
    head = Parser(**kwargs).parse_response(data)
    assert head is not None
    return head


def _refused(data: bytes, **kwargs: int) -> InvalidResponse:
    with pytest.raises(InvalidResponse) as info:
        Parser(**kwargs).parse_response(data)
    return info.value


# -- complete heads ---------------------------------------------------------------------------


def test_complete_head() -> None:
    head = _parse(HEAD + BODY)
    assert (head.minor_version, head.status, head.reason) == (1, 200, "OK")
    assert head.headers == EXPECTED_HEADERS
    assert head.consumed == len(HEAD)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_buffers(kind: type) -> None:
    head = _parse(kind(HEAD + BODY))
    assert head.consumed == len(HEAD)
    assert head.headers == EXPECTED_HEADERS


def test_incomplete_at_every_split_point() -> None:
    parser = Parser()
    for end in range(len(HEAD)):
        assert parser.parse_response(HEAD[:end]) is None, end
    head = parser.parse_response(HEAD)
    assert head is not None
    assert head.consumed == len(HEAD)


def test_incomplete_at_every_split_point_lf_only() -> None:
    data = HEAD.replace(b"\r\n", b"\n")
    parser = Parser()
    for end in range(len(data)):
        assert parser.parse_response(data[:end]) is None, end
    head = _parse(data)
    assert head.consumed == len(data)
    assert head.headers == EXPECTED_HEADERS


def test_consumed_stops_at_first_blank_line() -> None:
    second = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    head = _parse(HEAD + second)
    assert head.consumed == len(HEAD)
    assert _parse((HEAD + second)[head.consumed :]).status == 404


def test_no_headers() -> None:
    head = _parse(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (head.status, head.reason, head.headers, head.consumed) == (204, "No Content", [], 27)


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        (b"HTTP/1.1 404 Not Found", 404, "Not Found"),
        (b"HTTP/1.1 200 Very  Much   OK ", 200, "Very  Much   OK "),
        (b"HTTP/1.1 200 OK\tfine", 200, "OK\tfine"),
        (b"HTTP/1.1 418 ", 418, ""),
        (b"HTTP/1.1 418", 418, ""),
        (b"HTTP/1.1 599 x", 599, "x"),
        (b"HTTP/1.1 100 Continue", 100, "Continue"),
        (b"HTTP/1.1 200 D\xe9j\xe0 vu", 200, "D\xe9j\xe0 vu"),
        (b"HTTP/1.1 200 caf\xc3\xa9", 200, "caf\xc3\xa9"),  # Latin-1, not UTF-8
    ],
)
def test_status_line(line: bytes, status: int, reason: str) -> None:
    head = _parse(line + b"\r\n\r\n")
    assert (head.minor_version, head.status, head.reason) == (1, status, reason)


def test_http10() -> None:
    head = _parse(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n")
    assert (head.minor_version, head.status, head.headers) == (0, 200, [(b"Server", b"old")])


@pytest.mark.parametrize("minor", [b"2", b"9"])
def test_a_later_http1_minor_version_is_read_as_http11(minor: bytes) -> None:
    head = _parse(b"HTTP/1." + minor + b" 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert (head.minor_version, head.status, head.reason) == (1, 200, "OK")


def test_obs_fold_is_unfolded() -> None:
    data = b"HTTP/1.1 200 OK\r\nX-Folded: first  \r\n   second\r\n\tthird\r\nX-Next: n\r\n\r\n"
    head = _parse(data)
    assert head.headers == [(b"X-Folded", b"first second third"), (b"X-Next", b"n")]
    assert head.consumed == len(data)


def test_lf_line_endings() -> None:
    data = b"HTTP/1.1 301 Moved\nLocation: /x\nContent-Length: 0\n\n"
    head = _parse(data + b"junk")
    assert (head.status, head.reason) == (301, "Moved")
    assert head.headers == [(b"Location", b"/x"), (b"Content-Length", b"0")]
    assert head.consumed == len(data)


def test_mixed_line_endings() -> None:
    data = b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\n"
    head = _parse(data)
    assert head.headers == [(b"A", b"1"), (b"B", b"2")]
    assert head.consumed == len(data)


def test_value_whitespace_stripped_and_inner_kept() -> None:
    head = _parse(b"HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nX-B:c\r\n\r\n")
    assert head.headers == [(b"X-A", b"a  b"), (b"X-B", b"c")]


def test_value_may_hold_obs_text_and_colons() -> None:
    head = _parse(b"HTTP/1.1 200 OK\r\nX-A: caf\xe9: a=b:c\r\n\r\n")
    assert head.headers == [(b"X-A", b"caf\xe9: a=b:c")]


def test_name_case_kept() -> None:
    head = _parse(b"HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: 0\r\n\r\n")
    assert head.headers == [(b"cOnTeNt-LeNgTh", b"0")]


# -- malformed heads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"garbage",
        b"",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 -20 OK",
        b"HTTP/2 200",
        b"HTTP/2.0 200 OK",
        b"HTTP/1.10 200 OK",
        b"HTTP/1 200 OK",
        b"http/1.1 200 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1\t200 OK",
        b" HTTP/1.1 200 OK",
        b"HTTP/1.1 200 O\x00K",
        b"HTTP/1.1 200 O\rK",
        b"ICY 200 OK",
    ],
)
def test_bad_status_line(line: bytes) -> None:
    error = _refused(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert type(error) is InvalidResponse


@pytest.mark.parametrize(
    "prefix", [b"garbage!", b"SSH-2.0-OpenSSH", b"\x00\x00\x06\x04\x00\x00\x00\x00\x00"]
)
def test_bad_status_line_detected_before_the_head_is_complete(prefix: bytes) -> None:
    # Not HTTP at all: no need to wait for a blank line that may never come.
    assert type(_refused(prefix)) is InvalidResponse


@pytest.mark.parametrize(
    "field",
    [
        b"NoColonHere",
        b"X-A : b",
        b"X-A\t: b",
        b": no name",
        b"X A: b",
        b"X-A\x00: b",
        b"X-\xe9: b",
        b"(X): b",
        b"X-A: a\rb",
        b"X-A: a\x00b",
        b"X-A: a\r",
    ],
)
def test_bad_header_line(field: bytes) -> None:
    error = _refused(b"HTTP/1.1 200 OK\r\nX-Before: 1\r\n" + field + b"\r\n\r\n")
    assert type(error) is InvalidResponseHeader


def test_continuation_without_a_field_before() -> None:
    assert type(_refused(b"HTTP/1.1 200 OK\r\n folded\r\n\r\n")) is InvalidResponseHeader


# -- limits -----------------------------------------------------------------------------------


def test_default_limits() -> None:
    parser = Parser()
    assert (parser.max_line_length, parser.max_headers) == (DEFAULT_MAX_LINE, DEFAULT_MAX_HEADERS)
    assert (DEFAULT_MAX_LINE, DEFAULT_MAX_HEADERS) == (65536, 100)


def _with_headers(count: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(count)) + b"\r\n"


def test_max_headers_default() -> None:
    assert len(_parse(_with_headers(100)).headers) == 100
    error = _refused(_with_headers(101))
    assert type(error) is InvalidResponse


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_max_headers_parameter(limit: int) -> None:
    assert len(_parse(_with_headers(limit), max_headers=limit).headers) == limit
    assert type(_refused(_with_headers(limit + 1), max_headers=limit)) is InvalidResponse


def test_obs_fold_does_not_count_as_a_field() -> None:
    data = b"HTTP/1.1 200 OK\r\nA: 1\r\n more\r\n more\r\nB: 2\r\n\r\n"
    assert _parse(data, max_headers=2).headers == [(b"A", b"1 more more"), (b"B", b"2")]


@pytest.mark.parametrize("limit", [64, 1000])
def test_max_line_length_parameter_header(limit: int) -> None:
    prefix = b"X-A: "
    at_limit = prefix + b"a" * (limit - len(prefix))
    head = _parse(b"HTTP/1.1 200 OK\r\n" + at_limit + b"\r\n\r\n", max_line_length=limit)
    assert head.headers == [(b"X-A", at_limit[len(prefix) :])]
    with pytest.raises(LineTooLongError):
        Parser(max_line_length=limit).parse_response(
            b"HTTP/1.1 200 OK\r\n" + at_limit + b"a\r\n\r\n"
        )


def test_max_line_length_parameter_status_line() -> None:
    line = b"HTTP/1.1 200 " + b"r" * 50
    assert _parse(line + b"\r\n\r\n", max_line_length=len(line)).reason == "r" * 50
    with pytest.raises(LineTooLongError):
        Parser(max_line_length=len(line) - 1).parse_response(line + b"\r\n\r\n")


def test_max_line_length_counts_without_line_ending() -> None:
    line = b"X-A: " + b"a" * 59  # 64 bytes
    for ending in (b"\r\n", b"\n"):
        data = b"HTTP/1.1 200 OK" + ending + line + ending + ending
        assert _parse(data, max_line_length=64).headers == [(b"X-A", b"a" * 59)]


def test_long_line_detected_before_the_head_is_complete() -> None:
    parser = Parser(max_line_length=100)
    partial = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200
    with pytest.raises(LineTooLongError):
        parser.parse_response(partial)


def test_long_line_default_limit() -> None:
    with pytest.raises(LineTooLongError):
        Parser().parse_response(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n")
    with pytest.raises(LineTooLongError):
        Parser().parse_response(b"HTTP/1.1 200 " + b"A" * 70_000 + b"\r\n\r\n")


def test_line_too_long_is_an_invalid_response() -> None:
    assert issubclass(LineTooLongError, InvalidResponse)


def test_parser_is_reusable_after_an_error() -> None:
    parser = Parser()
    with pytest.raises(InvalidResponse):
        parser.parse_response(b"HTTP/1.1 abc\r\n\r\n")
    head = parser.parse_response(HEAD)
    assert head is not None
    assert head.status == 200
