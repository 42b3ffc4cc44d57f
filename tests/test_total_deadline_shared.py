"""
The total deadline (``hyper.Timeout(total=...)``) when the request waits on something another
thread holds, or on a server that has stopped reading: every such wait ends at the deadline,
however long the other thread's own limits are.

* HTTP/2: a server that stops reading fills the socket; neither the request whose body is
  stuck there nor another request on the connection waits past its deadline (writes never
  wait with the connection's lock held).
* HTTP/1.1: another thread's exchange holds the connection while it waits for its response
  head.
* Opening a connection: another thread holds the connect lock (HTTP/2's TLS handshake,
  HTTP/3's QUIC handshake) or settles the protocol (HTTPConnection).
* The requests adapter: a full pool with ``pool_block``, and retry backoffs longer than what
  is left.

The other thread's limits are long (:data:`OTHERS`): a request that waited for it would take
that long and fail the timing check. Servers stall on events the test sets at its end, and
every wait of the test's own is bounded.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import h2.settings
import pytest
import requests
import urllib3
from urllib3.util import Retry

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection, Timeout
from hyper.common.exceptions import ConnectTimeout, DeadlineExceeded, HyperError
from hyper.contrib import HTTP20Adapter
from hyper.tls import init_context
from tests.support.adapter import session_with
from tests.support.h2conn import ServerConnection
from tests.support.http11 import Reply, http11_responder, read_request
from tests.support.threaded import DEFAULT_TIMEOUT

pytestmark = pytest.mark.timeout(30)

#: The deadline of the request under test.
TOTAL = 0.5
#: The limits of the other thread, and of the stalled servers: far beyond TOTAL.
OTHERS = 10.0
#: How late past the deadline the error may come on a busy machine.
SLACK = 1.5
#: A body much larger than the socket buffers of a loopback connection can hold.
LARGE_BODY = b"x" * (48 * 1024 * 1024)


@contextmanager
def ends_by_deadline(error: type[HyperError] = DeadlineExceeded) -> Iterator[None]:
    """Assert the block raises ``error`` saying the total deadline passed, about
    :data:`TOTAL` seconds after it started."""
    started = time.monotonic()
    with pytest.raises(error, match=rf"total deadline of {TOTAL:g} s"):
        yield
    elapsed = time.monotonic() - started
    assert TOTAL - 0.01 <= elapsed < TOTAL + SLACK, f"took {elapsed:.2f} s"


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], Any]], Future[Any]]]:
    """Run a function in a thread of its own (the "other thread"); joined at the end."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool.submit


def settled(future: Future[Any]) -> None:
    """Wait (bounded) for the other thread to end, whatever it raised."""
    future.exception(timeout=OTHERS + SLACK)


# -- HTTP/2: a server that stops reading -------------------------------------------------------


class StopsReading:
    """An HTTP/2 handler that opens every window wide, reads the first request's HEADERS,
    and then reads nothing more until :attr:`release` is set."""

    def __init__(self) -> None:
        self.first_request = threading.Event()
        self.release = threading.Event()

    def __call__(self, ctx: ServerConnection) -> None:
        ctx.handshake(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        ctx.conn.increment_flow_control_window(2**31 - 1 - 65535)
        ctx.flush()
        ctx.wait_for_request()
        self.first_request.set()
        self.release.wait(OTHERS)


@pytest.fixture
def stops_reading(scripted_server: Any) -> Iterator[tuple[StopsReading, Any]]:
    handler = StopsReading()
    with scripted_server(handler) as server:
        try:
            yield handler, server
        finally:
            handler.release.set()


def test_http2_body_stuck_behind_a_full_socket_ends_at_the_deadline(
    stops_reading: tuple[StopsReading, Any],
) -> None:
    _, server = stops_reading
    conn = HTTP20Connection(server.host, server.port, secure=False, timeout=OTHERS)
    with conn, ends_by_deadline():
        stream_id = conn.request(
            "POST", "/upload", body=LARGE_BODY, timeout=Timeout(read=OTHERS, total=TOTAL)
        )
        conn.get_response(stream_id)


def test_http2_request_beside_a_stuck_upload_ends_at_its_deadline(
    stops_reading: tuple[StopsReading, Any],
    background: Callable[[Callable[[], Any]], Future[Any]],
) -> None:
    handler, server = stops_reading
    with HTTP20Connection(server.host, server.port, secure=False, timeout=OTHERS) as conn:
        upload = background(lambda: conn.request("POST", "/upload", body=LARGE_BODY))
        assert handler.first_request.wait(DEFAULT_TIMEOUT)
        with ends_by_deadline():
            conn.get_response(conn.request("GET", "/", timeout=Timeout(total=TOTAL)))
        assert not upload.done()  # still stuck: only the deadline ended the request
        handler.release.set()
        conn.close()
        settled(upload)


# -- HTTP/1.1: another thread's exchange -------------------------------------------------------


def test_http11_request_behind_an_exchange_awaiting_its_response_ends_at_its_deadline(
    scripted_raw_server: Any, background: Callable[[Callable[[], Any]], Future[Any]]
) -> None:
    received = threading.Event()
    release = threading.Event()

    def never_answers(sock: socket.socket) -> None:
        read_request(sock)
        received.set()
        release.wait(OTHERS)

    with scripted_raw_server(never_answers) as server:
        conn = HTTP11Connection(server.host, server.port, timeout=OTHERS)

        def first() -> Any:
            conn.request("GET", "/slow")
            return conn.get_response()  # waits for the head, holding the connection

        waiting = background(first)
        assert received.wait(DEFAULT_TIMEOUT)
        with ends_by_deadline():
            conn.request("GET", "/", timeout=Timeout(total=TOTAL))
        assert not waiting.done()
        release.set()
        conn.close()
        settled(waiting)


# -- opening a connection while another thread does ------------------------------------------


@pytest.fixture
def silent_tls_server(
    scripted_raw_server: Any,
) -> Iterator[tuple[Any, threading.Event, threading.Event]]:
    """A TCP server that accepts and says nothing until released (then hangs up): a TLS
    handshake with it waits. Yields the server, "accepted" and "release"."""
    accepted = threading.Event()
    release = threading.Event()

    def silent(sock: socket.socket) -> None:
        accepted.set()
        release.wait(OTHERS)

    with scripted_raw_server(silent) as server:
        try:
            yield server, accepted, release
        finally:
            release.set()


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection])
def test_request_while_another_thread_handshakes_ends_at_its_deadline(
    silent_tls_server: tuple[Any, threading.Event, threading.Event],
    background: Callable[[Callable[[], Any]], Future[Any]],
    cls: type[HTTP20Connection] | type[HTTPConnection],
    ca_cert_path: Any,
) -> None:
    server, accepted, release = silent_tls_server
    context = init_context(cert_path=str(ca_cert_path))
    conn = cls(server.host, server.port, secure=True, ssl_context=context, timeout=OTHERS)
    connecting = background(conn.connect)
    assert accepted.wait(DEFAULT_TIMEOUT)
    # The request is still being opened: the deadline says so with a ConnectTimeout.
    with ends_by_deadline(ConnectTimeout):
        conn.request("GET", "/", timeout=Timeout(total=TOTAL))
    assert not connecting.done()
    release.set()  # the other thread's handshake fails as the server hangs up
    settled(connecting)
    conn.close()


def test_http3_request_while_another_thread_handshakes_ends_at_its_deadline(
    background: Callable[[Callable[[], Any]], Future[Any]],
) -> None:
    pytest.importorskip("qh3")
    from hyper import HTTP30Connection
    from tests.support.udp_peers import UDPPeer

    first_packet = threading.Event()

    def swallow(packet: bytes) -> None:
        first_packet.set()

    peer = UDPPeer(swallow)
    try:
        conn = HTTP30Connection("127.0.0.1", peer.port, timeout=OTHERS)
        handshaking = background(conn.connect)
        assert first_packet.wait(DEFAULT_TIMEOUT)
        with ends_by_deadline(ConnectTimeout):
            conn.request("GET", "/", timeout=Timeout(total=TOTAL))
        assert not handshaking.done()
        conn.close()  # ends the other thread's handshake too
        settled(handshaking)
    finally:
        peer.close()


def test_http3_name_resolution_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("qh3")
    from hyper import HTTP30Connection
    from hyper.common import eyeballs

    release = threading.Event()

    def stuck(host: str, port: int, family: int) -> list[Any]:
        release.wait(OTHERS)  # a DNS server that does not answer
        raise socket.gaierror(socket.EAI_AGAIN, "no answer")

    monkeypatch.setattr(eyeballs, "system_resolver", stuck)
    try:
        with HTTP30Connection("stuck.test", 443, timeout=OTHERS) as conn:
            started = time.monotonic()
            with pytest.raises(ConnectTimeout, match=r"resolving stuck\.test"):
                conn.request("GET", "/", timeout=Timeout(total=TOTAL))
            elapsed = time.monotonic() - started
    finally:
        release.set()
    assert TOTAL - 0.01 <= elapsed < TOTAL + SLACK


# -- the requests adapter -----------------------------------------------------------------------


def test_adapter_pool_wait_ends_at_the_deadline(scripted_raw_server: Any) -> None:
    responder = http11_responder({"/": Reply(200, body=b"held")})
    with scripted_raw_server(responder) as server:
        adapter = HTTP20Adapter(pool_maxsize=1, pool_block=True)
        with session_with(adapter) as session:
            url = f"http://{server.host}:{server.port}/"
            holding = session.get(url, stream=True, timeout=OTHERS)  # keeps the one connection
            started = time.monotonic()
            with pytest.raises(requests.exceptions.ReadTimeout) as info:
                session.get(url, timeout=urllib3.Timeout(connect=OTHERS, total=TOTAL))
            elapsed = time.monotonic() - started
            holding.close()
    assert isinstance(info.value.__cause__, DeadlineExceeded)
    assert TOTAL - 0.01 <= elapsed < TOTAL + SLACK


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(503, [("Retry-After", "30")], b"busy"), id="retry-after"),
        pytest.param(Reply(503, [], b"busy"), id="backoff"),
    ],
)
def test_adapter_does_not_wait_out_a_backoff_past_the_deadline(
    scripted_raw_server: Any, reply: Reply
) -> None:
    responder = http11_responder({"/": reply})
    # The second retry's backoff is 2 x 30 s; a Retry-After of 30 s applies at once.
    retries = Retry(total=3, status_forcelist=[503], backoff_factor=30)
    with (
        scripted_raw_server(responder) as server,
        session_with(HTTP20Adapter(max_retries=retries)) as session,
    ):
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout) as info:
            session.get(
                f"http://{server.host}:{server.port}/",
                timeout=urllib3.Timeout(connect=OTHERS, read=OTHERS, total=3 * TOTAL),
            )
        elapsed = time.monotonic() - started
    cause = info.value.__cause__
    assert isinstance(cause, DeadlineExceeded)
    assert "past the request's total deadline" in str(cause)
    assert elapsed < 3 * TOTAL + SLACK
