"""
A request's total deadline (``hyper.Timeout(total=...)``): a server that trickles its body
one byte at a time never trips the per-wait read timeout, but the total deadline ends the
request on time, over HTTP/1.1, HTTP/2 and HTTP/3, through the requests adapter and the
CLI's ``--max-time``; over HTTP/2 and HTTP/3 the connection stays usable for the next
request; over HTTP/1.1 the exchange is broken off and the next request opens a new
connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import urllib3

import hyper
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection, Timeout
from hyper.common.exceptions import (
    ConnectTimeout,
    DeadlineExceeded,
    InvalidRequest,
    ReadTimeout,
)
from hyper.contrib import HTTP20Adapter
from hyper.tls import init_context
from tests.support.cli import run_cli
from tests.support.h3servers import H3Server
from tests.support.http2bin import Http2binServer

#: httpbin sends 40 bytes over 4 s: one every 0.1 s, well inside the read timeout.
TRICKLE = "/drip?duration=4&numbytes=40&delay=0"
#: The per-wait read timeout: every byte of TRICKLE comes sooner.
READ = 1.0
#: The total deadline the tests set: long before TRICKLE ends.
TOTAL = 0.8
#: How late past the deadline the error may come (a loaded machine, the poll granularity).
SLACK = 1.5
#: How early: poll() takes whole milliseconds, and may wake up to one before the deadline.
EARLY = 0.01


def check_elapsed(start: float, total: float = TOTAL) -> None:
    """Assert about ``total`` seconds passed since ``start`` (a :func:`time.monotonic`)."""
    elapsed = time.monotonic() - start
    assert total - EARLY <= elapsed < total + SLACK, f"took {elapsed:.2f} s for {total} s"


@contextmanager
def ends_at_deadline(start: float | None = None, total: float = TOTAL) -> Iterator[None]:
    """Assert the block raises DeadlineExceeded about ``total`` seconds after ``start`` (the
    request's start; by default the block's)."""
    if start is None:
        start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=rf"total deadline of {total:g} s passed"):
        yield
    check_elapsed(start, total)


def h2_connection(server: Http2binServer, **kwargs: Any) -> HTTP20Connection:
    assert server.ca_cert_path is not None
    context = init_context(cert_path=str(server.ca_cert_path))
    return HTTP20Connection(server.host, server.port, secure=True, ssl_context=context, **kwargs)


def read_all(conn: Any, path: str, **kwargs: Any) -> bytes:
    stream_id = conn.request("GET", path, **kwargs)
    response = conn.get_response() if stream_id is None else conn.get_response(stream_id)
    body: bytes = response.read()
    return body


# -- the value ------------------------------------------------------------------------------


def test_timeout_is_an_immutable_value_exported_from_hyper() -> None:
    value = hyper.Timeout(connect=3, read=10, total=30)
    assert value == Timeout(3, 10, 30)
    assert hash(value) == hash(Timeout(3, 10, 30))
    assert value != Timeout(3, 10, 31)
    assert repr(value) == "Timeout(connect=3, read=10, total=30)"
    with pytest.raises(AttributeError):
        value.total = 5  # type: ignore[misc]
    assert Timeout().start() is None  # no total: no deadline to run


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total": -1}, r"Timeout total must be a number of seconds >= 0"),
        ({"total": float("nan")}, r"Timeout total must be a number of seconds >= 0"),
        ({"read": "5"}, r"Timeout read must be an int, float or None, not str"),
        ({"connect": True}, r"Timeout connect must be an int, float or None, not bool"),
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Timeout(**kwargs)


def test_deadline_exceeded_is_a_read_timeout() -> None:
    assert issubclass(DeadlineExceeded, ReadTimeout)
    assert issubclass(DeadlineExceeded, TimeoutError)


# -- HTTP/1.1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["request", "connection"])
def test_http11_trickled_body_trips_the_total_not_the_read_timeout(
    http2bin_plain: Http2binServer, where: str
) -> None:
    limits = Timeout(connect=5, read=READ, total=TOTAL)
    on_conn = limits if where == "connection" else 5
    with HTTP11Connection(http2bin_plain.host, http2bin_plain.port, timeout=on_conn) as conn:
        per_request = {"timeout": limits} if where == "request" else {}
        # Without the total the same body arrives whole: the read timeout never trips.
        assert (
            len(read_all(conn, TRICKLE.replace("duration=4", "duration=1.2"), timeout=READ)) == 40
        )
        with ends_at_deadline():
            read_all(conn, TRICKLE, **per_request)
        # The exchange was broken off mid-body: the next request opens a new connection.
        assert read_all(conn, "/bytes/5", timeout=5) and not conn.busy


def test_http11_deadline_covers_waiting_for_the_response_head(
    http2bin_plain: Http2binServer,
) -> None:
    with HTTP11Connection(http2bin_plain.host, http2bin_plain.port, timeout=5) as conn:
        start = time.monotonic()
        conn.request("GET", "/delay/3", timeout=Timeout(read=5, total=TOTAL))
        with ends_at_deadline(start):
            conn.get_response()


# -- HTTP/2 ---------------------------------------------------------------------------------


def test_http2_trickled_body_trips_the_total_and_the_connection_lives_on(
    http2bin_tls: Http2binServer,
) -> None:
    with h2_connection(http2bin_tls, timeout=5) as conn:
        start = time.monotonic()
        first = conn.request("GET", TRICKLE, timeout=Timeout(read=READ, total=TOTAL))
        response = conn.get_response(first)
        with ends_at_deadline(start):
            response.read()
        # The stream was reset; the connection carries the next request (the next id).
        second = conn.request("GET", "/bytes/5")
        assert second == first + 2
        assert len(conn.get_response(second).read()) == 5


def test_http2_deadline_covers_waiting_for_the_response_head(
    http2bin_tls: Http2binServer,
) -> None:
    with h2_connection(http2bin_tls, timeout=Timeout(connect=5, read=5, total=TOTAL)) as conn:
        start = time.monotonic()
        stream_id = conn.request("GET", "/delay/3")
        with ends_at_deadline(start):
            conn.get_response(stream_id)
        # Given up: its id is forgotten, and the connection goes on.
        with pytest.raises(InvalidRequest):
            conn.get_response(stream_id)
        assert len(read_all(conn, "/bytes/7", timeout=5)) == 7


def test_http_connection_deadline_includes_settling_the_protocol(
    http2bin_tls: Http2binServer,
) -> None:
    assert http2bin_tls.ca_cert_path is not None
    context = init_context(cert_path=str(http2bin_tls.ca_cert_path))
    with HTTPConnection(
        http2bin_tls.host, http2bin_tls.port, secure=True, ssl_context=context, timeout=5
    ) as conn:
        with ends_at_deadline():
            read_all(conn, TRICKLE, timeout=Timeout(read=READ, total=TOTAL))
        assert conn.version.value == "HTTP/2"
        assert len(read_all(conn, "/bytes/3")) == 3


def test_a_deadline_already_passed_refuses_to_connect(http2bin_tls: Http2binServer) -> None:
    with (
        h2_connection(http2bin_tls, timeout=Timeout(total=0)) as conn,
        pytest.raises(ConnectTimeout, match="total deadline of 0 s"),
    ):
        conn.request("GET", "/get")


# -- HTTP/3 ---------------------------------------------------------------------------------


@pytest.mark.http3
def test_http3_trickled_body_trips_the_total_and_the_connection_lives_on(
    hypercorn_h3_conn: Any, hypercorn_h3: H3Server
) -> None:
    conn = hypercorn_h3_conn
    start = time.monotonic()
    first = conn.request("GET", TRICKLE, timeout=Timeout(read=READ, total=TOTAL))
    response = conn.get_response(first)
    with ends_at_deadline(start):
        response.read()
    assert len(read_all(conn, "/bytes/5")) == 5
    assert conn.connections_opened == 1  # the same QUIC connection carried both


# -- the requests adapter and the CLI -------------------------------------------------------


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    s.trust_env = False
    s.mount("https://", HTTP20Adapter())
    s.mount("http://", HTTP20Adapter())
    yield s
    s.close()


def test_adapter_maps_urllib3_total(
    session: requests.Session, http2bin_tls: Http2binServer
) -> None:
    start = time.monotonic()
    # requests turns a time-out while it reads the body into ConnectionError.
    with pytest.raises(requests.exceptions.ConnectionError, match="total deadline"):
        session.get(
            http2bin_tls.url(TRICKLE),
            verify=str(http2bin_tls.ca_cert_path),
            timeout=urllib3.Timeout(connect=5, read=READ, total=TOTAL),
        )
    check_elapsed(start)
    # Without a total the same timeouts let the whole (shorter) body through.
    response = session.get(
        http2bin_tls.url(TRICKLE.replace("duration=4", "duration=1.2")),
        verify=str(http2bin_tls.ca_cert_path),
        timeout=urllib3.Timeout(connect=5, read=READ),
    )
    assert len(response.content) == 40


def test_cli_max_time(http2bin_tls: Http2binServer) -> None:
    start = time.monotonic()
    result = run_cli(
        "--cacert", http2bin_tls.ca_cert_path, "--max-time", TOTAL, http2bin_tls.url(TRICKLE)
    )
    assert result.returncode == 1
    assert "total deadline" in result.stderr.decode()
    check_elapsed(start)


@pytest.mark.parametrize("value", ["-1", "0", "soon"])
def test_cli_refuses_a_bad_max_time(value: str) -> None:
    result = run_cli("--max-time", value, "https://127.0.0.1:9/")
    assert result.returncode == 2
    assert "--max-time" in result.stderr.decode()
