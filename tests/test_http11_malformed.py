"""HTTP11Connection against malformed responses from a scripted server.

Each bad response must raise the exact hyper exception class, fast (no waiting for a
timeout), and must leave the connection unused afterwards: the next request goes out on a
new connection and works. Tolerated deviations (obs-fold, bare LF, repeated equal
Content-Length) must be read correctly.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from hyper import HTTP11Connection
from hyper.common.exceptions import (
    ChunkedDecodeError,
    ConnectionClosed,
    HTTP2PriorKnowledgeOnly,
    HyperError,
    IncompleteRead,
    IncompleteResponseHead,
    InvalidResponse,
    InvalidResponseHeader,
    LineTooLongError,
)
from tests.support.http11 import HTTP11Responder, RawReply, http11_responder
from tests.support.scripted import ScriptedRawServer

ServerFactory = Callable[..., ScriptedRawServer]

#: Read timeout of the client: a response that makes hyper wait for more data fails the
#: "fast" check with ReadTimeout instead of hanging.
TIMEOUT = 3
#: How fast a malformed response must be reported, in seconds.
FAST = 2.0

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"
SETTINGS_FRAME = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x64"


def _responder(bad: RawReply) -> HTTP11Responder:
    return http11_responder({"/bad": bad, "/good": b"good body"})


def _exchange(conn: HTTP11Connection, path: str) -> tuple[Any, bytes]:
    conn.request("GET", path)
    response = conn.get_response()
    return response, response.read()


def _assert_refused(
    scripted_raw_server: ServerFactory,
    bad: RawReply,
    exc_type: type[HyperError],
    *,
    buffer_size: int | None = None,
) -> HyperError:
    """Fetch ``/bad``: it must raise exactly ``exc_type`` within FAST seconds, and ``/good``
    must then be fetched on a second connection."""
    responder = _responder(bad)
    with (
        scripted_raw_server(responder) as srv,
        HTTP11Connection(*srv.address, timeout=TIMEOUT) as conn,
    ):
        if buffer_size is not None:
            conn.network_buffer_size = buffer_size
        started = time.monotonic()
        with pytest.raises(HyperError) as info:
            _exchange(conn, "/bad")
        elapsed = time.monotonic() - started
        assert type(info.value) is exc_type, repr(info.value)
        assert elapsed < FAST
        response, body = _exchange(conn, "/good")
        assert (response.status, body) == (200, b"good body")
    assert [(r.path, r.connection_id) for r in responder.requests] == [
        ("/bad", 0),
        ("/good", 1),
    ]
    assert srv.connection_count == 2
    return info.value


def _assert_read(scripted_raw_server: ServerFactory, raw: bytes) -> tuple[Any, bytes]:
    """Fetch ``raw`` (a tolerated response) twice on one connection; return the last one."""
    responder = http11_responder({"/ok": RawReply(raw, close=False)})
    with scripted_raw_server(responder) as srv, HTTP11Connection(*srv.address) as conn:
        for _ in range(2):
            response, body = _exchange(conn, "/ok")
    assert [r.connection_id for r in responder.requests] == [0, 0]
    return response, body


# -- status line and header block -------------------------------------------------------------


def _head(*lines: bytes, status: bytes = OK) -> bytes:
    return status + b"".join(line + b"\r\n" for line in lines) + b"Content-Length: 0\r\n\r\n"


MALFORMED_HEADS = {
    "garbage": b"garbage\r\n\r\n",
    "garbage-no-blank-line": b"SSH-2.0-OpenSSH_9.6\r\n",
    "non-numeric-status": b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    "four-digit-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-below-100": b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
    "http2-version": b"HTTP/2 200\r\ncontent-length: 0\r\n\r\n",
    "http09-style": b"<html>hello</html>\r\n\r\n",
    "lowercase-http": b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "nul-in-reason": b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
    "too-many-headers": _head(*(b"X-H%d: v" % i for i in range(101))),
}

#: Heads whose status line is fine and one header field is not.
MALFORMED_FIELDS = {
    "header-without-colon": _head(b"NoColonHere"),
    "space-before-colon": _head(b"X-A : b"),
    "tab-before-colon": _head(b"X-A\t: b"),
    "empty-name": _head(b": value"),
    "bare-cr-in-value": _head(b"X-A: a\rb"),
    "nul-in-value": _head(b"X-A: a\x00b"),
    "continuation-first": OK + b" folded: first\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED_HEADS.values(), ids=MALFORMED_HEADS.keys())
def test_malformed_head(scripted_raw_server: ServerFactory, raw: bytes) -> None:
    # close=False: the server would carry on; hyper must not.
    _assert_refused(scripted_raw_server, RawReply(raw, close=False), InvalidResponse)


@pytest.mark.parametrize("raw", MALFORMED_FIELDS.values(), ids=MALFORMED_FIELDS.keys())
def test_malformed_header_field(scripted_raw_server: ServerFactory, raw: bytes) -> None:
    """InvalidResponseHeader (an InvalidResponse) names the field problem."""
    _assert_refused(scripted_raw_server, RawReply(raw, close=False), InvalidResponseHeader)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 " + b"A" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
        OK + b"X-Long: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
        OK + b"X-Long: " + b"a" * 70_000,  # and no end in sight
    ],
    ids=["status-line", "header-line", "unterminated-header-line"],
)
def test_line_too_long(scripted_raw_server: ServerFactory, raw: bytes) -> None:
    _assert_refused(scripted_raw_server, RawReply(raw, close=False), LineTooLongError)


def test_head_larger_than_buffer_of_short_lines(scripted_raw_server: ServerFactory) -> None:
    # 90 header lines (under the 100-field limit) of 800 bytes: no line is long, but the
    # head does not fit the 64 KiB receive buffer. hyper reports LineTooLongError (a
    # subclass of InvalidResponse) for a head larger than its buffer.
    raw = _head(*(b"X-H%02d: " % i + b"v" * 790 for i in range(90)))
    assert len(raw) > HTTP11Connection.network_buffer_size
    error = _assert_refused(scripted_raw_server, RawReply(raw, close=False), LineTooLongError)
    assert "buffer" in str(error)


def test_head_larger_than_small_buffer(scripted_raw_server: ServerFactory) -> None:
    # The same with a 4 KiB buffer and 60 headers of 80 bytes.
    raw = _head(*(b"X-H%02d: " % i + b"v" * 73 for i in range(60)))
    assert 4096 < len(raw) < 65536
    _assert_refused(
        scripted_raw_server, RawReply(raw, close=False), LineTooLongError, buffer_size=4096
    )


def test_http2_settings_frame(scripted_raw_server: ServerFactory) -> None:
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + b"\x00" * 8
    _assert_refused(
        scripted_raw_server,
        RawReply(SETTINGS_FRAME + goaway, close=False),
        HTTP2PriorKnowledgeOnly,
    )


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (RawReply(b"", close=True), ConnectionClosed),
        (RawReply(b"HTTP/1.1 200 OK\r\nContent-Le", close=True), IncompleteResponseHead),
        (RawReply(b"", abort=True), ConnectionClosed),
    ],
    ids=["close-without-response", "close-mid-head", "reset-without-response"],
)
def test_server_closes_without_response(
    scripted_raw_server: ServerFactory, bad: RawReply, error: type[ConnectionClosed]
) -> None:
    """A head cut short is IncompleteResponseHead, a ConnectionClosed."""
    _assert_refused(scripted_raw_server, bad, error)


# -- tolerated deviations ---------------------------------------------------------------------


def test_obs_fold_is_unfolded(scripted_raw_server: ServerFactory) -> None:
    raw = (
        OK
        + b"X-Folded: first\r\n  second\r\n\tthird\r\nX-After: yes\r\nContent-Length: 2\r\n\r\nhi"
    )
    response, body = _assert_read(scripted_raw_server, raw)
    assert response.headers[b"x-folded"] == [b"first second third"]
    assert response.headers[b"x-after"] == [b"yes"]
    assert body == b"hi"


def test_bare_lf_line_endings(scripted_raw_server: ServerFactory) -> None:
    raw = b"HTTP/1.1 201 Created\nX-A: 1\nContent-Length: 5\n\nhello"
    response, body = _assert_read(scripted_raw_server, raw)
    assert (response.status, response.reason, body) == (201, "Created", b"hello")
    assert response.headers[b"x-a"] == [b"1"]


def test_bare_lf_chunked_body(scripted_raw_server: ServerFactory) -> None:
    raw = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n2\nde\n0\n\n"
    _, body = _assert_read(scripted_raw_server, raw)
    assert body == b"abcde"


@pytest.mark.parametrize(
    "lengths",
    [b"Content-Length: 5, 5", b"Content-Length: 5\r\nContent-Length: 5", b"Content-Length:  5 "],
)
def test_repeated_equal_content_length(scripted_raw_server: ServerFactory, lengths: bytes) -> None:
    _, body = _assert_read(scripted_raw_server, OK + lengths + b"\r\n\r\nhello")
    assert body == b"hello"


def test_chunk_extensions_ignored(scripted_raw_server: ServerFactory) -> None:
    raw = CHUNKED + b"3;name=value\r\nabc\r\n2 ; x\r\nde\r\n0;last\r\n\r\n"
    _, body = _assert_read(scripted_raw_server, raw)
    assert body == b"abcde"


# -- body framing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "close"),
    [
        (b"zz\r\nab\r\n0\r\n\r\n", False),
        (b"\r\nab\r\n0\r\n\r\n", False),
        (b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n", False),
        (b"1" * 17 + b"\r\n", False),
        (b"-5\r\nhello\r\n0\r\n\r\n", False),
        (b"0x5\r\nhello\r\n0\r\n\r\n", False),
        (b"5\r\nhelloXX\r\n0\r\n\r\n", False),
        (b"5\r\nhello0\r\n\r\n", False),
        (b"a\r\nhello", True),
        (b"5\r\nhello\r\n", True),
        (b"5\r\nhello\r\n0\r\n", True),
    ],
    ids=[
        "non-hex-size",
        "empty-size",
        "17-hex-digits",
        "17-hex-digits-huge",
        "negative-size",
        "0x-prefix",
        "data-without-crlf",
        "data-without-crlf-before-last-chunk",
        "closed-mid-chunk",
        "closed-before-next-size",
        "closed-in-trailers",
    ],
)
def test_bad_chunked_body(scripted_raw_server: ServerFactory, body: bytes, close: bool) -> None:
    _assert_refused(scripted_raw_server, RawReply(CHUNKED + body, close=close), ChunkedDecodeError)


def test_truncated_content_length_body(scripted_raw_server: ServerFactory) -> None:
    raw = OK + b"Content-Length: 10\r\n\r\nhello"
    error = _assert_refused(scripted_raw_server, RawReply(raw, close=True), IncompleteRead)
    assert isinstance(error, IncompleteRead)
    assert (error.received, error.expected) == (5, 10)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nContent-Length: 6",
        b"Content-Length: 5, 6",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nContent-Length: 0",
        b"Transfer-Encoding: chunked, chunked",
        b"Content-Length: -1",
        b"Content-Length: abc",
        b"Content-Length: 1e3",
        b"Content-Length: +5",
        b"Content-Length: 0x10",
        b"Content-Length:",
    ],
    ids=[
        "conflicting-lengths",
        "conflicting-list",
        "length-and-chunked",
        "chunked-and-length",
        "chunked-twice",
        "negative",
        "abc",
        "1e3",
        "plus-sign",
        "hex",
        "empty",
    ],
)
def test_bad_framing_headers(scripted_raw_server: ServerFactory, framing: bytes) -> None:
    # The body is withheld and the server keeps the connection: where this response ends
    # cannot be known, so the connection must not carry another request.
    raw = OK + framing + b"\r\n\r\n"
    _assert_refused(scripted_raw_server, RawReply(raw, close=False), InvalidResponseHeader)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nContent-Length: 6",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked",
    ],
    ids=["conflicting-lengths", "length-and-chunked"],
)
def test_bad_framing_headers_with_body(scripted_raw_server: ServerFactory, framing: bytes) -> None:
    raw = OK + framing + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    _assert_refused(scripted_raw_server, RawReply(raw, close=False), InvalidResponseHeader)


# -- decompression bomb -----------------------------------------------------------------------

#: CRC-32 of 2**30 zero bytes (the gzip trailer of the bomb; computing it takes a second).
_CRC_OF_1_GIB_OF_ZEROS = 0x5B64C2B0


def _gzip_bomb() -> bytes:
    """A valid gzip member of 1 GiB of zeros, about 1 MB long, built in milliseconds: one
    compressed MiB ending in a full flush (independent of what precedes it), repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(b"\0" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflate = segment * 1024 + compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflate + struct.pack("<II", _CRC_OF_1_GIB_OF_ZEROS, (1 << 30) % (1 << 32))


def test_gzip_bomb_read_is_bounded(scripted_raw_server: ServerFactory) -> None:
    bomb = _gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    head = OK + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    responder = http11_responder({"/bomb": RawReply(head + bomb, close=False), "/good": b"ok"})
    with scripted_raw_server(responder) as srv, HTTP11Connection(*srv.address) as conn:
        conn.request("GET", "/bomb")
        response = conn.get_response()
        tracemalloc.start()
        try:
            pieces = [response.read(65536) for _ in range(8)]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert all(0 < len(piece) <= 65536 for piece in pieces)
        assert b"".join(pieces) == b"\0" * sum(map(len, pieces))
        assert peak < 2 * 1024 * 1024, peak
        response.close()  # abandon the rest: the connection is closed
        _, body = _exchange(conn, "/good")
        assert body == b"ok"
    assert [r.connection_id for r in responder.requests] == [0, 1]
