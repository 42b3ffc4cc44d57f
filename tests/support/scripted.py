"""In-process scripted servers for frame-exact client tests.

:class:`ScriptedServer` accepts connections on 127.0.0.1 and runs a *handler*
for each one in its own thread; the handler drives an ``h2`` server-side
connection through a :class:`~tests.support.h2conn.ServerConnection`.
:class:`ScriptedRawServer` hands the handler the bare (optionally TLS-wrapped)
socket instead, for garbage and HTTP/1.1 scenarios.  Both are
:class:`~tests.support.threaded.ThreadedServer` subclasses (accept loop,
threads, error recording, bounded shutdown).  :func:`simple_responder` builds
a handler answering requests from a route table.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.events

from .h2conn import (
    EventMatch,
    Header,
    PeerClosed,
    ServerConnection,
    StreamClosedByPeer,
    as_bytes,
)
from .threaded import DEFAULT_TIMEOUT, ServerShutdown, ThreadedServer, abort_socket

__all__ = [
    "DEFAULT_TIMEOUT",
    "EventMatch",
    "Header",
    "PeerClosed",
    "Reply",
    "Request",
    "ScriptedRawServer",
    "ScriptedServer",
    "ServerConnection",
    "ServerShutdown",
    "SimpleResponder",
    "StreamClosedByPeer",
    "ThreadedServer",
    "abort_socket",
    "simple_responder",
]


class ScriptedServer(ThreadedServer):
    """HTTP/2 server running ``handler(ctx)`` per connection, ``ctx`` a :class:`ServerConnection`.

    Use as a context manager; handler errors fail the test on exit (or via
    :meth:`check`).  ``connections`` keeps every ctx for post-mortem asserts.
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], None],
        *,
        tls: bool = False,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        alpn: Sequence[str] | None = ("h2",),
        **kwargs: Any,
    ) -> None:
        super().__init__(tls=tls, certfile=certfile, keyfile=keyfile, alpn=alpn, **kwargs)
        self.handler = handler
        self.connections: list[ServerConnection] = []

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def _handle(self, sock: socket.socket) -> None:
        ctx = ServerConnection(sock, closing=self.closing)
        with self._lock:
            self.connections.append(ctx)
        self.handler(ctx)


class ScriptedRawServer(ThreadedServer):
    """Server running ``handler(sock)`` per connection on the bare (maybe TLS) socket.

    For non-HTTP/2 garbage and hand-written HTTP/1.1 responses.  ALPN is off
    unless ``alpn`` is given.
    """

    def __init__(
        self,
        handler: Callable[[socket.socket], None],
        *,
        tls: bool = False,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        alpn: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tls=tls, certfile=certfile, keyfile=keyfile, alpn=alpn, **kwargs)
        self.handler = handler

    def __enter__(self) -> ScriptedRawServer:
        self.start()
        return self

    def _handle(self, sock: socket.socket) -> None:
        self.handler(sock)


@dataclass
class Request:
    """A complete request as seen by :class:`SimpleResponder`."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None

    def header(self, name: bytes | str) -> bytes | None:
        """First value of header ``name`` (case-insensitive), or None."""
        wanted = as_bytes(name).lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)

    @property
    def method(self) -> str:
        """The ``:method`` pseudo-header."""
        return (self.header(b":method") or b"").decode()

    @property
    def path(self) -> str:
        """The ``:path`` pseudo-header."""
        return (self.header(b":path") or b"").decode()


@dataclass
class Reply:
    """What :class:`SimpleResponder` sends for a route."""

    status: int | str | bytes = 200
    headers: Sequence[Header] = ()
    body: bytes = b""
    trailers: Sequence[Header] | None = None


Route = Reply | bytes | Callable[[Request], "Reply | bytes"]


@dataclass
class SimpleResponder:
    """Handler answering every request on a connection from a route table.

    ``routes`` maps a ``:path`` (exact, else without query string) to a
    :class:`Reply`, to body bytes (status 200), or to a callable computing
    either from the :class:`Request`.  Unknown paths get ``default`` or a 404.
    ``content_length`` adds a ``content-length`` header when the reply has
    none.  ``settings`` are sent after the initial SETTINGS.  Every finished
    request is appended to :attr:`requests`.  A client that resets streams or
    disconnects is not an error here.
    """

    routes: Mapping[str, Route]
    default: Route | None = None
    content_length: bool = True
    settings: Mapping[int, int] | None = None
    requests: list[Request] = field(default_factory=list)

    def __call__(self, ctx: ServerConnection) -> None:
        try:
            self._serve(ctx)
        except PeerClosed:
            return

    def _serve(self, ctx: ServerConnection) -> None:
        ctx.handshake(settings=self.settings)
        partial: dict[int, Request] = {}
        bodies: dict[int, bytearray] = {}
        while True:
            event = ctx.next_event(timeout=None)
            if event is None or isinstance(event, h2.events.ConnectionTerminated):
                return
            if isinstance(event, h2.events.RequestReceived):
                partial[event.stream_id] = Request(event.stream_id, list(event.headers))
                bodies[event.stream_id] = bytearray()
            elif isinstance(event, h2.events.DataReceived) and event.stream_id in bodies:
                bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.TrailersReceived) and event.stream_id in partial:
                partial[event.stream_id].trailers = list(event.headers)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in partial:
                request = partial.pop(event.stream_id)
                request.body = bytes(bodies.pop(event.stream_id))
                self.requests.append(request)
                self._answer(ctx, request)
            elif isinstance(event, h2.events.StreamReset):
                partial.pop(event.stream_id, None)
                bodies.pop(event.stream_id, None)

    def _reply_for(self, request: Request) -> Reply:
        path = request.path
        route = self.routes.get(path)
        if route is None:
            route = self.routes.get(path.partition("?")[0], self.default)
        if route is None:
            return Reply(404, body=b"no route for " + path.encode())
        if callable(route) and not isinstance(route, Reply):
            route = route(request)
        return route if isinstance(route, Reply) else Reply(200, body=route)

    def _answer(self, ctx: ServerConnection, request: Request) -> None:
        reply = self._reply_for(request)
        headers = list(reply.headers)
        if self.content_length and not any(
            as_bytes(n).lower() == b"content-length" for n, _ in headers
        ):
            headers.append((b"content-length", str(len(reply.body)).encode()))
        with contextlib.suppress(StreamClosedByPeer):
            ctx.respond(
                request.stream_id,
                reply.status,
                headers,
                reply.body,
                trailers=reply.trailers,
            )


def simple_responder(
    routes: Mapping[str, Route],
    *,
    default: Route | None = None,
    content_length: bool = True,
    settings: Mapping[int, int] | None = None,
) -> SimpleResponder:
    """Build a :class:`SimpleResponder` handler (see there)."""
    return SimpleResponder(
        routes, default=default, content_length=content_length, settings=settings
    )
