"""Decompression bombs for the hostile-server tests: small bodies that decode to 1 GiB, and
readers that take only a bounded part of them."""

from __future__ import annotations

import functools
import struct
import zlib

import brotli
import zstandard

from hyper.common.response import BaseResponse

from .hostile import KiB, MiB

#: What each bomb expands to.
BOMB_SIZE = 1 << 30
#: CRC-32 of 2**30 zero bytes (the gzip trailer; computing it would take a second).
_CRC_OF_1_GIB_OF_ZEROS = 0x5B64C2B0


@functools.cache
def bomb(encoding: str) -> bytes:
    """A valid body of ``encoding`` that decodes to 1 GiB of zeros (built once)."""
    zeros = b"\0" * MiB
    if encoding == "gzip":
        # One compressed MiB ending in a full flush is independent of what precedes it, so
        # repeating it gives a valid stream in milliseconds.
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        deflate = segment * (BOMB_SIZE // MiB) + compressor.flush(zlib.Z_FINISH)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        return header + deflate + struct.pack("<II", _CRC_OF_1_GIB_OF_ZEROS, BOMB_SIZE % 2**32)
    if encoding == "br":
        brotli_compressor = brotli.Compressor(quality=1)
        parts = [brotli_compressor.process(zeros) for _ in range(BOMB_SIZE // MiB)]
        return b"".join(parts) + brotli_compressor.finish()
    zstd = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [zstd.compress(zeros) for _ in range(BOMB_SIZE // MiB)]
    return b"".join(parts) + zstd.flush()


#: Memory bound while reading a bomb: the compressed body (at most ~1 MiB) may arrive whole
#: into the stream's buffer, and decoded output comes in pieces of at most 256 KiB. The
#: decompressors' own state is allocated in C, outside tracemalloc's view.
BOMB_MEMORY = 4 * MiB
#: Decoded bytes the client takes before giving up on the bomb.
BOMB_TAKEN = 4 * MiB


def read_in_pieces(response: BaseResponse) -> int:
    """Take :data:`BOMB_TAKEN` decoded bytes with ``read(64 KiB)``; each piece is checked."""
    taken = 0
    while taken < BOMB_TAKEN:
        piece = response.read(64 * KiB)
        assert 0 < len(piece) <= 64 * KiB and not piece.strip(b"\0")
        taken += len(piece)
    return taken


def read_by_chunks(response: BaseResponse) -> int:
    """Take :data:`BOMB_TAKEN` decoded bytes with ``read_chunked()``; each piece is checked."""
    taken = 0
    for piece in response.read_chunked():
        assert len(piece) <= 256 * KiB and not piece.strip(b"\0")  # DECODE_STEP
        taken += len(piece)
        if taken >= BOMB_TAKEN:
            break
    return taken
