"""What every client driver provides, and the errors drivers raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BenchError(RuntimeError):
    """A run cannot produce a trustworthy number (wrong status, size, protocol...)."""


class ClientUnavailable(BenchError):
    """The client library cannot be imported or is incomplete."""


@dataclass(frozen=True)
class ClientTarget:
    """The server as a client subprocess sees it.

    ``protocol`` is the HTTP version to speak (``"h2"`` or ``"http/1.1"``, as in ALPN);
    ``secure`` says whether to use TLS, verified against the CA in ``ca``.
    """

    host: str
    port: int
    ca: str
    secure: bool = True
    protocol: str = "h2"

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.secure else "http"

    def url(self, path: str) -> str:
        """Return the URL of ``path``."""
        return f"{self.scheme}://{self.host}:{self.port}{path}"


class Driver(Protocol):
    """One connected HTTP client: a connection is made when it is constructed
    (or lazily by the first request) and every method uses that one connection,
    speaking ``target.protocol``. A driver that cannot speak it raises
    :class:`ClientUnavailable` from its constructor."""

    #: The library's version, and where it was imported from, for the report.
    version: str
    origin: str

    def get(self, path: str) -> int:
        """GET ``path``, read the whole body, return its length (non-200 raises)."""
        ...

    def get_batch(self, path: str, count: int) -> list[int]:
        """Have ``count`` GETs of ``path`` in flight at once; return the body lengths.

        Only HTTP/2 workloads use it (HTTP/1.1 has one request in flight at a time)."""
        ...

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path``, read and discard the body in ``chunk_size`` pieces; return its length."""
        ...

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` to ``path``, read the whole response body, return its length."""
        ...

    def close(self) -> None:
        """Close the connection and free resources."""
        ...


def check_status(client: str, path: str, status: int) -> None:
    """Raise :class:`BenchError` unless ``status`` is 200."""
    if status != 200:
        raise BenchError(f"{client}: GET {path} answered {status}, expected 200")
