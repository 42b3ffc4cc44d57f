"""Caller misuse: every mistake a caller can make with hyper's API is refused with a clear,
documented exception, and before anything of the bad request reaches the wire.

The connections talk to a real listening socket on 127.0.0.1 that records every byte it
receives (:class:`Recorder`). After the misuse, the connection is closed and the recording
is checked: an HTTP/1.1 connection must have sent nothing at all; an HTTP/2 connection that
was already open may have sent its preface, SETTINGS and WINDOW_UPDATE, but no HEADERS (or
DATA) frame. Covered for :class:`~hyper.HTTPConnection`, :class:`~hyper.HTTP11Connection` and
:class:`~hyper.HTTP20Connection`:

* invalid hosts and ports in the constructors (nothing is even connected);
* invalid methods, targets, header names and values (CR, LF, NUL, spaces, text that cannot
  be encoded), header containers and bodies of the wrong type, on fresh and open
  connections;
* ``get_response()`` for a request that was never made;
* reading a response after its connection was closed, from the thread that closed it and
  from another one; waiting for a response another thread's close() cut off; and, as
  documented, a request from another thread after close() opening a new connection.

The unit tests in ``tests/unit/test_request.py`` and ``test_util.py`` check the validators
one by one; this module checks that every public entry point goes through them in time.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.exceptions import ConnectionClosed, HyperError, InvalidRequest
from tests.support.scripted import (
    ScriptedRawServer,
    ScriptedServer,
    ServerConnection,
    simple_responder,
)

ServerFactory = Callable[..., Any]
ConnectionClass = type[HTTPConnection] | type[HTTP11Connection] | type[HTTP20Connection]

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Frame types that carry a request: HEADERS, DATA, CONTINUATION.
REQUEST_FRAME_TYPES = {0x0, 0x1, 0x9}
#: Bound on every wait in this module.
TIMEOUT = 5.0


class Recorder:
    """The server side: accepts connections and records every byte received, answering
    nothing."""

    #: What the test's own last connection sends (see :meth:`settle`).
    MARKER = b"\0recorder-marker\0"

    def __init__(self) -> None:
        self.connections: list[bytearray] = []
        self._lock = threading.Lock()
        self._marker_seen = threading.Event()

    def handler(self, sock: socket.socket) -> None:
        """Per connection: read until the client closes (or the server shuts down)."""
        sink = bytearray()
        with self._lock:
            self.connections.append(sink)
        sock.settimeout(TIMEOUT)
        try:
            while data := sock.recv(65536):
                sink.extend(data)
        except OSError:
            pass
        if sink == self.MARKER:
            self._marker_seen.set()

    def settle(self, server: ScriptedRawServer) -> None:
        """Make sure every connection the client made has been accepted and read to its end.

        The server accepts in order, so once a marker connection opened *after* the client
        closed has been read, the client's connections (if any) were accepted before it;
        then every handler is joined. Without this, a connection not yet accepted would look
        like "nothing was sent"."""
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as marker:
            marker.sendall(self.MARKER)
        assert self._marker_seen.wait(TIMEOUT), "the recorder never saw its marker"
        server.join_handlers(TIMEOUT)

    @property
    def received(self) -> bytes:
        """Everything the client sent, all its connections together (the marker left out)."""
        with self._lock:
            return b"".join(bytes(c) for c in self.connections if c != self.MARKER)


@pytest.fixture
def recorder(scripted_raw_server: ServerFactory) -> Iterator[tuple[Recorder, ScriptedRawServer]]:
    """A started recording server and its :class:`Recorder`."""
    rec = Recorder()
    with scripted_raw_server(rec.handler) as server:
        yield rec, server


def h2_frame_types(data: bytes) -> list[int]:
    """The types of the HTTP/2 frames a client sent (after its preface)."""
    assert data.startswith(H2_PREFACE), data[:40]
    types = []
    pos = len(H2_PREFACE)
    while pos + 9 <= len(data):
        length, frame_type = struct.unpack(">I", b"\0" + data[pos : pos + 3])[0], data[pos + 3]
        types.append(frame_type)
        pos += 9 + length
    assert pos == len(data), "the client sent a partial frame"
    return types


def assert_nothing_of_the_request_sent(
    rec: Recorder, server: ScriptedRawServer, conn: Any, http2: bool
) -> None:
    """Close ``conn``, wait for the recorder to see EOF, and check what reached the wire."""
    conn.close()
    rec.settle(server)
    data = rec.received
    if http2 and data:
        sent = set(h2_frame_types(data))
        assert not sent & REQUEST_FRAME_TYPES, f"request frames reached the wire: {sent}"
    else:
        assert data == b"", f"bytes reached the wire: {data[:200]!r}"


# -- constructors -----------------------------------------------------------------------------

BAD_HOSTS: list[tuple[Any, Any, str]] = [
    ("", None, "empty"),
    ("   ", None, "empty"),
    ("host:notaport", None, "port"),
    ("host:0", None, "port"),
    ("host:65536", None, "port"),
    ("host:-1", None, "port"),
    ("host", 70000, "port"),
    ("host", -1, "port"),
    ("host", 0, "port"),
    ("host", 80.0, "port"),
    ("host", True, "port"),
    ("host", "eighty", "port"),
    ("exa mple.com", None, "character"),
    ("ho\r\nst", None, "character"),
    ("host\r\nX-Injected: 1", None, "character"),
    ("ho\0st", None, "character"),
    ("example.com/path", None, "character"),
    ("http://example.com", None, "port"),
    ("[::1", None, "unbalanced"),
    ("\ud800", None, "host name"),
    ("a" * 300, None, "host name"),
    (None, None, "str"),
    (123, None, "str"),
    (b"example.com", None, "str"),
]


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection, HTTP20Connection])
@pytest.mark.parametrize(("host", "port", "hint"), BAD_HOSTS)
def test_invalid_host_or_port_is_refused_by_the_constructor(
    cls: ConnectionClass, host: Any, port: Any, hint: str
) -> None:
    """The constructor refuses an unusable host or port with a message naming the problem."""
    with pytest.raises(InvalidRequest) as info:
        cls(host, port)
    assert hint in str(info.value)


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection, HTTP20Connection])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"proxy_host": "pro xy"},
        {"proxy_host": "proxy", "proxy_port": 0},
        {"proxy_host": "proxy:notaport"},
        {"timeout": "soon"},
        {"timeout": -1},
        {"timeout": (1, 2, 3)},
        {"no_such_option": True},
    ],
)
def test_invalid_options_are_refused_by_the_constructor(
    cls: ConnectionClass, kwargs: dict[str, Any]
) -> None:
    """Unusable proxy, timeout and unknown keywords fail at construction, not later."""
    with pytest.raises(InvalidRequest):
        cls("127.0.0.1", 8080, **kwargs)


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection, HTTP20Connection])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": "foo"}, r"timeout must be an int, float or None, a \(connect, read\)"),
        (
            {"timeout": (3, 4, 5)},
            r"\(connect, read\) pair of them, or a hyper.Timeout, not a tuple of 3",
        ),
        ({"timeout": (1, "x")}, r"timeout must be an int, float or None.*not str 'x'"),
        ({"timeout": True}, r"timeout must be an int, float or None.*not bool"),
        ({"timeout": float("nan")}, r"timeout must be a number of seconds >= 0"),
        ({"timeout": (1, -2)}, r"timeout must be a number of seconds >= 0"),
        ({"ssl_context": "ctx"}, r"ssl_context must be an ssl.SSLContext or None, not str"),
        ({"ssl_context": object()}, r"ssl_context must be an ssl.SSLContext or None"),
    ],
)
def test_invalid_arguments_are_named_with_what_is_accepted(
    cls: ConnectionClass, kwargs: dict[str, Any], message: str
) -> None:
    """The error names the argument and says what it accepts, as requests' tests expect."""
    with pytest.raises(InvalidRequest, match=message) as info:
        cls("127.0.0.1", 8080, **kwargs)
    assert isinstance(info.value, ValueError)


def test_surrounding_whitespace_in_a_host_is_stripped_not_sent() -> None:
    """Leading and trailing whitespace (CR/LF included) is dropped: it can inject nothing,
    since only the stripped name is ever used."""
    conn = HTTP11Connection(" example.com\r\n", 80)
    assert conn.host == "example.com"


# -- requests ---------------------------------------------------------------------------------


def _headers(headers: Any) -> Callable[[Any], Any]:
    return lambda conn: conn.request("GET", "/", headers=headers)


MISUSES: list[Any] = [
    # Methods.
    ("method-crlf", lambda c: c.request("GET\r\nX: y", "/"), "method"),
    ("method-space", lambda c: c.request("G T", "/"), "method"),
    ("method-empty", lambda c: c.request("", "/"), "method"),
    ("method-non-ascii", lambda c: c.request("GÉT", "/"), "method"),
    pytest.param(
        "method-unencodable",
        lambda c: c.request("\ud800", "/"),
        "method",
        id="method-unencodable",
    ),
    ("method-type", lambda c: c.request(None, "/"), "method"),
    # Targets.
    ("url-space", lambda c: c.request("GET", "/a b"), "target"),
    ("url-crlf", lambda c: c.request("GET", "/a\r\nHost: evil"), "target"),
    ("url-nul", lambda c: c.request("GET", "/\0"), "target"),
    ("url-empty", lambda c: c.request("GET", ""), "target"),
    ("url-scheme", lambda c: c.request("GET", "ftp://host/"), "target"),
    ("url-no-host", lambda c: c.request("GET", "http:///path"), "url"),
    pytest.param(
        "url-unencodable",
        lambda c: c.request("GET", "/\ud800"),
        "target",
        id="url-unencodable",
    ),
    # Header names.
    ("name-space", _headers({"Bad Name": "v"}), "header name"),
    ("name-colon", _headers({"Bad:Name": "v"}), "header name"),
    ("name-empty", _headers({"": "v"}), "header name"),
    ("name-crlf", _headers({"X\r\nY": "v"}), "header name"),
    ("name-nul", _headers({"X\0": "v"}), "header name"),
    ("name-non-ascii", _headers({"Ünï": "v"}), "header name"),
    ("name-type", _headers({None: "v"}), "header name"),
    # Header values.
    ("value-crlf", _headers({"X-A": "a\r\nInjected: 1"}), "value"),
    ("value-lf", _headers({"X-A": "a\nb"}), "value"),
    ("value-cr", _headers({"X-A": "a\rb"}), "value"),
    ("value-nul", _headers({"X-A": "a\0b"}), "value"),
    ("value-bytes-crlf", _headers([(b"X-A", b"a\r\nb")]), "value"),
    ("value-in-list", _headers({"X-A": ["ok", "b\r\nc"]}), "value"),
    pytest.param(
        "value-unencodable",
        _headers({"X-A": "\ud800"}),
        "value",
        id="value-unencodable",
    ),
    ("value-type", _headers({"X-A": object()}), "value"),
    # Header containers.
    ("headers-string", _headers("X-A: 1"), "pairs"),
    ("headers-triples", _headers([("X-A", "1", "2")]), "pairs"),
    pytest.param("headers-int", _headers(5), "headers", id="headers-int"),
    # Bodies.
    ("body-int", lambda c: c.request("POST", "/", body=5), "body"),
    ("body-float", lambda c: c.request("POST", "/", body=1.5), "body"),
    ("body-dict", lambda c: c.request("POST", "/", body={"a": 1}), "body"),
    ("body-object", lambda c: c.request("POST", "/", body=object()), "body"),
    ("body-bool", lambda c: c.request("POST", "/", body=True), "body"),
    pytest.param(
        "body-unencodable-str",
        lambda c: c.request("POST", "/", body="\ud800"),
        "body",
        id="body-unencodable-str",
    ),
]


@pytest.mark.parametrize(
    ("name", "misuse", "hint"),
    [pytest.param(*m, id=m[0]) if type(m) is tuple else m for m in MISUSES],
)
@pytest.mark.parametrize(
    ("cls", "connected"),
    [
        pytest.param(HTTPConnection, False, id="HTTPConnection-fresh"),
        # HTTPConnection opens its connection with the first request only: no "open" case.
        pytest.param(HTTP11Connection, False, id="HTTP11Connection-fresh"),
        pytest.param(HTTP11Connection, True, id="HTTP11Connection-open"),
        pytest.param(HTTP20Connection, False, id="HTTP20Connection-fresh"),
        pytest.param(HTTP20Connection, True, id="HTTP20Connection-open"),
    ],
)
def test_bad_request_is_refused_before_the_wire(
    recorder: tuple[Recorder, ScriptedRawServer],
    cls: ConnectionClass,
    connected: bool,
    name: str,
    misuse: Callable[[Any], Any],
    hint: str,
) -> None:
    """InvalidRequest, naming what is wrong, and nothing of the request on the wire."""
    rec, server = recorder
    conn = cls(server.host, server.port, secure=False, timeout=TIMEOUT)
    if connected:
        conn.connect()
    with pytest.raises(InvalidRequest) as info:
        misuse(conn)
    assert hint in str(info.value).lower()
    assert_nothing_of_the_request_sent(rec, server, conn, http2=cls is HTTP20Connection)


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection, HTTP20Connection])
def test_list_of_ints_as_body_is_refused_before_the_wire(
    recorder: tuple[Recorder, ScriptedRawServer], cls: ConnectionClass
) -> None:
    """A list is an iterable of bytes only if its items are bytes; a list of ints (what
    ``list(b"abc")`` gives) is refused before the request head goes out."""
    rec, server = recorder
    conn = cls(server.host, server.port, secure=False, timeout=TIMEOUT)
    with pytest.raises(InvalidRequest) as info:
        conn.request("POST", "/", body=[1, 2, 3])
    assert "int" in str(info.value)
    assert_nothing_of_the_request_sent(rec, server, conn, http2=cls is HTTP20Connection)


def test_http20_putrequest_misuse_is_refused_before_the_wire(
    recorder: tuple[Recorder, ScriptedRawServer],
) -> None:
    """The piecewise API validates each piece as it is given, before endheaders()."""
    rec, server = recorder
    conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
    with pytest.raises(InvalidRequest):
        conn.putrequest("GET\r\n", "/")
    stream_id = conn.putrequest("GET", "/")
    with pytest.raises(InvalidRequest):
        conn.putheader("X-A", "a\r\nb", stream_id)
    with pytest.raises(InvalidRequest):
        conn.putheader("Bad Name", "v", stream_id)
    assert_nothing_of_the_request_sent(rec, server, conn, http2=True)


# -- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream_id", [1, 7, 2**31 + 1])
def test_http20_get_response_for_an_unknown_stream(
    recorder: tuple[Recorder, ScriptedRawServer], stream_id: int
) -> None:
    """get_response() for a stream no request() returned is InvalidRequest, at once."""
    rec, server = recorder
    conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
    with pytest.raises(InvalidRequest):
        conn.get_response(stream_id)
    assert_nothing_of_the_request_sent(rec, server, conn, http2=True)


@pytest.mark.parametrize("bad", ["1", 1.0, -1, True])
def test_http20_get_response_with_a_stream_id_of_the_wrong_type(
    recorder: tuple[Recorder, ScriptedRawServer], bad: Any
) -> None:
    """A stream id must be an int as request() returned it."""
    rec, server = recorder
    conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
    with pytest.raises(InvalidRequest):
        conn.get_response(bad)
    assert_nothing_of_the_request_sent(rec, server, conn, http2=True)


@pytest.mark.parametrize("cls", [HTTPConnection, HTTP11Connection])
def test_http11_get_response_without_a_request(
    recorder: tuple[Recorder, ScriptedRawServer], cls: ConnectionClass
) -> None:
    """get_response() before any request() is InvalidRequest, not a wait for the server."""
    rec, server = recorder
    conn = cls(server.host, server.port, secure=False, timeout=TIMEOUT)
    with pytest.raises(InvalidRequest):
        conn.get_response()
    assert_nothing_of_the_request_sent(rec, server, conn, http2=False)


def _partial_http11(sock: socket.socket) -> None:
    """Answer one request with half of a 100-byte body, then wait for the client to leave."""
    sock.settimeout(TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _partial_http2(ctx: ServerConnection) -> None:
    """Answer one request with its head and half of its body, then wait for the client."""
    ctx.handshake()
    stream_id = ctx.wait_for_request().stream_id
    ctx.respond(stream_id, 200, [(b"content-length", b"100")], body=b"x" * 50, end=False)
    ctx.wait_closed()


def _read_in_thread(response: Any) -> BaseException | None:
    """Call ``response.read()`` in another thread; return what it raised (bounded wait)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            response.read()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "read() after close() blocked"
    return outcome[0]


@pytest.mark.parametrize("other_thread", [False, True], ids=["same-thread", "other-thread"])
@pytest.mark.parametrize("cls", [HTTP11Connection, HTTPConnection])
def test_http11_reading_after_close_is_connection_closed(
    scripted_raw_server: ServerFactory, cls: ConnectionClass, other_thread: bool
) -> None:
    """A response whose body had not all arrived cannot be read once the connection is
    closed: ConnectionClosed, at once, in whatever thread reads it."""
    with scripted_raw_server(_partial_http11) as server:
        conn = cls(server.host, server.port, secure=False, timeout=TIMEOUT)
        conn.request("GET", "/")
        response = conn.get_response()
        assert response.status == 200
        conn.close()
        if other_thread:
            error = _read_in_thread(response)
        else:
            with pytest.raises(HyperError) as info:
                response.read()
            error = info.value
        assert isinstance(error, ConnectionClosed), repr(error)


@pytest.mark.parametrize("other_thread", [False, True], ids=["same-thread", "other-thread"])
def test_http20_reading_after_close_is_connection_closed(
    scripted_server: Callable[..., ScriptedServer], other_thread: bool
) -> None:
    """HTTP/2: the same, for a stream whose END_STREAM had not arrived at close()."""
    with scripted_server(_partial_http2) as server:
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
        stream_id = conn.request("GET", "/")
        response = conn.get_response(stream_id)
        assert response.status == 200
        conn.close()
        if other_thread:
            error = _read_in_thread(response)
        else:
            with pytest.raises(HyperError) as info:
                response.read()
            error = info.value
        assert isinstance(error, ConnectionClosed), repr(error)


def _close_from_another_thread_then_get_response(
    scripted_server: Callable[..., ScriptedServer], method: str
) -> tuple[BaseException | None, int]:
    """Send ``method`` to a server that never answers, close the connection from another
    thread, then ask for the response. Returns what get_response() raised and how many
    connections the server saw."""
    ready = threading.Event()

    def handler(ctx: ServerConnection) -> None:
        ctx.handshake()
        ctx.wait_for_request()
        ready.set()
        ctx.wait_closed()  # never answers

    with scripted_server(handler) as server:
        # A short read timeout: if hyper waits on a new connection, the test fails quickly.
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=(TIMEOUT, 1.0))
        stream_id = conn.request(method, "/", body=b"payload" if method == "POST" else None)
        assert ready.wait(TIMEOUT)
        closer = threading.Thread(target=conn.close)
        closer.start()
        closer.join(TIMEOUT)
        error: BaseException | None = None
        try:
            conn.get_response(stream_id)
        except HyperError as exc:
            error = exc
        conn.close()
        server.join_handlers(TIMEOUT)
        return error, server.connection_count


def test_http20_get_response_after_close_from_another_thread_post(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """A POST pending when another thread closed the connection fails with ConnectionClosed
    in the thread that waits for it, and is not sent again."""
    error, connections = _close_from_another_thread_then_get_response(scripted_server, "POST")
    assert isinstance(error, ConnectionClosed), repr(error)
    assert connections == 1


def test_http20_get_response_after_close_from_another_thread_get(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """The same for a GET: ConnectionClosed, and no second connection."""
    error, connections = _close_from_another_thread_then_get_response(scripted_server, "GET")
    assert isinstance(error, ConnectionClosed), repr(error)
    assert connections == 1


def test_request_from_another_thread_after_close_opens_a_new_connection(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """The documented behaviour of a closed connection: a later request(), from any thread,
    opens a new connection and works; close() is not a permanent state to trip over."""
    responder = simple_responder({"/": b"fresh"})
    with scripted_server(responder) as server:
        conn = HTTP20Connection(server.host, server.port, secure=False, timeout=TIMEOUT)
        conn.get_response(conn.request("GET", "/")).read()
        conn.close()
        bodies: list[bytes] = []

        def other() -> None:
            bodies.append(conn.get_response(conn.request("GET", "/")).read())

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        conn.close()
        assert bodies == [b"fresh"]
        assert server.connection_count == 2
