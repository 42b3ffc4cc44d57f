"""RFC 7541 (HPACK) as hyper's HTTP/2 engine applies it.

The engine is driven without I/O: the server's frames are built by hand (header blocks
byte-exact where a rule is about the encoding), and what the engine sends is parsed back and
decoded with a strict hpack decoder standing in for the server. Each test checks one
requirement of docs/conformance/rfc7541.csv; tests of requirements hyper does not meet are
marked xfail (strict).
"""

from __future__ import annotations

import hpack
import pytest

from hyper.http20.engine import Engine
from hyper.http20.errors import ErrorCodes, SettingCodes
from hyper.http20.exceptions import HPACKDecodingError, ProtocolError
from hyper.http20.header_cache import CachingDecoder
from hyper.http20.stream import Stream
from tests.fuzz.h2frames import END_HEADERS, END_STREAM, HEADERS, raw_frame
from tests.support.engine_peer import (
    REQUEST,
    Headers,
    goaways,
    requested,
    sent_frames,
    settings,
    started,
)

#: Entries in the HPACK static table: dynamic entries start at index 62.
STATIC_ENTRIES = 61


# -- helpers -----------------------------------------------------------------------------------


def _started() -> Engine:
    """An engine that sent its preface and got the server's (empty) SETTINGS."""
    return started()[0]


def _requested() -> tuple[Engine, Stream]:
    engine, _, stream = requested()
    return engine, stream


def _response(block: bytes, stream_id: int = 1) -> bytes:
    return raw_frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block)


def _literal(name: bytes, value: bytes, prefix: int = 0x40) -> bytes:
    """A literal field with a new (literal) name, no Huffman; ``prefix`` picks the kind:
    0x40 with incremental indexing, 0x00 without indexing, 0x10 never indexed."""
    assert len(name) < 127 and len(value) < 127
    return bytes([prefix, len(name)]) + name + bytes([len(value)]) + value


def _indexed(index: int) -> bytes:
    assert 0 < index < 127
    return bytes([0x80 | index])


def _size_update(size: int) -> bytes:
    """A dynamic table size update (5-bit prefix integer)."""
    if size < 31:
        return bytes([0x20 | size])
    rest, out = size - 31, bytearray([0x3F])
    while rest >= 128:
        out.append((rest % 128) | 0x80)
        rest //= 128
    out.append(rest)
    return bytes(out)


def _fails_with_compression_error(engine: Engine, data: bytes) -> None:
    with pytest.raises(HPACKDecodingError) as info:
        engine.receive_data(data)
    assert info.value.error_code == ErrorCodes.COMPRESSION_ERROR
    codes = [code for _, code in goaways(engine.data_to_send())]
    assert codes == [ErrorCodes.COMPRESSION_ERROR]


def _request_blocks(engine: Engine, headers_lists: list[list[tuple[bytes, bytes]]]) -> list[bytes]:
    """Send each header list as a request on a new stream; return the blocks sent."""
    blocks = []
    for headers in headers_lists:
        highest = engine.highest_stream_id
        engine.send_headers(highest + 2 if highest % 2 else highest + 1, headers, end_stream=True)
        (frame,) = [
            f for f in sent_frames(engine.data_to_send()) if type(f).__name__ == "HeadersFrame"
        ]
        blocks.append(bytes(frame.data))
    return blocks


def _leading_size_updates(block: bytes) -> list[int]:
    """The values of the dynamic table size updates that open ``block``."""
    values = []
    pos = 0
    while pos < len(block) and block[pos] & 0xE0 == 0x20:
        value = block[pos] & 0x1F
        pos += 1
        if value == 31:
            shift = 0
            while True:
                byte = block[pos]
                pos += 1
                value += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        values.append(value)
    return values


def _unsorted(lead: Headers, repeated: bytes) -> Headers:
    """``lead``, then fields in an order no sort gives: names repeated apart, ``repeated``
    (a cookie field) twice among them."""
    return [
        *lead,
        *[(b"x-b", b"1"), (repeated, b"a=1"), (b"x-a", b"2"), (repeated, b"b=2"), (b"x-b", b"3")],
    ]


# -- 2.1 header list ordering ------------------------------------------------------------------


def test_rfc7541_2_1_request_fields_are_encoded_in_their_order() -> None:
    engine = _started()
    headers = _unsorted([*REQUEST], b"cookie")
    (block,) = _request_blocks(engine, [headers])
    assert hpack.Decoder().decode(block, raw=True) == headers


def test_rfc7541_2_1_response_fields_come_out_in_block_order() -> None:
    engine, stream = _requested()
    headers = _unsorted([(b":status", b"200")], b"set-cookie")
    engine.receive_data(_response(hpack.Encoder().encode(headers)))
    assert stream.response_headers == headers


# -- 2.3 indexing tables -----------------------------------------------------------------------


def test_rfc7541_2_3_2_duplicate_dynamic_table_entries_are_not_an_error() -> None:
    engine, stream = _requested()
    block = (
        _indexed(8)  # :status 200
        + _literal(b"x-dup", b"same")
        + _literal(b"x-dup", b"same")  # the same entry twice in the dynamic table
        + _indexed(STATIC_ENTRIES + 1)
        + _indexed(STATIC_ENTRIES + 2)
    )
    engine.receive_data(_response(block))
    assert engine.error is None
    assert stream.response_headers == [(b":status", b"200")] + [(b"x-dup", b"same")] * 4


@pytest.mark.parametrize(
    ("setup", "index"),
    [(b"", STATIC_ENTRIES + 1), (_literal(b"x-one", b"1"), STATIC_ENTRIES + 2), (b"", 126)],
    ids=["empty-table", "one-entry", "far-beyond"],
)
def test_rfc7541_2_3_3_an_index_beyond_both_tables_is_a_decoding_error(
    setup: bytes, index: int
) -> None:
    engine, _ = _requested()
    _fails_with_compression_error(engine, _response(_indexed(8) + setup + _indexed(index)))


# -- 3.2 processing of representations ---------------------------------------------------------


def test_rfc7541_3_2_each_representation_is_processed_by_its_rules() -> None:
    engine = _started()
    streams = [engine.send_headers(n, REQUEST, end_stream=True) for n in (1, 3)]
    engine.data_to_send()
    first = (
        _indexed(8)  # indexed: from the static table
        + _literal(b"x-without", b"w", prefix=0x00)  # literal without indexing
        + _literal(b"x-never", b"n", prefix=0x10)  # literal never indexed
        + _literal(b"x-incremental", b"i")  # literal with incremental indexing
        + bytes([0x40 | 31, 3])
        + b"idx"  # indexed name (static 31: content-type), new value
    )
    engine.receive_data(_response(first, 1))
    assert streams[0].response_headers == [
        (b":status", b"200"),
        (b"x-without", b"w"),
        (b"x-never", b"n"),
        (b"x-incremental", b"i"),
        (b"content-type", b"idx"),
    ]
    # Only the two incrementally indexed fields entered the table, newest first.
    second = _indexed(8) + _indexed(STATIC_ENTRIES + 1) + _indexed(STATIC_ENTRIES + 2)
    engine.receive_data(_response(second, 3))
    assert streams[1].response_headers == [
        (b":status", b"200"),
        (b"content-type", b"idx"),
        (b"x-incremental", b"i"),
    ]
    engine.send_headers(5, REQUEST, end_stream=True)
    engine.data_to_send()
    _fails_with_compression_error(engine, _response(_indexed(STATIC_ENTRIES + 3), 5))


# -- 4.2 maximum table size (the client's encoder) ---------------------------------------------


def test_rfc7541_4_2_the_table_stays_within_the_servers_limit() -> None:
    engine = _started()
    engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, 256)))
    engine.data_to_send()
    # The server's decoder: its table limit is what it advertised.
    server = hpack.Decoder()
    server.max_allowed_table_size = 256
    lists = [
        [*REQUEST, (b"x-large-%d" % (n % 3), b"v" * 100), (b"x-small", b"s%d" % (n % 2))]
        for n in range(8)
    ]
    blocks = _request_blocks(engine, lists)
    assert _leading_size_updates(blocks[0]) and max(_leading_size_updates(blocks[0])) <= 256
    for block, headers in zip(blocks, lists, strict=True):
        # A table over the limit would make the decoder's copy diverge (or refuse).
        assert server.decode(block, raw=True) == headers
        assert server.header_table.maxsize <= 256
        assert engine.encoder.header_table._current_size <= 256


def test_rfc7541_4_2_a_lowered_limit_is_signalled_at_the_start_of_the_next_block() -> None:
    engine = _started()
    _request_blocks(engine, [[*REQUEST, (b"x-a", b"1")]])
    engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, 100)))
    engine.data_to_send()
    block, later = _request_blocks(engine, [[*REQUEST, (b"x-a", b"1")]] * 2)
    assert _leading_size_updates(block) == [100]
    assert _leading_size_updates(later) == []


def test_rfc7541_4_2_a_limit_lowered_by_a_repeated_setting_is_still_signalled() -> None:
    engine = _started()
    engine.receive_data(
        settings((SettingCodes.HEADER_TABLE_SIZE, 100), (SettingCodes.HEADER_TABLE_SIZE, 100))
    )
    engine.data_to_send()
    (block,) = _request_blocks(engine, [REQUEST])
    updates = _leading_size_updates(block)
    assert updates and updates[0] <= 100


def test_rfc7541_4_2_two_changes_signal_the_smallest_then_the_final_size() -> None:
    engine = _started()
    engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, 0)))
    engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, 4096)))
    engine.data_to_send()
    (block,) = _request_blocks(engine, [[*REQUEST, (b"x-a", b"1")]])
    assert _leading_size_updates(block) == [0, 4096]


def test_rfc7541_4_2_many_changes_give_at_most_two_updates() -> None:
    engine = _started()
    for size in (1000, 100, 2000):
        engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, size)))
    engine.data_to_send()
    (block,) = _request_blocks(engine, [REQUEST])
    assert _leading_size_updates(block) == [100, 2000]


@pytest.mark.parametrize(
    ("sizes", "updates"),
    [
        ((100, 4096), [100, 4096]),  # lowered and back: the table was emptied, say so
        ((8192, 4096), []),  # raised and back: the size in use never changed
        ((8192,), [8192]),
        ((4096, 4096), []),  # the size in use, twice
        ((2000, 100, 100, 3000), [100, 3000]),
    ],
    ids=["down-and-back", "up-and-back", "raised", "unchanged", "repeated-low"],
)
def test_rfc7541_4_2_size_changes_between_blocks_give_the_smallest_then_the_final(
    sizes: tuple[int, ...], updates: list[int]
) -> None:
    engine = _started()
    engine.receive_data(settings(*((SettingCodes.HEADER_TABLE_SIZE, size) for size in sizes)))
    engine.data_to_send()
    first, second = _request_blocks(engine, [REQUEST, REQUEST])
    assert _leading_size_updates(first) == updates
    assert _leading_size_updates(second) == []


def test_rfc7541_4_2_a_size_update_after_a_field_is_a_decoding_error() -> None:
    engine, _ = _requested()
    _fails_with_compression_error(engine, _response(_indexed(8) + _size_update(0)))


# -- 5 primitive types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        _indexed(8) + b"\xff" + b"\xff" * 12 + b"\x01",  # an index of 13 continuation bytes
        _indexed(8) + b"\x40\x7f" + b"\xff" * 12 + b"\x01",  # a name length likewise
        _indexed(8) + b"\x40\x01a\x7f\xff\xff\xff\xff\x0f",  # a 4 GiB value length
    ],
    ids=["endless-index", "endless-length", "huge-length"],
)
def test_rfc7541_5_1_integers_over_the_limits_are_decoding_errors(block: bytes) -> None:
    engine, _ = _requested()
    _fails_with_compression_error(engine, _response(block))


# Huffman: "a" is 00011 (5 bits); the padding must be the most significant bits of EOS (1s).
HUFFMAN_CASES = {
    "valid-padding": (b"\x1f", True),
    "zero-padding": (b"\x18", False),
    "mixed-padding": (b"\x1a", False),
    "padding-over-7-bits": (b"\x1f\xff", False),
    "eos-symbol": (b"\xff\xff\xff\xff", False),
}


@pytest.mark.parametrize(
    ("encoded", "valid"), HUFFMAN_CASES.values(), ids=list(HUFFMAN_CASES.keys())
)
def test_rfc7541_5_2_huffman_padding_and_eos_rules(encoded: bytes, valid: bool) -> None:
    engine, stream = _requested()
    literal = b"\x00\x01x" + bytes([0x80 | len(encoded)]) + encoded  # value Huffman-coded
    data = _response(_indexed(8) + literal)
    if valid:
        engine.receive_data(data)
        assert stream.response_headers == [(b":status", b"200"), (b"x", b"a")]
    else:
        _fails_with_compression_error(engine, data)


# -- 6 binary format ---------------------------------------------------------------------------


def test_rfc7541_6_1_index_zero_is_a_decoding_error() -> None:
    engine, _ = _requested()
    _fails_with_compression_error(engine, _response(b"\x80"))


def test_rfc7541_6_3_a_size_update_above_the_advertised_limit_is_a_decoding_error() -> None:
    # hyper keeps the default SETTINGS_HEADER_TABLE_SIZE of 4096.
    engine, stream = _requested()
    assert engine.decoder.max_allowed_table_size == 4096
    engine.receive_data(_response(_size_update(4096) + _indexed(8)))
    assert stream.response_headers == [(b":status", b"200")]
    engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    _fails_with_compression_error(engine, _response(_size_update(4097) + _indexed(8), 3))


def test_rfc7541_6_3_a_size_update_evicts_entries() -> None:
    engine = _started()
    streams = [engine.send_headers(n, REQUEST, end_stream=True) for n in (1, 3, 5)]
    engine.data_to_send()
    engine.receive_data(_response(_indexed(8) + _literal(b"x-kept", b"k"), 1))
    engine.receive_data(_response(_size_update(0) + _size_update(4096) + _indexed(8), 3))
    assert streams[1].response_headers == [(b":status", b"200")]
    # The entry was evicted by the update to 0: index 62 no longer exists.
    _fails_with_compression_error(engine, _response(_indexed(8) + _indexed(62), 5))
    assert streams[0].response_headers == [(b":status", b"200"), (b"x-kept", b"k")]


def test_rfc7541_6_3_the_clients_size_updates_stay_within_the_servers_limit() -> None:
    engine = _started()
    sizes = [512, 8192, 0, 100]
    lists = [[*REQUEST, (b"x-n", b"%d" % n)] for n in range(len(sizes))]
    blocks = []
    for size, headers in zip(sizes, lists, strict=True):
        engine.receive_data(settings((SettingCodes.HEADER_TABLE_SIZE, size)))
        engine.data_to_send()
        blocks.extend(_request_blocks(engine, [headers]))
    for size, block in zip(sizes, blocks, strict=True):
        updates = _leading_size_updates(block)
        assert updates and all(update <= size for update in updates)


# -- 7.4 limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value_length", [70_000, 1 << 22], ids=["over-the-list-limit", "4-mib-declared"]
)
def test_rfc7541_7_4_string_lengths_are_limited(value_length: int) -> None:
    engine, _ = _requested()
    length = hpack.hpack.encode_integer(value_length, 7)
    block = _indexed(8) + b"\x00\x01x" + bytes(length) + b"v" * min(value_length, 70_000)
    with pytest.raises(ProtocolError) as info:
        engine.receive_data(_response(block))
    assert info.value.error_code == ErrorCodes.COMPRESSION_ERROR


def test_rfc7541_7_4_the_caching_decoder_keeps_hpacks_limits() -> None:
    decoder = CachingDecoder(max_header_list_size=1000)
    block = hpack.Encoder().encode([(b"x-big", b"v" * 2000)])
    with pytest.raises(hpack.HPACKError):
        decoder.decode(block, raw=True)
