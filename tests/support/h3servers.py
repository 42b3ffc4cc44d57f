"""HTTP/3 servers for the tests: hypercorn with ``--quic-bind`` serving
:mod:`tests.support.h3_app`, and Caddy serving files (HTTP/3 is on by default on its TLS
sites).

Both run over TLS with the suite's test certificate (valid for ``localhost`` and
``127.0.0.1``); the client trusts the test CA.

What hypercorn 0.18 (on aioquic 1.7) does over HTTP/3, found while writing the tests:

* It cannot end a response with trailers: aioquic refuses the empty final DATA hypercorn
  sends after them (``FrameUnexpected``), and the stream never ends.
* A handler that answers a request the client has reset (``H3_REQUEST_CANCELLED``) raises
  inside aioquic ("Cannot send data after the stream was reset"), and from then on the
  server answers no QUIC packet at all, for any connection. The session-scoped fixture is
  shared, so tests never leave a request hypercorn is still working on reset: they wait
  for slow answers, or leave a request body unfinished (the handler then sees the client
  go away).

What Caddy 2.6 does over HTTP/3: it does not pass an upstream's trailers on (it does over
HTTP/2), and it sees no TLS server name, so its check that the server name matches the Host
header, on whenever it asks for client certificates, must be turned off.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .certs import CertPaths
from .http2bin import _require_modules, hypercorn_argv
from .processes import ServerProcess, require_binary, serve_on_free_port

#: hypercorn logs this once the QUIC socket is bound; the port is the UDP one, bound to ``:0``.
QUIC_READY = r"Running on https://\S+:(?P<port>\d+) \(QUIC\)"
#: hypercorn's line for its TCP socket (logged before the QUIC one).
TCP_BOUND = re.compile(r"Running on https://\S+:(?P<port>\d+) \(CTRL")
#: Caddy logs this once every listener, UDP included, is up.
CADDY_READY = r"serving initial configuration"
#: The large file Caddy serves, and its size.
BIG_FILE = "big.bin"
BIG_SIZE = 100 * 1024 * 1024
#: A small file Caddy serves, and its content.
SMALL_FILE = "hello.txt"
SMALL_BODY = b"hello over HTTP/3\n"


@dataclass(frozen=True)
class H3Server:
    """A running HTTP/3 server: ``port`` is its UDP port, ``tcp_port`` the port it serves
    HTTP/1.1 and HTTP/2 on over TLS (for hypercorn another number; its responses there
    advertise ``port`` with ``Alt-Svc``)."""

    host: str
    port: int
    ca_cert_path: Path
    log_path: Path
    tcp_port: int

    @property
    def authority(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CaddyServer(H3Server):
    """Caddy serving ``docroot``; ``big_sha256`` is the digest of :data:`BIG_FILE`."""

    docroot: Path
    big_sha256: str


@contextlib.contextmanager
def run_hypercorn_h3(
    log_dir: Path, *, cert: CertPaths, ca_cert_path: Path, host: str = "127.0.0.1"
) -> Iterator[H3Server]:
    """Run hypercorn (one worker) with HTTP/3 on a free UDP port of ``host``."""
    _require_modules("hypercorn", "httpbin", "aioquic")
    log_dir.mkdir(parents=True, exist_ok=True)
    app = Path(__file__).resolve().parent / "h3_app.py"
    argv = hypercorn_argv(f"{app}:app", host, cert, "--quic-bind", f"{host}:0")
    with ServerProcess(
        "hypercorn-h3",
        argv,
        log_path=log_dir / "hypercorn-h3.log",
        host=host,
        ready_pattern=QUIC_READY,
        cwd=log_dir,
        probe_tcp=False,
    ) as proc:
        bound = TCP_BOUND.search(proc.log_path.read_text(errors="replace"))
        assert bound is not None, f"hypercorn logged no TCP port in {proc.log_path}"
        yield H3Server(
            host=host,
            port=proc.port,
            ca_cert_path=ca_cert_path,
            log_path=proc.log_path,
            tcp_port=int(bound["port"]),
        )


def make_caddy_docroot(path: Path) -> str:
    """Write :data:`SMALL_FILE` and :data:`BIG_FILE` (pseudo-random bytes) below ``path``;
    return the SHA-256 of the big one."""
    path.mkdir(parents=True, exist_ok=True)
    (path / SMALL_FILE).write_bytes(SMALL_BODY)
    digest = hashlib.sha256()
    generator = random.Random(3)
    with (path / BIG_FILE).open("wb") as out:
        for _ in range(BIG_SIZE // (1 << 20)):
            block = generator.randbytes(1 << 20)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


@contextlib.contextmanager
def run_caddy(
    docroot: Path,
    big_sha256: str,
    log_dir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
    client_ca: Path | None = None,
) -> Iterator[CaddyServer]:
    """Run Caddy serving ``docroot`` over HTTP/1.1, HTTP/2 and HTTP/3 on a free port (the
    same number for TCP and UDP). Its admin endpoint is off; its state lives in ``log_dir``.

    With ``client_ca``, Caddy requires a client certificate issued by that CA. Its check that
    the TLS server name matches the Host header is then off: over HTTP/3, Caddy 2.6 sees no
    server name and would refuse every request (421).
    """
    caddy = require_binary("caddy")
    log_dir.mkdir(parents=True, exist_ok=True)
    state = {"XDG_DATA_HOME": str(log_dir / "data"), "XDG_CONFIG_HOME": str(log_dir / "config")}
    strict = "\t\tstrict_sni_host insecure_off\n" if client_ca is not None else ""
    tls = f"tls {cert.cert_path} {cert.key_path}"
    if client_ca is not None:
        tls += (
            " {\n\t\tclient_auth {\n\t\t\tmode require_and_verify\n"
            f"\t\t\ttrusted_ca_cert_file {client_ca}\n\t\t}}\n\t}}"
        )

    def argv(port: int) -> list[str]:
        config = log_dir / f"Caddyfile.{port}"
        config.write_text(
            "{\n\tadmin off\n\tauto_https disable_redirects\n"
            f"\tservers {{\n\t\tprotocols h1 h2 h3\n{strict}\t}}\n}}\n\n"
            f"https://{host}:{port}, https://localhost:{port} {{\n"
            f"\tbind {host}\n\t{tls}\n"
            f"\troot * {docroot}\n\tfile_server\n}}\n"
        )
        return [caddy, "run", "--config", str(config), "--adapter", "caddyfile"]

    with serve_on_free_port(
        "caddy", argv, log_dir=log_dir, host=host, ready_pattern=CADDY_READY, env=state
    ) as proc:
        yield CaddyServer(
            host=host,
            port=proc.port,
            ca_cert_path=ca_cert_path,
            log_path=proc.log_path,
            tcp_port=proc.port,
            docroot=docroot,
            big_sha256=big_sha256,
        )
