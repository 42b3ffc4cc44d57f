"""
A container for HTTP header fields that keeps every field, in order.

HTTP allows a field name to appear more than once, and its order can matter, so headers are not
a dictionary. :class:`HTTPHeaderMap` keeps the fields as a list of ``(name, value)`` pairs in the
order they were added, compares names without regard to case, and always hands back ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from operator import itemgetter
from typing import Any, TypeAlias

from .exceptions import InvalidRequest
from .grammar import FORBIDDEN_IN_VALUE, TOKEN
from .util import to_bytestring

__all__ = ["UNSPLIT_HEADERS", "HTTPHeaderMap"]

#: Lower-case names of the fields whose values are never split at commas.
#:
#: For most fields a comma separates list elements, so ``Accept: a, b`` holds the two values
#: ``a`` and ``b``. The fields named here are not lists, or their values may contain commas
#: that separate nothing: dates (``Date: Tue, 15 Nov 1994 08:12:31 GMT``), cookies, credentials
#: and challenges (whose parameters are comma-separated), URLs (``Location``, ``:path``), and
#: product strings whose comments may hold commas (``User-Agent``, ``Server``). Their values are
#: returned exactly as they were added, less surrounding whitespace.
UNSPLIT_HEADERS: frozenset[bytes] = frozenset(
    {
        b"set-cookie",
        b"set-cookie2",
        b"cookie",
        b"date",
        b"expires",
        b"last-modified",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
        b"retry-after",
        b"www-authenticate",
        b"proxy-authenticate",
        b"authorization",
        b"proxy-authorization",
        b"user-agent",
        b"server",
        b"location",
        b"content-location",
        b"referer",
        b"content-disposition",
        b"refresh",
        b":path",
    }
)

#: Anything a caller may pass as a field name or value.
HeaderText: TypeAlias = "str | bytes"

#: What the constructor, :meth:`HTTPHeaderMap.merge` and :meth:`HTTPHeaderMap.update` accept.
HeaderSource: TypeAlias = (
    "HTTPHeaderMap | Mapping[Any, Any] | Iterable[tuple[HeaderText, HeaderText]]"
)

_OWS = b" \t"


def _name_key(name: object) -> bytes | None:
    """Return the lower-case bytes form of a name used for lookup, or None if it is no name."""
    if isinstance(name, bytes):
        return name.lower()
    if isinstance(name, str):
        return name.encode("utf-8").lower()
    return None


def _lookup_key(name: object) -> bytes:
    """Like :func:`_name_key`, but raise ``KeyError`` for something that cannot be a name."""
    key = _name_key(name)
    if key is None:
        raise KeyError(name)
    return key


def _valid_name(name: HeaderText) -> bytes:
    raw = to_bytestring(name)
    if TOKEN.fullmatch(raw) is None:
        raise InvalidRequest(f"invalid header name {raw!r}")
    return raw


def _valid_value(value: HeaderText, name: bytes) -> bytes:
    raw = to_bytestring(value)
    if FORBIDDEN_IN_VALUE.search(raw) is not None:
        raise InvalidRequest(f"header {name!r} has CR, LF or NUL in its value {raw!r}")
    return raw


def _split_quoted(value: bytes) -> list[bytes]:
    """Split at commas that are outside double-quoted strings (with backslash escapes)."""
    parts: list[bytes] = []
    start = 0
    in_quotes = False
    escaped = False
    for index, char in enumerate(value):
        if in_quotes:
            if escaped:
                escaped = False
            elif char == 0x5C:  # backslash
                escaped = True
            elif char == 0x22:  # double quote
                in_quotes = False
        elif char == 0x22:
            in_quotes = True
        elif char == 0x2C:  # comma
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def _split_value(value: bytes) -> list[bytes]:
    """
    Split a comma-joined value into its list elements, stripped of whitespace.

    Empty elements are dropped (RFC 9110 section 5.6.1 tells recipients to ignore them), but a
    value always yields at least one element, so an empty or all-comma value gives ``[b""]``.
    """
    parts = _split_quoted(value) if b'"' in value else value.split(b",")
    elements = [stripped for part in parts if (stripped := part.strip(_OWS))]
    return elements or [b""]


def _canonical_values(key: bytes, value: bytes) -> list[bytes]:
    """The canonical values of one stored field whose lower-case name is ``key``."""
    if b"," in value and key not in UNSPLIT_HEADERS:
        return _split_value(value)
    return [value.strip(_OWS)]


class HTTPHeaderMap(MutableMapping[Any, Any]):
    """
    An ordered collection of HTTP header fields that keeps repeated names.

    Names and values may be given as ``str`` (encoded as UTF-8) or ``bytes``; everything that
    comes out is ``bytes``. Names are matched without regard to case. The constructor accepts
    any number of sources, merged in turn: other maps, mappings (whose values may also be
    lists of values), iterables of ``(name, value)`` pairs; then keyword arguments.

    Unlike a dictionary, ``headers[name] = value`` *adds* a field and keeps any fields already
    there; use :meth:`replace` to set a single value. Reading ``headers[name]`` returns the list
    of all values for the name, in order, with comma-joined values split into their elements
    (except for the fields in :data:`UNSPLIT_HEADERS`)::

        >>> headers = HTTPHeaderMap([("Accept", "text/html, text/plain")])
        >>> headers["accept"] = "*/*"
        >>> headers["ACCEPT"]
        [b'text/html', b'text/plain', b'*/*']

    Iterating gives the *canonical* pairs ``(lower-case name, value)``, one per value, and
    :meth:`iter_raw` gives the fields exactly as they were added.

    :raises InvalidRequest: when a name is empty or not an RFC 9110 token, or a name or value
        holds CR, LF or NUL, or is neither ``str`` nor ``bytes``.
    """

    __slots__ = ("_items",)

    # Mutable, so not hashable.
    __hash__ = None  # type: ignore[assignment]

    _items: list[tuple[bytes, bytes]]

    def __init__(self, *args: HeaderSource, **kwargs: HeaderText) -> None:
        self._items = []
        for source in args:  # several sources are merged in turn, as in hyper 0.7
            self.merge(source)
        if kwargs:
            self.merge(kwargs)

    @classmethod
    def from_trusted(cls, pairs: list[tuple[bytes, bytes]]) -> HTTPHeaderMap:
        """
        Wrap a list of ``(name, value)`` byte pairs without copying or checking it.

        For fields a protocol layer has validated already (hyper's response parsers use it).
        The map takes ownership of ``pairs``: the caller must not change it afterwards.

        :param pairs: the fields as received, in order.
        :returns: a map whose storage is ``pairs`` itself.
        """
        self = cls.__new__(cls)
        self._items = pairs
        return self

    # -- Reading ----------------------------------------------------------------------------------

    def __getitem__(self, name: HeaderText) -> list[bytes]:
        """
        Return every value for ``name`` (case-insensitive), in order, comma-joined values split.

        :param name: the field name.
        :returns: a new list of ``bytes`` values.
        :raises KeyError: if no field has that name.
        """
        values = self._values(_lookup_key(name))
        if not values:
            raise KeyError(name)
        return values

    def _values(self, key: bytes) -> list[bytes]:
        """The values of the fields named ``key`` (lowercase), split; empty if none."""
        if key not in map(bytes.lower, map(itemgetter(0), self._items)):
            # Most lookups (hyper's own, of Content-Encoding say) are of absent fields:
            # this pass runs in C, where the loop below would run in Python.
            return []
        size = len(key)
        split = key not in UNSPLIT_HEADERS
        values: list[bytes] = []
        for field_name, value in self._items:
            if field_name == key or (len(field_name) == size and field_name.lower() == key):
                if split and b"," in value:
                    values.extend(_split_value(value))
                else:
                    values.append(value.strip(_OWS))
        return values

    def get(self, name: HeaderText, default: Any = None) -> Any:
        """
        Return the values for ``name`` as :meth:`__getitem__` does, or ``default`` if absent.

        :param name: the field name (case-insensitive).
        :param default: what to return when no field has that name.
        :returns: a list of ``bytes`` values, or ``default``.
        """
        # Not through __getitem__: a missing field (the usual case for the fields hyper
        # itself asks about, like Content-Encoding) would cost an exception.
        key = _name_key(name)
        if key is None:
            return default  # not a name at all, so never present
        return self._values(key) or default

    def __contains__(self, name: object) -> bool:
        """
        Tell whether a field called ``name`` is present; case does not matter.

        :param name: the field name, ``str`` or ``bytes``; anything else is never present.
        :returns: ``True`` if at least one field has that name.
        """
        key = _name_key(name)
        if key is None:
            return False
        size = len(key)
        for field_name, _ in self._items:
            if field_name == key or (len(field_name) == size and field_name.lower() == key):
                return True
        return False

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """
        Iterate over the canonical pairs ``(lower-case name, value)``, one per value.

        Comma-joined values give one pair per element (except for :data:`UNSPLIT_HEADERS`).

        :returns: an iterator of ``(bytes, bytes)`` tuples in the order the fields were added.
        """
        for field_name, value in self._items:
            key = field_name.lower()
            if b"," in value and key not in UNSPLIT_HEADERS:
                for element in _split_value(value):
                    yield key, element
            else:
                yield key, value.strip(_OWS)

    def __len__(self) -> int:
        """
        Return the number of canonical pairs, that is, of values after splitting.

        :returns: the length of :meth:`items`.
        """
        count = 0
        for field_name, value in self._items:
            if b"," in value and field_name.lower() not in UNSPLIT_HEADERS:
                count += len(_split_value(value))
            else:
                count += 1
        return count

    def __bool__(self) -> bool:
        """
        Tell whether the map holds any field.

        :returns: ``False`` for an empty map.
        """
        return bool(self._items)

    def items(self) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        """
        Return the canonical pairs as a list, the same ones iteration yields.

        :returns: a new list of ``(lower-case name, value)`` tuples.
        """
        return list(self)

    def keys(self) -> list[bytes]:  # type: ignore[override]
        """
        Return the lower-case name of every canonical pair, repeated names included.

        :returns: a new list as long as the map, matching :meth:`values` position by position.
        """
        return [name for name, _ in self]

    def values(self) -> list[bytes]:  # type: ignore[override]
        """
        Return the value of every canonical pair, in order.

        :returns: a new list as long as the map, matching :meth:`keys` position by position.
        """
        return [value for _, value in self]

    def iter_raw(self) -> Iterator[tuple[bytes, bytes]]:
        """
        Iterate over the fields exactly as they were added: original case, values unsplit.

        Writing these pairs out rebuilds the original header block.

        :returns: an iterator of ``(name, value)`` ``bytes`` tuples.
        """
        return iter(self._items)

    # -- Changing ---------------------------------------------------------------------------------

    def __setitem__(self, name: HeaderText, value: HeaderText) -> None:
        """
        Add a field, keeping any fields of the same name that are already there.

        :param name: the field name, ``str`` or ``bytes``.
        :param value: the field value, ``str`` or ``bytes``.
        :raises InvalidRequest: if the name or value is not allowed.
        """
        raw_name = _valid_name(name)
        self._items.append((raw_name, _valid_value(value, raw_name)))

    def replace(self, name: HeaderText, value: HeaderText) -> None:
        """
        Make ``name: value`` the only field called ``name`` (case-insensitive). It takes the
        place of the first such field, and the others are removed; with none, it is added at
        the end.

        :param name: the field name, ``str`` or ``bytes``.
        :param value: the single value the field will have.
        :raises InvalidRequest: if the name or value is not allowed; the map is then unchanged.
        """
        raw_name = _valid_name(name)
        raw_value = _valid_value(value, raw_name)
        key = raw_name.lower()
        items = self._items
        first = next((i for i, pair in enumerate(items) if pair[0].lower() == key), None)
        if first is None:
            items.append((raw_name, raw_value))
            return
        tail = [pair for pair in items[first + 1 :] if pair[0].lower() != key]
        items[first:] = [(raw_name, raw_value), *tail]

    def __delitem__(self, name: HeaderText) -> None:
        """
        Remove every field called ``name`` (case-insensitive).

        :param name: the field name.
        :raises KeyError: if no field has that name.
        """
        if not self._remove(_lookup_key(name)):
            raise KeyError(name)

    def _remove(self, key: bytes) -> bool:
        """Remove the fields whose lower-case name is ``key``; tell whether there were any."""
        kept = [pair for pair in self._items if pair[0].lower() != key]
        if len(kept) == len(self._items):
            return False
        self._items[:] = kept
        return True

    def pop(self, name: HeaderText, *default: Any) -> Any:
        """
        Remove every field called ``name`` and return its values.

        :param name: the field name (case-insensitive).
        :param default: optional; returned instead of raising when the name is absent.
        :returns: the list of values :meth:`__getitem__` would have returned, or ``default``.
        :raises KeyError: if the name is absent and no default was given.
        """
        if len(default) > 1:
            raise TypeError(f"pop expected at most 2 arguments, got {len(default) + 1}")
        try:
            values = self[name]
        except KeyError:
            if default:
                return default[0]
            raise
        del self[name]
        return values

    def popitem(self) -> tuple[bytes, list[bytes]]:
        """
        Remove the first field's name from the map, with all of that name's fields.

        :returns: ``(lower-case name, list of values)``.
        :raises KeyError: if the map is empty.
        """
        if not self._items:
            raise KeyError("popitem(): header map is empty")
        key = self._items[0][0].lower()
        values = self[key]
        self._remove(key)
        return key, values

    def clear(self) -> None:
        """Remove every field."""
        self._items.clear()

    def setdefault(self, name: HeaderText, default: HeaderText = b"") -> list[bytes]:  # type: ignore[override]
        """
        Return the values for ``name``, first adding ``name: default`` if it is absent.

        :param name: the field name (case-insensitive).
        :param default: the value to add when the name is absent.
        :returns: the list of values, as :meth:`__getitem__` returns it.
        :raises InvalidRequest: if the field has to be added and is not allowed.
        """
        try:
            return self[name]
        except KeyError:
            self[name] = default
            return self[name]

    def update(self, *args: HeaderSource, **kwargs: HeaderText) -> None:  # type: ignore[override]
        """
        Add fields the way the constructor does; existing fields are kept, not replaced.

        :param args: at most one source: a map, a mapping, or an iterable of pairs.
        :param kwargs: more fields, given as ``name=value``.
        :raises InvalidRequest: if a field is not allowed.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 positional argument, got {len(args)}")
        if args:
            self.merge(args[0])
        if kwargs:
            self.merge(kwargs)

    def merge(self, other: HeaderSource) -> None:
        """
        Append every field of ``other`` after the fields already present.

        :param other: an :class:`HTTPHeaderMap` (its raw fields are copied), a mapping from
            names to a value or a list of values, or an iterable of ``(name, value)`` pairs.
        :raises InvalidRequest: if a field is not allowed; fields before it are kept.
        """
        if other is self:
            return  # its fields are already here
        if isinstance(other, HTTPHeaderMap):
            self._items.extend(other._items)
            return
        pairs: Iterable[Any] = other.items() if isinstance(other, Mapping) else other
        append = self._items.append
        for name, value in pairs:
            raw_name = _valid_name(name)
            if isinstance(value, (list, tuple)):
                for item in value:
                    append((raw_name, _valid_value(item, raw_name)))
            else:
                append((raw_name, _valid_value(value, raw_name)))

    def copy(self) -> HTTPHeaderMap:
        """
        Return a new map with the same fields; changing either leaves the other alone.

        :returns: a shallow copy.
        """
        return type(self).from_trusted(list(self._items))

    # -- Comparing and showing --------------------------------------------------------------------

    def _grouped(self) -> dict[bytes, list[bytes]]:
        """The fields as stored, their values grouped by lower-case name, in order."""
        groups: dict[bytes, list[bytes]] = {}
        for name, value in self._items:
            groups.setdefault(name.lower(), []).append(value)
        return groups

    def __eq__(self, other: object) -> bool:
        """
        Compare with another map, a ``dict`` or a list of pairs.

        They are equal when each name (case-insensitive) has the same fields, as stored, in
        the same order: ``a: 1, 2`` is one field and differs from ``a: 1`` and ``a: 2``, as
        in hyper 0.7. The order between different names does not matter. ``dict`` keys and
        values may be ``str`` or ``bytes``, and a ``dict`` value may be a list of values (one
        field each).

        :param other: what to compare with.
        :returns: whether they are equal; ``NotImplemented`` for other types.
        """
        if isinstance(other, HTTPHeaderMap):
            other_map = other
        elif isinstance(other, (dict, list)):
            try:
                other_map = HTTPHeaderMap(other)
            except (InvalidRequest, TypeError, ValueError):
                return False
        else:
            return NotImplemented
        return self._grouped() == other_map._grouped()

    def __repr__(self) -> str:
        """
        Show the raw fields, e.g. ``HTTPHeaderMap([(b'host', b'example.com')])``.

        :returns: the representation.
        """
        return f"{type(self).__name__}({self._items!r})"
