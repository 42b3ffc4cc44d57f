"""
Reading TLS through :class:`~hyper.tls.TLSChannel` and :class:`BufferedSocket`, over real TLS
connections on 127.0.0.1: what one read returns when many records have already arrived, where
it stops, and how the end of the stream and failures behind good records are reported.

One read of the socket takes every record that has arrived (up to
:data:`~hyper.tls.CIPHERTEXT_READ_SIZE` of ciphertext) and the channel decrypts them in memory
while the buffer has room for another whole record (16 KiB + 256): small records come back
together, whatever their number. What does not fit stays in memory: the next read returns it
without touching the socket, and waiting counts it as readable. A failure (a TCP reset, a record
that fails as TLS) behind good records: the good records come first, then every later read
raises the failure as a hyper error. The end of the stream (close_notify, or the TCP close
without it) behind data: the data first, then empty reads.

The server side is TLS over memory BIOs (:class:`~tests.support.helpers.BioTLSServer`), so
a test decides exactly which records go out and knows their size on the wire. Before the
client reads, the test waits (bounded, with ``SO_RCVLOWAT`` and ``poll``, no sleeping) until
every byte of them is in the client's socket: "already arrived" is then a fact, not a
matter of timing. The client's TCP socket counts its reads, so "without touching the socket"
is checked too.
"""

from __future__ import annotations

import fcntl
import select
import socket
import ssl
import struct
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hyper import HTTP11Connection
from hyper.common.bufsocket import BufferedSocket
from hyper.common.exceptions import ConnectionClosed, ReadTimeout, TLSError
from hyper.tls import CIPHERTEXT_READ_SIZE, TLSChannel, start_tls
from tests.support.helpers import BioTLSServer, quickly

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_RCVLOWAT, POLLRDHUP and FIONREAD: Linux"
)

#: Bound on every wait, in seconds.
SAFETY = 5.0
#: Free buffer space a read needs to go on decrypting another record (hyper.tls._RECORD_SIZE).
RECORD_ROOM = 16 * 1024 + 256
#: The largest record payload.
FULL_RECORD = 16 * 1024


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) sharing a throw-away CA. The server sends no TLS 1.3
    session tickets: the only records on the wire are those a test writes."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server_ctx.num_tickets = 0
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


class CountingSocket:
    """The client's TCP socket, counting the reads the TLS channel makes of it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.reads = 0

    def recv_into(self, view: memoryview) -> int:
        self.reads += 1
        return self._sock.recv_into(view)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Server:
    """The server end of one TLS connection: records written one by one, sent in one go."""

    def __init__(self, sock: socket.socket, tls: BioTLSServer) -> None:
        self.sock = sock
        self.tls = tls

    def record(self, plaintext: bytes) -> bytes:
        """``plaintext`` as one TLS record (bytes for the wire, not sent yet)."""
        assert len(plaintext) <= FULL_RECORD
        assert not self.tls.outgoing.pending
        self.tls.tls.write(plaintext)
        wire = self.tls.outgoing.read()
        assert wire, "no record came out"
        return wire

    def close_notify(self) -> bytes:
        """The close_notify alert (bytes for the wire, not sent yet)."""
        with pytest.raises(ssl.SSLWantReadError):
            self.tls.tls.unwrap()  # sends close_notify, then would wait for the client's
        return self.tls.outgoing.read()

    def send(self, wire: bytes) -> int:
        """Write ``wire`` to the TCP socket; return its size."""
        self.sock.sendall(wire)
        return len(wire)

    def reset(self) -> None:
        """Close the TCP connection with a reset (RST), not a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def socket_pair(
    opened: list[socket.socket], unix: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) pair: TCP on 127.0.0.1, or a Unix socket pair; both
    with the safety timeout, both added to ``opened`` for the test to close."""
    if unix:
        client_raw, server_sock = socket.socketpair()
        opened.append(client_raw)
    else:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(SAFETY)
            client_raw = socket.create_connection(listener.getsockname(), timeout=SAFETY)
            opened.append(client_raw)
            server_sock, _ = listener.accept()
    client_raw.settimeout(SAFETY)
    opened.append(server_sock)
    server_sock.settimeout(SAFETY)
    return client_raw, server_sock


def connect(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    opened: list[socket.socket],
    unix: bool = False,
) -> tuple[TLSChannel, socket.socket, BioTLSServer]:
    """A TCP connection on 127.0.0.1 (or a Unix socket pair) and the TLS handshake over it
    (the client through :func:`start_tls`, the server over memory BIOs in a thread). The
    server has written nothing after the handshake."""
    client_raw, server_sock = socket_pair(opened, unix)
    bio = BioTLSServer(server_sock, server_ctx)
    failures: list[BaseException] = []

    def handshake() -> None:
        try:
            bio.handshake()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=handshake, daemon=True)
    thread.start()
    channel, _ = start_tls(client_raw, "localhost", client_ctx)
    thread.join(SAFETY)
    assert not thread.is_alive() and not failures, failures
    return channel, server_sock, bio


@pytest.fixture
def tls_connection(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Iterator[Callable[..., tuple[BufferedSocket, Server]]]:
    """Factory: a TLS connection over TCP on 127.0.0.1 (over a Unix socket pair with
    ``unix=True``); returns (the client's BufferedSocket with the given buffer size, the
    server end). The client's socket (``buffered.socket``) is a :class:`CountingSocket`."""
    server_ctx, client_ctx = tls_contexts
    opened: list[socket.socket] = []
    buffers: list[BufferedSocket] = []

    def make(buffer_size: int, unix: bool = False) -> tuple[BufferedSocket, Server]:
        channel, server_sock, bio = connect(server_ctx, client_ctx, opened, unix)
        channel.sock = CountingSocket(channel.sock)  # type: ignore[assignment]
        buffered = BufferedSocket(channel, buffer_size=buffer_size)
        buffers.append(buffered)
        return buffered, Server(server_sock, bio)

    yield make
    for buffered in buffers:
        buffered.close()
    for sock in opened:
        sock.close()


# -- helpers --------------------------------------------------------------------------------------


def socket_reads(buffered: BufferedSocket) -> int:
    """How many times the TLS channel has read the client's socket."""
    sock = buffered.socket
    assert isinstance(sock, CountingSocket)
    return sock.reads


def channel(buffered: BufferedSocket) -> TLSChannel:
    tls = buffered.tls
    assert tls is not None
    return tls


def queued(sock: Any) -> int:
    """How many bytes wait in ``sock``'s kernel receive queue."""
    out = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", out)[0])


def wait_arrived(buffered: BufferedSocket, size: int) -> None:
    """Wait (bounded) until ``size`` bytes are in the client's receive queue, and check it."""
    sock = buffered.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        assert poller.poll(int(SAFETY * 1000)), f"{size} bytes did not arrive in time"
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
    assert queued(sock) >= size


def wait_end_of_stream(buffered: BufferedSocket) -> None:
    """Wait (bounded) until the server's FIN or RST has arrived (after all its data)."""
    poller = select.poll()
    poller.register(buffered.socket.fileno(), select.POLLRDHUP)
    events = poller.poll(int(SAFETY * 1000))
    assert events, "the end of the stream did not arrive in time"


def bounded(action: Callable[[], Any], seconds: float = SAFETY) -> Any:
    """Run ``action`` in a thread and return its result, failing (instead of hanging) if it
    takes longer than ``seconds``; its exception is raised here."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(action())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s (an endless loop?)"
    if failure:
        raise failure[0]
    return outcome[0]


def records(count: int, size: int) -> list[bytes]:
    """``count`` distinct payloads of ``size`` bytes."""
    return [bytes([65 + n % 26]) * size for n in range(count)]


def send_records(server: Server, buffered: BufferedSocket, payloads: list[bytes]) -> None:
    """Send each payload as its own record, all in one write, and wait until they are in."""
    wire = b"".join(server.record(payload) for payload in payloads)
    wait_arrived(buffered, server.send(wire))


def take(view: memoryview | None) -> bytes:
    """The bytes of a read (which must have returned something)."""
    assert view is not None, "the read returned nothing"
    return bytes(view)


# -- many records in one read ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["recv_nowait", "recv"])
@pytest.mark.parametrize(("count", "size"), [(2, 1), (40, 50), (120, 300)])
def test_one_read_returns_every_record_already_arrived(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
    method: str,
    count: int,
    size: int,
) -> None:
    """Small records that arrived together come back in one read, from one read of the
    socket (120 records of 300 bytes: more ciphertext than the channel hands OpenSSL at a
    time)."""
    buffered, server = tls_connection(256 * 1024)
    payloads = records(count, size)
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(getattr(buffered, method)()) == b"".join(payloads)
        assert socket_reads(buffered) == 1
        assert queued(buffered.socket) == 0
        assert not channel(buffered).ready()
        assert not buffered.can_read()
        # Nothing more has arrived: the next read finds nothing, without waiting.
        assert buffered.recv_nowait() is None
    assert socket_reads(buffered) == 2


def test_full_and_small_records_come_back_together(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """Records of every size, full ones first, then small ones: all in one read."""
    buffered, server = tls_connection(256 * 1024)
    payloads = [b"F" * FULL_RECORD, b"b" * 4096, b"s" * 100, b"t" * 100, b"u" * 200]
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"".join(payloads)
        assert buffered.recv_nowait() is None
    assert socket_reads(buffered) == 2


@pytest.mark.parametrize("buffer_size", [1024, 16 * 1024, 20 * 1024, 40 * 1024, 64 * 1024])
def test_a_read_stops_when_the_buffer_has_no_room_for_another_record(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]], buffer_size: int
) -> None:
    """Records of 1000 bytes: a read takes one, then more while the free space left is at
    least RECORD_ROOM. The rest stays in the channel's memory: readable, and returned by the
    next reads, in order, without reading the socket again."""
    buffered, server = tls_connection(buffer_size)
    size = 1000
    payloads = records(60, size)
    send_records(server, buffered, payloads)
    per_read = 1
    while buffer_size - per_read * size >= RECORD_ROOM:
        per_read += 1
    assert per_read < len(payloads)  # the test needs more than one read
    got = bytearray()
    with quickly(SAFETY):
        first = take(buffered.recv_nowait())
        assert len(first) == per_read * size
        got += first
        assert queued(buffered.socket) == 0  # one read of the socket took every record
        assert channel(buffered).ready()
        assert buffered.can_read()
        buffered.wait_io(SAFETY, False)  # returns at once: the records are in memory
        while len(got) < len(payloads) * size:
            assert buffered.can_read()
            view = take(buffered.recv_nowait())
            assert len(view) == min(per_read * size, len(payloads) * size - len(got))
            got += view
        assert socket_reads(buffered) == 1
        # A read that filled the buffer cannot know whether TLS holds more: one more read
        # finds out (nothing, without waiting); after it, nothing is ready.
        assert buffered.recv_nowait() is None
        assert not channel(buffered).ready()
        assert not buffered.can_read()
    assert bytes(got) == b"".join(payloads)
    assert socket_reads(buffered) == 2


def test_a_record_larger_than_the_buffer_comes_in_pieces_from_memory(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """A 1 KiB buffer and full records: each read returns what fits, the rest of the record
    waits decrypted in the channel, and the reads after it need no socket read."""
    buffered, server = tls_connection(1024)
    payloads = [bytes(range(256)) * 64, b"x" * 3000, bytes(range(255, -1, -1)) * 64]
    send_records(server, buffered, payloads)
    got = bytearray()
    reads = 0
    with quickly(SAFETY):
        while len(got) < sum(map(len, payloads)):
            assert channel(buffered).ready() or reads == 0
            view = take(buffered.recv_nowait())
            assert 0 < len(view) <= 1024
            got += view
            reads += 1
        assert buffered.recv_nowait() is None
    assert bytes(got) == b"".join(payloads)
    assert reads >= sum(map(len, payloads)) // 1024
    assert socket_reads(buffered) == 2  # the one that brought them, the one that found none


def test_a_record_cut_by_the_size_of_a_socket_read_is_completed_by_the_next(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """More ciphertext has arrived than one read of the socket takes: the first read returns
    the records wholly within it, the next reads the socket again and returns the rest,
    beginning with the record the first read cut. Over a Unix socket pair: what the server
    has sent is then in the client's socket when its send returns (TCP's receive window
    would make "arrived" a matter of timing at this size)."""
    buffered, server = tls_connection(1024 * 1024, unix=True)
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * CIPHERTEXT_READ_SIZE)
    payloads = records(17, FULL_RECORD)
    wires = [server.record(payload) for payload in payloads]
    assert sum(map(len, wires)) > CIPHERTEXT_READ_SIZE
    whole = 0
    end = 0
    while end + len(wires[whole]) <= CIPHERTEXT_READ_SIZE:
        end += len(wires[whole])
        whole += 1
    assert end < CIPHERTEXT_READ_SIZE  # the next record is cut, not just left out
    server.send(b"".join(wires))
    assert queued(buffered.socket) == sum(map(len, wires))
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"".join(payloads[:whole])
        assert socket_reads(buffered) == 1
        assert buffered.can_read()
        assert take(buffered.recv_nowait()) == b"".join(payloads[whole:])
        assert socket_reads(buffered) == 2
        assert buffered.recv_nowait() is None


def test_idle_check_sees_data_left_in_the_channel(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """An HTTP/1.1 connection between responses: bytes the server sent that nobody asked
    for make it unusable, also when they wait in the channel's memory, not in the socket."""
    buffered, server = tls_connection(1024)
    send_records(server, buffered, [b"r" * 1000, b"junk"])
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"r" * 1000
        assert queued(buffered.socket) == 0
        assert buffered.peer_closed()


# -- the end of the stream ------------------------------------------------------------------------


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-close"])
@pytest.mark.parametrize("count", [0, 1, 5])
def test_the_end_of_the_stream_behind_records(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
    close_notify: bool,
    count: int,
) -> None:
    """Records, then the end of the stream (with or without close_notify), all arrived
    before the read: one read returns the records, and every read after it reports the
    end: an empty view, at once."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(count, 700)
    wire = b"".join(server.record(payload) for payload in payloads)
    if close_notify:
        wire += server.close_notify()
    server.send(wire)
    server.sock.shutdown(socket.SHUT_WR)
    wait_end_of_stream(buffered)
    assert take(bounded(buffered.recv_nowait)) == b"".join(payloads)
    for _ in range(3):
        assert take(bounded(buffered.recv_nowait)) == b""
    assert buffered.at_eof
    assert bytes(bounded(buffered.recv)) == b""
    assert bytes(bounded(buffered.readline)) == b""


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-close"])
def test_full_records_then_the_end_of_the_stream(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]], close_notify: bool
) -> None:
    """The same with full records, read with recv() (the HTTP/1.1 path)."""
    buffered, server = tls_connection(64 * 1024)
    payloads = [b"F" * FULL_RECORD, b"G" * FULL_RECORD]
    wire = b"".join(server.record(payload) for payload in payloads)
    if close_notify:
        wire += server.close_notify()
    server.send(wire)
    server.sock.shutdown(socket.SHUT_WR)
    wait_end_of_stream(buffered)
    assert bytes(bounded(buffered.recv)) == b"".join(payloads)
    assert bytes(bounded(buffered.recv)) == b""
    assert take(bounded(buffered.recv_nowait)) == b""


def test_close_notify_while_the_tcp_connection_stays_open(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """A server that sends close_notify and waits for the client's before closing TCP: the
    data first, then the end of the stream, read from memory (the socket shows nothing)."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(3, 400)
    wire = b"".join(server.record(payload) for payload in payloads) + server.close_notify()
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"".join(payloads)
        assert queued(buffered.socket) == 0
        assert take(buffered.recv_nowait()) == b""
        assert buffered.at_eof
        assert buffered.can_read()
        assert bytes(buffered.recv()) == b""
    assert socket_reads(buffered) == 1


def test_close_notify_behind_data_counts_as_readable(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """Data and close_notify arrive together, the TCP connection stays open: after the read
    that returns the data, the end of the stream is in memory, so a reader that waits before
    reading (HTTP/2's, HTTP/1.1's idle check) must see it at once, not wait for its timeout."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(3, 400)
    wire = b"".join(server.record(payload) for payload in payloads) + server.close_notify()
    wait_arrived(buffered, server.send(wire))
    assert take(buffered.recv_nowait()) == b"".join(payloads)
    assert buffered.can_read()
    with quickly(1.0):
        buffered.wait_io(0.5, False)
        assert take(buffered.recv_nowait()) == b""


# -- errors ---------------------------------------------------------------------------------------


def corrupted(record: bytes) -> bytes:
    """``record`` with one bit of its authentication tag flipped."""
    return record[:-1] + bytes([record[-1] ^ 0x01])


def bad_tls(server: Server, kind: str) -> bytes:
    """Bytes that fail as TLS: a record whose authentication fails, or no record at all."""
    if kind == "bad-mac":
        return corrupted(server.record(b"x" * 300))
    return b"HTTP/1.1 400 Bad Request\r\n\r\n"


@pytest.mark.parametrize("kind", ["bad-mac", "not-tls"])
@pytest.mark.parametrize("good", [1, 4])
def test_tls_error_after_good_records_is_raised_by_every_later_read(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]], kind: str, good: int
) -> None:
    """Good records, then bytes that fail as TLS, arrived together: one read returns the
    good records; the next raises TLSError (hyper's, never ssl.SSLError), and so does every
    read after it: none reads as the end of the stream."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(good, 300)
    wire = b"".join(server.record(payload) for payload in payloads) + bad_tls(server, kind)
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"".join(payloads)
        with pytest.raises(TLSError) as caught:
            bounded(buffered.recv_nowait)
        assert isinstance(caught.value.__cause__, ssl.SSLError)
        with pytest.raises(TLSError):
            bounded(buffered.recv_nowait)
        with pytest.raises(TLSError):
            bounded(buffered.recv)
        with pytest.raises(TLSError):
            bounded(buffered.readline)
    assert not buffered.at_eof
    assert socket_reads(buffered) == 1


def test_tls_error_behind_good_records_counts_as_readable(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """Good records and a record that fails authentication arrive together, the TCP
    connection stays open: after the read that returns the good records, the failure is
    in memory, so a reader that waits first must be let through to it at once."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(2, 300)
    wire = b"".join(server.record(payload) for payload in payloads) + bad_tls(server, "bad-mac")
    wait_arrived(buffered, server.send(wire))
    assert take(buffered.recv_nowait()) == b"".join(payloads)
    assert buffered.can_read()
    with quickly(1.0):
        buffered.wait_io(0.5, False)
        with pytest.raises(TLSError):
            buffered.recv_nowait()


def test_tls_error_after_a_full_record_is_raised_by_the_next_recv(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """The same with recv() (the path HTTP/1.1 takes) and a full record: were the bad record
    read as the end of the stream, a body delimited by the close would be taken as complete."""
    buffered, server = tls_connection(64 * 1024)
    full = b"F" * FULL_RECORD
    wire = server.record(full) + bad_tls(server, "bad-mac")
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert bytes(buffered.recv()) == full
        for _ in range(2):
            with pytest.raises(TLSError):
                bounded(buffered.recv)


@pytest.mark.parametrize("partial", [False, True], ids=["between-records", "mid-record"])
def test_reset_after_good_records_is_raised_by_every_later_read(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]], partial: bool
) -> None:
    """Good records, then a TCP reset (after part of another record, or not): one read
    returns the good records; the next raises ConnectionClosed, and so does every read after
    it (never an empty view: a reset is not a clean end of the stream, nor an ssl or OS
    exception)."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(3, 300)
    wire = b"".join(server.record(payload) for payload in payloads)
    if partial:
        wire += server.record(b"never whole")[:10]
    wait_arrived(buffered, server.send(wire))
    server.reset()
    wait_end_of_stream(buffered)
    assert take(bounded(buffered.recv_nowait)) == b"".join(payloads)
    with pytest.raises(ConnectionClosed, match="reset"):
        bounded(buffered.recv_nowait)
    with pytest.raises(ConnectionClosed, match="reset"):
        bounded(buffered.recv_nowait)
    with pytest.raises(ConnectionClosed, match="reset"):
        bounded(buffered.recv)
    assert not buffered.at_eof
    assert socket_reads(buffered) == 2  # the data, then the reset; later reads raise at once


def test_tls_error_is_not_taken_for_the_end_of_an_http11_body(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """What a lost error costs: an HTTP/1.1 body delimited by the end of the connection
    (no Content-Length), a full record of it, then a record that fails authentication. The
    read must raise TLSError; with the error lost it returns the first 16 KiB as the whole
    body."""
    server_ctx, client_ctx = tls_contexts
    failures: list[BaseException] = []
    full = b"A" * FULL_RECORD

    def serve(listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(SAFETY)
                bio = BioTLSServer(sock, server_ctx)
                bio.handshake()
                bio.recv()  # the request
                server = Server(sock, bio)
                head = server.record(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                server.send(head + server.record(full) + bad_tls(server, "bad-mac"))
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        except OSError:
            pass  # the client's end went first
        except BaseException as exc:
            failures.append(exc)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(SAFETY)
        thread = threading.Thread(target=serve, args=(listener,), daemon=True)
        thread.start()
        conn = HTTP11Connection(
            "localhost",
            listener.getsockname()[1],
            secure=True,
            ssl_context=client_ctx,
            timeout=SAFETY,
        )
        try:
            with quickly(SAFETY):
                conn.request("GET", "/")
                response = conn.get_response()
                assert response.status == 200
                with pytest.raises(TLSError):
                    response.read()
        finally:
            conn.close()
            thread.join(SAFETY)
    assert not thread.is_alive() and not failures, failures


# -- post-handshake messages in several records ---------------------------------------------------


def _split_records(wire: bytes) -> list[bytes]:
    """Split TLS wire bytes into records."""
    out = []
    while wire:
        end = 5 + int.from_bytes(wire[3:5], "big")
        out.append(wire[:end])
        wire = wire[end:]
    return out


def test_a_write_while_a_session_ticket_is_half_read() -> None:
    """A TLS 1.3 session ticket larger than a record (the client's certificate is in it,
    and this one is large) comes in two records; the client reads the first, then writes a
    request before the second has been read. OpenSSL then goes back to the handshake from
    the write, which needs the rest of the ticket: the write must still succeed, and the
    data behind the ticket must be read after it."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL  # the client's certificate goes in the ticket
    server_ctx.num_tickets = 1
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    names = [f"host-{n:05d}.client.example.org" for n in range(800)]
    ca.issue_cert(*names).configure_cert(client_ctx)

    opened: list[socket.socket] = []
    try:
        client_raw, server_sock = socket_pair(opened)
        bio = BioTLSServer(server_sock, server_ctx)
        failures: list[BaseException] = []

        def handshake() -> None:
            # BioTLSServer.handshake without its last flush: the ticket stays unsent.
            try:
                while True:
                    try:
                        bio.tls.do_handshake()
                        return
                    except ssl.SSLWantReadError:
                        bio.flush()
                        bio._feed()
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=handshake, daemon=True)
        thread.start()
        tls, _ = start_tls(client_raw, "localhost", client_ctx)
        thread.join(SAFETY)
        assert not thread.is_alive() and not failures, failures
        ticket = _split_records(bio.outgoing.read())
        assert len(ticket) >= 2, "the ticket fits one record: nothing to split"
        buffered = BufferedSocket(tls, buffer_size=64 * 1024)
        try:
            server_sock.sendall(ticket[0])
            wait_arrived(buffered, len(ticket[0]))
            assert buffered.recv_nowait() is None  # half a ticket: no data
            bio.tls.write(b"B" * 100)
            rest = b"".join(ticket[1:]) + bio.outgoing.read()
            server_sock.sendall(rest)
            wait_arrived(buffered, len(rest))
            buffered.sendall(b"request")
            with quickly(1.0):
                buffered.wait_io(SAFETY, False)
                assert take(buffered.recv_nowait()) == b"B" * 100
            assert bio.recv() == b"request"
        finally:
            buffered.close()
    finally:
        for sock in opened:
            sock.close()


# -- records that do not count ------------------------------------------------------------------


def test_wait_io_times_out_when_nothing_is_left(
    tls_connection: Callable[..., tuple[BufferedSocket, Server]],
) -> None:
    """After every record has been read, nothing in memory counts as readable: a wait
    times out (it does not return at once and leave a reader spinning)."""
    buffered, server = tls_connection(64 * 1024)
    send_records(server, buffered, records(3, 40))
    assert take(buffered.recv_nowait()) == b"".join(records(3, 40))
    assert not buffered.can_read()
    with pytest.raises(ReadTimeout):
        buffered.wait_io(0.05, False)
