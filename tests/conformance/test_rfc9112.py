"""RFC 9112 (HTTP/1.1 messaging): what HTTP11Connection sends and how it reads responses.

Each test checks one requirement of the conformance table (docs/conformance/rfc9112.csv)
against a scripted server: the server records the bytes hyper sends, or sends byte-exact
responses. Tests of requirements hyper does not meet are marked xfail (strict).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP11Response
from hyper.common.exceptions import (
    ConnectionClosed,
    IncompleteRead,
    InvalidRequest,
    InvalidResponse,
)
from hyper.common.sockets import open_tunnel
from hyper.tls import init_context
from tests.support.certs import CertPaths
from tests.support.h11_peer import recv_head
from tests.support.http11 import (
    HTTP11Responder,
    RawReply,
    Reply,
    Request,
    build_response,
    http11_responder,
    read_request,
    reader_for,
    send_raw,
)
from tests.support.introspect import http11_socket
from tests.support.scripted import ScriptedRawServer

ServerFactory = Callable[..., ScriptedRawServer]

#: Client timeout: a test that makes hyper wait for data fails with ReadTimeout, not a hang.
TIMEOUT = 5
#: Bound for waits on things that happen "at once" (a handler reaching a point, a FIN).
WAIT = 5.0
OK = b"HTTP/1.1 200 OK\r\n"
TOKEN_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:")


# -- helpers -----------------------------------------------------------------------------------


def _echo_responder(routes: dict[str, Any] | None = None) -> HTTP11Responder:
    """Answers every request with its body (status 200), unless a route says otherwise."""
    return http11_responder(
        routes or {}, default=lambda request: Reply(200, body=request.body or b"ok")
    )


def _get(
    conn: HTTP11Connection, url: str, method: str = "GET", **kwargs: Any
) -> tuple[HTTP11Response, bytes]:
    conn.request(method, url, **kwargs)
    response = conn.get_response()
    return response, response.read()


@contextlib.contextmanager
def _connected(
    serve: ServerFactory, routes: dict[str, Any] | None = None, **kwargs: Any
) -> Iterator[tuple[HTTP11Connection, HTTP11Responder]]:
    """An HTTP11Connection to a scripted server answering ``routes`` (``kwargs`` as for
    :func:`http11_responder`), or echoing every request if there are none; and its responder."""
    responder = _echo_responder() if routes is None else http11_responder(routes, **kwargs)
    with serve(responder) as srv, HTTP11Connection(*srv.address) as conn:
        yield conn, responder


def _invalid_then_next(
    serve: ServerFactory, path: str, raw: bytes, *, close: bool
) -> HTTP11Responder:
    """A server answers ``path`` with ``raw`` (closing after it if ``close``): the response is
    refused as invalid, and the next request ("/next") still gets its answer. Returns the
    server's responder."""
    routes = {path: RawReply(raw, close=close), "/next": b"next"}
    with _connected(serve, routes) as (conn, responder):
        with pytest.raises(InvalidResponse):
            _get(conn, path)
        assert _get(conn, "/next")[1] == b"next"
    return responder


def _closed_then_next(conn: HTTP11Connection) -> None:
    """The connection is closed after the last response; the next request ("/next") gets its
    answer (on a new connection)."""
    assert http11_socket(conn) is None
    assert _get(conn, "/next")[1] == b"next"


def _status_and_body(conn: HTTP11Connection, path: str, method: str = "GET") -> tuple[int, bytes]:
    """The status and the whole body of the response to ``method path``."""
    response, body = _get(conn, path, method)
    return response.status, body


def _refuses_field_names(conn: HTTP11Connection, names: Iterable[str]) -> None:
    """A request with a field named any of ``names`` is refused before anything is sent."""
    for name in names:
        with pytest.raises(InvalidRequest):
            conn.request("GET", "/refused", headers=[(name, "1")])


def _post(conn: HTTP11Connection, path: str, body: Any, **fields: str) -> None:
    """POST ``body`` to ``path`` (response read), with header fields named in snake case:
    ``transfer_encoding="chunked"`` sends ``Transfer-Encoding: chunked``."""
    headers = {name.replace("_", "-").title(): value for name, value in fields.items()}
    _get(conn, path, "POST", body=body, headers=headers or None)


def _request_line(request: Request) -> bytes:
    return request.raw_head.split(b"\r\n", 1)[0]


def _wait_readable(conn: HTTP11Connection) -> None:
    """Wait (bounded) until the idle connection has something to read (buffered already, or
    readable on its socket)."""
    assert http11_socket(conn) is not None
    if http11_socket(conn).buffered:
        return
    readable, _, _ = select.select([http11_socket(conn).fileno()], [], [], WAIT)
    assert readable, "nothing reached the client"


def _tls_client(port: int, ca_cert_path: Any) -> HTTP11Connection:
    context = init_context(cert_path=str(ca_cert_path))
    context.set_alpn_protocols(["http/1.1"])
    return HTTP11Connection("127.0.0.1", port, secure=True, ssl_context=context, timeout=TIMEOUT)


# -- 2.2 message parsing -----------------------------------------------------------------------


def test_rfc9112_2_2_field_values_are_parsed_as_octets(
    scripted_raw_server: ServerFactory,
) -> None:
    # NEL (C2 85) and LINE SEPARATOR (E2 80 A8) end lines for Unicode string splitters;
    # parsed as octets they are just bytes of the value.
    value = b"a\xc2\x85b\xe2\x80\xa8c\xff"
    raw = b"HTTP/1.1 200 caf\xe9\x85\r\nX-Odd: " + value + b"\r\nContent-Length: 2\r\n\r\nhi"
    with _connected(
        scripted_raw_server, {"/odd": RawReply(raw, close=False), "/next": b"next"}
    ) as (conn, responder):
        response, body = _get(conn, "/odd")
        assert response.headers[b"x-odd"] == [value]
        assert response.reason == "caf\xe9\x85"
        assert (response.status, body) == (200, b"hi")
        assert _get(conn, "/next")[1] == b"next"
    assert [r.connection_id for r in responder.requests] == [0, 0]


def test_rfc9112_2_2_bare_cr_in_the_status_line_is_invalid(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n"
    responder = _invalid_then_next(scripted_raw_server, "/cr", raw, close=False)
    assert [r.connection_id for r in responder.requests] == [0, 1]


def test_rfc9112_2_2_no_extra_crlf_before_or_after_a_request(
    scripted_raw_server: ServerFactory,
) -> None:
    messages: list[bytes] = []
    leftovers: list[bytes] = []

    def handler(sock: socket.socket) -> None:
        sock.settimeout(WAIT)
        buffer = b""
        for _ in range(2):
            while b"\r\n\r\n" not in buffer:
                data = sock.recv(65536)
                assert data, "the client closed before a whole request"
                buffer += data
            head, _, rest = buffer.partition(b"\r\n\r\n")
            match = re.search(rb"\r\nContent-Length: (\d+)", head)
            assert match is not None, head
            length = int(match.group(1))
            while len(rest) < length:
                rest += sock.recv(65536)
            messages.append(head + b"\r\n\r\n" + rest[:length])
            buffer = rest[length:]
            send_raw(sock, build_response(200, body=b"ok"))
        while data := sock.recv(65536):  # until the client closes
            buffer += data
        leftovers.append(buffer)

    with scripted_raw_server(handler) as srv:
        with HTTP11Connection(*srv.address, timeout=TIMEOUT) as conn:
            assert _get(conn, "/one", "POST", body=b"hello")[1] == b"ok"
            assert _get(conn, "/two", "POST", body=b"world")[1] == b"ok"
        srv.join_handlers()
    assert messages[0].startswith(b"POST /one HTTP/1.1\r\n")
    assert messages[0].endswith(b"\r\n\r\nhello")
    assert messages[1].startswith(b"POST /two HTTP/1.1\r\n")
    assert messages[1].endswith(b"\r\n\r\nworld")
    assert leftovers == [b""]


def test_rfc9112_2_2_no_whitespace_between_the_request_line_and_the_first_field(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _refuses_field_names(conn, (" X-Lead", "\tX-Lead"))
        _get(conn, "/sent", headers=[("X-First", "1")])
    (request,) = responder.requests
    lines = request.raw_head[:-4].split(b"\r\n")
    assert lines[0] == b"GET /sent HTTP/1.1"
    assert all(line[:1] not in (b" ", b"\t") for line in lines[1:]), lines


# -- 2.3 HTTP version --------------------------------------------------------------------------


def test_rfc9112_2_3_a_higher_minor_version_is_read_as_http11(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    with _connected(scripted_raw_server, {"/v": RawReply(raw, close=False)}) as (conn, responder):
        for _ in range(2):
            assert _status_and_body(conn, "/v") == (200, b"hi")
    # Read as HTTP/1.1: the connection persists.
    assert [r.connection_id for r in responder.requests] == [0, 0]


# -- 3 request line ----------------------------------------------------------------------------


def test_rfc9112_3_request_line_is_method_sp_target_sp_version(
    scripted_raw_server: ServerFactory,
) -> None:
    calls = [("GET", "/p?q=1"), ("DELETE", "/item/7"), ("PURGE", "/cache"), ("OPTIONS", "*")]
    with _connected(scripted_raw_server) as (conn, responder):
        for method, target in calls:
            _get(conn, target, method)
    assert [_request_line(r) for r in responder.requests] == [
        f"{method} {target} HTTP/1.1".encode() for method, target in calls
    ]


def test_rfc9112_3_2_host_is_the_authority_without_userinfo(
    scripted_raw_server: ServerFactory,
) -> None:
    responder = _echo_responder()
    with scripted_raw_server(responder) as srv, HTTP11Connection(*srv.address) as conn:
        _get(conn, "/plain")
        _get(conn, "http://user:secret@absolute.test:8080/x")
    plain, absolute = responder.requests
    assert plain.header_values("host") == [f"127.0.0.1:{srv.port}".encode()]
    assert absolute.header_values("host") == [b"absolute.test:8080"]
    assert b"user" not in absolute.raw_head and b"secret" not in absolute.raw_head


def test_rfc9112_3_2_a_url_without_authority_is_refused_before_sending(
    scripted_raw_server: ServerFactory,
) -> None:
    # hyper never sends a request whose target URI lacks an authority (so it never needs an
    # empty Host): such a URL is refused, and nothing goes out.
    with _connected(scripted_raw_server) as (conn, responder):
        for url in ("http:///x", "http://user@/x"):
            with pytest.raises(InvalidRequest):
                conn.request("GET", url)
        _get(conn, "/after")
    assert [r.path for r in responder.requests] == ["/after"]
    assert all(r.header_values("host") for r in responder.requests)


def test_rfc9112_3_2_1_origin_form_is_path_and_query_with_slash_for_an_empty_path(
    scripted_raw_server: ServerFactory,
) -> None:
    urls = ["http://h.test", "http://h.test?q=1", "http://h.test/p/a?b=c#fragment"]
    with _connected(scripted_raw_server) as (conn, responder):
        for url in urls:
            _get(conn, url)
    assert [r.target for r in responder.requests] == ["/", "/?q=1", "/p/a?b=c"]
    assert {r.header("host") for r in responder.requests} == {b"h.test"}


def test_rfc9112_3_2_2_a_proxy_gets_the_absolute_form_and_host(
    scripted_raw_server: ServerFactory,
) -> None:
    responder = _echo_responder()
    with scripted_raw_server(responder) as proxy:
        conn = HTTP11Connection(
            "origin.test", 8080, proxy_host="127.0.0.1", proxy_port=proxy.port, timeout=TIMEOUT
        )
        with conn:
            _get(conn, "/a?b=1")
            _get(conn, "*", "OPTIONS")
    request, options = responder.requests
    assert _request_line(request) == b"GET http://origin.test:8080/a?b=1 HTTP/1.1"
    assert request.header_values("host") == [b"origin.test:8080"]
    assert _request_line(options) == b"OPTIONS * HTTP/1.1"
    assert options.header_values("host") == [b"origin.test:8080"]


def _tunnel_proxy(answer: bytes, seen: list[Request]) -> Callable[[socket.socket], None]:
    """A proxy that reads a CONNECT request, sends ``answer``, then echoes what comes."""

    def handler(sock: socket.socket) -> None:
        seen.append(read_request(sock))
        send_raw(sock, answer)
        reader = reader_for(sock)
        sock.settimeout(WAIT)
        pending = bytes(reader.buffer)
        if pending:
            send_raw(sock, pending)
        while data := sock.recv(65536):
            send_raw(sock, data)

    return handler


def test_rfc9112_3_2_3_connect_target_is_host_and_port(
    scripted_raw_server: ServerFactory,
) -> None:
    seen: list[Request] = []
    answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
    with scripted_raw_server(_tunnel_proxy(answer, seen)) as proxy:
        for host, port in (("example.com", 443), ("example.org", 8443), ("::1", 443)):
            with open_tunnel("127.0.0.1", proxy.port, host, port, timeout=TIMEOUT) as sock:
                sock.sendall(b"ping")
                assert sock.recv(4) == b"ping"
    assert [(r.method, r.target) for r in seen] == [
        ("CONNECT", "example.com:443"),
        ("CONNECT", "example.org:8443"),
        ("CONNECT", "[::1]:443"),
    ]


def test_rfc9112_3_2_4_server_wide_options_uses_the_asterisk(
    scripted_raw_server: ServerFactory,
) -> None:
    responder = _echo_responder()
    with scripted_raw_server(responder) as srv, HTTP11Connection(*srv.address) as conn:
        response, _ = _get(conn, "*", "OPTIONS")
        assert response.status == 200
    (request,) = responder.requests
    assert _request_line(request) == b"OPTIONS * HTTP/1.1"
    assert request.header_values("host") == [f"127.0.0.1:{srv.port}".encode()]


# -- 4 status line -----------------------------------------------------------------------------


def test_rfc9112_4_the_reason_phrase_changes_nothing(scripted_raw_server: ServerFactory) -> None:
    heads = {
        "/a": b"HTTP/1.1 200 Everything Is Fine",
        "/b": b"HTTP/1.1 200 ",
        "/c": b"HTTP/1.1 200",
        "/d": b"HTTP/1.1 404 OK",
        "/e": b"HTTP/1.1 200 Connection: close",
    }
    routes = {
        path: RawReply(head + b"\r\nContent-Length: 1\r\n\r\n" + path[1:].encode(), close=False)
        for path, head in heads.items()
    }
    with _connected(scripted_raw_server, routes) as (conn, responder):
        results = []
        for path in routes:
            results.append(_status_and_body(conn, path))
    assert results == [(200, b"a"), (200, b"b"), (200, b"c"), (404, b"d"), (200, b"e")]
    # A reason phrase that looks like "Connection: close" does not end the connection.
    assert {r.connection_id for r in responder.requests} == {0}


def test_rfc9112_4_unrecognized_status_codes_are_handled_by_their_class(
    scripted_raw_server: ServerFactory,
) -> None:
    interim = b"HTTP/1.1 150 Unheard Of\r\nX-Interim: 1\r\n\r\n"
    routes = {
        "/1xx": RawReply(
            interim + b"HTTP/1.1 299 Odd\r\nContent-Length: 2\r\n\r\nok", close=False
        ),
        "/5xx": RawReply(b"HTTP/1.1 599 Odder\r\nContent-Length: 3\r\n\r\nbad", close=False),
    }
    with _connected(scripted_raw_server, routes) as (conn, responder):
        response, body = _get(conn, "/1xx")
        assert (response.status, body) == (299, b"ok")
        assert b"x-interim" not in response.headers
        assert _status_and_body(conn, "/5xx") == (599, b"bad")
    assert [r.connection_id for r in responder.requests] == [0, 0]


# -- 5 field syntax ----------------------------------------------------------------------------


def test_rfc9112_5_1_field_names_are_sent_as_tokens_right_before_the_colon(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _refuses_field_names(conn, ("X-A ", "X-A\t", "X A", "X-A:", ""))
        _get(conn, "/sent", headers=[("X-A", " padded "), ("x-lower", "v")])
    (request,) = responder.requests
    field_lines = request.raw_head[:-4].split(b"\r\n")[1:]
    assert field_lines
    assert all(TOKEN_LINE.match(line) for line in field_lines), field_lines
    assert request.header_values("x-a") == [b"padded"]


def test_rfc9112_5_2_the_client_never_sends_obs_fold(scripted_raw_server: ServerFactory) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        for value in ("first\r\n second", "first\r\n\tsecond", "first\n second"):
            with pytest.raises(InvalidRequest):
                conn.request("GET", "/refused", headers=[("X-Folded", value)])
        _get(conn, "/sent")
    assert [r.path for r in responder.requests] == ["/sent"]


# -- 6 message body: what the client sends -----------------------------------------------------


def _pieces(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def test_rfc9112_6_1_chunked_is_applied_once_and_last(scripted_raw_server: ServerFactory) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _post(conn, "/generated", _pieces(b"abc", b"def"))
        _post(conn, "/caller-chunked", _pieces(b"ghi", b"jkl"), transfer_encoding="chunked")
        # An already compressed body: the caller names the coding, chunked must come last.
        _post(conn, "/gzip-chunked", b"\x1f\x8b-not-really", transfer_encoding="gzip, chunked")
        for coding in ("gzip", "chunked, gzip"):
            with pytest.raises(InvalidRequest):
                conn.request("POST", "/refused", body=b"x", headers={"Transfer-Encoding": coding})
    generated, caller, gzipped = responder.requests
    assert generated.header_values("transfer-encoding") == [b"chunked"]
    assert (generated.chunks, generated.body) == ([b"abc", b"def"], b"abcdef")
    assert caller.header_values("transfer-encoding") == [b"chunked"]
    assert caller.body == b"ghijkl"  # chunked once: the payload is the caller's bytes
    assert gzipped.tokens("transfer-encoding") == [b"gzip", b"chunked"]
    assert gzipped.body == b"\x1f\x8b-not-really"
    assert {r.connection_id for r in responder.requests} == {0}


def test_rfc9112_6_1_no_transfer_encoding_to_a_server_known_to_be_http10(
    scripted_raw_server: ServerFactory,
) -> None:
    old = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    with _connected(scripted_raw_server, {"/old": RawReply(old, close=False)}, default=b"ok") as (
        conn,
        responder,
    ):
        assert _get(conn, "/old")[1] == b"ok"
        with pytest.raises(InvalidRequest, match=r"HTTP/1\.0 on this connection"):
            _get(conn, "/upload", "POST", body=_pieces(b"abc", b"def"))
        # A body of known length still goes out, with its Content-Length.
        assert _get(conn, "/upload", "POST", body=b"abcdef")[1] == b"ok"
    uploads = [r for r in responder.requests if r.path == "/upload"]
    assert [r.header_values("transfer-encoding") for r in uploads] == [[]]
    assert [r.header_values("content-length") for r in uploads] == [[b"6"]]


def test_rfc9112_6_2_content_length_never_goes_with_transfer_encoding(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _post(conn, "/bytes", b"hello")
        _post(conn, "/generator", _pieces(b"he", b"llo"))
        _post(conn, "/generator-with-length", _pieces(b"he", b"llo"), content_length="5")
        _post(conn, "/te", b"hello", transfer_encoding="chunked")
        with pytest.raises(InvalidRequest):
            _post(conn, "/both", b"hello", content_length="5", transfer_encoding="chunked")
    assert [r.path for r in responder.requests] == [
        "/bytes",
        "/generator",
        "/generator-with-length",
        "/te",
    ]
    for request in responder.requests:
        assert request.body == b"hello"
        framing = [bool(request.header_values("content-length")), request.chunked]
        assert framing in ([True, False], [False, True]), request.path
        assert len(request.header_values("transfer-encoding")) <= 1


def test_rfc9112_6_3_request_bodies_carry_a_length_or_are_chunked(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _get(conn, "/known", "PUT", body=b"x" * 1000)
        _get(conn, "/known-large", "PUT", body=bytearray(b"y" * 200_000))
        _get(conn, "/empty-post", "POST", body=b"")
        _get(conn, "/unknown", "PUT", body=_pieces(b"z" * 10, b"z" * 20))
        _get(conn, "/no-body", "GET")
    known, large, empty, unknown, no_body = responder.requests
    # Known length: Content-Length, not chunked (the SHOULD of section 6.3).
    assert known.header_values("content-length") == [b"1000"] and not known.chunked
    assert large.header_values("content-length") == [b"200000"] and not large.chunked
    assert empty.header_values("content-length") == [b"0"] and not empty.chunked
    # Unknown length: chunked.
    assert unknown.chunked and unknown.header("content-length") is None
    assert unknown.body == b"z" * 30
    assert no_body.header("content-length") is None and not no_body.chunked


def test_rfc9112_6_3_a_body_shorter_or_longer_than_its_content_length_is_refused(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        with pytest.raises(InvalidRequest):
            conn.request("POST", "/short", body=b"four", headers={"Content-Length": "5"})
        with pytest.raises(InvalidRequest):
            conn.request(
                "POST", "/long", body=_pieces(b"abc", b"def"), headers={"Content-Length": "4"}
            )
        assert http11_socket(conn) is None  # part of a request went out: the connection is dropped
        _get(conn, "/after", "POST", body=b"ok")
    assert [r.path for r in responder.requests] == ["/after"]


# -- 6 message body: how the client reads responses --------------------------------------------


def test_rfc9112_6_1_http10_response_with_transfer_encoding_closes_the_connection(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    with _connected(
        scripted_raw_server, {"/old": RawReply(raw, close=False), "/next": b"next"}
    ) as (conn, responder):
        conn.request("GET", "/old")
        response = conn.get_response()
        try:
            response.read()
        except InvalidResponse:
            pass  # treating the framing as faulty may also mean refusing the body
        _closed_then_next(conn)
    assert [r.connection_id for r in responder.requests] == [0, 1]


def test_rfc9112_6_3_no_body_after_head_1xx_204_and_304_whatever_the_fields_say(
    scripted_raw_server: ServerFactory,
) -> None:
    routes = {
        "/204-length": b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        "/204-chunked": b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        "/304-chunked": b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        "/304-length": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
        "/103-length": b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n"
        + OK
        + b"Content-Length: 2\r\n\r\nok",
    }
    with _connected(
        scripted_raw_server,
        {
            **{path: RawReply(raw, close=False) for path, raw in routes.items()},
            "HEAD /head": RawReply(OK + b"Transfer-Encoding: chunked\r\n\r\n", close=False),
            "/next": b"next",
        },
    ) as (conn, responder):
        results = [_get(conn, path) for path in routes]
        assert [(r.status, body) for r, body in results] == [
            (204, b""),
            (204, b""),
            (304, b""),
            (304, b""),
            (200, b"ok"),
        ]
        assert _status_and_body(conn, "/head", "HEAD") == (200, b"")
        assert _get(conn, "/next")[1] == b"next"
    assert {r.connection_id for r in responder.requests} == {0}


def test_rfc9112_6_3_content_length_and_transfer_encoding_in_a_connect_answer_are_ignored(
    scripted_raw_server: ServerFactory,
) -> None:
    seen: list[Request] = []
    answer = (
        b"HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    with (
        scripted_raw_server(_tunnel_proxy(answer, seen)) as proxy,
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=TIMEOUT) as sock,
    ):
        # The tunnel starts right after the empty line: no body is read, the first bytes
        # through it are the client's own, echoed.
        sock.sendall(b"0123456789")
        received = b""
        while len(received) < 10:
            data = sock.recv(10 - len(received))
            assert data
            received += data
        assert received == b"0123456789"
    assert [r.method for r in seen] == ["CONNECT"]


def test_rfc9112_6_3_transfer_encoding_not_ending_in_chunked_reads_until_close(
    scripted_raw_server: ServerFactory,
) -> None:
    body = bytes(range(256)) * 100
    raw = OK + b"Transfer-Encoding: x-custom\r\n\r\n" + body
    with _connected(scripted_raw_server, {"/te": RawReply(raw, close=True), "/next": b"next"}) as (
        conn,
        responder,
    ):
        received = _get(conn, "/te")[1]
        assert received == body
        _closed_then_next(conn)
    assert [r.connection_id for r in responder.requests] == [0, 1]


def test_rfc9112_6_3_a_response_without_length_ends_at_close(
    scripted_raw_server: ServerFactory,
) -> None:
    body = b"z" * 200_000
    with _connected(
        scripted_raw_server,
        {"/until-close": RawReply(OK + b"Content-Type: x/y\r\n\r\n" + body), "/next": b"next"},
    ) as (conn, responder):
        response, received = _get(conn, "/until-close")
        assert (response.status, received) == (200, body)
        _closed_then_next(conn)
    assert [r.connection_id for r in responder.requests] == [0, 1]


def test_rfc9112_6_3_extra_data_after_a_response_is_never_a_response(
    scripted_raw_server: ServerFactory,
) -> None:
    smuggled = OK + b"Content-Length: 8\r\n\r\nsmuggled"
    first = OK + b"Content-Length: 5\r\n\r\nfirst" + smuggled
    with _connected(
        scripted_raw_server, {"/first": RawReply(first, close=False), "/second": b"second"}
    ) as (conn, responder):
        assert _get(conn, "/first")[1] == b"first"
        assert _get(conn, "/second")[1] == b"second"
    assert [(r.path, r.connection_id) for r in responder.requests] == [
        ("/first", 0),
        ("/second", 1),
    ]


# -- 7 transfer codings ------------------------------------------------------------------------


def test_rfc9112_7_1_parameters_on_chunked_are_an_error(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = OK + b"Transfer-Encoding: chunked;foo=bar\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    _invalid_then_next(scripted_raw_server, "/p", raw, close=True)


def test_rfc9112_7_1_1_unknown_chunk_extensions_are_ignored(
    scripted_raw_server: ServerFactory,
) -> None:
    chunks = b'3;name="quoted;value"\r\nabc\r\n2;a;b=c;d="e f"\r\nde\r\n0;last=1\r\n\r\n'
    raw = OK + b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    with _connected(scripted_raw_server, {"/ext": RawReply(raw, close=False)}) as (
        conn,
        responder,
    ):
        for _ in range(2):
            assert _get(conn, "/ext")[1] == b"abcde"
    assert [r.connection_id for r in responder.requests] == [0, 0]


def test_rfc9112_7_2_parameters_on_compression_codings_are_an_error(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = OK + b"Transfer-Encoding: gzip;level=9\r\n\r\nnot gzip at all"
    _invalid_then_next(scripted_raw_server, "/p", raw, close=True)


def test_rfc9112_7_4_no_te_field_is_sent(scripted_raw_server: ServerFactory) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        _get(conn, "/get")
        _get(conn, "/post", "POST", body=_pieces(b"a", b"b"))
    for request in responder.requests:
        assert request.header_values("te") == []
        assert b"te" not in request.tokens("connection")


# -- 9 connection management -------------------------------------------------------------------


def test_rfc9112_9_2_one_outstanding_request_at_a_time(scripted_raw_server: ServerFactory) -> None:
    second_refused = threading.Event()
    pending_before_answer: list[bytes] = []
    paths: list[str] = []

    def handler(sock: socket.socket) -> None:
        reader = reader_for(sock)
        paths.append(reader.read_request().path)
        assert second_refused.wait(WAIT)
        readable, _, _ = select.select([sock], [], [], 0)
        pending_before_answer.append(bytes(reader.buffer) + (b"<readable>" if readable else b""))
        send_raw(sock, build_response(200, body=b"first"))
        paths.append(reader.read_request().path)
        send_raw(sock, build_response(200, body=b"second"))

    with scripted_raw_server(handler) as srv:
        with HTTP11Connection(*srv.address, timeout=TIMEOUT) as conn:
            conn.request("GET", "/first")
            with pytest.raises(InvalidRequest):
                conn.request("GET", "/second")
            second_refused.set()
            assert conn.get_response().read() == b"first"
            assert _get(conn, "/second")[1] == b"second"
        srv.join_handlers()
    assert pending_before_answer == [b""]  # nothing was pipelined behind the first request
    assert paths == ["/first", "/second"]


def test_rfc9112_9_2_data_on_an_idle_connection_is_not_a_response(
    scripted_raw_server: ServerFactory,
) -> None:
    unsolicited = OK + b"Content-Length: 11\r\n\r\nunsolicited"
    seen: list[tuple[str, int]] = []

    def handler(sock: socket.socket) -> None:
        number = len(seen)
        request = read_request(sock)
        seen.append((request.path, number))
        send_raw(sock, build_response(200, body=request.path.encode()))
        if number == 0:
            send_raw(sock, unsolicited)  # later, with no request outstanding
        sock.settimeout(WAIT)
        while (later := reader_for(sock).next_request(wait=WAIT)) is not None:
            seen.append((later.path, number))
            send_raw(sock, build_response(200, body=later.path.encode()))

    with scripted_raw_server(handler) as srv:
        with HTTP11Connection(*srv.address, timeout=TIMEOUT) as conn:
            assert _get(conn, "/one")[1] == b"/one"
            _wait_readable(conn)
            assert _get(conn, "/two")[1] == b"/two"
        srv.join_handlers()
    # The connection the stray response came on was dropped, not read from.
    assert seen == [("/one", 0), ("/two", 1)]


@pytest.mark.parametrize(
    ("head", "persists"),
    [
        (b"HTTP/1.1 200 OK\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n", True),
        (b"HTTP/1.0 200 OK\r\n", False),
    ],
    ids=["http11", "http11-close", "http11-keep-alive-close", "http10-keep-alive", "http10"],
)
def test_rfc9112_9_3_persistence_follows_version_and_connection(
    scripted_raw_server: ServerFactory, head: bytes, persists: bool
) -> None:
    # The server always keeps the connection open: only hyper decides.
    raw = head + b"Content-Length: 2\r\n\r\nok"
    with _connected(scripted_raw_server, {"/r": RawReply(raw, close=False)}) as (conn, responder):
        for _ in range(3):
            assert _get(conn, "/r")[1] == b"ok"
            assert (http11_socket(conn) is not None) == persists
    expected = [0, 0, 0] if persists else [0, 1, 2]
    assert [r.connection_id for r in responder.requests] == expected


def test_rfc9112_9_3_a_body_not_read_to_its_end_means_a_new_connection(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server, {"/big": b"b" * 300_000, "/next": b"next"}) as (
        conn,
        responder,
    ):
        conn.request("GET", "/big")
        response = conn.get_response()
        assert response.read(10) == b"b" * 10
        with pytest.raises(InvalidRequest):
            conn.request("GET", "/next")  # the body is still unread: nothing is sent
        response.close()
        _closed_then_next(conn)
    assert [(r.path, r.connection_id) for r in responder.requests] == [
        ("/big", 0),
        ("/next", 1),
    ]


def test_rfc9112_9_3_1_a_request_that_went_out_is_not_retried(
    scripted_raw_server: ServerFactory,
) -> None:
    seen: list[tuple[str, int]] = []

    def handler(sock: socket.socket) -> None:
        number = len({n for _, n in seen})
        request = read_request(sock)
        seen.append((request.path, number))
        if number == 0:
            return  # the server closes the connection without an answer
        send_raw(sock, build_response(200, body=b"fresh"))

    with scripted_raw_server(handler) as srv:
        with HTTP11Connection(*srv.address, timeout=TIMEOUT) as conn:
            conn.request("POST", "/order", body=b"one item")
            with pytest.raises(ConnectionClosed):
                conn.get_response()
            # Nothing was sent again behind the caller's back; a new request works.
            assert _get(conn, "/status")[1] == b"fresh"
        srv.join_handlers()
    assert seen == [("/order", 0), ("/status", 1)]


def test_rfc9112_9_5_an_early_error_response_stops_the_upload(
    scripted_raw_server: ServerFactory,
) -> None:
    release = threading.Event()

    def handler(sock: socket.socket) -> None:
        if recv_head(sock, WAIT) is None:
            return
        send_raw(sock, build_response(413, headers=[("Connection", "close")], body=b"too big"))
        socket.socket.shutdown(sock, socket.SHUT_WR)
        release.wait(WAIT)  # read nothing more: the server does not want the body

    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(1024):
            sent.append(1)
            yield b"u" * 65536

    with scripted_raw_server(handler) as srv:
        conn = HTTP11Connection(*srv.address, timeout=TIMEOUT)
        try:
            started = time.monotonic()
            conn.request("POST", "/upload", body=body())
            response = conn.get_response()
            assert (response.status, response.read()) == (413, b"too big")
            # Stopped at the answer, not by a send that waited out the time-out.
            assert time.monotonic() - started < TIMEOUT / 2
            assert len(sent) < 1024
            assert http11_socket(conn) is None  # the request was cut short: not reused
        finally:
            release.set()
            conn.close()


def test_rfc9112_9_6_after_sending_close_no_more_requests_on_the_connection(
    scripted_raw_server: ServerFactory,
) -> None:
    # The server does not echo "close" (it only SHOULD): hyper must close on its own.
    with _connected(
        scripted_raw_server, {"/r": RawReply(OK + b"Content-Length: 2\r\n\r\nok", close=False)}
    ) as (conn, responder):
        assert _get(conn, "/r", headers={"Connection": "close"})[1] == b"ok"
        assert http11_socket(conn) is None
        assert _get(conn, "/r")[1] == b"ok"
    assert responder.requests[0].tokens("connection") == [b"close"]
    assert [r.connection_id for r in responder.requests] == [0, 1]


def test_rfc9112_9_6_a_caller_sent_close_goes_out_as_given(
    scripted_raw_server: ServerFactory,
) -> None:
    with _connected(scripted_raw_server) as (conn, responder):
        # The echo responder answers a "close" request with "Connection: close".
        assert _get(conn, "/last", headers={"Connection": "close"})[1] == b"ok"
        assert http11_socket(conn) is None
        assert _get(conn, "/again")[1] == b"ok"
    last, again = responder.requests
    assert last.tokens("connection") == [b"close"] and not last.keep_alive
    assert (last.connection_id, again.connection_id) == (0, 1)


def test_rfc9112_9_6_after_receiving_close_the_client_closes(
    scripted_raw_server: ServerFactory,
) -> None:
    raw = OK + b"Connection: close\r\nContent-Length: 2\r\n\r\nok"
    with _connected(
        scripted_raw_server, {"/close": RawReply(raw, close=False), "/next": b"next"}
    ) as (conn, responder):
        conn.request("GET", "/close")
        response = conn.get_response()
        assert http11_socket(conn) is not None  # the body is still to come
        assert response.read() == b"ok"
        assert http11_socket(conn) is None  # closed once the response was read
        assert _get(conn, "/next")[1] == b"next"
    assert [(r.path, r.connection_id) for r in responder.requests] == [
        ("/close", 0),
        ("/next", 1),
    ]


# -- 9.7 and 9.8 TLS ---------------------------------------------------------------------------


def test_rfc9112_9_7_http_goes_only_as_tls_application_data(
    scripted_raw_server: ServerFactory, server_cert: CertPaths, ca_cert_path: Any
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(server_cert.cert_path), str(server_cert.key_path))
    wire = bytearray()
    plaintext = bytearray()

    def handler(sock: socket.socket) -> None:
        sock.settimeout(WAIT)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)

        def feed() -> None:
            data = sock.recv(65536)
            assert data, "the client closed the connection"
            wire.extend(data)
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                feed()
        sock.sendall(outgoing.read())
        while b"\r\n\r\n" not in plaintext:
            try:
                plaintext.extend(tls.read(65536))
            except ssl.SSLWantReadError:
                feed()
        tls.write(build_response(200, body=b"secret answer"))
        sock.sendall(outgoing.read())

    with scripted_raw_server(handler) as srv:
        with _tls_client(srv.port, ca_cert_path) as conn:
            assert _get(conn, "/secret-path")[1] == b"secret answer"
        srv.join_handlers()
    assert wire[:1] == b"\x16"  # the first bytes are a TLS handshake record
    assert plaintext.startswith(b"GET /secret-path HTTP/1.1\r\n")
    assert b"secret-path" not in wire and b"HTTP/1.1" not in wire


def _ragged_close_server(raw: bytes) -> Callable[[socket.socket], None]:
    """Sends ``raw`` for every request on a TLS connection, then closes TCP without a
    close_notify (an incomplete close)."""

    def handler(sock: socket.socket) -> None:
        read_request(sock)
        send_raw(sock, raw)
        # Returning closes TCP (FIN) without SSL_shutdown: no closure alert.

    return handler


@contextlib.contextmanager
def _ragged_response(
    serve: ServerFactory, ca_cert_path: Any, raw: bytes
) -> Iterator[tuple[HTTP11Connection, HTTP11Response]]:
    """The response (head read) to GET /r from a :func:`_ragged_close_server` sending
    ``raw``, and its TLS connection; the server's handlers are joined afterwards."""
    with serve(_ragged_close_server(raw), tls=True) as srv:
        with _tls_client(srv.port, ca_cert_path) as conn:
            conn.request("GET", "/r")
            yield conn, conn.get_response()
        srv.join_handlers()


@pytest.mark.parametrize(
    "raw",
    [
        OK + b"Content-Length: 5\r\n\r\nhello",
        OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_rfc9112_9_8_a_delimited_response_is_complete_despite_an_incomplete_close(
    scripted_raw_server: ServerFactory, ca_cert_path: Any, raw: bytes
) -> None:
    with scripted_raw_server(_ragged_close_server(raw), tls=True) as srv:
        with _tls_client(srv.port, ca_cert_path) as conn:
            for _ in range(2):
                assert _status_and_body(conn, "/r") == (200, b"hello")
                # The server's incomplete close is seen: the next request, on a new
                # connection, works (graceful recovery).
                _wait_readable(conn)
        srv.join_handlers()
    assert srv.connection_count == 2


def test_rfc9112_9_8_a_short_content_length_body_with_an_incomplete_close_is_incomplete(
    scripted_raw_server: ServerFactory, ca_cert_path: Any
) -> None:
    raw = OK + b"Content-Length: 10\r\n\r\nhello"
    with _ragged_response(scripted_raw_server, ca_cert_path, raw) as (conn, response):
        with pytest.raises(IncompleteRead):
            response.read()
        assert http11_socket(conn) is None


def test_rfc9112_9_8_a_close_delimited_body_needs_a_closure_alert(
    scripted_raw_server: ServerFactory, ca_cert_path: Any
) -> None:
    raw = OK + b"Content-Type: text/plain\r\n\r\nperhaps truncated"
    with (
        _ragged_response(scripted_raw_server, ca_cert_path, raw) as (_, response),
        pytest.raises(IncompleteRead, match="close_notify"),
    ):
        response.read()


def test_rfc9112_9_8_a_close_delimited_body_ended_by_a_closure_alert_is_complete(
    scripted_raw_server: ServerFactory, ca_cert_path: Any
) -> None:
    def handler(sock: socket.socket) -> None:
        assert isinstance(sock, ssl.SSLSocket)
        read_request(sock)
        send_raw(sock, OK + b"Content-Type: text/plain\r\n\r\nwhole body")
        sock.settimeout(WAIT)
        with contextlib.suppress(OSError):
            sock.unwrap()  # the closure alert, then TCP's close

    with (
        scripted_raw_server(handler, tls=True) as srv,
        _tls_client(srv.port, ca_cert_path) as conn,
    ):
        response, body = _get(conn, "/r")
        assert (response.status, body) == (200, b"whole body")


def test_rfc9112_9_8_the_client_sends_a_closure_alert_before_closing(
    scripted_raw_server: ServerFactory, ca_cert_path: Any
) -> None:
    outcome: list[str] = []

    def handler(sock: socket.socket) -> None:
        assert isinstance(sock, ssl.SSLSocket)
        sock.suppress_ragged_eofs = False  # type: ignore[attr-defined]  # tell a bare TCP close from a close_notify
        read_request(sock)
        send_raw(sock, build_response(200, body=b"ok"))
        sock.settimeout(WAIT)
        try:
            outcome.append("close_notify" if sock.recv(1) == b"" else "data")
        except ssl.SSLEOFError:
            outcome.append("no close_notify")
        except ssl.SSLZeroReturnError:
            outcome.append("close_notify")
        except OSError as exc:
            outcome.append(f"error: {exc!r}")

    with scripted_raw_server(handler, tls=True) as srv:
        conn = _tls_client(srv.port, ca_cert_path)
        assert _get(conn, "/r")[1] == b"ok"
        conn.close()
        srv.join_handlers()
    assert outcome == ["close_notify"]
