"""The hyper driver: HTTP20Connection, with request()/get_response() multiplexing."""

from __future__ import annotations

from typing import Any

from harness.clients.base import ClientTarget, ClientUnavailable, check_status


def _import_hyper() -> tuple[Any, Any, Any]:
    """Return ``hyper``, ``hyper.tls`` and ``HTTP20Connection``, or raise ClientUnavailable."""
    try:
        import hyper
        import hyper.tls
        from hyper import HTTP20Connection
    except ImportError as exc:
        raise ClientUnavailable(f"hyper is not usable: {type(exc).__name__}: {exc}") from exc
    return hyper, hyper.tls, HTTP20Connection


class HyperDriver:
    """hyper's HTTP20Connection over TLS, verified against the benchmark CA."""

    def __init__(self, target: ClientTarget) -> None:
        hyper, hyper_tls, connection_class = _import_hyper()
        self.version = str(getattr(hyper, "__version__", "unknown"))
        self.origin = str(getattr(hyper, "__file__", None) or list(hyper.__path__))
        context = hyper_tls.init_context(cert_path=target.ca)
        self._conn = connection_class(target.host, target.port, secure=True, ssl_context=context)

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        return self._read_response(path, self._conn.request("GET", path))

    def get_batch(self, path: str, count: int) -> list[int]:
        """Send ``count`` requests, then read each response in order."""
        stream_ids = [self._conn.request("GET", path) for _ in range(count)]
        return [self._read_response(path, sid) for sid in stream_ids]

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` and read the body with ``read(chunk_size)`` until it is empty."""
        response = self._conn.get_response(self._conn.request("GET", path))
        check_status("hyper", path, response.status)
        total = 0
        while chunk := response.read(chunk_size):
            total += len(chunk)
        return total

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _read_response(self, path: str, stream_id: int) -> int:
        response = self._conn.get_response(stream_id)
        body = response.read()
        check_status("hyper", path, response.status)
        return len(body)
