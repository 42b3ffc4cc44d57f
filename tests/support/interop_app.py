"""A stdlib-only ASGI app for the interop matrix, served by hypercorn.

hypercorn loads this file by path (``/…/interop_app.py:app``) as a top-level module, so it
imports nothing from ``tests.support``.  The document root is the directory named by the
environment variable :data:`DOCROOT_ENV`.  Routes (anything else is ``404``):

``GET /<file>``
    The docroot file, streamed in 256 KiB pieces with a ``content-length``.
``POST|PUT /echo``
    ``200`` with the request body.
``GET /gzip/<file>``
    The file gzip-compressed (``content-encoding: gzip``) when ``accept-encoding``
    mentions gzip; hypercorn itself never compresses, so the app does.
``GET /trailers/<file>``
    The file, then the trailer ``x-interop-trailer: yes``.  hypercorn sends trailers over
    HTTP/2 only, and only when the request carries ``te: trailers``.
``GET /push/page.html``
    Pushes ``/push/style.css`` (when the ``http.response.push`` extension is offered,
    i.e. over HTTP/2), then serves the page.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DOCROOT_ENV = "HYPER_INTEROP_DOCROOT"
TRAILER = (b"x-interop-trailer", b"yes")
PUSH_PAGE = "/push/page.html"
PUSHED_PATH = "/push/style.css"
_CHUNK = 256 * 1024
_TYPES = {".html": b"text/html", ".txt": b"text/plain", ".css": b"text/css"}


def _docroot() -> Path:
    return Path(os.environ[DOCROOT_ENV]).resolve()


def _file(path: str) -> Path | None:
    """The docroot file for a URL path, or None (missing, or outside the docroot)."""
    root = _docroot()
    candidate = (root / path.lstrip("/")).resolve()
    if root not in candidate.parents or not candidate.is_file():
        return None
    return candidate


async def _read_body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _start(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], *, trailers: bool = False
) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": headers, "trailers": trailers}
    )


async def _send_bytes(send: Send, body: bytes, status: int = 200, ctype: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if ctype:
        headers.append((b"content-type", ctype))
    await _start(send, status, headers)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_file(send: Send, file: Path, *, trailers: bool = False) -> None:
    ctype = _TYPES.get(file.suffix, b"application/octet-stream")
    size = file.stat().st_size
    headers = [(b"content-type", ctype), (b"content-length", str(size).encode())]
    await _start(send, 200, headers, trailers=trailers)
    with file.open("rb") as source:
        while True:
            piece = source.read(_CHUNK)
            last = source.tell() >= size
            await send({"type": "http.response.body", "body": piece, "more_body": not last})
            if last:
                break
    if trailers:
        await send({"type": "http.response.trailers", "headers": [TRAILER]})


def _header(scope: Scope, name: bytes) -> bytes:
    return b",".join(value for key, value in scope["headers"] if key.lower() == name)


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    method: str = scope["method"]
    path: str = scope["path"]
    body = await _read_body(receive)
    if body is None:
        return
    if path == "/echo" and method in ("POST", "PUT"):
        await _send_bytes(send, body, ctype=b"application/octet-stream")
        return
    if method != "GET":
        await _send_bytes(send, b"method not allowed\n", 405)
        return
    if path.startswith("/gzip/") and (file := _file(path[len("/gzip") :])) is not None:
        if b"gzip" in _header(scope, b"accept-encoding"):
            data = gzip.compress(file.read_bytes())
            headers = [
                (b"content-type", _TYPES.get(file.suffix, b"application/octet-stream")),
                (b"content-encoding", b"gzip"),
                (b"content-length", str(len(data)).encode()),
                (b"vary", b"accept-encoding"),
            ]
            await _start(send, 200, headers)
            await send({"type": "http.response.body", "body": data, "more_body": False})
        else:
            await _send_file(send, file)
        return
    if path.startswith("/trailers/") and (file := _file(path[len("/trailers") :])) is not None:
        offered = "http.response.trailers" in scope.get("extensions", {})
        await _send_file(send, file, trailers=offered)
        return
    if path == PUSH_PAGE and "http.response.push" in scope.get("extensions", {}):
        await send({"type": "http.response.push", "path": PUSHED_PATH, "headers": []})
    file = _file(path)
    if file is None:
        await _send_bytes(send, b"not found\n", 404)
    else:
        await _send_file(send, file)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 application (see the module docstring for its routes)."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
