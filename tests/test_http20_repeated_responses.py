"""
The same response header block, sent many times on one connection, comes out identical each
time; and what RFC 9113 asks of a response's header blocks, checked on blocks that repeat.

Servers answer request after request with byte-identical header blocks (indexed fields and
literals without indexing, which leave the HPACK tables alone), the way a real server's
responses look once their fields are in its dynamic table. Every response must come out as
the first did: status, fields in order, body, trailers. Around that: blocks that change the
HPACK table or resize it between repeats (RFC 7541), responses with and without content
(HEAD, 204, 304; RFC 9113 section 8.1.1), informational responses (section 8.1), malformed
blocks and invalid Content-Length (section 8.1.1: a stream error, every time), ``cookie``
fields, trailers, padding and priority, HEADERS after the end of a stream (section 5.1), and
fifty interleaved responses sharing blocks, cut in random pieces, in plaintext and over TLS.

Only outcomes are checked: what the caller sees, what the server received (resets, GOAWAY)
and how many connections were used.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyper import HTTP20Connection
from hyper.http20.errors import ErrorCodes as Codes
from hyper.http20.exceptions import HPACKDecodingError, ProtocolError
from hyper.http20.response import HTTP20Response
from tests.support.helpers import quickly
from tests.support.hostile import PADDED, PRIORITY_FLAG, RawH2Peer
from tests.support.rawframes import (
    INITIAL_WINDOW_SIZE,
    RawFactory,
    data_frame,
    flagged_headers,
    headers_frames,
    hpack_literal,
    ping_then,
    restream,
    scripted,
    send_in_pieces,
    wait_closed,
    window_update,
)

#: How many times each scenario sends its block on one connection.
REPEATS = 4

# HPACK static table entries (RFC 7541 appendix A), as one-byte indexed fields.
STATUS_200 = b"\x88"
STATUS_204 = b"\x89"
STATUS_304 = b"\x8b"
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
    """Every response came out as ``expected``."""
    for n, result in enumerate(results):
        assert result == expected, f"response {n + 1} differs"


def assert_connection_clean(peer: RawH2Peer) -> None:
    """The client reset no stream and sent no GOAWAY with an error."""
    assert not peer.rst_codes
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)


# -- plain final responses ------------------------------------------------------------------------

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
def test_repeated_final_response_comes_out_alike(
    scripted_raw_server: RawFactory, case: str
) -> None:
    """The same response four times on one connection: all alike (status, fields in order,
    body, no trailers), on one connection, with no stream reset."""
    header_block, body_frames, expected = PLAIN_CASES[case]

    def response(stream_id: int, _: int) -> bytes:
        body = body_frames(stream_id)
        return headers_frames(stream_id, header_block, end=not body) + body

    with scripted(scripted_raw_server, serve_each(response)) as (conn, peers, server), quickly(5):
        results = [fetch(conn, f"/{n}") for n in range(REPEATS)]
        assert server.connection_count == 1
    assert_all_alike(results, expected)
    assert_connection_clean(peers[0])


def test_responses_in_reverse_order_are_filed_under_their_streams(
    scripted_raw_server: RawFactory,
) -> None:
    """Two requests in flight, answered in one write in reverse order with the same block:
    the response read first by the caller is not the first to arrive, and each body is found
    under its own stream."""
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
            assert seen(conn.get_response(one)) == Seen(
                200, ((b"content-length", b"1"),), b"1", None
            )
            assert seen(conn.get_response(two)).body == b"2"


#: An upload larger than the 1000-byte window the server grants at first.
UPLOAD = bytes(range(256)) * 40


def test_response_while_the_request_body_is_still_going_out(
    scripted_raw_server: RawFactory,
) -> None:
    """The response (the same block each time) comes while the client's upload is held back
    by a 1000-byte window: the response is taken, the upload still finishes whole once the
    window opens, and the response's body, which the server ends afterwards, is complete."""
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

    with scripted(scripted_raw_server, script) as (conn, peers, _), quickly(5):
        assert fetch(conn).body == b"get"
        for _round in range(2):
            stream_id = conn.request("POST", "/upload", body=UPLOAD)
            result = seen(conn.get_response(stream_id))
            assert result == Seen(
                200, ((b"x-early", b"yes"),), b"early;" + str(len(UPLOAD)).encode(), None
            )
    assert [bytes(peers[0].requests[s].body) for s in (3, 5)] == [UPLOAD, UPLOAD]
    assert_connection_clean(peers[0])


# -- Content-Length -------------------------------------------------------------------------------

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
def test_content_length_is_enforced_on_a_repeated_response(
    scripted_raw_server: RawFactory, bad_body: bytes, separate_reads: bool
) -> None:
    """Two good responses with ``content-length: 5``, then the same block with a body that
    disagrees. RFC 9113 section 8.1.1: the response is malformed, a *stream* error of type
    PROTOCOL_ERROR: reading it raises ProtocolError, the stream alone is reset, and the next
    request (the same block again) succeeds on the same connection."""

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
        assert peer.wait_for(was_reset(peer, stream_id)), "the bad stream was not reset"
        stream_id = peer.next_request()
        peer.send(headers_frames(stream_id, LENGTH_5) + data_frame(stream_id, b"again", end=True))
        wait_closed(peer)

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        with quickly(5):
            assert fetch(conn).body == b"hello"
            assert fetch(conn).body == b"hello"
            response = conn.get_response(conn.request("GET", "/bad"))
            assert response.status == 200
            assert response.headers[b"content-length"] == [b"5"]
            with pytest.raises(ProtocolError) as caught:
                response.read()
            assert fetch(conn, "/again") == Seen(200, ((b"content-length", b"5"),), b"again", None)
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert "content-length" in str(caught.value)
        assert server.connection_count == 1
    assert peers[0].rst_codes == {5: Codes.PROTOCOL_ERROR}
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


@pytest.mark.parametrize("empty_data", [False, True], ids=["end-on-headers", "empty-data-end"])
def test_head_response_with_a_length_and_no_body(
    scripted_raw_server: RawFactory, empty_data: bool
) -> None:
    """HEAD and GET alternate with the same block (``content-length: 100``). RFC 9113 section
    8.1.1: a HEAD response has no content whatever Content-Length says, so HEAD gets an
    empty body, GET its 100 bytes, and nothing is an error."""
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

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        results = [fetch(conn, "/", method) for method in methods]
        assert server.connection_count == 1
    for method, result in zip(methods, results, strict=True):
        assert result.status == 200
        assert result.headers == ((b"content-length", b"100"),)
        assert result.body == (b"x" * 100 if method == "GET" else b"")
    assert_connection_clean(peers[0])


@pytest.mark.parametrize(
    "status", [STATUS_204, STATUS_304, status_literal(b"205")], ids=["204", "304", "205"]
)
def test_no_content_status_with_a_length_and_no_body(
    scripted_raw_server: RawFactory, status: bytes
) -> None:
    """RFC 9113 section 8.1.1: a 204 or 304 response contains no content even with a
    non-zero Content-Length; it ends on its HEADERS, and that is no error. A 205 is not such
    a status (RFC 9110 section 15.3.6 only forbids it content): its Content-Length is
    enforced like any other, and an empty response with ``content-length: 7`` is malformed."""
    header_block = block(lit(b"content-length", b"7"), status=status)
    no_content = status != status_literal(b"205")

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(REPEATS):
            stream_id = peer.next_request()
            peer.send(headers_frames(stream_id, header_block, end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        for _round in range(REPEATS):
            if no_content:
                result = fetch(conn)
                assert result.headers == ((b"content-length", b"7"),)
                assert result.body == b""
            else:
                with pytest.raises(ProtocolError) as caught:
                    fetch(conn)
                assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert fetch(conn, "/next").body == b"next"
        assert server.connection_count == 1
    if no_content:
        assert_connection_clean(peers[0])
    else:
        streams = [1 + 2 * n for n in range(REPEATS)]
        assert peers[0].rst_codes == dict.fromkeys(streams, Codes.PROTOCOL_ERROR)


def test_no_content_status_with_data_is_malformed(scripted_raw_server: RawFactory) -> None:
    """A 204 whose DATA carries content (RFC 9110 section 15.3.5: a 204 cannot contain
    content; RFC 9113 section 8.1.1): a malformed response, a stream error; the connection
    goes on."""
    header_block = block(lit(b"content-length", b"5"), status=STATUS_204)

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        stream_id = peer.next_request()
        peer.send(headers_frames(stream_id, header_block) + data_frame(stream_id, b"hello"))
        assert peer.wait_for(was_reset(peer, stream_id))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.status == 204
        with pytest.raises(ProtocolError) as caught:
            response.read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert fetch(conn, "/next").body == b"next"
        assert server.connection_count == 1
    assert peers[0].rst_codes == {1: Codes.PROTOCOL_ERROR}


# -- informational responses ----------------------------------------------------------------------

EARLY_HINTS = block(lit(b"link", b"</style.css>; rel=preload"), status=status_literal(b"103"))


@pytest.mark.parametrize("hints", [1, 2], ids=["one-103", "two-103"])
@pytest.mark.parametrize("same_write", [True, False], ids=["one-write", "two-reads"])
def test_informational_responses_before_a_repeated_final_response(
    scripted_raw_server: RawFactory, hints: int, same_write: bool
) -> None:
    """One or two 103 responses before the final one, the same blocks every time: the
    informational responses are skipped (section 8.1), the final response comes out alike
    each time."""
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

    with scripted(scripted_raw_server, script) as (conn, peers, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    assert_all_alike(results, Seen(200, ((b"content-length", b"4"),), b"done", None))
    assert_connection_clean(peers[0])


def test_informational_response_ending_the_stream_is_malformed(
    scripted_raw_server: RawFactory,
) -> None:
    """A 103 with END_STREAM, every time. RFC 9113 section 8.1: an informational response
    cannot end a stream, so the response is malformed, a stream error of type
    PROTOCOL_ERROR (section 8.1.1); the connection goes on."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(REPEATS):
            stream_id = peer.next_request()
            peer.send(headers_frames(stream_id, EARLY_HINTS, end=True))
            assert peer.wait_for(was_reset(peer, stream_id))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        for n in range(REPEATS):
            with pytest.raises(ProtocolError) as caught:
                conn.get_response(conn.request("GET", f"/hint{n}"))
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert "informational" in str(caught.value)
        assert fetch(conn, "/after").body == b"after"
        assert server.connection_count == 1
    streams = [1 + 2 * n for n in range(REPEATS)]
    assert peers[0].rst_codes == dict.fromkeys(streams, Codes.PROTOCOL_ERROR)
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


# -- malformed blocks -----------------------------------------------------------------------------

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
def test_malformed_block_is_a_stream_error_every_time(
    scripted_raw_server: RawFactory, case: str
) -> None:
    """A malformed response block (RFC 9113 sections 8.2 and 8.3), sent again and again: each
    time its stream alone fails with PROTOCOL_ERROR and is reset (section 8.1.1); a request
    answered in the same write on another stream completes, and the connection stays up."""
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
                conn.get_response(victim)
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert "malformed" in str(caught.value)
            outcomes.append(seen(conn.get_response(bystander)))
        assert server.connection_count == 1
    peer = peers[0]
    victims = [1 + 4 * n for n in range(REPEATS)]
    assert peer.rst_codes == dict.fromkeys(victims, Codes.PROTOCOL_ERROR)
    assert all(code == Codes.NO_ERROR for code in peer.goaway_codes)
    assert_all_alike(outcomes, Seen(200, ((b"content-length", b"3"),), b"yes", None))


def test_malformed_block_with_end_stream(scripted_raw_server: RawFactory) -> None:
    """The malformed block with END_STREAM: the stream fails every time with PROTOCOL_ERROR,
    the connection stays up. The malformed response is a stream error (section 8.1.1), which
    hyper answers with RST_STREAM(PROTOCOL_ERROR) although the server ended the stream
    (section 5.4.2; section 5.1 lets a peer receive RST_STREAM on a stream it just closed)."""
    bad = MALFORMED["connection-close"]

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _round in range(REPEATS):
            peer.send(headers_frames(peer.next_request(), bad, end=True))
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        for n in range(REPEATS):
            with pytest.raises(ProtocolError) as caught:
                conn.get_response(conn.request("GET", f"/bad{n}")).read()
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert "connection-specific" in str(caught.value)
        assert fetch(conn, "/after").body == b"after"
        assert server.connection_count == 1
    streams = [1 + 2 * n for n in range(REPEATS)]
    assert peers[0].rst_codes == dict.fromkeys(streams, Codes.PROTOCOL_ERROR)
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


# -- cookies --------------------------------------------------------------------------------------


def test_cookie_fields_stay_separate_every_time(scripted_raw_server: RawFactory) -> None:
    """Two ``cookie`` fields around another field: hyper does not join them (RFC 9113
    section 8.2.3 asks for that only when passing them to a non-HTTP/2 context); each stays
    a field of its own, in its place, in every response."""
    header_block = block(
        lit(b"cookie", b"a=1"), lit(b"content-length", b"2"), lit(b"cookie", b"b=2")
    )

    def response(stream_id: int, _: int) -> bytes:
        return headers_frames(stream_id, header_block) + data_frame(stream_id, b"ok", end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, peers, _), quickly(5):
        raw = [conn.get_response(conn.request("GET", "/")) for _ in range(REPEATS)]
        results = [seen(each) for each in raw]
    for each in raw:
        assert each.headers[b"cookie"] == [b"a=1", b"b=2"]
    expected_fields = ((b"cookie", b"a=1"), (b"content-length", b"2"), (b"cookie", b"b=2"))
    assert_all_alike(results, Seen(200, expected_fields, b"ok", None))
    assert_connection_clean(peers[0])


# -- invalid Content-Length -----------------------------------------------------------------------

BAD_LENGTHS: dict[str, bytes] = {
    "non-digit": block(lit(b"content-length", b"12a")),
    "plus-sign": block(lit(b"content-length", b"+5")),
    "negative": block(lit(b"content-length", b"-1")),
    "empty": block(lit(b"content-length", b"")),
    "conflicting": block(lit(b"content-length", b"5"), lit(b"content-length", b"6")),
}


@pytest.mark.parametrize("case", sorted(BAD_LENGTHS))
def test_invalid_content_length_is_a_stream_error_every_time(
    scripted_raw_server: RawFactory, case: str
) -> None:
    """The block first comes late, on a stream hyper has reset (decoded to keep HPACK in
    step, otherwise ignored: section 5.1), then as a response. An invalid or conflicting
    content-length (RFC 9110 section 8.6) makes the response malformed (RFC 9113 section
    8.1.1): a stream error of type PROTOCOL_ERROR, every time; the stream alone is reset and
    the connection goes on."""
    bad = BAD_LENGTHS[case]
    good = block(lit(b"x-start", b"1"))
    attempts = 3

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        for _attempt in range(attempts):
            cancelled = peer.next_request()
            peer.send(headers_frames(cancelled, good) + data_frame(cancelled, b"partial"))
            assert peer.wait_for(was_reset(peer, cancelled)), "hyper did not reset"
            peer.send(headers_frames(cancelled, bad))  # late, on the reset stream: ignored
            stream_id = peer.next_request()
            peer.send(headers_frames(stream_id, bad) + data_frame(stream_id, b"hello", end=True))
            assert peer.wait_for(was_reset(peer, stream_id)), "the bad stream was not reset"
        peer.serve_rest()

    with scripted(scripted_raw_server, script) as (conn, peers, server):
        for n in range(attempts):
            with quickly(5):
                first = conn.get_response(conn.request("GET", f"/cancel{n}"))
                assert first.read(3) == b"par"
                first.close()
                with pytest.raises(ProtocolError) as caught:
                    conn.get_response(conn.request("GET", f"/bad{n}"))
            assert caught.value.error_code == Codes.PROTOCOL_ERROR
            assert "content-length" in str(caught.value)
        with quickly(5):
            assert fetch(conn, "/after").body == b"after"
        assert server.connection_count == 1
    expected = {}
    for n in range(attempts):
        expected[1 + 4 * n] = Codes.CANCEL
        expected[3 + 4 * n] = Codes.PROTOCOL_ERROR
    assert peers[0].rst_codes == expected
    assert all(code == Codes.NO_ERROR for code in peers[0].goaway_codes)


# -- trailers -------------------------------------------------------------------------------------

TRAILERS = block(lit(b"x-checksum", b"abc123"), lit(b"x-status", b"complete"), status=None)


@pytest.mark.parametrize("with_data", [True, False], ids=["body", "no-body"])
def test_trailers_come_out_alike_every_time(
    scripted_raw_server: RawFactory, with_data: bool
) -> None:
    """The same response and the same trailer block, four times: the trailers are not
    taken for a response, and every response has its body and its trailers."""
    header_block = block(lit(b"trailer", b"x-checksum"))

    def response(stream_id: int, _: int) -> bytes:
        out = headers_frames(stream_id, header_block)
        if with_data:
            out += data_frame(stream_id, b"body") + data_frame(stream_id, b"!")
        return out + headers_frames(stream_id, TRAILERS, end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, peers, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    expected = Seen(
        200,
        ((b"trailer", b"x-checksum"),),
        b"body!" if with_data else b"",
        ((b"x-checksum", b"abc123"), (b"x-status", b"complete")),
    )
    assert_all_alike(results, expected)
    assert_connection_clean(peers[0])


def test_trailer_block_identical_to_a_response_block(scripted_raw_server: RawFactory) -> None:
    """A trailer block byte-identical to an earlier response block: as trailers it is
    malformed (a pseudo-header, RFC 9113 section 8.1) and fails its stream; it is not taken
    for a second response, and the connection goes on."""
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

    with scripted(scripted_raw_server, script) as (conn, peers, server), quickly(5):
        assert fetch(conn) == fetch(conn) == Seen(200, ((b"x-kind", b"same"),), b"", None)
        response = conn.get_response(conn.request("GET", "/"))
        assert response.headers[b"x-kind"] == [b"same"]
        with pytest.raises(ProtocolError, match="malformed trailers") as caught:
            response.read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert fetch(conn, "/next").body == b"next"
        assert server.connection_count == 1
    assert peers[0].rst_codes == {5: Codes.PROTOCOL_ERROR}


# -- frames after END_STREAM ---------------------------------------------------------------------


def extra_frame(stream_id: int, header_block: bytes, extra: str) -> bytes:
    """A frame with END_STREAM: HEADERS, plain or with the PRIORITY flag, or DATA."""
    if extra == "headers":
        return headers_frames(stream_id, header_block, end=True)
    if extra == "headers-priority":
        return flagged_headers(stream_id, header_block, PRIORITY_FLAG, end=True)
    return data_frame(stream_id, b"late", end=True)


@pytest.mark.parametrize("extra", ["headers", "headers-priority", "data"])
@pytest.mark.parametrize("end_on", ["headers", "data"])
@pytest.mark.parametrize("primed", [True, False], ids=["repeated", "first-seen"])
def test_frames_after_end_stream_fail_the_connection_not_the_response(
    scripted_raw_server: RawFactory, end_on: str, primed: bool, extra: str
) -> None:
    """A complete response and, in the same write, another HEADERS (plain, or with the
    PRIORITY flag) or DATA frame on its stream. The stream is closed (both sides ended it),
    so RFC 9113 section 5.1 makes the extra frame a connection error of type STREAM_CLOSED:
    GOAWAY, and the next request goes out on a new connection. The response, complete before
    the error, is still the caller's. With ``primed``, an earlier response used the same
    block."""
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
        peer.send(complete(stream_id) + extra_frame(stream_id, header_block, extra))
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


# -- padding and priority -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [PADDED, PRIORITY_FLAG, PADDED | PRIORITY_FLAG],
    ids=["padded", "priority", "padded-priority"],
)
@pytest.mark.parametrize("mixed", [False, True], ids=["always-flagged", "alternating"])
def test_padded_or_prioritised_headers_come_out_alike(
    scripted_raw_server: RawFactory, flags: int, mixed: bool
) -> None:
    """The same block in HEADERS frames with padding and/or priority fields (section 6.2),
    always or every other time: the padding and the priority fields are not part of the
    block, and every response comes out alike."""
    header_block = block(lit(b"content-length", b"3"), lit(b"x-f", b"1"))
    flagged = [True] * REPEATS if not mixed else [n % 2 == 1 for n in range(REPEATS)]

    def response(stream_id: int, n: int) -> bytes:
        if flagged[n]:
            head = flagged_headers(stream_id, header_block, flags, end=False)
        else:
            head = headers_frames(stream_id, header_block)
        return head + data_frame(stream_id, b"abc", end=True)

    with scripted(scripted_raw_server, serve_each(response)) as (conn, peers, _), quickly(5):
        results = [fetch(conn) for _ in range(REPEATS)]
    assert_all_alike(results, Seen(200, ((b"content-length", b"3"), (b"x-f", b"1")), b"abc", None))
    assert_connection_clean(peers[0])


# -- many streams, interleaved --------------------------------------------------------------------


def interleaved_wire(rng: random.Random, streams: list[int]) -> tuple[bytes, dict[int, Seen]]:
    """Responses for ``streams``: two kinds of header block used by many streams, and
    content-length blocks (one per body length); bodies in several DATA frames; the frames
    of all streams merged in a random order that keeps each stream's own order. Returns the
    wire and what each response must look like."""
    shared = [block(lit(b"x-kind", b"a")), block(lit(b"x-kind", b"b"), status=STATUS_404)]
    shared_seen = [(200, ((b"x-kind", b"a"),)), (404, ((b"x-kind", b"b"),))]
    per_stream: dict[int, list[bytes]] = {}
    expected: dict[int, Seen] = {}
    for stream_id in streams:
        body = bytes([stream_id % 251]) * rng.choice([0, 1, 10, rng.randrange(900)])
        kind = rng.randrange(3)
        if kind == 2:
            length = str(len(body)).encode()
            header_block = block(lit(b"content-length", length))
            status, fields = 200, ((b"content-length", length),)
        else:
            header_block = shared[kind]
            status, fields = shared_seen[kind]
        ends_on_headers = not body and kind == 0
        frames = [headers_frames(stream_id, header_block, end=ends_on_headers)]
        pieces = rng.randrange(1, 4)
        size = max(-(-len(body) // pieces), 1)
        frames += [data_frame(stream_id, body[i : i + size]) for i in range(0, len(body), size)]
        if not ends_on_headers:
            frames.append(data_frame(stream_id, b"", end=True))
        per_stream[stream_id] = frames
        expected[stream_id] = Seen(status, fields, body, None)
    wire = bytearray()
    started: set[int] = set()
    after_data = 0  # HEADERS frames with another stream's DATA before them
    data_sent = False
    while per_stream:
        stream_id = rng.choice(sorted(per_stream))
        frames = per_stream[stream_id]
        if stream_id not in started:  # its HEADERS
            started.add(stream_id)
            after_data += data_sent
        else:
            data_sent = True
        wire += frames.pop(0)
        if not frames:
            del per_stream[stream_id]
    assert after_data > len(streams) // 2  # many HEADERS come after other streams' DATA
    return bytes(wire), expected


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_fifty_interleaved_responses_in_random_pieces(
    scripted_raw_server: RawFactory, ca_cert_path: Path, seed: int, tls: bool
) -> None:
    """Fifty responses sharing a few header blocks, their frames interleaved and written in
    random pieces, read in a random order: each has its own status, fields and body."""
    rng = random.Random(seed)
    count = 50
    streams = [1 + 2 * n for n in range(count)]
    wire, expected = interleaved_wire(rng, streams)
    assert sum(len(each.body) for each in expected.values()) < 60_000  # within the windows

    def script(peer: RawH2Peer, _: int) -> None:
        peer.expected_requests = count
        peer.start()
        send_in_pieces(peer, wire, lambda: rng.choice([1, 5, 9, 10, 40, 200, 1500, 8000]))
        wait_closed(peer)

    tls_ca_path = ca_cert_path if tls else None
    with (
        scripted(scripted_raw_server, script, tls_ca_path=tls_ca_path) as (conn, peers, server),
        quickly(20),
    ):
        ids = [conn.request("GET", f"/{n}") for n in range(count)]
        assert ids == streams
        got = {}
        for stream_id in random.Random(seed + 100).sample(ids, count):
            got[stream_id] = seen(conn.get_response(stream_id))
        assert server.connection_count == 1
    assert got == expected
    assert_connection_clean(peers[0])


# -- a HEADERS frame split across reads -----------------------------------------------------------


def test_repeated_headers_split_across_two_reads(scripted_raw_server: RawFactory) -> None:
    """The response's HEADERS split inside its frame header (every offset) and inside its
    block, the same block each time: the response comes out alike every time."""
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
    with scripted(scripted_raw_server, script) as (conn, peers, _), quickly(10):
        assert fetch(conn) == expected
        for cut in cuts:
            assert fetch(conn, f"/{cut}") == expected, f"split at {cut}"
    assert_connection_clean(peers[0])


# -- blocks that change the HPACK table -----------------------------------------------------------


def test_same_bytes_after_table_changes_mean_new_headers(scripted_raw_server: RawFactory) -> None:
    """Each round adds a new ``date`` value to the dynamic table (incremental indexing),
    then refers to it twice with the same two bytes (``:status 200``, index 62): the same
    bytes mean a different date in every round (RFC 7541 section 2.3.3), and every response
    carries the date of its round."""
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

    with scripted(scripted_raw_server, script) as (conn, peers, _), quickly(5):
        for n in range(rounds):
            for _three in range(3):
                assert fetch(conn) == Seen(200, ((b"date", f"d{n}".encode()),), b"", None)
    assert set(referenced) == {b"\x88\xbe"}  # the scenario: the same bytes every time
    assert_connection_clean(peers[0])


def test_table_emptied_by_a_size_update_makes_old_references_invalid(
    scripted_raw_server: RawFactory,
) -> None:
    """A block that refers to a dynamic entry, repeated; then a block whose table size
    updates (to 0, then back to 4096; RFC 7541 section 6.3) empty the table; then the same
    reference again: it refers to nothing now, which is a connection error of type
    COMPRESSION_ERROR (RFC 9113 section 4.3), not the old header list."""

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
            assert fetch(conn) == Seen(204, (), b"", None)
            with pytest.raises(HPACKDecodingError) as caught:
                fetch(conn)
        assert caught.value.error_code == Codes.COMPRESSION_ERROR
        assert peers[0].eof.wait(5)
        assert peers[0].goaway_codes[-1:] == [Codes.COMPRESSION_ERROR]
