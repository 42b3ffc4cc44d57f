"""Tests for hyper.common.bufsocket.BufferedSocket over real socket pairs (plain and TLS)."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hyper.common.bufsocket import DEFAULT_BUFFER_SIZE, WATCH_INTERVAL, BufferedSocket
from hyper.common.exceptions import (
    ConnectionClosed,
    HyperError,
    LineTooLongError,
    ReadTimeout,
    SocketError,
    SocketTimeout,
    TLSError,
)
from hyper.tls import TLSChannel, start_tls

#: Upper bound on any blocking socket operation in this module, so a bug cannot hang the run.
SAFETY_TIMEOUT = 5.0


class ChoppySocket:
    """
    A real socket whose reads return at most ``chunk`` bytes, so that data sent at once still
    arrives in many pieces; counts the reads it serves.
    """

    def __init__(self, sock: socket.socket, chunk: int) -> None:
        self._sock = sock
        self.chunk = chunk
        self.reads = 0

    def recv_into(self, view: memoryview) -> int:
        self.reads += 1
        return self._sock.recv_into(view[: self.chunk])

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected TCP sockets over the loopback interface: (ours, peer's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(SAFETY_TIMEOUT)
        ours = socket.create_connection(listener.getsockname(), timeout=SAFETY_TIMEOUT)
        peer, _ = listener.accept()
    peer.settimeout(SAFETY_TIMEOUT)
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()


def start_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``target`` in a daemon thread; exceptions it raises are collected in the list."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by join_thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def join_thread(thread: threading.Thread, errors: list[BaseException]) -> None:
    thread.join(SAFETY_TIMEOUT)
    assert not thread.is_alive(), "helper thread did not finish"
    if errors:
        raise errors[0]


# -- construction ------------------------------------------------------------------------------


def test_properties(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    buffered = BufferedSocket(ours)
    assert buffered.socket is ours
    assert buffered.buffer_size == DEFAULT_BUFFER_SIZE == 64 * 1024
    assert buffered.buffered == 0
    assert buffered.fileno() == ours.fileno()
    assert BufferedSocket(ours, buffer_size=1024).buffer_size == 1024


def test_buffer_must_be_at_least_1024_bytes(pair: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(ValueError, match="at least 1024"):
        BufferedSocket(pair[0], buffer_size=1023)


def test_settimeout_is_applied_by_the_wrapper(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    ours.settimeout(2.5)
    buffered = BufferedSocket(ours)
    # The wrapper takes over the socket's timeout and keeps the socket itself non-blocking.
    assert buffered.gettimeout() == 2.5
    assert ours.gettimeout() == 0.0
    buffered.settimeout(1.5)
    assert buffered.gettimeout() == 1.5
    buffered.settimeout(None)
    assert buffered.gettimeout() is None
    assert buffered.release() is ours
    assert ours.gettimeout() is None


# -- recv --------------------------------------------------------------------------------------


def test_recv_returns_a_memoryview_of_what_arrived(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"hello")
    view = buffered.recv()
    assert isinstance(view, memoryview)
    assert bytes(view) == b"hello"
    assert buffered.buffered == 0


def test_recv_amount_leaves_the_rest_buffered(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    choppy = ChoppySocket(ours, chunk=1 << 20)
    buffered = BufferedSocket(choppy)  # type: ignore[arg-type]
    peer.sendall(b"abcdef")
    assert bytes(buffered.recv(2)) == b"ab"
    assert buffered.buffered == 4
    assert bytes(buffered.recv(3)) == b"cde"
    assert bytes(buffered.recv()) == b"f"
    assert choppy.reads == 1  # served from the buffer, no further socket reads


def test_recv_returns_buffered_data_before_reading_again(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"abc")
    assert bytes(buffered.recv(1)) == b"a"
    peer.sendall(b"def")
    assert bytes(buffered.recv()) == b"bc"  # only what was buffered
    assert bytes(buffered.recv()) == b"def"  # then one new read


def test_recv_does_one_read_only(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    choppy = ChoppySocket(ours, chunk=4)
    buffered = BufferedSocket(choppy)  # type: ignore[arg-type]
    peer.sendall(b"0123456789")
    assert bytes(buffered.recv()) == b"0123"
    assert choppy.reads == 1
    assert bytes(buffered.recv(100)) == b"4567"
    assert choppy.reads == 2


def test_recv_at_eof_returns_an_empty_view(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"last")
    peer.close()
    assert bytes(buffered.recv()) == b"last"
    for _ in range(2):
        view = buffered.recv()
        assert isinstance(view, memoryview)
        assert len(view) == 0


# -- read_exact --------------------------------------------------------------------------------


def test_read_exact_across_many_small_reads(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    choppy = ChoppySocket(ours, chunk=3)
    buffered = BufferedSocket(choppy)  # type: ignore[arg-type]
    payload = bytes(range(100))
    for start in range(0, 100, 10):
        peer.sendall(payload[start : start + 10])
    result = buffered.read_exact(100)
    assert type(result) is bytes
    assert result == payload
    assert choppy.reads == 34  # ceil(100 / 3)


def test_read_exact_keeps_what_follows(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"HEADbody-rest")
    assert buffered.read_exact(4) == b"HEAD"
    assert buffered.read_exact(4) == b"body"
    assert bytes(buffered.recv()) == b"-rest"


def test_read_exact_zero(pair: tuple[socket.socket, socket.socket]) -> None:
    buffered = BufferedSocket(pair[0])
    assert buffered.read_exact(0) == b""


def test_read_exact_larger_than_the_buffer(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    payload = os.urandom(300_000)
    thread, errors = start_thread(lambda: peer.sendall(payload))
    try:
        assert buffered.read_exact(len(payload)) == payload
    finally:
        join_thread(thread, errors)


def test_read_exact_connection_closed_midway(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"12345")
    peer.close()
    with pytest.raises(ConnectionClosed, match="after 5 of 10"):
        buffered.read_exact(10)


def test_read_exact_connection_closed_before_anything(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    peer.close()
    with pytest.raises(ConnectionClosed, match="after 0 of 3"):
        BufferedSocket(ours).read_exact(3)


# -- readline ----------------------------------------------------------------------------------


def test_readline_lf_and_crlf(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"first\nsecond\r\n\r\nrest")
    line = buffered.readline()
    assert isinstance(line, memoryview)
    assert bytes(line) == b"first\n"
    assert bytes(buffered.readline()) == b"second\r\n"
    assert bytes(buffered.readline()) == b"\r\n"
    assert buffered.buffered == 4
    assert bytes(buffered.recv()) == b"rest"


def test_readline_split_across_reads(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    choppy = ChoppySocket(ours, chunk=2)
    buffered = BufferedSocket(choppy)  # type: ignore[arg-type]
    peer.sendall(b"HTTP/1.1 200 OK\r\n")
    peer.sendall(b"Server: x\r\n")
    assert bytes(buffered.readline()) == b"HTTP/1.1 200 OK\r\n"
    assert bytes(buffered.readline()) == b"Server: x\r\n"
    assert choppy.reads == 14


def test_readline_line_split_across_sends(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"first\npar")
    assert bytes(buffered.readline()) == b"first\n"
    assert buffered.buffered == 3  # "par" waits in the buffer for the rest of its line
    peer.sendall(b"tial\nnext\n")
    assert bytes(buffered.readline()) == b"partial\n"
    assert bytes(buffered.readline()) == b"next\n"


def test_readline_partial_line_at_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"line\nno newline")
    peer.close()
    assert bytes(buffered.readline()) == b"line\n"
    assert bytes(buffered.readline()) == b"no newline"
    assert bytes(buffered.readline()) == b""
    assert bytes(buffered.readline()) == b""


def test_readline_at_clean_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.close()
    assert bytes(BufferedSocket(ours).readline()) == b""


def test_readline_limit_is_inclusive(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"012345678\n")  # 10 bytes with its newline
    assert bytes(buffered.readline(limit=10)) == b"012345678\n"


def test_readline_too_long_with_newline_in_buffer(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"0123456789\n")  # 11 bytes
    with pytest.raises(LineTooLongError, match="longer than 10"):
        buffered.readline(limit=10)


def test_readline_too_long_without_newline_does_not_wait(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(2.0)
    peer.sendall(b"x" * 20)  # no newline, and nothing more will come
    started = time.monotonic()
    with pytest.raises(LineTooLongError):
        buffered.readline(limit=10)
    assert time.monotonic() - started < 1.0


def test_readline_limit_is_capped_by_the_buffer(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    thread, errors = start_thread(lambda: peer.sendall(b"y" * 1500 + b"\n"))
    try:
        with pytest.raises(LineTooLongError, match="longer than 1024"):
            buffered.readline(limit=65536)
    finally:
        join_thread(thread, errors)


def test_readline_of_exactly_the_buffer_size_after_compaction(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    long_line = b"z" * 1023 + b"\n"
    peer.sendall(b"short\n" + long_line + b"tail\n")
    assert bytes(buffered.readline()) == b"short\n"
    assert bytes(buffered.readline()) == long_line
    assert bytes(buffered.readline()) == b"tail\n"


def test_readline_error_is_a_hyper_error(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.sendall(b"abc")
    with pytest.raises(HyperError):
        BufferedSocket(ours).readline(limit=2)


def test_buffer_compaction_with_many_lines(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    lines = [b"line %04d " % i + b"x" * (i * 7 % 150) + b"\r\n" for i in range(300)]
    payload = b"".join(lines)
    assert len(payload) > 20 * 1024
    thread, errors = start_thread(lambda: peer.sendall(payload))
    try:
        received = [bytes(buffered.readline()) for _ in lines]
    finally:
        join_thread(thread, errors)
    assert received == lines
    assert buffered.buffered == 0


def test_mixed_readline_and_read_exact_through_a_small_buffer(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # A chunked-encoding-like stream: size line, exact data, CRLF; sizes straddle the buffer.
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    sizes = [1, 5, 1000, 1023, 1024, 1025, 3000, 17, 0]
    pieces = [os.urandom(size) for size in sizes]
    stream = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for piece in pieces)
    thread, errors = start_thread(lambda: peer.sendall(stream))
    try:
        received = []
        while True:
            size = int(bytes(buffered.readline()).strip(), 16)
            received.append(buffered.read_exact(size))
            assert buffered.read_exact(2) == b"\r\n"
            if size == 0:
                break
    finally:
        join_thread(thread, errors)
    assert received == pieces


# -- can_read ----------------------------------------------------------------------------------


def test_can_read(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    assert buffered.can_read() is False
    peer.sendall(b"ab")
    assert buffered.can_read() is True  # readable on the socket
    assert bytes(buffered.recv(1)) == b"a"
    assert buffered.can_read() is True  # one byte still buffered
    assert bytes(buffered.recv()) == b"b"
    assert buffered.can_read() is False


def test_can_read_at_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.close()
    assert buffered.can_read() is True  # a read would return (empty) at once
    assert len(buffered.recv()) == 0


# -- sendall -----------------------------------------------------------------------------------


def test_sendall(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    buffered.sendall(b"bytes,")
    buffered.sendall(bytearray(b"bytearray,"))
    buffered.sendall(memoryview(b"memoryview"))
    expected = b"bytes,bytearray,memoryview"
    received = b""
    while len(received) < len(expected):
        chunk = peer.recv(100)
        assert chunk
        received += chunk
    assert received == expected


def test_sendall_large_payload(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    payload = os.urandom(1_000_000)
    reader = BufferedSocket(peer)
    thread, errors = start_thread(lambda: buffered.sendall(payload))
    try:
        assert reader.read_exact(len(payload)) == payload
    finally:
        join_thread(thread, errors)


def test_sendall_to_a_closed_peer(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.close()
    buffered = BufferedSocket(ours)
    with pytest.raises(ConnectionClosed):
        buffered.sendall(b"anyone there?")


def test_sendall_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair  # the peer never reads
    buffered = BufferedSocket(ours)
    buffered.settimeout(0.2)
    started = time.monotonic()
    with pytest.raises(SocketTimeout) as info:
        buffered.sendall(b"\0" * (16 * 1024 * 1024))
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value, TimeoutError)


# -- watched sends: taking in what the peer says meanwhile --------------------------------------


@contextlib.contextmanager
def draining_peer(
    pair: tuple[socket.socket, socket.socket], says: bytes
) -> Iterator[tuple[BufferedSocket, list[int]]]:
    """Our end of ``pair`` as a BufferedSocket, with the peer having sent ``says`` and then
    reading everything in a thread. On exit our side is shut and the list gets the count of
    bytes the peer read."""
    ours, peer = pair
    peer.sendall(says)
    counted: list[int] = []

    def drain() -> None:
        total = 0
        while data := peer.recv(65536):
            total += len(data)
        counted.append(total)

    thread, errors = start_thread(drain)
    try:
        yield BufferedSocket(ours), counted
    finally:
        ours.shutdown(socket.SHUT_WR)
        join_thread(thread, errors)


def test_a_watched_send_that_waits_stops_when_the_peer_answers(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = tcp_pair  # the peer reads nothing
    # Small socket buffers: the send has to wait long before WATCH_INTERVAL bytes went out.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.sendall(b"no thanks")
    buffered = BufferedSocket(ours)
    seen: list[bytes] = []

    def watch() -> bool:
        seen.append(bytes(buffered.peek()))
        return True

    assert buffered.sendall(b"\0" * (WATCH_INTERVAL // 2), watch) is False
    assert seen == [b"no thanks"]
    assert bytes(buffered.recv()) == b"no thanks"  # kept for the reads that follow


def test_a_watched_send_that_never_waits_still_sees_the_answer(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    payload = b"\0" * (64 * 1024 * 1024)
    with draining_peer(tcp_pair, b"no thanks") as (buffered, counted):
        assert buffered.sendall(payload, lambda: True) is False
        assert bytes(buffered.peek()) == b"no thanks"
    assert counted[0] < len(payload)


def test_a_watch_that_says_go_on_lets_the_send_finish(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    calls: list[int] = []
    payload = os.urandom(4 * 1024 * 1024)
    with draining_peer(tcp_pair, b"go on") as (buffered, counted):
        assert buffered.sendall(payload, lambda: bool(calls.append(buffered.buffered))) is True
    assert counted == [len(payload)]
    assert calls == [5]  # called once, when the answer came
    assert bytes(buffered.recv()) == b"go on"


def test_a_watched_tls_send_stops_when_the_peer_answers(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    done = threading.Event()

    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"no thanks")
        assert done.wait(SAFETY_TIMEOUT)  # and read nothing meanwhile

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client)
    try:
        assert buffered.sendall(b"\0" * (64 * 1024 * 1024), lambda: True) is False
        assert bytes(buffered.recv()) == b"no thanks"
    finally:
        done.set()
        buffered.close()
        join_thread(thread, errors)


def test_receive_available_takes_in_without_waiting(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = tcp_pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(SAFETY_TIMEOUT)
    started = time.monotonic()
    assert buffered.receive_available() is False
    assert time.monotonic() - started < SAFETY_TIMEOUT / 2
    peer.sendall(b"first line\n")
    assert buffered.receive_available() is True
    assert buffered.buffered == len(b"first line\n")
    assert bytes(buffered.readline()) == b"first line\n"


def test_receive_available_keeps_a_reset_for_after_the_data(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = tcp_pair
    peer.sendall(b"last words")
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    buffered = BufferedSocket(ours)
    assert buffered.receive_available() is True  # the data, then the reset: not raised
    assert bytes(buffered.recv()) == b"last words"
    with pytest.raises(ConnectionClosed, match="reset"):
        buffered.recv()


# -- send_nowait ---------------------------------------------------------------------------------


def receive_exactly(reader: BufferedSocket, size: int) -> bytes:
    """Read ``size`` bytes through ``reader`` (bounded by its socket's timeout)."""
    return reader.read_exact(size)


def test_send_nowait_keeps_what_the_socket_cannot_take(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    first, second = os.urandom(4_000_000), os.urandom(100)
    started = time.monotonic()
    assert buffered.send_nowait(first) is False  # more than the socket buffers hold
    assert buffered.send_nowait(second) is False  # queued behind, in order
    assert time.monotonic() - started < 1.0  # never waited for the peer
    unsent = buffered.unsent
    assert 0 < unsent <= len(first) + len(second)
    received: list[bytes] = []
    reader = BufferedSocket(peer)
    thread, errors = start_thread(
        lambda: received.append(receive_exactly(reader, len(first) + len(second)))
    )
    try:
        while buffered.unsent:
            buffered.wait_io(SAFETY_TIMEOUT, True)  # returns once the socket takes more
            buffered.send_nowait()
    finally:
        join_thread(thread, errors)
    assert received == [first + second]


def test_send_nowait_sends_at_once_when_there_is_room(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    assert buffered.send_nowait(b"hello, ") is True
    assert buffered.send_nowait(memoryview(bytearray(b"world"))) is True
    assert buffered.unsent == 0
    assert receive_exactly(BufferedSocket(peer), 12) == b"hello, world"


def test_wait_io_without_writing_waits_for_data_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    buffered = BufferedSocket(ours)
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        buffered.wait_io(0.2, False)  # writable all along, but nothing is queued
    assert time.monotonic() - started >= 0.19


def test_sendall_sends_what_send_nowait_left_first(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    queued = os.urandom(4_000_000)
    buffered.send_nowait(queued)
    reader = BufferedSocket(peer)
    thread, errors = start_thread(lambda: buffered.sendall(b"after"))
    try:
        assert receive_exactly(reader, len(queued) + 5) == queued + b"after"
    finally:
        join_thread(thread, errors)


def test_send_nowait_to_a_closed_peer(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.close()
    with pytest.raises(ConnectionClosed):
        BufferedSocket(ours).send_nowait(b"anyone there?")


# -- timeouts and failures ---------------------------------------------------------------------


def test_recv_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(0.2)
    started = time.monotonic()
    with pytest.raises(ReadTimeout) as info:
        buffered.recv()
    elapsed = time.monotonic() - started
    assert 0.1 < elapsed < 1.5
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, SocketTimeout)


def test_readline_timeout_keeps_the_partial_line(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(0.2)
    peer.sendall(b"abc")
    with pytest.raises(ReadTimeout):
        buffered.readline()
    assert buffered.buffered == 3
    peer.sendall(b"def\n")
    assert bytes(buffered.readline()) == b"abcdef\n"


def test_connection_reset_is_connection_closed(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = tcp_pair
    # Closing with a zero linger time sends RST instead of FIN.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    with pytest.raises(ConnectionClosed, match="reset"):
        BufferedSocket(ours).recv()


def test_tcp_eof(tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = tcp_pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"over tcp\n")
    peer.shutdown(socket.SHUT_WR)
    assert bytes(buffered.readline()) == b"over tcp\n"
    assert len(buffered.recv()) == 0


def test_close_twice_is_harmless(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    buffered.close()
    buffered.close()
    assert ours.fileno() == -1
    assert peer.recv(10) == b""  # the peer sees the end of the stream


def test_recv_after_close_is_a_socket_error(pair: tuple[socket.socket, socket.socket]) -> None:
    buffered = BufferedSocket(pair[0])
    buffered.close()
    with pytest.raises(SocketError) as info:
        buffered.recv()
    assert not isinstance(info.value, ReadTimeout)


def test_sendall_after_close_is_a_socket_error(pair: tuple[socket.socket, socket.socket]) -> None:
    buffered = BufferedSocket(pair[0])
    buffered.close()
    with pytest.raises(SocketError):
        buffered.sendall(b"x")


# -- TLS ---------------------------------------------------------------------------------------


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


def tls_pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    serve: Callable[[ssl.SSLSocket], None],
) -> tuple[TLSChannel, threading.Thread, list[BaseException]]:
    """Handshake over a socket pair (the client through hyper's TLS channel); ``serve``
    runs with the server side in a thread."""
    server_ctx, client_ctx = contexts
    ours, peer = socket.socketpair()
    ours.settimeout(SAFETY_TIMEOUT)
    peer.settimeout(SAFETY_TIMEOUT)

    def server() -> None:
        with server_ctx.wrap_socket(peer, server_side=True) as tls:
            serve(tls)

    thread, errors = start_thread(server)
    try:
        client, _ = start_tls(ours, "localhost", client_ctx)
    except BaseException:
        ours.close()
        join_thread(thread, errors)
        raise
    return client, thread, errors


def test_tls_readline_and_close_notify(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"HTTP/1.1 200 OK\r\n")
        tls.sendall(b"Content-Length: 5\r\n\r\nhello")
        # close_notify, then wait for the client's, which never comes: the client closes
        # the socket, as HTTP clients do.
        with contextlib.suppress(ssl.SSLEOFError):
            tls.unwrap()

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client, buffer_size=1024)
    try:
        assert bytes(buffered.readline()) == b"HTTP/1.1 200 OK\r\n"
        assert bytes(buffered.readline()) == b"Content-Length: 5\r\n"
        assert bytes(buffered.readline()) == b"\r\n"
        assert buffered.read_exact(5) == b"hello"
        assert len(buffered.recv()) == 0  # close_notify reads as the end of the stream
    finally:
        buffered.close()
        join_thread(thread, errors)


def test_tls_eof_without_close_notify(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"data")
        tls.shutdown(socket.SHUT_RDWR)  # TCP-level close, no close_notify

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client)
    try:
        assert bytes(buffered.recv()) == b"data"
        assert len(buffered.recv()) == 0
        assert bytes(buffered.readline()) == b""
    finally:
        buffered.close()
        join_thread(thread, errors)


def test_tls_large_read_exact(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    payload = os.urandom(200_000)

    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(payload)

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client, buffer_size=1024)
    try:
        assert buffered.read_exact(len(payload)) == payload
    finally:
        buffered.close()
        join_thread(thread, errors)


def test_tls_send_nowait_keeps_order_behind_a_full_socket(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    payload = os.urandom(3_000_000)
    may_read = threading.Event()
    received = bytearray()

    def serve(tls: ssl.SSLSocket) -> None:
        assert may_read.wait(SAFETY_TIMEOUT)
        while len(received) < len(payload) + 4:
            chunk = tls.recv(65536)
            assert chunk
            received.extend(chunk)

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client)
    try:
        assert buffered.send_nowait(payload) is False
        assert buffered.send_nowait(b"done") is False
        may_read.set()
        while buffered.unsent:
            buffered.wait_io(SAFETY_TIMEOUT, True)
            buffered.send_nowait()
    finally:
        join_thread(thread, errors)
        buffered.close()
    assert bytes(received) == payload + b"done"


def test_tls_garbage_record_is_a_tls_error(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    def serve(tls: ssl.SSLSocket) -> None:
        # Bytes written under the TLS layer: not a valid record.
        os.write(tls.fileno(), b"\x17\x03\x03\x00\x10" + b"not a real record")

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client)
    try:
        with pytest.raises(TLSError) as info:
            buffered.recv()
        assert isinstance(info.value.__cause__, ssl.SSLError)
    finally:
        buffered.close()
        join_thread(thread, errors)


def test_tls_can_read_sees_data_pending_in_the_tls_layer(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    record = bytes(range(256)) * 12  # 3,072 bytes: one TLS record

    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(record)
        tls.recv(1)  # hold the connection open until the client is done

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client, buffer_size=1024)
    try:
        assert buffered.read_exact(1024) == record[:1024]
        # The record has left the kernel; the rest of it waits, decrypted, inside TLS.
        assert buffered.buffered == 0
        assert client.ready()
        assert buffered.can_read() is True
        assert buffered.read_exact(2048) == record[1024:]
        # Full reads cannot tell whether TLS holds more; one more read finds nothing.
        assert buffered.recv_nowait() is None
        assert buffered.can_read() is False
        buffered.sendall(b"!")
    finally:
        buffered.close()
        join_thread(thread, errors)


# -- peek, advance and fill (the HTTP/1.1 parser's reads) ---------------------------------------


def take_nowait(buffered: BufferedSocket) -> bytes:
    """What recv_nowait() returns (which must be something, possibly empty)."""
    view = buffered.recv_nowait()
    assert view is not None, "recv_nowait() found nothing"
    return bytes(view)


def test_peek_advance_and_fill(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    peer.sendall(b"head|body")
    assert buffered.fill() == 9
    assert bytes(buffered.peek()) == b"head|body"
    assert bytes(buffered.peek()) == b"head|body"  # peeking consumes nothing
    buffered.advance(5)
    assert buffered.buffered == 4
    assert bytes(buffered.peek()) == b"body"
    with pytest.raises(ValueError):
        buffered.advance(5)  # past the buffered data
    assert bytes(buffered.peek()) == b"body"
    peer.sendall(b"-more")
    assert buffered.fill() == 5  # keeps what is buffered
    assert bytes(buffered.peek()) == b"body-more"
    buffered.advance(9)
    assert buffered.buffered == 0
    assert bytes(buffered.peek()) == b""


def test_fill_moves_the_unconsumed_tail_to_the_front(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A buffer full of unconsumed data: fill() says so (-1) without reading; once part of
    it is consumed, fill() moves the rest to the front and reads behind it."""
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)
    data = bytes(range(256)) * 4
    peer.sendall(data + b"T" * 2000)
    while buffered.buffered < 1024:
        assert buffered.fill() > 0
    assert bytes(buffered.peek()) == data
    assert buffered.fill() == -1
    assert bytes(buffered.peek()) == data
    buffered.advance(1014)
    assert buffered.fill() > 0
    got = bytes(buffered.peek())
    assert got.startswith(data[-10:] + b"T")
    buffered.advance(len(got))
    while len(got) < 2010:
        view = buffered.recv()
        assert view
        got += bytes(view)
    assert got == data[-10:] + b"T" * 2000


def test_the_end_of_the_stream_behind_buffered_data(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The peer closes while data is still buffered: fill() reports the end (0) and keeps the
    data, which the next reads return before the empty views of the end."""
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"abcdef")
    peer.shutdown(socket.SHUT_WR)
    assert buffered.fill() == 6
    buffered.advance(3)
    assert not buffered.at_eof
    assert buffered.fill() == 0
    assert buffered.at_eof
    assert bytes(buffered.peek()) == b"def"
    assert buffered.can_read()
    buffered.wait_io(SAFETY_TIMEOUT, False)  # returns at once
    assert bytes(buffered.recv()) == b"def"
    for _ in range(2):
        assert bytes(buffered.recv()) == b""
    assert take_nowait(buffered) == b""


def test_at_eof_is_set_only_when_the_end_is_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    peer.sendall(b"data")
    assert not buffered.at_eof
    assert buffered.read_exact(4) == b"data"
    assert not buffered.at_eof
    peer.shutdown(socket.SHUT_WR)
    assert not buffered.at_eof  # not read yet
    assert bytes(buffered.recv()) == b""
    assert buffered.at_eof


def test_grow_keeps_the_buffered_bytes(pair: tuple[socket.socket, socket.socket]) -> None:
    """grow() (a socket handed from HTTP/1.1 negotiation to HTTP/2) keeps unread data."""
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=4096)
    peer.sendall(b"0123456789")
    assert bytes(buffered.recv(4)) == b"0123"
    buffered.grow(1024 * 1024)
    assert buffered.buffer_size == 1024 * 1024
    assert bytes(buffered.recv()) == b"456789"
    buffered.grow(1024)  # never shrinks
    assert buffered.buffer_size == 1024 * 1024
    thread, errors = start_thread(lambda: peer.sendall(b"x" * 100_000))
    try:
        received = 0
        while received < 100_000:
            view = buffered.recv()
            assert view
            received += len(view)
    finally:
        join_thread(thread, errors)
    assert received == 100_000


# -- close() and wake() from another thread -----------------------------------------------------


def run_in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``target`` in a thread; return it and a list that receives its result or
    exception."""
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
    assert started.wait(SAFETY_TIMEOUT)
    return thread, outcome


def wait_until_polling(buffered: BufferedSocket, count: int = 1) -> None:
    """Wait (bounded) until ``count`` threads are inside the socket's poll."""
    tick = threading.Event()
    deadline = time.monotonic() + SAFETY_TIMEOUT
    while buffered._pollers < count:
        assert time.monotonic() < deadline, "the reader never started waiting"
        tick.wait(0.001)


def test_close_wakes_a_thread_in_wait_io(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    ours.settimeout(None)
    buffered = BufferedSocket(ours)
    thread, outcome = run_in_thread(lambda: buffered.wait_io(30, False))
    wait_until_polling(buffered)
    assert ours.fileno() >= 0  # open while the waiter is inside poll()
    started = time.monotonic()
    buffered.close()
    thread.join(SAFETY_TIMEOUT)
    assert not thread.is_alive(), "close() did not wake the waiting thread"
    assert time.monotonic() - started < 2.0
    # It returned, or said the connection was closed; it did not wait for its time-out.
    assert outcome == [None] or isinstance(outcome[0], ConnectionClosed), outcome
    # The last thread out of the wait closed the descriptors.
    assert ours.fileno() == -1
    assert buffered._waker is None
    with pytest.raises(ConnectionClosed):
        buffered.wait_io(SAFETY_TIMEOUT, False)
    buffered.close()  # again: harmless
    assert peer.recv(10) == b""  # the peer sees the end too


def test_close_wakes_a_thread_in_recv(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(30)
    thread, outcome = run_in_thread(lambda: bytes(buffered.recv()))
    wait_until_polling(buffered)
    buffered.close()
    thread.join(SAFETY_TIMEOUT)
    assert not thread.is_alive()
    assert outcome == [b""] or isinstance(outcome[0], HyperError), outcome
    assert not isinstance(outcome[0], ReadTimeout)
    assert ours.fileno() == -1


def test_close_with_two_waiters_closes_after_both_leave(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    buffered = BufferedSocket(ours)
    buffered.settimeout(30)
    first, first_outcome = run_in_thread(lambda: buffered.wait_io(30, False))
    second, second_outcome = run_in_thread(lambda: bytes(buffered.recv()))
    wait_until_polling(buffered, 2)
    buffered.close()
    for thread in (first, second):
        thread.join(SAFETY_TIMEOUT)
        assert not thread.is_alive()
    assert not isinstance(first_outcome[0], ReadTimeout), first_outcome
    assert not isinstance(second_outcome[0], ReadTimeout), second_outcome
    assert ours.fileno() == -1


def test_close_without_waiters_closes_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours)
    buffered.wake()  # nobody waits: costs nothing
    buffered.close()
    assert ours.fileno() == -1
    with pytest.raises(ConnectionClosed):
        buffered.wait_io(SAFETY_TIMEOUT, False)
    assert peer.recv(10) == b""


def test_wake_ends_a_wait_without_data(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    ours.settimeout(None)
    buffered = BufferedSocket(ours)
    thread, outcome = run_in_thread(lambda: buffered.wait_io(30, False))
    wait_until_polling(buffered)
    assert buffered._waker is not None  # made by the waiting thread before it polls
    buffered.wake()
    thread.join(SAFETY_TIMEOUT)
    assert not thread.is_alive()
    assert outcome == [None]
    assert ours.fileno() >= 0  # only woken, not closed
    assert buffered.recv_nowait() is None


def test_wake_before_the_first_wait_is_not_lost(pair: tuple[socket.socket, socket.socket]) -> None:
    """A wake() that lands before any thread has waited (no waker socket exists yet), as
    when another thread closes a stream just as the reader is about to wait, ends the next
    wait at once instead of being dropped."""
    ours, _ = pair
    buffered = BufferedSocket(ours)
    assert buffered._waker is None
    buffered.wake()
    buffered.wait_io(0.1, False)  # woken: must not time out
    # The wake-up is used up: the next wait without data times out again.
    with pytest.raises(ReadTimeout):
        buffered.wait_io(0.1, False)


def test_tls_close_wakes_a_waiting_thread(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    def serve(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"x")
        tls.recv(1)  # hold the connection open until the client closes it

    client, thread, errors = tls_pair(tls_contexts, serve)
    buffered = BufferedSocket(client)
    try:
        # TLS 1.3 session tickets come first: read up to the data, so the socket is quiet.
        buffered.wait_io(SAFETY_TIMEOUT, False)
        view = buffered.recv_nowait()
        while view is None:
            buffered.wait_io(SAFETY_TIMEOUT, False)
            view = buffered.recv_nowait()
        assert bytes(view) == b"x"
        assert not buffered.can_read()
        waiter, outcome = run_in_thread(lambda: buffered.wait_io(30, False))
        wait_until_polling(buffered)
        buffered.close()
        waiter.join(SAFETY_TIMEOUT)
        assert not waiter.is_alive()
        assert outcome == [None] or isinstance(outcome[0], ConnectionClosed), outcome
        assert buffered.socket.fileno() == -1
    finally:
        buffered.close()
        join_thread(thread, errors)
