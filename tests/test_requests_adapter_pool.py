"""What requests users expect of a transport adapter beyond sending one request, checked
with :class:`hyper.contrib.HTTP20Adapter` on real sessions against scripted local servers:

* ``max_retries``: urllib3's ``Retry`` rules (connect, read and status retries, only
  idempotent methods after the request went out, ``Retry-After``, backoff);
* the pool: ``pool_maxsize`` and ``pool_block`` for HTTP/1.1, idle connections closed after
  ``idle_timeout``, ``pool_connections`` origins kept, and a ``stream=True`` body that stays
  readable after its session is closed;
* requests' own checks and errors: ``timeout`` values, CA and certificate paths, proxy URLs,
  hosts, ``InsecureRequestWarning``, and the requests exception for each failure.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.exceptions
from urllib3.util import Retry

import hyper.common.sockets
from hyper.common.exceptions import SocketError
from hyper.common.eyeballs import DEFAULT_POLICY, ConnectPolicy
from hyper.common.trace import ConnectRecorder
from hyper.contrib import HTTP20Adapter
from tests.support.adapter import session_with
from tests.support.http11 import RawReply, http11_responder
from tests.support.http11 import Reply as Reply11
from tests.support.http11 import Request as Request11
from tests.support.scripted import ScriptedRawServer

pytestmark = pytest.mark.timeout(20)

RawFactory = Callable[..., ScriptedRawServer]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statuses(*replies: Reply11 | RawReply) -> Callable[[Request11], Reply11 | RawReply]:
    """A route answering the n-th request with the n-th reply (the last one from then on)."""
    served = iter(replies)
    last: list[Reply11 | RawReply] = []

    def route(_: Request11) -> Reply11 | RawReply:
        reply = next(served, None)
        if reply is None:
            return last[0]
        last[:] = [reply]
        return reply

    return route


# -- max_retries --------------------------------------------------------------------------------


def test_status_retries_follow_retry_after(scripted_raw_server: RawFactory) -> None:
    """503 with Retry-After twice, then 200: Retry(status_forcelist=[503]) sends the request
    three times and returns the 200."""
    busy = Reply11(503, [("Retry-After", "0")], b"busy")
    responder = http11_responder({"/": statuses(busy, busy, Reply11(200, [], b"done"))})
    retries = Retry(total=3, status_forcelist=[503])
    with (
        scripted_raw_server(responder) as server,
        session_with(HTTP20Adapter(max_retries=retries)) as session,
    ):
        response = session.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert (response.status_code, response.text) == (200, "done")
    assert len(responder.requests) == 3


def test_status_retries_exhausted_raise_retry_error(scripted_raw_server: RawFactory) -> None:
    responder = http11_responder({"/": Reply11(503, [("Retry-After", "0")], b"busy")})
    with scripted_raw_server(responder) as server:
        adapter = HTTP20Adapter(max_retries=Retry(total=2, status_forcelist=[503]))
        with session_with(adapter) as session, pytest.raises(requests.exceptions.RetryError):
            session.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert len(responder.requests) == 3


def test_status_retries_without_raise_on_status_return_the_last_response(
    scripted_raw_server: RawFactory,
) -> None:
    responder = http11_responder({"/": Reply11(503, [], b"busy")})
    retries = Retry(total=1, status_forcelist=[503], raise_on_status=False)
    with (
        scripted_raw_server(responder) as server,
        session_with(HTTP20Adapter(max_retries=retries)) as session,
    ):
        response = session.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert (response.status_code, response.text) == (503, "busy")
    assert len(responder.requests) == 2


def test_status_retries_only_for_allowed_methods(scripted_raw_server: RawFactory) -> None:
    """POST is not in Retry's default allowed_methods: its 503 is returned as is."""
    responder = http11_responder({"/": Reply11(503, [], b"busy")})
    with scripted_raw_server(responder) as server:
        adapter = HTTP20Adapter(max_retries=Retry(total=3, status_forcelist=[503]))
        with session_with(adapter) as session:
            response = session.post(f"http://127.0.0.1:{server.port}/", data=b"x", timeout=5)
    assert response.status_code == 503
    assert len(responder.requests) == 1


@pytest.mark.parametrize(("method", "attempts"), [("GET", 3), ("POST", 1)])
def test_read_retries_only_for_idempotent_methods(
    scripted_raw_server: RawFactory, method: str, attempts: int
) -> None:
    """The server takes the request and hangs up without answering: a GET is sent again as
    Retry(read=2) allows, a POST (which may have taken effect) is not."""
    responder = http11_responder({}, default=RawReply(b"", close=True))
    with scripted_raw_server(responder) as server:
        adapter = HTTP20Adapter(max_retries=Retry(total=5, read=2))
        with session_with(adapter) as session, pytest.raises(requests.ConnectionError):
            session.request(method, f"http://127.0.0.1:{server.port}/", data=b"d", timeout=5)
    assert len(responder.requests) == attempts


def test_a_streamed_body_is_not_sent_again(scripted_raw_server: RawFactory) -> None:
    """A generator body cannot be replayed: no retry even for an idempotent PUT."""
    responder = http11_responder({}, default=RawReply(b"", close=True))
    with scripted_raw_server(responder) as server:
        adapter = HTTP20Adapter(max_retries=Retry(total=3, read=3))
        with session_with(adapter) as session, pytest.raises(requests.ConnectionError):
            session.put(f"http://127.0.0.1:{server.port}/", data=iter([b"a", b"b"]), timeout=5)
    assert len(responder.requests) == 1


def test_a_file_body_is_sent_whole_again(scripted_raw_server: RawFactory, tmp_path: Path) -> None:
    """A seekable file body is rewound before it is sent again."""
    busy = Reply11(503, [("Retry-After", "0")], b"busy")
    responder = http11_responder({"/": statuses(busy, Reply11(200, [], b"ok"))})
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"0123456789" * 100)
    retries = Retry(total=2, status_forcelist=[503], allowed_methods=["PUT"])
    with (
        scripted_raw_server(responder) as server,
        upload.open("rb") as body,
        session_with(HTTP20Adapter(max_retries=retries)) as session,
    ):
        response = session.put(f"http://127.0.0.1:{server.port}/", data=body, timeout=5)
    assert response.status_code == 200
    assert [request.body for request in responder.requests] == [upload.read_bytes()] * 2


def test_connect_retries_back_off(closed_port: int) -> None:
    """Nothing listens: Retry(connect=3, backoff_factor=0.1) makes four attempts with
    0, 0.2 and 0.4 s between them before the ConnectionError; the default makes one."""
    url = f"http://127.0.0.1:{closed_port}/"
    adapter = HTTP20Adapter(max_retries=Retry(total=None, connect=3, backoff_factor=0.1))
    start = time.monotonic()
    with session_with(adapter) as session, pytest.raises(requests.ConnectionError):
        session.get(url, timeout=5)
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    with session_with(HTTP20Adapter()) as session, pytest.raises(requests.ConnectionError):
        session.get(url, timeout=5)
    assert time.monotonic() - start < 0.5


def test_an_int_max_retries_counts_connect_retries(closed_port: int) -> None:
    adapter = HTTP20Adapter(max_retries=2)
    assert isinstance(adapter.max_retries, Retry)
    assert adapter.max_retries.total == 2
    with session_with(adapter) as session, pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{closed_port}/", timeout=5)


# -- the pool ------------------------------------------------------------------------------------


class EndCounting:
    """A connection handler that counts the connections the client has ended."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.ended = threading.Semaphore(0)

    def __call__(self, sock: socket.socket) -> None:
        try:
            self.handler(sock)
        finally:
            self.ended.release()


@pytest.fixture
def ends() -> EndCounting:
    return EndCounting(http11_responder({}, default=lambda request: Reply11(200, [], b"x" * 1000)))


@pytest.fixture
def http11_server(
    scripted_raw_server: RawFactory, ends: EndCounting
) -> Iterator[ScriptedRawServer]:
    with scripted_raw_server(ends) as server:
        yield server


def test_pool_block_waits_for_a_busy_connection(http11_server: ScriptedRawServer) -> None:
    """pool_maxsize=1, pool_block: a second request waits until the first response is read,
    then reuses its connection."""
    url = f"http://127.0.0.1:{http11_server.port}/"
    with session_with(HTTP20Adapter(pool_maxsize=1, pool_block=True)) as session:
        first = session.get(url, stream=True, timeout=5)
        started = threading.Event()
        result: list[requests.Response] = []

        def second() -> None:
            started.set()
            result.append(session.get(url, timeout=5))

        thread = threading.Thread(target=second)
        thread.start()
        assert started.wait(5)
        thread.join(0.3)
        assert thread.is_alive() and not result  # waiting for the pool
        assert first.content == b"x" * 1000
        thread.join(5)
        assert result[0].content == b"x" * 1000
    assert http11_server.connection_count == 1


def test_pool_block_gives_up_after_the_connect_timeout(http11_server: ScriptedRawServer) -> None:
    url = f"http://127.0.0.1:{http11_server.port}/"
    with session_with(HTTP20Adapter(pool_maxsize=1, pool_block=True)) as session:
        first = session.get(url, stream=True, timeout=(0.3, 5))
        start = time.monotonic()
        with pytest.raises(requests.ConnectionError, match="pool_maxsize=1"):
            session.get(url, timeout=(0.3, 5))
        assert 0.3 <= time.monotonic() - start < 3
        first.close()


def test_a_full_pool_opens_an_extra_connection_closed_after_use(
    http11_server: ScriptedRawServer, ends: EndCounting
) -> None:
    url = f"http://127.0.0.1:{http11_server.port}/"
    adapter = HTTP20Adapter(pool_maxsize=1)
    with session_with(adapter) as session:
        first = session.get(url, stream=True, timeout=5)
        second = session.get(url, stream=True, timeout=5)
        assert http11_server.connection_count == 2
        (pool,) = adapter.connections.values()
        assert len(pool) == 1
        assert second.content == first.content == b"x" * 1000
        # The extra connection was closed (the server saw its end), the pooled one kept.
        assert ends.ended.acquire(timeout=5)
        assert session.get(url, timeout=5).ok
        assert http11_server.connection_count == 2
        assert not ends.ended.acquire(timeout=0)


def test_idle_connections_are_closed_after_idle_timeout(
    http11_server: ScriptedRawServer,
) -> None:
    url = f"http://127.0.0.1:{http11_server.port}/"
    with session_with(HTTP20Adapter(idle_timeout=0.0)) as session:
        assert session.get(url, timeout=5).ok
        assert session.get(url, timeout=5).ok
    assert http11_server.connection_count == 2
    with session_with(HTTP20Adapter()) as session:
        assert session.get(url, timeout=5).ok
        assert session.get(url, timeout=5).ok
    assert http11_server.connection_count == 3


def test_pool_connections_bounds_the_origins_kept(scripted_raw_server: RawFactory) -> None:
    counted = EndCounting(http11_responder({}, default=b"ok"))
    adapter = HTTP20Adapter(pool_connections=1)
    other = http11_responder({}, default=b"ok")
    with (
        scripted_raw_server(counted) as one,
        scripted_raw_server(other) as two,
        session_with(adapter) as session,
    ):
        assert session.get(f"http://127.0.0.1:{one.port}/", timeout=5).ok
        assert session.get(f"http://127.0.0.1:{two.port}/", timeout=5).ok
        assert [key[2] for key in adapter.connections] == [two.port]
        # The first origin's connection was closed when its key was evicted.
        assert counted.ended.acquire(timeout=5)


def test_a_streamed_body_outlives_its_session(
    http11_server: ScriptedRawServer, ends: EndCounting
) -> None:
    """requests.get(..., stream=True) closes its session before returning: the body can
    still be read, and the connection is closed once it has been."""
    url = f"http://127.0.0.1:{http11_server.port}/"
    with session_with(HTTP20Adapter()) as session:
        response = session.get(url, stream=True, timeout=5)
    assert not ends.ended.acquire(timeout=0)
    assert response.content == b"x" * 1000
    assert ends.ended.acquire(timeout=5)


# -- requests' checks and errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "message"),
    [((3, 4, 5), "(connect, read)"), ("foo", "must be an int, float or None")],
)
def test_timeouts_are_checked_as_requests_checks_them(
    http11_server: ScriptedRawServer, timeout: Any, message: str
) -> None:
    with session_with(HTTP20Adapter()) as session, pytest.raises(ValueError, match=message):
        session.get(f"http://127.0.0.1:{http11_server.port}/", timeout=timeout)
    assert http11_server.connection_count == 0


def test_read_timeout_says_read_timed_out(scripted_raw_server: RawFactory) -> None:
    responder = http11_responder({}, default=lambda request: RawReply(b"", close=False))
    with (
        scripted_raw_server(responder) as server,
        session_with(HTTP20Adapter()) as session,
        pytest.raises(requests.exceptions.ReadTimeout) as caught,
    ):
        session.get(f"http://127.0.0.1:{server.port}/", timeout=(5, 0.2))
    assert "Read timed out" in caught.value.args[0].args[0]


def test_missing_ca_and_certificate_files_fail_before_connecting(
    http11_server: ScriptedRawServer, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.pem")
    url = f"https://127.0.0.1:{http11_server.port}/"
    with (
        session_with(HTTP20Adapter()) as session,
        pytest.raises(OSError, match="TLS CA certificate bundle, invalid path"),
    ):
        session.get(url, verify=missing)
        with pytest.raises(OSError, match="TLS certificate file, invalid path"):
            session.get(url, cert=missing)
        with pytest.raises(OSError, match="TLS key file, invalid path"):
            session.get(url, cert=(str(tmp_path), missing))
    assert http11_server.connection_count == 0


@pytest.mark.parametrize(
    "proxy", ["http:/badproxyurl:3128", "http://:8080", "https://", "http:///example.com:8080"]
)
def test_a_proxy_url_without_host_is_invalid(proxy: str) -> None:
    with (
        session_with(HTTP20Adapter()) as session,
        pytest.raises(requests.exceptions.InvalidProxyURL),
    ):
        session.get("http://127.0.0.1:9/", proxies={"http": proxy})


def test_a_proxy_without_port_uses_port_80(monkeypatch: pytest.MonkeyPatch) -> None:
    """As urllib3 does: the http scheme's port, not 8080. (The connection attempt is
    recorded and refused before any packet leaves.)"""
    attempts: list[tuple[str, int]] = []

    def refuse(
        host: str,
        port: int,
        timeout: float | None,
        policy: ConnectPolicy = DEFAULT_POLICY,
        recorder: ConnectRecorder | None = None,
    ) -> socket.socket:
        attempts.append((host, port))
        raise SocketError("refused by the test")

    monkeypatch.setattr(hyper.common.sockets, "open_tcp", refuse)
    with session_with(HTTP20Adapter()) as session, pytest.raises(requests.ConnectionError):
        session.get("https://origin.example/", proxies={"https": "http://127.0.0.1"}, timeout=5)
    assert attempts == [("127.0.0.1", 80)]


def test_unverified_https_warns() -> None:
    from urllib3.exceptions import InsecureRequestWarning

    # A listener that never answers: the warning comes before the handshake, which times out.
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,
        session_with(HTTP20Adapter()) as session,
        pytest.warns(InsecureRequestWarning),
        pytest.raises(requests.ConnectionError),
    ):
        port = silent.getsockname()[1]
        session.get(f"https://127.0.0.1:{port}/", verify=False, timeout=0.5)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        # A redirect to a URL without a host.
        (Reply11(302, [("Location", "http://:1/")]), requests.exceptions.InvalidURL),
        # A head that breaks off: requests' exception for a response cut short.
        (
            RawReply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", close=True),
            requests.exceptions.ChunkedEncodingError,
        ),
        (
            RawReply(
                b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Length: 32\r\n\r\n" + b"x" * 32,
                close=True,
            ),
            requests.exceptions.InvalidHeader,
        ),
    ],
    ids=["redirect-to-empty-host", "head-cut-short", "conflicting-content-lengths"],
)
def test_bad_responses_raise_the_exception_requests_raises(
    scripted_raw_server: RawFactory, reply: Reply11 | RawReply, error: type[Exception]
) -> None:
    responder = http11_responder({"/": reply})
    with (
        scripted_raw_server(responder) as server,
        session_with(HTTP20Adapter()) as session,
        pytest.raises(error),
    ):
        session.get(f"http://127.0.0.1:{server.port}/", timeout=5)
