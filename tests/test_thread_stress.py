"""Many threads sharing one connection: stress, close races and mixed operations.

hyper runs no thread of its own: whichever thread needs data reads the socket and files the
frames of every stream under the connection's lock (see :mod:`hyper.http20.session`).  These
tests hammer that design with real servers:

* 32 threads x 200 requests through one :class:`~hyper.HTTP20Connection` over TLS (nghttpd),
  random upload and download sizes from 0 to 1 MiB, every body checked by sha256;
* the same, smaller, through :class:`hyper.HTTPConnection` (TLS, ALPN h2), over h2c with
  prior knowledge, and through :class:`hyper.HTTPConnection` upgrading a plaintext connection;
* one thread closing the connection while 16 others wait for responses, read bodies or
  upload: each gets a clean hyper exception, promptly, and the connection works afterwards;
* PING, ``get_pushes()``, ``response.close()`` mid-body and ``read_chunked()`` from many
  threads at once;
* threads taking turns on one :class:`~hyper.HTTP11Connection` (nginx);
* two known bugs, as strict xfails that fail only where the bug shows (:class:`BugSeen`):
  a response closed by another thread does not wake the thread waiting for its data on the
  socket, and an ``Upgrade: h2c`` request waiting for another thread's plain HTTP/1.1
  exchange deadlocks that thread's ``get_response()``.

Every wait is bounded: futures are collected with a deadline, the connections have read
timeouts, and a ``faulthandler`` watchdog dumps every thread's stack (to the terminal, not to
pytest's capture) and ends the process if a test hangs anyway.  Nothing sleeps to
synchronise: threads meet at barriers and events.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import hashlib
import io
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.bufsocket import BufferedSocket
from hyper.common.exceptions import HyperError, ReadTimeout
from hyper.common.util import HTTPVersion
from hyper.http20.exceptions import StreamResetError
from hyper.http20.window import DEFAULT_STREAM_WINDOW, FlowControlManager
from hyper.tls import init_context
from tests.support import introspect
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer

KIB = 1024
MIB = 1024 * KIB

#: Seed of every random choice below: a failure can be replayed exactly.
SEED = 0x5EED

#: Shared random data that upload bodies are cut from (plus room for random offsets).
BLOB = random.Random(SEED).randbytes(MIB + 64 * KIB)

#: The docroot files a download of each size class fetches.
SMALL_FILES = ("empty.bin", "1k.bin", "index.html")
MEDIUM_FILES = ("64k.bin",)
LARGE_FILES = ("1m.bin",)


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class BugSeen(AssertionError):
    """
    Raised exactly where a known library bug shows; ``xfail(raises=BugSeen)`` then fails for
    real if anything else (a broken test setup, say) goes wrong instead.
    """


# -- bounded waiting ---------------------------------------------------------------------------


def _watchdog_fd(config: pytest.Config) -> int:
    """A descriptor of the real stderr: pytest's capture would swallow a dump before exit."""
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        return config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        return sys.__stderr__.fileno() if sys.__stderr__ is not None else 2


@pytest.fixture
def watchdog_fd(request: pytest.FixtureRequest) -> int:
    return _watchdog_fd(request.config)


@contextlib.contextmanager
def hang_guard(fd: int, seconds: float) -> Iterator[list[threading.Thread]]:
    """
    Dump every thread's stack and end the process if the block is still running after
    ``seconds`` (a deadlock would otherwise hang the run, and even interpreter exit, since
    worker threads are joined then).

    Yields a list the caller fills with the threads it started. Leaving the block normally
    disarms the watchdog; leaving it with an exception disarms it only once those threads have
    ended (bounded), so a real hang still ends in a stack dump rather than a silent hang.
    """
    faulthandler.dump_traceback_later(seconds, exit=True, file=fd)
    threads: list[threading.Thread] = []
    try:
        yield threads
    except BaseException:
        deadline = time.monotonic() + 10
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in threads):
            faulthandler.cancel_dump_traceback_later()
        raise
    faulthandler.cancel_dump_traceback_later()


def run_threads(
    fn: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    timeout: float,
    dump_fd: int,
    threads: list[threading.Thread] | None = None,
) -> list[Any]:
    """
    Run ``fn(*a)`` for every ``a`` in ``args``, each in its own thread, and return the results
    in order. Fails (after dumping every stack) if they are not all done within ``timeout``
    seconds; re-raises the first worker exception, with a summary of all of them.
    """
    pool = ThreadPoolExecutor(max_workers=len(args), thread_name_prefix="stress")
    started: list[threading.Thread] = threads if threads is not None else []

    def tracked(*a: Any) -> Any:
        started.append(threading.current_thread())
        return fn(*a)

    futures: list[Future[Any]] = [pool.submit(tracked, *a) for a in args]
    deadline = time.monotonic() + timeout
    try:
        results: list[Any] = []
        errors: list[tuple[int, BaseException]] = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                faulthandler.dump_traceback(file=dump_fd, all_threads=True)
                pending = sum(not f.done() for f in futures)
                raise AssertionError(
                    f"{pending} of {len(futures)} threads still running after {timeout} s "
                    "(stacks dumped to stderr)"
                ) from None
            except BaseException as exc:
                errors.append((index, exc))
                results.append(None)
        if errors:
            summary = "; ".join(f"thread {i}: {type(e).__name__}: {e}" for i, e in errors[:8])
            raise AssertionError(
                f"{len(errors)} of {len(futures)} threads failed: {summary}"
            ) from errors[0][1]
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


#: nghttpd over TLS and over h2c, for tests taking the fixture by name.
NGHTTPD_BOTH = [
    pytest.param("nghttpd_tls", id="tls", marks=pytest.mark.nghttpd),
    pytest.param("nghttpd_h2c", id="h2c", marks=pytest.mark.nghttpd),
]


# -- request plans -----------------------------------------------------------------------------


#: Shares of the size classes: <= 16 KiB, <= 256 KiB, <= 1 MiB (the rest). Skewed to small
#: bodies so that 6400 requests stay within ~20 s on a 2-core box.
SMALL_SHARE = 0.72
MEDIUM_SHARE = 0.25


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high)))))


def pick_size(rng: random.Random) -> int:
    """
    A body size skewed to small: 72% uniform in 0..16 KiB, 25% in 16..256 KiB and 3% in
    256 KiB..1 MiB (log-uniform within those two classes).
    """
    roll = rng.random()
    if roll < SMALL_SHARE:
        return rng.randint(0, 16 * KIB)
    if roll < SMALL_SHARE + MEDIUM_SHARE:
        return _log_uniform(rng, 16 * KIB + 1, 256 * KIB)
    return _log_uniform(rng, 256 * KIB + 1, MIB)


def pick_file(rng: random.Random) -> str:
    """A docroot file, with the same skew as :func:`pick_size`."""
    roll = rng.random()
    if roll < SMALL_SHARE:
        return rng.choice(SMALL_FILES)
    if roll < SMALL_SHARE + MEDIUM_SHARE:
        return rng.choice(MEDIUM_FILES)
    return rng.choice(LARGE_FILES)


@dataclass(frozen=True)
class Op:
    """One request of a plan: an echoed upload or a docroot download, and how to read it."""

    kind: str  # "echo" or "get"
    tag: bytes  # unique per request, leads the upload so that crossed bodies show
    size: int  # upload size ("echo")
    offset: int  # where in BLOB the upload is cut from
    name: str  # docroot file ("get")
    form: str  # upload as "bytes", "memoryview", "chunks" (iterator) or "file"
    style: str  # read with "all", "amt", "chunked" or "iter"
    amt: int  # piece size for "amt"

    def body(self) -> bytes:
        data = (self.tag + BLOB[self.offset : self.offset + self.size])[: self.size]
        assert len(data) == self.size
        return data


def make_plan(thread: int, count: int, *, echo_share: float = 0.75) -> list[Op]:
    rng = random.Random(SEED * 1000 + thread)
    ops = []
    for i in range(count):
        kind = "echo" if rng.random() < echo_share else "get"
        ops.append(
            Op(
                kind=kind,
                tag=b"<%d:%d>" % (thread, i),
                size=pick_size(rng),
                offset=rng.randrange(64 * KIB),
                name=pick_file(rng),
                form=rng.choice(("bytes", "bytes", "memoryview", "chunks", "file")),
                style=rng.choice(("all", "all", "amt", "chunked", "iter")),
                amt=rng.choice((1 * KIB, 16 * KIB, 100_000, 256 * KIB)),
            )
        )
    return ops


def as_upload(data: bytes, form: str) -> Any:
    if form == "memoryview":
        return memoryview(data)
    if form == "chunks":
        third = len(data) // 3 + 1
        return iter([data[i : i + third] for i in range(0, len(data), third)] or [b""])
    if form == "file":
        return io.BytesIO(data)
    return data


def read_body(response: Any, style: str, amt: int) -> bytes:
    """Read a whole body the way ``style`` says."""
    if style == "amt":
        parts = []
        while True:
            piece = response.read(amt)
            if not piece:
                break
            assert len(piece) <= amt
            parts.append(piece)
        return b"".join(parts)
    if style == "chunked":
        return b"".join(response.read_chunked())
    if style == "iter":
        return b"".join(response)
    return bytes(response.read())


@dataclass
class Moved:
    """What one thread sent and received (body bytes), and how many requests."""

    requests: int = 0
    up: int = 0
    down: int = 0

    def __add__(self, other: Moved) -> Moved:
        return Moved(self.requests + other.requests, self.up + other.up, self.down + other.down)


def run_plan_h2(conn: Any, server: NghttpdServer, plan: list[Op]) -> Moved:
    """Run ``plan`` on an HTTP/2 connection (HTTP20Connection, or HTTPConnection on h2)."""
    moved = Moved()
    for op in plan:
        if op.kind == "echo":
            data = op.body()
            expected, length = sha256(data), len(data)
            stream_id = conn.request("POST", "/echo", body=as_upload(data, op.form))
            where = f"POST /echo {length} bytes ({op.form}, {op.tag!r}) on stream {stream_id}"
        else:
            expected, length = server.files[op.name], server.sizes[op.name]
            stream_id = conn.request("GET", "/" + op.name)
            where = f"GET /{op.name} on stream {stream_id}"
        assert isinstance(stream_id, int), where
        response = conn.get_response(stream_id)
        assert response.version is HTTPVersion.http20, where
        assert response.stream_id == stream_id, where
        assert response.status == 200, where
        body = read_body(response, op.style, op.amt)
        assert len(body) == length, f"{where}: {len(body)} bytes read ({op.style})"
        assert sha256(body) == expected, f"{where}: wrong body ({op.style})"
        # The body is over: reading on gives nothing, and closing is harmless.
        assert response.read() == b""
        response.close()
        moved.requests += 1
        moved.down += length
        if op.kind == "echo":
            moved.up += length
    return moved


def tls_context(server: NghttpdServer | NginxServer) -> Any:
    assert server.ca_cert_path is not None
    return init_context(cert_path=str(server.ca_cert_path))


def report(label: str, moved: Moved, elapsed: float) -> None:
    """Print the volume moved (visible with ``-s`` or ``-rP``)."""
    total = moved.up + moved.down
    print(
        f"\n{label}: {moved.requests} requests, {moved.up / MIB:.1f} MiB up, "
        f"{moved.down / MIB:.1f} MiB down, {elapsed:.2f} s, "
        f"{total / MIB / max(elapsed, 1e-9):.1f} MiB/s"
    )


def assert_connection_clean(conn: HTTP20Connection) -> None:
    """Every response was read or closed: nothing is left waiting or buffered."""
    assert conn._awaiting == {}, conn._awaiting
    assert conn._reserved == {}, conn._reserved
    assert introspect.open_ids(conn) == set()


# -- 1. the big one: 32 threads x 200 requests, one TLS connection -----------------------------

STRESS_THREADS = 32
STRESS_REQUESTS = 200
#: The whole stress test must finish within this (it takes ~10-30 s on a 2-core box).
STRESS_BUDGET = 90.0


@pytest.mark.timeout(200)
def test_stress_32_threads_one_tls_connection(
    nghttpd_tls: NghttpdServer, watchdog_fd: int
) -> None:
    plans = [make_plan(t, STRESS_REQUESTS) for t in range(STRESS_THREADS)]
    conn = HTTP20Connection(
        nghttpd_tls.host,
        nghttpd_tls.port,
        secure=True,
        ssl_context=tls_context(nghttpd_tls),
        timeout=30,
    )
    started = time.monotonic()
    with hang_guard(watchdog_fd, 120) as threads, conn:
        results = run_threads(
            run_plan_h2,
            [(conn, nghttpd_tls, plan) for plan in plans],
            timeout=STRESS_BUDGET,
            dump_fd=watchdog_fd,
            threads=threads,
        )
        elapsed = time.monotonic() - started
        moved = sum(results, Moved())
        assert moved.requests == STRESS_THREADS * STRESS_REQUESTS
        assert elapsed < STRESS_BUDGET
        assert_connection_clean(conn)
        # Still one healthy connection: one more request on it works.
        response = conn.get_response(conn.request("GET", "/1m.bin"))
        assert sha256(response.read()) == nghttpd_tls.files["1m.bin"]
    report("32 threads x 200 requests, HTTP20Connection over TLS", moved, elapsed)


# -- 2. smaller: hyper.HTTPConnection (TLS -> h2), h2c, h2c upgrade ----------------------------

SMALL_THREADS = 8
SMALL_REQUESTS = 50


def _connection_for(kind: str, server: NghttpdServer) -> Any:
    if kind == "httpconnection-tls":
        return HTTPConnection(
            server.host, server.port, secure=True, ssl_context=tls_context(server), timeout=30
        )
    if kind == "http20-h2c":
        return HTTP20Connection(server.host, server.port, secure=False, timeout=30)
    assert kind == "httpconnection-h2c-upgrade"
    return HTTPConnection(server.host, server.port, secure=False, timeout=30)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("kind", "fixture"),
    [
        # Marked by hand: conftest's auto-marking only sees fixtures in the signature.
        pytest.param("httpconnection-tls", "nghttpd_tls", marks=pytest.mark.nghttpd),
        pytest.param("http20-h2c", "nghttpd_h2c", marks=pytest.mark.nghttpd),
        pytest.param("httpconnection-h2c-upgrade", "nghttpd_h2c", marks=pytest.mark.nghttpd),
    ],
)
def test_stress_8_threads(
    kind: str, fixture: str, request: pytest.FixtureRequest, watchdog_fd: int
) -> None:
    server: NghttpdServer = request.getfixturevalue(fixture)
    plans = [make_plan(100 + t, SMALL_REQUESTS) for t in range(SMALL_THREADS)]
    conn = _connection_for(kind, server)
    runner: Callable[..., Moved] = run_plan_h2
    if kind == "httpconnection-h2c-upgrade":
        # Every thread starts with a request that can carry ``Upgrade: h2c``: one of them
        # sends it, the others wait for the answer, then all continue over HTTP/2. (A plain
        # HTTP/1.1 exchange in flight during the upgrade deadlocks: see
        # test_upgrade_while_another_thread_owns_a_plain_exchange.) The upgrading request
        # returns no stream id.
        first = Op("get", b"", 0, 0, "1k.bin", "bytes", "all", 0)
        plans = [[first, *plan[1:]] for plan in plans]
        runner = run_plan_any
    started = time.monotonic()
    with hang_guard(watchdog_fd, 90) as threads, conn:
        results = run_threads(
            runner,
            [(conn, server, plan) for plan in plans],
            timeout=60,
            dump_fd=watchdog_fd,
            threads=threads,
        )
        elapsed = time.monotonic() - started
        moved = sum(results, Moved())
        assert moved.requests == SMALL_THREADS * SMALL_REQUESTS
        assert conn.version is HTTPVersion.http20
        response = conn.get_response(conn.request("GET", "/64k.bin"))
        assert sha256(response.read()) == server.files["64k.bin"]
    report(f"8 threads x 50 requests, {kind}", moved, elapsed)


def run_plan_any(conn: HTTPConnection, server: NghttpdServer, plan: list[Op]) -> Moved:
    """Like :func:`run_plan_h2`, for an HTTPConnection whose protocol may not be settled."""
    moved = Moved()
    for op in plan:
        if op.kind == "echo":
            data = op.body()
            expected, length = sha256(data), len(data)
            stream_id = conn.request("POST", "/echo", body=as_upload(data, op.form))
        else:
            expected, length = server.files[op.name], server.sizes[op.name]
            stream_id = conn.request("GET", "/" + op.name)
        where = f"{op.kind} {length} bytes (stream {stream_id}, {op.tag!r})"
        response = conn.get_response(stream_id)
        assert response.status == 200, where
        body = read_body(response, op.style, op.amt)
        assert len(body) == length, where
        assert sha256(body) == expected, where
        response.close()
        moved.requests += 1
        moved.down += length
        if op.kind == "echo":
            moved.up += length
    return moved


@pytest.mark.timeout(60)
def test_upgrade_while_another_thread_owns_a_plain_exchange(
    nginx_plain: NginxServer, watchdog_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Thread C's first request cannot ask for the upgrade (a body of unknown length), so it goes
    out as plain HTTP/1.1 and the exchange is C's until it reads the response. Thread A's
    first request can ask for it, and has to wait for C's exchange. C must still get its
    response promptly, and A's request must go out after it.
    """
    read_timeout = 4.0
    conn = HTTPConnection(nginx_plain.host, nginx_plain.port, secure=False, timeout=read_timeout)
    h11 = conn._conn
    assert isinstance(h11, HTTP11Connection)
    c_sent = threading.Event()
    a_waiting = threading.Event()
    original_wait = h11._claim

    def observed_wait(timeout: float | None) -> None:
        # A is inside HTTP11Connection.request(), waiting for C's exchange to end.
        if threading.current_thread().name.startswith("upgrader"):
            a_waiting.set()
        original_wait(timeout)

    monkeypatch.setattr(h11, "_claim", observed_wait)

    def thread_c() -> bytes:
        assert conn.request("POST", "/status/200", body=iter([b"unknown ", b"length"])) is None
        c_sent.set()
        assert a_waiting.wait(10)
        response = conn.get_response()
        assert response.status == 200
        return bytes(response.read())

    def thread_a() -> bytes:
        stream_id = conn.request("GET", "/1k.bin")  # asks for Upgrade: h2c
        response = conn.get_response(stream_id)
        assert response.status == 200
        return bytes(response.read())

    c_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plain")
    a_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upgrader")
    futures: list[Future[bytes]] = []
    with hang_guard(watchdog_fd, 50), conn:
        try:
            c_future = c_pool.submit(thread_c)
            futures.append(c_future)
            assert c_sent.wait(10), "C's plain request was not sent"
            a_future = a_pool.submit(thread_a)
            futures.append(a_future)
            assert a_waiting.wait(10), "A never waited for C's exchange"
            started = time.monotonic()
            try:
                # Far less than the read timeout: the only thing C waits for is nginx.
                c_body = c_future.result(timeout=read_timeout / 2)
            except FutureTimeout:
                raise BugSeen(
                    "C's get_response() is blocked behind A's upgrade request (deadlock)"
                ) from None
            assert c_body == b"status 200\n"
            assert time.monotonic() - started < read_timeout / 2
            assert a_future.result(timeout=read_timeout) == nginx_plain.read("1k.bin")
            assert conn.version is HTTPVersion.http11  # nginx does not upgrade
        finally:
            # With the bug, both threads end once A's wait hits the read timeout.
            for pool in (c_pool, a_pool):
                pool.shutdown(wait=False, cancel_futures=True)
            wait_futures(futures, timeout=2 * read_timeout)


# -- 3. closing the connection under 16 busy threads -------------------------------------------


class StallBigDownloads(FlowControlManager):
    """
    hyper's default policy, except that the window of a response of exactly
    :data:`STALL_SIZE` bytes (``10m.bin``) is never reopened: the server sends the first
    4 MiB and then has to wait, so a reader of that body is *certain* to block until the
    connection is closed.
    """

    def increase_window_size(self, frame_size: int) -> int:
        if self.document_size == STALL_SIZE:
            return 0
        return super().increase_window_size(frame_size)

    def blocked(self) -> int:
        if self.document_size == STALL_SIZE:
            return 0
        return super().blocked()


STALL_SIZE = 10 * MIB
#: What the server can send of such a body: the initial stream window.
STALL_WINDOW = DEFAULT_STREAM_WINDOW
CLOSE_ROUNDS = 4
#: How long a thread may take to notice the close. Far below the read timeout, so a thread
#: that was not woken (and would only give up at its read timeout) fails the test.
WAKE_BUDGET = 10.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fixture", NGHTTPD_BOTH)
def test_close_while_16_threads_are_busy(
    fixture: str, request: pytest.FixtureRequest, watchdog_fd: int
) -> None:
    # TLS and plaintext take different read paths (wait unlocked then read under the lock,
    # or a blocking read outside the lock): close() must wake both.
    server: NghttpdServer = request.getfixturevalue(fixture)
    assert server.sizes["10m.bin"] == STALL_SIZE
    conn = HTTP20Connection(
        server.host,
        server.port,
        secure=server.tls,
        ssl_context=tls_context(server) if server.tls else None,
        window_manager=StallBigDownloads,
        timeout=60,  # the read timeout: never what ends a wait here
    )
    roles = ["wait"] * 5 + ["read"] * 3 + ["read_amt"] * 2 + ["chunked"] * 2 + ["upload"] * 4
    assert len(roles) == 16
    with hang_guard(watchdog_fd, 100) as threads, conn:
        for round_ in range(CLOSE_ROUNDS):
            _close_round(conn, server, roles, round_, watchdog_fd, threads)


def _close_round(
    conn: HTTP20Connection,
    server: NghttpdServer,
    roles: list[str],
    round_: int,
    dump_fd: int,
    threads: list[threading.Thread],
) -> None:
    parties = len(roles) + 1
    in_position = threading.Barrier(parties, timeout=30)
    closed = threading.Event()
    prefix_1m = BLOB[: 256 * KIB]

    def busy(role: str) -> tuple[str, BaseException | None, float]:
        """Get into position, meet the closer, then block; return what ended the block."""
        try:
            if role == "wait":
                # nghttpd answers an upload only once it is complete: this one never is.
                stream_id = conn.putrequest("POST", "/echo")
                conn.endheaders(message_body=b"partial body", stream_id=stream_id)
                in_position.wait()
                conn.get_response(stream_id)
            elif role in ("read", "read_amt", "chunked"):
                response = conn.get_response(conn.request("GET", "/10m.bin"))
                assert response.status == 200
                first = response.read(1024)
                assert len(first) == 1024
                in_position.wait()
                # At most 4 MiB can ever arrive (StallBigDownloads): this never completes.
                if role == "read":
                    response.read()
                elif role == "read_amt":
                    while response.read(64 * KIB):
                        pass
                else:
                    for _ in response.read_chunked():
                        pass
            else:

                def body() -> Iterator[bytes]:
                    yield prefix_1m
                    in_position.wait()
                    # Mid-upload, inside request(), when the connection is closed.
                    assert closed.wait(WAKE_BUDGET)
                    yield prefix_1m
                    yield prefix_1m

                conn.request("POST", "/echo", body=body())
        except threading.BrokenBarrierError:
            raise
        except BaseException as exc:
            return role, exc, time.monotonic()
        return role, None, time.monotonic()

    pool = ThreadPoolExecutor(max_workers=len(roles), thread_name_prefix=f"busy{round_}")

    def tracked(role: str) -> tuple[str, BaseException | None, float]:
        threads.append(threading.current_thread())
        return busy(role)

    futures = [pool.submit(tracked, role) for role in roles]
    try:
        in_position.wait()
        if round_ % 2:
            # Let the others get well into their blocking calls first (without sleeping): a
            # whole download of our own, which also shows the connection still serves new
            # requests while 16 threads are stalled on it.
            response = conn.get_response(conn.request("GET", "/1m.bin"))
            assert sha256(response.read()) == server.files["1m.bin"]
        closed_at = time.monotonic()
        conn.close()
        closed.set()
        close_took = time.monotonic() - closed_at
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=WAKE_BUDGET))
            except FutureTimeout:
                faulthandler.dump_traceback(file=dump_fd, all_threads=True)
                raise AssertionError(
                    f"round {round_}: a thread did not return within {WAKE_BUDGET} s of "
                    "close() (stacks dumped to stderr)"
                ) from None
    finally:
        in_position.abort()  # a failed setup must not leave the others at the barrier
        closed.set()
        pool.shutdown(wait=False, cancel_futures=True)

    assert close_took < 5, f"close() took {close_took:.2f} s"
    problems = []
    for role, exc, finished_at in outcomes:
        if exc is None:
            problems.append(f"{role}: no exception although the connection was closed")
        elif not isinstance(exc, HyperError):
            problems.append(f"{role}: bare {type(exc).__module__}.{type(exc).__name__}: {exc!r}")
        elif isinstance(exc, ReadTimeout):
            problems.append(f"{role}: not woken by close(), timed out instead: {exc}")
        elif finished_at - closed_at > WAKE_BUDGET:
            problems.append(f"{role}: took {finished_at - closed_at:.2f} s to notice the close")
    assert not problems, f"round {round_}: " + "; ".join(problems)
    seen = collections.Counter(f"{role}:{type(exc).__name__}" for role, exc, _ in outcomes)
    slowest = max(finished_at for _, _, finished_at in outcomes) - closed_at
    print(
        f"\nround {round_}: close() {close_took * 1000:.1f} ms, all threads out "
        f"{slowest * 1000:.1f} ms after it: {dict(sorted(seen.items()))}"
    )

    # The connection is usable again, from several threads at once.
    def again(index: int) -> None:
        data = BLOB[index : index + 200 * KIB]
        response = conn.get_response(conn.request("POST", "/echo", body=data))
        assert response.read() == data
        response = conn.get_response(conn.request("GET", "/1m.bin"))
        assert sha256(response.read()) == server.files["1m.bin"]

    run_threads(again, [(i,) for i in range(4)], timeout=30, dump_fd=dump_fd, threads=threads)
    assert_connection_clean(conn)


# -- 3b. closing a response another thread is reading -------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fixture", NGHTTPD_BOTH)
def test_close_response_while_another_thread_reads_it(
    fixture: str,
    request: pytest.FixtureRequest,
    watchdog_fd: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    Thread R reads a body the server can send only 4 MiB of (StallBigDownloads) and, once it
    has read all of it, waits for the socket as the connection's reader. Another thread
    closes the response: R must get a clean StreamResetError promptly, and the connection
    must stay usable.
    """
    server: NghttpdServer = request.getfixturevalue(fixture)
    read_timeout = 4.0
    conn = HTTP20Connection(
        server.host,
        server.port,
        secure=server.tls,
        ssl_context=tls_context(server) if server.tls else None,
        window_manager=StallBigDownloads,
        timeout=read_timeout,
    )
    consumed = 0
    reader_blocked = threading.Event()
    original_wait, original_recv = BufferedSocket.wait_io, BufferedSocket.recv

    def note_wait() -> None:
        # R is about to wait for the socket although it has read all the server may send.
        if threading.current_thread().name.startswith("owner") and consumed >= STALL_WINDOW:
            reader_blocked.set()

    def wait_io(self: BufferedSocket, timeout: float | None, writing: bool) -> None:
        note_wait()
        original_wait(self, timeout, writing)

    def recv(self: BufferedSocket, amt: int | None = None) -> memoryview:
        note_wait()
        return original_recv(self, amt)

    monkeypatch.setattr(BufferedSocket, "wait_io", wait_io)
    monkeypatch.setattr(BufferedSocket, "recv", recv)

    with hang_guard(watchdog_fd, 50), conn:
        response = conn.get_response(conn.request("GET", "/10m.bin"))
        assert response.status == 200
        prefix = server.read("10m.bin")[:STALL_WINDOW]

        def owner() -> tuple[BaseException | None, float]:
            nonlocal consumed
            try:
                while True:
                    piece = response.read(64 * KIB)
                    if not piece:
                        return None, time.monotonic()
                    assert piece == prefix[consumed : consumed + len(piece)]
                    consumed += len(piece)
            except Exception as exc:
                return exc, time.monotonic()

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owner")
        future = pool.submit(owner)
        try:
            assert reader_blocked.wait(10), f"the reader never blocked ({consumed} bytes read)"
            closed_at = time.monotonic()
            response.close()
            try:
                exc, finished_at = future.result(timeout=read_timeout / 2)
            except FutureTimeout:
                conn.close()  # shuts the socket down, which does wake the reader
                raise BugSeen(
                    f"the reader was not woken by response.close() within {read_timeout / 2} s"
                ) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            wait_futures([future], timeout=2 * read_timeout)
        assert consumed == STALL_WINDOW
        assert isinstance(exc, HyperError), f"bare or no exception: {exc!r}"
        assert not isinstance(exc, ReadTimeout), exc
        assert isinstance(exc, StreamResetError), exc
        assert finished_at - closed_at < read_timeout / 2
        # The connection is fine.
        again = conn.get_response(conn.request("GET", "/1m.bin"))
        assert sha256(again.read()) == server.files["1m.bin"]


# -- 4. mixed operations at once ---------------------------------------------------------------

MIXED_ROUNDS = 15


@pytest.mark.timeout(120)
def test_mixed_operations_from_threads(nghttpd_tls: NghttpdServer, watchdog_fd: int) -> None:
    conn = HTTP20Connection(
        nghttpd_tls.host,
        nghttpd_tls.port,
        secure=True,
        ssl_context=tls_context(nghttpd_tls),
        timeout=30,
    )
    ten_mib = nghttpd_tls.read("10m.bin")
    sent_pings: set[bytes] = set()
    pings_lock = threading.Lock()

    def pinger(index: int) -> int:
        for i in range(MIXED_ROUNDS * 4):
            payload = b"%02d%06d" % (index, i)
            with pings_lock:
                sent_pings.add(payload)
            conn.ping(payload)
            # And a request now and then, so the pinger's thread reads too.
            if i % 4 == 0:
                response = conn.get_response(conn.request("GET", "/1k.bin"))
                assert sha256(response.read()) == nghttpd_tls.files["1k.bin"]
        return 0

    def push_checker(index: int) -> int:
        for _ in range(MIXED_ROUNDS):
            stream_id = conn.request("GET", "/64k.bin")
            assert list(conn.get_pushes(stream_id)) == []
            response = conn.get_response(stream_id)
            assert list(conn.get_pushes(stream_id, capture_all=True)) == []
            assert list(conn.get_pushes()) == []
            assert sha256(response.read()) == nghttpd_tls.files["64k.bin"]
            assert list(conn.get_pushes(stream_id, capture_all=True)) == []
        return 0

    def canceller(index: int) -> int:
        rng = random.Random(SEED + index)
        for _ in range(MIXED_ROUNDS):
            response = conn.get_response(conn.request("GET", "/10m.bin"))
            assert response.status == 200
            wanted = rng.randint(0, 3 * MIB)
            got = response.read(wanted) if wanted else b""
            assert got == ten_mib[: len(got)] and len(got) == wanted
            response.close()  # mid-body: the stream is reset, the connection stays
            with pytest.raises(HyperError):
                response.read(1)
        return 0

    def chunked_reader(index: int) -> int:
        for i in range(MIXED_ROUNDS):
            name = ("1m.bin", "64k.bin", "1k.bin", "empty.bin")[(index + i) % 4]
            response = conn.get_response(conn.request("GET", "/" + name))
            digest = hashlib.sha256()
            pieces = 0
            for piece in response.read_chunked():
                digest.update(piece)
                pieces += 1
            assert digest.hexdigest() == nghttpd_tls.files[name], name
            if nghttpd_tls.sizes[name] >= 64 * KIB:
                assert pieces >= 2, f"{name} came in {pieces} piece(s): not frame by frame"
        return 0

    def echoer(index: int) -> int:
        rng = random.Random(SEED - index)
        for i in range(MIXED_ROUNDS):
            size = pick_size(rng)
            data = (b"<%d:%d>" % (index, i) + BLOB[i : i + size])[:size]
            response = conn.get_response(conn.request("POST", "/echo", body=data))
            assert sha256(read_body(response, "amt", 32 * KIB)) == sha256(data)
        return 0

    workers: list[tuple[Callable[[int], int], int]] = []
    for fn, count in (
        (pinger, 2),
        (push_checker, 3),
        (canceller, 4),
        (chunked_reader, 4),
        (echoer, 5),
    ):
        workers += [(fn, i) for i in range(count)]

    def call(fn: Callable[[int], int], index: int) -> int:
        return fn(index)

    with hang_guard(watchdog_fd, 100) as threads, conn:
        run_threads(call, workers, timeout=75, dump_fd=watchdog_fd, threads=threads)
        # PINGs were answered and the answers processed while the others read.
        final = conn.get_response(conn.request("GET", "/1k.bin"))
        assert final.read() == nghttpd_tls.read("1k.bin")
        assert conn.last_ping_ack in sent_pings
        assert_connection_clean(conn)


# -- 5. HTTP/1.1: threads take turns on one connection -----------------------------------------

H11_THREADS = 8
H11_REQUESTS = 30


@pytest.mark.timeout(120)
def test_http11_threads_take_turns(nginx_plain: NginxServer, watchdog_fd: int) -> None:
    conn = HTTP11Connection(nginx_plain.host, nginx_plain.port, secure=False, timeout=30)
    files = ("empty.bin", "1k.bin", "64k.bin", "index.html", "text.txt", "1m.bin")

    def worker(index: int) -> Moved:
        rng = random.Random(SEED + 7 * index)
        moved = Moved()
        for i in range(H11_REQUESTS):
            choice = rng.random()
            upload = b""
            if choice < 0.25:
                # A request body: nginx reads and discards it, then answers.
                upload = (b"<%d:%d>" % (index, i) + BLOB)[: pick_size(rng)]
                conn.request(
                    "POST",
                    "/status/200",
                    body=as_upload(upload, rng.choice(("bytes", "chunks", "file"))),
                )
                expected = b"status 200\n"
                where = f"POST /status/200 with {len(upload)} bytes"
            else:
                name = rng.choice(files)
                path = ("/chunked/" if choice < 0.45 else "/") + name
                conn.request("GET", path)
                expected = nginx_plain.read(name)
                where = f"GET {path}"
            response = conn.get_response()
            assert response.version is HTTPVersion.http11, where
            assert response.status == 200, where
            body = read_body(response, rng.choice(("all", "amt", "chunked", "iter")), 16 * KIB)
            assert len(body) == len(expected), where
            assert sha256(body) == sha256(expected), where
            moved.requests += 1
            moved.up += len(upload)
            moved.down += len(body)
        return moved

    started = time.monotonic()
    with hang_guard(watchdog_fd, 90) as threads, conn:
        results = run_threads(
            worker,
            [(i,) for i in range(H11_THREADS)],
            timeout=60,
            dump_fd=watchdog_fd,
            threads=threads,
        )
        elapsed = time.monotonic() - started
        moved = sum(results, Moved())
        assert moved.requests == H11_THREADS * H11_REQUESTS
        # Still usable afterwards.
        conn.request("GET", "/1k.bin")
        assert conn.get_response().read() == nginx_plain.read("1k.bin")
    report("8 threads x 30 requests, HTTP11Connection (nginx)", moved, elapsed)
