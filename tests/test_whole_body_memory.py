"""``response.read()`` of a whole body holds about one copy of it, never two.

A caller who reads a body whole gets one ``bytes`` object; while it is being built, hyper
may hold the growing result and a bounded amount besides (a socket buffer, one flow-control
window, one decoding step), but not the body twice: not a list of pieces joined into a second
copy, not a buffer copied into ``bytes`` at the end, not the encoded and the decoded body
together. The bound checked here is 1.25 times the body returned, with ``tracemalloc``, on a
256 MiB body over HTTP/1.1 and HTTP/2, with and without a ``Content-Encoding``.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

from hyper import HTTP11Connection, HTTP20Connection
from tests.support.http11 import RawReply, http11_responder
from tests.support.scripted import (
    Reply,
    ScriptedRawServer,
    ScriptedServer,
    simple_responder,
)

MiB = 1024 * 1024
#: The size of the body each test reads whole.
BODY_SIZE = 256 * MiB
#: The most memory hyper may hold at the peak of a whole read, relative to the body.
PEAK_RATIO = 1.25


def _zeros_gzip(size: int) -> bytes:
    """A gzip member of ``size`` zero bytes, built from one repeated, fully flushed MiB (so
    it takes milliseconds, not the seconds of compressing 256 MiB)."""
    zeros = bytes(MiB)
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflate = segment * (size // MiB) + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflate + crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")


@pytest.fixture(scope="module")
def body() -> Iterator[bytes]:
    """The 256 MiB identity body: not all zeros, so a short or shifted read shows."""
    pattern = bytes(range(256)) * (MiB // 256)
    yield pattern * (BODY_SIZE // MiB)


@pytest.fixture(scope="module")
def gzipped() -> bytes:
    return _zeros_gzip(BODY_SIZE)


def _read_whole_measured(read: Callable[[], bytes]) -> tuple[bytes, int]:
    """Run ``read`` under tracemalloc; return its result and the peak it allocated."""
    tracemalloc.start()
    try:
        data = read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return data, peak


def _read_whole_over_http11(
    scripted_raw_server: Callable[..., ScriptedRawServer], reply: RawReply
) -> tuple[bytes, int]:
    """Fetch ``reply`` over HTTP/1.1 and read its body whole under tracemalloc."""
    with (
        scripted_raw_server(http11_responder({"/big": reply}), tls=False) as server,
        HTTP11Connection(server.host, server.port, timeout=30) as conn,
    ):
        conn.request("GET", "/big")
        return _read_whole_measured(conn.get_response().read)


def _assert_one_copy(data: bytes, peak: int) -> None:
    assert peak <= PEAK_RATIO * len(data), (
        f"read() peaked at {peak / MiB:.0f} MiB for a {len(data) / MiB:.0f} MiB body "
        f"({peak / len(data):.2f}x; at most {PEAK_RATIO}x)"
    )


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
def test_http11_whole_read_holds_one_copy(
    scripted_raw_server: Callable[..., ScriptedRawServer], body: bytes, framing: str
) -> None:
    if framing == "content-length":
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        pieces = [head, body]
    elif framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        view = memoryview(body)
        pieces = [head]
        for start in range(0, len(body), 4 * MiB):
            chunk = view[start : start + 4 * MiB]
            pieces += [b"%x\r\n" % len(chunk), bytes(chunk), b"\r\n"]
        pieces.append(b"0\r\n\r\n")
    else:
        pieces = [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", body]
    reply = RawReply(pieces, close=framing == "until-close")
    data, peak = _read_whole_over_http11(scripted_raw_server, reply)
    assert data == body
    _assert_one_copy(data, peak)


def test_http11_whole_decoded_read_holds_one_copy(
    scripted_raw_server: Callable[..., ScriptedRawServer], gzipped: bytes
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    reply = RawReply([head % len(gzipped), gzipped], close=False)
    data, peak = _read_whole_over_http11(scripted_raw_server, reply)
    assert len(data) == BODY_SIZE and data.count(0) == BODY_SIZE
    _assert_one_copy(data, peak)


@pytest.mark.parametrize("encoded", [False, True], ids=["identity", "gzip"])
def test_http2_whole_read_holds_one_copy(
    scripted_server: Callable[..., ScriptedServer], body: bytes, gzipped: bytes, encoded: bool
) -> None:
    reply = (
        Reply(body=gzipped, headers=[(b"content-encoding", b"gzip")])
        if encoded
        else Reply(body=body)
    )
    with (
        scripted_server(simple_responder({"/big": reply}), tls=False) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=30) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/big"))
        data, peak = _read_whole_measured(response.read)
    if encoded:
        assert len(data) == BODY_SIZE and data.count(0) == BODY_SIZE
    else:
        assert data == body
    _assert_one_copy(data, peak)
