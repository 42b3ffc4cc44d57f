"""
The grammar of HTTP fields and messages, defined once for every module that checks it.

Names follow the RFCs: RFC 9110 (HTTP semantics) for tokens and field values, RFC 9112 (HTTP/1.1)
for message framing, RFC 9113 (HTTP/2) for the fields HTTP/2 forbids.
"""

from __future__ import annotations

import re

__all__ = [
    "CONNECTION_SPECIFIC_FIELDS",
    "FORBIDDEN_IN_TARGET",
    "FORBIDDEN_IN_VALUE",
    "TOKEN",
    "TOKEN_CHARACTERS",
]

#: The characters of a token (RFC 9110 section 5.6.2: ``tchar``), as a regular expression
#: character class body.
TOKEN_CHARACTERS = r"!#$%&'*+\-.^_`|~0-9A-Za-z"

#: A token (RFC 9110 section 5.6.2): what a method or a field name is made of.
TOKEN = re.compile(rb"[" + TOKEN_CHARACTERS.encode("ascii") + rb"]+")

#: Bytes that may not appear in a field value a client sends: CR and LF would end the field
#: line early, NUL truncates it in C code (RFC 9110 section 5.5).
FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\x00]")

#: Bytes a request target may not contain: whitespace and control characters would split the
#: request line.
FORBIDDEN_IN_TARGET = re.compile(rb"[\x00-\x20\x7f]")

#: Fields that describe one HTTP/1.1 hop, which HTTP/2 forbids (RFC 9113 section 8.2.2).
CONNECTION_SPECIFIC_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
