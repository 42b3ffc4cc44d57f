"""Tests for hyper.common.decoder: Content-Encoding parsing, codecs, chains, limits, bombs."""

from __future__ import annotations

import functools
import gzip
import importlib
import random
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from types import ModuleType

import brotli
import pytest

from hyper.common.decoder import SUPPORTED_ENCODINGS, ZSTD_BACKENDS, Decoder, get_decoder
from hyper.common.exceptions import ContentDecodingError, InvalidRequest
from tests.support.processes import missing_requirement


def _stdlib_zstd() -> ModuleType | None:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


# The modules behind hyper's two zstd back-ends (see ZSTD_BACKENDS); the test extra installs
# both on every Python version.
zstandard: ModuleType | None
try:
    zstandard = importlib.import_module("zstandard")
except ImportError:
    zstandard = None
STDLIB_ZSTD = _stdlib_zstd()
ZSTD_MODULES = {
    backend: module
    for backend, module in (("zstandard", zstandard), ("compression.zstd", STDLIB_ZSTD))
    if module is not None
}
assert ZSTD_MODULES, "zstd tests need zstandard, compression.zstd or backports.zstd"
# The tests compress with either module: both write standard frames.
_ZSTD = next(iter(ZSTD_MODULES.values()))


def zstd_compress(data: bytes, level: int = 3) -> bytes:
    """``data`` as one zstd frame whose header holds its size."""
    result: bytes = _ZSTD.compress(data, level)
    return result


def zstd_stream(data: bytes, *, checksum: bool = False, window_log: int = 0) -> bytes:
    """``data`` as one zstd frame written as a stream, so its header holds no content size."""
    if STDLIB_ZSTD is not None:
        parameter = STDLIB_ZSTD.CompressionParameter
        options = {parameter.checksum_flag: int(checksum)}
        if window_log:
            options[parameter.window_log] = window_log
        compressor = STDLIB_ZSTD.ZstdCompressor(options=options)
        result: bytes = compressor.compress(data) + compressor.flush()
        return result
    assert zstandard is not None
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=window_log, write_checksum=checksum
    )
    compressobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    result = compressobj.compress(data) + compressobj.flush()
    return result


# Frames built by hand (RFC 8878 section 3.1.1), for exact control over headers and blocks.
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RAW_BLOCK, RLE_BLOCK, COMPRESSED_BLOCK, RESERVED_BLOCK = range(4)


def zstd_header(content_size: int) -> bytes:
    """A frame header with Single_Segment set and a one-byte Frame_Content_Size."""
    assert content_size < 256
    return ZSTD_MAGIC + bytes([0x20, content_size])


def zstd_block(block_type: int, size: int, content: bytes, *, last: bool) -> bytes:
    """A block header (size, type, Last_Block) followed by the block's content."""
    return ((size << 3) | (block_type << 1) | int(last)).to_bytes(3, "little") + content


def skippable_frame(payload: bytes) -> bytes:
    return b"\x5a\x2a\x4d\x18" + len(payload).to_bytes(4, "little") + payload


# A valid frame header followed by a compressed block of garbage.
ZSTD_BAD_BLOCK = zstd_header(64) + zstd_block(COMPRESSED_BLOCK, 64, b"\xff" * 64, last=True)


KIB = 1024
MIB = 1024 * KIB
LIMIT = 64 * KIB

# Compressible but not trivial: random words.
_rng = random.Random(1234)
_WORDS = [bytes(_rng.randrange(97, 123) for _ in range(_rng.randrange(2, 9))) for _ in range(500)]
DATA = b" ".join(_rng.choice(_WORDS) for _ in range(60_000))
# For tests that feed the body one byte at a time.
SMALL = DATA[:20_000]


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": raw_deflate,
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": zstd_compress,
}


@functools.cache
def encoded(kind: str, data: bytes = DATA) -> bytes:
    """``data`` encoded as ``kind`` says (cached: brotli in particular is slow to compress)."""
    return ENCODERS[kind](data)


def coding_of(kind: str) -> str:
    return "deflate" if kind == "raw-deflate" else kind


def new_decoder(coding: str | bytes, zstd_backend: str | None = None) -> Decoder:
    decoder = get_decoder(coding, zstd_backend=zstd_backend)
    assert decoder is not None
    return decoder


def decode_streaming(
    decoder: Decoder, body: bytes, chunk_size: int, max_length: int
) -> Iterator[bytes]:
    """Feed the body in chunks and drain the decoder the documented way."""
    for start in range(0, len(body), chunk_size):
        yield decoder.decompress(body[start : start + chunk_size], max_length)
        while not decoder.needs_input:
            yield decoder.decompress(b"", max_length)
    while out := decoder.flush(max_length):
        yield out


def decode_all(
    coding: str,
    body: bytes,
    chunk_size: int = 1 << 30,
    max_length: int = -1,
    zstd_backend: str | None = None,
) -> bytes:
    decoder = new_decoder(coding, zstd_backend)
    pieces = list(decode_streaming(decoder, body, chunk_size, max_length))
    if max_length > 0:
        assert all(len(piece) <= max_length for piece in pieces)
    return b"".join(pieces)


# -- get_decoder --------------------------------------------------------------------------------


def test_supported_encodings() -> None:
    assert SUPPORTED_ENCODINGS == ("gzip", "deflate", "br", "zstd")


@pytest.mark.parametrize(
    "value", [None, b"", "", [], [b""], b"identity", "Identity", [b"identity"]]
)
def test_nothing_to_decode_gives_none(value: bytes | str | list[bytes] | None) -> None:
    assert get_decoder(value) is None


@pytest.mark.parametrize(
    "value",
    [b"compress", b"gzip, compress", [b"gzip", b"snappy"], "br, x-unknown", b"gzip;q=1"],
)
def test_any_unknown_coding_gives_none(value: bytes | str | list[bytes]) -> None:
    assert get_decoder(value) is None


@pytest.mark.parametrize(
    ("value", "codings"),
    [
        ([b"gzip"], ("gzip",)),
        (b"GZIP", ("gzip",)),
        ("x-gzip", ("x-gzip",)),
        (b" Deflate ", ("deflate",)),
        (b"gzip, br", ("gzip", "br")),
        ([b"gzip", b"br"], ("gzip", "br")),
        ([b"identity, gzip", b"", b"ZSTD"], ("gzip", "zstd")),
        (b"gzip,,br", ("gzip", "br")),
    ],
)
def test_codings_are_parsed(value: bytes | str | list[bytes], codings: tuple[str, ...]) -> None:
    assert new_decoder(value).codings == codings


def test_decoder_constructor() -> None:
    assert Decoder(["gzip", b"br"]).codings == ("gzip", "br")
    assert Decoder("gzip").codings == ("gzip",)
    with pytest.raises(InvalidRequest):
        Decoder(["compress"])
    with pytest.raises(InvalidRequest):
        Decoder([])


# -- Each codec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_one_shot(kind: str) -> None:
    body = encoded(kind)
    decoder = new_decoder(coding_of(kind))
    assert decoder.decompress(body) + decoder.flush() == DATA
    assert decoder.eof
    assert decoder.needs_input


@pytest.mark.parametrize("kind", list(ENCODERS))
@pytest.mark.parametrize(("chunk_size", "max_length"), [(1, -1), (7, 100), (4096, LIMIT), (1, 3)])
def test_streaming_and_bounded(kind: str, chunk_size: int, max_length: int) -> None:
    expected = SMALL if chunk_size == 1 else DATA
    body = encoded(kind, expected)
    assert decode_all(coding_of(kind), body, chunk_size, max_length) == expected


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_max_length_is_respected_and_input_kept(kind: str) -> None:
    decoder = new_decoder(coding_of(kind))
    first = decoder.decompress(encoded(kind), 1000)
    assert len(first) == 1000
    assert not decoder.needs_input
    assert not decoder.eof
    second = decoder.decompress(b"", 5)
    assert len(second) == 5
    rest = decoder.decompress(b"")
    assert first + second + rest + decoder.flush() == DATA


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_max_length_zero_returns_nothing_and_keeps_input(kind: str) -> None:
    decoder = new_decoder(coding_of(kind))
    assert decoder.decompress(encoded(kind), 0) == b""
    assert decoder.decompress(b"") + decoder.flush() == DATA


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_bounded_flush_returns_the_rest_in_pieces(kind: str) -> None:
    decoder = new_decoder(coding_of(kind))
    out = [decoder.decompress(encoded(kind), 10_000)]
    while piece := decoder.flush(10_000):
        assert len(piece) <= 10_000
        out.append(piece)
    assert b"".join(out) == DATA
    assert decoder.flush(10_000) == b""


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_empty_body_decodes_to_nothing(kind: str) -> None:
    decoder = new_decoder(coding_of(kind))
    assert decoder.decompress(b"") == b""
    assert decoder.flush() == b""


def test_needs_input_and_eof_progression() -> None:
    decoder = new_decoder("gzip")
    assert decoder.needs_input
    assert not decoder.eof
    body = gzip.compress(DATA)
    half = len(body) // 2
    decoder.decompress(body[:half])
    assert decoder.needs_input
    assert not decoder.eof
    decoder.decompress(body[half:])
    assert decoder.eof
    assert decoder.needs_input


def test_deflate_detects_zlib_and_raw_streams() -> None:
    zlib_body = zlib.compress(DATA)
    raw_body = raw_deflate(DATA)
    assert zlib_body[:2] != raw_body[:2]
    assert decode_all("deflate", zlib_body) == DATA
    assert decode_all("deflate", raw_body) == DATA
    # The header can arrive one byte at a time.
    assert decode_all("deflate", raw_deflate(SMALL), chunk_size=1, max_length=4096) == SMALL


def test_raw_deflate_starting_with_0x78_is_still_raw() -> None:
    # A stored (uncompressed) raw block whose first byte is 0x78, like most zlib headers; the
    # second byte (the block length) fails the zlib header check, so it is decoded as raw.
    stored = b"\x78" + (5).to_bytes(2, "little") + (0xFFFA).to_bytes(2, "little") + b"hello"
    body = stored + b"\x01\x00\x00\xff\xff"  # final empty stored block
    assert zlib.decompress(body, -15) == b"hello"
    assert decode_all("deflate", body) == b"hello"
    assert decode_all("deflate", body, chunk_size=1, max_length=2) == b"hello"


# -- Chains -------------------------------------------------------------------------------------


def test_chain_is_decoded_in_reverse_order() -> None:
    body = brotli.compress(gzip.compress(DATA))  # gzip applied first, then br
    assert decode_all("gzip, br", body) == DATA
    assert decode_all("gzip, br", body, chunk_size=999, max_length=4000) == DATA
    decoder = new_decoder([b"gzip", b"br"])
    assert decoder.decompress(body) + decoder.flush() == DATA


def test_chain_in_the_wrong_order_fails() -> None:
    body = brotli.compress(gzip.compress(DATA))
    with pytest.raises(ContentDecodingError):
        decode_all("br, gzip", body)


def test_three_codings() -> None:
    body = zstd_compress(brotli.compress(zlib.compress(DATA)))
    assert decode_all("deflate, br, zstd", body) == DATA
    assert decode_all("deflate, br, zstd", body, chunk_size=5000, max_length=1500) == DATA


def test_five_codings_are_decoded_in_bounded_steps() -> None:
    body = DATA
    for compress in (zlib.compress, gzip.compress, brotli.compress, zstd_compress, gzip.compress):
        body = compress(body)
    codings = "deflate, gzip, br, zstd, gzip"
    assert decode_all(codings, body) == DATA
    assert decode_all(codings, body, chunk_size=100, max_length=333) == DATA


@pytest.mark.parametrize("count", [6, 1200])
def test_more_than_five_codings_are_refused_before_decoding(count: int) -> None:
    header = ", ".join(["gzip"] * count)
    with pytest.raises(ContentDecodingError, match=f"{count} content codings; .* at most 5"):
        get_decoder(header)
    with pytest.raises(ContentDecodingError, match="at most 5"):
        get_decoder([b"gzip"] * count)  # as separate header fields, the same
    with pytest.raises(InvalidRequest, match="at most 5"):
        Decoder(header)
    # identity is not a coding to undo, so it does not count.
    assert get_decoder(", ".join(["identity"] * count + ["gzip"])) is not None


def test_identity_in_a_chain_is_ignored() -> None:
    assert decode_all("identity, gzip, identity", gzip.compress(DATA)) == DATA


def test_chain_with_garbage_after_the_inner_stream() -> None:
    body = brotli.compress(gzip.compress(SMALL) + b"junk", quality=5)
    assert decode_all("gzip, br", body) == SMALL
    assert decode_all("gzip, br", body, chunk_size=100, max_length=700) == SMALL


def test_chain_needs_input_reflects_upstream_data() -> None:
    decoder = new_decoder("gzip, br")
    decoder.decompress(brotli.compress(gzip.compress(DATA)), 10)
    assert not decoder.needs_input
    rest = decoder.decompress(b"")
    assert len(rest) == len(DATA) - 10
    assert decoder.needs_input


# -- What follows the end of a stream -----------------------------------------------------------


def test_gzip_multiple_members_are_all_decoded() -> None:
    body = gzip.compress(b"first ") + gzip.compress(b"second ") + gzip.compress(SMALL)
    expected = b"first second " + SMALL
    assert decode_all("gzip", body) == expected
    assert decode_all("gzip", body, chunk_size=1, max_length=777) == expected


@pytest.mark.parametrize("garbage", [b"\x00" * 10, b"junk after the end", b"\x1f", b"\x1fX"])
def test_gzip_trailing_garbage_is_ignored(garbage: bytes) -> None:
    body = encoded("gzip", SMALL) + garbage
    assert decode_all("gzip", body) == SMALL
    assert decode_all("gzip", body, chunk_size=3, max_length=5000) == SMALL


def test_gzip_garbage_ends_decoding_even_if_a_member_follows() -> None:
    body = gzip.compress(b"a") + b"junk" + gzip.compress(b"b")
    assert decode_all("gzip", body) == b"a"


def test_gzip_broken_second_member_is_an_error() -> None:
    # It starts like a member (magic bytes), so it is decoded, and it is invalid.
    body = gzip.compress(b"a") + b"\x1f\x8b" + b"\xff" * 20
    with pytest.raises(ContentDecodingError):
        decode_all("gzip", body)


def test_gzip_truncated_second_member_is_an_error() -> None:
    body = gzip.compress(b"a") + gzip.compress(DATA)[:-4]
    with pytest.raises(ContentDecodingError):
        decode_all("gzip", body)


@pytest.mark.parametrize("kind", ["deflate", "raw-deflate"])
def test_deflate_trailing_bytes_are_ignored(kind: str) -> None:
    body = encoded(kind, SMALL) + b"trailing junk"
    assert decode_all("deflate", body) == SMALL
    assert decode_all("deflate", body, chunk_size=2, max_length=999) == SMALL


def test_brotli_trailing_data_is_an_error_in_any_chunking() -> None:
    body = encoded("br") + b"x"
    with pytest.raises(ContentDecodingError):
        decode_all("br", body)
    decoder = new_decoder("br")
    assert decoder.decompress(body[:-1]) == DATA
    with pytest.raises(ContentDecodingError):
        decoder.decompress(b"x")


# -- Truncated and corrupt input ----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ENCODERS))
@pytest.mark.parametrize("cut", [1, 5, 0.5])
def test_truncated_body_raises_on_flush(kind: str, cut: float) -> None:
    body = encoded(kind)
    keep = int(len(body) * cut) if isinstance(cut, float) else len(body) - cut
    decoder = new_decoder(coding_of(kind))
    decoder.decompress(body[:keep])
    with pytest.raises(ContentDecodingError):
        decoder.flush()


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_truncated_body_raises_on_bounded_flush_after_the_output(kind: str) -> None:
    body = encoded(kind)
    decoder = new_decoder(coding_of(kind))
    received = bytearray(decoder.decompress(body[: len(body) // 2], 1000))
    with pytest.raises(ContentDecodingError):
        while True:
            out = decoder.flush(1000)
            assert len(out) <= 1000
            received += out
    assert 1000 <= len(received) < len(DATA)
    assert DATA.startswith(received)


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_body_of_only_a_few_header_bytes_is_truncated(kind: str) -> None:
    decoder = new_decoder(coding_of(kind))
    decoder.decompress(encoded(kind)[:1])
    with pytest.raises(ContentDecodingError):
        decoder.flush()


@pytest.mark.parametrize(
    ("coding", "body", "cause"),
    [
        ("gzip", b"this is not gzip at all", zlib.error),
        ("deflate", b"\x78\x9c" + b"\xff" * 30, zlib.error),
        ("deflate", b"\xff" * 30, zlib.error),
        ("br", b"\xff" * 30, brotli.error),
        ("zstd", ZSTD_BAD_BLOCK, ZSTD_MODULES[ZSTD_BACKENDS[0]].ZstdError),
    ],
    ids=["gzip", "zlib", "raw-deflate", "br", "zstd"],
)
def test_corrupt_input_raises_with_cause(coding: str, body: bytes, cause: type) -> None:
    with pytest.raises(ContentDecodingError) as info:
        decode_all(coding, body)
    assert isinstance(info.value.__cause__, cause)


def test_gzip_bad_crc_is_an_error() -> None:
    body = bytearray(gzip.compress(DATA))
    body[-8] ^= 0xFF  # the CRC32 in the trailer
    with pytest.raises(ContentDecodingError):
        decode_all("gzip", bytes(body))


def test_errors_are_content_decoding_errors_not_library_errors() -> None:
    decoder = new_decoder("gzip")
    with pytest.raises(ContentDecodingError):
        decoder.decompress(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"\xff" * 50)


# -- Bombs --------------------------------------------------------------------------------------

ONE_MIB_OF_ZEROS = bytes(MIB)


def _deflate_piece() -> tuple[bytes, bytes]:
    """A raw deflate block sequence for 1 MiB of zeros that can be repeated, and an ending."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(ONE_MIB_OF_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    # A full flush resets the compressor, so every further MiB compresses the same way.
    again = compressor.compress(ONE_MIB_OF_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert piece == again
    return piece, compressor.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """Bodies that each decode to 1 GiB of zeros, built without compressing 1 GiB."""
    piece, ending = _deflate_piece()
    raw = piece * 1024 + ending
    brotli_compressor = brotli.Compressor(quality=1)
    brotli_body = b"".join(brotli_compressor.process(ONE_MIB_OF_ZEROS) for _ in range(1024))
    zstd_frame = zstd_compress(bytes(64 * MIB))
    # The gzip and zlib trailers (checksum, size) are wrong; they are never reached.
    return {
        "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + bytes(8),
        "deflate": b"\x78\xda" + raw + bytes(4),
        "raw-deflate": raw,
        "br": brotli_body + brotli_compressor.finish(),
        "zstd": zstd_frame * 16,
    }


@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw-deflate", "br", "zstd"])
def test_bomb_output_is_bounded(bombs: dict[str, bytes], kind: str) -> None:
    body = bombs[kind]
    assert len(body) < 2 * MIB  # it really is a bomb: ~1000x or more
    decoder = new_decoder(coding_of(kind))
    tracemalloc.start()
    try:
        out = decoder.decompress(body, LIMIT)
        assert len(out) == LIMIT
        for _ in range(30):
            assert not decoder.needs_input
            out = decoder.decompress(b"", LIMIT)
            assert len(out) == LIMIT
            assert out == bytes(LIMIT)
        small = decoder.decompress(b"", 10)
        assert small == bytes(10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB
    assert not decoder.eof


@pytest.mark.parametrize(
    ("codings", "wrap"),
    [
        ("gzip, br", lambda body: brotli.compress(body, quality=5)),
        ("gzip, gzip", gzip.compress),
        ("gzip, zstd", zstd_compress),
    ],
)
def test_bomb_inside_a_chain_is_bounded(
    bombs: dict[str, bytes], codings: str, wrap: Callable[[bytes], bytes]
) -> None:
    body = wrap(bombs["gzip"])
    assert len(body) < 64 * KIB
    decoder = new_decoder(codings)
    tracemalloc.start()
    try:
        out = decoder.decompress(body, LIMIT)
        assert len(out) == LIMIT
        for _ in range(30):
            assert not decoder.needs_input
            assert len(decoder.decompress(b"", LIMIT)) == LIMIT
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB


FIFTY_MIB = bytes(50 * MIB)


@pytest.mark.parametrize(
    "kind",
    ["gzip", "deflate", "raw-deflate", "br", "zstd"],
)
def test_large_body_fed_at_once_then_read_in_bounded_pieces(kind: str) -> None:
    encoders: dict[str, Callable[[bytes], bytes]] = {
        "gzip": lambda data: gzip.compress(data, 1),
        "deflate": lambda data: zlib.compress(data, 1),
        "raw-deflate": lambda data: zlib.compress(data, 1)[2:-4],
        "br": lambda data: brotli.compress(data, quality=1),
        "zstd": zstd_compress,
    }
    body = encoders[kind](FIFTY_MIB)
    decoder = new_decoder(coding_of(kind))
    total = len(decoder.decompress(body, LIMIT))
    calls = 1
    while not decoder.needs_input:
        out = decoder.decompress(b"", LIMIT)
        assert len(out) <= LIMIT
        assert not out.strip(b"\x00")
        total += len(out)
        calls += 1
    while out := decoder.flush(LIMIT):
        total += len(out)
    assert total == len(FIFTY_MIB)
    assert calls >= len(FIFTY_MIB) // LIMIT
    assert decoder.eof


# -- zstd, through each back-end ----------------------------------------------------------------


@pytest.fixture(params=["zstandard", "compression.zstd"])
def zstd_backend(request: pytest.FixtureRequest) -> str:
    """Each zstd back-end in turn, chosen through ``zstd_backend=``."""
    backend: str = request.param
    if backend not in ZSTD_BACKENDS:
        missing_requirement(f"zstd back-end {backend!r} is not installed (the test extra has it)")
    return backend


def has_content_size(frame: bytes) -> bool:
    """Whether a frame's header holds Frame_Content_Size (Single_Segment, or the size flag)."""
    descriptor = frame[4]
    return bool(descriptor & 0x20) or descriptor >> 6 != 0


def test_zstd_backends_are_listed_default_first() -> None:
    assert set(ZSTD_BACKENDS) == set(ZSTD_MODULES)
    expected_default = "zstandard" if zstandard is not None else "compression.zstd"
    assert ZSTD_BACKENDS[0] == expected_default
    # The back-end that decodes by default is the first: its own exception is the cause.
    with pytest.raises(ContentDecodingError) as info:
        decode_all("zstd", ZSTD_BAD_BLOCK)
    assert isinstance(info.value.__cause__, ZSTD_MODULES[expected_default].ZstdError)


@pytest.mark.parametrize("content_encoding", [None, b"gzip", b"zstd"])
def test_unknown_zstd_backend_is_refused(content_encoding: bytes | None) -> None:
    with pytest.raises(InvalidRequest, match="zstd back-end 'lz4' is not available"):
        get_decoder(content_encoding, zstd_backend="lz4")
    with pytest.raises(InvalidRequest, match="zstd back-end 'lz4' is not available"):
        Decoder(content_encoding or b"gzip", zstd_backend="lz4")


def test_zstd_backend_is_the_one_asked_for(zstd_backend: str) -> None:
    with pytest.raises(ContentDecodingError) as info:
        decode_all("zstd", ZSTD_BAD_BLOCK, zstd_backend=zstd_backend)
    # Each back-end's library has an exception class of its own.
    assert isinstance(info.value.__cause__, ZSTD_MODULES[zstd_backend].ZstdError)


def test_zstd_single_frame(zstd_backend: str) -> None:
    body = encoded("zstd")
    assert has_content_size(body)
    decoder = new_decoder("zstd", zstd_backend)
    assert decoder.decompress(body) + decoder.flush() == DATA
    assert decoder.eof
    assert decode_all("zstd", body, max_length=LIMIT, zstd_backend=zstd_backend) == DATA


def test_zstd_hand_made_frame_with_raw_and_rle_blocks(zstd_backend: str) -> None:
    body = (
        zstd_header(8)
        + zstd_block(RAW_BLOCK, 5, b"hello", last=False)
        + zstd_block(RLE_BLOCK, 3, b"!", last=True)
    )
    assert decode_all("zstd", body, zstd_backend=zstd_backend) == b"hello!!!"
    assert decode_all("zstd", body, 1, 2, zstd_backend) == b"hello!!!"


def test_zstd_several_frames_and_skippable_frames(zstd_backend: str) -> None:
    body = (
        skippable_frame(b"meta")
        + zstd_compress(SMALL)
        + skippable_frame(b"")
        + zstd_stream(b"tail", checksum=True)
        + zstd_compress(b"")
    )
    expected = SMALL + b"tail"
    assert decode_all("zstd", body, zstd_backend=zstd_backend) == expected
    assert decode_all("zstd", body, 1, 3000, zstd_backend) == expected
    decoder = new_decoder("zstd", zstd_backend)
    assert decoder.decompress(body) == expected
    assert decoder.eof  # another frame could still follow


@pytest.mark.parametrize("garbage", [b"\x00" * 3, b"\x00" * 10, b"junk!"])
def test_zstd_trailing_garbage_is_ignored(zstd_backend: str, garbage: bytes) -> None:
    body = zstd_compress(SMALL) + zstd_compress(b"!") + garbage
    assert decode_all("zstd", body, zstd_backend=zstd_backend) == SMALL + b"!"
    assert decode_all("zstd", body, 2, 5000, zstd_backend) == SMALL + b"!"


def test_zstd_frame_of_unknown_content_size(zstd_backend: str) -> None:
    body = zstd_stream(DATA, checksum=True)
    assert not has_content_size(body)
    assert decode_all("zstd", body, zstd_backend=zstd_backend) == DATA
    assert decode_all("zstd", body, 100, 5000, zstd_backend) == DATA


@pytest.mark.parametrize(("chunk_size", "max_length"), [(1, -1), (1, 3), (7, 100), (4096, LIMIT)])
def test_zstd_streamed_in_small_pieces(
    zstd_backend: str, chunk_size: int, max_length: int
) -> None:
    body = zstd_compress(SMALL) + zstd_stream(SMALL[::-1])
    expected = SMALL + SMALL[::-1]
    # decode_all checks that no piece is longer than max_length.
    assert decode_all("zstd", body, chunk_size, max_length, zstd_backend) == expected


def _flip_last_byte(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


ZSTD_CORRUPT = {
    "bad-block": ZSTD_BAD_BLOCK,
    "reserved-block-type": zstd_header(5) + zstd_block(RESERVED_BLOCK, 5, b"hello", last=True),
    "not-a-frame": b"definitely not zstd",
    "bad-checksum": _flip_last_byte(zstd_stream(SMALL, checksum=True)),
    "bad-second-frame": zstd_compress(b"first") + ZSTD_BAD_BLOCK,
}


@pytest.mark.parametrize("kind", list(ZSTD_CORRUPT))
@pytest.mark.parametrize(("chunk_size", "max_length"), [(1 << 30, -1), (1, 100)])
def test_zstd_corrupt_stream_is_a_content_decoding_error(
    zstd_backend: str, kind: str, chunk_size: int, max_length: int
) -> None:
    with pytest.raises(ContentDecodingError, match=r"^invalid zstd data: "):
        decode_all("zstd", ZSTD_CORRUPT[kind], chunk_size, max_length, zstd_backend)


@pytest.mark.parametrize("cut", [1, 4, 0.5])
def test_zstd_truncated_stream_is_a_content_decoding_error(zstd_backend: str, cut: float) -> None:
    body = zstd_compress(DATA)
    keep = int(len(body) * cut) if isinstance(cut, float) else len(body) - cut
    decoder = new_decoder("zstd", zstd_backend)
    decoder.decompress(body[:keep])
    with pytest.raises(ContentDecodingError, match="zstd stream is truncated"):
        decoder.flush()


@pytest.mark.parametrize(("window_log", "allowed"), [(23, True), (24, False)])
def test_zstd_window_over_8_mib_is_refused(
    zstd_backend: str, window_log: int, allowed: bool
) -> None:
    body = zstd_stream(DATA, window_log=window_log)
    assert not body[4] & 0x20 and 10 + (body[5] >> 3) == window_log  # the Window_Descriptor
    if allowed:
        assert decode_all("zstd", body, max_length=1000, zstd_backend=zstd_backend) == DATA
    else:
        with pytest.raises(ContentDecodingError):
            decode_all("zstd", body, max_length=1000, zstd_backend=zstd_backend)


def test_zstd_bomb_is_bounded(zstd_backend: str, bombs: dict[str, bytes]) -> None:
    decoder = new_decoder("zstd", zstd_backend)
    tracemalloc.start()
    try:
        assert len(decoder.decompress(bombs["zstd"], LIMIT)) == LIMIT
        for _ in range(10):
            assert not decoder.needs_input
            assert decoder.decompress(b"", LIMIT) == bytes(LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB
