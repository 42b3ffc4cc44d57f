"""
Server push: real servers first (nghttpd, hypercorn), then frame-exact scripted scenarios.

Real servers check what users see: :meth:`HTTP20Connection.get_pushes` yields
:class:`HTTP20Push` objects with the promised request and a readable response, pushes are
collected once, ``capture_all`` waits for pushes until the parent stream ends, large pushed
bodies are flow-controlled, cancelled pushes leave the connection usable, and without
``enable_push`` nothing is pushed.

Scripted servers check what the client sends: refused pushes are answered with
``RST_STREAM(REFUSED_STREAM)`` on the promised stream and leave the connection open
(push disabled, another origin, an unsafe method, the wrong scheme, too many buffered
pushes, a parent the client already reset), while a push for a name the server's certificate
covers is accepted. Every wait is bounded; servers and client synchronise on frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
)

import hyper.http20.connection as connection_module
from hyper import HTTP20Connection, HTTPConnection, tls
from hyper.common.headers import HTTPHeaderMap
from hyper.common.util import HTTPVersion
from hyper.http20.exceptions import ProtocolError, StreamResetError
from hyper.http20.response import HTTP20Push
from tests.support import introspect
from tests.support.hypercorn_apps import (
    DEFAULT_PUSHES,
    PUSH_REQUEST_HEADER,
    PUSHING_BODY,
    deterministic_bytes,
    pushed_body,
)
from tests.support.push_app import HypercornAppServer, NghttpdPushServer
from tests.support.scripted import (
    PeerClosed,
    ServerConnection,
    ServerShutdown,
    StreamClosedByPeer,
)

ServerFactory = Callable[..., Any]

OK = [(b"content-type", b"text/plain")]
REFUSED = h2.errors.ErrorCodes.REFUSED_STREAM
PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
CANCEL = h2.errors.ErrorCodes.CANCEL
#: Bound for every wait on the network in this module.
WAIT = 5.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def quickly(limit: float = 3.0) -> Iterator[None]:
    """Assert the block finishes within ``limit`` seconds."""
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.2f}s, expected under {limit}s"


# -- real servers: helpers ----------------------------------------------------------------------


@contextmanager
def tls_connection(
    server: NghttpdPushServer | HypercornAppServer,
    cls: type[Any] = HTTP20Connection,
    **kwargs: Any,
) -> Iterator[Any]:
    """A TLS connection (``cls``) to ``server`` trusting the test CA, closed afterwards."""
    assert server.ca_cert_path is not None
    kwargs.setdefault("timeout", WAIT)
    conn = cls(
        server.host,
        server.port,
        secure=True,
        ssl_context=tls.init_context(cert_path=server.ca_cert_path),
        **kwargs,
    )
    try:
        yield conn
    finally:
        conn.close()


def check_push_request(push: HTTP20Push, server: Any, path: str) -> None:
    """The promised request is a GET for ``path`` on the connection's own origin."""
    assert isinstance(push, HTTP20Push)
    assert push.scheme == b"https"
    assert push.method == b"GET"
    assert push.authority == f"{server.host}:{server.port}".encode()
    assert push.path == path.encode()
    assert isinstance(push.request_headers, HTTPHeaderMap)
    # Pseudo-headers are attributes, never ordinary request headers.
    assert not [name for name, _ in push.request_headers.items() if name.startswith(b":")]
    assert push.stream_id % 2 == 0


# -- nghttpd_push -------------------------------------------------------------------------------


def test_nghttpd_pushes_are_yielded_with_request_and_response(
    nghttpd_push: NghttpdPushServer,
) -> None:
    expected = nghttpd_push.pushes["/page.html"]
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/page.html")
        response = conn.get_response(stream_id)
        assert response.status == 200
        assert response.read() == nghttpd_push.read("page.html")

        pushes = list(conn.get_pushes(stream_id))
        assert [push.path for push in pushes] == [path.encode() for path in expected]
        for push, path in zip(pushes, expected, strict=True):
            check_push_request(push, nghttpd_push, path)
            pushed = push.get_response()
            assert pushed.status == 200
            assert sha256(pushed.read()) == nghttpd_push.files[path.lstrip("/")]

        # Not idempotent: the pushes were handed out once.
        assert list(conn.get_pushes(stream_id)) == []
        assert list(conn.get_pushes()) == []
        # The connection goes on working.
        again = conn.get_response(conn.request("GET", "/index.html"))
        assert again.read() == nghttpd_push.read("index.html")


def test_nghttpd_get_pushes_without_id_uses_the_latest_request(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        first = conn.request("GET", "/page.html")
        assert conn.get_response(first).read() == nghttpd_push.read("page.html")
        second = conn.request("GET", "/page.html")
        assert conn.get_response(second).read() == nghttpd_push.read("page.html")

        latest = list(conn.get_pushes())
        assert [push.path for push in latest] == [b"/style.css", b"/script.js"]
        # They were the second request's: the first one's are still there, untouched.
        assert list(conn.get_pushes(second)) == []
        earlier = list(conn.get_pushes(first))
        assert [push.path for push in earlier] == [b"/style.css", b"/script.js"]
        assert {p.stream_id for p in latest}.isdisjoint(p.stream_id for p in earlier)
        for push in [*latest, *earlier]:
            name = push.path.decode().lstrip("/")
            assert sha256(push.get_response().read()) == nghttpd_push.files[name]


def test_nghttpd_get_pushes_for_a_request_without_pushes_is_empty(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/index.html")
        assert conn.get_response(stream_id).read() == nghttpd_push.read("index.html")
        assert list(conn.get_pushes(stream_id)) == []
        assert list(conn.get_pushes(stream_id, capture_all=True)) == []


def test_nghttpd_capture_all_before_reading_the_parent_body(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/page.html")
        # Before even fetching the response: capture_all reads the connection itself.
        pushes = list(conn.get_pushes(stream_id, capture_all=True))
        assert [push.path for push in pushes] == [b"/style.css", b"/script.js"]
        assert list(conn.get_pushes(stream_id, capture_all=True)) == []
        response = conn.get_response(stream_id)
        assert response.read() == nghttpd_push.read("page.html")
        for push in pushes:
            name = push.path.decode().lstrip("/")
            assert sha256(push.get_response().read()) == nghttpd_push.files[name]


def test_nghttpd_capture_all_after_headers_then_read_parent(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/page.html")
        response = conn.get_response(stream_id)  # headers only; the body is not read yet
        paths = [push.path for push in conn.get_pushes(stream_id, capture_all=True)]
        assert paths == [b"/style.css", b"/script.js"]
        assert response.read() == nghttpd_push.read("page.html")


def test_nghttpd_big_push_is_flow_controlled_and_readable(
    nghttpd_push: NghttpdPushServer,
) -> None:
    """/big.html pushes /1m.bin (1 MiB, many DATA frames). capture_all ends with the (small)
    parent stream, and the pushed body can then be read in full, its window reopened as it
    is read (pushes larger than hyper's 4 MiB stream window: the hypercorn 6 MB test)."""
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", "/big.html")
        pushes = list(conn.get_pushes(stream_id, capture_all=True))
        assert [push.path for push in pushes] == [b"/1m.bin"]
        check_push_request(pushes[0], nghttpd_push, "/1m.bin")
        assert conn.get_response(stream_id).read() == nghttpd_push.read("big.html")
        pushed = pushes[0].get_response()
        assert pushed.status == 200
        body = pushed.read()
        assert len(body) == nghttpd_push.sizes["1m.bin"]
        assert sha256(body) == nghttpd_push.files["1m.bin"]
        # Nothing left buffered, and the connection still works.
        assert introspect.buffered(conn) == 0
        again = conn.get_response(conn.request("GET", "/64k.bin"))
        assert sha256(again.read()) == nghttpd_push.files["64k.bin"]


def test_nghttpd_big_push_read_in_pieces(nghttpd_push: NghttpdPushServer) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", "/big.html")
        assert conn.get_response(stream_id).read() == nghttpd_push.read("big.html")
        (push,) = conn.get_pushes(stream_id)
        pushed = push.get_response()
        parts = []
        while chunk := pushed.read(100_000):
            parts.append(chunk)
        assert max(len(p) for p in parts) <= 100_000
        assert sha256(b"".join(parts)) == nghttpd_push.files["1m.bin"]


def test_nghttpd_cancelled_push_leaves_the_connection_usable(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", "/big.html")
        (push,) = conn.get_pushes(stream_id, capture_all=True)
        push.cancel()
        assert push.stream_id not in introspect.open_ids(conn)
        assert conn.get_response(stream_id).read() == nghttpd_push.read("big.html")
        # Whatever nghttpd had in flight for the cancelled push is dropped, not buffered.
        for name in ("1m.bin", "index.html"):
            response = conn.get_response(conn.request("GET", f"/{name}"))
            assert sha256(response.read()) == nghttpd_push.files[name]
        assert push.stream_id not in introspect.open_ids(conn)
        assert introspect.buffered(conn) == 0
        # Pushes still work on this connection after a cancel.
        page = conn.request("GET", "/page.html")
        assert conn.get_response(page).read() == nghttpd_push.read("page.html")
        assert [p.path for p in conn.get_pushes(page)] == [b"/style.css", b"/script.js"]
    # nghttpd itself is unharmed: a new connection is served.
    with tls_connection(nghttpd_push, enable_push=True) as conn:
        stream_id = conn.request("GET", "/page.html")
        assert conn.get_response(stream_id).read() == nghttpd_push.read("page.html")
        assert len(list(conn.get_pushes(stream_id))) == 2


def test_nghttpd_cancel_one_push_read_the_other(nghttpd_push: NghttpdPushServer) -> None:
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/page.html")
        assert conn.get_response(stream_id).read() == nghttpd_push.read("page.html")
        style, script = conn.get_pushes(stream_id)
        style.cancel()
        assert sha256(script.get_response().read()) == nghttpd_push.files["script.js"]


def test_nghttpd_pushes_through_abstract_http_connection(
    nghttpd_push: NghttpdPushServer,
) -> None:
    with tls_connection(nghttpd_push, cls=HTTPConnection, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/page.html")
        response = conn.get_response(stream_id)
        assert response.version is HTTPVersion.http20
        assert response.read() == nghttpd_push.read("page.html")
        pushes = list(conn.get_pushes())
        assert [push.path for push in pushes] == [b"/style.css", b"/script.js"]
        for push in pushes:
            check_push_request(push, nghttpd_push, push.path.decode())
            name = push.path.decode().lstrip("/")
            assert sha256(push.get_response().read()) == nghttpd_push.files[name]
        assert list(conn.get_pushes(stream_id)) == []

        big = conn.request("GET", "/big.html")
        (push,) = conn.get_pushes(big, capture_all=True)
        assert conn.get_response(big).read() == nghttpd_push.read("big.html")
        assert sha256(push.get_response().read()) == nghttpd_push.files["1m.bin"]


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection])
def test_nghttpd_pushes_nothing_without_enable_push(
    nghttpd_push: NghttpdPushServer, cls: type[Any]
) -> None:
    with tls_connection(nghttpd_push, cls=cls) as conn, quickly(4.0):
        for page in ("/page.html", "/big.html"):
            stream_id = conn.request("GET", page)
            response = conn.get_response(stream_id)
            assert response.read() == nghttpd_push.read(page.lstrip("/"))
            assert list(conn.get_pushes(stream_id)) == []
            assert list(conn.get_pushes(stream_id, capture_all=True)) == []
        # nghttpd honoured ENABLE_PUSH=0: no pushed stream was ever opened.
        assert list(conn.get_pushes()) == []
        response = conn.get_response(conn.request("GET", "/1m.bin"))
        assert sha256(response.read()) == nghttpd_push.files["1m.bin"]


# -- hypercorn_push -----------------------------------------------------------------------------


def test_hypercorn_pushes_are_yielded_with_request_and_response(
    hypercorn_push: HypercornAppServer,
) -> None:
    with tls_connection(hypercorn_push, enable_push=True) as conn, quickly():
        stream_id = conn.request("GET", "/pushing")
        response = conn.get_response(stream_id)
        assert response.status == 200
        assert response.headers[b"x-push-offered"] == [b"1"]
        assert response.read() == PUSHING_BODY

        pushes = list(conn.get_pushes(stream_id))
        assert [push.path for push in pushes] == [p.encode() for p in DEFAULT_PUSHES]
        for push, path in zip(pushes, DEFAULT_PUSHES, strict=True):
            check_push_request(push, hypercorn_push, path)
            name, value = PUSH_REQUEST_HEADER
            assert push.request_headers[name] == [value]
            pushed = push.get_response()
            assert pushed.status == 200
            assert pushed.headers[b"content-type"] == [b"text/plain"]
            assert pushed.read() == pushed_body(path.rsplit("/", 1)[1])
        assert list(conn.get_pushes(stream_id)) == []
        assert list(conn.get_pushes()) == []


def test_hypercorn_chosen_pushes_and_latest_request(hypercorn_push: HypercornAppServer) -> None:
    with tls_connection(hypercorn_push, enable_push=True) as conn, quickly():
        first = conn.request("GET", "/pushing?push=/pushed/x")
        assert conn.get_response(first).read() == PUSHING_BODY
        second = conn.request("GET", "/pushing?push=/pushed/y&push=/pushed/z")
        assert conn.get_response(second).read() == PUSHING_BODY
        latest = list(conn.get_pushes())
        assert [push.path for push in latest] == [b"/pushed/y", b"/pushed/z"]
        assert [push.get_response().read() for push in latest] == [
            pushed_body("y"),
            pushed_body("z"),
        ]
        (earlier,) = conn.get_pushes(first)
        assert earlier.path == b"/pushed/x"
        assert earlier.get_response().read() == pushed_body("x")


@pytest.mark.parametrize("size", [1_000_000, 6_000_000], ids=["1MB", "6MB"])
def test_hypercorn_capture_all_then_large_flow_controlled_push(
    hypercorn_push: HypercornAppServer, size: int
) -> None:
    """The pushed body is far larger than the initial stream windows (6 MB: larger than the
    4 MiB hyper advertises, so hypercorn must wait for WINDOW_UPDATEs on the pushed stream);
    the small parent still completes first, and the push is read in full."""
    with tls_connection(hypercorn_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", f"/pushing?push=/bytes/{size}&push=/pushed/small")
        pushes = list(conn.get_pushes(stream_id, capture_all=True))
        assert [push.path for push in pushes] == [f"/bytes/{size}".encode(), b"/pushed/small"]
        assert conn.get_response(stream_id).read() == PUSHING_BODY
        assert pushes[1].get_response().read() == pushed_body("small")
        big = pushes[0].get_response()
        assert big.headers[b"content-length"] == [str(size).encode()]
        body = big.read()
        assert len(body) == size
        assert body == deterministic_bytes(size)


def test_hypercorn_cancelled_push_leaves_the_connection_usable(
    hypercorn_push: HypercornAppServer,
) -> None:
    with tls_connection(hypercorn_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", "/pushing?push=/bytes/1000000&push=/pushed/kept")
        assert conn.get_response(stream_id).read() == PUSHING_BODY
        big, kept = conn.get_pushes(stream_id)
        big.cancel()
        assert kept.get_response().read() == pushed_body("kept")
        echo = conn.request("POST", "/echo", body=b"still alive")
        assert conn.get_response(echo).read() == b"still alive"
        assert big.stream_id not in introspect.open_ids(conn)
        again = conn.request("GET", "/pushing")
        assert conn.get_response(again).read() == PUSHING_BODY
        assert [p.path for p in conn.get_pushes(again)] == [b"/pushed/a", b"/pushed/b"]


def test_hypercorn_pushes_through_abstract_http_connection(
    hypercorn_push: HypercornAppServer,
) -> None:
    with tls_connection(hypercorn_push, cls=HTTPConnection, enable_push=True) as conn, quickly():
        conn.request("GET", "/pushing")
        response = conn.get_response()
        assert response.version is HTTPVersion.http20
        assert response.read() == PUSHING_BODY
        pushes = list(conn.get_pushes(capture_all=True))
        assert [push.path for push in pushes] == [b"/pushed/a", b"/pushed/b"]
        assert [push.get_response().read() for push in pushes] == [
            pushed_body("a"),
            pushed_body("b"),
        ]
        assert list(conn.get_pushes()) == []


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection])
def test_hypercorn_pushes_nothing_without_enable_push(
    hypercorn_push: HypercornAppServer, cls: type[Any]
) -> None:
    with tls_connection(hypercorn_push, cls=cls) as conn, quickly():
        stream_id = conn.request("GET", "/pushing?push=/bytes/1000000&push=/pushed/a")
        response = conn.get_response(stream_id)
        # The app asked hypercorn to push; hypercorn dropped the pushes (ENABLE_PUSH=0).
        assert response.headers[b"x-push-offered"] == [b"1"]
        assert response.read() == PUSHING_BODY
        assert list(conn.get_pushes(stream_id)) == []
        assert list(conn.get_pushes(stream_id, capture_all=True)) == []
        echo = conn.request("POST", "/echo", body=b"fine")
        assert conn.get_response(echo).read() == b"fine"
        assert list(conn.get_pushes()) == []


# -- scripted servers: helpers ------------------------------------------------------------------


@contextmanager
def serve(
    scripted_server: ServerFactory,
    handler: Callable[[ServerConnection], None],
    *,
    tls_server: bool = False,
    ca_cert_path: Any = None,
    cls: type[Any] = HTTP20Connection,
    **conn_kwargs: Any,
) -> Iterator[Any]:
    """Start ``handler`` on a scripted server and yield (server, connection to 127.0.0.1)."""
    with scripted_server(handler, tls=tls_server) as server:
        conn_kwargs.setdefault("timeout", WAIT)
        if tls_server:
            conn_kwargs["ssl_context"] = tls.init_context(cert_path=ca_cert_path)
        conn = cls(server.host, server.port, secure=tls_server, **conn_kwargs)
        try:
            yield server, conn
        finally:
            conn.close()


def port_of(ctx: ServerConnection) -> int:
    return int(ctx.sock.getsockname()[1])


def promise(
    path: str,
    authority: str,
    *,
    method: str = "GET",
    scheme: str = "http",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> list[tuple[bytes, bytes]]:
    """The header block of a PUSH_PROMISE."""
    return [
        (b":method", method.encode()),
        (b":scheme", scheme.encode()),
        (b":authority", authority.encode()),
        (b":path", path.encode()),
        *extra,
    ]


def record_resets(ctx: ServerConnection) -> list[tuple[int, int]]:
    """Record every RST_STREAM frame the client sends as (stream id, error code), including
    those on streams the server's h2 state does not know (pushes sent as raw frames)."""
    seen: list[tuple[int, int]] = []
    table = ctx.conn._frame_dispatch_table
    original = table[RstStreamFrame]

    def recording(frame: RstStreamFrame) -> Any:
        seen.append((frame.stream_id, frame.error_code))
        return original(frame)

    table[RstStreamFrame] = recording
    return seen


def read_until(ctx: ServerConnection, done: Callable[[], bool], what: str) -> None:
    """Read from the client (bounded) until ``done()``."""
    deadline = time.monotonic() + WAIT
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or ctx.closed:
            raise AssertionError(f"no {what} within {WAIT}s (closed={ctx.closed})")
        ctx.recv_events(remaining)


def raw_push_bytes(
    ctx: ServerConnection,
    parent: int,
    promised: int,
    headers: list[tuple[bytes, bytes]],
    response: str = "none",
) -> bytes:
    """A PUSH_PROMISE as raw bytes, past h2's own checks, followed by the pushed response's
    HEADERS (``response="headers"``) or by its HEADERS and DATA with END_STREAM
    (``"complete"``). The HPACK encoder state stays in sync (ctx.encode_headers)."""
    frames: list[Frame] = []
    push_promise = PushPromiseFrame(
        parent, promised_stream_id=promised, data=ctx.encode_headers(headers)
    )
    push_promise.flags.add("END_HEADERS")
    frames.append(push_promise)
    if response in ("headers", "complete"):
        head = HeadersFrame(promised, data=ctx.encode_headers([(b":status", b"200"), *OK]))
        head.flags.add("END_HEADERS")
        frames.append(head)
    if response == "complete":
        data = DataFrame(promised, data=b"pushed anyway")
        data.flags.add("END_STREAM")
        frames.append(data)
    return b"".join(frame.serialize() for frame in frames)


def end_raw_push(promised: int) -> bytes:
    """The last DATA frame (END_STREAM) of a pushed response, as raw bytes."""
    data = DataFrame(promised, data=b"the rest")
    data.flags.add("END_STREAM")
    return data.serialize()


def response_bytes(ctx: ServerConnection, stream_id: int, body: bytes) -> bytes:
    """A complete response through h2, returned instead of sent (to coalesce writes)."""
    ctx.flush()
    ctx.conn.send_headers(stream_id, [(b":status", b"200"), *OK])
    ctx.conn.send_data(stream_id, body, end_stream=True)
    return bytes(ctx.conn.data_to_send())


def ping(ctx: ServerConnection, opaque: bytes) -> None:
    """Send a PING and read until the client acknowledged it: every frame sent before it
    has then been processed by the client, and its answers to them have been read."""
    ctx.conn.ping(opaque)
    ctx.flush()

    def acked(event: h2.events.Event) -> bool:
        return isinstance(event, h2.events.PingAckReceived) and event.ping_data == opaque

    ctx.wait_for(acked)


def serve_rest(ctx: ServerConnection) -> None:
    """Answer further requests with their path until the client closes the connection."""
    try:
        while True:
            event = ctx.next_event(timeout=WAIT)
            if event is None or isinstance(event, h2.events.ConnectionTerminated):
                return
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                ctx.respond(event.stream_id, 200, OK, b"served " + path)
    except PeerClosed:
        return


def push_then_respond(
    ctx: ServerConnection, headers_for: Callable[[int], list[tuple[bytes, bytes]]]
) -> tuple[int, int]:
    """Handshake, take a request, push ``headers_for(port)`` through h2 (the client enabled
    push), then answer the pushed stream and the request. Returns (parent, pushed)."""
    ctx.handshake()
    parent = ctx.wait_for_request().stream_id
    pushed = ctx.conn.get_next_available_stream_id()
    ctx.conn.push_stream(parent, pushed, headers_for(port_of(ctx)))
    ctx.flush()
    ctx.respond(parent, 200, OK, b"main")
    return parent, pushed


def refused_push_handler(
    headers_for: Callable[[int], list[tuple[bytes, bytes]]], outcome: dict[str, Any]
) -> Callable[[ServerConnection], None]:
    """A handler pushing ``headers_for(port)``; records how the client answered the push in
    ``outcome["reset"]`` (the StreamReset event on the promised stream), then serves on."""

    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond(ctx, headers_for)
        outcome["pushed"] = pushed
        reset = ctx.wait_for(h2.events.StreamReset, stream_id=pushed)
        outcome["reset"] = reset
        # Had the client accepted the push, this response would be readable; it must not
        # be buffered anywhere (h2 refuses to send on the reset stream: that is fine too).
        serve_rest(ctx)

    return handler


def assert_refused_then_usable(
    conn: Any, outcome: dict[str, Any], path: str = "/", code: int = REFUSED
) -> None:
    """The parent reads fine, no push is yielded, the server saw RST_STREAM with ``code`` on
    the promised stream, and the connection keeps serving requests."""
    stream_id = conn.request("GET", path)
    with quickly():
        assert conn.get_response(stream_id).read() == b"main"
        assert list(conn.get_pushes(stream_id)) == []
        # The next request is served on the same connection (the RST went out first).
        after = conn.request("GET", "/after")
        assert conn.get_response(after).read() == b"served /after"
    reset = outcome.get("reset")
    assert reset is not None, "the server saw no RST_STREAM for the push"
    assert reset.stream_id == outcome["pushed"]
    assert reset.error_code == code
    assert outcome["pushed"] not in introspect.open_ids(conn)
    assert introspect.uncollected_pushes(conn) == {}
    assert list(conn.get_pushes(stream_id, capture_all=True)) == []


# -- scripted: push when the client disabled it --------------------------------------------------


def test_push_after_the_server_acknowledged_it_is_disabled_ends_the_connection(
    scripted_server: ServerFactory,
) -> None:
    """RFC 9113 section 6.6: once the server has acknowledged SETTINGS_ENABLE_PUSH = 0, a
    PUSH_PROMISE is a connection error of type PROTOCOL_ERROR. The request fails with
    ProtocolError, the server sees GOAWAY(PROTOCOL_ERROR), and the next request opens a new
    connection. (Before the acknowledgement the push is only refused: see the engine's
    tests.)"""
    seen: dict[str, Any] = {}

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        if len(seen) == 0:
            seen["enable_push"] = ctx.conn.remote_settings[h2.settings.SettingCodes.ENABLE_PUSH]
            parent = ctx.wait_for_request().stream_id
            # A server ignoring SETTINGS_ENABLE_PUSH=0, which it acknowledged: it promises,
            # starts the pushed response and answers the request, all in one write.
            headers = promise("/style.css", f"127.0.0.1:{port_of(ctx)}")
            ctx.send_raw(
                raw_push_bytes(ctx, parent, 2, headers, response="headers")
                + response_bytes(ctx, parent, b"main")
            )
            seen["goaway"] = ctx.wait_for(h2.events.ConnectionTerminated)
            return
        serve_rest(ctx)

    with serve(scripted_server, handler) as (server, conn):
        assert conn.enable_push is False
        stream_id = conn.request("GET", "/")
        with quickly():
            with pytest.raises(ProtocolError) as info:
                conn.get_response(stream_id).read()
            assert info.value.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
            assert "PUSH_PROMISE" in str(info.value)
            after = conn.request("GET", "/after")
            assert conn.get_response(after).read() == b"served /after"
        assert introspect.uncollected_pushes(conn) == {}
        assert len(server.connections) == 2
    assert seen["enable_push"] == 0
    assert seen["goaway"].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_refused_push_whose_response_completed_in_the_same_read(
    scripted_server: ServerFactory,
) -> None:
    """A refused push whose (small) response arrives complete in the same read as the
    PUSH_PROMISE: nothing is left to reset, and the connection must go on."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        headers = promise("/style.css", "evil.example")
        ctx.send_raw(
            raw_push_bytes(ctx, parent, 2, headers, response="complete")
            + response_bytes(ctx, parent, b"main")
        )
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (server, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        assert list(conn.get_pushes(stream_id)) == []
        assert conn.get_response(conn.request("GET", "/after")).read() == b"served /after"
        assert len(server.connections) == 1


# -- scripted: pushes for another origin, method or scheme ----------------------------------------


@pytest.mark.parametrize(
    "headers_for",
    [
        pytest.param(lambda port: promise("/x", f"evil.example:{port}"), id="other-host"),
        pytest.param(lambda port: promise("/x", "evil.example"), id="other-host-no-port"),
        pytest.param(lambda port: promise("/x", f"127.0.0.1:{port + 1}"), id="other-port"),
        pytest.param(lambda port: promise("/x", "127.0.0.1"), id="default-port"),
        pytest.param(lambda port: promise("/x", f"127.0.0.2:{port}"), id="other-ip"),
        pytest.param(lambda port: promise("/x", f"localhost:{port}"), id="other-name-plaintext"),
        pytest.param(lambda port: promise("/x", f"127.0.0.1:{port}@evil"), id="userinfo"),
        pytest.param(
            lambda port: promise("/x", f"127.0.0.1:{port}", method="POST"), id="method-POST"
        ),
        pytest.param(
            lambda port: promise("/x", f"127.0.0.1:{port}", method="DELETE"), id="method-DELETE"
        ),
        pytest.param(
            lambda port: promise("/x", f"127.0.0.1:{port}", scheme="https"), id="scheme-https"
        ),
    ],
)
def test_push_for_another_origin_method_or_scheme_is_a_stream_error(
    scripted_server: ServerFactory, headers_for: Callable[[int], list[tuple[bytes, bytes]]]
) -> None:
    """RFC 9113 8.4 and 8.4.1: a push the server is not authoritative for, or for a method
    that is not safe and cacheable, is reset with PROTOCOL_ERROR; the connection goes on."""
    outcome: dict[str, Any] = {}
    handler = refused_push_handler(headers_for, outcome)
    with serve(scripted_server, handler, enable_push=True) as (_, conn):
        assert_refused_then_usable(conn, outcome, code=PROTOCOL_ERROR)


@pytest.mark.parametrize(
    ("headers_for", "body"),
    [
        pytest.param(lambda port: promise("/ok", f"127.0.0.1:{port}"), b"pushed", id="GET"),
        pytest.param(
            lambda port: promise("/ok", f"127.0.0.1:{port}", method="HEAD"), b"", id="HEAD"
        ),
        pytest.param(
            lambda port: promise("/ok", f"127.0.0.1:{port}", scheme="HTTP"),
            b"pushed",
            id="scheme-case",
        ),
        pytest.param(
            lambda port: promise("/ok", f"127.0.0.1:{port}", extra=((b"accept", b"text/css"),)),
            b"pushed",
            id="with-headers",
        ),
    ],
)
def test_same_origin_safe_push_is_accepted_on_plaintext(
    scripted_server: ServerFactory,
    headers_for: Callable[[int], list[tuple[bytes, bytes]]],
    body: bytes,
) -> None:
    resets: list[tuple[int, int]] = []

    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond(ctx, headers_for)
        ctx.respond(pushed, 200, [(b"content-length", b"6")], body)
        serve_rest(ctx)
        resets.extend(
            (e.stream_id, e.error_code) for e in ctx.events if isinstance(e, h2.events.StreamReset)
        )

    with serve(scripted_server, handler, enable_push=True) as (server, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        (push,) = conn.get_pushes(stream_id, capture_all=True)
        expected = headers_for(server.port)
        assert push.path == b"/ok"
        assert push.authority == f"127.0.0.1:{server.port}".encode()
        assert push.method == dict(expected)[b":method"]
        assert push.scheme == dict(expected)[b":scheme"]
        assert list(push.request_headers.items()) == expected[4:]
        pushed = push.get_response()
        assert pushed.status == 200
        assert pushed.read() == body
        after = conn.request("GET", "/after")
        assert conn.get_response(after).read() == b"served /after"
    assert resets == []


# -- scripted: over TLS, the certificate decides ------------------------------------------------


def tls_push_handler(
    paths_and_authorities: list[tuple[str, str]], outcome: dict[str, Any]
) -> Callable[[ServerConnection], None]:
    """Push each (path, authority with {port}) on the first request, answer the request,
    then answer every push the client did not refuse; record the pushed ids and the
    client's resets. A PING sent after the promises is the barrier: once its ACK is in,
    the client has processed the promises, so its refusals have arrived too."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        resets = record_resets(ctx)
        outcome["resets"] = resets
        parent = ctx.wait_for_request().stream_id
        port = port_of(ctx)
        pushed_ids = []
        for path, authority in paths_and_authorities:
            pushed = ctx.conn.get_next_available_stream_id()
            authority = authority.format(port=port, other_port=port + 1)
            headers = promise(path, authority, scheme="https")
            ctx.conn.push_stream(parent, pushed, headers)
            pushed_ids.append(pushed)
        ctx.flush()
        outcome["pushed"] = pushed_ids
        ctx.respond(parent, 200, OK, b"main")
        ping(ctx, b"promised")
        for pushed, (path, _) in zip(pushed_ids, paths_and_authorities, strict=True):
            try:
                ctx.respond(pushed, 200, OK, b"pushed " + path.encode())
            except StreamClosedByPeer:
                pass  # refused already, as expected for some
            except PeerClosed:
                return  # the client gave up (a failed test): its assertion tells why
        serve_rest(ctx)

    return handler


def test_tls_push_for_a_name_the_certificate_covers_is_accepted(
    scripted_server: ServerFactory, ca_cert_path: Any
) -> None:
    """Connected to 127.0.0.1; the certificate covers localhost, 127.0.0.1 and ::1. A push
    for localhost:PORT is the server's own to make; other.example:PORT is not."""
    outcome: dict[str, Any] = {}
    handler = tls_push_handler(
        [
            ("/local", "localhost:{port}"),
            ("/LOCAL", "LocalHost:{port}"),
            ("/own", "127.0.0.1:{port}"),
            ("/other", "other.example:{port}"),
            ("/wrong-port", "localhost:{other_port}"),
        ],
        outcome,
    )
    with serve(
        scripted_server, handler, tls_server=True, ca_cert_path=ca_cert_path, enable_push=True
    ) as (server, conn):
        with quickly():
            stream_id = conn.request("GET", "/")
            assert conn.get_response(stream_id).read() == b"main"
            pushes = list(conn.get_pushes(stream_id, capture_all=True))
            assert [p.path for p in pushes] == [b"/local", b"/LOCAL", b"/own"]
            assert pushes[0].authority == f"localhost:{server.port}".encode()
            assert pushes[0].scheme == b"https"
            for push in pushes:
                assert push.get_response().read() == b"pushed " + push.path
            after = conn.request("GET", "/after")
            assert conn.get_response(after).read() == b"served /after"
        assert introspect.uncollected_pushes(conn) == {}
    assert outcome["resets"] == [(sid, PROTOCOL_ERROR) for sid in outcome["pushed"][3:]]


def test_tls_push_for_an_ipv6_address_the_certificate_covers_is_accepted(
    scripted_server: ServerFactory, ca_cert_path: Any
) -> None:
    outcome: dict[str, Any] = {}
    handler = tls_push_handler([("/v6", "[::1]:{port}")], outcome)
    with serve(
        scripted_server, handler, tls_server=True, ca_cert_path=ca_cert_path, enable_push=True
    ) as (_, conn):
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        pushes = list(conn.get_pushes(stream_id, capture_all=True))
        assert [p.path for p in pushes] == [b"/v6"]
        assert pushes[0].get_response().read() == b"pushed /v6"


def test_tls_push_with_http_scheme_is_a_stream_error(
    scripted_server: ServerFactory, ca_cert_path: Any
) -> None:
    outcome: dict[str, Any] = {}

    def headers_for(port: int) -> list[tuple[bytes, bytes]]:
        return promise("/x", f"127.0.0.1:{port}", scheme="http")

    handler = refused_push_handler(headers_for, outcome)
    with serve(
        scripted_server, handler, tls_server=True, ca_cert_path=ca_cert_path, enable_push=True
    ) as (_, conn):
        assert_refused_then_usable(conn, outcome, code=PROTOCOL_ERROR)


# -- scripted: the policy can be overridden ------------------------------------------------------


class PushAnything(HTTP20Connection):
    """Accepts every push, and remembers what it was asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[bytes, bytes, bytes, bytes, frozenset[str] | None]] = []

    def push_allowed(
        self,
        scheme: bytes,
        method: bytes,
        authority: bytes,
        path: bytes,
        certificate_names: frozenset[str] | None,
    ) -> bool:
        self.asked.append((scheme, method, authority, path, certificate_names))
        return True


class PushNothing(HTTP20Connection):
    def push_allowed(self, *args: Any) -> bool:
        return False


def test_push_allowed_override_accepts_a_cross_origin_push(
    scripted_server: ServerFactory,
) -> None:
    resets: list[Any] = []

    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond(ctx, lambda port: promise("/x", "evil.example:1"))
        ctx.respond(pushed, 200, OK, b"cross-origin body")
        serve_rest(ctx)
        resets.extend(e for e in ctx.events if isinstance(e, h2.events.StreamReset))

    with serve(scripted_server, handler, cls=PushAnything, enable_push=True) as (_, conn):
        with quickly():
            stream_id = conn.request("GET", "/")
            assert conn.get_response(stream_id).read() == b"main"
            (push,) = conn.get_pushes(stream_id, capture_all=True)
            assert push.authority == b"evil.example:1"
            assert push.get_response().read() == b"cross-origin body"
        assert conn.asked == [(b"http", b"GET", b"evil.example:1", b"/x", None)]
    assert resets == []


def test_push_allowed_gets_the_certificate_names_over_tls(
    scripted_server: ServerFactory, ca_cert_path: Any
) -> None:
    outcome: dict[str, Any] = {}
    handler = tls_push_handler([("/n", "127.0.0.1:{port}")], outcome)
    with serve(
        scripted_server,
        handler,
        tls_server=True,
        ca_cert_path=ca_cert_path,
        cls=PushAnything,
        enable_push=True,
    ) as (_, conn):
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        (push,) = conn.get_pushes(stream_id, capture_all=True)
        assert push.get_response().read() == b"pushed /n"
        ((scheme, method, _, path, names),) = conn.asked
    assert (scheme, method, path) == (b"https", b"GET", b"/n")
    assert names is not None
    assert {"localhost", "127.0.0.1"} <= names


def test_push_allowed_override_refusing_everything(scripted_server: ServerFactory) -> None:
    outcome: dict[str, Any] = {}
    handler = refused_push_handler(lambda port: promise("/x", f"127.0.0.1:{port}"), outcome)
    with serve(scripted_server, handler, cls=PushNothing, enable_push=True) as (_, conn):
        assert_refused_then_usable(conn, outcome)


def test_push_allowed_is_not_asked_when_push_is_disabled(scripted_server: ServerFactory) -> None:
    """With push disabled, a promise is a protocol error (RFC 9113 section 6.6), never a
    question for the push policy."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        ctx.send_raw(raw_push_bytes(ctx, parent, 2, promise("/x", f"127.0.0.1:{port_of(ctx)}")))
        ctx.wait_for(h2.events.ConnectionTerminated)

    with serve(scripted_server, handler, cls=PushAnything) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        with pytest.raises(ProtocolError):
            conn.get_response(stream_id)
        assert conn.asked == []


def test_frames_in_flight_on_a_refused_push_are_ignored(scripted_server: ServerFactory) -> None:
    """The pushed response a server had already sent when the client's RST_STREAM
    arrived is ignored: no further RST_STREAM answers it."""
    seen: dict[str, Any] = {}

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        resets = record_resets(ctx)
        seen["resets"] = resets
        parent = ctx.wait_for_request().stream_id
        pushed = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, pushed, promise("/x", "evil.example"))
        ctx.flush()
        ctx.respond(parent, 200, OK, b"main")
        ping(ctx, b"promised")
        seen["pushed"] = pushed
        # Raw frames: the server's h2 knows the stream was reset and would refuse.
        head = HeadersFrame(pushed, data=ctx.encode_headers([(b":status", b"200"), *OK]))
        head.flags.add("END_HEADERS")
        ctx.send_raw(head.serialize() + end_raw_push(pushed))
        ping(ctx, b"inflight")
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        assert conn.get_response(conn.request("GET", "/a")).read() == b"served /a"
        assert conn.get_response(conn.request("GET", "/b")).read() == b"served /b"
    assert seen["resets"] == [(seen["pushed"], PROTOCOL_ERROR)]  # not authoritative


# -- scripted: too many uncollected pushes -------------------------------------------------------


def test_pushes_beyond_the_buffer_limit_are_refused_until_collected(
    scripted_server: ServerFactory,
) -> None:
    limit = connection_module.MAX_BUFFERED_PUSHES
    extra = 2
    outcome: dict[str, Any] = {}

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        port = port_of(ctx)
        parent = ctx.wait_for_request().stream_id
        first = []
        for n in range(limit + extra):
            pushed = ctx.conn.get_next_available_stream_id()
            ctx.conn.push_stream(parent, pushed, promise(f"/p{n}", f"127.0.0.1:{port}"))
            first.append(pushed)
        ctx.flush()
        ctx.respond(parent, 200, OK, b"main")
        resets = []
        while len(resets) < extra:
            event = ctx.wait_for(h2.events.StreamReset)
            resets.append((event.stream_id, event.error_code))
        outcome["first"], outcome["resets"] = first, resets
        # Once the client collected its pushes, a new one is accepted again.
        parent = ctx.wait_for_request().stream_id
        pushed = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, pushed, promise("/later", f"127.0.0.1:{port}"))
        ctx.flush()
        ctx.respond(pushed, 200, OK, b"later")
        ctx.respond(parent, 200, OK, b"second")
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        pushes = list(conn.get_pushes(stream_id))
        assert [p.path for p in pushes] == [f"/p{n}".encode() for n in range(limit)]
        second = conn.request("GET", "/second")
        assert conn.get_response(second).read() == b"second"
        (later,) = conn.get_pushes(second)
        assert later.get_response().read() == b"later"
    first = outcome["first"]
    assert outcome["resets"] == [(sid, REFUSED) for sid in first[limit:]]


def test_buffer_limit_counts_pushes_of_every_request(
    scripted_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit is on all uncollected pushes of the connection, not per request."""
    monkeypatch.setattr(connection_module, "MAX_BUFFERED_PUSHES", 3)
    outcome: dict[str, Any] = {"resets": []}

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        port = port_of(ctx)
        ids = []
        for request in range(2):
            parent = ctx.wait_for_request().stream_id
            for n in range(2):
                pushed = ctx.conn.get_next_available_stream_id()
                ctx.conn.push_stream(
                    parent, pushed, promise(f"/r{request}p{n}", f"127.0.0.1:{port}")
                )
                ids.append(pushed)
            ctx.flush()
            ctx.respond(parent, 200, OK, b"main")
        outcome["ids"] = ids
        reset = ctx.wait_for(h2.events.StreamReset)
        outcome["resets"].append((reset.stream_id, reset.error_code))
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        first = conn.request("GET", "/")
        assert conn.get_response(first).read() == b"main"
        second = conn.request("GET", "/")
        assert conn.get_response(second).read() == b"main"
        assert [p.path for p in conn.get_pushes(first)] == [b"/r0p0", b"/r0p1"]
        assert [p.path for p in conn.get_pushes(second)] == [b"/r1p0"]
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"
    assert outcome["resets"] == [(outcome["ids"][3], REFUSED)]


# -- scripted: closing the parent, cancelling, resets --------------------------------------------


def test_closing_the_parent_cancels_uncollected_pushes_only(
    scripted_server: ServerFactory,
) -> None:
    outcome: dict[str, Any] = {}

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        port = port_of(ctx)
        parent = ctx.wait_for_request().stream_id
        collected = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, collected, promise("/collected", f"127.0.0.1:{port}"))
        left = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, left, promise("/left", f"127.0.0.1:{port}"))
        ctx.flush()
        outcome["ids"] = (collected, left)
        ctx.respond(parent, 200, OK, b"main part", end=False)  # the parent stays open
        ctx.respond(collected, 200, OK, b"first half ", end=False)
        ctx.respond(left, 200, OK, b"partial", end=False)
        resets = []
        while len(resets) < 2:
            event = ctx.wait_for(h2.events.StreamReset)
            resets.append((event.stream_id, event.error_code))
        outcome["resets"] = resets
        ctx.send_body(collected, b"second half")  # the collected push goes on
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        collected = next(iter(conn.get_pushes(stream_id)))  # the other stays uncollected
        assert collected.path == b"/collected"
        response.close()  # parent unfinished: reset, and the uncollected push cancelled
        assert list(conn.get_pushes(stream_id)) == []
        assert collected.get_response().read() == b"first half second half"
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"
    parent_id = 1
    collected_id, left_id = outcome["ids"]
    assert sorted(outcome["resets"]) == sorted([(parent_id, CANCEL), (left_id, CANCEL)])
    assert collected_id not in [sid for sid, _ in outcome["resets"]]


def test_push_cancel_sends_rst_stream_cancel(scripted_server: ServerFactory) -> None:
    outcome: dict[str, Any] = {}

    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond(ctx, lambda port: promise("/big", f"127.0.0.1:{port}"))
        ctx.respond(pushed, 200, OK, b"start", end=False)
        event = ctx.wait_for(h2.events.StreamReset, stream_id=pushed)
        outcome["reset"] = (event.stream_id, event.error_code)
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        (push,) = conn.get_pushes(stream_id)
        push.cancel()
        assert push.stream_id not in introspect.open_ids(conn)
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"
        pushed_id = push.stream_id
    assert outcome["reset"] == (pushed_id, CANCEL)


def in_flight_push_handler(seen: dict[str, Any], response: str) -> Any:
    """The client resets its request while the server's PUSH_PROMISE for it (followed by
    ``response`` of the pushed stream, see raw_push_bytes) is in flight."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        resets = record_resets(ctx)
        seen["resets"] = resets
        parent = ctx.wait_for_request().stream_id
        ctx.respond(parent, 200, OK, b"partial", end=False)
        ctx.wait_for(h2.events.StreamReset, stream_id=parent)  # the client closed it
        # As if sent before the RST_STREAM arrived: h2 would refuse, so raw frames.
        promised = ctx.conn.get_next_available_stream_id()
        seen["promised"] = promised
        headers = promise("/late", f"127.0.0.1:{port_of(ctx)}")
        ctx.send_raw(raw_push_bytes(ctx, parent, promised, headers, response=response))
        serve_rest(ctx)

    return handler


def check_in_flight_push(scripted_server: ServerFactory, response: str) -> None:
    seen: dict[str, Any] = {}
    handler = in_flight_push_handler(seen, response)
    with serve(scripted_server, handler, enable_push=True) as (server, conn), quickly():
        stream_id = conn.request("GET", "/")
        conn.get_response(stream_id).close()  # unfinished: RST_STREAM(CANCEL)
        after = conn.request("GET", "/after")
        assert conn.get_response(after).read() == b"served /after"
        assert list(conn.get_pushes(stream_id)) == []
        assert list(conn.get_pushes(after)) == []
        assert introspect.uncollected_pushes(conn) == {}
        again = conn.request("GET", "/again")
        assert conn.get_response(again).read() == b"served /again"
        assert len(server.connections) == 1
    promised = seen["promised"]
    assert (stream_id, CANCEL) in seen["resets"]
    assert [code for sid, code in seen["resets"] if sid == promised][:1] == [REFUSED]


def test_push_promise_on_a_stream_the_client_reset_is_refused(
    scripted_server: ServerFactory,
) -> None:
    check_in_flight_push(scripted_server, "none")


@pytest.mark.parametrize("response", ["headers", "complete"])
def test_push_promise_on_a_reset_stream_with_its_response_in_flight(
    scripted_server: ServerFactory, response: str
) -> None:
    check_in_flight_push(scripted_server, response)


def test_pushed_stream_reset_by_the_server_raises_on_get_response(
    scripted_server: ServerFactory,
) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        port = port_of(ctx)
        parent = ctx.wait_for_request().stream_id
        gone = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, gone, promise("/gone", f"127.0.0.1:{port}"))
        ok = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, ok, promise("/ok", f"127.0.0.1:{port}"))
        ctx.conn.reset_stream(gone, h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        ctx.respond(ok, 200, OK, b"fine")
        ctx.respond(parent, 200, OK, b"main")
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        gone, ok = conn.get_pushes(stream_id)
        assert gone.path == b"/gone"
        with pytest.raises(StreamResetError) as excinfo:
            gone.get_response()
        assert excinfo.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert ok.get_response().read() == b"fine"
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"


def test_pushed_stream_reset_mid_body_raises_on_read(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond(ctx, lambda port: promise("/half", f"127.0.0.1:{port}"))
        ctx.respond(pushed, 200, [(b"content-length", b"100")], b"only part", end=False)
        ctx.conn.reset_stream(pushed, h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"main"
        (push,) = conn.get_pushes(stream_id, capture_all=True)
        pushed = push.get_response()
        assert pushed.status == 200
        with pytest.raises(StreamResetError):
            pushed.read()
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"


# -- scripted: capture_all -----------------------------------------------------------------------


def test_capture_all_yields_pushes_promised_mid_body_and_stops_at_end(
    scripted_server: ServerFactory,
) -> None:
    """Promises before the headers, in the middle of the body and just before its end are
    all yielded by one capture_all generator, which ends with the parent stream."""

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        port = port_of(ctx)
        parent = ctx.wait_for_request().stream_id
        ids = []

        def push(path: str) -> None:
            pushed = ctx.conn.get_next_available_stream_id()
            ctx.conn.push_stream(parent, pushed, promise(path, f"127.0.0.1:{port}"))
            ctx.flush()
            ids.append((pushed, path))

        push("/before-headers")
        ctx.conn.send_headers(parent, [(b":status", b"200"), *OK])
        ctx.flush()
        ctx.send_body(parent, b"first ", end_stream=False)
        push("/mid-body")
        ctx.send_body(parent, b"second", end_stream=False)
        push("/before-end")
        ctx.send_body(parent, b"", end_stream=True)
        for pushed, path in ids:
            ctx.respond(pushed, 200, OK, path.encode())
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        paths = [push.path for push in conn.get_pushes(stream_id, capture_all=True)]
        assert paths == [b"/before-headers", b"/mid-body", b"/before-end"]
        assert conn.get_response(stream_id).read() == b"first second"
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"


def test_get_pushes_without_capture_all_does_not_block(scripted_server: ServerFactory) -> None:
    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        ctx.conn.send_headers(parent, [(b":status", b"200"), *OK])
        ctx.flush()
        # No push yet, and the parent stays open until the client asks for more.
        nxt = ctx.wait_for_request().stream_id
        ctx.respond(nxt, 200, OK, b"other")
        ctx.send_body(parent, b"done")
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True, timeout=(5, 2)) as (_, conn):
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        with quickly(1.0):
            assert list(conn.get_pushes(stream_id)) == []
        with quickly():
            assert conn.get_response(conn.request("GET", "/next")).read() == b"other"
            assert response.read() == b"done"


def test_get_pushes_before_any_request_is_empty() -> None:
    conn = HTTP20Connection("127.0.0.1", 9, secure=False, enable_push=True, timeout=1)
    with quickly(1.0):
        assert list(conn.get_pushes()) == []
        assert list(conn.get_pushes(capture_all=True)) == []
        assert list(conn.get_pushes(99, capture_all=True)) == []
    assert not introspect.connected(conn)  # nothing was connected for it


def test_capture_all_ends_when_the_server_resets_the_parent(
    scripted_server: ServerFactory,
) -> None:
    def handler(ctx: ServerConnection) -> None:
        _, pushed = push_then_respond_partially(ctx, "/kept")
        ctx.respond(pushed, 200, OK, b"kept")
        ctx.conn.reset_stream(1, h2.errors.ErrorCodes.INTERNAL_ERROR)
        ctx.flush()
        serve_rest(ctx)

    with serve(scripted_server, handler, enable_push=True) as (_, conn), quickly():
        stream_id = conn.request("GET", "/")
        (push,) = conn.get_pushes(stream_id, capture_all=True)
        assert push.get_response().read() == b"kept"
        with pytest.raises(StreamResetError):
            conn.get_response(stream_id).read()
        assert conn.get_response(conn.request("GET", "/x")).read() == b"served /x"


def push_then_respond_partially(ctx: ServerConnection, path: str) -> tuple[int, int]:
    """Handshake, take a request, push ``path``, and send the request's response headers and
    part of its body (the parent stays open). Returns (parent, pushed)."""
    ctx.handshake()
    parent = ctx.wait_for_request().stream_id
    pushed = ctx.conn.get_next_available_stream_id()
    ctx.conn.push_stream(parent, pushed, promise(path, f"127.0.0.1:{port_of(ctx)}"))
    ctx.flush()
    ctx.respond(parent, 200, OK, b"part", end=False)
    return parent, pushed


def test_push_from_a_session_draining_after_goaway_is_readable(
    scripted_server: ServerFactory,
) -> None:
    """After a graceful GOAWAY, new requests go on a new connection while the old one
    finishes its streams: a push promised on the old one still gets its response."""
    second_served = threading.Event()
    handled: list[ServerConnection] = []

    def handler(ctx: ServerConnection) -> None:
        handled.append(ctx)
        first = handled[0] is ctx
        ctx.handshake()
        parent = ctx.wait_for_request().stream_id
        if not first:
            ctx.respond(parent, 200, OK, b"second connection")
            second_served.set()
            serve_rest(ctx)
            return
        pushed = ctx.conn.get_next_available_stream_id()
        ctx.conn.push_stream(parent, pushed, promise("/late", f"127.0.0.1:{port_of(ctx)}"))
        promised = bytes(ctx.conn.data_to_send())
        # GOAWAY raw, so that the server's h2 state stays open for the pushed response; in
        # the same write as the response, so the client knows of it before its next request.
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = parent
        ctx.send_raw(
            promised + goaway.serialize() + response_bytes(ctx, parent, b"first connection")
        )
        # The pushed response only comes once the client is busy with its new connection.
        assert second_served.wait(WAIT), "the client never opened a second connection"
        ctx.send_raw(response_bytes(ctx, pushed, b"pushed late"))
        with contextlib.suppress(PeerClosed, ServerShutdown):
            ctx.wait_closed()

    with (
        serve(scripted_server, handler, enable_push=True, timeout=(5, 2)) as (server, conn),
        quickly(),
    ):
        stream_id = conn.request("GET", "/")
        assert conn.get_response(stream_id).read() == b"first connection"
        (push,) = conn.get_pushes(stream_id)
        other = conn.request("GET", "/other")
        assert conn.get_response(other).read() == b"second connection"
        assert len(server.connections) == 2
        assert push.get_response().read() == b"pushed late"


def test_capture_all_in_a_thread_while_another_reads_the_parent(
    nghttpd_push: NghttpdPushServer,
) -> None:
    """hyper's connections are shared between threads: one thread collects the pushes as
    they come while another reads the parent's body."""
    collected: list[HTTP20Push] = []
    errors: list[BaseException] = []
    with tls_connection(nghttpd_push, enable_push=True) as conn, quickly(4.0):
        stream_id = conn.request("GET", "/big.html")

        def collect() -> None:
            try:
                collected.extend(conn.get_pushes(stream_id, capture_all=True))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=collect)
        thread.start()
        try:
            assert conn.get_response(stream_id).read() == nghttpd_push.read("big.html")
        finally:
            thread.join(WAIT)
        assert not thread.is_alive()
        assert errors == []
        assert [push.path for push in collected] == [b"/1m.bin"]
        assert sha256(collected[0].get_response().read()) == nghttpd_push.files["1m.bin"]
