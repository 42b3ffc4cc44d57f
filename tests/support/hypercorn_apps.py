"""A stdlib-only ASGI app served by hypercorn for server-push, GOAWAY and stream-limit tests.

hypercorn loads this file by path (``/…/hypercorn_apps.py:app``), as a
top-level module, so it must not import anything from ``tests.support``.
Tests import it normally to compute expected bodies.

Routes (anything else is ``404``):

``GET /pushing``
    When the connection offers the ASGI ``http.response.push`` extension (HTTP/2
    and HTTP/3 in hypercorn), sends one ``http.response.push`` event per path in
    :data:`DEFAULT_PUSHES` (or per ``push=`` query parameter, e.g.
    ``/pushing?push=/bytes/100000&push=/slow/200``), then responds ``200`` with
    :data:`PUSHING_BODY`.  The response header ``x-push-offered`` is ``1``
    when the app asked hypercorn to push, ``0`` otherwise (HTTP/1.1).  The app
    cannot see whether the client refused pushes (``SETTINGS_ENABLE_PUSH=0``):
    hypercorn then silently drops the push.
``GET /pushed/<name>``
    ``200``, ``text/plain``, body :func:`pushed_body` ``(name)``.
``POST|PUT /echo``
    ``200`` echoing the request body (``application/octet-stream``).
``GET /bytes/<n>``
    ``200`` with :func:`deterministic_bytes` ``(n)``, streamed in 64 KiB chunks.
``GET /slow/<ms>``
    ``200`` with body ``slept <ms>ms`` after ``asyncio.sleep(ms / 1000)``.

Pushed requests carry ``:scheme``/``:authority`` of the original request (taken
from its ``host``/``:authority``), the extra headers of the push event, and
hypercorn's ``date``/``server`` headers.  A *cross-origin* push cannot be made
with hypercorn 0.18: push headers starting with ``:`` are rejected
(``ValueError("Pseudo headers are not valid")`` in ``build_and_validate_headers``),
so there is no cross-origin route.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Paths pushed by ``GET /pushing`` without ``push=`` parameters.
DEFAULT_PUSHES: tuple[str, ...] = ("/pushed/a", "/pushed/b")
#: Body of the ``GET /pushing`` response itself.
PUSHING_BODY = b"this response came with server pushes\n"
#: Header added to each push request (visible in the PUSH_PROMISE header block).
PUSH_REQUEST_HEADER = (b"x-pushed-by", b"hyper-tests")
#: Upper bound for ``/bytes/<n>`` and ``/slow/<ms>`` to keep typos from hurting.
MAX_BYTES = 256 * 1024 * 1024
MAX_SLOW_MS = 60_000
_CHUNK = 64 * 1024


def pushed_body(name: str) -> bytes:
    """Body served at ``/pushed/<name>``."""
    return f"pushed resource {name!r}\n".encode() * 8


def deterministic_bytes(n: int) -> bytes:
    """``n`` pseudo-random (not periodic, so reordering shows) bytes, same for the same ``n``."""
    return random.Random(n).randbytes(n)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain",
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for start in range(0, max(len(body), 1), _CHUNK):
        chunk = body[start : start + _CHUNK]
        more = start + _CHUNK < len(body)
        await send({"type": "http.response.body", "body": chunk, "more_body": more})


def _int_suffix(path: str, prefix: str, limit: int) -> int | None:
    text = path[len(prefix) :]
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= limit else None


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    method: str = scope["method"]
    path: str = scope["path"]
    if method in ("POST", "PUT") and path == "/echo":
        body = await _read_body(receive)
        if body is not None:
            await _respond(send, 200, body, content_type=b"application/octet-stream")
        return
    if await _read_body(receive) is None:
        return
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, b"method not allowed\n")
        return
    if path == "/pushing":
        offered = "http.response.push" in scope.get("extensions", {})
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        pushes = query.get("push") or list(DEFAULT_PUSHES)
        if offered:
            for pushed in pushes:
                await send(
                    {
                        "type": "http.response.push",
                        "path": pushed,
                        "headers": [PUSH_REQUEST_HEADER],
                    }
                )
        await _respond(
            send,
            200,
            PUSHING_BODY,
            extra_headers=((b"x-push-offered", b"1" if offered else b"0"),),
        )
    elif path.startswith("/pushed/") and len(path) > len("/pushed/"):
        await _respond(send, 200, pushed_body(path[len("/pushed/") :]))
    elif path.startswith("/bytes/") and (n := _int_suffix(path, "/bytes/", MAX_BYTES)) is not None:
        await _respond(send, 200, deterministic_bytes(n), content_type=b"application/octet-stream")
    elif (
        path.startswith("/slow/") and (ms := _int_suffix(path, "/slow/", MAX_SLOW_MS)) is not None
    ):
        await asyncio.sleep(ms / 1000)
        await _respond(send, 200, f"slept {ms}ms".encode())
    else:
        await _respond(send, 404, b"not found\n")


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
