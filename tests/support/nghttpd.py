"""``nghttpd`` (nghttp2's reference HTTP/2 server) serving a generated document root."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .certs import CertPaths
from .processes import require_binary, serve_on_free_port

#: Binary files in the document root: name -> size in bytes.
DOCROOT_SIZES: Mapping[str, int] = {
    "empty.bin": 0,
    "1k.bin": 1024,
    "64k.bin": 64 * 1024,
    "1m.bin": 1024 * 1024,
    "10m.bin": 10 * 1024 * 1024,
}
INDEX_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>hyper test docroot</title></head>\n"
    b"<body><p>Hello from nghttpd.</p></body></html>\n"
)


@dataclass(frozen=True)
class Docroot:
    """A generated document root: ``files`` maps file name to sha256 hex digest."""

    path: Path
    files: Mapping[str, str]
    sizes: Mapping[str, int]


def make_docroot(path: Path, seed: int = 0x4879) -> Docroot:
    """Fill ``path`` with deterministic pseudo-random files plus ``index.html``."""
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    contents = {name: rng.randbytes(size) for name, size in DOCROOT_SIZES.items()}
    contents["index.html"] = INDEX_HTML
    for name, data in contents.items():
        (path / name).write_bytes(data)
    return Docroot(
        path=path,
        files={name: hashlib.sha256(data).hexdigest() for name, data in contents.items()},
        sizes={name: len(data) for name, data in contents.items()},
    )


@dataclass(frozen=True)
class NghttpdServer:
    """A running nghttpd.

    ``files`` maps docroot file names to their sha256 hex digest and ``sizes``
    to their length; :meth:`read` returns a file's bytes.  ``ca_cert_path`` is
    the CA to trust for TLS servers (None for ``h2c``).  POST/PUT bodies are
    echoed back (``--echo-upload``).
    """

    host: str
    port: int
    tls: bool
    docroot: Path
    files: Mapping[str, str]
    sizes: Mapping[str, int]
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

    def read(self, name: str) -> bytes:
        """Return the content of docroot file ``name``."""
        return (self.docroot / name).read_bytes()


@contextlib.contextmanager
def run_nghttpd(
    docroot: Docroot,
    log_dir: Path,
    *,
    cert: CertPaths | None = None,
    ca_cert_path: Path | None = None,
    extra_args: tuple[str, ...] = (),
    host: str = "127.0.0.1",
) -> Iterator[NghttpdServer]:
    """Run nghttpd on a free port (TLS when ``cert`` is given, else ``--no-tls``)."""
    binary = require_binary("nghttpd")

    def argv(port: int) -> list[str]:
        args = [binary, "--address", host, "--htdocs", str(docroot.path), "--echo-upload"]
        args += extra_args
        if cert is None:
            return [*args, "--no-tls", str(port)]
        return [*args, str(port), str(cert.key_path), str(cert.cert_path)]

    name = "nghttpd-tls" if cert else "nghttpd-h2c"
    # nghttpd prints no ready line unless -v (which logs every frame), so readiness
    # is detected by probing the port.
    with serve_on_free_port(name, argv, log_dir=log_dir, host=host) as proc:
        yield NghttpdServer(
            host=host,
            port=proc.port,
            tls=cert is not None,
            docroot=docroot.path,
            files=docroot.files,
            sizes=docroot.sizes,
            ca_cert_path=ca_cert_path if cert else None,
            log_path=proc.log_path,
        )
