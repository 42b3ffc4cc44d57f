"""Deterministic regression tests from the fuzz harnesses.

Every input here was found by a harness (shrunk by hypothesis, then trimmed by hand) and is
replayed exactly, so that what it showed stays fixed whatever the random runs find next:

* minimal HTTP/2 scripts that reach h2's stream-state errors (frames on idle or closed
  streams, CONTINUATION without HEADERS, a frame header announcing 8 MiB): each must be a
  ``ProtocolError`` raised at once;
* the same inputs for the message: h2's ``NoSuchStreamError`` and ``StreamClosedError``
  carry only a stream id, which hyper used to pass on as the whole explanation
  (``"the server broke the HTTP/2 protocol: 1678"``);
* a response written (and the connection closed) before the request arrived: hyper sees the
  EOF while checking the idle connection, sends the request on a new connection instead,
  and reports that one's failure; this is why ``ScriptedPeer`` waits for the request;
* HTTP/1.1 and upgrade heads that ended in the documented exceptions.

No crash (an undocumented exception or a hang) was found in the harnesses' CI and long runs
so far; ``docs/security.rst`` says how to run them longer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import h2.errors
import hpack
import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.exceptions import (
    ChunkedDecodeError,
    ConnectionClosed,
    HyperError,
    InvalidResponse,
)
from hyper.http20.exceptions import ProtocolError
from tests.fuzz.harness import CLIENT_TIMEOUT, ScriptedPeer, check_outcome


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame, fields as given."""
    length = len(payload)
    return struct.pack(">BHBBL", length >> 16, length & 0xFFFF, frame_type, flags, stream_id) + (
        payload
    )


SETTINGS = frame(4, 0, 0)
SETTINGS_ACK = frame(4, 1, 0)
OK_HEADERS = bytes(hpack.Encoder().encode([(b":status", b"200")]))


def run_h2(script: bytes, early: bool = False) -> tuple[BaseException | None, ScriptedPeer]:
    """GET / on an HTTP20Connection against ``script``; the property is checked."""
    peer = ScriptedPeer([script], early=early)
    with peer.installed():
        conn = HTTP20Connection("fuzz.invalid", 80, secure=False, timeout=CLIENT_TIMEOUT)

        def session() -> None:
            try:
                conn.get_response(conn.request("GET", "/")).read()
            finally:
                conn.close()

        error = check_outcome(session)
    return error, peer


def run_http11(
    cls: Callable[..., Any], scripts: list[bytes]
) -> tuple[BaseException | None, ScriptedPeer]:
    """GET / on ``cls`` against ``scripts``; the property is checked."""
    peer = ScriptedPeer(scripts)
    with peer.installed():
        conn = cls("fuzz.invalid", 80, secure=False, timeout=CLIENT_TIMEOUT)

        def session() -> None:
            try:
                conn.request("GET", "/")
                conn.get_response().read()
            finally:
                conn.close()

        error = check_outcome(session)
    return error, peer


#: (id, script): HTTP/2 inputs that must end in ProtocolError.
H2_STREAM_STATE: list[tuple[str, bytes]] = [
    # CONTINUATION on a stream that never had HEADERS (h2: NoSuchStreamError(1678)).
    ("continuation-without-headers", SETTINGS + frame(9, 0x4, 1678, b"\xdfN\xbd\xd2")),
    # WINDOW_UPDATE on a server-side stream id that is idle (NoSuchStreamError(4)).
    ("window-update-idle-stream", SETTINGS + frame(8, 0, 4, b"\x7f\xff\xff\xff") * 2),
    # DATA on an idle stream (NoSuchStreamError).
    ("data-idle-stream", SETTINGS + SETTINGS_ACK + frame(0, 0, 62009)),
]


@pytest.mark.parametrize(("name", "script"), H2_STREAM_STATE, ids=[n for n, _ in H2_STREAM_STATE])
def test_h2_stream_state_violations_are_protocol_errors(name: str, script: bytes) -> None:
    """Frames that break the stream state machine: ProtocolError (RFC 9113 section 5.1)."""
    error, _ = run_h2(script)
    assert isinstance(error, ProtocolError), repr(error)
    assert error.error_code == 1, repr(error)  # PROTOCOL_ERROR


@pytest.mark.parametrize(("name", "script"), H2_STREAM_STATE, ids=[n for n, _ in H2_STREAM_STATE])
def test_h2_stream_state_errors_say_what_happened(name: str, script: bytes) -> None:
    """The message names the stream *and* the problem, not just a number (h2's exceptions
    for these carry only the stream id, which hyper once passed on as the whole message)."""
    error, _ = run_h2(script)
    assert isinstance(error, ProtocolError)
    message = str(error)
    problems = ("closed", "never opened", "without a header block")
    assert "stream" in message and any(p in message for p in problems), message


def goaway_codes(sent: bytes) -> list[int]:
    """The error codes of the GOAWAY frames in what a client sent (preface first)."""
    view = sent[24:] if sent.startswith(b"PRI * HTTP/2.0") else sent
    codes = []
    while len(view) >= 9:
        length = int.from_bytes(view[:3], "big")
        if view[3] == 7 and len(view) >= 17:
            codes.append(int.from_bytes(view[13:17], "big"))
        view = view[9 + length :]
    return codes


def test_h2_headers_after_end_stream_end_the_connection_not_the_response() -> None:
    """HEADERS on a stream after its END_STREAM, in the same read as the response: the
    response, complete before the bad frame, is the caller's; the frame is a connection
    error (StreamClosedError in h2), so hyper says GOAWAY with STREAM_CLOSED."""
    script = SETTINGS + frame(1, 0x5, 1, OK_HEADERS) + frame(1, 0x5, 1, OK_HEADERS)
    error, peer = run_h2(script)
    assert error is None, repr(error)
    assert goaway_codes(bytes(peer.received[0]))[:1] == [h2.errors.ErrorCodes.STREAM_CLOSED]


def test_h2_frame_over_the_advertised_size_is_refused_from_its_header() -> None:
    """A frame header announcing 8 MiB (over the 1 MiB hyper advertises) is refused as soon
    as its 9 bytes arrive: the payload is never waited for."""
    header_only = struct.pack(">BHBBL", 0x80, 0, 0, 0, 1)  # DATA, length 8 MiB, no payload
    error, _ = run_h2(SETTINGS + header_only)
    assert isinstance(error, ProtocolError), repr(error)
    assert "8388608" in str(error)


def test_h2_response_before_the_request_is_not_taken_for_its_answer() -> None:
    """A server that writes a whole response and closes before the request arrives: hyper
    checks the idle connection before sending, sees the EOF, and sends the request on a new
    connection (here: immediately closed), so the stale bytes are never used as the answer."""
    script = SETTINGS + frame(1, 0x5, 1, OK_HEADERS)
    error, peer = run_h2(script, early=True)
    # Whether the check saw the EOF depends on timing; if it did, a second connection was
    # opened, and the request failed on it rather than taking the stale response.
    if len(peer.received) == 2:
        assert isinstance(error, ConnectionClosed), repr(error)
    else:
        assert error is None or isinstance(error, HyperError)


H11_CASES: list[tuple[str, bytes, type[HyperError]]] = [
    # A chunk-size line that is not hex.
    (
        "chunk-size-not-hex",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ChunkedDecodeError,
    ),
    # Two different Content-Length values.
    (
        "conflicting-lengths",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        InvalidResponse,
    ),
    # A body shorter than announced, then EOF.
    ("short-body", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", InvalidResponse),
    # A status code of four digits.
    ("four-digit-status", b"HTTP/1.1 2000 OK\r\n\r\n", InvalidResponse),
]


@pytest.mark.parametrize(("name", "script", "expected"), H11_CASES, ids=[c[0] for c in H11_CASES])
def test_http11_malformed_heads_and_bodies(
    name: str, script: bytes, expected: type[HyperError]
) -> None:
    """Responses the HTTP/1.1 harness produced: the documented exception class."""
    error, _ = run_http11(HTTP11Connection, [script])
    assert isinstance(error, expected), repr(error)


def test_upgrade_to_h2c_followed_by_garbage() -> None:
    """``101 Switching Protocols`` then bytes that are not HTTP/2: a documented HTTP/2
    error from the connection HTTPConnection switched to."""
    script = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    error, _ = run_http11(HTTPConnection, [script + b"HTTP/1.1 200 OK\r\n\r\n"])
    assert isinstance(error, ProtocolError), repr(error)


def test_upgrade_to_something_else_is_refused() -> None:
    """``101`` to a protocol hyper did not ask for (websocket) is not taken for h2c, even if
    HTTP/2 frames follow."""
    switch = (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    answer = SETTINGS + frame(1, 0x5, 1, OK_HEADERS)
    error, _ = run_http11(HTTPConnection, [switch + answer])
    assert isinstance(error, InvalidResponse), repr(error)
