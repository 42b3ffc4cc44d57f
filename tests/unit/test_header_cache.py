"""
Tests for :mod:`hyper.http20.header_cache`: HPACK with memory.

The central property: a :class:`CachingEncoder` and a :class:`CachingDecoder` are
indistinguishable from hpack's plain :class:`hpack.Encoder` and :class:`hpack.Decoder` over
any sequence of operations (header lists with repeats, table size changes, never-indexed
fields, Huffman on and off, undecodable blocks), checked with hypothesis. The rest checks what
the caching adds: fresh result lists, HPACK errors raised as hpack raises them (the engine
makes them COMPRESSION_ERROR), the header list limit for remembered blocks, and bounded
caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hpack
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hpack.exceptions import HPACKError, InvalidTableSizeError, OversizedHeaderListError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyper.http20 import header_cache
from hyper.http20.header_cache import CachingDecoder, CachingEncoder

#: Names and values drawn from small pools, so that lists and fields repeat often.
NAMES = [b":status", b":path", b"content-type", b"x-a", b"x-b", b"server", b"cache-control"]
VALUES = [b"", b"200", b"/", b"text/html", b"v" * 40, b"w" * 300, b"gzip, deflate"]

field_strategy = st.one_of(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.builds(NeverIndexedHeaderTuple, st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.builds(HeaderTuple, st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES), st.booleans()),
)
header_list_strategy = st.lists(field_strategy, max_size=6)

#: One operation on the encoder: ("encode", header list, huffman) or ("size", new size).
operation_strategy = st.one_of(
    st.tuples(st.just("encode"), header_list_strategy, st.booleans()),
    st.tuples(st.just("size"), st.sampled_from([0, 64, 256, 1024, 4096])),
)


def typed(headers: Iterable[Any]) -> list[tuple[str, Any]]:
    """A decoded header list with each field's class, so that a NeverIndexedHeaderTuple and a
    HeaderTuple (which compare equal) are told apart."""
    return [(type(field).__name__, tuple(field)) for field in headers]


def decoded(decoder: hpack.Decoder, block: bytes, raw: bool) -> Any:
    """What ``decoder`` makes of ``block``: the typed header list, or the class of the HPACK
    error."""
    try:
        return typed(decoder.decode(block, raw=raw))
    except HPACKError as exc:
        return type(exc)


def run_plain_and_cached(
    ops: list[tuple[Any, ...]],
    raws: list[bool],
) -> tuple[list[bytes], list[bytes]]:
    """Apply ``ops`` to a plain and a caching encoder; decode every block with a plain and a
    caching decoder; assert identical results at every step. Return both block sequences."""
    plain_enc, cached_enc = hpack.Encoder(), CachingEncoder()
    plain_dec, cached_dec = hpack.Decoder(), CachingDecoder()
    plain_blocks: list[bytes] = []
    cached_blocks: list[bytes] = []
    for index, op in enumerate(ops):
        if op[0] == "size":
            plain_enc.header_table_size = op[1]
            cached_enc.header_table_size = op[1]
            continue
        _, headers, huffman = op
        expected = plain_enc.encode(list(headers), huffman=huffman)
        got = cached_enc.encode(list(headers), huffman=huffman)
        assert got == expected, (index, headers)
        plain_blocks.append(expected)
        cached_blocks.append(got)
        raw = raws[index % len(raws)] if raws else True
        assert decoded(cached_dec, got, raw) == decoded(plain_dec, expected, raw), index
        assert list(cached_dec.header_table.dynamic_entries) == list(
            plain_dec.header_table.dynamic_entries
        )
    assert list(cached_enc.header_table.dynamic_entries) == list(
        plain_enc.header_table.dynamic_entries
    )
    return plain_blocks, cached_blocks


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=st.lists(operation_strategy, max_size=30), raws=st.lists(st.booleans(), max_size=3))
def test_same_results_as_plain_hpack(ops: list[tuple[Any, ...]], raws: list[bool]) -> None:
    run_plain_and_cached(ops, raws)


@settings(max_examples=60, deadline=None, database=None)
@given(
    header_list=st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), min_size=1, max_size=5
    ),
    repeats=st.integers(min_value=2, max_value=6),
    huffman=st.booleans(),
)
def test_repeated_lists_are_served_from_memory_correctly(
    header_list: list[tuple[bytes, bytes]], repeats: int, huffman: bool
) -> None:
    ops: list[tuple[Any, ...]] = [("encode", header_list, huffman)] * repeats
    plain, cached = run_plain_and_cached(ops, [True])
    assert cached == plain  # block for block, whatever hpack's version makes of repeats


@settings(max_examples=100, deadline=None, database=None)
@given(
    prefix=st.lists(operation_strategy, max_size=10),
    garbage=st.lists(st.binary(max_size=12), min_size=1, max_size=8),
)
def test_undecodable_blocks_fail_alike(
    prefix: list[tuple[Any, ...]], garbage: list[bytes]
) -> None:
    """Arbitrary bytes, between valid blocks: plain hpack and the caching decoder agree on
    the result or on failing with the same HPACKError, and their tables stay identical."""
    plain_blocks, _ = run_plain_and_cached(prefix, [True])
    plain_dec, cached_dec = hpack.Decoder(), CachingDecoder()
    for block in [*plain_blocks, *garbage, *garbage, *plain_blocks[-1:]]:
        assert decoded(cached_dec, block, True) == decoded(plain_dec, block, True)
        assert list(cached_dec.header_table.dynamic_entries) == list(
            plain_dec.header_table.dynamic_entries
        )


def test_a_remembered_block_is_served_from_the_cache() -> None:
    """The cache is actually used: a repeated indexed block is found in it."""
    encoder, decoder = CachingEncoder(), CachingDecoder()
    headers = [(b":status", b"200"), (b"server", b"test")]
    first = encoder.encode(headers)
    second = encoder.encode(headers)
    assert first != second  # the first added "server" to the table
    assert encoder.encode(headers) is second  # from memory
    decoder.decode(first, raw=True)
    decoder.decode(second, raw=True)
    assert second in decoder._cache


def test_never_indexed_fields_are_not_confused_with_plain_ones() -> None:
    """A NeverIndexedHeaderTuple compares equal to a plain tuple but must stay a never-indexed
    literal, even right after the plain list was remembered."""
    encoder, reference = CachingEncoder(), hpack.Encoder()
    plain = [(b"authorization", b"secret")]
    secret = [NeverIndexedHeaderTuple(b"x-token", b"t0k3n")]
    for enc in (encoder, reference):
        enc.encode([(b"x-token", b"t0k3n")])  # now in the table
        enc.encode(plain)
        enc.encode(plain)  # remembered by the caching encoder
    # A never-indexed field whose name and value are in the table: hpack's choice, not the
    # block remembered for the equal plain tuple.
    for headers in (plain, secret, [(b"x-token", b"t0k3n", True)], [(b"x-token", b"t0k3n")]):
        assert encoder.encode(headers) == reference.encode(headers), headers
    # A never-indexed field new to the table stays a never-indexed literal.
    fresh = [NeverIndexedHeaderTuple(b"x-fresh", b"value")]
    block = encoder.encode(fresh)
    assert block == reference.encode(fresh)
    assert block[0] & 0xF0 == 0x10


def test_huffman_setting_is_part_of_the_key() -> None:
    encoder = CachingEncoder()
    headers = [(b"x-literal", b"some value that is long enough", True)]
    with_huffman = encoder.encode(headers, huffman=True)
    without = encoder.encode(headers, huffman=False)
    assert with_huffman != without
    assert without == hpack.Encoder().encode(headers, huffman=False)
    assert encoder.encode(headers, huffman=True) == with_huffman


def test_table_size_change_is_emitted_after_a_remembered_list() -> None:
    encoder, plain = CachingEncoder(), hpack.Encoder()
    headers = [(b"x-a", b"1")]
    for enc in (encoder, plain):
        enc.encode(headers)
        enc.encode(headers)
        enc.header_table_size = 0
    block = encoder.encode(headers)
    assert block == plain.encode(headers)
    assert block[0] & 0xE0 == 0x20  # starts with a dynamic table size update
    assert encoder.encode(headers) == plain.encode(headers)


# -- the decoder's results ------------------------------------------------------------------------


def test_decoder_returns_fresh_lists() -> None:
    encoder, decoder = hpack.Encoder(), CachingDecoder()
    headers = [(b":status", b"200"), (b"content-type", b"text/plain")]
    decoder.decode(encoder.encode(headers), raw=True)
    block = encoder.encode(headers)  # indexed only: does not change the table
    first = decoder.decode(block, raw=True)
    second = decoder.decode(block, raw=True)  # from memory
    assert isinstance(first, list) and isinstance(second, list)
    assert first is not second
    expected = list(first)
    first.append((b"x-mutated", b"1"))
    second.clear()
    third = decoder.decode(block, raw=True)
    assert third == expected
    assert third is not first and third is not second
    third[0] = (b":status", b"500")
    assert decoder.decode(block, raw=True) == expected


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "cause"),
    [
        (b"\xbf", HPACKError),  # index 63: not in the (empty) dynamic table
        (b"\x80", HPACKError),  # index 0 is invalid
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", HPACKError),  # endless integer
        (b"\x3f\xe1\x7f", InvalidTableSizeError),  # table size update above 4096
        (b"\x00\x81\xff\x01a", HPACKError),  # invalid Huffman (EOS) in a name
        (b"\x00\x01", HPACKError),  # truncated literal
        (b"\x88\x20", HPACKError),  # table size update after a field
        (b"\x00\x01a\x02\xc3\x28", HPACKError),  # value not UTF-8 (raw=False only)
    ],
)
def test_hpack_errors_are_raised_as_hpack_raises_them(block: bytes, cause: type) -> None:
    raw = block != b"\x00\x01a\x02\xc3\x28"
    with pytest.raises(cause):
        hpack.Decoder().decode(block, raw=raw)
    with pytest.raises(cause):
        CachingDecoder().decode(block, raw=raw)


def test_lowered_list_limit_applies_to_remembered_blocks() -> None:
    encoder, decoder = hpack.Encoder(), CachingDecoder()
    headers = [(b"x-large", b"v" * 500), (b"x-other", b"w" * 500)]
    decoder.decode(encoder.encode(headers), raw=True)
    block = encoder.encode(headers)
    assert decoder.decode(block, raw=True) == headers
    assert decoder.decode(block, raw=True) == headers  # remembered now
    decoder.max_header_list_size = 600
    with pytest.raises(OversizedHeaderListError):
        decoder.decode(block, raw=True)
    decoder.max_header_list_size = 1 << 16
    assert decoder.decode(block, raw=True) == headers


def test_lowered_table_size_limit_applies_to_remembered_blocks() -> None:
    encoder, decoder, plain = hpack.Encoder(), CachingDecoder(), hpack.Decoder()
    headers = [(b"x-a", b"1")]
    first = encoder.encode(headers)
    block = encoder.encode(headers)
    for dec in (decoder, plain):
        dec.decode(first, raw=True)
        dec.decode(block, raw=True)
        dec.decode(block, raw=True)  # remembered by the caching decoder
        # The local side lowered SETTINGS_HEADER_TABLE_SIZE; the peer never shrank its table.
        dec.max_allowed_table_size = 100
    with pytest.raises(InvalidTableSizeError):
        plain.decode(block, raw=True)
    with pytest.raises(InvalidTableSizeError):
        decoder.decode(block, raw=True)


# -- bounded memory -------------------------------------------------------------------------------

#: Full entries of the static table (name and value both match): encoded as one index each,
#: without touching the dynamic table.
_STATIC = [
    (name, value)
    for name, value in hpack.table.HeaderTable.STATIC_TABLE
    if name != b":authority" or value
]


def test_encoder_cache_is_bounded() -> None:
    encoder = CachingEncoder()
    lists = [[a, b] for a in _STATIC[:20] for b in _STATIC[20:40]]
    assert len(lists) > 3 * header_cache._MAX_ENTRIES
    for headers in lists:
        assert encoder.encode(headers) == hpack.Encoder().encode(headers)
        assert len(encoder._cache) <= header_cache._MAX_ENTRIES
    # A block larger than _MAX_BLOCK is never remembered.
    encoder._cache.clear()
    big = [(b"x-big", b"v" * (2 * header_cache._MAX_BLOCK), True)]
    for _ in range(3):
        assert encoder.encode(big) == hpack.Encoder().encode(big)
    assert not encoder._cache


def test_decoder_cache_is_bounded() -> None:
    decoder = CachingDecoder()
    plain = hpack.Encoder()
    blocks = [plain.encode([a, b]) for a in _STATIC[:20] for b in _STATIC[20:40]]
    assert len(set(blocks)) > 3 * header_cache._MAX_ENTRIES
    for block in blocks:
        decoder.decode(block, raw=True)
        assert len(decoder._cache) <= header_cache._MAX_ENTRIES
    assert sum(map(len, decoder._cache)) <= header_cache._MAX_ENTRIES * header_cache._MAX_BLOCK
    # Blocks over _MAX_BLOCK (literals without indexing) are decoded but not remembered.
    decoder._cache.clear()
    big = plain.encode([(b"x-big", b"v" * (2 * header_cache._MAX_BLOCK), True)], huffman=False)
    assert len(big) > header_cache._MAX_BLOCK
    for _ in range(3):
        assert decoder.decode(big, raw=True) == [(b"x-big", b"v" * (2 * header_cache._MAX_BLOCK))]
    assert not decoder._cache


def test_encoder_does_not_confuse_equal_non_bytes_values() -> None:
    encoder, plain = CachingEncoder(), hpack.Encoder()
    for enc in (encoder, plain):
        enc.encode([(b"x-n", 1)])
        enc.encode([(b"x-n", 1)])  # remembered by the caching encoder
    assert encoder.encode([(b"x-n", True)]) == plain.encode([(b"x-n", True)])
