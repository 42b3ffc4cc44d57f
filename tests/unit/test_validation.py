"""
Tests for :mod:`hyper.http20.validation`: the one-pass checks of received header blocks
(responses, 1xx, trailers, pushed requests) and the bounded memory of valid names and values.

Every rule of RFC 9113 sections 8.2 and 8.3 that the module applies is checked on its own,
in every kind of block where it applies, and again after the same name or value was found
valid once (so that the remembered sets cannot let an invalid field through).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from hyper.http20 import validation
from hyper.http20.validation import (
    MalformedHeaders,
    check_informational,
    check_pushed_request,
    check_response,
    check_trailers,
)

Header = tuple[bytes, bytes]
Checker = Callable[[Sequence[Header]], None]

STATUS = [(b":status", b"200")]
PUSHED = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.test"),
    (b":path", b"/style.css"),
]


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    """Start and end every test with empty sets of remembered names and values."""
    validation._valid_names.clear()
    validation._valid_values.clear()
    yield
    validation._valid_names.clear()
    validation._valid_values.clear()


def in_response(*fields: Header) -> list[Header]:
    """A final response block: ``:status 200`` followed by ``fields``."""
    return [*STATUS, *fields]


def in_informational(*fields: Header) -> list[Header]:
    """A 1xx block: ``:status 103`` followed by ``fields``."""
    return [(b":status", b"103"), *fields]


def in_trailers(*fields: Header) -> list[Header]:
    """A trailer block: just ``fields``."""
    return list(fields)


def in_push(*fields: Header) -> list[Header]:
    """A promised request: the four request pseudo-header fields followed by ``fields``."""
    return [*PUSHED, *fields]


#: Each kind of block a regular field can appear in, with its checker.
BLOCKS: list[tuple[str, Callable[..., list[Header]], Checker]] = [
    ("response", in_response, check_response),
    ("informational", in_informational, check_informational),
    ("trailers", in_trailers, check_trailers),
    ("push", in_push, check_pushed_request),
]
BLOCK_IDS = [name for name, _, _ in BLOCKS]


def assert_malformed(checker: Checker, headers: Sequence[Header], *words: str) -> str:
    """``checker`` refuses ``headers`` with MalformedHeaders whose message has ``words``."""
    with pytest.raises(MalformedHeaders) as caught:
        checker(headers)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert isinstance(caught.value, ValueError)
    return message


# -- regular field names --------------------------------------------------------------------------

#: Every byte a field name may not contain, with the word the message must use.
_BAD_NAME_BYTES = (
    [bytes([b]) for b in range(0x00, 0x21)] + [bytes([b]) for b in range(0x7F, 0x100)] + [b":"]
)


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
def test_valid_blocks_pass(
    _kind: str, build: Callable[..., list[Header]], checker: Checker
) -> None:
    fields = [
        (b"content-type", b"text/plain"),
        (b"x-empty", b""),  # an empty value is allowed
        (b"te", b"trailers"),
        (b"te", b"TRAILERS"),
        (b"x-inner", b"a b\tc"),  # whitespace inside a value is fine
        (b"x-obs", b"caf\xc3\xa9 \x7f\x80"),  # so are DEL and 8-bit bytes in values
        (b"x-punct!#$%&'*+-.^_`|~", b"1"),
        (b"0digits9", b"2"),
    ]
    checker(build(*fields))
    checker(build(*fields))  # again, from the remembered sets


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
def test_uppercase_name(_kind: str, build: Callable[..., list[Header]], checker: Checker) -> None:
    for name in (b"Content-Type", b"X", b"x-Upper", b"ABC"):
        assert_malformed(checker, build((name, b"v")), "uppercase", repr(name))


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
def test_empty_name(_kind: str, build: Callable[..., list[Header]], checker: Checker) -> None:
    assert_malformed(checker, build((b"", b"v")), "empty name")


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
def test_every_illegal_name_byte(
    _kind: str, build: Callable[..., list[Header]], checker: Checker
) -> None:
    for bad in _BAD_NAME_BYTES:
        # (A leading colon makes a pseudo-header name: see the pseudo-header tests.)
        names = [b"x-" + bad + b"-y", b"x" + bad] + ([bad + b"x"] if bad != b":" else [])
        for name in names:
            assert_malformed(checker, build((name, b"v")), "invalid character")
    # A name made only of an illegal byte, and a lone control character.
    assert_malformed(checker, build((b"\x7f", b"v")))
    assert_malformed(checker, build((b" ", b"v")))


@pytest.mark.parametrize("name", [b"a:b", b"x-colon:", b"host:80"])
def test_colon_inside_a_name(name: bytes) -> None:
    for _, build, checker in BLOCKS:
        assert_malformed(checker, build((name, b"v")), "invalid character")


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize(
    "name", [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"]
)
def test_connection_specific_fields(
    _kind: str, build: Callable[..., list[Header]], checker: Checker, name: bytes
) -> None:
    assert_malformed(checker, build((name, b"close")), "connection-specific")
    # Also after other, valid fields, and every time (never remembered as valid).
    assert_malformed(checker, build((b"x-ok", b"1"), (name, b"x")), "connection-specific")
    assert name not in validation._valid_names


# -- field values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize(
    "value",
    [
        b"a\x00b",
        b"\x00",
        b"a\rb",
        b"a\nb",
        b"line\r\n",
        b"\r\nx-injected: 1",
        b" leading",
        b"\tleading",
        b"trailing ",
        b"trailing\t",
        b" ",
        b"\t",
        b"  both  ",
    ],
)
def test_bad_values(
    _kind: str, build: Callable[..., list[Header]], checker: Checker, value: bytes
) -> None:
    assert_malformed(checker, build((b"x-field", value)), "x-field")


@pytest.mark.parametrize(("_kind", "build", "checker"), BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize("value", [b"gzip", b"trailers, deflate", b"", b"chunked"])
def test_te_other_than_trailers(
    _kind: str, build: Callable[..., list[Header]], checker: Checker, value: bytes
) -> None:
    assert_malformed(checker, build((b"te", value)), "TE")


# -- the remembered sets --------------------------------------------------------------------------


def test_remembered_valid_value_does_not_admit_invalid_ones() -> None:
    check_response(in_response((b"content-type", b"text/plain")))
    assert b"text/plain" in validation._valid_values
    for value in (b"text/plain\r\n", b"text/plain ", b" text/plain", b"text/\x00plain"):
        assert_malformed(check_response, in_response((b"content-type", value)))
    # The remembered value is still accepted, under any name.
    check_trailers([(b"x-other", b"text/plain")])


def test_remembered_valid_name_does_not_admit_invalid_ones() -> None:
    check_response(in_response((b"x-name", b"1")))
    assert b"x-name" in validation._valid_names
    for name in (b"X-Name", b"x-name:", b"x-name ", b"x-n\x00ame", b"x-name\xff"):
        assert_malformed(check_response, in_response((name, b"1")))
    # A valid name with a bad value is still refused.
    assert_malformed(check_response, in_response((b"x-name", b"bad\n")))


def test_te_is_checked_every_time_even_with_remembered_name_and_value() -> None:
    check_response(in_response((b"te", b"trailers"), (b"accept-encoding", b"gzip")))
    assert b"te" in validation._valid_names
    assert b"gzip" in validation._valid_values
    # Both the name and the value are remembered as valid on their own; together they are not.
    assert_malformed(check_response, in_response((b"te", b"gzip")), "TE")
    assert_malformed(check_trailers, [(b"te", b"gzip")], "TE")


def test_invalid_fields_are_not_remembered() -> None:
    for headers in (
        in_response((b"Upper", b"v")),
        in_response((b"x-a", b"bad\r")),
        in_response((b"connection", b"close")),
    ):
        with pytest.raises(MalformedHeaders):
            check_response(headers)
    assert b"Upper" not in validation._valid_names
    assert b"bad\r" not in validation._valid_values
    assert b"connection" not in validation._valid_names


def test_memory_is_bounded_by_count() -> None:
    limit = validation._MEMORY_LIMIT
    for index in range(3 * limit + 7):
        check_response(in_response((b"x-%d" % index, b"value-%d" % index)))
        assert len(validation._valid_names) <= limit
        assert len(validation._valid_values) <= limit
    # After the memory was reset (more than once), old names and values are checked again.
    check_response(in_response((b"x-0", b"value-0")))
    assert_malformed(check_response, in_response((b"x-0", b"value-0\n")))
    assert_malformed(check_response, in_response((b"X-0", b"value-0")))


def test_memory_is_bounded_in_bytes() -> None:
    """What the remembered values hold stays small even when each value is long."""
    limit = validation._MEMORY_LIMIT
    for index in range(limit):
        check_response(in_response((b"x-long", b"%06d" % index + b"v" * (8 * 1024))))
    held = sum(len(value) for value in validation._valid_values)
    held += sum(len(name) for name in validation._valid_names)
    assert held <= 1024 * 1024, f"{held} bytes of remembered header values"


# -- :status --------------------------------------------------------------------------------------


@pytest.mark.parametrize("checker", [check_response, check_informational])
def test_status_rules(checker: Checker) -> None:
    checker([(b":status", b"204")])
    assert_malformed(checker, [], "without a :status")
    assert_malformed(checker, [(b"content-type", b"x")], "without a :status")
    for status in (b"", b"20", b"2000", b"abc", b"20a", b" 200", b"200 ", b"+20", b"\xb2\xb0\xb0"):
        assert_malformed(checker, [(b":status", status)], "invalid :status")
    assert_malformed(checker, [(b":status", b"200"), (b":status", b"200")], "two :status")
    assert_malformed(checker, [(b":status", b"200"), (b":status", b"404")], "two :status")


@pytest.mark.parametrize("checker", [check_response, check_informational])
def test_pseudo_header_after_regular_or_unknown(checker: Checker) -> None:
    # :status after a regular field.
    assert_malformed(checker, [(b"x-a", b"1"), (b":status", b"200")], ":status")
    # A pseudo-header after a regular field, following a valid :status.
    assert_malformed(checker, [*STATUS, (b"x-a", b"1"), (b":status", b"200")], "two :status")
    assert_malformed(checker, [*STATUS, (b"x-a", b"1"), (b":path", b"/")], ":path")
    # Request or unknown pseudo-headers in a response, anywhere.
    for name in (b":path", b":method", b":authority", b":scheme", b":protocol", b":foo", b":"):
        assert_malformed(checker, [*STATUS, (name, b"x")], repr(name))
        assert_malformed(checker, [(name, b"x"), *STATUS])


# -- trailers -------------------------------------------------------------------------------------


def test_pseudo_headers_in_trailers() -> None:
    check_trailers([])
    for name in (b":status", b":path", b":foo", b":"):
        assert_malformed(check_trailers, [(name, b"200")], "trailers")
        assert_malformed(check_trailers, [(b"grpc-status", b"0"), (name, b"1")], "trailers")


# -- pushed requests ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [b":method", b":scheme", b":path"])
def test_push_missing_pseudo_header(missing: bytes) -> None:
    headers = [(n, v) for n, v in PUSHED if n != missing]
    message = assert_malformed(check_pushed_request, headers, "without")
    assert missing.decode() in message


def test_push_without_authority_is_left_to_the_push_policy() -> None:
    check_pushed_request([(n, v) for n, v in PUSHED if n != b":authority"])


@pytest.mark.parametrize("name", [b":method", b":scheme", b":path", b":authority"])
def test_push_duplicate_pseudo_header(name: bytes) -> None:
    assert_malformed(check_pushed_request, [*PUSHED, (name, b"x")], "two " + name.decode())


@pytest.mark.parametrize("name", [b":method", b":scheme", b":path", b":authority"])
def test_push_empty_pseudo_header(name: bytes) -> None:
    headers = [(n, b"" if n == name else v) for n, v in PUSHED]
    assert_malformed(check_pushed_request, headers, "empty " + name.decode())


def test_push_pseudo_header_after_regular() -> None:
    headers = [(b":method", b"GET"), (b":scheme", b"https"), (b"x-a", b"1"), (b":path", b"/")]
    assert_malformed(check_pushed_request, headers, "after a regular field")
    assert_malformed(
        check_pushed_request, [*PUSHED, (b"accept", b"*/*"), (b":foo", b"x")], "after"
    )


@pytest.mark.parametrize("name", [b":status", b":protocol", b":foo"])
def test_push_unknown_or_response_pseudo_header(name: bytes) -> None:
    assert_malformed(check_pushed_request, [(name, b"x"), *PUSHED], repr(name))


def test_push_regular_fields_follow_the_rules() -> None:
    assert_malformed(check_pushed_request, in_push((b"Accept", b"*/*")), "uppercase")
    assert_malformed(check_pushed_request, in_push((b"accept", b"*/*\r\n")))
    assert_malformed(check_pushed_request, in_push((b"upgrade", b"h2c")), "connection-specific")


@pytest.mark.parametrize("value", [b"", b"-1", b"five", b"5, 6"])
def test_trailers_with_an_invalid_content_length_are_malformed(value: bytes) -> None:
    # Found by tests/fuzz/test_differential_h2.py: h2 refused such a block, hyper took it.
    assert_malformed(check_trailers, [(b"content-length", value)], "content-length")
