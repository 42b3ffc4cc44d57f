"""HTTP20Connection against real HTTP/2 servers: nghttpd (TLS and h2c) and hypercorn+httpbin.

Every body is checked byte for byte (sha256 against the generated document root, or the
exact upload for nghttpd's ``--echo-upload``); httpbin answers are parsed as JSON.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import io
import json
import logging
import random
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame

from hyper import HTTP20Connection, HTTP20Response, HTTPHeaderMap
from hyper.common.exceptions import ConnectionClosed, HyperError, InvalidRequest
from hyper.http20.exceptions import ConnectionError as H2ConnectionError
from hyper.http20.exceptions import ProtocolError
from hyper.http20.window import BaseFlowControlManager
from hyper.tls import init_context
from tests.support.http2bin import Http2binServer
from tests.support.nghttpd import NghttpdServer
from tests.support.scripted import ScriptedServer, ServerConnection
from tests.support.versions import LOWEST_VERSIONS

#: Files of the generated document root small enough to fetch by the hundred.
SMALL_FILES = ("1k.bin", "64k.bin", "index.html", "empty.bin")

# -- helpers -----------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_connection(server: NghttpdServer | Http2binServer, **kwargs: Any) -> HTTP20Connection:
    """A connection to ``server``: TLS trusting the test CA, or h2c with prior knowledge."""
    if server.tls:
        assert server.ca_cert_path is not None
        context = init_context(cert_path=str(server.ca_cert_path))
        return HTTP20Connection(
            server.host, server.port, secure=True, ssl_context=context, timeout=10, **kwargs
        )
    return HTTP20Connection(server.host, server.port, secure=False, timeout=10, **kwargs)


def fetch(conn: HTTP20Connection, path: str, method: str = "GET", **kwargs: Any) -> HTTP20Response:
    return conn.get_response(conn.request(method, path, **kwargs))


def check_file(server: NghttpdServer, name: str, body: bytes) -> None:
    assert len(body) == server.sizes[name], name
    assert sha256(body) == server.files[name], name


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("nghttpd_tls", id="tls", marks=pytest.mark.nghttpd),
        pytest.param("nghttpd_h2c", id="h2c", marks=pytest.mark.nghttpd),
    ]
)
def nghttpd(request: pytest.FixtureRequest) -> NghttpdServer:
    """nghttpd over TLS, then over h2c (prior knowledge)."""
    server: NghttpdServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def conn(nghttpd: NghttpdServer) -> Iterator[HTTP20Connection]:
    connection = open_connection(nghttpd)
    yield connection
    connection.close()


@pytest.fixture
def bin_conn(http2bin_tls: Http2binServer) -> Iterator[HTTP20Connection]:
    connection = open_connection(http2bin_tls)
    yield connection
    connection.close()


def httpbin_json(conn: HTTP20Connection, path: str, **kwargs: Any) -> dict[str, Any]:
    response = fetch(conn, path, **kwargs)
    assert response.status == 200
    assert response.headers[b"content-type"] == [b"application/json"]
    result: dict[str, Any] = json.loads(response.read())
    return result


# -- nghttpd: downloads ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1k.bin", "64k.bin", "1m.bin", "10m.bin", "empty.bin"])
def test_get_docroot_file(conn: HTTP20Connection, nghttpd: NghttpdServer, name: str) -> None:
    response = fetch(conn, "/" + name)
    assert response.status == 200
    assert response.reason == ""
    assert isinstance(response.headers, HTTPHeaderMap)
    assert response.headers[b"content-length"] == [str(nghttpd.sizes[name]).encode()]
    assert response.headers[b"content-type"] == [b"application/octet-stream"]
    assert response.headers[b"server"][0].startswith(b"nghttpd")
    check_file(nghttpd, name, response.read())
    assert response.read() == b""


def test_get_index_html_headers(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    response = fetch(conn, "/index.html")
    assert response.status == 200
    # Header names come out lower-case bytes; lookups ignore case and accept str.
    assert response.headers["Content-Type"] == [b"text/html"]
    assert response.headers[b"CONTENT-LENGTH"] == [b"%d" % nghttpd.sizes["index.html"]]
    assert b"content-length" in response.headers
    assert b"x-not-there" not in response.headers
    assert all(
        isinstance(k, bytes) and isinstance(v, bytes) and k == k.lower()
        for k, v in response.headers.items()
    )
    assert not any(k.startswith(b":") for k in response.headers.keys())  # noqa: SIM118
    body = response.read()
    assert body == nghttpd.read("index.html")
    check_file(nghttpd, "index.html", body)


def test_missing_file_is_404(conn: HTTP20Connection) -> None:
    response = fetch(conn, "/no-such-file.bin")
    assert response.status == 404
    assert b"404" in response.read()
    # The connection is still fine afterwards.
    assert fetch(conn, "/1k.bin").status == 200


def test_head_request(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    response = fetch(conn, "/64k.bin", method="HEAD")
    assert response.status == 200
    assert response.headers[b"content-length"] == [b"65536"]
    assert response.read() == b""
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())


def test_stream_ids_are_odd_and_increasing(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    ids = [conn.request("GET", "/1k.bin") for _ in range(5)]
    assert ids == [1, 3, 5, 7, 9]
    for stream_id in ids:
        response = conn.get_response(stream_id)
        assert response.stream_id == stream_id
        check_file(nghttpd, "1k.bin", response.read())
    assert conn.request("GET", "/1k.bin") == 11
    check_file(nghttpd, "1k.bin", conn.get_response().read())


@pytest.mark.parametrize("order", ["reverse", "random"])
def test_hundred_requests_in_flight(
    conn: HTTP20Connection, nghttpd: NghttpdServer, order: str
) -> None:
    names = [SMALL_FILES[i % len(SMALL_FILES)] for i in range(100)]
    requests = [(conn.request("GET", "/" + name), name) for name in names]
    assert [sid for sid, _ in requests] == list(range(1, 201, 2))
    if order == "reverse":
        requests.reverse()
    else:
        random.Random(1234).shuffle(requests)
    for stream_id, name in requests:
        response = conn.get_response(stream_id)
        assert response.status == 200
        assert response.stream_id == stream_id
        check_file(nghttpd, name, response.read())


def test_get_response_without_id_returns_oldest(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    first = conn.request("GET", "/64k.bin")
    second = conn.request("GET", "/1k.bin")
    third = conn.request("GET", "/index.html")
    # Fetching the middle one explicitly leaves the first as the oldest.
    middle = conn.get_response(second)
    response = conn.get_response()
    assert response.stream_id == first
    check_file(nghttpd, "64k.bin", response.read())
    check_file(nghttpd, "1k.bin", middle.read())
    response = conn.get_response()
    assert response.stream_id == third
    check_file(nghttpd, "index.html", response.read())


@pytest.mark.parametrize(("amt", "name"), [(1, "64k.bin"), (1000, "1m.bin"), (65536, "10m.bin")])
def test_read_in_pieces(
    conn: HTTP20Connection, nghttpd: NghttpdServer, amt: int, name: str
) -> None:
    response = fetch(conn, "/" + name)
    pieces = []
    while True:
        piece = response.read(amt)
        if not piece:
            break
        pieces.append(piece)
    size = nghttpd.sizes[name]
    # Every piece is exactly amt bytes, except a shorter last one.
    assert len(pieces) == -(-size // amt)
    assert all(len(p) == amt for p in pieces[:-1])
    assert 0 < len(pieces[-1]) <= amt
    check_file(nghttpd, name, b"".join(pieces))
    assert response.read(amt) == b""
    assert response.read() == b""


def test_read_zero_and_then_all(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    response = fetch(conn, "/1m.bin")
    head = response.read(100)
    assert len(head) == 100
    check_file(nghttpd, "1m.bin", head + response.read())


@pytest.mark.parametrize("name", ["64k.bin", "1m.bin", "empty.bin"])
def test_read_chunked(conn: HTTP20Connection, nghttpd: NghttpdServer, name: str) -> None:
    response = fetch(conn, "/" + name)
    pieces = list(response.read_chunked())
    assert all(isinstance(p, bytes) for p in pieces)
    if nghttpd.sizes[name]:
        # nghttpd sends 16 KiB frames: a large body arrives as many pieces.
        assert len(pieces) >= nghttpd.sizes[name] // (1024 * 1024) + 1
        assert max(len(p) for p in pieces) <= 1024 * 1024
    check_file(nghttpd, name, b"".join(pieces))
    assert response.read() == b""


def test_iterate_over_response(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    response = fetch(conn, "/1m.bin")
    pieces = list(response)
    assert len(pieces) > 1
    assert all(pieces)  # iteration skips empty pieces
    check_file(nghttpd, "1m.bin", b"".join(pieces))


def test_mixed_read_styles(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    expected = nghttpd.read("1m.bin")
    response = fetch(conn, "/1m.bin")
    head = response.read(100)
    rest = b"".join(response.read_chunked())
    assert head + rest == expected
    response = fetch(conn, "/1m.bin")
    head = response.read(70_000)
    assert head + b"".join(response) == expected
    # The trailers property pulls the rest of the body in; read() still returns it.
    response = fetch(conn, "/1m.bin")
    head = response.read(10)
    assert response.trailers is None
    assert head + response.read(5) + response.read() == expected


def test_response_context_manager(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    with fetch(conn, "/64k.bin") as response:
        assert response.status == 200
        check_file(nghttpd, "64k.bin", response.read())
    # Leaving the block early, with the body mostly unread, cancels the stream only.
    with fetch(conn, "/10m.bin") as response:
        assert len(response.read(10)) == 10
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())


def test_close_response_mid_body_keeps_connection(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    big = conn.request("GET", "/10m.bin")
    other = conn.request("GET", "/1m.bin")
    response = conn.get_response(big)
    first = response.read(65536)
    assert first == nghttpd.read("10m.bin")[:65536]
    response.close()
    # The other stream in flight is unaffected, and new requests work.
    check_file(nghttpd, "1m.bin", conn.get_response(other).read())
    for name in ("1k.bin", "10m.bin"):
        check_file(nghttpd, name, fetch(conn, "/" + name).read())


def test_cancel_many_large_downloads(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    expected = nghttpd.read("10m.bin")[:65536]
    for _ in range(12):
        response = fetch(conn, "/10m.bin")
        assert response.read(65536) == expected
        response.close()
    check_file(nghttpd, "1m.bin", fetch(conn, "/1m.bin").read())


def test_cancel_sends_one_rst_stream(
    conn: HTTP20Connection, nghttpd: NghttpdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hyper")
    response = fetch(conn, "/10m.bin")
    assert len(response.read(65536)) == 65536
    response.close()
    # Sent after the RST_STREAM: once it is complete, all DATA the server had in flight on
    # the cancelled stream has arrived too.
    check_file(nghttpd, "1m.bin", fetch(conn, "/1m.bin").read())
    resets = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(f"send: RstStreamFrame(stream_id={response.stream_id},")
    ]
    assert len(resets) == 1, resets[:3]
    assert "error_code=8" in resets[0]  # CANCEL


def test_connection_context_manager(nghttpd: NghttpdServer) -> None:
    with open_connection(nghttpd) as conn:
        check_file(nghttpd, "64k.bin", fetch(conn, "/64k.bin").read())
        unread = fetch(conn, "/10m.bin")
    # 10 MiB can't have arrived within the 4 MiB stream window: the rest is gone with the
    # connection.
    with pytest.raises(ConnectionClosed):
        unread.read()


def test_close_then_request_reconnects(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    response = fetch(conn, "/1k.bin")
    check_file(nghttpd, "1k.bin", response.read())
    conn.close()
    conn.close()  # idempotent
    stream_id = conn.request("GET", "/64k.bin")
    assert stream_id % 2 == 1
    response = conn.get_response(stream_id)
    assert response.status == 200
    check_file(nghttpd, "64k.bin", response.read())


def test_fully_received_response_survives_close(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    response = fetch(conn, "/1k.bin")
    # Reading the trailers pulls the whole body in.
    assert response.trailers is None
    conn.close()
    check_file(nghttpd, "1k.bin", response.read())


def test_more_requests_than_the_concurrency_limit(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    # nghttpd allows 100 concurrent streams; request() waits for finished ones to make room
    # (their responses stay buffered until read).
    ids = [conn.request("GET", "/1k.bin") for _ in range(150)]
    assert ids == list(range(1, 301, 2))
    for stream_id in reversed(ids):
        check_file(nghttpd, "1k.bin", conn.get_response(stream_id).read())


def test_large_downloads_in_flight_read_in_reverse(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    # 4 x 10 MiB is more than the 16 MiB connection window: the connection window must be
    # reopened for data buffered on the streams not being read.
    ids = [conn.request("GET", "/10m.bin") for _ in range(4)]
    for stream_id in reversed(ids):
        check_file(nghttpd, "10m.bin", conn.get_response(stream_id).read())


def test_interleaved_reads(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    first = conn.get_response(conn.request("GET", "/1m.bin"))
    second = conn.get_response(conn.request("GET", "/10m.bin"))
    parts: dict[int, list[bytes]] = {1: [], 2: []}
    done = {1: False, 2: False}
    while not all(done.values()):
        for key, response, amt in ((1, first, 10_000), (2, second, 100_000)):
            if done[key]:
                continue
            piece = response.read(amt)
            if piece:
                parts[key].append(piece)
            else:
                done[key] = True
    check_file(nghttpd, "1m.bin", b"".join(parts[1]))
    check_file(nghttpd, "10m.bin", b"".join(parts[2]))


def test_response_misc(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    stream_id = conn.request("GET", "/64k.bin")
    response = conn.get_response(stream_id)
    assert isinstance(response.fileno(), int)
    assert response.fileno() >= 0
    assert str(stream_id) in repr(response)
    assert response.version == conn.version
    # A response is handed out once.
    with pytest.raises(InvalidRequest):
        conn.get_response(stream_id)
    with pytest.raises(InvalidRequest):
        conn.get_response(999)
    with pytest.raises(InvalidRequest):
        conn.get_response()
    check_file(nghttpd, "64k.bin", response.read())


def test_response_read_in_another_thread(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    stream_id = conn.request("GET", "/1m.bin")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        body = pool.submit(lambda: conn.get_response(stream_id).read()).result(timeout=10)
    check_file(nghttpd, "1m.bin", body)


def test_goaway_error_followed_by_data_reports_server_error(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    # nghttpd does this when it gives up on a connection (GOAWAY INTERNAL_ERROR, then the
    # DATA frames it had queued); reproduced here frame-exactly.
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        request = ctx.wait_for_request()
        ctx.conn.send_headers(request.stream_id, [(b":status", b"200")])
        ctx.flush()
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = request.stream_id
        goaway.error_code = 2  # INTERNAL_ERROR
        data = DataFrame(request.stream_id)
        data.data = b"x" * 100
        ctx.send_raw(goaway.serialize() + data.serialize())
        ctx.wait_closed()

    with scripted_server(handler) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=5)
        with pytest.raises(H2ConnectionError) as info:
            conn.get_response(conn.request("GET", "/")).read()
        conn.close()
    assert not isinstance(info.value, ProtocolError)
    assert info.value.error_code == 2
    assert "INTERNAL_ERROR" in str(info.value)


# -- nghttpd: uploads (echoed back) ------------------------------------------------------------


def _echo(conn: HTTP20Connection, body: Any, **kwargs: Any) -> HTTP20Response:
    response = fetch(conn, "/echo", method="POST", body=body, **kwargs)
    assert response.status == 200
    assert response.headers[b"nghttpd-response"] == [b"echo"]
    return response


def test_upload_bytes(conn: HTTP20Connection) -> None:
    payload = random.Random(1).randbytes(3 * 1024 * 1024 + 17)
    response = _echo(conn, payload)
    assert response.headers[b"content-length"] == [str(len(payload)).encode()]
    assert sha256(response.read()) == sha256(payload)


def test_upload_bytearray_and_memoryview(conn: HTTP20Connection) -> None:
    payload = bytes(range(256)) * 1001
    assert _echo(conn, bytearray(payload)).read() == payload
    assert _echo(conn, memoryview(payload)).read() == payload


def test_upload_str_is_utf8(conn: HTTP20Connection) -> None:
    text = "héllo wörld — ☃ 日本語 🐍\n" * 5000
    response = _echo(conn, text)
    expected = text.encode("utf-8")
    assert response.headers[b"content-length"] == [str(len(expected)).encode()]
    assert response.read() == expected


def test_upload_file(conn: HTTP20Connection, tmp_path: Path) -> None:
    payload = random.Random(2).randbytes(5 * 1024 * 1024 + 3)
    path = tmp_path / "upload.bin"
    path.write_bytes(payload)
    with path.open("rb") as f:
        response = _echo(conn, f)
    assert response.headers[b"content-length"] == [str(len(payload)).encode()]
    assert sha256(response.read()) == sha256(payload)


def test_upload_file_from_offset(conn: HTTP20Connection, tmp_path: Path) -> None:
    payload = random.Random(3).randbytes(100_000)
    path = tmp_path / "upload.bin"
    path.write_bytes(payload)
    with path.open("rb") as f:
        f.seek(1000)
        response = _echo(conn, f)
    assert response.read() == payload[1000:]


def test_upload_bytesio(conn: HTTP20Connection) -> None:
    payload = random.Random(4).randbytes(200_001)
    assert _echo(conn, io.BytesIO(payload)).read() == payload


def test_upload_generator(conn: HTTP20Connection) -> None:
    rng = random.Random(5)
    chunks = [rng.randbytes(rng.randrange(1, 300_000)) for _ in range(20)]

    def generate() -> Iterator[bytes]:
        yield from chunks

    response = _echo(conn, generate())
    assert sha256(response.read()) == sha256(b"".join(chunks))


@pytest.mark.parametrize("body", [b"", None, iter(())], ids=["bytes", "none", "empty-iter"])
def test_upload_empty_body(conn: HTTP20Connection, body: Any) -> None:
    response = _echo(conn, body)
    assert response.headers[b"content-length"] == [b"0"]
    assert response.read() == b""


def test_putrequest_before_connect(conn: HTTP20Connection) -> None:
    stream_id = conn.putrequest("POST", "/echo")
    conn.endheaders(message_body=b"payload", final=True, stream_id=stream_id)
    assert conn.get_response(stream_id).read() == b"payload"


def test_putrequest_api(conn: HTTP20Connection) -> None:
    conn.connect()
    parts = [b"a" * 70_000, b"", b"b" * 3, bytes(range(256)) * 400]
    payload = b"".join(parts)
    stream_id = conn.putrequest("POST", "/echo")
    assert stream_id == 1
    conn.putheader("Content-Length", str(len(payload)), stream_id)
    conn.putheader("X-Test", "yes", stream_id)
    conn.endheaders(stream_id=stream_id)
    for part in parts[:-1]:
        conn.send(part, stream_id=stream_id)
    conn.send(parts[-1], final=True, stream_id=stream_id)
    response = conn.get_response(stream_id)
    assert response.status == 200
    assert response.read() == payload


def test_upload_text_file(conn: HTTP20Connection, tmp_path: Path) -> None:
    text = "ligne numéro ☃\n" * 20_000
    path = tmp_path / "upload.txt"
    path.write_text(text, encoding="utf-8")
    with path.open(encoding="utf-8") as f:
        assert _echo(conn, f).read() == text.encode("utf-8")


def test_upload_list_of_chunks(conn: HTTP20Connection) -> None:
    chunks = [b"abc", "déf", b"", bytearray(b"ghi"), b"x" * 100_000]
    assert _echo(conn, chunks).read() == b"abcd\xc3\xa9fghi" + b"x" * 100_000


def test_upload_with_explicit_content_length(conn: HTTP20Connection) -> None:
    chunks = [b"0123456789"] * 1000
    response = _echo(conn, iter(chunks), headers={"Content-Length": "10000"})
    assert response.read() == b"0123456789" * 1000


def test_putrequest_api_defaults_to_latest_stream(conn: HTTP20Connection) -> None:
    conn.connect()
    conn.putrequest("POST", "/echo")
    conn.putheader("X-Test", "yes")
    conn.endheaders()
    conn.send(b"first,")
    conn.send(b"second,")
    conn.send("third", final=True)
    assert conn.get_response().read() == b"first,second,third"


def test_putrequest_partial_body_in_endheaders(conn: HTTP20Connection) -> None:
    conn.connect()
    stream_id = conn.putrequest("POST", "/echo")
    conn.endheaders(message_body=b"first,", stream_id=stream_id)
    conn.send(b"second,", stream_id=stream_id)
    conn.send(b"third", final=True, stream_id=stream_id)
    assert conn.get_response(stream_id).read() == b"first,second,third"


def test_putrequest_api_body_in_endheaders(conn: HTTP20Connection) -> None:
    conn.connect()
    stream_id = conn.putrequest("POST", "/echo")
    conn.endheaders(message_body=b"all at once", final=True, stream_id=stream_id)
    assert conn.get_response(stream_id).read() == b"all at once"


# -- nghttpd: connection features --------------------------------------------------------------


def test_ping(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    assert conn.last_ping_ack is None
    conn.ping(b"12345678")
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())
    assert conn.last_ping_ack == b"12345678"
    conn.ping(b"abcdefgh")
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())
    assert conn.last_ping_ack == b"abcdefgh"


def test_custom_window_manager(nghttpd: NghttpdServer) -> None:
    managers: list[Counting] = []

    class Counting(BaseFlowControlManager):
        def __init__(self, initial_window_size: int, document_size: int | None = None) -> None:
            super().__init__(initial_window_size, document_size)
            self.calls = 0
            self.total = 0
            managers.append(self)

        def increase_window_size(self, frame_size: int) -> int:
            self.calls += 1
            self.total += frame_size
            return frame_size

    with open_connection(nghttpd, window_manager=Counting) as conn:
        check_file(nghttpd, "10m.bin", fetch(conn, "/10m.bin").read())
        size = nghttpd.sizes["10m.bin"]
        connection_managers = [m for m in managers if m.document_size is None]
        stream_managers = [m for m in managers if m.document_size == size]
        assert len(connection_managers) == 1
        assert len(stream_managers) == 1
        # The connection manager hears of every DATA frame, nghttpd sends no padding.
        assert connection_managers[0].total == size
        assert connection_managers[0].calls >= size // (1024 * 1024)
        # The stream manager hears of consumed data; the window was kept open all along.
        assert stream_managers[0].calls > 0
        assert stream_managers[0].total > 0
        assert stream_managers[0].window_size > 0


def test_window_manager_reopening_only_when_blocked(nghttpd: NghttpdServer) -> None:
    blocked_calls: list[int] = []

    class OnlyWhenBlocked(BaseFlowControlManager):
        def increase_window_size(self, frame_size: int) -> int:
            return 0

        def blocked(self) -> int:
            blocked_calls.append(self.window_size)
            return self.initial_window_size - self.window_size

    with open_connection(nghttpd, window_manager=OnlyWhenBlocked) as conn:
        check_file(nghttpd, "10m.bin", fetch(conn, "/10m.bin").read())
        check_file(nghttpd, "1m.bin", fetch(conn, "/1m.bin").read())
    # 10 MiB through a 4 MiB stream window: it ran dry at least twice.
    assert len(blocked_calls) >= 2
    assert all(size <= 0 for size in blocked_calls)


def test_window_manager_must_be_a_subclass(nghttpd: NghttpdServer) -> None:
    with pytest.raises(InvalidRequest):
        open_connection(nghttpd, window_manager=object)
    with pytest.raises(InvalidRequest):
        open_connection(nghttpd, window_manager=BaseFlowControlManager(10))


def test_small_network_buffer(nghttpd: NghttpdServer) -> None:
    conn = open_connection(nghttpd)
    conn.network_buffer_size = 16 * 1024
    with conn:
        for name in ("1m.bin", "10m.bin", "index.html"):
            check_file(nghttpd, name, fetch(conn, "/" + name).read())
        assert conn.network_buffer_size == 16 * 1024


def test_debug_logging(nghttpd: NghttpdServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hyper")
    with open_connection(nghttpd) as conn:
        check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("hyper")]
    sent = [m for m in messages if m.startswith("send:")]
    received = [m for m in messages if m.startswith("received:")]
    assert any("HeadersFrame" in m for m in sent), messages
    assert any("SettingsFrame" in m for m in sent), messages
    assert any("HeadersFrame" in m for m in received), messages
    assert any("DataFrame" in m for m in received), messages


def test_no_debug_logging_by_default(
    nghttpd: NghttpdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hyper")
    with open_connection(nghttpd) as conn:
        check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())
    assert not [r for r in caplog.records if r.name.startswith("hyper")]


def test_threads_share_one_connection(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    def worker(index: int) -> list[int]:
        ids = []
        for i in range(20):
            name = SMALL_FILES[(index + i) % len(SMALL_FILES)]
            stream_id = conn.request("GET", "/" + name)
            response = conn.get_response(stream_id)
            assert response.status == 200
            check_file(nghttpd, name, response.read())
            ids.append(stream_id)
        return ids

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(worker, n) for n in range(20)]
        results = [f.result(timeout=30) for f in futures]
    ids = sorted(sid for result in results for sid in result)
    # 400 distinct streams on one connection.
    assert ids == list(range(1, 801, 2))
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())


def test_threads_putrequest_on_one_connection(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    conn.connect()

    def worker(index: int) -> None:
        for i in range(10):
            payload = b"%d-%d|" % (index, i) * (100 + i)
            stream_id = conn.putrequest("POST", "/echo")
            conn.putheader("X-Worker", str(index), stream_id)
            conn.endheaders(stream_id=stream_id)
            half = len(payload) // 2
            conn.send(payload[:half], stream_id=stream_id)
            conn.send(payload[half:], final=True, stream_id=stream_id)
            assert conn.get_response(stream_id).read() == payload
            # Mixed with plain requests from the same thread.
            check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(worker, n) for n in range(10)]
        for future in futures:
            future.result(timeout=30)


def test_close_from_another_thread_wakes_reader(
    conn: HTTP20Connection, nghttpd: NghttpdServer
) -> None:
    conn.connect()
    # nghttpd answers an upload only once the body is complete: this one never is.
    stream_id = conn.putrequest("POST", "/echo")
    conn.endheaders(stream_id=stream_id)
    conn.send(b"partial body", stream_id=stream_id)

    def wait_for_response() -> BaseException | None:
        try:
            conn.get_response(stream_id).read()
        except HyperError as exc:
            return exc
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(wait_for_response)
        conn.close()
        error = future.result(timeout=5)
    assert isinstance(error, ConnectionClosed)
    # And the connection can be used again.
    check_file(nghttpd, "1k.bin", fetch(conn, "/1k.bin").read())


def test_threads_upload_on_one_connection(conn: HTTP20Connection, nghttpd: NghttpdServer) -> None:
    def worker(index: int) -> None:
        payload = random.Random(index).randbytes(100_000 + index)
        response = conn.get_response(conn.request("POST", "/echo", body=payload))
        assert response.read() == payload

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(worker, n) for n in range(10)]
        for future in futures:
            future.result(timeout=30)


# -- httpbin over TLS --------------------------------------------------------------------------


def test_httpbin_get(bin_conn: HTTP20Connection, http2bin_tls: Http2binServer) -> None:
    data = httpbin_json(bin_conn, "/get?a=1&b=two", headers={"X-Custom-Header": "custom value"})
    assert data["args"] == {"a": "1", "b": "two"}
    assert data["headers"]["X-Custom-Header"] == "custom value"
    assert data["headers"]["Host"] == f"127.0.0.1:{http2bin_tls.port}"
    assert data["url"] == f"https://127.0.0.1:{http2bin_tls.port}/get?a=1&b=two"


def test_httpbin_connection_specific_headers_dropped(bin_conn: HTTP20Connection) -> None:
    headers = [
        ("Connection", "keep-alive, X-Hop-By-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Hop-By-Hop", "secret"),
        ("X-Kept", "kept"),
    ]
    data = httpbin_json(bin_conn, "/get", headers=headers)
    seen = {name.lower() for name in data["headers"]}
    for name in ("connection", "keep-alive", "transfer-encoding", "upgrade", "x-hop-by-hop"):
        assert name not in seen
    assert "proxy-connection" not in seen
    assert data["headers"]["X-Kept"] == "kept"


def test_httpbin_header_forms(bin_conn: HTTP20Connection) -> None:
    as_pairs = httpbin_json(
        bin_conn, "/headers", headers=[(b"X-Bytes", b"raw"), ("X-Multi", "1"), ("x-multi", "2")]
    )["headers"]
    assert as_pairs["X-Bytes"] == "raw"
    assert as_pairs["X-Multi"].replace(" ", "") == "1,2"
    mapping = HTTPHeaderMap([("X-Map", "a"), ("X-Map", "b"), ("X-Single", "  padded  ")])
    from_map = httpbin_json(bin_conn, "/headers", headers=mapping)["headers"]
    assert from_map["X-Map"].replace(" ", "") == "a,b"
    assert from_map["X-Single"] == "padded"


def test_httpbin_host_header_becomes_authority(bin_conn: HTTP20Connection) -> None:
    data = httpbin_json(bin_conn, "/get", headers={"Host": "example.org:1234"})
    assert data["headers"]["Host"] == "example.org:1234"
    assert data["url"] == "https://example.org:1234/get"


def test_httpbin_absolute_url(bin_conn: HTTP20Connection, http2bin_tls: Http2binServer) -> None:
    url = f"https://localhost:{http2bin_tls.port}/get?x=y"
    data = httpbin_json(bin_conn, url)
    assert data["url"] == url
    assert data["headers"]["Host"] == f"localhost:{http2bin_tls.port}"
    assert data["args"] == {"x": "y"}


def test_httpbin_post_json(bin_conn: HTTP20Connection) -> None:
    document = {"name": "hyper", "list": [1, 2, 3], "text": "ünïcode ☃"}
    body = json.dumps(document).encode()
    data = httpbin_json(
        bin_conn,
        "/post",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert data["json"] == document
    assert data["data"] == body.decode()
    assert data["headers"]["Content-Length"] == str(len(body))
    assert data["headers"]["Content-Type"] == "application/json"


def test_httpbin_post_form(bin_conn: HTTP20Connection) -> None:
    data = httpbin_json(
        bin_conn,
        "/post",
        method="POST",
        body="a=1&b=%C3%A9",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert data["form"] == {"a": "1", "b": "é"}
    assert data["headers"]["Content-Length"] == "12"


@pytest.mark.parametrize(
    ("path", "encoding", "flag"),
    [
        ("/gzip", b"gzip", "gzipped"),
        ("/deflate", b"deflate", "deflated"),
        ("/brotli", b"br", "brotli"),
    ],
)
def test_httpbin_compressed(
    bin_conn: HTTP20Connection, path: str, encoding: bytes, flag: str
) -> None:
    response = fetch(bin_conn, path)
    assert response.status == 200
    assert response.headers[b"content-encoding"] == [encoding]
    decoded = response.read()
    assert json.loads(decoded)[flag] is True

    raw_response = fetch(bin_conn, path)
    raw = raw_response.read(decode_content=False)
    assert raw_response.headers[b"content-length"] == [str(len(raw)).encode()]
    assert raw != decoded
    if encoding == b"gzip":
        assert raw[:2] == b"\x1f\x8b"
        assert gzip.decompress(raw) == decoded
    elif encoding == b"deflate":
        assert zlib.decompress(raw) == decoded
    else:
        assert brotli.decompress(raw) == decoded


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/brotli"])
def test_httpbin_compressed_read_amt(bin_conn: HTTP20Connection, path: str) -> None:
    full = fetch(bin_conn, path).read()
    response = fetch(bin_conn, path)
    pieces = []
    while True:
        piece = response.read(10, decode_content=True)
        if not piece:
            break
        assert len(piece) <= 10
        pieces.append(piece)
    assert len(pieces) >= len(full) // 10
    assert b"".join(pieces) == full
    assert response.read(10) == b""


@pytest.mark.parametrize("path", ["/gzip", "/brotli"])
def test_httpbin_compressed_read_chunked(bin_conn: HTTP20Connection, path: str) -> None:
    full = fetch(bin_conn, path).read()
    assert b"".join(fetch(bin_conn, path).read_chunked()) == full
    assert b"".join(fetch(bin_conn, path)) == full
    raw = b"".join(fetch(bin_conn, path).read_chunked(decode_content=False))
    assert raw != full


def test_httpbin_stream(bin_conn: HTTP20Connection) -> None:
    response = fetch(bin_conn, "/stream/20")
    assert response.status == 200
    lines = response.read().splitlines()
    assert len(lines) == 20
    assert [json.loads(line)["id"] for line in lines] == list(range(20))


def test_httpbin_bytes(bin_conn: HTTP20Connection) -> None:
    response = fetch(bin_conn, "/bytes/100000?seed=7")
    assert response.status == 200
    assert response.headers[b"content-length"] == [b"100000"]
    body = response.read()
    assert len(body) == 100000
    # Seeded: the same bytes come back the second time, read in chunks.
    again = b"".join(fetch(bin_conn, "/bytes/100000?seed=7").read_chunked())
    assert again == body


def test_httpbin_drip(bin_conn: HTTP20Connection) -> None:
    response = fetch(bin_conn, "/drip?numbytes=50&duration=0&delay=0")
    assert response.status == 200
    assert response.read() == b"*" * 50


def test_httpbin_status_with_body(bin_conn: HTTP20Connection) -> None:
    response = fetch(bin_conn, "/status/418")
    assert response.status == 418
    assert b"teapot" in response.read()
    response = fetch(bin_conn, "/this/path/does/not/exist")
    assert response.status == 404
    assert b"Not Found" in response.read()


# hypercorn 0.18's WSGI adapter (hypercorn/app_wrappers.py, handle_http/run_app) never sends
# http.response.start when the WSGI body is empty, so every empty-bodied response (HEAD,
# 204, httpbin's bare /status/NNN) turns into a 500 with an empty body. Not a hyper bug.
_HYPERCORN_EMPTY_BODY = pytest.mark.xfail(
    # On the lowest h2 the tests allow (CI's second run), hypercorn answers these correctly.
    strict=not LOWEST_VERSIONS,
    reason="SERVER BUG: hypercorn 0.18 WSGI adapter answers 500 to empty-body WSGI responses",
)


@_HYPERCORN_EMPTY_BODY
@pytest.mark.parametrize("status", [404, 204])
def test_httpbin_status(bin_conn: HTTP20Connection, status: int) -> None:
    response = fetch(bin_conn, f"/status/{status}")
    assert response.status == status
    assert response.read() == b""


def test_httpbin_status_500(bin_conn: HTTP20Connection) -> None:
    # (With hypercorn 0.18 this 500 comes from the adapter bug above; the status and the
    # empty body are what a correct server sends as well.)
    response = fetch(bin_conn, "/status/500")
    assert response.status == 500
    assert response.headers[b"content-length"] == [b"0"]
    assert response.read() == b""
    assert json.loads(fetch(bin_conn, "/get").read())["url"].endswith("/get")


@_HYPERCORN_EMPTY_BODY
def test_httpbin_head(bin_conn: HTTP20Connection) -> None:
    response = fetch(bin_conn, "/get", method="HEAD")
    assert response.status == 200
    assert response.headers[b"content-type"] == [b"application/json"]
    assert response.read() == b""


def test_httpbin_requests_in_parallel(bin_conn: HTTP20Connection) -> None:
    ids = [bin_conn.request("GET", f"/get?n={n}") for n in range(20)]
    for n, stream_id in reversed(list(enumerate(ids))):
        data = json.loads(bin_conn.get_response(stream_id).read())
        assert data["args"] == {"n": str(n)}


# -- httpbin in plaintext (h2c, prior knowledge) -----------------------------------------------


def test_httpbin_plain_get(http2bin_plain: Http2binServer) -> None:
    with open_connection(http2bin_plain) as conn:
        assert conn.secure is False
        data = httpbin_json(conn, "/get?plain=1", headers={"X-Custom": "h2c"})
        assert data["args"] == {"plain": "1"}
        assert data["headers"]["X-Custom"] == "h2c"
        assert data["url"] == f"http://127.0.0.1:{http2bin_plain.port}/get?plain=1"
        post = httpbin_json(conn, "/post", method="POST", body=b"abc")
        assert post["data"] == "abc"


def test_errors_are_hyper_errors(conn: HTTP20Connection) -> None:
    response = fetch(conn, "/10m.bin")
    conn.close()
    with pytest.raises(HyperError):
        response.read()
