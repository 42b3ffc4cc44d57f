"""hyper.HTTPConnection: the protocol-agnostic connection, against real servers.

Over TLS, ALPN settles the protocol (nghttpd and nginx with ``h2`` -> HTTP/2, nginx without
it -> HTTP/1.1). In plaintext the first suitable request asks for ``Upgrade: h2c``: hypercorn
(http2bin) accepts it, nginx ignores it, and nghttpd (prior knowledge only) answers with
HTTP/2 frames, which makes hyper reconnect with HTTP/2 and send the request again. Bodies are
checked byte for byte against the generated document roots; httpbin answers are parsed as
JSON; keep-alive reuse is read from nginx's access log (``conn=<n> req=<n>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import h2.events
import h2.exceptions
import h2.settings
import pytest

from hyper import HTTP11Connection, HTTP11Response, HTTP20Response, HTTPConnection
from hyper.common.bufsocket import DEFAULT_BUFFER_SIZE, HTTP2_BUFFER_SIZE
from hyper.common.exceptions import ConnectionClosed, HTTP2PriorKnowledgeOnly, InvalidRequest
from hyper.common.util import HTTPVersion
from hyper.http11.parser import Parser
from hyper.http20.window import FlowControlManager
from hyper.tls import init_context
from tests.support.certs import TLSMaterial
from tests.support.http2bin import Http2binServer
from tests.support.http11 import PeerClosed, Reply, http11_responder, reader_for, send_raw
from tests.support.nghttpd import NghttpdServer
from tests.support.nginx import NginxServer
from tests.support.scripted import ServerConnection

Server = NghttpdServer | NginxServer | Http2binServer

# -- helpers -----------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def connect_to(server: Server, **kwargs: Any) -> HTTPConnection:
    """An HTTPConnection to ``server``: TLS trusting the test CA, or plaintext."""
    if server.tls:
        assert server.ca_cert_path is not None
        context = init_context(cert_path=str(server.ca_cert_path))
        return HTTPConnection(
            server.host, server.port, secure=True, ssl_context=context, timeout=10, **kwargs
        )
    return HTTPConnection(server.host, server.port, secure=False, timeout=10, **kwargs)


def check_file(server: NghttpdServer | NginxServer, name: str, body: bytes) -> None:
    assert len(body) == server.sizes[name], name
    assert sha256(body) == server.files[name], name


def access_log_entries(
    server: NginxServer, since: int, tag: str, count: int
) -> list[tuple[int, int]]:
    """``(connection serial, request number)`` of the requests whose target ends with
    ``?<tag>=<i>`` for ``i`` in ``range(count)``. nginx logs a request once its response went
    out, so this waits (bounded) for the last one; requests sent one after another on a
    connection are logged in order."""
    pattern = re.compile(rf'conn=(\d+) req=(\d+) "GET /\S*\?{re.escape(tag)}=(\d+) HTTP/1\.1"')
    server.access_log.wait_for(
        rf"\?{re.escape(tag)}={count - 1} HTTP/1\.1", since=since, timeout=5.0
    )
    found = pattern.findall(server.access_log.read(since))
    assert [int(i) for _, _, i in found] == list(range(count)), found
    return [(int(conn), int(req)) for conn, req, _ in found]


class CountingManager(FlowControlManager):
    """hyper's default policy, recording every call (class-level: one list per test)."""

    calls: list[int] = []

    def increase_window_size(self, frame_size: int) -> int:
        type(self).calls.append(frame_size)
        return super().increase_window_size(frame_size)


@pytest.fixture
def counting_manager() -> Iterator[type[CountingManager]]:
    class Counting(CountingManager):
        calls: list[int] = []

    yield Counting


@pytest.fixture(
    params=[
        pytest.param("nghttpd_tls", id="nghttpd", marks=pytest.mark.nghttpd),
        pytest.param("nginx_h2_tls", id="nginx", marks=pytest.mark.nginx),
    ]
)
def h2_tls_server(request: pytest.FixtureRequest) -> NghttpdServer | NginxServer:
    """A TLS server whose ALPN selects ``h2``: nghttpd, then nginx."""
    server: NghttpdServer | NginxServer = request.getfixturevalue(request.param)
    return server


def tls_context(tls_material: TLSMaterial) -> Any:
    return init_context(cert_path=str(tls_material.ca_cert_path))


# -- TLS: ALPN picks the protocol --------------------------------------------------------------


def test_tls_h2_gives_stream_ids_and_http2_responses(
    h2_tls_server: NghttpdServer | NginxServer,
) -> None:
    with connect_to(h2_tls_server) as conn:
        names = ["index.html", "1k.bin", "64k.bin", "empty.bin"]
        stream_ids = [conn.request("GET", f"/{name}") for name in names]
        assert stream_ids == [1, 3, 5, 7]
        assert conn.version is HTTPVersion.http20
        # Several requests in flight; fetch the responses in reverse order.
        for name, stream_id in reversed(list(zip(names, stream_ids, strict=True))):
            response = conn.get_response(stream_id)
            assert isinstance(response, HTTP20Response)
            assert response.version is HTTPVersion.http20
            assert response.status == 200
            check_file(h2_tls_server, name, response.read())
        assert conn.request("GET", "/1k.bin") == 9


def test_tls_connect_settles_protocol_before_any_request(
    h2_tls_server: NghttpdServer | NginxServer,
) -> None:
    with connect_to(h2_tls_server) as conn:
        conn.connect()
        assert conn.version is HTTPVersion.http20
        conn.connect()  # idempotent
        stream_id = conn.request("GET", "/1k.bin")
        assert stream_id == 1
        check_file(h2_tls_server, "1k.bin", conn.get_response(stream_id).read())


def test_tls_h2_get_response_without_stream_id_takes_oldest(nghttpd_tls: NghttpdServer) -> None:
    with connect_to(nghttpd_tls) as conn:
        conn.request("GET", "/1k.bin")
        conn.request("GET", "/index.html")
        check_file(nghttpd_tls, "1k.bin", conn.get_response().read())
        check_file(nghttpd_tls, "index.html", conn.get_response(None).read())


def test_tls_http11_only_server_gives_http11(nginx_h11_tls: NginxServer) -> None:
    since = nginx_h11_tls.access_log.position()
    with connect_to(nginx_h11_tls) as conn:
        for i, name in enumerate(["index.html", "1k.bin", "64k.bin"]):
            assert conn.request("GET", f"/{name}?tls11-keepalive={i}") is None
            assert conn.version is HTTPVersion.http11
            response = conn.get_response()
            assert isinstance(response, HTTP11Response)
            assert response.version is HTTPVersion.http11
            assert response.status == 200
            check_file(nginx_h11_tls, name, response.read())
    entries = access_log_entries(nginx_h11_tls, since, "tls11-keepalive", 3)
    # One connection, reused: nginx numbers the requests on it 1, 2, 3.
    assert len({conn_id for conn_id, _ in entries}) == 1
    assert [req for _, req in entries] == [1, 2, 3]


def test_tls_h2_responses_can_be_read_interleaved(nginx_h2_tls: NginxServer) -> None:
    with connect_to(nginx_h2_tls) as conn:
        first = conn.get_response(conn.request("GET", "/1m.bin"))
        second = conn.get_response(conn.request("GET", "/64k.bin"))
        head = first.read(1000)
        check_file(nginx_h2_tls, "64k.bin", second.read())
        check_file(nginx_h2_tls, "1m.bin", head + first.read())


# -- plaintext: the h2c upgrade ----------------------------------------------------------------


@pytest.mark.http2bin
def test_plain_upgrade_switches_to_http2(http2bin_plain: Http2binServer) -> None:
    with connect_to(http2bin_plain) as conn:
        assert conn.request("GET", "/get?upgrade=1") is None
        response = conn.get_response(None)
        assert isinstance(response, HTTP20Response)
        assert response.version is HTTPVersion.http20
        assert response.status == 200
        assert conn.version is HTTPVersion.http20
        payload = json.loads(response.read())
        assert payload["args"] == {"upgrade": "1"}
        assert payload["url"].endswith("/get?upgrade=1")

        stream_id = conn.request("GET", "/get?after=1")
        assert stream_id == 3
        response = conn.get_response(stream_id)
        assert response.version is HTTPVersion.http20
        assert json.loads(response.read())["args"] == {"after": "1"}


@pytest.mark.http2bin
def test_plain_upgrade_declined_for_body_stays_http11(http2bin_plain: Http2binServer) -> None:
    # hypercorn ignores Upgrade on a request with a body (it would have to read the body
    # over HTTP/1.1 first) and answers over HTTP/1.1: the connection then stays HTTP/1.1.
    body = bytes(range(256)) * 4
    with connect_to(http2bin_plain) as conn:
        headers = {"content-type": "application/octet-stream"}
        assert conn.request("POST", "/post", body=body, headers=headers) is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http11
        payload = json.loads(response.read())
        assert payload["headers"]["Content-Length"] == str(len(body))
        assert payload["headers"]["Upgrade"] == "h2c"
        assert conn.version is HTTPVersion.http11
        assert conn.request("GET", "/get") is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http11
        assert conn.version is HTTPVersion.http11
        assert "Upgrade" not in json.loads(response.read())["headers"]


def _upgrading_server(recorded: list[Any]) -> Any:
    """A scripted h2c server: reads the HTTP/1.1 request, answers 101 and serves stream 1
    (echoing the length of the body it got over HTTP/1.1) and later streams over HTTP/2."""

    def handler(sock: socket.socket) -> None:
        request = reader_for(sock).read_request()
        recorded.append(request)
        send_raw(
            sock,
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        )
        ctx = ServerConnection(sock)
        ctx.conn.initiate_upgrade_connection(request.header("http2-settings"))
        ctx.flush()
        body = b"stream 1 got %d bytes" % len(request.body)
        ctx.respond(1, 200, [(b"content-length", str(len(body)).encode())], body)
        stream_id = ctx.wait_for_request().stream_id
        ctx.respond(stream_id, 200, [(b"content-length", b"6")], b"second")
        with contextlib.suppress(PeerClosed):
            ctx.wait_for(h2.events.ConnectionTerminated)

    return handler


def test_plain_upgrade_carries_a_small_body(scripted_raw_server: Any) -> None:
    recorded: list[Any] = []
    body = bytes(range(256)) * 4
    with (
        scripted_raw_server(_upgrading_server(recorded)) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        assert conn.request("POST", "/upload", body=body) is None
        response = conn.get_response()
        assert isinstance(response, HTTP20Response)
        assert response.status == 200
        assert response.read() == b"stream 1 got 1024 bytes"
        assert conn.version is HTTPVersion.http20
        stream_id = conn.request("GET", "/second")
        assert stream_id == 3
        assert conn.get_response(stream_id).read() == b"second"
    (request,) = recorded
    assert request.method == "POST"
    assert request.body == body
    assert request.header("upgrade") == b"h2c"


@pytest.mark.http2bin
def test_plain_large_body_goes_as_http11_then_small_get_upgrades(
    http2bin_plain: Http2binServer,
) -> None:
    body = b"x" * (200 * 1024)
    with connect_to(http2bin_plain) as conn:
        assert conn.request("POST", "/post", body=body) is None
        response = conn.get_response()
        assert isinstance(response, HTTP11Response)
        assert response.version is HTTPVersion.http11
        assert response.status == 200
        assert conn.version is HTTPVersion.http11
        assert json.loads(response.read())["data"] == body.decode()

        assert conn.request("GET", "/get?second=1") is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert conn.version is HTTPVersion.http20
        assert json.loads(response.read())["args"] == {"second": "1"}
        assert conn.request("GET", "/get") == 3
        assert conn.get_response(3).status == 200


@pytest.mark.http2bin
def test_plain_caller_connection_header_prevents_upgrade(http2bin_plain: Http2binServer) -> None:
    with connect_to(http2bin_plain) as conn:
        assert conn.request("GET", "/headers", headers={"Connection": "keep-alive"}) is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http11
        assert conn.version is HTTPVersion.http11
        headers = json.loads(response.read())["headers"]
        assert "Upgrade" not in headers
        assert "Http2-Settings" not in headers


@pytest.mark.nghttpd
def test_plain_prior_knowledge_server_falls_back_to_http2(nghttpd_h2c: NghttpdServer) -> None:
    with connect_to(nghttpd_h2c) as conn:
        assert conn.request("GET", "/64k.bin") is None
        response = conn.get_response(None)
        assert isinstance(response, HTTP20Response)
        assert response.version is HTTPVersion.http20
        assert response.status == 200
        check_file(nghttpd_h2c, "64k.bin", response.read())
        assert conn.version is HTTPVersion.http20
        # The request was sent again as stream 1 of the new connection.
        assert conn.request("GET", "/1k.bin") == 3
        check_file(nghttpd_h2c, "1k.bin", conn.get_response(3).read())


@pytest.mark.nghttpd
def test_plain_prior_knowledge_fallback_resends_the_body(nghttpd_h2c: NghttpdServer) -> None:
    body = bytes(range(256)) * 16
    with connect_to(nghttpd_h2c) as conn:
        assert conn.request("POST", "/echo", body=body) is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert response.read() == body  # nghttpd --echo-upload


@pytest.mark.nginx
def test_plain_nginx_stays_http11(nginx_plain: NginxServer) -> None:
    since = nginx_plain.access_log.position()
    names = ["index.html", "1k.bin", "64k.bin", "empty.bin"] * 5
    with connect_to(nginx_plain) as conn:
        for i, name in enumerate(names):
            assert conn.request("GET", f"/{name}?plain-keepalive={i}") is None
            response = conn.get_response()
            assert response.version is HTTPVersion.http11
            assert response.status == 200
            check_file(nginx_plain, name, response.read())
            assert conn.version is HTTPVersion.http11
    entries = access_log_entries(nginx_plain, since, "plain-keepalive", len(names))
    assert len({conn_id for conn_id, _ in entries}) == 1
    assert [req for _, req in entries] == list(range(1, len(names) + 1))


def test_plain_upgrade_headers_only_on_the_first_request(scripted_raw_server: Any) -> None:
    responder = http11_responder({"/": Reply(200, body=b"ok")})
    with (
        scripted_raw_server(responder) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        for _ in range(2):
            assert conn.request("GET", "/") is None
            response = conn.get_response()
            assert response.version is HTTPVersion.http11
            assert response.read() == b"ok"
        assert conn.version is HTTPVersion.http11
    first, second = responder.requests
    assert first.header("upgrade") == b"h2c"
    assert set(first.tokens("connection")) == {b"upgrade", b"http2-settings"}
    settings = first.header("http2-settings")
    assert settings and b"=" not in settings
    assert second.header("upgrade") is None
    assert second.header("http2-settings") is None
    assert first.connection_id == second.connection_id


def test_tls_without_alpn_gives_http11(
    scripted_raw_server: Any, tls_material: TLSMaterial
) -> None:
    responder = http11_responder({"/": Reply(200, body=b"no alpn")})
    with scripted_raw_server(responder, tls=True, alpn=None) as server:
        conn = HTTPConnection(
            "127.0.0.1", server.port, secure=True, ssl_context=tls_context(tls_material), timeout=5
        )
        with conn:
            assert conn.request("GET", "/") is None
            assert conn.version is HTTPVersion.http11
            assert conn.get_response().read() == b"no alpn"
    (recorded,) = responder.requests
    # Over TLS nothing is upgraded: the request is plain HTTP/1.1.
    assert recorded.header("upgrade") is None


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection], ids=["abstract", "http11"])
def test_tls13_session_ticket_does_not_cause_a_reconnect(
    scripted_raw_server: Any, tls_material: TLSMaterial, cls: Any
) -> None:
    responder = http11_responder({"/": Reply(200, body=b"one connection")})
    handshake_done = threading.Event()
    versions: list[str | None] = []

    def handler(sock: Any) -> None:
        # The server's TLS 1.3 handshake (and its NewSessionTicket) is complete here.
        versions.append(sock.version())
        handshake_done.set()
        responder(sock)

    with scripted_raw_server(handler, tls=True, alpn=["http/1.1"]) as server:
        conn = cls(
            "127.0.0.1", server.port, secure=True, ssl_context=tls_context(tls_material), timeout=5
        )
        with conn:
            conn.connect()
            # Bounded wait for the server side of the handshake: its session tickets have
            # then been written to the (loopback) connection.
            assert handshake_done.wait(5)
            assert conn.request("GET", "/") is None
            assert conn.get_response().read() == b"one connection"
        assert versions[0] == "TLSv1.3"
        assert server.connection_count == 1


# -- plaintext negotiation: state kept across unusual call sequences ---------------------------


def _prior_knowledge_only(seen: list[list[tuple[bytes, bytes]]]) -> Any:
    """Handler for ``scripted_server``: plaintext HTTP/2 with prior knowledge only, like
    ``nghttpd --no-tls``. It sends its SETTINGS at once; a connection that starts with an
    HTTP/1.1 request instead of the preface is dropped. Every request's headers are recorded
    and answered with its path as the body."""

    def handler(ctx: ServerConnection) -> None:
        try:
            ctx.handshake()
        except (h2.exceptions.ProtocolError, PeerClosed, AssertionError):
            return  # HTTP/1.1 bytes (or nothing) instead of the client preface
        while True:
            event = ctx.next_event(timeout=5)
            if event is None or isinstance(event, h2.events.ConnectionTerminated):
                return
            if isinstance(event, h2.events.RequestReceived):
                headers = [(bytes(n), bytes(v)) for n, v in event.headers]
                seen.append(headers)
                path = dict(headers)[b":path"]
                ctx.respond(
                    event.stream_id, 200, [(b"content-length", str(len(path)).encode())], path
                )

    return handler


def test_prior_knowledge_resend_keeps_headers(scripted_server: Any) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    with (
        scripted_server(_prior_knowledge_only(seen)) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/pk", headers=[("X-Test", "1")])
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert response.read() == b"/pk"
    (headers,) = seen
    assert (b"x-test", b"1") in headers
    assert not any(name in (b"upgrade", b"http2-settings", b"connection") for name, _ in headers)


def test_prior_knowledge_resend_keeps_headers_from_an_iterator(scripted_server: Any) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    with (
        scripted_server(_prior_knowledge_only(seen)) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/pk", headers=iter([("X-Test", "1")]))
        assert conn.get_response().read() == b"/pk"
    (headers,) = seen
    assert (b"x-test", b"1") in headers


def test_headers_from_an_iterator_survive_when_upgrade_is_ruled_out(
    scripted_raw_server: Any,
) -> None:
    responder = http11_responder({"/": Reply(200, body=b"ok")})
    with (
        scripted_raw_server(responder) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        headers = iter([("Connection", "keep-alive"), ("X-Test", "1")])
        conn.request("GET", "/", headers=headers)
        assert conn.get_response().read() == b"ok"
    (recorded,) = responder.requests
    assert recorded.header("x-test") == b"1"
    assert recorded.header("connection") == b"keep-alive"


def test_headers_from_an_iterator_survive_an_upgrade_request(scripted_raw_server: Any) -> None:
    responder = http11_responder({"/": Reply(200, body=b"ok")})
    with (
        scripted_raw_server(responder) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/", headers=iter([("X-Test", "1")]))
        assert conn.get_response().read() == b"ok"
    (recorded,) = responder.requests
    assert recorded.header("x-test") == b"1"
    assert recorded.header("upgrade") == b"h2c"


@pytest.mark.http2bin
def test_refused_request_keeps_the_pending_upgrade(http2bin_plain: Http2binServer) -> None:
    with connect_to(http2bin_plain) as conn:
        assert conn.request("GET", "/get?first=1") is None
        with pytest.raises(InvalidRequest):
            conn.request("GET", "/get?second=1")
        response = conn.get_response()
        assert (response.status, response.version) == (200, HTTPVersion.http20)
        assert json.loads(response.read())["args"] == {"first": "1"}


@pytest.mark.http2bin
def test_other_thread_request_waits_for_the_upgrade_outcome(
    http2bin_plain: Http2binServer,
) -> None:
    results: dict[str, Any] = {}

    def other_thread() -> None:
        try:
            stream_id = conn.request("GET", "/get?other=1")
            results["stream_id"] = stream_id
            response = conn.get_response(stream_id)
            results["args"] = json.loads(response.read())["args"]
            results["version"] = response.version
        except BaseException as exc:  # reported below, in the test's thread
            results["error"] = exc

    with connect_to(http2bin_plain) as conn:
        assert conn.request("GET", "/get?first=1") is None
        # Whether it blocks until the upgrade is answered or starts after that, the other
        # thread's request goes over HTTP/2 once the protocol is settled.
        thread = threading.Thread(target=other_thread)
        thread.start()
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert json.loads(response.read())["args"] == {"first": "1"}
        thread.join(5)
        assert not thread.is_alive()
    assert "error" not in results, results.get("error")
    assert results == {"stream_id": 3, "args": {"other": "1"}, "version": HTTPVersion.http20}


@pytest.mark.http2bin
def test_close_during_upgrade_then_request_works(http2bin_plain: Http2binServer) -> None:
    with connect_to(http2bin_plain) as conn:
        assert conn.request("GET", "/get?first=1") is None
        conn.close()
        assert conn.request("GET", "/get?second=1") is None
        response = conn.get_response()
        assert response.status == 200
        assert json.loads(response.read())["args"] == {"second": "1"}


def test_close_forgets_an_unanswered_upgrade(scripted_server: Any) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    with (
        scripted_server(_prior_knowledge_only(seen)) as server,
        HTTPConnection("127.0.0.1", server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/first")
        conn.close()
        conn.request("GET", "/second", headers={"Connection": "close"})
        try:
            response: Any = conn.get_response()
        except HTTP2PriorKnowledgeOnly:
            response = None  # refusing to guess is fine too
        if response is not None:
            assert response.read() == b"/second"
    paths = [dict(headers)[b":path"] for headers in seen]
    assert b"/first" not in paths


@pytest.mark.nghttpd
def test_prior_knowledge_fallback_for_a_request_that_could_not_upgrade(
    nghttpd_h2c: NghttpdServer,
) -> None:
    with connect_to(nghttpd_h2c) as conn:
        assert conn.request("GET", "/1k.bin", headers={"Connection": "keep-alive"}) is None
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        check_file(nghttpd_h2c, "1k.bin", response.read())


# -- the HTTP/1.1 face -------------------------------------------------------------------------


@pytest.mark.nginx
def test_http11_get_response_stream_id_rules(nginx_h11_tls: NginxServer) -> None:
    with connect_to(nginx_h11_tls) as conn:
        conn.request("GET", "/index.html")
        with pytest.raises(InvalidRequest):
            conn.get_response(1)
        with pytest.raises(InvalidRequest):
            conn.get_response(stream_id=1)
        # The refused calls read nothing: the response is still there.
        response = conn.get_response(stream_id=None)
        check_file(nginx_h11_tls, "index.html", response.read())
        conn.request("GET", "/1k.bin")
        check_file(nginx_h11_tls, "1k.bin", conn.get_response(None).read())


@pytest.mark.nginx
def test_http11_get_pushes_yields_nothing(nginx_h11_tls: NginxServer) -> None:
    with connect_to(nginx_h11_tls) as conn:
        conn.request("GET", "/index.html")
        conn.get_response().read()
        assert list(conn.get_pushes()) == []
        assert list(conn.get_pushes(None, capture_all=True)) == []


@pytest.mark.nginx
def test_attribute_forwarding_http11(nginx_h11_tls: NginxServer) -> None:
    with connect_to(nginx_h11_tls) as conn:
        conn.request("GET", "/index.html")
        conn.get_response().read()
        assert conn.version is HTTPVersion.http11
        assert conn.host == "127.0.0.1"
        assert conn.port == nginx_h11_tls.port
        assert conn.network_buffer_size == DEFAULT_BUFFER_SIZE
        assert isinstance(conn.parser, Parser)
        assert not hasattr(conn, "ping")
        with pytest.raises(AttributeError):
            conn.no_such_attribute  # noqa: B018
        assert "HTTP/1.1" in repr(conn)


@pytest.mark.nghttpd
def test_attribute_forwarding_http2(nghttpd_tls: NghttpdServer) -> None:
    with connect_to(nghttpd_tls) as conn:
        conn.connect()
        assert conn.version is HTTPVersion.http20
        assert conn.host == "127.0.0.1"
        # HTTP/2 gets its own, larger default (bulk downloads gather more TLS records).
        assert conn.network_buffer_size == HTTP2_BUFFER_SIZE
        assert not hasattr(conn, "parser")
        assert callable(conn.ping)
        conn.ping(b"hyperabc")
        response = conn.get_response(conn.request("GET", "/index.html"))
        check_file(nghttpd_tls, "index.html", response.read())
        assert conn.last_ping_ack == b"hyperabc"
        assert "HTTP/2" in repr(conn)


@pytest.mark.nghttpd
def test_context_manager_closes_http2(nghttpd_tls: NghttpdServer) -> None:
    with connect_to(nghttpd_tls) as conn:
        # 10 MB: far more than the stream window, so most of it is still unsent at close.
        response = conn.get_response(conn.request("GET", "/10m.bin"))
        assert response.read(1024)
    with pytest.raises(ConnectionClosed):
        response.read()


@pytest.mark.nginx
def test_context_manager_closes_http11(nginx_h11_tls: NginxServer) -> None:
    with connect_to(nginx_h11_tls) as conn:
        response = conn.get_response(conn.request("GET", "/10m.bin"))
        assert response.read(1024)
    with pytest.raises(ConnectionClosed):
        response.read()


@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param("nghttpd_tls", marks=pytest.mark.nghttpd),
        pytest.param("nginx_h11_tls", marks=pytest.mark.nginx),
        pytest.param("http2bin_plain", marks=pytest.mark.http2bin),
        pytest.param("nghttpd_h2c", marks=pytest.mark.nghttpd),
        pytest.param("nginx_plain", marks=pytest.mark.nginx),
    ],
)
def test_close_then_request_reconnects(request: pytest.FixtureRequest, fixture: str) -> None:
    server: Server = request.getfixturevalue(fixture)
    path = "/get" if isinstance(server, Http2binServer) else "/index.html"
    with connect_to(server) as conn:
        first = conn.get_response(conn.request("GET", path))
        assert first.status == 200
        body = first.read()
        version = conn.version
        conn.close()
        stream_id = conn.request("GET", path)
        # A new connection: HTTP/2 numbers its streams from 1 again.
        assert stream_id == (1 if version is HTTPVersion.http20 else None)
        again = conn.get_response(stream_id)
        assert again.status == 200
        assert again.version is version
        if not isinstance(server, Http2binServer):
            assert again.read() == body


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "host", "port", "secure"),
    [
        (("example.com",), {}, "example.com", 80, False),
        (("example.com",), {"secure": True}, "example.com", 443, True),
        (("example.com:8080",), {}, "example.com", 8080, False),
        (("example.com:8443",), {"secure": True}, "example.com", 8443, True),
        (("example.com:443",), {}, "example.com", 443, True),
        (("example.com", 443), {}, "example.com", 443, True),
        (("example.com", 8000), {}, "example.com", 8000, False),
        (("[::1]",), {}, "::1", 80, False),
        (("[::1]:8443",), {"secure": True}, "::1", 8443, True),
        (("example.com:8080", 9090), {}, "example.com", 9090, False),
    ],
)
def test_host_and_port_parsing(
    args: tuple[Any, ...], kwargs: dict[str, Any], host: str, port: int, secure: bool
) -> None:
    conn = HTTPConnection(*args, **kwargs)
    assert (conn.host, conn.port, conn.secure) == (host, port, secure)
    assert conn.version is HTTPVersion.http11  # nothing settled before the first request


@pytest.mark.parametrize(
    "kwargs",
    [{"bogus": 1}, {"window_manager": object}, {"timeout": -1}, {"port": 0}, {"port": "x"}],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        HTTPConnection("example.com", **kwargs)


@pytest.mark.parametrize("host", ["", "exa mple.com", "example.com:99999", "[::1"])
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(InvalidRequest):
        HTTPConnection(host)


@pytest.mark.nginx
def test_host_port_string_connects(nginx_plain: NginxServer) -> None:
    with HTTPConnection(f"127.0.0.1:{nginx_plain.port}", timeout=10) as conn:
        conn.request("GET", "/1k.bin")
        check_file(nginx_plain, "1k.bin", conn.get_response().read())


@pytest.fixture
def ipv6_server(scripted_raw_server: Any) -> Iterator[tuple[Any, Any]]:
    """A scripted HTTP/1.1 server on ``[::1]`` (skipped without IPv6 loopback)."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available")
    responder = http11_responder({"/": Reply(200, body=b"over IPv6")})
    with scripted_raw_server(responder, host="::1") as server:
        yield server, responder


def test_ipv6_literal_host(ipv6_server: tuple[Any, Any]) -> None:
    server, responder = ipv6_server
    with HTTPConnection(f"[::1]:{server.port}", timeout=5) as conn:
        assert conn.host == "::1"
        conn.request("GET", "/")
        assert conn.get_response().read() == b"over IPv6"
    (recorded,) = responder.requests
    assert recorded.header("host") == f"[::1]:{server.port}".encode()


def test_force_proto_is_accepted(tls_material: TLSMaterial, nginx_h2_tls: NginxServer) -> None:
    conn = HTTPConnection(
        "127.0.0.1",
        nginx_h2_tls.port,
        secure=True,
        ssl_context=tls_context(tls_material),
        force_proto="h2",
        timeout=10,
    )
    with conn:
        stream_id = conn.request("GET", "/1k.bin")
        assert stream_id == 1
        assert conn.force_proto == "h2"
        check_file(nginx_h2_tls, "1k.bin", conn.get_response(stream_id).read())


# -- HTTP/2-only options: window_manager and enable_push ---------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param("nghttpd_tls", marks=pytest.mark.nghttpd),
        pytest.param("nghttpd_h2c", marks=pytest.mark.nghttpd),
    ],
)
def test_window_manager_is_used_for_http2(
    request: pytest.FixtureRequest, fixture: str, counting_manager: type[CountingManager]
) -> None:
    server: NghttpdServer = request.getfixturevalue(fixture)
    with connect_to(server, window_manager=counting_manager) as conn:
        response = conn.get_response(conn.request("GET", "/1m.bin"))
        check_file(server, "1m.bin", response.read())
        assert conn.version is HTTPVersion.http20
        assert conn.window_manager_cls is counting_manager
    # The connection manager hears of every DATA frame received (stream managers too).
    assert sum(counting_manager.calls) >= server.sizes["1m.bin"]


@pytest.mark.http2bin
def test_window_manager_is_used_after_upgrade(
    http2bin_plain: Http2binServer, counting_manager: type[CountingManager]
) -> None:
    with connect_to(http2bin_plain, window_manager=counting_manager) as conn:
        conn.request("GET", "/bytes/50000")
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert len(response.read()) == 50000
    assert sum(counting_manager.calls) >= 50000


@pytest.mark.nginx
def test_window_manager_unused_on_http11(
    nginx_h11_tls: NginxServer, counting_manager: type[CountingManager]
) -> None:
    with connect_to(nginx_h11_tls, window_manager=counting_manager) as conn:
        conn.request("GET", "/64k.bin")
        check_file(nginx_h11_tls, "64k.bin", conn.get_response().read())
    assert counting_manager.calls == []


def _push_handler(settings_seen: list[int]) -> Any:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()  # the client's SETTINGS are in once it returns
        push_allowed = ctx.conn.remote_settings[h2.settings.SettingCodes.ENABLE_PUSH]
        settings_seen.append(push_allowed)
        request = ctx.wait_for_request()
        stream_id = request.stream_id
        if push_allowed:
            pushed = ctx.conn.get_next_available_stream_id()
            ctx.conn.push_stream(
                stream_id,
                pushed,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    # The same origin as the request (host and port): pushes for any other
                    # origin are refused.
                    (b":authority", dict(request.headers)[b":authority"]),
                    (b":path", b"/pushed.css"),
                ],
            )
            ctx.flush()
            ctx.respond(stream_id, 200, [(b"content-length", b"4")], b"page")
            ctx.respond(pushed, 200, [(b"content-length", b"6")], b"body{}")
        else:
            ctx.respond(stream_id, 200, [(b"content-length", b"4")], b"page")
        with contextlib.suppress(PeerClosed):
            ctx.wait_for(h2.events.ConnectionTerminated)  # the client's close()

    return handler


@pytest.mark.parametrize("enable_push", [True, False])
def test_enable_push_routed_to_http2(
    scripted_server: Any, tls_material: TLSMaterial, enable_push: bool
) -> None:
    settings_seen: list[int] = []
    with scripted_server(_push_handler(settings_seen), tls=True) as server:
        conn = HTTPConnection(
            "127.0.0.1",
            server.port,
            secure=True,
            ssl_context=tls_context(tls_material),
            enable_push=enable_push,
            timeout=5,
        )
        with conn:
            stream_id = conn.request("GET", "/")
            assert stream_id == 1
            assert conn.get_response(stream_id).read() == b"page"
            assert conn.enable_push is enable_push
            pushes = list(conn.get_pushes(stream_id))
            if enable_push:
                assert [push.path for push in pushes] == [b"/pushed.css"]
                assert pushes[0].get_response().read() == b"body{}"
            else:
                assert pushes == []
        server.join_handlers(timeout=5)
    assert settings_seen == [int(enable_push)]


@pytest.mark.nghttpd
def test_buffer_size_set_by_the_caller_applies_to_http2(nghttpd_tls: NghttpdServer) -> None:
    with connect_to(nghttpd_tls) as conn:
        conn.network_buffer_size = 32 * 1024
        conn.connect()
        assert conn.version is HTTPVersion.http20
        assert conn.network_buffer_size == 32 * 1024
        response = conn.get_response(conn.request("GET", "/index.html"))
        check_file(nghttpd_tls, "index.html", response.read())
