"""
Tests for :meth:`BufferedSocket.unread`, :attr:`BufferedSocket.at_eof` and
:meth:`BufferedSocket.close` from another thread, over socket pairs and a real TLS connection.

``unread(n)`` gives back the tail of the latest read as an *incomplete unit*: it stays
buffered, but no read returns it again (and no wait counts it as readable) until new data has
arrived behind it, or the peer's end of stream. The HTTP/2 session relies on this to leave a
partial frame in the socket's buffer, so a randomised frame parser checks that nothing is lost,
duplicated or reordered whatever the pieces the data arrives in.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hyper.common.bufsocket import BufferedSocket
from hyper.common.exceptions import ConnectionClosed, HyperError, ReadTimeout

#: Upper bound on any blocking operation here, so that a bug cannot hang the run.
SAFETY = 5.0
#: How long a wait that must *not* return early is given before it times out.
SHORT = 0.1

Pair = tuple[socket.socket, socket.socket]


def wrap(sock: socket.socket, buffer_size: int = 4096, timeout: float = SAFETY) -> BufferedSocket:
    """A BufferedSocket over ``sock`` with the given read timeout."""
    sock.settimeout(timeout)
    return BufferedSocket(sock, buffer_size=buffer_size)


def recv_exactly(buffered: BufferedSocket, size: int) -> bytes:
    """Read ``size`` bytes (whatever the pieces); fail on EOF."""
    parts = bytearray()
    while len(parts) < size:
        view = buffered.recv(size - len(parts))
        assert view, "unexpected end of stream"
        parts += view
    return bytes(parts)


# -- unread -------------------------------------------------------------------------------------


def test_unread_tail_comes_back_only_with_new_data(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"abcdef")
    assert bytes(recv_exactly(buffered, 6)) == b"abcdef"
    buffered.unread(2)
    assert buffered.buffered == 2
    assert buffered.recv_nowait() is None  # an incomplete unit alone is not returned
    assert buffered.buffered == 2
    assert not buffered.can_read()
    peer.sendall(b"gh")
    assert buffered.can_read()
    view = buffered.recv_nowait()
    assert view is not None and bytes(view) == b"efgh"
    assert buffered.buffered == 0
    assert buffered.recv_nowait() is None


def test_recv_waits_for_new_data_after_unread(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours, timeout=SHORT)
    peer.sendall(b"0123456789")
    assert recv_exactly(buffered, 10) == b"0123456789"
    buffered.unread(4)
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        buffered.recv()  # the held bytes alone do not satisfy a read
    assert time.monotonic() - started >= SHORT * 0.5
    assert buffered.buffered == 4  # still held after the time-out
    peer.sendall(b"AB")
    buffered.settimeout(SAFETY)
    assert bytes(buffered.recv()) == b"6789AB"


def test_wait_readable_waits_for_new_data_after_unread(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"xyz")
    assert recv_exactly(buffered, 3) == b"xyz"
    buffered.unread(3)
    with pytest.raises(ReadTimeout):
        buffered.wait_readable(SHORT)

    arrived = threading.Event()

    def waiter() -> None:
        buffered.wait_readable(SAFETY)
        arrived.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert not arrived.wait(SHORT)  # nothing new yet
    peer.sendall(b"!")
    assert arrived.wait(SAFETY)
    thread.join(SAFETY)
    assert bytes(buffered.recv()) == b"xyz!"


def test_unread_zero_is_a_no_op(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"abc")
    assert recv_exactly(buffered, 3) == b"abc"
    buffered.unread(0)
    assert buffered.buffered == 0
    assert buffered.recv_nowait() is None
    peer.sendall(b"d")
    assert buffered.can_read()
    view = buffered.recv_nowait()
    assert view is not None and bytes(view) == b"d"


def test_unread_of_the_whole_read_gives_it_all_back(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"frame")
    assert recv_exactly(buffered, 5) == b"frame"
    buffered.unread(5)
    assert buffered.recv_nowait() is None
    peer.sendall(b"-rest")
    assert bytes(buffered.recv()) == b"frame-rest"


def test_unread_after_a_partial_recv(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"abcdefgh")
    assert recv_exactly(buffered, 8) == b"abcdefgh"
    peer.sendall(b"ijklmnop")
    view = buffered.recv(3)
    assert bytes(view) == b"ijk"
    buffered.unread(1)  # "k" and the rest still buffered form the incomplete unit
    assert buffered.recv_nowait() is None
    peer.sendall(b"q")
    assert bytes(buffered.recv()) == b"klmnopq"


@pytest.mark.parametrize("amount", [-1, -100])
def test_unread_negative_is_refused(pair: Pair, amount: int) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"abc")
    recv_exactly(buffered, 3)
    with pytest.raises(ValueError):
        buffered.unread(amount)
    assert buffered.buffered == 0


def test_unread_more_than_was_read_is_refused(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    with pytest.raises(ValueError):
        buffered.unread(1)  # nothing read yet
    peer.sendall(b"abc")
    assert recv_exactly(buffered, 3) == b"abc"
    with pytest.raises(ValueError):
        buffered.unread(4)
    assert buffered.buffered == 0
    assert buffered.recv_nowait() is None  # state unchanged: still nothing held


def test_unread_more_than_the_latest_read_is_refused(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"abcdef")
    assert recv_exactly(buffered, 6) == b"abcdef"
    buffered.unread(6)
    peer.sendall(b"gh")
    assert bytes(buffered.recv(4)) == b"abcd"  # first read
    assert bytes(buffered.recv(2)) == b"ef"  # latest read: 2 bytes
    with pytest.raises(ValueError):
        buffered.unread(3)  # "d" belonged to the previous read


def test_unit_filling_the_whole_buffer_is_returned_rather_than_waited_on(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours, buffer_size=1024, timeout=SHORT)
    peer.sendall(b"x" * 1024)
    assert recv_exactly(buffered, 1024) == b"x" * 1024
    buffered.unread(1024)
    # No room for more: a read hands the unit back instead of waiting in vain.
    view = buffered.recv_nowait()
    assert view is not None and len(view) == 1024
    buffered.unread(1024)
    assert len(buffered.recv()) == 1024


def test_unread_tail_at_the_end_of_the_buffer_is_moved_and_completed(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours, buffer_size=1024)
    peer.sendall(bytes(range(256)) * 4)
    assert recv_exactly(buffered, 1024) == bytes(range(256)) * 4
    buffered.unread(10)
    peer.sendall(b"T" * 2000)
    got = bytearray()
    while len(got) < 2010:
        view = buffered.recv()
        assert view
        got += view
    assert bytes(got) == (bytes(range(256)) * 4)[-10:] + b"T" * 2000


def _frames(rng: random.Random, count: int) -> list[bytes]:
    """``count`` length-prefixed units (3-byte length, then a payload of that length)."""
    units = []
    for index in range(count):
        payload = bytes([index % 251]) * rng.choice([0, 1, 5, 100, 700, 1500])
        units.append(len(payload).to_bytes(3, "big") + payload)
    return units


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("buffer_size", [1024, 4096])
def test_parser_with_unread_reassembles_every_unit(seed: int, buffer_size: int) -> None:
    """A frame parser that takes whole units and unreads the partial tail sees exactly the
    units sent, whatever the pieces they arrive in (units up to half the buffer)."""
    rng = random.Random(seed)
    units = [u for u in _frames(rng, 120) if len(u) <= buffer_size // 2]
    stream = b"".join(units)
    ours, peer = socket.socketpair()
    try:
        buffered = wrap(ours, buffer_size=buffer_size)
        received: list[bytes] = []
        offset = 0

        def parse(view: memoryview) -> None:
            pos = 0
            while len(view) - pos >= 3:
                end = pos + 3 + int.from_bytes(view[pos : pos + 3], "big")
                if end > len(view):
                    break
                received.append(bytes(view[pos:end]))
                pos = end
            buffered.unread(len(view) - pos)

        while offset < len(stream):
            piece = rng.choice([1, 2, 3, 7, 64, 500, 1500])
            peer.sendall(stream[offset : offset + piece])
            offset += piece
            while True:
                view = buffered.recv_nowait() if rng.random() < 0.7 else None
                if view is None:
                    if not buffered.can_read():
                        break
                    view = buffered.recv()
                parse(view)
        peer.shutdown(socket.SHUT_WR)
        while True:
            view = buffered.recv()
            if not view:
                break
            parse(view)
        assert buffered.at_eof
        assert received == units
    finally:
        ours.close()
        peer.close()


# -- end of stream --------------------------------------------------------------------------------


def test_eof_after_unread_returns_the_held_bytes_then_nothing(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours, timeout=SHORT)
    peer.sendall(b"abcdef")
    peer.shutdown(socket.SHUT_WR)
    assert recv_exactly(buffered, 6) == b"abcdef"
    buffered.unread(3)
    assert buffered.can_read()  # the end of stream is there to read
    buffered.wait_readable(SAFETY)  # returns at once
    assert bytes(buffered.recv()) == b"def"  # the held bytes, at the end of stream
    assert buffered.at_eof
    assert bytes(buffered.recv()) == b""
    assert bytes(buffered.recv()) == b""  # and it stays at the end


def test_eof_after_unread_with_recv_nowait(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"partial")
    assert recv_exactly(buffered, 7) == b"partial"
    assert not buffered.at_eof
    buffered.unread(4)
    assert buffered.recv_nowait() is None
    peer.close()
    buffered.wait_readable(SAFETY)
    view = buffered.recv_nowait()
    assert view is not None and bytes(view) == b"tial"
    assert buffered.at_eof
    view = buffered.recv_nowait()
    assert view is not None and bytes(view) == b""


def test_at_eof_is_set_only_when_the_end_is_read(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    peer.sendall(b"data")
    assert not buffered.at_eof
    assert recv_exactly(buffered, 4) == b"data"
    assert not buffered.at_eof
    peer.shutdown(socket.SHUT_WR)
    assert bytes(buffered.recv()) == b""
    assert buffered.at_eof


# -- close() from another thread ------------------------------------------------------------------


def _run(target: Callable[[], object]) -> tuple[threading.Thread, threading.Event, list[object]]:
    """Run ``target`` in a thread; return it, an event set when it has started, and a list
    that receives its result or exception."""
    started = threading.Event()
    outcome: list[object] = []

    def body() -> None:
        started.set()
        try:
            outcome.append(target())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    assert started.wait(SAFETY)
    return thread, started, outcome


def _wait_until_polling(buffered: BufferedSocket, count: int = 1) -> None:
    """Wait (bounded) until ``count`` threads are inside the socket's poll."""
    tick = threading.Event()
    deadline = time.monotonic() + SAFETY
    while buffered._pollers < count:
        assert time.monotonic() < deadline, "the reader never started waiting"
        tick.wait(0.001)


def test_close_wakes_a_thread_in_wait_readable(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours, timeout=None)
    thread, _, outcome = _run(lambda: buffered.wait_readable(30))
    _wait_until_polling(buffered)
    assert ours.fileno() >= 0  # open while the waiter is inside poll()
    started = time.monotonic()
    buffered.close()
    thread.join(SAFETY)
    assert not thread.is_alive(), "close() did not wake the waiting thread"
    assert time.monotonic() - started < 2.0
    # It returned, or said the connection was closed; it did not wait for its time-out.
    assert outcome == [None] or isinstance(outcome[0], ConnectionClosed), outcome
    # The last thread out of the wait closed the descriptors.
    assert ours.fileno() == -1
    assert buffered._waker is None
    with pytest.raises(ConnectionClosed):
        buffered.wait_readable(SAFETY)
    buffered.close()  # again: harmless
    peer.settimeout(SAFETY)
    assert peer.recv(10) == b""  # the peer sees the end too


def test_close_wakes_a_thread_in_recv(pair: Pair) -> None:
    ours, _ = pair
    buffered = wrap(ours, timeout=30)
    thread, _, outcome = _run(lambda: bytes(buffered.recv()))
    _wait_until_polling(buffered)
    buffered.close()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert outcome == [b""] or isinstance(outcome[0], HyperError), outcome
    assert not isinstance(outcome[0], ReadTimeout)
    assert ours.fileno() == -1


def test_close_with_two_waiters_closes_after_both_leave(pair: Pair) -> None:
    ours, _ = pair
    buffered = wrap(ours, timeout=30)
    first, _, first_outcome = _run(lambda: buffered.wait_readable(30))
    second, _, second_outcome = _run(lambda: bytes(buffered.recv()))
    _wait_until_polling(buffered, 2)
    buffered.close()
    for thread in (first, second):
        thread.join(SAFETY)
        assert not thread.is_alive()
    assert not isinstance(first_outcome[0], ReadTimeout), first_outcome
    assert not isinstance(second_outcome[0], ReadTimeout), second_outcome
    assert ours.fileno() == -1


def test_close_without_waiters_closes_at_once(pair: Pair) -> None:
    ours, peer = pair
    buffered = wrap(ours)
    buffered.wake()  # nobody waits: costs nothing
    buffered.close()
    assert ours.fileno() == -1
    with pytest.raises(ConnectionClosed):
        buffered.wait_readable(SAFETY)
    assert peer.recv(10) == b""


def test_wake_ends_a_wait_without_data(pair: Pair) -> None:
    ours, _ = pair
    buffered = wrap(ours, timeout=None)
    thread, _, outcome = _run(lambda: buffered.wait_readable(30))
    _wait_until_polling(buffered)
    tick = threading.Event()
    deadline = time.monotonic() + SAFETY
    while buffered._waker is None:  # made by the waiting thread on first use
        assert time.monotonic() < deadline
        tick.wait(0.001)
    buffered.wake()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert outcome == [None]
    assert ours.fileno() >= 0  # only woken, not closed
    assert buffered.recv_nowait() is None


def test_wake_before_the_first_wait_is_not_lost(pair: Pair) -> None:
    """A wake() that lands before any thread has waited (no waker socket exists yet), as
    when another thread closes a stream just as the reader is about to wait, ends the next
    wait at once instead of being dropped."""
    ours, _ = pair
    ours.settimeout(SAFETY)
    buffered = BufferedSocket(ours, buffer_size=4096)
    assert buffered._waker is None
    buffered.wake()
    started = time.monotonic()
    buffered.wait_readable(SHORT)  # woken: must not time out
    assert time.monotonic() - started < SHORT
    # The wake-up is used up: the next wait without data times out again.
    with pytest.raises(ReadTimeout):
        buffered.wait_readable(SHORT)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) sharing a throw-away CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def tls_session(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Iterator[tuple[BufferedSocket, Callable[[bytes], None], Callable[[], None]]]:
    """A BufferedSocket over TLS, a function making the server send bytes (done when it
    returns), and one making the server close the connection."""
    server_ctx, client_ctx = tls_contexts
    ours, peer = socket.socketpair()
    ours.settimeout(SAFETY)
    peer.settimeout(SAFETY)
    orders: list[bytes | None] = []
    ready = threading.Condition()
    done = threading.Event()
    errors: list[BaseException] = []

    def server() -> None:
        try:
            with server_ctx.wrap_socket(peer, server_side=True) as tls:
                while True:
                    with ready:
                        assert ready.wait_for(lambda: orders, SAFETY)
                        order = orders.pop(0)
                    if order is None:
                        tls.shutdown(socket.SHUT_RDWR)
                        done.set()
                        return
                    tls.sendall(order)
                    done.set()
        except BaseException as exc:
            errors.append(exc)
            done.set()

    thread = threading.Thread(target=server, daemon=True)
    thread.start()
    client = client_ctx.wrap_socket(ours, server_hostname="localhost")
    buffered = BufferedSocket(client, buffer_size=4096)

    def order(item: bytes | None) -> None:
        done.clear()
        with ready:
            orders.append(item)
            ready.notify()
        assert done.wait(SAFETY)
        assert not errors, errors

    try:
        yield buffered, order, lambda: order(None)
    finally:
        if thread.is_alive():
            with ready:
                orders.append(None)
                ready.notify()
        buffered.close()
        thread.join(SAFETY)
        peer.close()


def test_tls_unread_semantics(
    tls_session: tuple[BufferedSocket, Callable[[bytes], None], Callable[[], None]],
) -> None:
    buffered, send, close = tls_session
    send(b"abcdef")
    buffered.wait_readable(SAFETY)
    got = bytearray()
    while len(got) < 6:
        got += buffered.recv()
    assert bytes(got) == b"abcdef"
    buffered.unread(3)
    assert buffered.recv_nowait() is None
    assert not buffered.can_read()
    with pytest.raises(ReadTimeout):
        buffered.wait_readable(SHORT)
    send(b"gh")
    buffered.wait_readable(SAFETY)
    view = buffered.recv_nowait()
    while view is None:  # the record may still be in transit
        buffered.wait_readable(SAFETY)
        view = buffered.recv_nowait()
    data = bytes(view)
    assert data.startswith(b"def")
    while len(data) < 5:
        data += bytes(buffered.recv())
    assert data == b"defgh"
    # At the end of the stream, held bytes come back, then nothing.
    send(b"xyz")
    data = b""
    while len(data) < 3:
        data += bytes(buffered.recv())
    assert data == b"xyz"
    buffered.unread(2)
    close()
    buffered.settimeout(SAFETY)
    assert bytes(buffered.recv()) == b"yz"
    assert buffered.at_eof
    assert bytes(buffered.recv()) == b""


def test_tls_close_wakes_a_waiting_thread(
    tls_session: tuple[BufferedSocket, Callable[[bytes], None], Callable[[], None]],
) -> None:
    buffered, send, _ = tls_session
    send(b"x")  # TLS 1.3 session tickets come first: read them, so the socket is quiet
    buffered.wait_readable(SAFETY)
    while buffered.recv_nowait() is None:
        buffered.wait_readable(SAFETY)
    assert not buffered.can_read()
    thread, _, outcome = _run(lambda: buffered.wait_readable(30))
    _wait_until_polling(buffered)
    buffered.close()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert outcome == [None] or isinstance(outcome[0], ConnectionClosed), outcome
    assert buffered.socket.fileno() == -1


def test_grow_keeps_the_buffered_bytes(pair: Pair) -> None:
    """grow() (a socket handed from HTTP/1.1 negotiation to HTTP/2) keeps unread data."""
    ours, peer = pair
    ours.settimeout(SAFETY)
    buffered = BufferedSocket(ours, buffer_size=4096)
    peer.sendall(b"0123456789")
    assert bytes(buffered.recv(4)) == b"0123"
    buffered.grow(1024 * 1024)
    assert buffered.buffer_size == 1024 * 1024
    assert bytes(buffered.recv()) == b"456789"
    buffered.grow(1024)  # never shrinks
    assert buffered.buffer_size == 1024 * 1024
    peer.sendall(b"x" * 100_000)
    received = 0
    while received < 100_000:
        received += len(buffered.recv())
    assert received == 100_000
