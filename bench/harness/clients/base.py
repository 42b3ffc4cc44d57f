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
    """The server as a client subprocess sees it."""

    host: str
    port: int
    ca: str

    def url(self, path: str) -> str:
        """Return the https URL of ``path``."""
        return f"https://{self.host}:{self.port}{path}"


class Driver(Protocol):
    """One connected HTTP/2 client: a connection is made when it is constructed
    (or lazily by the first request) and every method uses that one connection."""

    #: The library's version, and where it was imported from, for the report.
    version: str
    origin: str

    def get(self, path: str) -> int:
        """GET ``path``, read the whole body, return its length (non-200 raises)."""
        ...

    def get_batch(self, path: str, count: int) -> list[int]:
        """Have ``count`` GETs of ``path`` in flight at once; return the body lengths."""
        ...

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path``, read and discard the body in ``chunk_size`` pieces; return its length."""
        ...

    def close(self) -> None:
        """Close the connection and free resources."""
        ...


def check_status(client: str, path: str, status: int) -> None:
    """Raise :class:`BenchError` unless ``status`` is 200."""
    if status != 200:
        raise BenchError(f"{client}: GET {path} answered {status}, expected 200")
