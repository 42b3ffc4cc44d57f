"""The interop matrix: servers, modes, checks, the shared document root and the n/a table.

The matrix (``tests/test_interop_matrix.py``) runs every *check* in every *mode* of every
*server*, where the combination makes sense.  This module holds what the test module, the
server fixtures (``tests/conftest.py``) and the matrix report
(:mod:`tests.support.interop_matrix`) share:

* :data:`SERVERS`, :data:`MODES`, :data:`CHECKS` -- the three axes, in display order;
* :data:`NOT_APPLICABLE` -- the combinations that are not run, each with the reason;
* :func:`make_interop_docroot` -- one document root served by every server (a world-readable
  temporary directory, so that servers whose workers drop privileges can read it);
* :class:`Endpoint` and :class:`InteropTarget` -- how a running server is reached in each
  mode and which path each check uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Servers, in the order of the matrix rows.
SERVERS: tuple[str, ...] = ("nghttpd", "nginx", "h2o", "apache", "hypercorn")
#: Modes: HTTP/2 over TLS (ALPN), HTTP/1.1 over TLS, h2c by ``Upgrade``, h2c by prior knowledge.
MODES: tuple[str, ...] = ("h2-tls", "h11-tls", "h2c-upgrade", "h2c-prior")
#: Checks, in the order of the matrix columns.
CHECKS: tuple[str, ...] = (
    "get",
    "post-10m",
    "gzip",
    "multiplex-50",
    "get-100m",
    "trailers",
    "push",
)

MODE_TITLES: Mapping[str, str] = {
    "h2-tls": "HTTP/2 over TLS (ALPN)",
    "h11-tls": "HTTP/1.1 over TLS",
    "h2c-upgrade": "h2c, Upgrade",
    "h2c-prior": "h2c, prior knowledge",
}
CHECK_TITLES: Mapping[str, str] = {
    "get": "GET",
    "post-10m": "POST 10 MiB",
    "gzip": "gzip",
    "multiplex-50": "50 requests",
    "get-100m": "100 MiB download",
    "trailers": "trailers",
    "push": "push",
}

_NO_PUSH_IN_HTTP11 = "HTTP/1.1 has no server push"
_ONLY_HTTP2 = "nghttpd speaks only HTTP/2"
#: Combinations that are not run: ``(server, mode, check)`` -> why.  ``"*"`` matches every
#: check (or every mode).  The reasons are printed in the matrix footnotes and in the docs.
NOT_APPLICABLE: Mapping[tuple[str, str, str], str] = {
    ("nghttpd", "h11-tls", "*"): _ONLY_HTTP2,
    ("nghttpd", "*", "gzip"): (
        "nghttpd does not compress responses (its --error-gzip, for error pages, has no "
        "effect in Debian's build)"
    ),
    ("*", "h11-tls", "push"): _NO_PUSH_IN_HTTP11,
    ("apache", "*", "trailers"): (
        "Apache has no configuration or stock module (mod_lua, CGI) that sets response trailers"
    ),
    ("h2o", "*", "trailers"): "h2o 2.2 cannot add response trailers (mruby cannot either)",
    ("hypercorn", "h11-tls", "trailers"): "hypercorn sends trailers over HTTP/2 only",
}

_FALLBACK = (
    "{} does not implement Upgrade: h2c; its plaintext port speaks only HTTP/2, so it "
    "answers hyper's upgrade request with HTTP/2 frames, and hyper sends the request again "
    "with prior knowledge on a new connection"
)
#: Remarks on how a server/mode pair passes, shown under the matrix.
MODE_NOTES: Mapping[tuple[str, str], str] = {
    ("nghttpd", "h2c-upgrade"): _FALLBACK.format("nghttpd"),
    ("nginx", "h2c-upgrade"): _FALLBACK.format("nginx (server block with listen ... http2)"),
    ("apache", "h2c-upgrade"): (
        "Apache answers 101 and the upgrade request on stream 1, then at once sends "
        'GOAWAY(NO_ERROR, last_stream_id=1, "timeout") (curl --http2 gets the same): '
        "hyper opens a new HTTP/2 connection (prior knowledge) for the next request; the "
        "test sends a GET first so that the check runs on that one"
    ),
}


def not_applicable(server: str, mode: str, check: str) -> str | None:
    """The reason why ``(server, mode, check)`` is not run, or None if it is."""
    for key in (
        (server, mode, check),
        (server, mode, "*"),
        (server, "*", check),
        ("*", mode, check),
    ):
        reason = NOT_APPLICABLE.get(key)
        if reason is not None:
            return reason
    return None


# -- the document root -------------------------------------------------------------------------

#: Response trailer every trailer-capable server is configured to send.
TRAILER = (b"x-interop-trailer", b"yes")
#: Number of distinct files fetched by the multiplexing check.
MULTIPLEX_COUNT = 50
#: Size of the upload of the POST check and of the big download.
POST_SIZE = 10 * 1024 * 1024
BIG_SIZE = 100 * 1024 * 1024
BIG_FILE = "100m.bin"
GET_FILE = "data.bin"
TEXT_FILE = "text.txt"
PUSH_PAGE = "push/page.html"
PUSHED_FILE = "push/style.css"
_BLOCK = 1024 * 1024


def multiplex_file(index: int) -> str:
    """Docroot name of the ``index``-th file of the multiplexing check."""
    return f"m/{index:02d}.txt"


@dataclass(frozen=True)
class InteropDocroot:
    """The generated document root: ``files`` maps a name to its sha256 hex digest."""

    path: Path
    files: Mapping[str, str]
    sizes: Mapping[str, int]

    def read(self, name: str) -> bytes:
        """The content of ``name`` (not for the 100 MiB file: use the digest)."""
        return (self.path / name).read_bytes()


def _small_files(rng: random.Random) -> dict[str, bytes]:
    line = b"hyper interop text: the quick brown fox jumps over the lazy dog 0123456789.\n"
    files = {
        "index.html": (
            b"<!DOCTYPE html>\n<html><head><title>hyper interop</title></head>\n"
            b"<body><p>hyper interop matrix</p></body></html>\n"
        ),
        # Larger than the default 64 KiB flow-control window: the GET needs WINDOW_UPDATEs.
        GET_FILE: rng.randbytes(256 * 1024 + 17),
        TEXT_FILE: (line * (256 * 1024 // len(line) + 1))[: 256 * 1024],
        PUSH_PAGE: (
            b"<!DOCTYPE html>\n<html><head><link rel=stylesheet href=/push/style.css>"
            b"</head><body><p>pushes style.css</p></body></html>\n"
        ),
        PUSHED_FILE: b"/* pushed */\nbody { margin: 0 auto; color: #123456; }\n" * 8,
    }
    for index in range(MULTIPLEX_COUNT):
        # Different sizes and contents, so that a body handed to the wrong stream shows.
        files[multiplex_file(index)] = (
            f"file {index:02d}\n".encode() + rng.randbytes(512 + 97 * index).hex().encode()
        )
    return files


def _readable(path: Path, mode: int) -> None:
    path.chmod(mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def make_interop_docroot(path: Path, seed: int = 0x1E7) -> InteropDocroot:
    """Fill ``path`` (which must exist) with the interop files, all world-readable."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for name, data in _small_files(rng).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files[name] = hashlib.sha256(data).hexdigest()
        sizes[name] = len(data)
    digest = hashlib.sha256()
    with (path / BIG_FILE).open("wb") as big:
        for _ in range(BIG_SIZE // _BLOCK):
            block = rng.randbytes(_BLOCK)
            digest.update(block)
            big.write(block)
    files[BIG_FILE] = digest.hexdigest()
    sizes[BIG_FILE] = BIG_SIZE
    for directory in (path, *(p for p in path.rglob("*") if p.is_dir())):
        _readable(directory, 0o755)
    for file in (p for p in path.rglob("*") if p.is_file()):
        _readable(file, 0o644)
    return InteropDocroot(path=path, files=files, sizes=sizes)


@contextlib.contextmanager
def public_tempdir(prefix: str) -> Iterator[Path]:
    """A world-readable temporary directory (removed on exit).

    pytest's temporary directories are private (0700), so servers whose workers run as
    another user (Apache's ``User`` when started as root) could not read files there.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def post_body() -> bytes:
    """The 10 MiB upload of the POST check (deterministic, not compressible)."""
    return random.Random(POST_SIZE).randbytes(POST_SIZE)


# -- running servers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One listening socket of a server.

    ``tls`` says whether it speaks TLS; ``h2_in_alpn`` whether its ALPN offers ``h2``.
    """

    host: str
    port: int
    tls: bool
    h2_in_alpn: bool = True


@dataclass(frozen=True)
class InteropTarget:
    """A running server, as the matrix sees it.

    ``endpoints`` maps each mode the server runs to the socket to use.  For ``h11-tls``,
    an endpoint whose ALPN does not offer ``h2`` is reached with
    :class:`hyper.HTTPConnection` (which must fall back to HTTP/1.1); otherwise hyper's
    :class:`hyper.HTTP11Connection` is used, offering only ``http/1.1``.
    ``paths`` overrides the default path of a check (see :data:`DEFAULT_PATHS`).
    """

    name: str
    version: str
    docroot: InteropDocroot
    ca_cert_path: Path
    endpoints: Mapping[str, Endpoint]
    paths: Mapping[str, str] = field(default_factory=dict)
    #: Whether the server can push (a runtime n/a otherwise).
    push: bool = True
    #: Whether the server ends a connection upgraded to h2c after the upgrade request's
    #: response (GOAWAY with last_stream_id=1), so that the next request needs a new one.
    closes_after_upgrade: bool = False
    #: Whether the server implements ``Upgrade: h2c`` (answers 101) on its plaintext port;
    #: if not, hyper must fall back to prior knowledge on a second connection.
    upgrade: bool = True

    def path(self, check: str) -> str:
        """The request path of ``check`` on this server."""
        return self.paths.get(check, DEFAULT_PATHS[check])


#: Paths of the checks that fetch one path (the multiplexing check fetches ``/m/NN.txt``).
DEFAULT_PATHS: Mapping[str, str] = {
    "get": f"/{GET_FILE}",
    "post-10m": "/echo",
    "gzip": f"/gzip/{TEXT_FILE}",
    "get-100m": f"/{BIG_FILE}",
    "trailers": "/trailers/index.html",
    "push": f"/{PUSH_PAGE}",
    "upgrade": "/index.html",
}
