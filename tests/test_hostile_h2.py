"""
Hostile HTTP/2 servers, frame by frame: the checklist of issue 7 as one table.

Every scenario is a :class:`Case` played by a :class:`~tests.support.hostile.RawH2Peer` (raw
frames, no ``h2`` state machine on the server side) against an :class:`hyper.HTTP20Connection`
in plaintext (TLS has its own cases at the end). The client sends ``GET /hostile`` and, in
most cases, a bystander ``POST /bystander`` on the same connection, then reads the hostile
response. Each case asserts the same four things:

1. **the outcome**: the documented hyper exception (see ``docs/advanced.rst``, "Errors"), a
   ``HyperError`` with a clear message, or, where the RFC says to ignore something (unknown
   frame types, 1xx, frames on closed streams) or where hyper is meant to survive (floods),
   the correct response;
2. **time**: the action finished within :data:`FAST` seconds (or the read timeout plus
   slack): no waiting for a timeout that should not be needed, no spinning;
3. **memory**: the peak of Python allocations during the action (``tracemalloc``) stayed
   under the case's bound: :data:`SMALL` for ordinary cases, :data:`LARGE` for floods, big
   frames and large header blocks (see the constants for how the bounds are derived);
4. **the after-state**: for a *stream-level* fault (or an ignored one) the bystander's
   response still arrives, and a new request on the same connection works, with no second
   TCP connection; for a *connection-level* fault the bystander fails with the same
   exception (hyper attaches the session's error to every unfinished stream), the client
   closes the socket promptly (after sending GOAWAY with the expected code when the server
   broke the protocol), and, as documented, the next request opens a new connection and
   works.

Scenarios partly covered elsewhere (``test_http20_scripted.py``,
``test_http20_regressions.py``, ``test_tls.py``) are repeated here on purpose, with the memory
and after-state checks those tests lack, so the issue's checklist can be read off this file.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h2.errors
import pytest
from hpack.hpack import encode_integer
from hyperframe.frame import PushPromiseFrame, WindowUpdateFrame

from hyper import HTTP20Connection, HTTP20Response
from hyper.common.exceptions import (
    CertificateError,
    ConnectionClosed,
    HyperError,
    ReadTimeout,
    SocketError,
    TLSError,
)
from hyper.http20.exceptions import (
    ConnectionError,
    HPACKDecodingError,
    HTTP20Error,
    ProtocolError,
    StreamResetError,
)
from hyper.tls import init_context
from tests.support.bombs import (
    BOMB_TAKEN,
    bomb,
    read_by_chunks,
    read_in_pieces,
)
from tests.support.certs import CertPaths
from tests.support.helpers import quickly
from tests.support.hostile import (
    CONTINUATION,
    DATA,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    KiB,
    Measured,
    MiB,
    PeerGone,
    RawH2Peer,
    assert_bounds,
    assert_raised,
    frame_bytes,
    measure,
)
from tests.support.scripted import ScriptedRawServer

ServerFactory = Callable[..., ScriptedRawServer]
Codes = h2.errors.ErrorCodes

#: Bound for an error that needs no waiting, in seconds (generous for a loaded CI machine).
FAST = 2.0
#: Memory bound of an ordinary scenario. hyper's receive buffer is 64 KiB, header lists are
#: limited to 64 KiB, and the test's own objects (connection, exceptions with tracebacks,
#: the peer's bookkeeping) add a few hundred KiB.
SMALL = 2 * MiB
#: Memory bound for oversized frames, large header blocks, and the 4 MiB of DATA a stream
#: window lets a server send to a response nobody reads. The largest frame hyper accepts is
#: 1 MiB (its SETTINGS_MAX_FRAME_SIZE); h2 holds one incomplete frame and copies it once when
#: parsing, so a few frames' worth of memory is expected, and nothing proportional to the
#: size the server claims. 16 MiB leaves room for that and for tracing overhead.
LARGE = 16 * MiB
#: Frames in each flood: enough that anything kept per frame, even 200 bytes, would exceed a
#: flood's memory bound (:data:`SMALL`), and few enough to run in well under a second while
#: tracemalloc traces every allocation.
FLOOD = 10_000
#: Time bound of a flood: about 2 s traced on a quiet machine, with slack for a loaded one.
FLOOD_SECONDS = 10.0

OK_HEADERS = [(b":status", b"200")]


# -- building blocks ------------------------------------------------------------------------------


def start(peer: RawH2Peer, settings: dict[int, int] | None = None) -> int:
    """The normal beginning: preface, SETTINGS, both requests (the hostile one and the
    bystander) on the wire; the hostile request's stream id."""
    return peer.start(settings)


def hpack_int(value: int, prefix_bits: int, first_byte_flags: int = 0) -> bytes:
    """An HPACK integer with ``first_byte_flags`` or-ed into its first byte."""
    encoded = bytearray(encode_integer(value, prefix_bits))
    encoded[0] |= first_byte_flags
    return bytes(encoded)


def literal(name: bytes, value: bytes) -> bytes:
    """A header field as an HPACK literal without indexing, new name, no Huffman: it does
    not touch either side's dynamic table, so it can be built in advance."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


#: ``:status: 200`` as an indexed field of the static table (index 8).
STATUS_200 = b"\x88"


def header_block_frames(stream_id: int, block: bytes, frame_size: int = MiB) -> list[bytes]:
    """``block`` as HEADERS + CONTINUATION frames of at most ``frame_size`` bytes."""
    pieces = [block[i : i + frame_size] for i in range(0, len(block), frame_size)]
    frames = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        kind = HEADERS if index == 0 else CONTINUATION
        frames.append(frame_bytes(kind, 0x4 if last else 0, stream_id, piece))
    return frames


def data(stream_id: int, payload: bytes, *, end: bool = False) -> bytes:
    """A DATA frame."""
    return frame_bytes(DATA, 0x1 if end else 0, stream_id, payload)


# Floods and large blocks are built once, at import, so that building them is not measured
# as the client's memory (the scripted server runs in the test's process).
PING_FLOOD = frame_bytes(PING, 0, 0, b"floodpng") * FLOOD
SETTINGS_FLOOD = frame_bytes(SETTINGS, 0, 0) * FLOOD
EMPTY_DATA_FLOOD = frame_bytes(DATA, 0, 1, b"") * FLOOD
RST_FLOOD = frame_bytes(RST_STREAM, 0, 1, struct.pack(">I", Codes.CANCEL)) * FLOOD
CONTINUATION_FLOOD = frame_bytes(CONTINUATION, 0, 1, b"") * FLOOD
#: A continuation frame of the largest size hyper accepts, sent over and over.
BIG_CONTINUATION = frame_bytes(CONTINUATION, 0, 1, b"\x00" * MiB)
#: One 4 MiB header value, as HEADERS + 3 CONTINUATION frames of 1 MiB.
HUGE_VALUE_BLOCK = header_block_frames(1, STATUS_200 + literal(b"x-big", b"v" * (4 * MiB)))
#: 80 headers of 1 KiB: 80 KiB of header list, over the 64 KiB hyper advertises.
LONG_LIST_BLOCK = header_block_frames(
    1, STATUS_200 + b"".join(literal(b"x-h%d" % i, b"v" * KiB) for i in range(80))
)


#: The diagnosis of the hyper bug two scenarios show.


# -- the table ------------------------------------------------------------------------------------

Level = Literal["stream", "connection", "ignored"]


@dataclass(frozen=True)
class Case:
    """
    One hostile scenario.

    :ivar script: plays the first connection (the bystander and later requests are answered
        by :meth:`RawH2Peer.serve_rest` once it returns).
    :ivar expect: the exception the client must raise, or None when it must succeed.
    :ivar level: ``"stream"``: only the hostile stream fails; ``"connection"``: the whole
        connection fails and is closed; ``"ignored"``: nothing fails.
    :ivar goaway: the error code of the GOAWAY hyper must send (connection-level faults).
    :ivar sends_goaway: whether hyper sends GOAWAY at all after a ProtocolError (RFC 9113
        section 3.4 lets a client omit it after an invalid server preface).
    :ivar body: what the client action must return when nothing fails (None: ``check``
        looks at the result instead).
    :ivar client: replaces the default client action (``get_response(hostile).read()``).
    :ivar after_error: called on the connection before the after-state is checked.
    :ivar bystander_fetched: ``client`` already called ``get_response()`` for the bystander.
    :ivar bystander_resent: the connection error leaves the bystander unprocessed (above a
        GOAWAY's last stream id), so hyper sends it again on a new connection.
    :ivar xfail: a hyper bug this case shows (the test is a strict xfail).
    """

    script: Callable[[RawH2Peer], None]
    expect: type[HyperError] | None
    level: Level
    goaway: int | None = None
    sends_goaway: bool = True
    bystander: bool = True
    method: str = "GET"
    body: bytes | None = b"hostile"
    seconds: float = FAST
    memory: int = SMALL
    read_timeout: float = 5.0
    connections: int | None = None
    conn_kwargs: dict[str, Any] = field(default_factory=dict)
    client: Callable[[HTTP20Connection, int], Any] | None = None
    after_error: Callable[[HTTP20Connection], None] | None = None
    check: Callable[[Measured[Any], RawH2Peer], None] | None = None
    bystander_fetched: bool = False
    bystander_resent: bool = False
    xfail: str | None = None


CASES: dict[str, Case] = {}


def case(name: str, **kwargs: Any) -> Callable[[Callable[[RawH2Peer], None]], Any]:
    """Register the decorated script as scenario ``name``."""

    def register(script: Callable[[RawH2Peer], None]) -> Callable[[RawH2Peer], None]:
        assert name not in CASES, name
        CASES[name] = Case(script, **kwargs)
        return script

    return register


def error_code(code: int) -> Callable[[Measured[Any], RawH2Peer], None]:
    """A check: the exception carries HTTP/2 error code ``code``."""

    def check(outcome: Measured[Any], peer: RawH2Peer) -> None:
        assert getattr(outcome.error, "error_code", None) == code, repr(outcome.error)

    return check


def _shows_first_bytes(outcome: Measured[Any]) -> None:
    # Documented: "the error's message shows the first bytes it sent".
    assert "HTTP/1.1 400" in str(outcome.error), str(outcome.error)


# -- not HTTP/2, preface, frame headers -----------------------------------------------------------


@case(
    "not-http2-at-all",
    expect=ProtocolError,
    level="connection",
    bystander=False,
    sends_goaway=False,
    check=lambda outcome, peer: _shows_first_bytes(outcome),
)
def _(peer: RawH2Peer) -> None:
    peer.auto_ack = False  # not even a SETTINGS ACK: the first frame is the point
    peer.read_preface()
    peer.next_request()  # answer after the request went out, or hyper quietly reconnects
    peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@case(
    "garbage-preface",
    expect=ProtocolError,
    level="connection",
    bystander=False,
    sends_goaway=False,
)
def _(peer: RawH2Peer) -> None:
    peer.auto_ack = False  # not even a SETTINGS ACK: the first frame is the point
    peer.read_preface()
    peer.next_request()
    peer.send(bytes(range(3, 256)) * 4)


@case(
    "preface-not-settings",
    expect=ProtocolError,
    level="connection",
    bystander=False,
    sends_goaway=False,
)
def _(peer: RawH2Peer) -> None:
    peer.auto_ack = False  # not even a SETTINGS ACK: the first frame is the point
    peer.read_preface()
    peer.next_request()
    # A valid frame, but the server's preface must be SETTINGS.
    peer.send(frame_bytes(PING, 0, 0, b"12345678"))


@case(
    "settings-frame-bad-length",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.FRAME_SIZE_ERROR,
)
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(frame_bytes(SETTINGS, 0, 0, b"\x00" * 5))  # not a multiple of 6


@case("ping-frame-bad-length", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(frame_bytes(PING, 0, 0, b"1234567"))


@case("settings-on-a-stream", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(frame_bytes(SETTINGS, 0, 1))


@case("window-update-bad-length", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(frame_bytes(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))


@case(
    "frame-header-announcing-16-mib",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.FRAME_SIZE_ERROR,
    check=error_code(Codes.FRAME_SIZE_ERROR),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    # Only the 9-byte header: hyper must refuse it at once, not wait for 16 MiB.
    peer.send((16 * MiB - 1).to_bytes(3, "big") + bytes([DATA, 0]) + stream_id.to_bytes(4, "big"))


@case(
    "frame-over-max-frame-size",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.FRAME_SIZE_ERROR,
    memory=LARGE,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS))
    peer.send(data(stream_id, b"x" * (MiB + 1)))


@case("unknown-frame-types-ignored", expect=None, level="ignored")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    unknown = [
        frame_bytes(0x20 + i, 0xFF, sid, b"whatever" * i) for i, sid in enumerate((0, 1, 99, 2))
    ]
    peer.send(*unknown[:2], peer.headers_frame(stream_id, OK_HEADERS), *unknown[2:])
    peer.send(data(stream_id, b"host"), frame_bytes(0xFA, 0, stream_id, b"?"))
    peer.send(data(stream_id, b"ile", end=True))


@case("unknown-frame-inside-header-block", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS, end_headers=False))
    peer.send(frame_bytes(0xFA, 0, stream_id, b"?"))  # RFC 9113 6.10: only CONTINUATION
    peer.send(frame_bytes(CONTINUATION, 0x4, stream_id, b""))


@case("continuation-on-another-stream", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS, end_headers=False))
    peer.send(frame_bytes(CONTINUATION, 0x4, stream_id + 2, b""))


# -- HPACK ----------------------------------------------------------------------------------------


@case("hpack-invalid-index", expect=HPACKDecodingError, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(frame_bytes(HEADERS, 0x4, stream_id, STATUS_200 + b"\xff\xff\xff\x7f"))


@case("hpack-invalid-huffman", expect=HPACKDecodingError, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    # A literal whose name is "Huffman-coded" as 32 one bits: that holds the EOS symbol.
    block = STATUS_200 + b"\x00" + hpack_int(4, 7, 0x80) + b"\xff" * 4 + b"\x01v"
    peer.send(frame_bytes(HEADERS, 0x4, stream_id, block))


@case("hpack-table-size-update-above-limit", expect=HPACKDecodingError, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    # hyper keeps the default 4096-byte table; ask for 1 MiB.
    peer.send(frame_bytes(HEADERS, 0x4, stream_id, hpack_int(MiB, 5, 0x20) + STATUS_200))


@case("header-list-over-64-kib", expect=HPACKDecodingError, level="connection", memory=LARGE)
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(*LONG_LIST_BLOCK)


@case(
    "single-4-mib-header-value",
    expect=HPACKDecodingError,
    level="connection",
    memory=LARGE,
)
def _(peer: RawH2Peer) -> None:
    start(peer)
    with _client_gone():
        peer.flood(*HUGE_VALUE_BLOCK)


# -- floods ---------------------------------------------------------------------------------------


class _client_gone:
    """Suppress the client closing the connection in the middle of a flood: it is allowed
    to give up (with a documented error) rather than read everything."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *args: object) -> bool:
        return exc_type is not None and issubclass(exc_type, (PeerGone, ConnectionResetError))


@case(
    "continuation-flood",
    expect=ProtocolError,
    level="connection",
    check=error_code(Codes.PROTOCOL_ERROR),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS, end_headers=False))
    with _client_gone():
        peer.flood(CONTINUATION_FLOOD)


def _big_continuation_flood(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS, end_headers=False))
    with _client_gone():
        peer.flood(*[BIG_CONTINUATION] * 70)


def _ping_flood(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.flood(PING_FLOOD)
    assert peer.sync()
    peer.respond(stream_id, b"hostile")


def _ping_flood_answered(outcome: Measured[Any], peer: RawH2Peer) -> None:
    assert peer.ping_ack_count == FLOOD + 1  # every PING, and the sync PING after them


case(
    "ping-flood",
    expect=None,
    level="ignored",
    seconds=FLOOD_SECONDS,
    check=_ping_flood_answered,
)(_ping_flood)


@case(
    "settings-flood",
    expect=None,
    level="ignored",
    seconds=FLOOD_SECONDS,
    check=lambda outcome, peer: _at_least(peer.settings_ack_count, FLOOD + 1),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.flood(SETTINGS_FLOOD)
    assert peer.sync()
    peer.respond(stream_id, b"hostile")


def _at_least(value: int, bound: int) -> None:
    assert value >= bound, (value, bound)


@case("empty-data-flood", expect=None, level="ignored", seconds=FLOOD_SECONDS)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    assert stream_id == 1  # the flood was built for stream 1
    peer.send(peer.headers_frame(stream_id, OK_HEADERS))
    peer.flood(EMPTY_DATA_FLOOD)
    peer.send(data(stream_id, b"hostile", end=True))


def _no_resets_sent(peer: RawH2Peer) -> None:
    # Resets for a closed stream need no answer: a reply to each would amplify the flood.
    assert peer.counts[RST_STREAM] == 0, peer.counts


def _rst_flood_client(conn: HTTP20Connection, hostile: int) -> bytes:
    # Stream 1 is complete and read before the flood of resets for it arrives.
    assert conn.get_response(hostile).read() == b"first"
    return bytes(conn.get_response(conn.request("GET", "/second")).read())


@case(
    "rst-stream-flood-on-a-closed-stream",
    expect=None,
    level="ignored",
    bystander=False,
    seconds=FLOOD_SECONDS,
    body=b"after flood",
    client=_rst_flood_client,
    check=lambda outcome, peer: _no_resets_sent(peer),
)
def _(peer: RawH2Peer) -> None:
    first = start(peer)
    assert first == 1  # the flood was built for stream 1
    peer.respond(first, b"first")
    second = peer.next_request()
    peer.flood(RST_FLOOD)
    assert peer.sync()
    peer.respond(second, b"after flood")


# -- resets ---------------------------------------------------------------------------------------


@case(
    "rst-stream-before-headers",
    expect=StreamResetError,
    level="stream",
    check=error_code(Codes.INTERNAL_ERROR),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.rst(stream_id, Codes.INTERNAL_ERROR)


@case(
    "rst-stream-mid-body",
    expect=StreamResetError,
    level="stream",
    check=error_code(Codes.INTERNAL_ERROR),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS), data(stream_id, b"partial"))
    peer.rst(stream_id, Codes.INTERNAL_ERROR)


@case("refused-stream-is-sent-again", expect=None, level="ignored")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    # REFUSED_STREAM: not processed (RFC 9113 8.7), so hyper sends the GET again, on the
    # same connection, and serve_rest answers it.
    peer.rst(stream_id, Codes.REFUSED_STREAM)


# -- flow control and stream states ---------------------------------------------------------------


@case(
    "window-update-overflow-connection",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.FLOW_CONTROL_ERROR,
)
def _(peer: RawH2Peer) -> None:
    start(peer)
    update = WindowUpdateFrame(0, window_increment=2**31 - 1)
    peer.send(update, update)


@case(
    "window-update-overflow-stream",
    expect=StreamResetError,
    level="stream",
    check=error_code(Codes.FLOW_CONTROL_ERROR),
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    update = WindowUpdateFrame(stream_id, window_increment=2**31 - 1)
    peer.send(update, update)


@case("window-update-zero-increment", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(frame_bytes(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"))


def _unread_then_bystander(conn: HTTP20Connection, hostile: int) -> Any:
    # Take the response without reading its body, so hyper reopens no window; the
    # bystander's response comes after the excess DATA and makes hyper read it.
    response = conn.get_response(hostile)
    return conn.get_response(response.stream_id + 2).read()


@case(
    "data-beyond-the-window",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.FLOW_CONTROL_ERROR,
    memory=LARGE,
    client=_unread_then_bystander,
    bystander_fetched=True,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.next_request()  # the bystander
    peer.send(peer.headers_frame(stream_id, OK_HEADERS))
    # The stream window hyper grants is 4 MiB: the fifth MiB is beyond it.
    with _client_gone():
        peer.flood(*[data(stream_id, b"w" * MiB)] * 5)


@case("data-on-an-idle-stream", expect=ProtocolError, level="connection")
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(data(101, b"never opened", end=True))


@case(
    "data-after-end-stream",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.STREAM_CLOSED,
    client=lambda conn, hostile: _read_then_bystander(conn, hostile),
    bystander_fetched=True,
)
def _(peer: RawH2Peer) -> None:
    # RFC 9113 section 5.1: a frame after END_STREAM is a connection error STREAM_CLOSED.
    stream_id = start(peer)
    peer.respond(stream_id, b"hostile")
    assert peer.wait_for(lambda: b"readdone" in peer.pings)
    peer.send(data(stream_id, b"after the end"))


@case("data-on-a-reset-stream", expect=None, level="ignored", client=lambda c, h: _reset(c, h))
def _(peer: RawH2Peer) -> None:
    # RFC 9113 section 5.1: frames in flight on a stream the client reset are ignored.
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS))
    assert peer.wait_for(lambda: stream_id in peer.rst_codes)
    peer.send(data(stream_id, b"in flight"), data(stream_id, b"in flight", end=True))


@case(
    "headers-after-end-stream",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.STREAM_CLOSED,
    client=lambda conn, hostile: _read_then_bystander(conn, hostile),
    bystander_fetched=True,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.respond(stream_id, b"hostile")
    assert peer.wait_for(lambda: b"readdone" in peer.pings)
    peer.send(peer.headers_frame(stream_id, [(b":status", b"500")], end_stream=True))


def _reset(conn: HTTP20Connection, hostile: int) -> bytes:
    """Take the response's headers and close it: the client resets the stream."""
    conn.get_response(hostile).close()
    return b"hostile"


def _read_then_bystander(conn: HTTP20Connection, hostile: int) -> Any:
    """Read the hostile response whole, tell the server (PING), then wait for the
    bystander: what the server sends next arrives while the bystander is awaited."""
    assert conn.get_response(hostile).read() == b"hostile"
    conn.ping(b"readdone")
    return conn.get_response(hostile + 2).read()


# -- header semantics -----------------------------------------------------------------------------


@case("missing-status", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [(b"content-type", b"text/plain")], end_stream=True))


@case("invalid-status", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [(b":status", b"abc")], end_stream=True))


@case("pseudo-header-in-trailers", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS), data(stream_id, b"body"))
    peer.send(peer.headers_frame(stream_id, [(b":status", b"200")], end_stream=True))


@case("uppercase-header-name", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [*OK_HEADERS, (b"X-Upper", b"1")], end_stream=True))


@case("connection-specific-header", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    headers = [*OK_HEADERS, (b"connection", b"keep-alive")]
    peer.send(peer.headers_frame(stream_id, headers, end_stream=True))


@case("transfer-encoding-header", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    headers = [*OK_HEADERS, (b"transfer-encoding", b"chunked")]
    peer.send(peer.headers_frame(stream_id, headers, end_stream=True))


# RFC 9113 section 8.1.1: a malformed response is a stream error (PROTOCOL_ERROR).
@case("content-length-longer-than-body", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [*OK_HEADERS, (b"content-length", b"100")]))
    peer.send(data(stream_id, b"short", end=True))


@case("content-length-shorter-than-body", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [*OK_HEADERS, (b"content-length", b"3")]))
    peer.send(data(stream_id, b"much longer", end=True))


def _final_status(outcome: Measured[Any], peer: RawH2Peer) -> None:
    response, body = outcome.result
    assert response.status == 200
    assert response.headers[b"x-final"] == [b"yes"]
    assert b"link" not in response.headers  # the 103's fields stay in the 103
    assert body == b"hostile"


def _keep_response(conn: HTTP20Connection, hostile: int) -> tuple[HTTP20Response, bytes]:
    response = conn.get_response(hostile)
    return response, response.read()


@case(
    "informational-1xx-then-final",
    expect=None,
    level="ignored",
    body=None,
    client=_keep_response,
    check=_final_status,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [(b":status", b"100")]))
    peer.send(peer.headers_frame(stream_id, [(b":status", b"103"), (b"link", b"</a>")]))
    peer.send(peer.headers_frame(stream_id, [*OK_HEADERS, (b"x-final", b"yes")]))
    peer.send(data(stream_id, b"hostile", end=True))


# RFC 9113 section 8.1: an informational response ending the stream is malformed.
@case("informational-1xx-ending-the-stream", expect=ProtocolError, level="stream")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [(b":status", b"103")], end_stream=True))


# -- server push ----------------------------------------------------------------------------------


def _promise(peer: RawH2Peer, stream_id: int, promised: int, authority: bytes) -> bytes:
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", b"/pushed"),
    ]
    frame = PushPromiseFrame(stream_id, promised_stream_id=promised, data=peer.encode(headers))
    frame.flags.add("END_HEADERS")
    return frame.serialize()


def _own_authority(peer: RawH2Peer) -> bytes:
    return b"127.0.0.1:%d" % peer.sock.getsockname()[1]


def _push_reset_as_unlawful(outcome: Measured[Any], peer: RawH2Peer) -> None:
    # RFC 9113 8.4: a push the server is not authoritative for is a stream error of type
    # PROTOCOL_ERROR.
    assert peer.wait_state(lambda: 2 in peer.rst_codes, timeout=FAST)
    assert peer.rst_codes[2] == Codes.PROTOCOL_ERROR


@case(
    "push-promise-when-push-disabled",
    expect=ProtocolError,
    level="connection",
    goaway=Codes.PROTOCOL_ERROR,
)
def _(peer: RawH2Peer) -> None:
    # RFC 9113 section 6.6: once the server acknowledged SETTINGS_ENABLE_PUSH = 0 (start()
    # acknowledges), a PUSH_PROMISE is a connection error of type PROTOCOL_ERROR.
    stream_id = start(peer)
    peer.send(_promise(peer, stream_id, 2, _own_authority(peer)))


@case(
    "push-promise-cross-origin",
    expect=None,
    level="ignored",
    conn_kwargs={"enable_push": True},
    check=_push_reset_as_unlawful,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(_promise(peer, stream_id, 2, b"bank.example:443"))
    peer.respond(stream_id, b"hostile")


@case(
    "push-promise-odd-promised-id",
    expect=ProtocolError,
    level="connection",
    conn_kwargs={"enable_push": True},
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(_promise(peer, stream_id, 7, _own_authority(peer)))


@case(
    "push-promise-on-an-even-stream",
    expect=ProtocolError,
    level="connection",
    conn_kwargs={"enable_push": True},
)
def _(peer: RawH2Peer) -> None:
    start(peer)
    peer.send(_promise(peer, 2, 4, _own_authority(peer)))


# -- GOAWAY and closes ----------------------------------------------------------------------------


def _calm_down(outcome: Measured[Any], peer: RawH2Peer) -> None:
    error = outcome.error
    assert isinstance(error, ConnectionError)
    assert error.error_code == Codes.ENHANCE_YOUR_CALM
    assert "slow down" in str(error)
    assert not error.safe_to_retry  # a POST the server may have processed


@case(
    "goaway-with-error",
    expect=ConnectionError,
    level="connection",
    method="POST",  # a GET is idempotent: hyper would send it again on a new connection
    check=_calm_down,
    bystander_resent=True,
)
def _(peer: RawH2Peer) -> None:
    # The GOAWAY covers the request (it may have been processed): it fails; the bystander
    # above last_stream_id was not processed, whatever the error code (RFC 9113 6.8), and
    # goes out again on a new connection.
    stream_id = start(peer)
    peer.goaway(Codes.ENHANCE_YOUR_CALM, stream_id, debug=b"slow down")


@case(
    "goaway-with-error-then-more-frames",
    expect=ConnectionError,
    level="connection",
    method="POST",
    bystander_resent=True,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.goaway(Codes.INTERNAL_ERROR, stream_id)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS), data(stream_id, b"late", end=True))
    peer.send(frame_bytes(PING, 0, 0, b"12345678"), frame_bytes(0xFA, 0, 0, b"?"))


@case("graceful-goaway-then-more-frames", expect=None, level="ignored", connections=2)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.next_request()  # the bystander: above last_stream_id, so never processed
    peer.goaway(Codes.NO_ERROR, last_stream_id=stream_id)
    peer.respond(stream_id, b"hostile")
    peer.send(frame_bytes(PING, 0, 0, b"12345678"))


@case(
    "closed-mid-frame",
    expect=ConnectionClosed,
    level="connection",
    method="POST",
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    frame = peer.headers_frame(stream_id, OK_HEADERS).serialize()
    peer.send(frame[:5])
    peer.sock.shutdown(2)


@case(
    "closed-mid-headers",
    expect=ConnectionClosed,
    level="connection",
    method="POST",
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, OK_HEADERS, end_headers=False))
    peer.sock.shutdown(2)


@case("closed-mid-body", expect=ConnectionClosed, level="connection")
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    peer.send(peer.headers_frame(stream_id, [*OK_HEADERS, (b"content-length", b"100")]))
    peer.send(data(stream_id, b"only part"))
    peer.sock.shutdown(2)


# -- silence and dripping -------------------------------------------------------------------------


def _waited_the_timeout(outcome: Measured[Any], peer: RawH2Peer) -> None:
    assert outcome.elapsed >= 0.2 * 0.9, f"gave up after {outcome.elapsed:.2f}s"


@case(
    "never-answers",
    expect=ReadTimeout,
    level="stream",
    read_timeout=0.2,
    seconds=0.2 + FAST,
    check=_waited_the_timeout,
)
def _(peer: RawH2Peer) -> None:
    start(peer)  # the hostile request is never answered; the bystander is


def _drip(peer: RawH2Peer, payload: bytes, interval: float) -> None:
    """Send ``payload`` one byte at a time, ``interval`` seconds apart."""
    pause = threading.Event()  # never set: a timed wait that is the behaviour under test
    for index in range(len(payload)):
        peer.send(payload[index : index + 1])
        pause.wait(interval)


@case(
    "drips-slower-than-the-read-timeout",
    expect=ReadTimeout,
    level="stream",
    read_timeout=0.2,
    seconds=0.2 + FAST,
    after_error=lambda conn: conn.ping(b"timedout"),
    check=_waited_the_timeout,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    frame = peer.headers_frame(stream_id, OK_HEADERS).serialize()
    # A byte every half second (the read timeout is 0.2 s), until the client, having timed
    # out, says so with a PING; then the rest, so the connection can go on. No ACK may cut
    # into the dripped frame meanwhile.
    peer.auto_ack = False
    for index in range(len(frame)):
        peer.send(frame[index : index + 1])
        if peer.wait_for(lambda: b"timedout" in peer.pings, timeout=0.5):
            break
    peer.send(frame[index + 1 :], data(stream_id, b"late", end=True))
    peer.auto_ack = True


@case(
    "drips-faster-than-the-read-timeout",
    expect=None,
    level="ignored",
    read_timeout=0.5,
)
def _(peer: RawH2Peer) -> None:
    stream_id = start(peer)
    response = peer.headers_frame(stream_id, OK_HEADERS).serialize()
    _drip(peer, response + data(stream_id, b"hostile", end=True), 0.02)


# -- the runner -----------------------------------------------------------------------------------


def _handler(case_: Case, peers: list[RawH2Peer]) -> Callable[[Any], None]:
    lock = threading.Lock()

    def handle(sock: Any) -> None:
        peer = RawH2Peer(sock)
        with lock:
            peers.append(peer)
            first = len(peers) == 1
        try:
            if first:
                peer.expected_requests = 2 if case_.bystander else 1
                case_.script(peer)
            else:
                peer.handshake()
            peer.serve_rest()
        except (PeerGone, ConnectionResetError, BrokenPipeError):
            # The client hung up on a hostile connection (expected), possibly before the
            # script was done writing: a failed write is how the peer learns it then.
            if not peer.eof.is_set():
                peer.eof_at = time.monotonic()
                peer.eof.set()

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
def test_hostile_h2(scripted_raw_server: ServerFactory, name: str) -> None:
    run_case(scripted_raw_server, CASES[name])


def run_case(scripted_raw_server: ServerFactory, case_: Case) -> Measured[Any]:
    """Play ``case_`` and assert its four properties; return the client's outcome."""
    peers: list[RawH2Peer] = []
    with scripted_raw_server(_handler(case_, peers)) as server:
        conn = HTTP20Connection(
            server.host,
            server.port,
            secure=False,
            timeout=(5, case_.read_timeout),
            **case_.conn_kwargs,
        )
        with conn:
            handles: dict[str, int] = {}

            def action() -> Any:
                body = b"x" if case_.method == "POST" else None
                handles["hostile"] = conn.request(case_.method, "/hostile", body=body)
                if case_.bystander:
                    handles["bystander"] = conn.request("POST", "/bystander", body=b"b")
                if case_.client is not None:
                    return case_.client(conn, handles["hostile"])
                return conn.get_response(handles["hostile"]).read()

            outcome = measure(action)
            if case_.expect is None:
                assert outcome.error is None, repr(outcome.error)
                assert_bounds(outcome, seconds=case_.seconds, memory=case_.memory)
                if case_.body is not None:
                    assert outcome.result == case_.body
            else:
                assert_raised(outcome, case_.expect, seconds=case_.seconds, memory=case_.memory)
            if case_.check is not None:
                case_.check(outcome, peers[0])
            if case_.after_error is not None:
                case_.after_error(conn)
            _assert_after_state(case_, conn, handles, outcome, peers, server)
    return outcome


def _assert_after_state(
    case_: Case,
    conn: HTTP20Connection,
    handles: dict[str, int],
    outcome: Measured[Any],
    peers: list[RawH2Peer],
    server: ScriptedRawServer,
) -> None:
    with quickly(FAST):
        if case_.level == "connection":
            assert outcome.error is not None
            if "bystander" in handles and case_.bystander_resent:
                assert conn.get_response(handles["bystander"]).read() == b"bystander"
            elif "bystander" in handles and not case_.bystander_fetched:
                # The session's error reaches every unfinished stream on it.
                with pytest.raises(HyperError) as bystander:
                    conn.get_response(handles["bystander"])
                assert type(bystander.value) is type(outcome.error)
            # Closed cleanly: the client hung up (after its GOAWAY, when one is due) ...
            assert peers[0].eof.wait(FAST), "the client kept the failed connection open"
            if case_.goaway is not None:
                assert peers[0].goaway_codes[-1:] == [case_.goaway]
            elif isinstance(outcome.error, ProtocolError) and case_.sends_goaway:
                # "hyper has sent GOAWAY and closed the connection" (ProtocolError's doc).
                assert peers[0].goaway_codes, "hyper closed without GOAWAY"
            # ... and the next request goes out on a new connection.
            assert conn.get_response(conn.request("GET", "/after")).read() == b"after"
            assert server.connection_count == (case_.connections or 2)
        else:
            # Other streams are unaffected and the connection stays in use.
            if "bystander" in handles:
                assert conn.get_response(handles["bystander"]).read() == b"bystander"
            assert conn.get_response(conn.request("GET", "/after")).read() == b"after"
            assert server.connection_count == (case_.connections or 1)


# -- deviations found by the table ------------------------------------------------------------


@pytest.mark.parametrize("name", ["hpack-invalid-index", "hpack-invalid-huffman"])
def test_hpack_errors_are_compression_errors(
    scripted_raw_server: ServerFactory, name: str
) -> None:
    case_ = dataclasses.replace(
        CASES[name], goaway=Codes.COMPRESSION_ERROR, check=error_code(Codes.COMPRESSION_ERROR)
    )
    run_case(scripted_raw_server, case_)


def test_frame_on_a_closed_stream_is_explained(scripted_raw_server: ServerFactory) -> None:
    outcome = run_case(scripted_raw_server, CASES["headers-after-end-stream"])
    message = str(outcome.error)
    assert not re.search(r":\s*\d+$", message), message
    assert "closed" in message, message


# -- memory that a header block in pieces could take ----------------------------------------------


def test_large_continuation_frames_stay_bounded(scripted_raw_server: ServerFactory) -> None:
    """Endless CONTINUATION frames of 1 MiB each: the block's size limit bounds what hyper
    buffers to about one frame."""
    peers: list[RawH2Peer] = []
    case_ = Case(
        _big_continuation_flood, expect=ProtocolError, level="connection", bystander=False
    )
    with (
        scripted_raw_server(_handler(case_, peers)) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
    ):
        outcome = measure(lambda: conn.get_response(conn.request("GET", "/")).read())
        assert_raised(outcome, HyperError, seconds=FAST, memory=LARGE)


# -- decompression bombs --------------------------------------------------------------------------

_read_amt = read_in_pieces
_read_chunked = read_by_chunks


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("reader", [_read_amt, _read_chunked], ids=["read-amt", "read-chunked"])
def test_decompression_bomb_h2(
    scripted_raw_server: ServerFactory, encoding: str, reader: Callable[[HTTP20Response], int]
) -> None:
    """A small compressed body claiming 1 GiB: reading it in pieces stays bounded, closing
    the response cancels the stream, and the connection goes on serving."""
    payload = bomb(encoding)
    assert len(payload) < 2 * MiB
    # No END_STREAM: as far as the client knows, the other 1023 MiB are still to come.
    frames = [data(1, payload[i : i + 16 * KiB]) for i in range(0, len(payload), 16 * KiB)]

    def script(peer: RawH2Peer) -> None:
        stream_id = start(peer)
        assert stream_id == 1
        headers = [*OK_HEADERS, (b"content-encoding", encoding.encode())]
        peer.send(peer.headers_frame(stream_id, headers))
        with _client_gone():
            peer.flood(*frames)

    peers: list[RawH2Peer] = []
    case_ = Case(script, expect=None, level="stream", bystander=False)
    with (
        scripted_raw_server(_handler(case_, peers)) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/bomb"))

        def action() -> int:
            with response:  # closing it resets the stream: the rest is not wanted
                return reader(response)

        outcome = measure(action)
        assert outcome.error is None, repr(outcome.error)
        assert outcome.result == BOMB_TAKEN
        # The compressed body is at most ~1 MiB and arrives whole into the stream's
        # buffer; decoded output is produced in pieces of at most 256 KiB.
        assert_bounds(outcome, seconds=FAST * 2, memory=LARGE)
        with quickly(FAST):
            assert peers[0].wait_state(lambda: 1 in peers[0].rst_codes, timeout=FAST)
            assert peers[0].rst_codes[1] == Codes.CANCEL
            assert conn.get_response(conn.request("GET", "/after")).read() == b"after"
        assert server.connection_count == 1


# -- TLS ------------------------------------------------------------------------------------------


def _recv_until_eof(sock: Any) -> None:
    while sock.recv(65536):
        pass


def _tls_attempt(
    server: ScriptedRawServer, ca_cert_path: Path, expected: type[HyperError]
) -> HyperError:
    """Two requests on one connection to a server whose TLS fails: both raise ``expected``
    quickly, in bounded memory, and nothing hangs or escapes bare."""
    context = init_context(cert_path=str(ca_cert_path))
    with HTTP20Connection(
        "localhost", server.port, secure=True, ssl_context=context, timeout=5
    ) as conn:
        outcome = measure(lambda: conn.get_response(conn.request("GET", "/")))
        error = assert_raised(outcome, expected, seconds=FAST, memory=SMALL)
        assert isinstance(error, HyperError)
        # Nothing was left half-open: the next attempt fails the same way, just as fast.
        again = measure(lambda: conn.get_response(conn.request("GET", "/")))
        assert_raised(again, expected, seconds=FAST, memory=SMALL)
    return error


def test_tls_handshake_failure(scripted_raw_server: ServerFactory, ca_cert_path: Path) -> None:
    def handler(sock: Any) -> None:
        sock.recv(65536)  # the ClientHello
        # A fatal TLS alert record: handshake_failure (40).
        sock.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
        _recv_until_eof(sock)

    with scripted_raw_server(handler) as server:
        error = _tls_attempt(server, ca_cert_path, TLSError)
    assert not isinstance(error, CertificateError)


def test_tls_wrong_alpn(scripted_raw_server: ServerFactory, ca_cert_path: Path) -> None:
    with scripted_raw_server(_recv_until_eof, tls=True, alpn=("http/1.1",)) as server:
        error = _tls_attempt(server, ca_cert_path, HTTP20Error)
    assert "http/1.1" in str(error)
    assert not isinstance(error, SocketError)


@pytest.mark.parametrize(
    ("cert_fixture", "reason"),
    [
        ("wrong_host_cert", "mismatch"),
        ("expired_cert", "expired"),
        ("untrusted_cert", "unable to get local issuer"),
    ],
    ids=["certificate-for-another-name", "expired-certificate", "untrusted-certificate"],
)
def test_tls_bad_certificate(
    scripted_raw_server: ServerFactory,
    ca_cert_path: Path,
    request: pytest.FixtureRequest,
    cert_fixture: str,
    reason: str,
) -> None:
    cert: CertPaths = request.getfixturevalue(cert_fixture)
    with scripted_raw_server(_recv_until_eof, tls=True, cert=cert, alpn=("h2",)) as server:
        error = _tls_attempt(server, ca_cert_path, CertificateError)
    assert reason in str(error)
