"""
RFC 9113 (HTTP/2), sections 6.5.2 to 10: the client requirements the rest of the suite did not
show, one test each (see docs/conformance/rfc9113.csv).

Frame-level rules drive the sans-I/O engine with raw frames, as tests/unit/test_engine.py
does; what hyper puts on the wire (header fields, pushes, TLS) is checked against scripted
servers. Every wait on the network is bounded by the connection timeout or ``quickly``.
"""

from __future__ import annotations

import contextlib
import ssl
import struct
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import pytest
import trustme
from hyperframe.frame import PingFrame

from hyper import HTTP20Connection, tls
from hyper.common.exceptions import InvalidRequest, TLSError
from hyper.http20.engine import Engine
from hyper.http20.errors import ErrorCodes, SettingCodes
from hyper.http20.events import PushPromised
from hyper.http20.exceptions import ProtocolError
from tests.fuzz.h2frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PING,
    PUSH_PROMISE,
    SETTINGS,
    raw_frame,
)
from tests.support import engine_peer, introspect
from tests.support.engine_peer import (
    PROMISED,
    REQUEST,
    Headers,
    Server,
    frame_types,
    goaways,
    requested,
    rst_codes,
    sent_frames,
    settings,
    started,
    window_update,
)
from tests.support.helpers import quickly, serve
from tests.support.scripted import ServerConnection, simple_responder

ServerFactory = Callable[..., Any]

OK: Headers = [(b"content-type", b"text/plain")]
#: Bound for every wait on the network in this module.
WAIT = 5.0


#: Here a connection error must queue exactly one GOAWAY.
fails_connection = partial(engine_peer.fails_connection, one_goaway=True)


# -- 6.5.2 and 6.5.3: SETTINGS values --------------------------------------------------------


@pytest.mark.parametrize("value", [2, 0xFFFFFFFF], ids=["2", "2**32-1"])
def test_rfc9113_6_5_2_enable_push_other_than_0_or_1_is_a_protocol_error(value: int) -> None:
    engine, _ = started()
    fails_connection(
        engine, settings((SettingCodes.ENABLE_PUSH, value)), ErrorCodes.PROTOCOL_ERROR
    )


def test_rfc9113_6_5_2_enable_push_0_from_the_server_is_accepted() -> None:
    engine, _ = started()
    engine.receive_data(settings((SettingCodes.ENABLE_PUSH, 0)))
    assert engine.error is None
    assert frame_types(engine.data_to_send()) == ["SettingsFrame"]  # the ACK


def test_rfc9113_6_5_2_max_concurrent_streams_0_only_holds_new_streams_back() -> None:
    engine, server, stream = requested()
    engine.receive_data(settings((SettingCodes.MAX_CONCURRENT_STREAMS, 0)))
    # No error and no GOAWAY: the open stream carries on, new ones wait for room.
    assert engine.error is None
    assert frame_types(engine.data_to_send()) == ["SettingsFrame"]
    assert not engine.can_open_stream()
    engine.receive_data(server.headers(1, [(b":status", b"200")], end_stream=True))
    assert stream.finished and stream.error is None
    assert not engine.can_open_stream()  # 0 open streams, and still no room under 0
    engine.receive_data(settings((SettingCodes.MAX_CONCURRENT_STREAMS, 1)))
    assert engine.can_open_stream()


def test_rfc9113_6_5_3_setting_values_are_applied_in_their_order() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.receive_data(
        settings(
            (SettingCodes.INITIAL_WINDOW_SIZE, 100),
            (SettingCodes.MAX_FRAME_SIZE, 20000),
            (SettingCodes.INITIAL_WINDOW_SIZE, 300),
            (SettingCodes.MAX_FRAME_SIZE, 30000),
        )
    )
    # The last value of each setting wins, and the window moved by the differences in order.
    assert stream.send_window == 300
    assert engine.peer_max_frame_size == 30000
    assert frame_types(engine.data_to_send()) == ["SettingsFrame"]  # one ACK, at once


# -- 6.6: PUSH_PROMISE -------------------------------------------------------------------------


@pytest.mark.parametrize("intruder", ["ping", "continuation-on-stream-3", "headers"])
def test_rfc9113_6_6_push_promise_block_interrupted_is_a_connection_error(intruder: str) -> None:
    engine, server, _ = requested(enable_push=True)
    engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    block = server.block(PROMISED)
    start = raw_frame(PUSH_PROMISE, 0, 1, struct.pack(">L", 2) + block[:3])
    other = {
        "ping": raw_frame(PING, 0, 0, b"12345678"),
        "continuation-on-stream-3": raw_frame(CONTINUATION, END_HEADERS, 3, block[3:]),
        "headers": raw_frame(HEADERS, END_HEADERS, 1, b"\x88"),
    }[intruder]
    fails_connection(engine, start + other, ErrorCodes.PROTOCOL_ERROR)


def test_rfc9113_6_6_push_promise_block_in_continuations_is_accepted() -> None:
    engine, server, _ = requested(enable_push=True)
    block = server.block(PROMISED)
    events = engine.receive_data(
        raw_frame(PUSH_PROMISE, 0, 1, struct.pack(">L", 2) + block[:3])
        + raw_frame(CONTINUATION, END_HEADERS, 1, block[3:])
    )
    (event,) = events
    assert isinstance(event, PushPromised) and event.stream.request_headers == PROMISED


@pytest.mark.parametrize(("first", "second"), [(2, 2), (4, 2)], ids=["same-id", "lower-id"])
def test_rfc9113_6_6_promising_a_stream_id_that_is_not_idle_is_a_connection_error(
    first: int, second: int
) -> None:
    engine, server, _ = requested(enable_push=True)
    assert len(engine.receive_data(server.promise(1, first))) == 1
    fails_connection(engine, server.promise(1, second), ErrorCodes.PROTOCOL_ERROR)


@pytest.mark.parametrize("pad", [9, 200], ids=["as-long-as-the-payload", "longer"])
def test_rfc9113_6_6_push_promise_padding_too_long_is_a_protocol_error(pad: int) -> None:
    engine, _, _ = requested(enable_push=True)
    # Payload: pad length (1) + promised id (4) + 4 octets = 9 octets in all.
    payload = bytes([pad]) + struct.pack(">L", 2) + b"\x82\x87\x84\x41"
    fails_connection(
        engine,
        raw_frame(PUSH_PROMISE, END_HEADERS | PADDED, 1, payload),
        ErrorCodes.PROTOCOL_ERROR,
    )


# -- 6.7: PING ---------------------------------------------------------------------------------


def test_rfc9113_6_7_a_ping_acknowledgement_is_never_answered() -> None:
    engine, _ = started()
    engine.ping(b"abcdefgh")
    engine.data_to_send()
    engine.receive_data(raw_frame(PING, 0x1, 0, b"abcdefgh"))
    engine.receive_data(raw_frame(PING, 0x1, 0, b"unasked!"))  # even one never asked for
    assert engine.data_to_send() == b""
    assert engine.error is None


def test_rfc9113_6_7_a_ping_is_answered_ahead_of_the_window_updates_of_its_read() -> None:
    engine, server, _ = requested()
    for stream_id in (3, 5, 7, 9):
        engine.send_headers(stream_id, REQUEST, end_stream=True)
    engine.data_to_send()
    frames = b""
    for stream_id in (1, 3, 5, 7, 9):
        frames += server.headers(stream_id, [(b":status", b"200")])
        frames += raw_frame(DATA, 0, stream_id, b"w" * (1024 * 1024)) * 3
    frames += raw_frame(PING, 0, 0, b"urgent!!")
    # 15 MiB of data: enough to make the connection's window worth reopening in this read
    # (less than a quarter of its 16 MiB is left).
    engine.receive_data(frames)
    sent = list(sent_frames(engine.data_to_send()))
    assert [type(f).__name__ for f in sent] == ["PingFrame", "WindowUpdateFrame"]
    assert isinstance(sent[0], PingFrame)
    assert "ACK" in sent[0].flags and sent[0].opaque_data == b"urgent!!"


# -- 6.8: GOAWAY -------------------------------------------------------------------------------


def test_rfc9113_6_8_hyper_sends_one_goaway_so_its_last_stream_id_never_grows() -> None:
    engine, server, _ = requested(enable_push=True)
    engine.receive_data(server.promise(1, 2))
    engine.close()
    assert goaways(engine.data_to_send()) == [(2, ErrorCodes.NO_ERROR)]
    # A later promise raises the highest id hyper has seen; a later error would be reported
    # with a higher one. Neither is sent: the first GOAWAY stays the only one.
    engine.receive_data(server.promise(1, 4))
    engine.close()
    with pytest.raises(ProtocolError):
        engine.receive_data(raw_frame(PING, 0, 0, b"short"))
    assert goaways(engine.data_to_send()) == []


def test_rfc9113_6_8_after_its_goaway_hyper_still_decodes_blocks_and_counts_data() -> None:
    engine, server, first = requested()
    second = engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    engine.close()
    assert frame_types(engine.data_to_send()) == ["GoAwayFrame"]
    window = engine.connection_manager.window_size
    # The server's encoder indexes x-new in the first block and refers to it in the second:
    # the second decodes right only if the first was decoded too.
    engine.receive_data(
        server.headers(1, [(b":status", b"200"), (b"x-new", b"value")])
        + raw_frame(DATA, 0, 1, b"x" * 100)
        + server.headers(3, [(b":status", b"200"), (b"x-new", b"value")], end_stream=True)
    )
    assert engine.error is None
    assert first.response_headers == [(b":status", b"200"), (b"x-new", b"value")]
    assert second.response_headers == [(b":status", b"200"), (b"x-new", b"value")]
    assert engine.connection_manager.window_size == window - 100


# -- 6.9: WINDOW_UPDATE and flow control -------------------------------------------------------


def test_rfc9113_6_9_a_zero_window_update_on_a_stream_is_a_stream_error() -> None:
    engine, server, stream = requested(end_stream=False)
    bystander = engine.send_headers(3, REQUEST, end_stream=True)
    engine.data_to_send()
    engine.receive_data(window_update(1, 0))
    assert rst_codes(engine.data_to_send()) == [(1, ErrorCodes.PROTOCOL_ERROR)]
    assert stream.reset_code == ErrorCodes.PROTOCOL_ERROR
    assert engine.error is None
    engine.receive_data(server.headers(3, [(b":status", b"200")], end_stream=True))
    assert bystander.finished and bystander.error is None


def test_rfc9113_6_9_window_update_on_a_half_closed_or_closed_stream_is_no_error() -> None:
    engine, server, stream = requested(end_stream=False)
    engine.receive_data(server.headers(1, [(b":status", b"200")], end_stream=True))
    assert stream.remote_closed and not stream.local_closed  # half-closed (remote)
    engine.receive_data(window_update(1, 10))
    assert engine.error is None and engine.data_to_send() == b""
    engine.end_stream(stream)  # now closed
    engine.data_to_send()
    assert 1 not in engine.streams
    engine.receive_data(window_update(1, 10))
    assert engine.error is None and engine.data_to_send() == b""
    assert stream.error is None and stream.reset_code is None


def test_rfc9113_6_9_2_a_negative_send_window_holds_data_back_until_positive() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.send_data(stream, b"x" * 60000, end_stream=False)
    engine.data_to_send()
    engine.receive_data(settings((SettingCodes.INITIAL_WINDOW_SIZE, 16384)))
    assert stream.send_window == 16384 - 60000
    assert engine.sendable(stream) == 0
    engine.receive_data(window_update(0, 100000))  # the connection's window is not the limit
    engine.receive_data(window_update(1, 43616))
    assert stream.send_window == 0 and engine.sendable(stream) == 0
    engine.receive_data(window_update(1, 10))
    assert engine.sendable(stream) == 10


def test_rfc9113_6_9_2_initial_window_change_overflowing_a_window_is_a_connection_error() -> None:
    engine, _, stream = requested(end_stream=False)
    engine.receive_data(window_update(1, 2**31 - 1 - 65535))
    assert stream.send_window == 2**31 - 1
    fails_connection(
        engine,
        settings((SettingCodes.INITIAL_WINDOW_SIZE, 65536)),
        ErrorCodes.FLOW_CONTROL_ERROR,
    )


def test_rfc9113_6_9_3_hyper_never_sends_settings_after_its_preface() -> None:
    engine = Engine(enable_push=True)
    engine.start()
    sent = engine.data_to_send()
    server = Server()
    engine.receive_data(settings((SettingCodes.INITIAL_WINDOW_SIZE, 1000)))
    stream = engine.send_headers(1, REQUEST, end_stream=True)
    engine.receive_data(
        raw_frame(SETTINGS, 0x1, 0, b"")
        + server.promise(1, 2)
        + server.headers(1, [(b":status", b"200")])
        + raw_frame(DATA, 0, 1, b"y" * 50000)
        + raw_frame(PING, 0, 0, b"12345678")
    )
    engine.acknowledge(stream, len(stream.take(None)))
    engine.close()
    sent += engine.data_to_send()
    own = [f for f in sent_frames(sent) if type(f).__name__ == "SettingsFrame"]
    # The preface's SETTINGS, then only acknowledgements: the window hyper advertised is
    # never lowered, so data sent against an older, larger window cannot arise.
    assert ["ACK" in f.flags for f in own] == [False, True]


# -- 6.10: CONTINUATION ------------------------------------------------------------------------


@pytest.mark.parametrize("after_headers", [False, True], ids=["alone", "inside-a-block"])
def test_rfc9113_6_10_continuation_on_stream_0_is_a_connection_error(after_headers: bool) -> None:
    engine, server, _ = requested()
    block = server.block([(b":status", b"200")])
    payload = raw_frame(HEADERS, 0, 1, block) if after_headers else b""
    payload += raw_frame(CONTINUATION, END_HEADERS, 0, b"")
    fails_connection(engine, payload, ErrorCodes.PROTOCOL_ERROR)


# -- 8.1.1, 8.2, 8.3: the requests hyper sends -------------------------------------------------


def test_rfc9113_8_2_request_field_names_go_out_in_lowercase(
    scripted_server: ServerFactory,
) -> None:
    handler = simple_responder({"/": b"ok"})
    with serve(scripted_server, handler) as (_, conn):
        conn.request(
            "GET",
            "/",
            headers=[("X-Custom", "1"), ("Accept-Language", "en"), (b"X-BYTES", b"2")],
        )
        assert conn.get_response().read() == b"ok"
        stream_id = conn.putrequest("GET", "/")
        conn.putheader("X-Put-Header", "3", stream_id)
        conn.endheaders(final=True, stream_id=stream_id)
        assert conn.get_response(stream_id).read() == b"ok"
    names = [name for request in handler.requests for name, _ in request.headers]
    assert b"x-custom" in names and b"x-bytes" in names and b"x-put-header" in names
    assert all(name == name.lower() for name in names), names


def test_rfc9113_8_3_request_pseudo_headers_are_the_defined_ones_first_and_once(
    scripted_server: ServerFactory,
) -> None:
    handler = simple_responder({"/a": b"ok"})
    with serve(scripted_server, handler) as (_, conn):
        conn.request("GET", "/a", headers={"X-One": "1", "Accept": "*/*"})
        conn.get_response().read()
        conn.request("POST", "/a", body=b"data", headers={"Content-Type": "text/plain"})
        conn.get_response().read()
    for request in handler.requests:
        names = [name for name, _ in request.headers]
        pseudo = [name for name in names if name.startswith(b":")]
        assert pseudo == [b":method", b":scheme", b":authority", b":path"]
        assert names[:4] == pseudo  # before every regular field
        assert all(value for name, value in request.headers if name.startswith(b":"))


def test_rfc9113_8_3_1_an_absolute_url_gives_authority_without_userinfo_and_path_slash(
    scripted_server: ServerFactory,
) -> None:
    handler = simple_responder({"/": b"ok"})
    with serve(scripted_server, handler) as (server, conn):
        conn.request("GET", f"http://user:secret@127.0.0.1:{server.port}")
        assert conn.get_response().read() == b"ok"
    (request,) = handler.requests
    assert request.header(":authority") == f"127.0.0.1:{server.port}".encode()
    assert request.header(":path") == b"/"
    assert b"user" not in b"".join(value for _, value in request.headers)


def test_rfc9113_8_3_1_a_server_wide_options_request_has_path_asterisk(
    scripted_server: ServerFactory,
) -> None:
    handler = simple_responder({"*": b""})
    with serve(scripted_server, handler) as (_, conn):
        conn.request("OPTIONS", "*")
        assert conn.get_response().status == 200
    (request,) = handler.requests
    assert request.header(":method") == b"OPTIONS"
    assert request.header(":path") == b"*"


def test_rfc9113_8_1_1_request_content_length_matches_the_data_sent(
    scripted_server: ServerFactory,
) -> None:
    """A Content-Length the body does not match is refused: at once when the body's length
    is known, and as soon as a streamed body passes it or ends short of it, with the stream
    reset; the server never sees a malformed request, and the connection goes on."""
    responder = simple_responder({"/up": b"ok"})
    mismatch: list[str] = []

    def handler(ctx: ServerConnection) -> None:
        try:
            responder(ctx)
        except h2.exceptions.InvalidBodyLengthError as exc:  # the server saw a malformed request
            mismatch.append(str(exc))

    with serve(scripted_server, handler) as (_, conn), quickly(WAIT):
        with pytest.raises(InvalidRequest, match="Content-Length says 10 but the body has 3"):
            conn.request("POST", "/up", body=b"abc", headers={"Content-Length": "10"})
        with pytest.raises(InvalidRequest, match="longer than its Content-Length 4"):
            pieces = iter([b"abc", b"de"])
            conn.request("POST", "/up", body=pieces, headers={"content-length": "4"})
        with pytest.raises(InvalidRequest, match="had 3 bytes, not the 9"):
            conn.request("POST", "/up", body=iter([b"abc"]), headers={"content-length": "9"})
        with pytest.raises(InvalidRequest, match="invalid Content-Length"):
            conn.request("POST", "/up", body=b"abc", headers={"content-length": "3x"})
        conn.request("POST", "/up", body=iter([b"ab", b"c"]), headers={"content-length": "3"})
        assert conn.get_response().read() == b"ok"
    assert mismatch == []
    assert [request.body for request in responder.requests] == [b"abc"]


def test_rfc9113_8_1_1_request_content_length_is_the_body_length(
    scripted_server: ServerFactory,
) -> None:
    handler = simple_responder({"/up": b"ok"})
    with serve(scripted_server, handler) as (_, conn):
        conn.request("POST", "/up", body=b"x" * 70000)
        assert conn.get_response().read() == b"ok"
        conn.request("PUT", "/up", body=iter([b"ab", b"cde"]))  # length unknown: none sent
        assert conn.get_response().read() == b"ok"
    first, second = handler.requests
    assert first.header("content-length") == b"70000" and len(first.body) == 70000
    assert second.header("content-length") is None and second.body == b"abcde"


# -- 8.4: server push --------------------------------------------------------------------------


def push_handler(
    headers_for: Callable[[int], Headers], outcome: dict[str, Any]
) -> Callable[[ServerConnection], None]:
    """Push ``headers_for(port)`` on the first request, answer it, and record how the
    client answered the promised stream in ``outcome["reset"]``."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        pushed = ctx.conn.get_next_available_stream_id()
        port = int(ctx.sock.getsockname()[1])
        ctx.conn.push_stream(parent, pushed, headers_for(port))
        ctx.flush()
        outcome["pushed"] = pushed
        ctx.respond(parent, 200, OK, b"main")
        try:
            reset = ctx.wait_for(h2.events.StreamReset, timeout=WAIT, stream_id=pushed)
        except AssertionError:
            return  # the client closed without resetting the push: outcome says so
        assert isinstance(reset, h2.events.StreamReset)
        outcome["reset"] = reset.error_code
        ctx.wait_closed(timeout=WAIT)

    return handler


def promise_for(
    port: int,
    method: bytes = b"GET",
    authority: str | None = None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> Headers:
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", (authority or f"127.0.0.1:{port}").encode()),
        (b":path", b"/pushed"),
        *extra,
    ]


def refuses_push_with(
    scripted_server: ServerFactory, headers_for: Callable[[int], Headers]
) -> int:
    """The error code the client reset the promised stream with; the parent reads fine and
    no push is yielded."""
    outcome: dict[str, Any] = {}
    with serve(scripted_server, push_handler(headers_for, outcome), enable_push=True) as (
        _,
        conn,
    ):
        stream_id = conn.request("GET", "/")
        with quickly(WAIT):
            assert conn.get_response(stream_id).read() == b"main"
            assert list(conn.get_pushes(stream_id)) == []
            conn.ping(b"12345678")  # a round trip: the client's answer has gone out
            introspect.read_until(conn, lambda: conn.last_ping_ack is not None)
    assert "reset" in outcome, "the client did not reset the promised stream"
    return int(outcome["reset"])


@pytest.mark.parametrize("method", [b"POST", b"DELETE"])
def test_rfc9113_8_4_unsafe_promised_request_is_reset_with_protocol_error(
    scripted_server: ServerFactory, method: bytes
) -> None:
    code = refuses_push_with(scripted_server, lambda port: promise_for(port, method=method))
    assert code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_rfc9113_8_4_promised_request_with_content_is_reset_with_protocol_error(
    scripted_server: ServerFactory,
) -> None:
    code = refuses_push_with(
        scripted_server, lambda port: promise_for(port, extra=((b"content-length", b"5"),))
    )
    assert code == h2.errors.ErrorCodes.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "authority", ["evil.example", "127.0.0.2"], ids=["other-host", "other-ip"]
)
def test_rfc9113_8_4_push_for_another_origin_is_reset_with_protocol_error(
    scripted_server: ServerFactory, authority: str
) -> None:
    code = refuses_push_with(
        scripted_server, lambda port: promise_for(port, authority=f"{authority}:{port}")
    )
    assert code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_rfc9113_8_4_1_the_client_never_sends_push_promise() -> None:
    engine, server, stream = requested(enable_push=True)
    events = engine.receive_data(
        server.promise(1, 2)
        + server.headers(1, [(b":status", b"200")], end_stream=True)
        + server.headers(2, [(b":status", b"200")])
        + raw_frame(DATA, END_STREAM, 2, b"pushed")
    )
    (event,) = events
    assert isinstance(event, PushPromised)
    pushed = event.stream
    engine.acknowledge(pushed, len(pushed.take(None)))
    engine.reset_stream(stream)
    engine.close()
    sent = engine.data_to_send()
    assert "PushPromiseFrame" not in frame_types(sent)
    assert not hasattr(engine, "send_push_promise") and not hasattr(engine, "push")


# -- 9.2: TLS ----------------------------------------------------------------------------------


def tls_server(
    scripted_server: ServerFactory,
    adjust: Callable[[ssl.SSLContext], None],
    refused: bool = False,
) -> tuple[Any, list[tuple[str | None, str]]]:
    """A TLS h2 scripted server answering ``/``, its context adjusted by ``adjust``; the
    list gets (TLS version, cipher suite) of every connection. With ``refused``, the client
    is expected to hang up right after the TLS handshake: the server only waits for that."""
    responder = simple_responder({"/": b"over tls"})
    negotiated: list[tuple[str | None, str]] = []

    def handler(ctx: ServerConnection) -> None:
        assert isinstance(ctx.sock, ssl.SSLSocket)
        cipher = ctx.sock.cipher()
        negotiated.append((ctx.sock.version(), cipher[0] if cipher else ""))
        if refused:
            ctx.sock.settimeout(WAIT)
            with contextlib.suppress(OSError):
                while ctx.sock.recv(65536):
                    pass
            return
        responder(ctx)

    server = scripted_server(handler, tls=True)
    assert server.ssl_context is not None
    adjust(server.ssl_context)
    return server, negotiated


def tls_connection(server: Any, ca_cert_path: Path) -> HTTP20Connection:
    return HTTP20Connection(
        "localhost",
        server.port,
        secure=True,
        ssl_context=tls.init_context(cert_path=ca_cert_path),
        timeout=WAIT,
    )


def get_over_tls(server: Any, ca_cert_path: Path) -> None:
    """GET / from ``server`` on a :func:`tls_connection`: the answer is "over tls"."""
    conn = tls_connection(server, ca_cert_path)
    try:
        assert conn.get_response(conn.request("GET", "/")).read() == b"over tls"
    finally:
        conn.close()


def test_rfc9113_9_2_the_client_sends_sni_for_a_host_name(
    scripted_server: ServerFactory, ca_cert_path: Path
) -> None:
    names: list[str | None] = []

    def adjust(context: ssl.SSLContext) -> None:
        context.sni_callback = lambda sock, name, ctx: names.append(name)

    server, _ = tls_server(scripted_server, adjust)
    with server:
        get_over_tls(server, ca_cert_path)
    assert names == ["localhost"]


def test_rfc9113_9_2_1_renegotiation_and_post_handshake_auth_are_off() -> None:
    context = tls.init_context()
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert not context.post_handshake_auth  # no TLS 1.3 CertificateRequest may follow


def rsa_identity(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and an RSA certificate for localhost (the suite's own test CA issues
    ECDSA ones, which RSA cipher suites cannot use): (CA, certificate, key) paths."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    paths = directory / "rsa-ca.pem", directory / "rsa-cert.pem", directory / "rsa-key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    leaf.cert_chain_pems[0].write_to_path(str(paths[1]))
    leaf.private_key_pem.write_to_path(str(paths[2]))
    return paths


def tls_1_2_handshake(
    scripted_server: ServerFactory, tmp_path: Path, adjust: Callable[[ssl.SSLContext], None]
) -> list[tuple[str | None, str]]:
    """A request over TLS 1.2 to a server with an RSA certificate, its context adjusted by
    ``adjust``; returns what the server negotiated."""
    ca_path, cert_path, key_path = rsa_identity(tmp_path)

    def setup(context: ssl.SSLContext) -> None:
        context.load_cert_chain(str(cert_path), str(key_path))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        adjust(context)

    server, negotiated = tls_server(scripted_server, setup)
    with server:
        get_over_tls(server, ca_path)
    return negotiated


def test_rfc9113_9_2_2_tls_1_2_with_ecdhe_rsa_aes128_gcm_on_p256_speaks_h2(
    scripted_server: ServerFactory, tmp_path: Path
) -> None:
    def adjust(context: ssl.SSLContext) -> None:
        context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
        context.set_ecdh_curve("prime256v1")

    negotiated = tls_1_2_handshake(scripted_server, tmp_path, adjust)
    assert negotiated == [("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")]


@pytest.mark.parametrize("bits", [2048, 4096])
def test_rfc9113_9_2_1_ephemeral_dhe_of_2048_to_4096_bits_is_accepted(
    scripted_server: ServerFactory, tmp_path: Path, bits: int
) -> None:
    params = tmp_path / "dh.pem"
    subprocess.run(
        [
            *("openssl", "genpkey", "-genparam", "-algorithm", "DH"),
            *("-pkeyopt", f"group:ffdhe{bits}", "-out", str(params)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    def adjust(context: ssl.SSLContext) -> None:
        context.set_ciphers("DHE-RSA-AES128-GCM-SHA256")
        context.load_dh_params(str(params))

    negotiated = tls_1_2_handshake(scripted_server, tmp_path, adjust)
    assert negotiated == [("TLSv1.2", "DHE-RSA-AES128-GCM-SHA256")]


#: TLS 1.2 suites RFC 9113 Appendix A does not prohibit: ephemeral key exchange and AEAD.
def test_rfc9113_9_2_2_no_prohibited_tls_1_2_cipher_suite_is_used_for_h2(
    scripted_server: ServerFactory, ca_cert_path: Path
) -> None:
    """hyper offers the prohibited suites too (the RFC allows it, for HTTP/1.1 servers), but
    prefers permitted ones, and refuses HTTP/2 over TLS 1.2 with a prohibited one."""
    offered = [c["name"] for c in tls.init_context().get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls.h2_cipher_allowed(offered[0]), offered
    assert tls.h2_cipher_allowed("ECDHE-RSA-CHACHA20-POLY1305")
    assert not tls.h2_cipher_allowed("AES128-GCM-SHA256")  # no ephemeral key exchange

    def adjust(context: ssl.SSLContext) -> None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        # CBC suites, for either kind of server key.
        context.set_ciphers("ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256")

    server, negotiated = tls_server(scripted_server, adjust, refused=True)
    with server:
        conn = tls_connection(server, ca_cert_path)
        try:
            with pytest.raises(TLSError, match=r"AES128-SHA256, which RFC 9113 section 9\.2\.2"):
                conn.get_response(conn.request("GET", "/")).read()
        finally:
            conn.close()
    assert [version for version, _ in negotiated] == ["TLSv1.2"]  # one attempt, not retried
