"""
The positional words of the ``hyper`` command: the method, the URL and the request items.

Everything here is a pure function of the words: files named by items are read later, when
the body is built (:mod:`hyper.cli.bodies`).

========================  ==================================================================
Item                      Meaning
========================  ==================================================================
``Header:value``          a request header
``name==value``           a query-string parameter
``field=value``           a body field, the string ``value``
``field:=json``           a body field, the raw JSON ``json``
``field=@path``           a body field, the text of the file ``path``
``field:=@path``          a body field, the JSON in the file ``path``
``field@path``            a file upload (``--form``: a multipart/form-data body)
``@path``                 the whole body: the file ``path``, as it is
========================  ==================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..common.grammar import TOKEN_CHARACTERS
from .errors import UsageError

#: A request method: an upper-case HTTP token.
_METHOD_RE = re.compile(r"[A-Z][A-Z0-9_-]*")
#: A header name: an HTTP token (RFC 9110 section 5.6.2).
_TOKEN_RE = re.compile("[" + TOKEN_CHARACTERS + "]+")
#: Item separators, longest first: at one position ``:=@`` wins over ``:=``, which wins over
#: ``:``; ``==`` and ``=@`` over ``=``.
_SEPARATORS = (":=@", ":=", "==", "=@", ":", "=", "@")
#: The characters a backslash escapes in an item's name.
_ESCAPABLE = ":=@\\"

ItemKind = Literal["header", "param", "field", "json", "field_file", "json_file", "file", "body"]
_KINDS: dict[str, ItemKind] = {
    ":": "header",
    "==": "param",
    "=": "field",
    ":=": "json",
    "=@": "field_file",
    ":=@": "json_file",
    "@": "file",
}
#: The kinds of item that are fields of the body (JSON object or form).
BODY_FIELD_KINDS: frozenset[ItemKind] = frozenset(
    {"field", "json", "field_file", "json_file", "file"}
)

_EXPECTED = (
    "expected Header:value, name==value, field=value, field:=json, field=@file, "
    "field:=@file, field@file or @file"
)


@dataclass(frozen=True)
class RequestItem:
    """
    One ``REQUEST_ITEM``: its kind, name and value.

    The value is the decoded JSON for ``json``, a file's path for the ``*_file``, ``file``
    and ``body`` kinds (whose name is empty), and the text given otherwise.
    """

    kind: ItemKind
    name: str
    value: Any


@dataclass
class ParsedItems:
    """The request items sorted by kind, each list in command-line order."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    #: The body's fields: items of the kinds in :data:`BODY_FIELD_KINDS`.
    fields: list[RequestItem] = field(default_factory=list)
    #: The path of the ``@path`` item, whose file is the whole body.
    body_file: str | None = None

    @property
    def has_body(self) -> bool:
        """Whether the items make a body (so standard input is not read for one)."""
        return bool(self.fields) or self.body_file is not None


def split_words(words: Sequence[str]) -> tuple[str | None, str, list[str]]:
    """
    Split the positional words into ``(METHOD or None, URL, REQUEST_ITEMs)``.

    The first word is the method when it is an upper-case token and another word (the URL)
    follows it; otherwise it is the URL.

    :raises UsageError: if there is no URL.
    """
    if not words:
        raise UsageError("a URL is required")
    if len(words) >= 2 and _METHOD_RE.fullmatch(words[0]):
        return words[0], words[1], list(words[2:])
    return None, words[0], list(words[1:])


def parse_item(text: str) -> RequestItem:
    """
    Parse one request item (see the table in :mod:`hyper.cli.items`).

    The first separator in the text decides; in the name, a backslash makes the next
    ``:``, ``=``, ``@`` or ``\\`` literal. The value is taken as it is (header values are
    stripped of surrounding spaces).

    :raises UsageError: if there is no separator or no name, a header name is not a token,
        a ``:=`` value is not valid JSON, or a file item names no file.
    """
    name: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            name.append(text[i + 1])
            i += 2
            continue
        separator = next((s for s in _SEPARATORS if text.startswith(s, i)), None)
        if separator is not None:
            return _make_item(text, _KINDS[separator], "".join(name), text[i + len(separator) :])
        name.append(text[i])
        i += 1
    raise UsageError(f"{text!r} is not a request item ({_EXPECTED})")


def _make_item(text: str, kind: ItemKind, name: str, value: str) -> RequestItem:
    if kind in ("field_file", "json_file", "file") and not value:
        raise UsageError(f"request item {text!r} names no file after its '@'")
    if kind == "file" and not name:
        return RequestItem("body", "", value)
    if not name:
        raise UsageError(f"request item {text!r} has no name before its separator")
    if kind == "header":
        if not _TOKEN_RE.fullmatch(name):
            raise UsageError(f"invalid header name {name!r} in request item {text!r}")
        if any(char in value for char in "\r\n\0"):
            raise UsageError(f"header value with CR, LF or NUL in request item {text!r}")
        return RequestItem(kind, name, value.strip(" \t"))
    if kind == "json":
        try:
            return RequestItem(kind, name, json.loads(value))
        except ValueError as exc:
            raise UsageError(f"invalid JSON in request item {text!r}: {exc}") from None
    return RequestItem(kind, name, value)


def parse_items(texts: Iterable[str]) -> ParsedItems:
    """
    Parse every request item (see :func:`parse_item`) and sort them by kind. Repeated
    headers and parameters are all sent; a repeated JSON field's last value wins.

    :raises UsageError: for an invalid item, or a second ``@path`` body.
    """
    parsed = ParsedItems()
    for text in texts:
        item = parse_item(text)
        if item.kind == "header":
            parsed.headers.append((item.name, item.value))
        elif item.kind == "param":
            parsed.params.append((item.name, item.value))
        elif item.kind == "body":
            if parsed.body_file is not None:
                raise UsageError(f"only one @file body can be sent ({text!r} is a second one)")
            parsed.body_file = item.value
        else:
            parsed.fields.append(item)
    if parsed.body_file is not None and parsed.fields:
        raise UsageError(
            f"the body is the file {parsed.body_file!r}: it cannot have fields "
            f"({parsed.fields[0].name!r}...) too"
        )
    return parsed
