"""The pycurl driver: libcurl from Python, the fastest widely used Python HTTP client.

``get``, ``stream`` and ``post`` reuse one easy handle, so libcurl keeps its one
connection alive between requests (checked: after the warm-up, no transfer may
report a new connection). HTTP/2 workloads ask for ``CURL_HTTP_VERSION_2TLS``
(h2 through ALPN) and check that every transfer used HTTP/2; HTTP/3 workloads ask for
``CURL_HTTP_VERSION_3ONLY`` (QUIC at once, no fallback: the wheels on PyPI are built
with ngtcp2 and nghttp3) and check for HTTP/3; HTTP/1.1 workloads ask for
``CURL_HTTP_VERSION_1_1``.

``get_batch`` uses a ``CurlMulti`` limited to one connection per host
(``M_MAX_HOST_CONNECTIONS``), whose easy handles set ``PIPEWAIT`` so that they wait
for the connection and multiplex on it rather than open another one; the easy
handles are created once per batch size and reused, the way a pycurl program would.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status

#: Seconds without progress before a transfer fails: on loopback, only a hang takes this long.
TIMEOUT = 10


def _import_pycurl() -> ModuleType:
    try:
        import pycurl
    except ImportError as exc:
        raise ClientUnavailable(f"pycurl is not usable: {exc} (pip install pycurl)") from exc
    return pycurl


class PycurlDriver:
    """One reusable easy handle (and a multi handle for batches), verified against the CA."""

    def __init__(self, target: ClientTarget) -> None:
        pycurl = self._pycurl = _import_pycurl()
        self.version = pycurl.version
        self.origin = pycurl.__file__ or "?"
        self._target = target
        if target.protocol == "h2":
            if not target.secure:
                raise ClientUnavailable("pycurl driver: HTTP/2 is run over TLS only")
            self._http_version = pycurl.CURL_HTTP_VERSION_2TLS
            self._expected = pycurl.CURL_HTTP_VERSION_2_0
        elif target.protocol == "h3":
            if not pycurl.version_info()[4] & pycurl.VERSION_HTTP3:
                raise ClientUnavailable(f"pycurl driver: {pycurl.version} has no HTTP/3")
            self._http_version = pycurl.CURL_HTTP_VERSION_3ONLY
            self._expected = pycurl.CURL_HTTP_VERSION_3
        elif target.protocol == "http/1.1":
            self._http_version = self._expected = pycurl.CURL_HTTP_VERSION_1_1
        else:
            raise ClientUnavailable(f"pycurl driver: unknown protocol {target.protocol!r}")
        self._parts: list[bytes] = []
        self._easy = self._new_handle(self._parts.append)
        self._transfers = 0
        self._multi: Any = None
        self._batch: list[tuple[Any, list[bytes]]] = []

    def _new_handle(self, write: Any) -> Any:
        pycurl = self._pycurl
        easy = pycurl.Curl()
        easy.setopt(pycurl.HTTP_VERSION, self._http_version)
        easy.setopt(pycurl.TIMEOUT, TIMEOUT)
        easy.setopt(pycurl.NOSIGNAL, 1)
        if self._target.secure:
            easy.setopt(pycurl.CAINFO, self._target.ca)
        easy.setopt(pycurl.WRITEFUNCTION, write)
        return easy

    def get(self, path: str) -> int:
        """GET ``path`` into a BytesIO and return the body length (the whole body as one
        ``bytes``, as the other clients read it)."""
        pycurl = self._pycurl
        body = io.BytesIO()
        self._easy.setopt(pycurl.WRITEFUNCTION, body.write)
        try:
            self._perform(path)
        finally:
            self._easy.setopt(pycurl.WRITEFUNCTION, self._parts.append)
        return len(body.getvalue())

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` with ``chunk_size`` as libcurl's buffer; count and drop each piece."""
        pycurl = self._pycurl
        total = 0

        def count(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)

        self._easy.setopt(pycurl.BUFFERSIZE, chunk_size)
        self._easy.setopt(pycurl.WRITEFUNCTION, count)
        try:
            self._perform(path)
        finally:
            self._easy.setopt(pycurl.WRITEFUNCTION, self._parts.append)
        return total

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` (as ``POSTFIELDS``) and return the response body's length."""
        pycurl = self._pycurl
        self._parts.clear()
        self._easy.setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
        self._easy.setopt(pycurl.POSTFIELDS, body)
        try:
            self._perform(path)
        finally:
            self._easy.setopt(pycurl.HTTPGET, 1)
        return len(b"".join(self._parts))

    def get_batch(self, path: str, count: int) -> list[int]:
        """Run ``count`` GETs at once on the multi handle's one (HTTP/2 or /3) connection."""
        pycurl = self._pycurl
        if self._target.protocol == "http/1.1":
            raise BenchError("pycurl: HTTP/1.1 has one request in flight per connection")
        if self._multi is None:
            self._multi = pycurl.CurlMulti()
            self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
        if len(self._batch) != count:
            self._close_batch()
            for _ in range(count):
                parts: list[bytes] = []
                easy = self._new_handle(parts.append)
                easy.setopt(pycurl.PIPEWAIT, 1)
                self._batch.append((easy, parts))
        url = self._target.url(path)
        for easy, parts in self._batch:
            parts.clear()
            easy.setopt(pycurl.URL, url)
            self._multi.add_handle(easy)
        try:
            failed = self._run_multi(count)
        finally:
            for easy, _ in self._batch:
                self._multi.remove_handle(easy)
        if failed:
            raise BenchError(f"pycurl: {len(failed)} transfer(s) failed: {failed[0]}")
        sizes = []
        for easy, parts in self._batch:
            self._check(path, easy)
            sizes.append(len(b"".join(parts)))
        return sizes

    def _run_multi(self, count: int) -> list[str]:
        """Drive the multi handle until ``count`` transfers ended; return the failures."""
        pycurl = self._pycurl
        done, failed = 0, []
        while done < count:
            while True:
                status, _active = self._multi.perform()
                if status != pycurl.E_CALL_MULTI_PERFORM:
                    break
            while True:
                queued, ok, errors = self._multi.info_read()
                done += len(ok) + len(errors)
                failed.extend(f"{message} ({code})" for _, code, message in errors)
                if not queued:
                    break
            if done < count:
                # Wait for the sockets, but no longer than libcurl's own timer asks
                # (waiting a fixed second instead stalls whole batches).
                wait_ms = self._multi.timeout()
                wait = 1.0 if wait_ms < 0 else min(wait_ms / 1000.0, 1.0)
                if wait > 0 and self._multi.select(wait) == -1:
                    raise BenchError("pycurl: select() failed")
        return failed

    def close(self) -> None:
        """Close the handles."""
        self._close_batch()
        if self._multi is not None:
            self._multi.close()
        self._easy.close()

    def _close_batch(self) -> None:
        for easy, _ in self._batch:
            easy.close()
        self._batch = []

    def _perform(self, path: str) -> None:
        """Run one transfer on the reused handle; check status, version and reuse."""
        pycurl = self._pycurl
        self._easy.setopt(pycurl.URL, self._target.url(path))
        try:
            self._easy.perform()
        except pycurl.error as exc:
            raise BenchError(f"pycurl: {exc}") from exc
        self._check(path, self._easy)
        self._transfers += 1
        if self._transfers > 1 and self._easy.getinfo(pycurl.NUM_CONNECTS) != 0:
            raise BenchError("pycurl opened a new connection: the first one was not reused")

    def _check(self, path: str, easy: Any) -> None:
        pycurl = self._pycurl
        check_status("pycurl", path, easy.getinfo(pycurl.RESPONSE_CODE))
        version = easy.getinfo(pycurl.INFO_HTTP_VERSION)
        if version != self._expected:
            raise BenchError(
                f"pycurl spoke CURL_HTTP_VERSION {version}, expected {self._expected}"
            )
