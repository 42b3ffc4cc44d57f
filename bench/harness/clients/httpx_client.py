"""The httpx drivers: one connection, with threads or with asyncio.

HTTP/2 workloads use ``http2=True``, HTTP/1.1 workloads ``http2=False``; every
response's HTTP version is checked.

``httpx`` is the sync ``httpx.Client(http2=True)`` shared by a thread pool for
concurrency. Note that httpcore's sync HTTP/2 connection is not thread-safe
(stream ids are allocated and the TLS socket is read and written from several
threads without a common lock), so its ``concurrent`` runs can hang or fail;
the benchmark reports that as an error. ``httpx-async`` is the same library the
way it is meant to be used concurrently: ``httpx.AsyncClient`` and asyncio.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status

#: Seconds without progress before a request fails: on loopback, only a hang takes this long.
TIMEOUT = 10.0

#: Request bodies are handed to httpx in pieces of this size (see :func:`_pieces`).
UPLOAD_PIECE = 64 * 1024


def _pieces(body: bytes) -> Iterator[bytes]:
    """``body`` as an iterator of UPLOAD_PIECE-byte pieces.

    Given one large ``bytes`` object, httpcore's HTTP/2 sender re-slices the rest of
    the body for every DATA frame (``chunk, data = data[:n], data[n:]`` in
    ``_send_stream_data``), which copies it again each time: a 100 MiB upload then
    takes many minutes. In pieces, the copying is linear, as it is for the others.
    """
    view = memoryview(body)
    for start in range(0, len(body), UPLOAD_PIECE):
        yield bytes(view[start : start + UPLOAD_PIECE])


async def _apieces(body: bytes) -> AsyncIterator[bytes]:
    """:func:`_pieces` for ``httpx.AsyncClient`` (which needs an async iterator)."""
    for piece in _pieces(body):
        yield piece


def _import_httpx() -> ModuleType:
    try:
        import httpx
    except ImportError as exc:
        raise ClientUnavailable(
            f"httpx is not usable: {exc} (pip install 'httpx[http2]')"
        ) from exc
    return httpx


#: ALPN protocol name -> what httpx's ``Response.http_version`` says for it.
_HTTP_VERSIONS = {"h2": "HTTP/2", "http/1.1": "HTTP/1.1"}


def _client_options(httpx: ModuleType, target: ClientTarget) -> dict[str, Any]:
    """Options shared by both drivers: the protocol, one connection, the benchmark CA."""
    if target.protocol not in _HTTP_VERSIONS:
        raise ClientUnavailable(f"httpx driver: unknown protocol {target.protocol!r}")
    return {
        "http2": target.protocol == "h2",
        "verify": ssl.create_default_context(cafile=target.ca) if target.secure else True,
        "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
        "timeout": TIMEOUT,
    }


def _check_response(target: ClientTarget, path: str, status: int, http_version: str) -> None:
    check_status("httpx", path, status)
    if http_version != _HTTP_VERSIONS[target.protocol]:
        raise BenchError(f"httpx spoke {http_version}, not {_HTTP_VERSIONS[target.protocol]}")


class HttpxDriver:
    """Sync httpx; ``get_batch`` runs the requests on a pool of threads."""

    def __init__(self, target: ClientTarget) -> None:
        httpx = _import_httpx()
        self.version = httpx.__version__
        self.origin = httpx.__file__ or "?"
        self._target = target
        self._client: Any = httpx.Client(**_client_options(httpx, target))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        response = self._client.get(self._target.url(path))
        _check_response(self._target, path, response.status_code, response.http_version)
        return len(response.content)

    def get_batch(self, path: str, count: int) -> list[int]:
        """Run ``count`` GETs on a pool of ``count`` threads sharing the one client."""
        if self._pool is None or self._pool_size != count:
            self._close_pool()
            self._pool = ThreadPoolExecutor(max_workers=count)
            self._pool_size = count
        futures = [self._pool.submit(self.get, path) for _ in range(count)]
        return [future.result() for future in futures]

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` and iterate over the body in ``chunk_size`` pieces."""
        total = 0
        with self._client.stream("GET", self._target.url(path)) as response:
            _check_response(self._target, path, response.status_code, response.http_version)
            for chunk in response.iter_bytes(chunk_size):
                total += len(chunk)
        return total

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` and return the response body's length."""
        response = self._client.post(self._target.url(path), content=_pieces(body))
        _check_response(self._target, path, response.status_code, response.http_version)
        return len(response.content)

    def close(self) -> None:
        """Stop the threads and close the client."""
        self._close_pool()
        self._client.close()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class HttpxAsyncDriver:
    """``httpx.AsyncClient`` driven by one event loop; ``get_batch`` uses asyncio.gather."""

    def __init__(self, target: ClientTarget) -> None:
        httpx = _import_httpx()
        self.version = httpx.__version__
        self.origin = httpx.__file__ or "?"
        self._target = target
        self._loop = asyncio.new_event_loop()
        self._client: Any = httpx.AsyncClient(**_client_options(httpx, target))

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        return self._loop.run_until_complete(self._get(path))

    def get_batch(self, path: str, count: int) -> list[int]:
        """Run ``count`` GETs concurrently as tasks on the one client."""
        return self._loop.run_until_complete(self._get_batch(path, count))

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` and iterate over the body in ``chunk_size`` pieces."""
        return self._loop.run_until_complete(self._stream(path, chunk_size))

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` and return the response body's length."""
        return self._loop.run_until_complete(self._post(path, body))

    def close(self) -> None:
        """Close the client and the event loop."""
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()

    async def _get(self, path: str) -> int:
        response = await self._client.get(self._target.url(path))
        _check_response(self._target, path, response.status_code, response.http_version)
        return len(response.content)

    async def _post(self, path: str, body: bytes) -> int:
        response = await self._client.post(self._target.url(path), content=_apieces(body))
        _check_response(self._target, path, response.status_code, response.http_version)
        return len(response.content)

    async def _get_batch(self, path: str, count: int) -> list[int]:
        return list(await asyncio.gather(*(self._get(path) for _ in range(count))))

    async def _stream(self, path: str, chunk_size: int) -> int:
        total = 0
        async with self._client.stream("GET", self._target.url(path)) as response:
            _check_response(self._target, path, response.status_code, response.http_version)
            async for chunk in response.aiter_bytes(chunk_size):
                total += len(chunk)
        return total
