"""
Frame-exact HTTP/2 scenarios against a scripted h2 server: ordering, trailers, resets,
GOAWAY, PING, settings, flow control, and servers that misbehave.

Each failure case asserts the exact hyper exception and that it came quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import DataFrame, HeadersFrame

from hyper import HTTP20Connection
from hyper.common.exceptions import ConnectionClosed, HyperError, InvalidResponse, ReadTimeout
from hyper.http20.exceptions import (
    ConnectionError,
    HPACKDecodingError,
    ProtocolError,
    StreamResetError,
)
from hyper.http20.window import DEFAULT_STREAM_WINDOW
from tests.support import introspect
from tests.support.helpers import quickly, serve
from tests.support.scripted import Reply, ServerConnection, simple_responder

ServerFactory = Callable[..., Any]

OK = [(b"content-type", b"text/plain")]


# -- ordering and framing -------------------------------------------------------------------------


def test_out_of_order_responses_are_matched_to_requests(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        paths = {}
        while len(paths) < 3:
            event = ctx.wait_for_request()
            paths[event.stream_id] = dict(event.headers)[b":path"]
        for stream_id in sorted(paths, reverse=True):
            ctx.respond(stream_id, 200, OK, body=b"answer to " + paths[stream_id])
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        ids = [conn.request("GET", f"/{name}") for name in ("a", "b", "c")]
        assert ids == [1, 3, 5]
        assert conn.get_response(ids[1]).read() == b"answer to /b"
        assert conn.get_response().read() == b"answer to /a"  # oldest outstanding
        assert conn.get_response(ids[2]).read() == b"answer to /c"


def test_trailers_after_the_body(scripted_server: ServerFactory) -> None:
    handler = simple_responder(
        {"/t": Reply(200, OK, b"body", trailers=[(b"grpc-status", b"0"), (b"x-sum", b"42")])}
    )
    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/t"))
        trailers = response.trailers  # reads ahead; the body stays readable
        assert trailers is not None
        assert trailers[b"grpc-status"] == [b"0"]
        assert trailers["x-sum"] == [b"42"]
        assert response.read() == b"body"

        plain = conn.get_response(conn.request("GET", "/t"))
        assert plain.read() == b"body"
        assert plain.trailers is not None and plain.trailers[b"x-sum"] == [b"42"]


def test_no_trailers_is_none(scripted_server: ServerFactory) -> None:
    with serve(scripted_server, simple_responder({"/": b"x"})) as (_, conn):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.trailers is None
        assert response.read() == b"x"


def test_zero_length_data_frames_pass_through_read_chunked(
    scripted_server: ServerFactory,
) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        ctx.conn.send_data(stream_id, b"")
        ctx.conn.send_data(stream_id, b"abc")
        ctx.flush()
        ctx.conn.send_data(stream_id, b"")
        ctx.conn.send_data(stream_id, b"", end_stream=True)
        ctx.flush()
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/"))
        chunks = list(response.read_chunked())
        assert b"".join(chunks) == b"abc"
        assert b"" in chunks
        assert b"abc" in chunks


def test_padded_data_is_stripped_and_credited(scripted_server: ServerFactory) -> None:
    body = bytes(range(256)) * 64

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        for start in range(0, len(body), 4096):
            ctx.conn.send_data(stream_id, body[start : start + 4096], pad_length=200)
        ctx.conn.end_stream(stream_id)
        ctx.flush()
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        assert conn.get_response(conn.request("GET", "/")).read() == body


def test_request_headers_on_the_wire(scripted_server: ServerFactory) -> None:
    handler = simple_responder({"/": b"ok"})
    with serve(scripted_server, handler) as (_, conn):
        conn.request(
            "GET",
            "/?q=1",
            headers={
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "gone",
                "Keep-Alive": "300",
                "Transfer-Encoding": "chunked",
                "Upgrade": "h2c",
                "TE": "gzip",
                "Host": "example.test:8443",
                "X-Custom": "  padded  ",
            },
        )
        conn.get_response().read()
    request = handler.requests[0]
    names = [name for name, _ in request.headers]
    assert names[:4] == [b":method", b":scheme", b":authority", b":path"]
    assert request.header(":authority") == b"example.test:8443"
    assert request.header(":scheme") == b"http"
    assert request.path == "/?q=1"
    for hop in (b"connection", b"x-hop", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"):
        assert request.header(hop) is None, hop
    assert request.header(b"host") is None
    assert request.header(b"x-custom") == b"padded"


# -- resets and GOAWAY ----------------------------------------------------------------------------


def test_rst_stream_mid_body_fails_only_that_stream(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        first = ctx.wait_for_request().stream_id
        second = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(first, [(b":status", b"200")])
        ctx.conn.send_data(first, b"partial")
        ctx.conn.reset_stream(first, h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        ctx.respond(second, 200, OK, b"fine")
        third = ctx.wait_for_request().stream_id
        ctx.respond(third, 200, OK, b"still fine")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        first = conn.request("GET", "/one")
        second = conn.request("GET", "/two")
        response = conn.get_response(first)
        with quickly(), pytest.raises(StreamResetError) as caught:
            response.read()
        assert caught.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert caught.value.stream_id == first
        assert "INTERNAL_ERROR" in str(caught.value)
        assert conn.get_response(second).read() == b"fine"
        assert conn.get_response(conn.request("GET", "/three")).read() == b"still fine"


def test_rst_stream_before_headers(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(), pytest.raises(StreamResetError) as caught:
            conn.get_response(stream_id)
        assert caught.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR


def test_refused_stream_is_sent_again(scripted_server: ServerFactory) -> None:
    """RFC 9113 8.7: REFUSED_STREAM means not processed, so hyper sends the request again."""
    seen: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        first = ctx.wait_for_request().stream_id
        seen.append(first)
        ctx.conn.reset_stream(first, h2.errors.ErrorCodes.REFUSED_STREAM)
        ctx.flush()
        again = ctx.wait_for_request().stream_id
        seen.append(again)
        ctx.respond(again, 200, OK, b"second time")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("POST", "/", body=b"data")
        assert conn.get_response(stream_id).read() == b"second time"
    assert seen == [1, 3]


def test_goaway_with_error_fails_every_stream(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        ctx.wait_for_request()
        ctx.wait_for_request()
        ctx.conn.close_connection(
            h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"slow down"
        )
        ctx.flush()
        ctx.wait_closed()

    # POSTs: a GET the server may not have answered would go out again on a new connection.
    with serve(scripted_server, handler) as (_, conn):
        first = conn.request("POST", "/a", body=b"a")
        second = conn.request("POST", "/b", body=b"b")
        with quickly(), pytest.raises(ConnectionError) as caught:
            conn.get_response(first)
        assert caught.value.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert "slow down" in str(caught.value)
        assert not caught.value.safe_to_retry
        with pytest.raises(ConnectionError):
            conn.get_response(second)


def _goaway_after_first(connections: list[ServerConnection]) -> Any:
    """A handler: the first connection answers its first request, then says GOAWAY with
    that stream as the last one processed; later connections answer every request."""

    def handler(ctx: ServerConnection) -> None:
        connections.append(ctx)
        ctx.handshake()
        if len(connections) == 1:
            first = ctx.wait_for_request().stream_id
            ctx.wait_for_request()
            ctx.goaway(0, last_stream_id=first)
            # h2 refuses to send anything after its own GOAWAY; a real server finishes the
            # streams it accepted, so reopen the state machine to do the same.
            ctx.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
            ctx.respond(first, 200, OK, b"processed")
            ctx.wait_closed()
            return
        while True:
            event = ctx.next_event(timeout=5)
            if event is None:
                return
            if isinstance(event, h2.events.StreamEnded):
                request = next(
                    e
                    for e in ctx.events
                    if isinstance(e, h2.events.RequestReceived) and e.stream_id == event.stream_id
                )
                path = dict(request.headers)[b":path"]
                ctx.respond(event.stream_id, 200, OK, b"new connection " + path)

    return handler


def test_graceful_goaway_lets_accepted_streams_finish(scripted_server: ServerFactory) -> None:
    connections: list[ServerConnection] = []
    with serve(scripted_server, _goaway_after_first(connections)) as (server, conn):
        first = conn.request("GET", "/a")
        second = conn.request("GET", "/b")
        assert conn.get_response(first).read() == b"processed"
        # The server never processed /b: hyper sends it again on a new connection, and the
        # caller's stream id still finds it.
        assert conn.get_response(second).read() == b"new connection /b"
        assert conn.get_response(conn.request("GET", "/c")).read() == b"new connection /c"
        assert server.connection_count == 2


def test_unprocessed_request_with_a_streamed_body_is_an_error(
    scripted_server: ServerFactory,
) -> None:
    connections: list[ServerConnection] = []
    with serve(scripted_server, _goaway_after_first(connections)) as (_, conn):
        first = conn.request("GET", "/a")
        second = conn.request("POST", "/upload", body=iter([b"not ", b"replayable"]))
        assert conn.get_response(first).read() == b"processed"
        with quickly(), pytest.raises(ConnectionError) as caught:
            conn.get_response(second)
        assert "did not process" in str(caught.value)


# -- PING and SETTINGS ----------------------------------------------------------------------------


def test_ping_is_sent_and_acknowledged(scripted_server: ServerFactory) -> None:
    seen: list[bytes] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        ping = ctx.wait_for(h2.events.PingReceived)
        seen.append(ping.ping_data)
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, OK, b"pong")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        conn.ping(b"12345678")
        assert conn.get_response(conn.request("GET", "/")).read() == b"pong"
        assert conn.last_ping_ack == b"12345678"
    assert seen == [b"12345678"]


def test_ping_payload_must_be_8_bytes() -> None:
    conn = HTTP20Connection("127.0.0.1", 1, secure=False)
    with pytest.raises(HyperError):
        conn.ping(b"short")


def test_server_ping_is_answered(scripted_server: ServerFactory) -> None:
    acks: list[bytes] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.ping(b"srvping!")
        ctx.flush()
        acks.append(ctx.wait_for(h2.events.PingAckReceived).ping_data)
        ctx.respond(stream_id, 200, OK, b"done")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        assert conn.get_response(conn.request("GET", "/")).read() == b"done"
    assert acks == [b"srvping!"]


def test_upload_respects_small_window_and_frame_size(scripted_server: ServerFactory) -> None:
    body = bytes(range(256)) * 1000  # 256,000 bytes
    frame_sizes: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.auto_ack = False
        ctx.handshake(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
        stream_id = ctx.wait_for_request().stream_id
        received = bytearray()
        while True:
            event = ctx.wait_for((h2.events.DataReceived, h2.events.StreamEnded))
            if isinstance(event, h2.events.StreamEnded):
                break
            frame_sizes.append(len(event.data))
            received += event.data
            # Reopen slowly: the client has to wait for every update.
            ctx.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            ctx.flush()
        ctx.respond(stream_id, 200, OK, str(len(received)).encode() + b" " + bytes(received[:4]))
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("POST", "/upload", body=body)
        assert conn.get_response(stream_id).read() == b"256000 " + body[:4]
    assert max(frame_sizes) <= 16384
    assert sum(frame_sizes) == len(body)


def test_upload_uses_large_frames_when_allowed(scripted_server: ServerFactory) -> None:
    body = b"x" * 300_000
    frame_sizes: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake(
            settings={
                h2.settings.SettingCodes.MAX_FRAME_SIZE: 65536,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            }
        )
        # h2 applies a raised frame limit only from the receive_data() call after the ACK.
        ctx.conn.max_inbound_frame_size = 65536
        ctx.conn.increment_flow_control_window(1 << 20)
        ctx.flush()
        stream_id = ctx.wait_for_request().stream_id
        while True:
            event = ctx.wait_for((h2.events.DataReceived, h2.events.StreamEnded))
            if isinstance(event, h2.events.StreamEnded):
                break
            frame_sizes.append(len(event.data))
        ctx.respond(stream_id, 200, OK, b"ok")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("POST", "/upload", body=body)
        assert conn.get_response(stream_id).read() == b"ok"
    assert sum(frame_sizes) == len(body)
    assert max(frame_sizes) > 16384  # not 1 kB or 16 kB pieces: as large as allowed


def test_unread_response_applies_back_pressure(scripted_server: ServerFactory) -> None:
    """Data the caller has not read is held to the stream window: hyper does not reopen it."""
    total = 6 * 1024 * 1024
    stalled_at: list[int] = []
    early_updates: list[h2.events.WindowUpdated] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        offset = 0
        # Send until the stream window is used up (nothing is read meanwhile).
        while (window := ctx.conn.local_flow_control_window(stream_id)) > 0:
            size = min(window, ctx.conn.max_outbound_frame_size, total - offset)
            ctx.conn.send_data(stream_id, b"z" * size)
            offset += size
            ctx.flush()
        stalled_at.append(offset)
        # The client pings once it has buffered that much; until then it must not have
        # reopened the stream window, since its caller consumed almost nothing.
        ping = ctx.wait_for(h2.events.PingReceived, timeout=10)
        before_ping = ctx.events[: ctx.events.index(ping)]
        early_updates.extend(
            e
            for e in before_ping
            if isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id
        )
        ctx.send_body(stream_id, b"z" * (total - offset), end_stream=True, timeout=10)
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/big"))
        first = response.read(1)
        stream = introspect.stream_of(response)
        introspect.read_until(conn, lambda: stream.buffered + 1 >= DEFAULT_STREAM_WINDOW)
        conn.ping(b"buffered")
        rest = response.read()
    assert first + rest == b"z" * total
    assert stalled_at == [DEFAULT_STREAM_WINDOW]
    assert early_updates == []


# -- misbehaving servers --------------------------------------------------------------------------


def test_server_closes_mid_body(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"100")])
        ctx.conn.send_data(stream_id, b"only part")
        ctx.flush()
        ctx.close()

    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/"))
        with quickly(), pytest.raises(ConnectionClosed):
            response.read()


def test_server_that_never_answers_times_out(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        ctx.wait_for_request()
        ctx.wait_closed(timeout=10)

    with serve(scripted_server, handler, timeout=(2, 0.5)) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(2.0), pytest.raises(ReadTimeout):
            conn.get_response(stream_id)


def test_invalid_hpack_is_a_connection_error(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        frame = HeadersFrame(stream_id, data=b"\xff\xff\xff\xff\xff\xff\x7f")  # bad index
        frame.flags.add("END_HEADERS")
        ctx.send_frame(frame)
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(), pytest.raises(HPACKDecodingError) as caught:
            conn.get_response(stream_id)
        assert isinstance(caught.value, ConnectionError)
        assert caught.value.__cause__ is not None


def test_missing_status_is_a_protocol_error(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_headers_frame(stream_id, [(b"content-type", b"text/plain")], end_stream=True)
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(), pytest.raises(ProtocolError):
            conn.get_response(stream_id)


@pytest.mark.parametrize("status", [b"abc", b"20", b"2000"])
def test_invalid_status_value(scripted_server: ServerFactory, status: bytes) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_headers_frame(stream_id, [(b":status", status)], end_stream=True)
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(), pytest.raises((InvalidResponse, ProtocolError)):
            conn.get_response(stream_id)


@pytest.mark.parametrize("body", [b"short", b"much too long for it"])
def test_content_length_mismatch(scripted_server: ServerFactory, body: bytes) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.send_headers_frame(stream_id, [(b":status", b"200"), (b"content-length", b"10")])
        frame = DataFrame(stream_id, data=body)
        frame.flags.add("END_STREAM")
        ctx.send_frame(frame)
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        stream_id = conn.request("GET", "/")
        with quickly(), pytest.raises(ProtocolError):
            conn.get_response(stream_id).read()


def test_not_http2_at_all(scripted_raw_server: ServerFactory) -> None:
    def handler(sock: Any) -> None:
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        sock.recv(65536)

    with scripted_raw_server(handler) as server:
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=5)
        with quickly(), pytest.raises(ProtocolError):
            conn.get_response(conn.request("GET", "/"))


# -- limits and lifecycle -------------------------------------------------------------------------


def test_max_concurrent_streams_makes_request_wait(scripted_server: ServerFactory) -> None:
    handler = simple_responder(
        {"/": lambda request: Reply(200, OK, request.path.encode())},
        default=lambda request: Reply(200, OK, request.path.encode()),
        settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2},
    )
    with serve(scripted_server, handler) as (_, conn):
        conn.get_response(conn.request("GET", "/")).read()  # settings are in effect now
        ids = [conn.request("GET", f"/{n}") for n in range(8)]
        assert [conn.get_response(i).read() for i in ids] == [f"/{n}".encode() for n in range(8)]


def test_closing_a_response_early_cancels_the_stream(scripted_server: ServerFactory) -> None:
    resets: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        ctx.conn.send_data(stream_id, b"a" * 1000)
        ctx.flush()
        resets.append(ctx.wait_for(h2.events.StreamReset).error_code)
        second = ctx.wait_for_request().stream_id
        ctx.respond(second, 200, OK, b"after")
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        with conn.get_response(conn.request("GET", "/")) as response:
            assert response.read(10) == b"a" * 10
        assert conn.get_response(conn.request("GET", "/again")).read() == b"after"
    assert resets == [h2.errors.ErrorCodes.CANCEL]


def test_close_sends_goaway(scripted_server: ServerFactory) -> None:
    goaways: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, OK, b"ok")
        goaways.append(ctx.wait_for(h2.events.ConnectionTerminated).error_code)

    with serve(scripted_server, handler) as (server, conn):
        assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        conn.close()
        server.join_handlers(timeout=5)
    assert goaways == [h2.errors.ErrorCodes.NO_ERROR]


def test_complete_response_survives_connection_close(scripted_server: ServerFactory) -> None:
    with serve(scripted_server, simple_responder({"/": b"kept"})) as (_, conn):
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        introspect.read_until(conn, lambda: introspect.stream_of(response).finished)
        conn.close()
        assert response.read() == b"kept"


def test_unfinished_response_after_close_raises(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(stream_id, [(b":status", b"200")])
        ctx.flush()
        ctx.wait_closed()

    with serve(scripted_server, handler) as (_, conn):
        response = conn.get_response(conn.request("GET", "/"))
        conn.close()
        with quickly(), pytest.raises(ConnectionClosed):
            response.read()


def test_push_promise_delivers_pushed_response(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        request = ctx.wait_for_request()
        stream_id = request.stream_id
        pushed = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(
            stream_id,
            pushed,
            [
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":authority", dict(request.headers)[b":authority"]),
                (b":path", b"/style.css"),
            ],
        )
        ctx.flush()
        ctx.respond(stream_id, 200, OK, b"<html>")
        ctx.respond(pushed, 200, [(b"content-type", b"text/css")], b"body{}")
        ctx.wait_closed()

    with serve(scripted_server, handler, enable_push=True) as (server, conn):
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        assert response.read() == b"<html>"
        pushes = list(conn.get_pushes(stream_id))
        assert [push.path for push in pushes] == [b"/style.css"]
        assert pushes[0].method == b"GET"
        assert pushes[0].authority == f"127.0.0.1:{server.port}".encode()
        pushed = pushes[0].get_response()
        assert pushed.headers[b"content-type"] == [b"text/css"]
        assert pushed.read() == b"body{}"
        assert list(conn.get_pushes(stream_id)) == []  # not idempotent
