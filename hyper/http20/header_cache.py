"""
HPACK with memory: header blocks that leave the compression tables unchanged are encoded and
decoded once, then looked up.

A client repeats itself: the same request fields go out again and again, and a server's
responses, once their fields are in its dynamic table, come back as the same few bytes of
indexed references. Encoding or decoding a block that adds no table entry and resizes nothing
gives the same result for as long as the table stays as it is, so the result is remembered
under the table's *version* (bumped by every insertion and resize) and reused while the
version holds. hpack's own code still handles every block that changes the table, every
oversized or malformed block, and every block seen for the first time.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

import hpack
from hpack.table import HeaderTable

__all__ = ["CachingDecoder", "CachingEncoder", "RememberedBlock"]

#: Blocks longer than this are not remembered (a client's and a server's usual blocks are a
#: few dozen bytes once indexed).
_MAX_BLOCK = 2048
#: At most this many blocks are remembered per table version.
_MAX_ENTRIES = 64

_TUPLE = {tuple}
_PAIR = {2}
_BYTES = {bytes}


class _VersionedTable(HeaderTable):
    """hpack's header table, counting the changes to its contents and size."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @HeaderTable.maxsize.setter  # type: ignore[attr-defined, untyped-decorator]
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class RememberedBlock:
    """
    A header block :class:`CachingDecoder` remembers: its decoded list, and room for what a
    caller found out about that list (it is the same list for as long as it is remembered).

    :param headers: the decoded header list; never modified (hand out copies).
    """

    __slots__ = ("facts", "headers")

    def __init__(self, headers: list[Any]) -> None:
        self.headers = headers
        #: Free for the caller: facts about ``headers`` worth not working out again.
        self.facts: Any = None


class CachingDecoder(hpack.Decoder):
    """
    An :class:`hpack.Decoder` that remembers the header lists of blocks that did not change
    its table, and returns a fresh copy of the list when the same block comes again.
    """

    def __init__(self, max_header_list_size: int = hpack.hpack.DEFAULT_MAX_HEADER_LIST_SIZE):
        super().__init__(max_header_list_size=max_header_list_size)
        self._table = self.header_table = _VersionedTable()
        self.max_allowed_table_size = self.header_table.maxsize
        self._cache: dict[bytes, RememberedBlock] = {}
        self._cache_state: tuple[int, int, int] = (-1, 0, 0)

    def decode_block(self, data: bytes | memoryview) -> RememberedBlock:
        """
        Decode the header block ``data`` (names and values as bytes), from memory when the
        same block came before and the table has not changed since.

        :returns: the block's :class:`RememberedBlock`: remembered (so its ``facts`` persist)
            when decoding it left the table as it was, else a fresh one.
        :raises hpack.HPACKError: if the block does not decode (the table may then be in any
            state: the connection cannot go on).
        """
        table = self._table
        state = (table.version, self.max_allowed_table_size, self.max_header_list_size)
        small = len(data) <= _MAX_BLOCK
        key = bytes(data) if small else None
        if key is not None and state == self._cache_state:
            known = self._cache.get(key)
            if known is not None:
                return known
        headers = list(super().decode(key if key is not None else bytes(data), raw=True))
        block = RememberedBlock(headers)
        if key is not None and table.version == state[0]:
            if state != self._cache_state or len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
                self._cache_state = state
            self._cache[key] = block
        return block

    def decode(self, data: bytes, raw: bool = False) -> Iterable[hpack.HeaderTuple]:
        """Decode ``data`` as :meth:`hpack.Decoder.decode` does; with ``raw``, from memory
        when possible (see :meth:`decode_block`), in a fresh list."""
        if raw:
            return list(self.decode_block(data).headers)
        return super().decode(data, raw)


class CachingEncoder(hpack.Encoder):
    """
    An :class:`hpack.Encoder` that remembers the blocks it produced for header lists that did
    not change its table. Only lists of plain ``(bytes, bytes)`` tuples are remembered (a
    :class:`hpack.NeverIndexedHeaderTuple` compares equal to a plain tuple, and ``1`` to
    ``True``, but they must not be encoded alike).
    """

    def __init__(self) -> None:
        super().__init__()
        self._table = self.header_table = _VersionedTable()
        self._cache: dict[tuple[Any, ...], bytes] = {}
        self._cache_state: tuple[int, bool] = (-1, True)
        # The smallest and the latest maximum table size the peer set since the last block.
        self._pending_sizes: tuple[int, int] | None = None

    def limit_table_size(self, value: int) -> None:
        """
        Take ``value`` as the table's new maximum size (the peer's
        SETTINGS_HEADER_TABLE_SIZE). It applies from the next block encoded, which opens
        with the size updates :rfc:`7541` section 4.2 asks for: the smallest size set since
        the previous block (when it is below both the size in use and the final one), then
        the final size, and none when the size in use does not change.

        Setting :attr:`header_table_size` directly signals every change in turn, and none
        when the same value is set twice, so the engine calls this instead.
        """
        pending = self._pending_sizes
        smallest = value if pending is None else min(pending[0], value)
        self._pending_sizes = (smallest, value)

    def _resize_for_next_block(self, sizes: tuple[int, int]) -> None:
        self._pending_sizes = None
        smallest, final = sizes
        if smallest < min(self.header_table_size, final):
            self.header_table_size = smallest
        if final != self.header_table_size:
            self.header_table_size = final

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        """Encode ``headers`` as :meth:`hpack.Encoder.encode` does, from memory when possible,
        after the size changes :meth:`limit_table_size` recorded."""
        if self._pending_sizes is not None:
            self._resize_for_next_block(self._pending_sizes)
        table = self._table
        key: tuple[Any, ...] | None = None
        if type(headers) is list and not table.resized:
            key = tuple(headers)
            # Plain tuples of two bytes only: 1, True and 1.0 are equal keys, but hpack
            # encodes them differently. (Checked by type sets: no Python loop per field.)
            if (
                set(map(type, key)) != _TUPLE
                or set(map(len, key)) != _PAIR
                or set(map(type, chain.from_iterable(key))) != _BYTES
            ):
                key = None
        state = (table.version, huffman)
        if key is not None and state == self._cache_state:
            known = self._cache.get(key)
            if known is not None:
                return known
        block = super().encode(headers, huffman)
        if key is not None and table.version == state[0] and len(block) <= _MAX_BLOCK:
            if state != self._cache_state or len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
                self._cache_state = state
            self._cache[key] = block
        return block
