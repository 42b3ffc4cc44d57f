"""
Checks of the header blocks a server sends, in one pass per block (RFC 9113 section 8.2).

h2 can check received header blocks itself, but it chains eight generators over every field
and raises a connection error for what the RFC calls a malformed response, which is a stream
error (section 8.1.1). hyper turns h2's inbound checks off and applies the same rules here;
a malformed block then costs only its own stream, which is reset with PROTOCOL_ERROR.

Field names and values repeat from one response to the next (``server``, ``content-type``),
so the names and values found valid are remembered, in sets of bounded size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..common.grammar import CONNECTION_SPECIFIC_FIELDS

__all__ = [
    "MalformedHeaders",
    "check_informational",
    "check_pushed_request",
    "check_response",
    "check_trailers",
]

Header = tuple[bytes, bytes]

#: A regular field name: no control characters, space, uppercase, DEL or 8-bit bytes, and
#: no colon (section 8.2.1).
_NAME = re.compile(rb"[\x21-\x39\x3b-\x40\x5b-\x7e]+")
#: A field value may not contain NUL, CR or LF, nor start or end with space or tab.
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
#: How many distinct valid names and values are remembered before the memory is reset.
_MEMORY_LIMIT = 2048
#: Only names and values up to this long are remembered, so the memory stays small
#: (at most about 2 x 2048 x 256 bytes) whatever servers send.
_MEMORY_ITEM_LIMIT = 256

_valid_names: set[bytes] = set()
_valid_values: set[bytes] = set()


class MalformedHeaders(ValueError):
    """A header block breaks the rules of RFC 9113 section 8.2 or 8.3; the message says how."""


def _check_field(name: bytes, value: bytes) -> None:
    """Check one regular (non-pseudo) field; raise :class:`MalformedHeaders` if invalid."""
    if name not in _valid_names:
        if not _NAME.fullmatch(name):
            if not name:
                raise MalformedHeaders("a field with an empty name")
            if name.lower() != name:
                raise MalformedHeaders(f"an uppercase field name {name!r}")
            raise MalformedHeaders(f"an invalid character in the field name {name!r}")
        if name in CONNECTION_SPECIFIC_FIELDS:
            raise MalformedHeaders(f"the connection-specific field {name!r}")
        if len(name) <= _MEMORY_ITEM_LIMIT:
            if len(_valid_names) >= _MEMORY_LIMIT:
                _valid_names.clear()
            _valid_names.add(name)
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedHeaders(f"TE with a value other than 'trailers': {value!r}")
    if value and value not in _valid_values:
        if _BAD_VALUE.search(value):
            raise MalformedHeaders(
                f"the value of {name!r} contains NUL, CR or LF, or starts or ends with "
                f"whitespace: {value!r}"
            )
        if len(value) <= _MEMORY_ITEM_LIMIT:
            if len(_valid_values) >= _MEMORY_LIMIT:
                _valid_values.clear()
            _valid_values.add(value)


def _check_status(headers: Sequence[Header]) -> None:
    """
    Check that the block opens with exactly one valid ``:status`` and no other
    pseudo-header.
    """
    if not headers or headers[0][0] != b":status":
        if any(name[:1] == b":" for name, _ in headers):
            names = [name for name, _ in headers if name[:1] == b":"]
            raise MalformedHeaders(f"a response whose pseudo-header fields are {names!r}")
        raise MalformedHeaders("a response without a :status")
    status = headers[0][1]
    if len(status) != 3 or not status.isdigit():
        raise MalformedHeaders(f"an invalid :status {status!r}")
    for index in range(1, len(headers)):
        name = headers[index][0]
        if name[:1] == b":":
            if name == b":status":
                raise MalformedHeaders("a response with two :status fields")
            raise MalformedHeaders(f"the pseudo-header field {name!r} in a response")


def check_response(headers: Sequence[Header]) -> None:
    """
    Check a final response's header block.

    :param headers: the decoded fields, in order.
    :raises MalformedHeaders: if the block is malformed.
    """
    _check_status(headers)
    for index in range(1, len(headers)):
        name, value = headers[index]
        _check_field(name, value)


def check_informational(headers: Sequence[Header]) -> None:
    """
    Check an informational (1xx) response's header block.

    :param headers: the decoded fields, in order.
    :raises MalformedHeaders: if the block is malformed.
    """
    check_response(headers)


def check_trailers(headers: Sequence[Header]) -> None:
    """
    Check a trailer block: regular fields only.

    :param headers: the decoded fields, in order.
    :raises MalformedHeaders: if the block is malformed.
    """
    for name, value in headers:
        if name[:1] == b":":
            raise MalformedHeaders(f"the pseudo-header field {name!r} in trailers")
        if name == b"content-length" and not value.isdigit():
            # Framing information has no place after the body; one that is not even a
            # number is malformed wherever it stands (as h2 judges it too).
            raise MalformedHeaders(f"an invalid content-length in trailers: {value[:30]!r}")
        _check_field(name, value)


def check_pushed_request(headers: Sequence[Header]) -> None:
    """
    Check the request a server promises to answer (PUSH_PROMISE): the four request
    pseudo-header fields, once each, before any regular field.

    :param headers: the decoded fields, in order.
    :raises MalformedHeaders: if the block is malformed.
    """
    seen: set[bytes] = set()
    regular = False
    for name, value in headers:
        if name[:1] == b":":
            if regular:
                raise MalformedHeaders(f"the pseudo-header field {name!r} after a regular field")
            if name not in _REQUEST_PSEUDO:
                raise MalformedHeaders(f"the pseudo-header field {name!r} in a request")
            if name in seen:
                raise MalformedHeaders(f"two {name.decode()} fields")
            if not value:
                raise MalformedHeaders(f"an empty {name.decode()}")
            seen.add(name)
        else:
            regular = True
            _check_field(name, value)
    missing = {b":method", b":scheme", b":path"} - seen
    if missing:
        raise MalformedHeaders(f"a promised request without {sorted(missing)!r}")
