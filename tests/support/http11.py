"""Scripted HTTP/1.1 servers: request parsing and response writing on a bare socket.

Handlers run on :class:`~tests.support.scripted.ScriptedRawServer` (which owns the
accept loop, threads and shutdown); this module only speaks HTTP/1.1 on the socket:

* :class:`RequestReader` parses requests (request line, headers in wire order and
  case, body by ``Content-Length`` or chunked decoding with trailers).  It keeps
  a buffer per socket, so keep-alive and pipelined requests work; use
  :func:`reader_for` (or :func:`read_request`) to get the one bound to a socket.
* :func:`build_response` / :func:`send_response` write a response (optionally
  chunked, with trailers); :func:`send_raw` writes bytes verbatim.
* :func:`http11_responder` builds a handler that answers every request of a
  connection from a route table, like :func:`~tests.support.scripted.simple_responder`
  does for HTTP/2.  Routes give a :class:`Reply`, body bytes, a :class:`RawReply`
  (bytes sent verbatim, for malformed-response tests) or a callable computing one.

Parsing is strict (CRLF line endings, no obs-fold, no ``Content-Length`` together
with ``Transfer-Encoding``): the client under test must send clean HTTP/1.1, and a
violation surfaces as a handler error that fails the test.  Every read and write
has a timeout.
"""

from __future__ import annotations

import http
import itertools
import re
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .h2conn import Header, PeerClosed, as_bytes
from .threaded import DEFAULT_TIMEOUT, RECV_SIZE, abort_socket

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_HEAD_SIZE",
    "SEND_TIMEOUT",
    "BadRequest",
    "HTTP11Responder",
    "Header",
    "PeerClosed",
    "RawReply",
    "Reply",
    "Request",
    "RequestReader",
    "build_response",
    "http11_responder",
    "read_request",
    "reader_for",
    "send_raw",
    "send_response",
]

#: Largest request head (request line + headers) accepted, in bytes.
MAX_HEAD_SIZE = 256 * 1024
#: Longest chunk-size or trailer line accepted, in bytes.
MAX_LINE_SIZE = 16 * 1024
#: Bound for sending a response (a client that stops reading cannot hang a handler).
SEND_TIMEOUT = 10.0

_VERSION_RE = re.compile(rb"HTTP/\d\.\d")
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]+")
_NO_BODY_STATUSES = frozenset({204, 304})


class BadRequest(ValueError):
    """The client sent bytes that are not a valid HTTP/1.1 request."""


# -- requests ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One HTTP/1.1 request as received.

    ``headers`` and ``trailers`` keep wire order and case; ``raw_head`` is the
    request line and header block exactly as received (final CRLF CRLF included);
    ``chunks`` lists the chunk payloads of a chunked body (None otherwise);
    ``connection_id`` numbers the connections of one :class:`HTTP11Responder`.
    """

    method: str
    target: str
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None
    chunks: list[bytes] | None = None
    raw_head: bytes = b""
    connection_id: int = 0

    def header(self, name: bytes | str) -> bytes | None:
        """First value of header ``name`` (case-insensitive), or None."""
        wanted = as_bytes(name).lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)

    def header_values(self, name: bytes | str) -> list[bytes]:
        """Every value of header ``name`` (case-insensitive), in wire order, not split."""
        wanted = as_bytes(name).lower()
        return [v for n, v in self.headers if n.lower() == wanted]

    def tokens(self, name: bytes | str) -> list[bytes]:
        """Lower-cased comma-separated tokens of every ``name`` header."""
        return [
            token.strip().lower()
            for value in self.header_values(name)
            for token in value.split(b",")
            if token.strip()
        ]

    @property
    def chunked(self) -> bool:
        """True when the body was sent with chunked transfer coding."""
        return self.chunks is not None

    @property
    def path(self) -> str:
        """Path and query of the target; absolute-form targets (proxy requests) are
        reduced to them, authority-form (CONNECT) and ``*`` are returned unchanged."""
        if "://" in self.target:
            parts = urlsplit(self.target)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.target

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection persist after this request."""
        tokens = self.tokens(b"connection")
        if b"close" in tokens:
            return False
        return self.version != "HTTP/1.0" or b"keep-alive" in tokens

    @property
    def expects_continue(self) -> bool:
        """True when the request carries ``Expect: 100-continue``."""
        return b"100-continue" in self.tokens(b"expect")


class RequestReader:
    """Parses consecutive requests from one socket, buffering what was read ahead.

    :param timeout: bound (seconds) for each read once a request has started.
    """

    def __init__(self, sock: socket.socket, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buffer = bytearray()

    def next_request(
        self,
        *,
        wait: float | None = DEFAULT_TIMEOUT,
        timeout: float | None = None,
        send_continue: bool = False,
    ) -> Request | None:
        """Read the next request; None if the connection ends cleanly before one starts.

        :param wait: bound for the first byte of the request (None: wait until the
            client sends or the connection closes, e.g. on server shutdown).
        :param timeout: bound for later reads (default: the reader's ``timeout``).
        :param send_continue: answer ``Expect: 100-continue`` with a
            ``100 Continue`` interim response before reading the body.
        :raises PeerClosed: the connection ended in the middle of a request.
        :raises TimeoutError: a read took longer than allowed.
        :raises BadRequest: the bytes are not valid HTTP/1.1.
        """
        per_read = self.timeout if timeout is None else timeout
        # RFC 9112 section 2.2: ignore empty lines before the request line.
        while True:
            if not self.buffer and not self._fill(wait, "the start of a request"):
                return None
            stripped = self.buffer.lstrip(b"\r\n")
            del self.buffer[: len(self.buffer) - len(stripped)]
            if self.buffer:
                break
        request = self._read_head(per_read)
        if send_continue and request.expects_continue and self._has_body(request):
            send_raw(self.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        self._read_body(request, per_read)
        return request

    def read_request(
        self, timeout: float | None = DEFAULT_TIMEOUT, *, send_continue: bool = False
    ) -> Request:
        """Read the next request, waiting at most ``timeout`` for each read.

        :raises PeerClosed: the client closed the connection instead.
        """
        request = self.next_request(wait=timeout, timeout=timeout, send_continue=send_continue)
        if request is None:
            raise PeerClosed("client closed the connection without sending a request")
        return request

    # -- internals ----------------------------------------------------------------------------

    def _fill(self, timeout: float | None, waiting_for: str) -> bool:
        """Receive more bytes into the buffer; False on end of stream."""
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError as exc:
            raise TimeoutError(
                f"no data from the client within {timeout}s ({waiting_for})"
            ) from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def _need(self, waiting_for: str, timeout: float | None) -> None:
        if not self._fill(timeout, waiting_for):
            raise PeerClosed(
                f"connection closed while reading {waiting_for} "
                f"({len(self.buffer)} unparsed byte(s): {bytes(self.buffer[:200])!r})"
            )

    def _read_line(self, timeout: float | None, what: str) -> bytes:
        """Return one CRLF-terminated line (without the CRLF)."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_LINE_SIZE:
                raise BadRequest(f"{what} longer than {MAX_LINE_SIZE} bytes")
            self._need(what, timeout)
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _read_exact(self, size: int, timeout: float | None, what: str) -> bytes:
        while len(self.buffer) < size:
            self._need(what, timeout)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _read_head(self, timeout: float | None) -> Request:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_SIZE:
                raise BadRequest(f"request head larger than {MAX_HEAD_SIZE} bytes")
            self._need("the request head", timeout)
        raw_head = bytes(self.buffer[: end + 4])
        del self.buffer[: end + 4]
        request_line, *header_lines = raw_head[:-4].split(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]) or not parts[1]:
            raise BadRequest(f"malformed request line {request_line!r}")
        if not _VERSION_RE.fullmatch(parts[2]):
            raise BadRequest(f"bad HTTP version in request line {request_line!r}")
        return Request(
            method=parts[0].decode("ascii"),
            target=parts[1].decode("latin-1"),
            version=parts[2].decode("ascii"),
            headers=_parse_fields(header_lines, "header"),
            raw_head=raw_head,
        )

    @staticmethod
    def _has_body(request: Request) -> bool:
        if request.header_values(b"transfer-encoding"):
            return True
        length = request.header(b"content-length")
        return length is not None and length.strip() not in (b"", b"0")

    def _read_body(self, request: Request, timeout: float | None) -> None:
        codings = request.tokens(b"transfer-encoding")
        lengths = request.header_values(b"content-length")
        if codings and lengths:
            raise BadRequest("request has both Transfer-Encoding and Content-Length")
        if codings:
            if codings[-1] != b"chunked":
                raise BadRequest(f"request transfer codings {codings!r} do not end in chunked")
            self._read_chunked(request, timeout)
        elif lengths:
            values = {value.strip() for value in lengths}
            if len(values) != 1 or not (value := values.pop()).isdigit():
                raise BadRequest(f"bad Content-Length {lengths!r}")
            request.body = self._read_exact(int(value), timeout, "the request body")

    def _read_chunked(self, request: Request, timeout: float | None) -> None:
        chunks: list[bytes] = []
        while True:
            line = self._read_line(timeout, "a chunk-size line")
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX_RE.fullmatch(size_text):
                raise BadRequest(f"bad chunk-size line {line!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            chunks.append(self._read_exact(size, timeout, "chunk data"))
            if self._read_exact(2, timeout, "the CRLF after chunk data") != b"\r\n":
                raise BadRequest("chunk data not followed by CRLF")
        trailer_lines = []
        while line := self._read_line(timeout, "a trailer line"):
            trailer_lines.append(line)
        request.chunks = chunks
        request.body = b"".join(chunks)
        request.trailers = _parse_fields(trailer_lines, "trailer") if trailer_lines else None


def _parse_fields(lines: Sequence[bytes], kind: str) -> list[tuple[bytes, bytes]]:
    fields: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(f"obsolete line folding in {kind} line {line!r}")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise BadRequest(f"malformed {kind} line {line!r}")
        fields.append((name, value.strip(b" \t")))
    return fields


_readers: weakref.WeakKeyDictionary[socket.socket, RequestReader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def reader_for(sock: socket.socket, *, timeout: float | None = DEFAULT_TIMEOUT) -> RequestReader:
    """The :class:`RequestReader` bound to ``sock`` (created on first use).

    Sharing one reader per socket means bytes read ahead (pipelined requests) are
    never lost between calls.  ``timeout`` only applies when the reader is created.
    """
    with _readers_lock:
        reader = _readers.get(sock)
        if reader is None:
            reader = _readers[sock] = RequestReader(sock, timeout=timeout)
        return reader


def read_request(
    sock: socket.socket, timeout: float | None = DEFAULT_TIMEOUT, *, send_continue: bool = False
) -> Request:
    """Read one request from ``sock`` (through its :func:`reader_for` buffer).

    :raises PeerClosed: the client closed the connection instead of sending one.
    :raises TimeoutError: a read waited more than ``timeout`` seconds.
    """
    return reader_for(sock).read_request(timeout, send_continue=send_continue)


# -- responses ---------------------------------------------------------------------------------


def _has_field(headers: Sequence[Header], name: bytes) -> bool:
    return any(as_bytes(n).lower() == name for n, _ in headers)


def build_response(
    status: int | str | bytes = 200,
    reason: str | bytes | None = None,
    headers: Sequence[Header] = (),
    body: bytes | Sequence[bytes] = b"",
    *,
    chunked: bool = False,
    trailers: Sequence[Header] | None = None,
    content_length: bool = True,
    include_body: bool = True,
    version: str | bytes = b"HTTP/1.1",
) -> bytes:
    """Serialize a response; ``headers`` are written verbatim, in order.

    :param reason: reason phrase; None picks the standard one ("" for unknown codes).
    :param body: bytes, or a sequence of pieces (with ``chunked``: one chunk each,
        empty pieces skipped; otherwise concatenated).
    :param chunked: use chunked transfer coding (adds ``Transfer-Encoding: chunked``
        unless a ``Transfer-Encoding`` header is given); ``trailers`` follow the
        last chunk.
    :param content_length: add ``Content-Length`` to a non-chunked response that
        has neither it nor ``Transfer-Encoding`` (not for 1xx, 204 and 304).
    :param include_body: False for answers to HEAD: head only, framing headers kept.
    """
    status_text = as_bytes(status).strip()
    code = int(status_text) if status_text.isdigit() else None
    if reason is None:
        try:
            reason = http.HTTPStatus(code).phrase if code is not None else ""
        except ValueError:
            reason = ""
    fields = list(headers)
    pieces = [body] if isinstance(body, bytes) else list(body)
    if chunked:
        if not _has_field(fields, b"transfer-encoding"):
            fields.append((b"Transfer-Encoding", b"chunked"))
    elif (
        content_length
        and not (code is not None and (code < 200 or code in _NO_BODY_STATUSES))
        and not _has_field(fields, b"content-length")
        and not _has_field(fields, b"transfer-encoding")
    ):
        fields.append((b"Content-Length", str(sum(map(len, pieces))).encode()))
    out = bytearray(b"%s %s %s\r\n" % (as_bytes(version), as_bytes(status), as_bytes(reason)))
    for name, value in fields:
        out += b"%s: %s\r\n" % (as_bytes(name), as_bytes(value))
    out += b"\r\n"
    if not include_body:
        return bytes(out)
    if not chunked:
        return bytes(out + b"".join(pieces))
    for piece in pieces:
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    out += b"0\r\n"
    for name, value in trailers or ():
        out += b"%s: %s\r\n" % (as_bytes(name), as_bytes(value))
    out += b"\r\n"
    return bytes(out)


def send_raw(sock: socket.socket, data: bytes, *, timeout: float | None = SEND_TIMEOUT) -> None:
    """Send ``data`` verbatim; a client that went away raises :class:`PeerClosed`."""
    try:
        sock.settimeout(timeout)
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as exc:
        raise PeerClosed(f"client closed the connection while we were sending: {exc}") from exc


def send_response(
    sock: socket.socket,
    status: int | str | bytes = 200,
    reason: str | bytes | None = None,
    headers: Sequence[Header] = (),
    body: bytes | Sequence[bytes] = b"",
    *,
    chunked: bool = False,
    trailers: Sequence[Header] | None = None,
    content_length: bool = True,
    include_body: bool = True,
    timeout: float | None = SEND_TIMEOUT,
) -> None:
    """Send a response built by :func:`build_response` (see there for the arguments)."""
    send_raw(
        sock,
        build_response(
            status,
            reason,
            headers,
            body,
            chunked=chunked,
            trailers=trailers,
            content_length=content_length,
            include_body=include_body,
        ),
        timeout=timeout,
    )


# -- route-table responder ---------------------------------------------------------------------


@dataclass
class Reply:
    """A well-formed response for :class:`HTTP11Responder`.

    ``close`` adds ``Connection: close`` (unless a Connection header is given) and
    ends the connection after the response; ``informational`` replies (1xx, e.g.
    ``Reply(103, [("Link", "</a>")])``) are sent before this one, head only.
    Other fields are as in :func:`build_response`.
    """

    status: int | str | bytes = 200
    headers: Sequence[Header] = ()
    body: bytes | Sequence[bytes] = b""
    reason: str | bytes | None = None
    chunked: bool = False
    trailers: Sequence[Header] | None = None
    close: bool = False
    content_length: bool = True
    informational: Sequence[Reply] = ()


@dataclass
class RawReply:
    """Bytes sent verbatim instead of a response (malformed-response tests).

    A sequence of pieces is sent with one ``sendall`` each.  ``close`` ends the
    connection afterwards (FIN after a lingering drain); ``abort`` resets it
    (TCP RST) instead.
    """

    data: bytes | Sequence[bytes]
    close: bool = True
    abort: bool = False


ReplyLike = Reply | RawReply | bytes
Route = ReplyLike | Callable[[Request], ReplyLike]


@dataclass
class HTTP11Responder:
    """Handler for :class:`~tests.support.scripted.ScriptedRawServer` answering every
    request of a connection (keep-alive loop) from a route table.

    ``routes`` keys are tried in this order: ``"METHOD target"``, ``"target"``,
    ``"METHOD path"``, ``"path"``, then both without the query string (``path``
    being the path of an absolute-form target).  Values are a :class:`Reply`,
    body bytes (status 200), a :class:`RawReply`, or a callable computing one
    of those from the :class:`Request`.  Unknown targets get ``default`` or a 404.
    HEAD requests get the head only.  ``Expect: 100-continue`` is answered when
    ``send_continue``.  The connection ends after a reply that closes it, or a
    request with ``Connection: close`` (HTTP/1.0 without keep-alive).  Every
    request is appended to :attr:`requests`; a client that disconnects is not an
    error.
    """

    routes: Mapping[str, Route]
    default: Route | None = None
    content_length: bool = True
    send_continue: bool = True
    timeout: float | None = DEFAULT_TIMEOUT
    requests: list[Request] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    def __call__(self, sock: socket.socket) -> None:
        connection_id = next(self._ids)
        reader = reader_for(sock, timeout=self.timeout)
        try:
            while True:
                request = reader.next_request(wait=None, send_continue=self.send_continue)
                if request is None:
                    return
                request.connection_id = connection_id
                self.requests.append(request)
                if not self._answer(sock, request):
                    return
        except PeerClosed:
            return

    def reply_for(self, request: Request) -> ReplyLike:
        """The route's reply for ``request`` (callables are called)."""
        path = request.path
        bare = path.partition("?")[0]
        method = request.method
        candidates = (
            f"{method} {request.target}",
            request.target,
            f"{method} {path}",
            path,
            f"{method} {bare}",
            bare,
        )
        route = next((self.routes[key] for key in candidates if key in self.routes), self.default)
        if route is None:
            return Reply(404, body=b"no route for " + request.target.encode("latin-1"))
        if callable(route):
            route = route(request)
        return route

    def _answer(self, sock: socket.socket, request: Request) -> bool:
        """Send the reply; return True if the connection stays open."""
        reply = self.reply_for(request)
        if isinstance(reply, RawReply):
            for piece in [reply.data] if isinstance(reply.data, bytes) else reply.data:
                send_raw(sock, piece)
            if reply.abort:
                abort_socket(sock)
            return not (reply.close or reply.abort)
        if isinstance(reply, bytes):
            reply = Reply(200, body=reply)
        headers = list(reply.headers)
        closing = reply.close or not request.keep_alive
        if closing and not _has_field(headers, b"connection"):
            headers.append((b"Connection", b"close"))
        head = bytearray()
        for interim in reply.informational:
            head += build_response(
                interim.status, interim.reason, interim.headers, content_length=False
            )
        send_raw(
            sock,
            bytes(head)
            + build_response(
                reply.status,
                reply.reason,
                headers,
                reply.body,
                chunked=reply.chunked,
                trailers=reply.trailers,
                content_length=self.content_length and reply.content_length,
                include_body=request.method != "HEAD",
            ),
        )
        return not closing and b"close" not in _reply_tokens(headers, b"connection")


def _reply_tokens(headers: Sequence[Header], name: bytes) -> list[bytes]:
    return [
        token.strip().lower()
        for n, v in headers
        if as_bytes(n).lower() == name
        for token in as_bytes(v).split(b",")
    ]


def http11_responder(
    routes: Mapping[str, Route],
    *,
    default: Route | None = None,
    content_length: bool = True,
    send_continue: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HTTP11Responder:
    """Build an :class:`HTTP11Responder` handler (see there)."""
    return HTTP11Responder(
        routes,
        default=default,
        content_length=content_length,
        send_continue=send_continue,
        timeout=timeout,
    )
