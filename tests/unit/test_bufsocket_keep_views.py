"""
Tests for :meth:`BufferedSocket.keep_views` and the HTTP/2 stream's handling of kept views
(:meth:`Stream.take`, :meth:`Stream.take_chunk`, :meth:`Stream.own_chunks`).

A caller that keeps views into data it has taken says so with ``keep_views(reclaim)``. The
socket then appends new data after them while the free space at the end of its buffer is at
least ``_keep_room``; when it is not, it calls ``reclaim()`` once, before any byte of the
buffer is overwritten, and forgets it. These tests write a known pattern through a socket
pair and check, after every read, that every kept view still holds what it held when it was
taken, until the moment ``reclaim()`` runs.
"""

from __future__ import annotations

import socket
from typing import Any

from hyper.common.bufsocket import BufferedSocket
from hyper.http20.legacy_stream import Stream
from hyper.http20.window import FlowControlManager

#: Upper bound on any blocking operation here, so that a bug cannot hang the run.
SAFETY = 5.0


def pattern(start: int, size: int) -> bytes:
    """``size`` bytes that differ from every other offset's within 251 bytes."""
    return bytes((start + i) % 251 for i in range(size))


class Keeper:
    """Holds views taken from a socket and checks them; ``reclaim`` copies them out."""

    def __init__(self) -> None:
        self.views: list[tuple[memoryview, bytes]] = []
        self.copies: list[bytes] = []
        self.reclaims = 0

    def keep(self, view: memoryview) -> None:
        self.views.append((view, bytes(view)))

    def check(self) -> None:
        for view, expected in self.views:
            assert bytes(view) == expected, "a kept view changed before reclaim()"

    def reclaim(self) -> None:
        self.check()  # still intact at the moment the socket asks for them
        self.copies.extend(bytes(view) for view, _ in self.views)
        self.views.clear()
        self.reclaims += 1


def test_new_data_goes_after_kept_views_while_there_is_room(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=64 * 1024)
    keeper = Keeper()
    sent = 0
    piece = 4000
    # 64 KiB buffer: _keep_room is max(16 KiB + 256, 16 KiB) = 16,640 bytes, so the views
    # stay in place until less than that is free at the end.
    while True:
        peer.sendall(pattern(sent, piece))
        sent += piece
        view = buffered.recv()
        assert bytes(view) == pattern(sent - piece, piece)
        buffered.keep_views(keeper.reclaim)
        keeper.keep(view)
        keeper.check()
        if keeper.reclaims:
            break
        assert sent < 64 * 1024, "reclaim() was never called"
    # 13 pieces end at 52,000: the free space (13,536 bytes) is then under 16,640, so the
    # 14th read reclaims them before it overwrites the front of the buffer.
    assert keeper.reclaims == 1
    assert b"".join(keeper.copies) == pattern(0, 13 * piece)


def test_reclaim_is_called_once_and_then_forgotten(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=1024)  # never room enough: reclaim at once
    calls: list[int] = []
    peer.sendall(b"a" * 100)
    assert bytes(buffered.recv()) == b"a" * 100
    buffered.keep_views(lambda: calls.append(1))
    peer.sendall(b"b" * 100)
    assert bytes(buffered.recv()) == b"b" * 100
    assert calls == [1]
    peer.sendall(b"c" * 100)
    assert bytes(buffered.recv()) == b"c" * 100
    assert calls == [1], "reclaim() must be forgotten once called"


def test_unread_data_behind_kept_views_is_returned_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A partial unit given back with unread() is returned with what follows it, whether
    the buffer appends after kept views or reclaims them and compacts."""
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=64 * 1024)
    keeper = Keeper()
    sent = 0
    received = bytearray()
    for _ in range(40):
        peer.sendall(pattern(sent, 3000))
        sent += 3000
        view = buffered.recv_nowait() or buffered.recv()
        # Keep the first two thirds; give the last third back as "incomplete".
        whole = len(view) - len(view) // 3
        buffered.keep_views(keeper.reclaim)
        keeper.keep(view[:whole])
        received += view[:whole]
        buffered.unread(len(view) - whole)
        keeper.check()
    assert keeper.reclaims >= 1
    assert bytes(received) == pattern(0, len(received))


def test_grow_reclaims_first(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    buffered = BufferedSocket(ours, buffer_size=4096)
    keeper = Keeper()
    peer.sendall(b"x" * 500)
    keeper.keep(buffered.recv())
    buffered.keep_views(keeper.reclaim)
    buffered.grow(64 * 1024)
    assert keeper.reclaims == 1
    assert keeper.copies == [b"x" * 500]
    peer.sendall(b"y" * 10)
    assert bytes(buffered.recv()) == b"y" * 10


# -- the stream's side ----------------------------------------------------------------------------


def make_stream() -> Stream:
    conn: Any = None  # the connection is not used by take()/take_chunk()/own_chunks()
    return Stream(1, conn, FlowControlManager(65535))


def fill(stream: Stream, *chunks: bytes | memoryview) -> None:
    for chunk in chunks:
        stream.chunks.append(chunk)
        stream.buffered += len(chunk)


def test_take_returns_bytes_from_views() -> None:
    backing = bytearray(b"0123456789")
    stream = make_stream()
    fill(stream, memoryview(backing)[:4], b"45", memoryview(backing)[6:])
    first = stream.take(3)
    assert type(first) is bytes and first == b"012"
    rest = stream.take(None)
    assert type(rest) is bytes and rest == b"3456789"
    assert stream.buffered == 0


def test_take_of_one_view_is_a_copy() -> None:
    backing = bytearray(b"abcdef")
    stream = make_stream()
    fill(stream, memoryview(backing))
    data = stream.take(None)
    backing[:] = b"zzzzzz"
    assert type(data) is bytes and data == b"abcdef"


def test_take_of_one_bytes_chunk_is_not_copied() -> None:
    chunk = bytes(range(200))
    stream = make_stream()
    fill(stream, chunk)
    assert stream.take(None) is chunk


def test_take_chunk_returns_bytes() -> None:
    backing = bytearray(b"hello world")
    stream = make_stream()
    fill(stream, memoryview(backing)[:5], memoryview(backing)[5:])
    assert stream.take(2) == b"he"
    first = stream.take_chunk()
    second = stream.take_chunk()
    assert (type(first), type(second)) == (bytes, bytes)
    assert (first, second) == (b"llo", b" world")


def test_own_chunks_copies_views_and_keeps_the_offset() -> None:
    backing = bytearray(b"abcdefgh")
    stream = make_stream()
    fill(stream, memoryview(backing)[:4], b"EF", memoryview(backing)[6:])
    stream.holds_views = True
    assert stream.take(1) == b"a"
    stream.own_chunks()
    backing[:] = b"########"
    assert not stream.holds_views
    assert all(type(chunk) is bytes for chunk in stream.chunks)
    assert stream.take(None) == b"bcdEFgh"
