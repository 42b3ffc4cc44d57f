"""
A timeout per request: ``request(..., timeout=...)`` on every connection class.

What a caller relies on:

* **A short timeout fires on time on a shared HTTP/2 connection.** Two requests in flight on
  one connection, one with 0.3 s and one with 5 s, the server answering neither for a while
  (but keeping the connection busy with PINGs): the short one raises ``ReadTimeout`` after
  its 0.3 s, whether its thread reads the socket for both or waits while the other one does,
  and the long one still gets its answer on the same connection.
* **A timed-out request stays pending**: ``get_response()`` again gets the late answer, and
  ``cancel()`` gives the request up (the server sees ``RST_STREAM(CANCEL)``).
* **Every wait of the request is bounded by its timeout**: for the response head, for each
  read of the body (``read()``, ``read(amt)``, ``read_chunked()``, iteration; nothing that
  arrived is lost), and for flow-control window while its body is sent. A body that keeps
  coming, piece after piece, does not time out however long it takes in all.
* **The connect part** bounds opening the connection the request needs.
* **HTTP/1.1** waits by the request's timeout until its response is read, then by the
  connection's again, on the same socket.
* **Invalid values** raise what the constructors raise for them, before anything is sent.

Servers are the scripted ones of ``tests/support``; the test and the server hand over with
events, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import h2.events
import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.exceptions import ConnectTimeout, InvalidRequest, ReadTimeout
from hyper.common.response import BaseResponse
from hyper.http20.errors import ErrorCodes
from hyper.tls import init_context
from tests.support.helpers import serve
from tests.support.http11 import Reply, http11_responder, read_request, send_raw
from tests.support.scripted import ServerConnection

ServerFactory = Callable[..., Any]

#: The bound of every hand-over between the test and its server.
WAIT = 10.0
#: The short per-request timeout, and the longest it may take to fire on a busy machine.
SHORT, LATE = 0.3, 2.0
#: The connection's own timeout in these tests: far longer than SHORT.
CONNECTION = 5.0
OK = [(b"content-type", b"text/plain")]


class Call:
    """A call run in a thread of its own: what it returned or raised, and how long it took
    (:attr:`elapsed`, set before the outcome is)."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.elapsed = 0.0
        self.future: Future[Any] = Future()
        threading.Thread(target=self._run, args=(call,), daemon=True).start()

    def _timed(self, call: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            return call()
        finally:
            self.elapsed = time.monotonic() - start

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.future.set_result(self._timed(call))
        except BaseException as exc:
            self.future.set_exception(exc)

    def running(self) -> bool:
        """Whether the call has not ended yet."""
        return not self.future.done()

    def finish(self) -> Call:
        """Wait (bounded) for the call to end."""
        wait([self.future], WAIT)
        assert self.future.done(), f"the call still runs after {WAIT}s"
        return self

    @property
    def error(self) -> BaseException | None:
        """What the call raised (it has ended)."""
        return self.future.exception(0)

    @property
    def value(self) -> Any:
        """What the call returned (it has ended, without an error)."""
        return self.future.result(0)


def timed_out_on_time(call: Call, timeout: float = SHORT) -> None:
    """The call raised ReadTimeout after its timeout, and not much later."""
    assert isinstance(call.error, ReadTimeout), call.error
    assert timeout * 0.95 <= call.elapsed < LATE, f"ReadTimeout after {call.elapsed:.2f}s"


def reset_code(ctx: ServerConnection, stream_id: int) -> int:
    """Wait for the client to reset ``stream_id``; the error code it gave."""
    reset = ctx.wait_for(h2.events.StreamReset, stream_id=stream_id)
    assert isinstance(reset, h2.events.StreamReset)
    return int(reset.error_code)


def _swallow(sock: socket.socket) -> None:
    """Read and drop whatever the client sends, until it closes: never answer."""
    with contextlib.suppress(OSError):
        sock.makefile("rb").read()


# -- two requests, two timeouts, one HTTP/2 connection --------------------------------------------


@pytest.mark.parametrize("reader", ["short", "long"])
def test_short_timeout_fires_on_time_while_the_long_request_completes(
    scripted_server: ServerFactory, reader: str
) -> None:
    """``reader`` names the request whose thread waits first and so reads the socket for
    both; the other one's thread waits while it does (a PING the server sends only then is
    acknowledged by the first thread, which proves the roles)."""
    first_is_reader = threading.Event()
    short_done = threading.Event()
    answer_long = threading.Event()
    reset_codes: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        short_id = ctx.wait_for_request().stream_id
        long_id = ctx.wait_for_request().stream_id
        ctx.conn.ping(b"reader??")
        ctx.flush()
        ctx.wait_for(h2.events.PingAckReceived)
        first_is_reader.set()
        # Neither is answered, but the connection is busy: every PING wakes the waiting
        # threads, and none of that may put off the short request's time-out.
        count = 0
        deadline = time.monotonic() + WAIT
        while not short_done.wait(0.05) and time.monotonic() < deadline:
            ctx.conn.ping(count.to_bytes(8, "big"))
            ctx.flush()
            count += 1
        assert answer_long.wait(WAIT)
        ctx.respond(long_id, 200, OK, b"the long answer")
        reset_codes.append(reset_code(ctx, short_id))
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (server, conn):
        short_id = conn.request("GET", "/short", timeout=SHORT)
        long_id = conn.request("GET", "/long", timeout=5)

        def short() -> Any:
            return conn.get_response(short_id)

        def long() -> bytes:
            response: BaseResponse = conn.get_response(long_id)
            return response.read()

        calls = {"short": short, "long": long}
        second = "long" if reader == "short" else "short"
        running = {reader: Call(calls[reader])}
        assert first_is_reader.wait(WAIT)
        running[second] = Call(calls[second])

        timed_out_on_time(running["short"].finish())
        short_done.set()
        assert running["long"].running(), "the long request gave up with the short one"
        answer_long.set()
        assert running["long"].finish().error is None, running["long"].error
        assert running["long"].value == b"the long answer"
        conn.cancel(short_id)
    assert reset_codes == [ErrorCodes.CANCEL]
    assert server.connection_count == 1


def test_timed_out_request_stays_pending_until_answered(scripted_server: ServerFactory) -> None:
    answer = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        assert answer.wait(WAIT)
        ctx.respond(stream_id, 200, OK, b"late but here")
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (server, conn):
        stream_id = conn.request("GET", "/", timeout=SHORT)
        outcome = Call(lambda: conn.get_response(stream_id)).finish()
        timed_out_on_time(outcome)
        answer.set()
        assert conn.get_response(stream_id).read() == b"late but here"
    assert server.connection_count == 1


def test_cancelled_request_is_reset_and_forgotten(scripted_server: ServerFactory) -> None:
    reset_codes: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        reset_codes.append(reset_code(ctx, stream_id))
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (_, conn):
        stream_id = conn.request("GET", "/", timeout=SHORT)
        with pytest.raises(ReadTimeout):
            conn.get_response(stream_id)
        conn.cancel(stream_id)
        assert conn.open_streams == 0
        with pytest.raises(InvalidRequest):
            conn.get_response(stream_id)
        with pytest.raises(InvalidRequest):
            conn.cancel(stream_id)
    assert reset_codes == [ErrorCodes.CANCEL]


# -- the waits of one request ---------------------------------------------------------------------


BODY = b"0123456789" * 1000
HALF = len(BODY) // 2


def _read_all(response: BaseResponse) -> bytes:
    return response.read()


def _read_amt(response: BaseResponse) -> bytes:
    return response.read(len(BODY))


def _read_chunked(response: BaseResponse) -> bytes:
    return b"".join(response.read_chunked())


def _iterate(response: BaseResponse) -> bytes:
    return b"".join(response)


READS = {"read()": _read_all, "read(amt)": _read_amt, "chunked": _read_chunked, "iter": _iterate}


@pytest.mark.parametrize("style", list(READS))
def test_body_read_stalled_by_the_server_times_out_and_loses_nothing(
    scripted_server: ServerFactory, style: str
) -> None:
    send_rest = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, OK, BODY[:HALF], end=False)
        assert send_rest.wait(WAIT)
        ctx.send_body(stream_id, BODY[HALF:])
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (_, conn):
        response = conn.get_response(conn.request("GET", "/", timeout=SHORT))
        got: list[bytes] = []
        read = READS[style]

        def first_read() -> None:
            # A piecewise read hands over what it has before it waits for more.
            if style in ("chunked", "iter"):
                pieces = response.read_chunked() if style == "chunked" else iter(response)
                for piece in pieces:
                    got.append(piece)
            else:
                got.append(read(response))

        outcome = Call(first_read).finish()
        timed_out_on_time(outcome)
        send_rest.set()
        got.append(read(response))
    assert b"".join(got) == BODY


@pytest.mark.parametrize("style", ["read()", "read(amt)"])
def test_body_that_keeps_coming_is_read_past_its_timeout(
    scripted_server: ServerFactory, style: str
) -> None:
    """Each piece comes well within the request's timeout, the whole body does not: the
    timeout bounds the wait for the next piece, not the whole read."""
    pieces, gap, timeout = 20, 0.1, 1.5
    chunk = len(BODY) // pieces

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, OK, end=False)
        pause = threading.Event()  # never set: the pace of a slow server
        for index in range(pieces):
            pause.wait(gap)
            last = index == pieces - 1
            ctx.send_body(stream_id, BODY[index * chunk : (index + 1) * chunk], end_stream=last)
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (_, conn):
        response = conn.get_response(conn.request("GET", "/", timeout=timeout))
        start = time.monotonic()
        body = READS[style](response)
        elapsed = time.monotonic() - start
    assert body == BODY
    assert elapsed > timeout, "the body came faster than the timeout: nothing was shown"


def test_upload_the_server_never_lets_through_times_out(scripted_server: ServerFactory) -> None:
    reset_codes: list[int] = []

    def handler(ctx: ServerConnection) -> None:
        ctx.auto_ack = False  # the flow-control windows never open again
        ctx.handshake()
        stream_id = ctx.wait_for_request().stream_id
        reset_codes.append(reset_code(ctx, stream_id))
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (_, conn):
        body = b"x" * 200_000  # more than the 65,535 bytes of window the server grants
        outcome = Call(lambda: conn.request("POST", "/", body=body, timeout=SHORT)).finish()
    timed_out_on_time(outcome)
    assert reset_codes == [ErrorCodes.CANCEL]


def test_putrequest_timeout_bounds_its_response(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        ctx.wait_for_request()
        ctx.wait_closed()

    with serve(scripted_server, handler, timeout=CONNECTION) as (_, conn):
        stream_id = conn.putrequest("GET", "/", timeout=SHORT)
        conn.endheaders(final=True, stream_id=stream_id)
        outcome = Call(lambda: conn.get_response(stream_id)).finish()
    timed_out_on_time(outcome)


# -- connecting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTP11Connection, HTTPConnection])
def test_connect_part_bounds_opening_the_connection(
    cls: type[Any], ca_cert_path: Path, scripted_raw_server: ServerFactory
) -> None:
    # A plaintext server that never answers the TLS ClientHello: connecting never ends.
    with scripted_raw_server(_swallow) as server:
        context = init_context(cert_path=str(ca_cert_path))
        conn = cls(server.host, server.port, secure=True, ssl_context=context, timeout=CONNECTION)
        try:
            outcome = Call(lambda: conn.request("GET", "/", timeout=(SHORT, 5))).finish()
        finally:
            conn.close()
    assert isinstance(outcome.error, ConnectTimeout), outcome.error
    assert SHORT * 0.95 <= outcome.elapsed < LATE


# -- HTTP/1.1 -------------------------------------------------------------------------------------


def _silent(sock: socket.socket) -> None:
    """Read one request, never answer it."""
    read_request(sock)
    _swallow(sock)


@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection])
def test_http11_request_timeout_bounds_the_response(
    cls: type[Any], scripted_raw_server: ServerFactory
) -> None:
    with scripted_raw_server(_silent) as server:
        conn = cls(server.host, server.port, timeout=CONNECTION)
        try:
            conn.request("GET", "/", timeout=SHORT)
            outcome = Call(conn.get_response).finish()
        finally:
            conn.close()
    timed_out_on_time(outcome)


def test_http11_body_read_times_out_by_the_request(scripted_raw_server: ServerFactory) -> None:
    def handler(sock: socket.socket) -> None:
        read_request(sock)
        send_raw(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
        _swallow(sock)

    with scripted_raw_server(handler) as server:
        conn = HTTP11Connection(server.host, server.port, timeout=CONNECTION)
        try:
            conn.request("GET", "/", timeout=SHORT)
            response = conn.get_response()
            outcome = Call(response.read).finish()
        finally:
            conn.close()
    timed_out_on_time(outcome)


def test_http11_connection_timeout_applies_again_after_the_request(
    scripted_raw_server: ServerFactory,
) -> None:
    """A longer per-request timeout outlasts a slow answer; the next request, without one,
    waits by the connection's shorter timeout again on the same socket."""
    pause = threading.Event()  # never set: the delay of a slow server
    slow = 0.8

    def late(request: Any) -> Reply:
        pause.wait(slow)
        return Reply(200, body=b"late")

    responder = http11_responder({"/late": late})
    with scripted_raw_server(responder) as server:
        conn = HTTP11Connection(server.host, server.port, timeout=(CONNECTION, SHORT))
        try:
            start = time.monotonic()
            conn.request("GET", "/late", timeout=(CONNECTION, 5))
            assert conn.get_response().read() == b"late"
            assert time.monotonic() - start >= slow
            conn.request("GET", "/late")
            outcome = Call(conn.get_response).finish()
        finally:
            conn.close()
    timed_out_on_time(outcome)
    assert [request.connection_id for request in responder.requests] == [0, 0]


def test_http11_short_request_timeout_ends_with_its_exchange(
    scripted_raw_server: ServerFactory,
) -> None:
    """The reverse: a short per-request timeout, then a slow answer waited for by the
    connection's longer timeout, on the same socket."""
    pause = threading.Event()  # never set: the delay of a slow server
    slow = 0.8

    def late(request: Any) -> Reply:
        pause.wait(slow)
        return Reply(200, body=b"late")

    responder = http11_responder({"/fast": b"fast", "/late": late})
    with scripted_raw_server(responder) as server:
        conn = HTTP11Connection(server.host, server.port, timeout=CONNECTION)
        try:
            conn.request("GET", "/fast", timeout=SHORT)
            assert conn.get_response().read() == b"fast"
            start = time.monotonic()
            conn.request("GET", "/late")
            assert conn.get_response().read() == b"late"
            assert time.monotonic() - start >= slow
        finally:
            conn.close()
    assert [request.connection_id for request in responder.requests] == [0, 0]


# -- invalid values -------------------------------------------------------------------------------


INVALID = [-1, float("nan"), "5", True, (1, 2, 3), (1, "x"), [1, 2], (-0.5, 1)]


def _requests(conn: Any) -> Iterator[Callable[[Any], Any]]:
    """Every way to give a request its timeout on ``conn``."""
    yield lambda timeout: conn.request("GET", "/", timeout=timeout)
    if isinstance(conn, HTTP20Connection):
        yield lambda timeout: conn.putrequest("GET", "/", timeout=timeout)


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTP11Connection, HTTPConnection])
@pytest.mark.parametrize("value", INVALID, ids=repr)
def test_invalid_request_timeout_is_refused_as_by_the_constructor(
    cls: type[Any], value: Any, scripted_raw_server: ServerFactory
) -> None:
    with scripted_raw_server(_swallow) as server:
        with pytest.raises(InvalidRequest) as refused:
            cls(server.host, server.port, timeout=value)
        conn = cls(server.host, server.port, timeout=CONNECTION)
        try:
            for send in _requests(conn):
                with pytest.raises(type(refused.value)) as caught:
                    send(value)
                assert str(caught.value) == str(refused.value)
        finally:
            conn.close()
        assert server.connection_count == 0  # refused before anything was opened
