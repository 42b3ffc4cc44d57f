"""The httpx driver: one ``httpx.Client(http2=True)``, threads for concurrency."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status


class HttpxDriver:
    """httpx with HTTP/2, limited to a single connection, verified against the benchmark CA."""

    def __init__(self, target: ClientTarget) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise ClientUnavailable(
                f"httpx is not usable: {exc} (pip install 'httpx[http2]')"
            ) from exc
        self.version = httpx.__version__
        self.origin = httpx.__file__ or "?"
        self._target = target
        self._client: Any = httpx.Client(
            http2=True,
            verify=ssl.create_default_context(cafile=target.ca),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=60.0,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length; insists on HTTP/2."""
        response = self._client.get(self._target.url(path))
        check_status("httpx", path, response.status_code)
        if response.http_version != "HTTP/2":
            raise BenchError(f"httpx negotiated {response.http_version}, not HTTP/2")
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
            check_status("httpx", path, response.status_code)
            for chunk in response.iter_bytes(chunk_size):
                total += len(chunk)
        return total

    def close(self) -> None:
        """Stop the threads and close the client."""
        self._close_pool()
        self._client.close()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
