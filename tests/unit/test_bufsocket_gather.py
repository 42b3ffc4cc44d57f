"""
Gathering TLS records in one read: ``BufferedSocket.recv_nowait(gather=True)`` and
``_fill_ready(gather)``, over real TLS connections on 127.0.0.1.

One TLS read returns one record. Without ``gather``, ``recv_nowait`` returns a small record
on its own; with it, it goes on reading the records that have already arrived, small ones
included, while the buffer has room for another whole record (16 KiB + 256), and stops at
the first read that would block, at the end of the stream, or at a socket or TLS error
(which the next read reports).

The server side is TLS over memory BIOs (:class:`~tests.support.helpers.BioTLSServer`), so
a test decides exactly which records go out and knows their size on the wire. Before the
client reads, the test waits (bounded, with ``SO_RCVLOWAT`` and ``poll``, no sleeping) until
every byte of them is in the client's socket: "already arrived" is then a fact, not a
matter of timing.
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
from hyper.common import readahead
from hyper.common.bufsocket import BufferedSocket
from hyper.common.exceptions import ReadTimeout, TLSError
from tests.support.helpers import BioTLSServer, quickly

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_RCVLOWAT, POLLRDHUP and FIONREAD: Linux"
)

#: Bound on every wait, in seconds.
SAFETY = 5.0
#: Free buffer space the gathering loop needs for one more read (bufsocket._TLS_RECORD_ROOM).
RECORD_ROOM = 16 * 1024 + 256
#: The smallest read after which a read without ``gather`` goes on reading
#: (bufsocket._TLS_FULL_RECORD), and the smallest record it then goes on for
#: (bufsocket._TLS_BULK_RECORD).
FULL_RECORD = 16 * 1024
BULK_RECORD = 4 * 1024


@pytest.fixture(scope="module", params=[False, True], ids=["record-reads", "read-ahead"])
def tls_contexts(request: pytest.FixtureRequest) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) sharing a throw-away CA. The server sends no TLS 1.3
    session tickets: the only records on the wire are those a test writes. Every test runs
    twice: with OpenSSL reading one record at a time (its default), and with read-ahead
    (hyper's own contexts), where OpenSSL takes everything that has arrived at once."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server_ctx.num_tickets = 0
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    if request.param and not readahead.enable(client_ctx):
        pytest.skip("OpenSSL's read-ahead cannot be turned on with this interpreter")
    return server_ctx, client_ctx


class Server:
    """The server end of one TLS connection: records written one by one, sent in one go."""

    def __init__(self, sock: socket.socket, tls: BioTLSServer) -> None:
        self.sock = sock
        self.tls = tls

    def record(self, plaintext: bytes) -> bytes:
        """``plaintext`` as one TLS record (bytes for the wire, not sent yet)."""
        assert len(plaintext) <= 16 * 1024
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


@pytest.fixture
def tls_connection(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Iterator[Callable[[int], tuple[BufferedSocket, Server]]]:
    """Factory: a TLS connection over TCP on 127.0.0.1; returns (the client's
    BufferedSocket with the given buffer size, the server end)."""
    server_ctx, client_ctx = tls_contexts
    opened: list[socket.socket] = []
    buffers: list[BufferedSocket] = []

    def make(buffer_size: int) -> tuple[BufferedSocket, Server]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(SAFETY)
            client_raw = socket.create_connection(listener.getsockname(), timeout=SAFETY)
            opened.append(client_raw)
            server_sock, _ = listener.accept()
        opened.append(server_sock)
        server_sock.settimeout(SAFETY)
        bio = BioTLSServer(server_sock, server_ctx)
        failures: list[BaseException] = []

        def handshake() -> None:
            try:
                bio.handshake()
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=handshake, daemon=True)
        thread.start()
        client = client_ctx.wrap_socket(client_raw, server_hostname="localhost")
        opened.append(client)
        thread.join(SAFETY)
        assert not thread.is_alive() and not failures, failures
        buffered = BufferedSocket(client, buffer_size=buffer_size)
        buffers.append(buffered)
        return buffered, Server(server_sock, bio)

    yield make
    for buffered in buffers:
        buffered.close()
    for sock in opened:
        sock.close()


# -- waiting until bytes have arrived -------------------------------------------------------------


def queued(sock: socket.socket) -> int:
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


# -- gathering small records ----------------------------------------------------------------------


@pytest.mark.parametrize(("count", "size"), [(2, 1), (40, 50), (100, 300)])
def test_gather_returns_every_small_record_already_arrived(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], count: int, size: int
) -> None:
    buffered, server = tls_connection(256 * 1024)
    payloads = records(count, size)
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(buffered.recv_nowait(gather=True)) == b"".join(payloads)
        # Nothing more has arrived: the next read finds nothing, without waiting.
        assert buffered.recv_nowait(gather=True) is None
    assert queued(buffered.socket) == 0


def test_without_gather_one_small_record_per_read(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    buffered, server = tls_connection(256 * 1024)
    payloads = records(10, 100)
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        got = [take(buffered.recv_nowait()) for _ in payloads]
        assert buffered.recv_nowait() is None
    assert got == payloads


def test_without_gather_a_full_record_brings_the_bulk_behind_it(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    """The older rule, unchanged: after a full record, reading goes on while records are
    large, and stops after the first small one. ``gather`` goes on past it."""
    buffered, server = tls_connection(256 * 1024)
    payloads = [b"F" * FULL_RECORD, b"b" * BULK_RECORD, b"s" * 100, b"t" * 100, b"u" * 200]
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"".join(payloads[:3])
        assert take(buffered.recv_nowait(gather=True)) == b"".join(payloads[3:])
        assert buffered.recv_nowait(gather=True) is None


@pytest.mark.parametrize("buffer_size", [1024, 16 * 1024, 20 * 1024, 40 * 1024, 64 * 1024])
def test_gather_stops_when_the_buffer_has_no_room_for_another_record(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], buffer_size: int
) -> None:
    """Records of 1000 bytes: one read, then more while the free space left is at least
    RECORD_ROOM. What is left behind comes with the next reads, in order."""
    buffered, server = tls_connection(buffer_size)
    size = 1000
    payloads = records(60, size)
    send_records(server, buffered, payloads)
    got = bytearray()
    with quickly(SAFETY):
        first = take(buffered.recv_nowait(gather=True))
        expected_records = 1
        while buffer_size - expected_records * size >= RECORD_ROOM:
            expected_records += 1
        assert len(first) == expected_records * size
        got += first
        while len(got) < len(payloads) * size:
            got += take(buffered.recv_nowait(gather=True))
        assert buffered.recv_nowait(gather=True) is None
    assert bytes(got) == b"".join(payloads)


def test_gather_after_unread_brings_the_records_behind_the_held_bytes(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    """Bytes given back with ``unread`` (a frame's start) do not count as arrived data: the
    next gathering read brings the records behind them too."""
    buffered, server = tls_connection(64 * 1024)
    send_records(server, buffered, [b"abc"])
    assert take(buffered.recv_nowait(gather=True)) == b"abc"
    buffered.unread(2)
    assert buffered.recv_nowait(gather=True) is None  # held back, nothing new
    payloads = records(5, 10)
    send_records(server, buffered, payloads)
    assert take(buffered.recv_nowait(gather=True)) == b"bc" + b"".join(payloads)


# -- the end of the stream ------------------------------------------------------------------------


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-close"])
@pytest.mark.parametrize("count", [0, 1, 5])
def test_gather_at_the_end_of_the_stream_returns_promptly(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
    close_notify: bool,
    count: int,
) -> None:
    """Records, then the end of the stream (with or without close_notify), all arrived
    before the read: the gathering read returns the records and stops at the end (it once
    looped for ever there), and every read after it reports the end: an empty view."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(count, 700)
    wire = b"".join(server.record(payload) for payload in payloads)
    if close_notify:
        wire += server.close_notify()
    server.send(wire)
    server.sock.shutdown(socket.SHUT_WR)
    wait_end_of_stream(buffered)
    first = bounded(lambda: buffered.recv_nowait(gather=True))
    assert first is not None
    got = bytes(first)
    while count and len(got) < count * 700:  # should not be needed: all came in one read
        view = bounded(lambda: buffered.recv_nowait(gather=True))
        assert view is not None and len(view), "the end came before the records"
        got += bytes(view)
    assert got == b"".join(payloads)
    assert len(got) == len(bytes(first)) or not count  # one gathering read took them all
    assert buffered.at_eof
    for _ in range(3):
        view = bounded(lambda: buffered.recv_nowait(gather=True))
        assert view is not None and len(view) == 0
    assert len(bounded(buffered.recv)) == 0
    assert len(bounded(lambda: buffered.recv_nowait())) == 0


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-close"])
def test_full_record_then_the_end_of_the_stream(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], close_notify: bool
) -> None:
    """A full record takes the gathering loop even without ``gather``; the end of the stream
    behind it stops that loop too."""
    buffered, server = tls_connection(64 * 1024)
    payloads = [b"F" * FULL_RECORD, b"G" * FULL_RECORD]
    wire = b"".join(server.record(payload) for payload in payloads)
    if close_notify:
        wire += server.close_notify()
    server.send(wire)
    server.sock.shutdown(socket.SHUT_WR)
    wait_end_of_stream(buffered)
    assert bytes(bounded(lambda: buffered.recv_nowait())) == b"".join(payloads)
    assert len(bounded(lambda: buffered.recv_nowait(gather=True))) == 0


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
def test_tls_error_after_good_records_is_raised_by_the_next_read(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], kind: str, good: int
) -> None:
    """Good records, then bytes that fail as TLS: the gathering read returns the good
    records and stops; the next read raises TLSError (hyper's, never ssl.SSLError)."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(good, 300)
    wire = b"".join(server.record(payload) for payload in payloads) + bad_tls(server, kind)
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert take(buffered.recv_nowait(gather=True)) == b"".join(payloads)
        with pytest.raises(TLSError) as caught:
            bounded(lambda: buffered.recv_nowait(gather=True))
    assert isinstance(caught.value.__cause__, ssl.SSLError)


def test_tls_error_after_a_full_record_is_raised_by_the_next_read(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    """The same without ``gather``: a full record makes recv() go on reading (the path
    HTTP/1.1 takes), the bad record behind it must still fail the next read. Were it read
    as the end of the stream, a body delimited by the close would be taken as complete."""
    buffered, server = tls_connection(64 * 1024)
    full = b"F" * FULL_RECORD
    wire = server.record(full) + bad_tls(server, "bad-mac")
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert bytes(buffered.recv()) == full
        with pytest.raises(TLSError):
            bounded(buffered.recv)


@pytest.mark.parametrize("kind", ["bad-mac", "not-tls"])
def test_tls_error_without_gather_comes_after_each_good_record(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], kind: str
) -> None:
    """Without ``gather``, small records are read one at a time, and the read that meets the
    bad bytes raises TLSError itself."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(3, 300)
    wire = b"".join(server.record(payload) for payload in payloads) + bad_tls(server, kind)
    wait_arrived(buffered, server.send(wire))
    with quickly(SAFETY):
        assert [take(buffered.recv_nowait()) for _ in payloads] == payloads
        with pytest.raises(TLSError) as caught:
            buffered.recv_nowait()
    assert isinstance(caught.value.__cause__, ssl.SSLError)


@pytest.mark.parametrize("partial", [False, True], ids=["between-records", "mid-record"])
def test_reset_after_good_records_reads_as_the_end_of_the_stream(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]], partial: bool
) -> None:
    """Good records, then a TCP reset (after part of another record, or not): the gathering
    read returns the good records and stops. ssl reports a reset under TLS as an unexpected
    EOF (SSLEOFError), which BufferedSocket documents as the end of the stream: every later
    read returns an empty view (HTTP/2 makes that ConnectionClosed), none hangs or lets an
    ssl exception out."""
    buffered, server = tls_connection(64 * 1024)
    payloads = records(3, 300)
    wire = b"".join(server.record(payload) for payload in payloads)
    if partial:
        wire += server.record(b"never whole")[:10]
    wait_arrived(buffered, server.send(wire))
    server.reset()
    wait_end_of_stream(buffered)
    assert take(bounded(lambda: buffered.recv_nowait(gather=True))) == b"".join(payloads)
    for _ in range(2):
        assert len(take(bounded(lambda: buffered.recv_nowait(gather=True)))) == 0
    assert buffered.at_eof
    assert len(bounded(buffered.recv)) == 0


def test_tls_error_is_not_taken_for_the_end_of_an_http11_body(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """What the lost error costs: an HTTP/1.1 body delimited by the end of the connection
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


# -- records OpenSSL has read ahead ---------------------------------------------------------------


def test_records_read_ahead_count_as_readable(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    """Three small records arrive at once and a read returns the first. With read-ahead,
    OpenSSL has taken the other two from the socket, which is no longer readable, and
    ``pending()`` does not count them: waiting must still see them as readable (a poll
    would wait for data that is already here), until a read has found nothing."""
    buffered, server = tls_connection(256 * 1024)
    payloads = records(3, 40)
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == payloads[0]
    if readahead.is_enabled(buffered.socket.context):  # type: ignore[attr-defined]
        assert queued(buffered.socket) == 0, "OpenSSL did not read ahead"
    assert buffered.can_read()
    with quickly(1.0):
        buffered.wait_readable(SAFETY)
        assert take(buffered.recv_nowait()) == payloads[1]
        buffered.wait_readable(SAFETY)
        assert take(buffered.recv_nowait()) == payloads[2]
        assert buffered.recv_nowait() is None
    assert not buffered.can_read()
    with pytest.raises(ReadTimeout):
        buffered.wait_readable(0.05)


def test_idle_check_sees_records_read_ahead(
    tls_connection: Callable[[int], tuple[BufferedSocket, Server]],
) -> None:
    """An HTTP/1.1 connection between responses: bytes the server sent that nobody asked
    for make it unusable, also when OpenSSL has read them ahead with an earlier record."""
    buffered, server = tls_connection(64 * 1024)
    payloads = [b"response", b"junk"]
    send_records(server, buffered, payloads)
    with quickly(SAFETY):
        assert take(buffered.recv_nowait()) == b"response"
        assert buffered.peer_closed()


def _openssl_functions() -> Any:
    """libssl as ``_ssl`` links it, for the test server's own settings; None if not there."""
    import _ssl
    import ctypes

    try:
        library = ctypes.CDLL(_ssl.__file__)
        library.SSL_new_session_ticket.argtypes = [ctypes.c_void_p]
        library.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        library.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        library.SSL_CTX_ctrl.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_void_p,
        ]
        library.SSL_CTX_ctrl.restype = ctypes.c_long
    except (OSError, AttributeError):
        return None
    return library


def _records(wire: bytes) -> list[bytes]:
    """Split TLS wire bytes into records."""
    out = []
    while wire:
        end = 5 + int.from_bytes(wire[3:5], "big")
        out.append(wire[:end])
        wire = wire[end:]
    return out


def test_a_write_that_reads_ahead_leaves_the_records_readable() -> None:
    """A TLS write reads too, when OpenSSL must first finish a post-handshake message that
    arrived in pieces: here a TLS 1.3 session ticket split over records, the second of which
    arrives with application data behind it. With read-ahead the write then keeps that data,
    and the socket no longer shows it: the next wait must read, not poll."""
    import ctypes

    trustme = pytest.importorskip("trustme")
    library = _openssl_functions()
    if library is None:
        pytest.skip("libssl's functions are not reachable through _ssl")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate makes the ticket large
    server_ctx.num_tickets = 0
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    ca.issue_cert("client@example.org").configure_cert(client_ctx)
    if not readahead.enable(client_ctx):
        pytest.skip("OpenSSL's read-ahead cannot be turned on with this interpreter")
    server_ssl_ctx = readahead._ssl_ctx(server_ctx)
    max_send_fragment = 52  # SSL_CTRL_SET_MAX_SEND_FRAGMENT: 512-byte records
    assert library.SSL_CTX_ctrl(server_ssl_ctx, max_send_fragment, 512, None) == 1

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(SAFETY)
        client_raw = socket.create_connection(listener.getsockname(), timeout=SAFETY)
        server_sock, _ = listener.accept()
    with client_raw, server_sock:
        server_sock.settimeout(SAFETY)
        bio = BioTLSServer(server_sock, server_ctx)
        handshake = threading.Thread(target=bio.handshake, daemon=True)
        handshake.start()
        client = client_ctx.wrap_socket(client_raw, server_hostname="localhost")
        handshake.join(SAFETY)
        assert not handshake.is_alive()
        buffered = BufferedSocket(client, buffer_size=64 * 1024)
        # The server's SSL*: the field after the socket reference in CPython's _ssl object,
        # checked against the context before use.
        inner = bio.tls._sslobj  # type: ignore[attr-defined]
        server_ssl = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__ + 8).value
        if library.SSL_get_SSL_CTX(server_ssl) != server_ssl_ctx:
            pytest.skip("cannot reach the server's SSL object")

        bio.tls.write(b"A" * 100)
        first = bio.outgoing.read()
        assert library.SSL_new_session_ticket(server_ssl) == 1
        bio.tls.do_handshake()  # writes the ticket
        ticket = _records(bio.outgoing.read())
        assert len(ticket) >= 2, "the ticket fits one record: nothing to split"
        bio.tls.write(b"B" * 100)
        second = bio.outgoing.read()

        server_sock.sendall(first + ticket[0])
        wait_arrived(buffered, len(first + ticket[0]))
        with quickly(SAFETY):
            assert take(buffered.recv_nowait(gather=True)) == b"A" * 100
        rest = b"".join(ticket[1:]) + second
        server_sock.sendall(rest)
        wait_arrived(buffered, len(rest))
        buffered.sendall(b"request")  # finishes the ticket, reading ahead past it
        assert queued(client) == 0, "the write did not read: the test shows nothing"
        with quickly(1.0):
            buffered.wait_readable(SAFETY)
            assert take(buffered.recv_nowait()) == b"B" * 100
        buffered.close()
