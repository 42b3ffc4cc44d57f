"""The ASGI app the HTTP/3 hypercorn fixture serves: the routes of
:mod:`tests.support.hypercorn_apps` (``/echo``, ``/bytes/<n>``, ``/slow/<ms>``), and
httpbin for everything else (``/get``, ``/status/<code>``, ``/gzip``, ...).

hypercorn loads this file by path (``/…/h3_app.py:app``) as a top-level module, so it finds
its neighbour ``hypercorn_apps.py`` by adding its own directory to ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpbin
import hypercorn_apps
from hypercorn.middleware import AsyncioWSGIMiddleware

_httpbin = AsyncioWSGIMiddleware(httpbin.app, max_body_size=16 * 1024 * 1024)
_OWN_PREFIXES = ("/echo", "/bytes/", "/slow/", "/pushing", "/pushed/")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI 3 application (see the module docstring for its routes)."""
    path = scope.get("path", "")
    if scope["type"] != "http" or path.startswith(_OWN_PREFIXES):
        await hypercorn_apps.app(scope, receive, send)
    else:
        await _httpbin(scope, receive, send)
