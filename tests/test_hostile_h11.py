"""
Hostile HTTP/1.1 servers: the HTTP/1.1 part of issue 7's checklist, with the same four
assertions as ``test_hostile_h2.py`` for every scenario.

``test_http11_malformed.py`` already pins the exception *class* of many malformed responses
(and that the next request works). This module does not repeat its full matrix of spellings:
it runs one representative of each item on the issue's list through the hostile harness,
which adds what that module does not check (a memory bound measured with ``tracemalloc``,
a time bound, and a clean close seen from the server's side), and adds the scenarios it
lacks: servers that never answer or drip, endless status, header, chunk-size and trailer
lines, floods of interim responses and of header lines, bodies that never end, a reset in
the middle of a body, and decompression bombs in gzip, brotli and zstd read with
``read(amt)`` and ``read_chunked()``.

The four assertions, for each :class:`Case`:

1. the documented exception (``docs/advanced.rst``, "Errors"; ``docs/http11.rst``), a
   ``HyperError`` with a clear message, or, for tolerated deviations (obs-fold, bare LF,
   interim responses), the correct response;
2. the time bound: :data:`FAST` seconds, or the read timeout plus slack;
3. the memory bound: :data:`SMALL` (see there);
4. the after-state: after a failure the client has closed the socket (the server sees its
   end of file) and, as documented, the next request goes out on a new connection and
   works; after a tolerated deviation the same connection serves the next request.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP11Response
from hyper.common.exceptions import (
    ChunkedDecodeError,
    ConnectionClosed,
    HTTP2PriorKnowledgeOnly,
    HyperError,
    IncompleteRead,
    InvalidResponse,
    LineTooLongError,
    ReadTimeout,
    SocketError,
)
from tests.support.bombs import BOMB_TAKEN, bomb, read_by_chunks, read_in_pieces
from tests.support.helpers import quickly
from tests.support.hostile import KiB, MiB, assert_bounds, assert_raised, measure
from tests.support.http11 import http11_responder, reader_for
from tests.support.scripted import ScriptedRawServer

ServerFactory = Callable[..., ScriptedRawServer]

#: Bound for an error that needs no waiting, in seconds.
FAST = 2.0
#: Memory bound of every scenario. hyper reads HTTP/1.1 only as the caller asks: the
#: response head must fit the 64 KiB receive buffer, lines and trailers have limits of their
#: own, and a body is read in the pieces asked for (decoded output in pieces of at most
#: 256 KiB). Everything else (objects, exceptions with tracebacks, the scripted server's
#: small reads) is a few hundred KiB.
SMALL = 2 * MiB
#: Memory bound when decoding: the decoded pieces (up to 256 KiB each from read_chunked())
#: and their joins. The decompressors' own state (a zstd window of up to 8 MiB, brotli's and
#: zlib's) is allocated in C, outside tracemalloc's view, and bounded by hyper's decoder
#: settings instead.
DECODING = 4 * MiB

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"
HOSTILE = OK + b"Content-Length: 7\r\n\r\nhostile"

Script = Callable[[socket.socket], None]


# -- what the hostile server can do ---------------------------------------------------------------


class ClientGone(Exception):
    """The client closed the connection while the script was still sending."""


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ClientGone(str(exc)) from exc


def raw(data: bytes, *, close: bool = False) -> Script:
    """Send ``data`` verbatim; with ``close``, then end the connection (FIN)."""

    def script(sock: socket.socket) -> None:
        _send(sock, data)
        if close:
            sock.shutdown(socket.SHUT_WR)

    return script


def endless(head: bytes, piece: bytes, *, total: int = 16 * MiB) -> Script:
    """Send ``head``, then ``piece`` over and over (``total`` bytes at most, so a client that
    keeps reading ends the scenario too): the client must give up, within its limits."""

    def script(sock: socket.socket) -> None:
        _send(sock, head)
        for _ in range(total // len(piece)):
            _send(sock, piece)

    return script


def drip(data: bytes, interval: float) -> Script:
    """Send ``data`` one byte at a time, ``interval`` seconds apart."""

    def script(sock: socket.socket) -> None:
        pause = threading.Event()  # never set: a timed wait that is the behaviour under test
        for index in range(len(data)):
            _send(sock, data[index : index + 1])
            pause.wait(interval)

    return script


def silent(sock: socket.socket) -> None:
    """Say nothing at all."""


def abort_after(data: bytes) -> Script:
    """Send ``data``, then reset the connection (TCP RST)."""

    def script(sock: socket.socket) -> None:
        _send(sock, data)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    return script


# -- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """
    One hostile HTTP/1.1 scenario.

    :ivar script: what the server does once it has read the request for ``/hostile``.
    :ivar expect: the exception the client must raise, or None when it must succeed.
    :ivar reused: the connection must serve the next request (tolerated deviations).
    :ivar read: how the client reads the response (default: ``read()``).
    :ivar body: what ``read`` must return when nothing fails.
    :ivar xfail: a hyper bug this case shows (the test is a strict xfail).
    """

    script: Script
    expect: type[HyperError] | None
    reused: bool = False
    read: Callable[[HTTP11Response], Any] = HTTP11Response.read
    body: Any = b"hostile"
    seconds: float = FAST
    memory: int = SMALL
    read_timeout: float = 5.0
    xfail: str | None = None


def _read_1_mib(response: HTTP11Response) -> int:
    """Take 1 MiB in 64 KiB reads, then give up on the rest (close the response)."""
    with response:
        taken = 0
        while taken < MiB:
            piece = response.read(64 * KiB)
            assert 0 < len(piece) <= 64 * KiB
            taken += len(piece)
        return taken


CASES: dict[str, Case] = {
    # -- status line and head
    "bad-status-line": Case(raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), InvalidResponse),
    "non-numeric-status": Case(
        raw(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"), InvalidResponse
    ),
    "status-line-too-long": Case(
        raw(b"HTTP/1.1 200 " + b"A" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"), LineTooLongError
    ),
    "endless-status-line": Case(endless(b"HTTP/1.1 200 ", b"A" * (64 * KiB)), LineTooLongError),
    "header-line-too-long": Case(
        raw(OK + b"X-Long: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"), LineTooLongError
    ),
    "endless-header-line": Case(endless(OK + b"X-Long: ", b"a" * (64 * KiB)), LineTooLongError),
    "too-many-headers": Case(
        raw(OK + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n"), InvalidResponse
    ),
    "endless-header-lines": Case(endless(OK, b"X-Flood: v\r\n" * 4096), InvalidResponse),
    "http2-frames-to-http11": Case(
        raw(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"),
        HTTP2PriorKnowledgeOnly,
    ),
    "closed-mid-head": Case(raw(b"HTTP/1.1 200 OK\r\nContent-Le", close=True), ConnectionClosed),
    # -- tolerated deviations and interim responses
    "obs-fold": Case(
        raw(OK + b"X-Folded: a\r\n  b\r\nContent-Length: 7\r\n\r\nhostile"),
        None,
        reused=True,
        read=lambda response: (response.headers[b"x-folded"], response.read()),
        body=([b"a b"], b"hostile"),
    ),
    "bare-lf": Case(raw(b"HTTP/1.1 200 OK\nContent-Length: 7\n\nhostile"), None, reused=True),
    "interim-1xx-then-final": Case(
        raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + HOSTILE
        ),
        None,
        reused=True,
    ),
    "interim-1xx-flood": Case(
        raw(b"HTTP/1.1 100 Continue\r\n\r\n" * 10_000 + HOSTILE), None, reused=True
    ),
    # -- framing
    "conflicting-content-length": Case(
        raw(OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), InvalidResponse
    ),
    "content-length-and-chunked": Case(
        raw(
            OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        InvalidResponse,
    ),
    "truncated-content-length-body": Case(
        raw(OK + b"Content-Length: 100\r\n\r\nhostile", close=True), IncompleteRead
    ),
    "reset-mid-body": Case(
        abort_after(OK + b"Content-Length: 100\r\n\r\nhostile"),
        SocketError,
    ),
    "endless-close-delimited-body": Case(
        endless(OK + b"Connection: close\r\n\r\n", b"b" * (64 * KiB)),
        None,
        read=_read_1_mib,
        body=MiB,
    ),
    # -- chunked bodies
    "bad-chunk-size": Case(raw(CHUNKED + b"zz\r\nab\r\n0\r\n\r\n"), ChunkedDecodeError),
    "chunk-size-overflow": Case(raw(CHUNKED + b"1" * 17 + b"\r\n"), ChunkedDecodeError),
    "endless-chunk-size-line": Case(
        endless(CHUNKED + b"5;ext=", b"x" * (64 * KiB)), ChunkedDecodeError
    ),
    "truncated-chunked-body": Case(raw(CHUNKED + b"a\r\nhello", close=True), ChunkedDecodeError),
    "endless-trailers": Case(
        endless(CHUNKED + b"7\r\nhostile\r\n0\r\n", b"X-Trailer: v\r\n" * 4096), ChunkedDecodeError
    ),
    "endless-chunks": Case(
        endless(CHUNKED, b"10000\r\n" + b"c" * 0x10000 + b"\r\n"), None, read=_read_1_mib, body=MiB
    ),
    # -- silence and dripping
    "never-answers": Case(silent, ReadTimeout, read_timeout=0.3, seconds=0.3 + FAST),
    "drips-slower-than-the-read-timeout": Case(
        drip(HOSTILE, 0.5), ReadTimeout, read_timeout=0.2, seconds=0.2 + FAST
    ),
    "drips-faster-than-the-read-timeout": Case(
        drip(HOSTILE, 0.01), None, reused=True, read_timeout=0.5
    ),
}


# -- the runner -----------------------------------------------------------------------------------


@dataclass
class _Seen:
    """What the hostile connection's server side saw after its script."""

    closed: threading.Event
    requests_after: int = 0


def _handler(case_: Case, seen: _Seen) -> Callable[[socket.socket], None]:
    counter = itertools.count()
    good = http11_responder({"/after": b"after"})

    def handle(sock: socket.socket) -> None:
        if next(counter) > 0:
            good(sock)
            return
        reader = reader_for(sock)
        request = reader.read_request()
        assert request.path == "/hostile"
        try:
            case_.script(sock)
            # Serve whatever else comes on this connection, until the client closes it.
            while (request := reader.next_request(wait=5.0)) is not None:
                seen.requests_after += 1
                body = request.path.lstrip("/").encode()
                _send(sock, OK + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except (ClientGone, ConnectionError, OSError):
            pass  # the client hung up, possibly in the middle of a flood: expected
        seen.closed.set()

    return handle


def _params() -> list[Any]:
    return [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, reason=case_.xfail)] if case_.xfail else [],
        )
        for name, case_ in CASES.items()
    ]


@pytest.mark.parametrize("name", _params())
def test_hostile_h11(scripted_raw_server: ServerFactory, name: str) -> None:
    case_ = CASES[name]
    seen = _Seen(threading.Event())
    with (
        scripted_raw_server(_handler(case_, seen), linger=0.5) as server,
        HTTP11Connection(server.host, server.port, timeout=(5, case_.read_timeout)) as conn,
    ):

        def action() -> Any:
            conn.request("GET", "/hostile")
            return case_.read(conn.get_response())

        outcome = measure(action)
        if case_.expect is None:
            assert outcome.error is None, repr(outcome.error)
            assert outcome.result == case_.body
            assert_bounds(outcome, seconds=case_.seconds, memory=case_.memory)
        else:
            assert_raised(outcome, case_.expect, seconds=case_.seconds, memory=case_.memory)

        with quickly(FAST):
            conn.request("GET", "/after")
            assert conn.get_response().read() == b"after"
            if case_.reused:
                assert server.connection_count == 1
                assert seen.requests_after == 1
            else:
                # The broken exchange was not reused: the client closed that socket and the
                # next request went out on a new connection.
                assert seen.closed.wait(FAST), "the client kept the broken connection open"
                assert seen.requests_after == 0
                assert server.connection_count == 2


# -- decompression bombs --------------------------------------------------------------------------

_take_amt = read_in_pieces
_take_chunked = read_by_chunks


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("reader", [_take_amt, _take_chunked], ids=["read-amt", "read-chunked"])
def test_decompression_bomb_h11(
    scripted_raw_server: ServerFactory,
    encoding: str,
    chunked: bool,
    reader: Callable[[HTTP11Response], int],
) -> None:
    """A small body claiming 1 GiB: read in pieces, it stays bounded; closing the response
    abandons the rest (the socket is closed), and the next request works."""
    payload = bomb(encoding)
    assert len(payload) < 2 * MiB
    head = OK + b"Content-Encoding: " + encoding.encode() + b"\r\n"
    # The body never ends: as far as the client knows, more is still to come, so giving up
    # on it must close the connection.
    if chunked:
        step = 16 * KiB
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
        response = head + b"Transfer-Encoding: chunked\r\n\r\n" + body
    else:
        response = head + b"Content-Length: %d\r\n\r\n" % (len(payload) + MiB) + payload
    case_ = Case(raw(response), None, body=BOMB_TAKEN, memory=DECODING)
    seen = _Seen(threading.Event())
    with (
        scripted_raw_server(_handler(case_, seen), linger=0.5) as server,
        HTTP11Connection(server.host, server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/hostile")
        got = conn.get_response()

        def action() -> int:
            with got:  # closing abandons the rest of the body, and so the connection
                return reader(got)

        outcome = measure(action)
        assert outcome.error is None, repr(outcome.error)
        assert outcome.result == BOMB_TAKEN
        assert_bounds(outcome, seconds=2 * FAST, memory=DECODING)
        with quickly(FAST):
            conn.request("GET", "/after")
            assert conn.get_response().read() == b"after"
            assert seen.closed.wait(FAST)
        assert server.connection_count == 2
