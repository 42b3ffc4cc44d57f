"""
The short path for response HEADERS (``Session._receive_short_frames_locked``,
``_response_headers_locked``, ``_response_facts``, ``CachingDecoder.cached``) against
scripted HTTP/2 servers.

A HEADERS frame carrying a final response's whole header block, without padding or
priority, on a stream waiting for its response, skips h2 when the HPACK decoder remembers
the block for its table as it is: the first response with a given block goes through h2
(which decodes it, and the decoder remembers it), the byte-identical blocks after it do
not. Every test here sends the same block several times on one connection and checks that
the later responses come out exactly as the first did, and (where the short path applies)
that it was taken, by counting the HEADERS frames h2 itself received
(:func:`h2_headers`). Where it must not apply (informational responses, malformed blocks,
``cookie`` fields, bad Content-Length, trailers, padding, priority, a block that changes
the HPACK table), the frame must still reach h2 and end as it did before.

Servers are :class:`~tests.support.hostile.RawH2Peer` scripts: raw frames, with header
blocks built by hand (indexed fields and literals without indexing, which leave the HPACK
tables alone) so that the same bytes can be sent any number of times.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.connection
import h2.errors
import pytest

from hyper import HTTP20Connection
from hyper.http20.exceptions import HPACKDecodingError, ProtocolError
from hyper.http20.response import HTTP20Response
from hyper.tls import init_context
from tests.support.helpers import quickly
from tests.support.hostile import (
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PRIORITY_FLAG,
    RawH2Peer,
    frame_bytes,
)
from tests.support.scripted import ScriptedRawServer
from tests.test_http20_fast_path import (
    data_frame,
    headers_frames,
    hpack_literal,
    peer_handler,
    ping_then,
    scripted,
    send_in_pieces,
    wait_closed,
    window_update,
)

RawFactory = Callable[..., ScriptedRawServer]
Codes = h2.errors.ErrorCodes

#: How many times each scenario sends its block on one connection.
REPEATS = 4

# HPACK static table entries (RFC 7541 appendix A), as one-byte indexed fields.
STATUS_200 = b"\x88"
STATUS_204 = b"\x89"
STATUS_404 = b"\x8d"
#: ``:path /`` (static index 4): a request pseudo-header, malformed in a response.
PATH_SLASH = b"\x84"


def status_literal(status: bytes) -> bytes:
    """``:status`` (static name index 8) with any value, as a literal without indexing."""
    assert len(status) < 127
    return b"\x08" + bytes([len(status)]) + status


def block(*fields: bytes, status: bytes | None = STATUS_200) -> bytes:
    """A header block: ``status`` (an encoded field, or none) and then ``fields``."""
    return (status or b"") + b"".join(fields)


def lit(name: bytes, value: bytes) -> bytes:
    """Shorthand for a literal field without indexing (see ``hpack_literal``)."""
    return hpack_literal(name, value)


# -- watching h2 ----------------------------------------------------------------------------------


@pytest.fixture
def h2_headers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stream ids of the HEADERS frames h2 itself received on the client's side, in
    order. h2 binds its frame handlers when a connection is made, so the wrapper is in place
    for every connection the test opens afterwards."""
    calls: list[int] = []
    original = h2.connection.H2Connection._receive_headers_frame

    def counting(self: h2.connection.H2Connection, frame: Any) -> Any:
        if self.config.client_side:
            calls.append(frame.stream_id)
        return original(self, frame)

    monkeypatch.setattr(h2.connection.H2Connection, "_receive_headers_frame", counting)
    return calls


# -- what a response looked like ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """Everything the caller can see of a response."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    trailers: tuple[tuple[bytes, bytes], ...] | None


def seen(response: HTTP20Response) -> Seen:
    """Read ``response`` whole and record it."""
    body = response.read()
    trailers = response.trailers
    return Seen(
        response.status,
        tuple(response.headers.iter_raw()),
        body,
        None if trailers is None else tuple(trailers.iter_raw()),
    )


def fetch(conn: HTTP20Connection, path: str = "/", method: str = "GET") -> Seen:
    """One request, its response read whole."""
    return seen(conn.get_response(conn.request(method, path)))


Response = Callable[[int, int], bytes]


def serve_each(response: Response, count: int = REPEATS) -> Callable[[RawH2Peer, int], None]:
    """A script answering ``count`` requests one after the other, each with
    ``response(stream_id, n)`` (n counts from 0) in one write."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for n in range(count):
            stream_id = peer.next_request()
            peer.send(response(stream_id, n))
        wait_closed(peer)

    return script


def was_reset(peer: RawH2Peer, stream_id: int) -> Callable[[], bool]:
    """A condition for ``peer.wait_for``: the client has reset ``stream_id``."""
    return lambda: stream_id in peer.rst_codes


def body_received(peer: RawH2Peer, stream_id: int, size: int) -> Callable[[], bool]:
    """A condition for ``peer.wait_for``: ``size`` bytes of the request body are in."""
    return lambda: len(peer.requests[stream_id].body) >= size


def request_ended(peer: RawH2Peer, stream_id: int) -> Callable[[], bool]:
    """A condition for ``peer.wait_for``: the request on ``stream_id`` has ended."""
    return lambda: peer.requests[stream_id].ended


def assert_all_alike(results: list[Seen], expected: Seen) -> None:
    """Every response came out as ``expected`` (the first one, through h2, included)."""
    for n, result in enumerate(results):
        assert result == expected, f"response {n + 1} differs"


# -- 1. plain final responses ---------------------------------------------------------------------

PLAIN_CASES: dict[str, tuple[bytes, Callable[[int], bytes], Seen]] = {
    "200-with-length-and-body": (
        block(lit(b"content-length", b"5"), lit(b"x-server", b"scripted")),
        lambda sid: data_frame(sid, b"hel") + data_frame(sid, b"lo", end=True),
        Seen(200, ((b"content-length", b"5"), (b"x-server", b"scripted")), b"hello", None),
    ),
    "200-end-stream-on-headers": (
        block(lit(b"x-empty", b"yes")),
        lambda sid: b"",
        Seen(200, ((b"x-empty", b"yes"),), b"", None),
    ),
    "200-repeated-equal-lengths": (
        block(lit(b"content-length", b"2"), lit(b"content-length", b"2")),
        lambda sid: data_frame(sid, b"ok", end=True),
        Seen(200, ((b"content-length", b"2"), (b"content-length", b"2")), b"ok", None),
    ),
    "204": (block(status=STATUS_204), lambda sid: b"", Seen(204, (), b"", None)),
    "404-literal-status-no-length": (
        block(lit(b"content-type", b"text/plain"), status=status_literal(b"404")),
        lambda sid: data_frame(sid, b"not ") + data_frame(sid, b"found", end=True),
        Seen(404, ((b"content-type", b"text/plain"),), b"not found", None),
    ),
}


@pytest.mark.parametrize("case", sorted(PLAIN_CASES))
def test_repeated_final_response_takes_the_short_path(
    scripted_raw_server: RawFactory, h2_headers: list[int], case: str
) -> None:
    """The same response four times on one connection: the first through h2, the others
    on the short path, all alike (status, fields in order, body, no trailers)."""
    header_block, body_frames, expected = PLAIN_CASES[case]

    def response(stream_id: int, _: int) -> bytes:
        body = body_frames(stream_id)
        return headers_frames(stream_id, header_block, end=not body) + body

    with scripted(scripted_raw_server, serve_each(response)) as (conn, _, server), quickly(5):
        results = [fetch(conn, f"/{n}") for n in range(REPEATS)]
        assert server.connection_count == 1
    assert_all_alike(results, expected)
    # Only the first block went through h2; the others were remembered.
    assert h2_headers == [1]


def test_short_path_response_waits_for_the_reader(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """A response taken on the short path while the caller is busy with another stream
    (two requests in flight, answered in one write in reverse order) is filed under its
    own stream and found there later."""
    header_block = block(lit(b"content-length", b"1"))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        first = peer.next_request()
        peer.send(headers_frames(first, header_block) + data_frame(first, b"a", end=True))
        for _round in range(REPEATS):
            one, two = peer.next_request(), peer.next_request()
            out = headers_frames(two, header_block) + data_frame(two, b"2", end=True)
            out += headers_frames(one, header_block) + data_frame(one, b"1", end=True)
            peer.send(out)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(5):
        assert fetch(conn).body == b"a"
        for _round in range(REPEATS):
            one, two = conn.request("GET", "/1"), conn.request("GET", "/2")
            assert seen(conn.get_response(one)).body == b"1"
            assert seen(conn.get_response(two)).body == b"2"
    assert h2_headers == [1]


#: SETTINGS_INITIAL_WINDOW_SIZE.
INITIAL_WINDOW_SIZE = 0x4
#: An upload larger than the 1000-byte window the server grants at first.
UPLOAD = bytes(range(256)) * 40


def test_response_while_the_request_body_is_still_going_out(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """The response comes while the client's stream is still OPEN (its upload is held back
    by a 1000-byte window): the short path takes it there as well, and the stream then
    finishes both ways."""
    header_block = block(lit(b"x-early", b"yes"))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake({INITIAL_WINDOW_SIZE: 1000})
        first = peer.next_request()
        peer.send(headers_frames(first, header_block) + data_frame(first, b"get", end=True))
        for _round in range(2):
            upload = peer.next_request()
            assert peer.wait_for(body_received(peer, upload, 1000))
            assert not peer.requests[upload].ended
            peer.send(headers_frames(upload, header_block) + data_frame(upload, b"early;"))
            peer.send(window_update(0, len(UPLOAD)), window_update(upload, len(UPLOAD)))
            assert peer.wait_for(request_ended(peer, upload))
            size = str(len(peer.requests[upload].body)).encode()
            peer.send(data_frame(upload, size, end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(5):
        assert fetch(conn).body == b"get"
        for _round in range(2):
            stream_id = conn.request("POST", "/upload", body=UPLOAD)
            result = seen(conn.get_response(stream_id))
            assert result == Seen(
                200, ((b"x-early", b"yes"),), b"early;" + str(len(UPLOAD)).encode(), None
            )
    assert h2_headers == [1]


# -- 2. Content-Length on the short path ----------------------------------------------------------

LENGTH_5 = block(lit(b"content-length", b"5"))


@pytest.mark.parametrize(
    ("bad_body", "separate_reads"),
    [
        (data_frame(0, b"toolong", end=True), False),
        (data_frame(0, b"toolong"), False),
        (data_frame(0, b"abc") + data_frame(0, b"def"), True),
        (data_frame(0, b"hel", end=True), False),
        (data_frame(0, b"hel") + data_frame(0, b"", end=True), True),
    ],
    ids=["longer-end", "longer-open", "longer-across-reads", "shorter-end", "shorter-empty-end"],
)
def test_content_length_is_enforced_after_a_short_path_response(
    scripted_raw_server: RawFactory,
    h2_headers: list[int],
    bad_body: bytes,
    separate_reads: bool,
) -> None:
    """The response HEADERS take the short path (the block was seen in an earlier
    response); the body then disagrees with its Content-Length: h2 must still know the
    length, and the connection fails with PROTOCOL_ERROR."""

    def restream(frames: bytes, stream_id: int) -> bytes:
        """``frames`` (built for stream 0) moved onto ``stream_id``."""
        out = bytearray()
        view = memoryview(frames)
        while view:
            length = int.from_bytes(view[:3], "big")
            out += frame_bytes(view[3], view[4], stream_id, bytes(view[9 : 9 + length]))
            view = view[9 + length :]
        return bytes(out)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _good in range(2):
            stream_id = peer.next_request()
            hello = data_frame(stream_id, b"hello", end=True)
            peer.send(headers_frames(stream_id, LENGTH_5) + hello)
        stream_id = peer.next_request()
        head = headers_frames(stream_id, LENGTH_5)
        body = restream(bad_body, stream_id)
        if separate_reads:
            ping_then(peer, 1, head + body[:12])  # HEADERS and the first DATA frame
            peer.send(body[12:])
        else:
            peer.send(head + body)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(5):
            assert fetch(conn).body == b"hello"
            assert fetch(conn).body == b"hello"
            response = conn.get_response(conn.request("GET", "/bad"))
            assert response.status == 200
            with pytest.raises(ProtocolError) as caught:
                response.read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.PROTOCOL_ERROR]
    assert h2_headers == [1]  # responses 2 and 3 took the short path


@pytest.mark.parametrize("empty_data", [False, True], ids=["end-on-headers", "empty-data-end"])
def test_head_response_with_a_length_and_no_body(
    scripted_raw_server: RawFactory, h2_headers: list[int], empty_data: bool
) -> None:
    """HEAD and GET alternate with the same block (content-length: 100): on the short path
    the expected length is 0 for HEAD and 100 for GET, as h2 would set it."""
    header_block = block(lit(b"content-length", b"100"))
    methods = ["GET", "HEAD", "HEAD", "GET", "HEAD", "GET"]

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for method in methods:
            stream_id = peer.next_request()
            if method == "GET":
                body = data_frame(stream_id, b"x" * 100, end=True)
            elif empty_data:
                body = data_frame(stream_id, b"", end=True)
            else:
                body = b""
            peer.send(headers_frames(stream_id, header_block, end=not body) + body)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, server), quickly(5):
        results = [fetch(conn, "/", method) for method in methods]
        assert server.connection_count == 1
    for method, result in zip(methods, results, strict=True):
        assert result.status == 200
        assert result.headers == ((b"content-length", b"100"),)
        assert result.body == (b"x" * 100 if method == "GET" else b"")
    assert h2_headers == [1]


# -- 3. informational responses -------------------------------------------------------------------

EARLY_HINTS = block(lit(b"link", b"</style.css>; rel=preload"), status=status_literal(b"103"))


@pytest.mark.parametrize("hints", [1, 2], ids=["one-103", "two-103"])
@pytest.mark.parametrize("same_write", [True, False], ids=["one-write", "two-reads"])
def test_informational_responses_go_through_h2(
    scripted_raw_server: RawFactory, h2_headers: list[int], hints: int, same_write: bool
) -> None:
    final = block(lit(b"content-length", b"4"))

    def response(peer: RawH2Peer, stream_id: int, n: int) -> None:
        early = headers_frames(stream_id, EARLY_HINTS) * hints
        rest = headers_frames(stream_id, final) + data_frame(stream_id, b"done", end=True)
        if same_write:
            peer.send(early + rest)
        else:
            ping_then(peer, n + 1, early)
            peer.send(rest)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for n in range(REPEATS):
            response(peer, peer.next_request(), n)
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    assert_all_alike(results, Seen(200, ((b"content-length", b"4"),), b"done", None))
    streams = [1 + 2 * n for n in range(REPEATS)]
    # Every 103 went to h2; of the final responses, only the first.
    expected = [s for s in streams for _ in range(hints)]
    expected.insert(hints, 1)
    assert h2_headers == expected


# -- 4. malformed blocks --------------------------------------------------------------------------

MALFORMED: dict[str, bytes] = {
    "uppercase-name": block(lit(b"X-Upper", b"v")),
    "connection-close": block(lit(b"connection", b"close")),
    "value-leading-space": block(lit(b"x-value", b" padded")),
    "value-trailing-tab": block(lit(b"x-value", b"padded\t")),
    "path-in-response": block(PATH_SLASH),
    "missing-status": block(lit(b"content-type", b"text/plain"), status=None),
    "two-statuses": block(STATUS_404),
    "status-not-first": lit(b"x-a", b"b") + STATUS_200,
    "bad-status": block(status=status_literal(b"2x0")),
    "te-not-trailers": block(lit(b"te", b"gzip")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_remembered_block_is_a_stream_error_every_time(
    scripted_raw_server: RawFactory, h2_headers: list[int], case: str
) -> None:
    """A malformed response block, sent again and again (remembered after the first): each
    time its stream alone fails with PROTOCOL_ERROR and is reset; a request answered in the
    same write on another stream completes, and the connection stays up."""
    bad = MALFORMED[case]
    good = block(lit(b"content-length", b"3"))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(REPEATS):
            victim, bystander = peer.next_request(), peer.next_request()
            out = headers_frames(victim, bad)
            out += headers_frames(bystander, good) + data_frame(bystander, b"yes", end=True)
            peer.send(out)
            assert peer.wait_for(was_reset(peer, victim)), f"stream {victim} was not reset"
        wait_closed(peer)

    outcomes: list[Seen] = []
    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        for n in range(REPEATS):
            victim, bystander = conn.request("GET", f"/bad{n}"), conn.request("GET", "/ok")
            with pytest.raises(ProtocolError) as caught:
                conn.get_response(victim).read()
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert "malformed" in str(caught.value)
            outcomes.append(seen(conn.get_response(bystander)))
        assert server.connection_count == 1
    peer = peers[0]
    victims = [1 + 4 * n for n in range(REPEATS)]
    assert peer.rst_codes == dict.fromkeys(victims, Codes.PROTOCOL_ERROR)
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)
    assert_all_alike(outcomes, Seen(200, ((b"content-length", b"3"),), b"yes", None))
    # Every malformed block went to h2; the bystanders' block only the first time.
    assert h2_headers == [*victims[:1], 3, *victims[1:]]


def test_malformed_block_with_end_stream(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """The malformed block with END_STREAM: nothing is left to reset, the stream fails
    every time, the connection stays up."""
    bad = MALFORMED["connection-close"]

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(REPEATS):
            peer.send(headers_frames(peer.next_request(), bad, end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        for n in range(REPEATS):
            with pytest.raises(ProtocolError):
                conn.get_response(conn.request("GET", f"/bad{n}")).read()
        assert fetch(conn, "/after").body == b"after"
        assert server.connection_count == 1
    assert not peers[0].rst_codes
    assert len(h2_headers) == REPEATS + 1


# -- 5. cookies -----------------------------------------------------------------------------------


def test_cookie_fields_are_joined_every_time(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    header_block = block(
        lit(b"cookie", b"a=1"), lit(b"content-length", b"2"), lit(b"cookie", b"b=2")
    )

    def response(stream_id: int, _: int) -> bytes:
        return headers_frames(stream_id, header_block) + data_frame(stream_id, b"ok", end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, _, _), quickly(5):
        raw = [conn.get_response(conn.request("GET", "/")) for _ in range(REPEATS)]
        results = [seen(each) for each in raw]
    for each in raw:
        assert each.headers[b"cookie"] == [b"a=1; b=2"]
    assert_all_alike(results, results[0])
    assert dict(results[0].headers)[b"content-length"] == b"2"
    assert len(h2_headers) == REPEATS  # cookies always go through h2


# -- 6. invalid Content-Length --------------------------------------------------------------------

BAD_LENGTHS: dict[str, bytes] = {
    "non-digit": block(lit(b"content-length", b"12a")),
    "plus-sign": block(lit(b"content-length", b"+5")),
    "negative": block(lit(b"content-length", b"-1")),
    "empty": block(lit(b"content-length", b"")),
    "conflicting": block(lit(b"content-length", b"5"), lit(b"content-length", b"6")),
}


@pytest.mark.parametrize("case", sorted(BAD_LENGTHS))
def test_invalid_content_length_is_a_connection_error_every_time(
    scripted_raw_server: RawFactory, h2_headers: list[int], case: str
) -> None:
    """The block is first decoded (and so remembered) on a stream hyper has reset, where h2
    decodes it to keep HPACK in step and ignores it; then it comes as a response: never on
    the short path, a connection error with GOAWAY(PROTOCOL_ERROR). Each attempt after the
    first is on a new connection, the old one being dead."""
    bad = BAD_LENGTHS[case]
    good = block(lit(b"x-start", b"1"))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        cancelled = peer.next_request()
        peer.send(headers_frames(cancelled, good) + data_frame(cancelled, b"partial"))
        assert peer.wait_for(was_reset(peer, cancelled)), "hyper did not reset"
        peer.send(headers_frames(cancelled, bad))  # late, on the reset stream: ignored
        stream_id = peer.next_request()
        peer.send(headers_frames(stream_id, bad) + data_frame(stream_id, b"hello", end=True))
        wait_closed(peer)

    attempts = 3
    with scripted(scripted_raw_server, script) as (conn, peers, server):
        for n in range(attempts):
            with quickly(5):
                first = conn.get_response(conn.request("GET", f"/cancel{n}"))
                assert first.read(3) == b"par"
                first.close()
                with pytest.raises(ProtocolError) as caught:
                    conn.get_response(conn.request("GET", f"/bad{n}")).read()
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert peers[n].eof.wait(5)
            assert peers[n].goaway_codes[-1:] == [Codes.PROTOCOL_ERROR]
            assert peers[n].rst_codes == {1: Codes.CANCEL}
        assert server.connection_count == attempts
    # Per connection: the response on stream 1, the late block there, the bad response.
    assert h2_headers == [1, 1, 3] * attempts


# -- 7. trailers ----------------------------------------------------------------------------------

TRAILERS = block(lit(b"x-checksum", b"abc123"), lit(b"x-status", b"complete"), status=None)


@pytest.mark.parametrize("with_data", [True, False], ids=["body", "no-body"])
def test_trailers_never_take_the_short_path(
    scripted_raw_server: RawFactory, h2_headers: list[int], with_data: bool
) -> None:
    header_block = block(lit(b"trailer", b"x-checksum"))

    def response(stream_id: int, _: int) -> bytes:
        out = headers_frames(stream_id, header_block)
        if with_data:
            out += data_frame(stream_id, b"body") + data_frame(stream_id, b"!")
        return out + headers_frames(stream_id, TRAILERS, end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, _, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    expected = Seen(
        200,
        ((b"trailer", b"x-checksum"),),
        b"body!" if with_data else b"",
        ((b"x-checksum", b"abc123"), (b"x-status", b"complete")),
    )
    assert_all_alike(results, expected)
    # The first response's headers, then every trailer block, went through h2.
    streams = [1 + 2 * n for n in range(REPEATS)]
    assert h2_headers == [1, *streams]


def test_trailer_block_identical_to_a_response_block(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """A trailer block byte-identical to a remembered (short path) response block: as
    trailers it is malformed (a pseudo-header) and fails its stream; it must not be taken
    for a second response."""
    header_block = block(lit(b"x-kind", b"same"))

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(2):
            stream_id = peer.next_request()
            peer.send(headers_frames(stream_id, header_block, end=True))
        stream_id = peer.next_request()
        out = headers_frames(stream_id, header_block) + data_frame(stream_id, b"x")
        peer.send(out + headers_frames(stream_id, header_block, end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, _, server), quickly(5):
        assert fetch(conn) == fetch(conn) == Seen(200, ((b"x-kind", b"same"),), b"", None)
        response = conn.get_response(conn.request("GET", "/"))
        assert response.headers[b"x-kind"] == [b"same"]
        with pytest.raises(ProtocolError, match="malformed trailers"):
            response.read()
        assert fetch(conn, "/next").body == b"next"
        assert server.connection_count == 1
    assert h2_headers[:1] == [1]
    assert h2_headers.count(5) == 1  # the trailers; the response itself took the short path


# -- 8. HEADERS after END_STREAM ------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["plain", "priority"])
@pytest.mark.parametrize("end_on", ["headers", "data"])
@pytest.mark.parametrize("primed", [True, False], ids=["remembered", "first-seen"])
def test_headers_after_end_stream_fail_the_connection_not_the_response(
    scripted_raw_server: RawFactory,
    h2_headers: list[int],
    end_on: str,
    primed: bool,
    extra: str,
) -> None:
    """A complete response and, in the same write, another HEADERS frame on its stream: the
    response is the caller's; the extra frame is a connection error (STREAM_CLOSED), and the
    next request goes out on a new connection. With ``primed``, an earlier response made the
    block one the decoder remembers (the response takes the short path); without, the
    response goes through h2, which must not get the extra frame in the same call (its error
    would lose the response's events). The extra frame is one the short path could take
    (``plain``) or one it never takes (``priority``): either way h2 gets it in a call of
    its own, because a span of frames given to h2 ends with a frame that ends a stream."""
    header_block = block(lit(b"content-length", b"4" if end_on == "data" else b"0"))

    def complete(stream_id: int) -> bytes:
        if end_on == "headers":
            return headers_frames(stream_id, header_block, end=True)
        return headers_frames(stream_id, header_block) + data_frame(stream_id, b"body", end=True)

    def script(peer: RawH2Peer, index: int) -> None:
        peer.handshake()
        if index:
            peer.serve_rest()
            return
        if primed:
            peer.send(complete(peer.next_request()))
        stream_id = peer.next_request()
        if extra == "plain":
            bad = headers_frames(stream_id, header_block, end=True)
        else:
            bad = flagged_headers(stream_id, header_block, PRIORITY_FLAG, end=True)
        peer.send(complete(stream_id) + bad)
        wait_closed(peer)

    body = b"body" if end_on == "data" else b""
    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(5):
            if primed:
                assert fetch(conn).body == body
            response = conn.get_response(conn.request("GET", "/second"))
            assert response.status == 200
            assert response.read() == body
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.STREAM_CLOSED]
        with quickly(5):
            assert fetch(conn, "/third").body == b"third"
        assert server.connection_count == 2
    victim = 3 if primed else 1
    # The response's HEADERS went to h2 only when first seen; the extra frame always did.
    assert h2_headers[:-1] == ([1, victim] if primed else [victim, victim])


# -- 9. padding and priority ----------------------------------------------------------------------


def flagged_headers(stream_id: int, header_block: bytes, flags: int, end: bool) -> bytes:
    """One HEADERS frame with ``header_block`` and PADDED and/or PRIORITY as asked."""
    payload = header_block
    if flags & PRIORITY_FLAG:
        payload = (0).to_bytes(4, "big") + b"\x0f" + payload  # depends on 0, weight 16
    if flags & PADDED:
        payload = b"\x03" + payload + b"\0\0\0"
    flags |= END_HEADERS | (END_STREAM if end else 0)
    return frame_bytes(HEADERS, flags, stream_id, payload)


@pytest.mark.parametrize(
    "flags",
    [PADDED, PRIORITY_FLAG, PADDED | PRIORITY_FLAG],
    ids=["padded", "priority", "padded-priority"],
)
@pytest.mark.parametrize("mixed", [False, True], ids=["always-flagged", "alternating"])
def test_padding_or_priority_go_through_h2(
    scripted_raw_server: RawFactory, h2_headers: list[int], flags: int, mixed: bool
) -> None:
    header_block = block(lit(b"content-length", b"3"), lit(b"x-f", b"1"))
    flagged = [True] * REPEATS if not mixed else [n % 2 == 1 for n in range(REPEATS)]

    def response(stream_id: int, n: int) -> bytes:
        if flagged[n]:
            head = flagged_headers(stream_id, header_block, flags, end=False)
        else:
            head = headers_frames(stream_id, header_block)
        return head + data_frame(stream_id, b"abc", end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, _, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    assert_all_alike(results, Seen(200, ((b"content-length", b"3"), (b"x-f", b"1")), b"abc", None))
    streams = [1 + 2 * n for n in range(REPEATS)]
    expected = [s for n, s in enumerate(streams) if flagged[n] or n == 0]
    assert h2_headers == expected


# -- 10. many streams, interleaved ----------------------------------------------------------------


def interleaved_wire(
    rng: random.Random, streams: list[int]
) -> tuple[bytes, dict[int, bytes], list[int]]:
    """Responses for ``streams``: two kinds of header block used by many streams, and
    content-length blocks (one per body length); bodies in several DATA frames; the frames
    of all streams merged in a random order that keeps each stream's own order. Returns the
    wire, the bodies, and the streams whose HEADERS must go through h2: those whose block
    comes first on the wire (the later ones are remembered)."""
    shared = [block(lit(b"x-kind", b"a")), block(lit(b"x-kind", b"b"), status=STATUS_404)]
    per_stream: dict[int, list[bytes]] = {}
    bodies: dict[int, bytes] = {}
    blocks: dict[int, bytes] = {}
    for stream_id in streams:
        body = bytes([stream_id % 251]) * rng.choice([0, 1, 10, rng.randrange(900)])
        kind = rng.randrange(3)
        if kind == 2:
            blocks[stream_id] = block(lit(b"content-length", str(len(body)).encode()))
        else:
            blocks[stream_id] = shared[kind]
        ends_on_headers = not body and kind == 0
        frames = [headers_frames(stream_id, blocks[stream_id], end=ends_on_headers)]
        pieces = rng.randrange(1, 4)
        size = max(-(-len(body) // pieces), 1)
        frames += [data_frame(stream_id, body[i : i + size]) for i in range(0, len(body), size)]
        if not ends_on_headers:
            frames.append(data_frame(stream_id, b"", end=True))
        per_stream[stream_id] = frames
        bodies[stream_id] = body
    wire = bytearray()
    started: set[int] = set()
    seen_blocks: set[bytes] = set()
    through_h2: list[int] = []
    after_data = 0  # HEADERS frames with another stream's DATA before them
    data_sent = False
    while per_stream:
        stream_id = rng.choice(sorted(per_stream))
        frames = per_stream[stream_id]
        if stream_id not in started:  # its HEADERS
            started.add(stream_id)
            if blocks[stream_id] not in seen_blocks:
                seen_blocks.add(blocks[stream_id])
                through_h2.append(stream_id)
            after_data += data_sent
        else:
            data_sent = True
        wire += frames.pop(0)
        if not frames:
            del per_stream[stream_id]
    assert after_data > len(streams) // 2  # many HEADERS come after other streams' DATA
    return bytes(wire), bodies, through_h2


@contextlib.contextmanager
def tls_scripted(
    factory: RawFactory, script: Callable[[RawH2Peer, int], None], ca_cert_path: Path
) -> Iterator[tuple[HTTP20Connection, list[RawH2Peer], ScriptedRawServer]]:
    """``scripted`` over TLS (ALPN h2): one TLS record per write of the server."""
    handle, peers = peer_handler(script)
    with factory(handle, tls=True, alpn=["h2"]) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = HTTP20Connection(
            "localhost", server.port, secure=True, ssl_context=context, timeout=(5, 5)
        )
        with conn:
            yield conn, peers, server


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_fifty_interleaved_responses_in_random_pieces(
    scripted_raw_server: RawFactory,
    h2_headers: list[int],
    ca_cert_path: Path,
    seed: int,
    tls: bool,
) -> None:
    rng = random.Random(seed)
    count = 50
    streams = [1 + 2 * n for n in range(count)]
    wire, bodies, through_h2 = interleaved_wire(rng, streams)
    assert sum(map(len, bodies.values())) < 60_000  # within the first windows

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = count
        peer.start()
        send_in_pieces(peer, wire, lambda: rng.choice([1, 5, 9, 10, 40, 200, 1500, 8000]))
        wait_closed(peer)

    runner: Any = (
        tls_scripted(scripted_raw_server, script, ca_cert_path)
        if tls
        else scripted(scripted_raw_server, script)
    )
    with runner as (conn, _, server), quickly(20):
        ids = [conn.request("GET", f"/{n}") for n in range(count)]
        assert ids == streams
        got = {}
        for stream_id in random.Random(seed + 100).sample(ids, count):
            got[stream_id] = conn.get_response(stream_id).read()
        assert server.connection_count == 1
    assert got == bodies
    # Each distinct block went through h2 once, on the stream where it came first.
    assert h2_headers == through_h2
    assert len(through_h2) < count


# -- 11. a HEADERS frame split across reads -------------------------------------------------------


def test_remembered_headers_split_across_two_reads(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """The response's HEADERS split inside its frame header (every offset) and inside its
    block: the start is held back until the rest arrives, and the whole frame then takes
    the short path."""
    header_block = block(
        lit(b"content-length", b"6"), lit(b"x-long", b"v" * 40), lit(b"x-more", b"w")
    )
    head_length = len(headers_frames(1, header_block))
    cuts = [*range(1, 10), 10, 11, head_length // 2, head_length - 1, head_length]

    def response(stream_id: int) -> bytes:
        return headers_frames(stream_id, header_block) + data_frame(stream_id, b"sixsix", end=True)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        peer.send(response(peer.next_request()))
        for tag, cut in enumerate(cuts, 1):
            whole = response(peer.next_request())
            ping_then(peer, tag, whole[:cut])
            peer.send(whole[cut:])
        wait_closed(peer)

    expected = Seen(
        200,
        ((b"content-length", b"6"), (b"x-long", b"v" * 40), (b"x-more", b"w")),
        b"sixsix",
        None,
    )
    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(10):
        assert fetch(conn) == expected
        for cut in cuts:
            assert fetch(conn, f"/{cut}") == expected, f"split at {cut}"
    assert h2_headers == [1]


# -- 12. blocks that change the HPACK table -------------------------------------------------------


def test_table_changes_invalidate_remembered_blocks(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """Each round adds a new ``date`` value to the dynamic table (incremental indexing),
    then refers to it twice with the same two bytes (``:status 200``, index 62): the same
    bytes mean a different date in every round, and the cache must follow the table."""
    rounds = 4
    referenced: list[bytes] = []

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for n in range(rounds):
            fields = [(b":status", b"200"), (b"date", f"d{n}".encode())]
            adding = peer.encode(fields, huffman=False)
            assert adding != b"\x88\xbe"
            stream_id = peer.next_request()
            peer.send(headers_frames(stream_id, adding, end=True))
            for _again in range(2):
                again = peer.encode(fields)
                referenced.append(again)
                stream_id = peer.next_request()
                peer.send(headers_frames(stream_id, again, end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, _, _), quickly(5):
        for n in range(rounds):
            for _three in range(3):
                assert fetch(conn) == Seen(200, ((b"date", f"d{n}".encode()),), b"", None)
    assert set(referenced) == {b"\x88\xbe"}
    # Per round: the new entry and the first reference went through h2, the second did not.
    assert len(h2_headers) == 2 * rounds


def test_table_emptied_by_a_size_update_invalidates_remembered_blocks(
    scripted_raw_server: RawFactory, h2_headers: list[int]
) -> None:
    """A remembered block that refers to a dynamic entry; then a block whose table size
    update (to 0) empties the table; then the remembered bytes again: they refer to nothing
    now, which is a compression error, not the old header list."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        fields = [(b":status", b"200"), (b"date", b"today")]
        peer.send(headers_frames(peer.next_request(), peer.encode(fields), end=True))
        reference = peer.encode(fields)
        assert reference == b"\x88\xbe"
        for _again in range(2):
            peer.send(headers_frames(peer.next_request(), reference, end=True))
        # Table size 0 (evicting everything), then back to 4096, then :status 204.
        peer.send(headers_frames(peer.next_request(), b"\x20\x3f\xe1\x1f\x89", end=True))
        peer.send(headers_frames(peer.next_request(), reference, end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, _):
        with quickly(5):
            for _three in range(3):
                assert fetch(conn) == Seen(200, ((b"date", b"today"),), b"", None)
            assert fetch(conn).status == 204
            with pytest.raises(HPACKDecodingError) as caught:
                fetch(conn)
        assert caught.value.error_code == Codes.COMPRESSION_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.COMPRESSION_ERROR]
    assert h2_headers == [1, 3, 7, 9]
