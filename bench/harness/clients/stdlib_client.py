"""The standard library's driver: ``http.client.HTTPConnection`` (HTTPS over TLS), HTTP/1.1.

One connection, kept alive because every body is read to its end. http.client
reconnects silently when the server has closed the connection, so the driver checks
that the socket of the warm-up request is still the one in use at the end.
"""

from __future__ import annotations

import http.client
import platform
import socket
import ssl

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status

#: Seconds without progress before a request fails: on loopback, only a hang takes this long.
TIMEOUT = 10.0


class HttpClientDriver:
    """``http.client.HTTPConnection``, or ``HTTPSConnection`` offering only http/1.1 in ALPN."""

    def __init__(self, target: ClientTarget) -> None:
        if target.protocol != "http/1.1":
            raise ClientUnavailable(f"http.client speaks HTTP/1.1 only, not {target.protocol}")
        self.version = f"Python {platform.python_version()}"
        self.origin = http.client.__file__ or "?"
        self._conn: http.client.HTTPConnection
        if target.secure:
            context = ssl.create_default_context(cafile=target.ca)
            context.set_alpn_protocols(["http/1.1"])
            self._conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=TIMEOUT, context=context
            )
        else:
            self._conn = http.client.HTTPConnection(target.host, target.port, timeout=TIMEOUT)
        self._sock: socket.socket | None = None

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        conn = self._conn
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        self._check(path, response)
        return len(body)

    def get_batch(self, path: str, count: int) -> list[int]:
        """Not possible: HTTP/1.1 has one request in flight per connection."""
        raise BenchError("http.client: one request in flight per connection")

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` and read the body with ``read(chunk_size)`` until it is empty."""
        self._conn.request("GET", path)
        response = self._conn.getresponse()
        self._check(path, response)
        total = 0
        while chunk := response.read(chunk_size):
            total += len(chunk)
        return total

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` and return the response body's length."""
        self._conn.request("POST", path, body=body)
        response = self._conn.getresponse()
        data = response.read()
        self._check(path, response)
        return len(data)

    def close(self) -> None:
        """Check that one connection served everything, then close it."""
        reconnected = self._sock is not None and self._conn.sock is not self._sock
        self._conn.close()
        if reconnected:
            raise BenchError("http.client reconnected: the server closed the connection")

    def _check(self, path: str, response: http.client.HTTPResponse) -> None:
        check_status("http.client", path, response.status)
        if response.version != 11:
            raise BenchError(f"http.client: the server answered HTTP version {response.version}")
        if self._sock is None:
            self._sock = self._conn.sock
