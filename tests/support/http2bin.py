"""A local "http2bin": the httpbin Flask (WSGI) app served by hypercorn over HTTP/2."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .certs import CertPaths
from .processes import ServerProcess, missing_requirement

#: hypercorn logs this once the worker listens; the port is the one bound to ``:0``.
READY_PATTERN = r"Running on https?://\S+:(?P<port>\d+) "
#: Idle keep-alive timeout handed to hypercorn, long enough that tests never see
#: an idle GOAWAY.
KEEP_ALIVE_SECONDS = 3600


@dataclass(frozen=True)
class Http2binServer:
    """A running hypercorn + httpbin; TLS servers negotiate ``h2`` via ALPN.

    The plaintext server speaks HTTP/1.1, h2c upgrade and h2 prior knowledge.
    """

    host: str
    port: int
    tls: bool
    ca_cert_path: Path | None
    log_path: Path

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls else "http"

    @property
    def authority(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this server."""
        return f"{self.scheme}://{self.authority}{path}"


def _require_modules(*names: str) -> None:
    for name in names:
        if importlib.util.find_spec(name) is None:
            missing_requirement(f"required Python package {name!r} is not installed")


def hypercorn_argv(app: str, host: str, cert: CertPaths | None, *options: str) -> list[str]:
    """
    The command line of one hypercorn worker serving ``app`` on a free port of ``host``
    (the OS picks it; hypercorn names it in the line :data:`READY_PATTERN` reads), over TLS
    with ``cert``, keeping connections open for :data:`KEEP_ALIVE_SECONDS`, its errors on
    standard output; ``options`` go before the application.
    """
    argv = [
        sys.executable,
        "-m",
        "hypercorn",
        "--bind",
        f"{host}:0",
        "--workers",
        "1",
        "--keep-alive",
        str(KEEP_ALIVE_SECONDS),
        "--graceful-timeout",
        "1",
        "--log-level",
        "info",
        "--error-logfile",
        "-",
        *options,
    ]
    if cert is not None:
        argv += ["--certfile", str(cert.cert_path), "--keyfile", str(cert.key_path)]
    return [*argv, app]


@contextlib.contextmanager
def run_http2bin(
    log_dir: Path,
    *,
    cert: CertPaths | None = None,
    ca_cert_path: Path | None = None,
    host: str = "127.0.0.1",
) -> Iterator[Http2binServer]:
    """Run ``hypercorn wsgi:httpbin:app`` on a free port (TLS when ``cert`` is given)."""
    _require_modules("hypercorn", "httpbin")
    name = "http2bin-tls" if cert else "http2bin-plain"
    argv = hypercorn_argv("wsgi:httpbin:app", host, cert, "--access-logfile", "-")
    log_dir.mkdir(parents=True, exist_ok=True)
    with ServerProcess(
        name,
        argv,
        log_path=log_dir / f"{name}.log",
        host=host,
        ready_pattern=READY_PATTERN,
        cwd=log_dir,
    ) as proc:
        yield Http2binServer(
            host=host,
            port=proc.port,
            tls=cert is not None,
            ca_cert_path=ca_cert_path if cert else None,
            log_path=proc.log_path,
        )
