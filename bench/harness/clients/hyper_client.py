"""The hyper driver: HTTP20Connection for HTTP/2 and HTTP30Connection for HTTP/3
(request()/get_response() multiplexing), HTTP11Connection for HTTP/1.1 (one keep-alive
connection, one request at a time)."""

from __future__ import annotations

from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status


def _import_hyper() -> tuple[Any, Any, Any, Any]:
    """Return ``hyper``, ``hyper.tls`` and the HTTP/2 and HTTP/1.1 connection classes,
    or raise ClientUnavailable."""
    try:
        import hyper
        import hyper.tls
        from hyper import HTTP11Connection, HTTP20Connection
    except ImportError as exc:
        raise ClientUnavailable(f"hyper is not usable: {type(exc).__name__}: {exc}") from exc
    return hyper, hyper.tls, HTTP20Connection, HTTP11Connection


def _http30_connection() -> Any:
    """Return ``hyper.HTTP30Connection``, or raise ClientUnavailable (no ``qh3``)."""
    try:
        from hyper import HTTP30Connection
    except ImportError as exc:
        raise ClientUnavailable(f"hyper has no HTTP/3: {type(exc).__name__}: {exc}") from exc
    return HTTP30Connection


class HyperDriver:
    """hyper over TLS verified against the benchmark CA, or in plaintext for HTTP/1.1.

    Over HTTP/3 the connection would open a new QUIC connection by itself if the server
    ended the first one: :meth:`close` refuses a run that needed more than one.
    """

    def __init__(self, target: ClientTarget) -> None:
        hyper, hyper_tls, h2_class, h11_class = _import_hyper()
        self.version = str(getattr(hyper, "__version__", "unknown"))
        self.origin = str(getattr(hyper, "__file__", None) or list(hyper.__path__))
        self._h11 = target.protocol == "http/1.1"
        context = hyper_tls.init_context(cert_path=target.ca) if target.secure else None
        if self._h11:
            if context is not None:
                context.set_alpn_protocols(["http/1.1"])
            self._conn = h11_class(
                target.host, target.port, secure=target.secure, ssl_context=context
            )
        elif target.protocol == "h2" and target.secure:
            self._conn = h2_class(target.host, target.port, secure=True, ssl_context=context)
        elif target.protocol == "h3":
            self._conn = _http30_connection()(target.host, target.port, cert_path=target.ca)
        else:
            raise ClientUnavailable(f"hyper driver: no {target.protocol} over {target.scheme}")

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        if self._h11:
            self._conn.request("GET", path)
            return self._read_response(path, None)
        return self._read_response(path, self._conn.request("GET", path))

    def get_batch(self, path: str, count: int) -> list[int]:
        """Send ``count`` requests, then read each response in order (HTTP/2 only)."""
        if self._h11:
            raise BenchError("hyper: HTTP/1.1 has one request in flight per connection")
        stream_ids = [self._conn.request("GET", path) for _ in range(count)]
        return [self._read_response(path, sid) for sid in stream_ids]

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` and read the body with ``read(chunk_size)`` until it is empty."""
        stream_id = self._conn.request("GET", path)
        response = self._conn.get_response() if self._h11 else self._conn.get_response(stream_id)
        check_status("hyper", path, response.status)
        total = 0
        while chunk := response.read(chunk_size):
            total += len(chunk)
        return total

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` (one ``bytes`` object) and return the response body's length."""
        stream_id = self._conn.request("POST", path, body=body)
        return self._read_response(path, None if self._h11 else stream_id)

    def close(self) -> None:
        """Close the connection; over HTTP/3, check that one QUIC connection served all."""
        opened = getattr(self._conn, "connections_opened", 1)
        self._conn.close()
        if opened != 1:
            raise BenchError(f"hyper opened {opened} QUIC connections, expected 1")

    def _read_response(self, path: str, stream_id: int | None) -> int:
        response = self._conn.get_response() if self._h11 else self._conn.get_response(stream_id)
        body = response.read()
        check_status("hyper", path, response.status)
        return len(body)
