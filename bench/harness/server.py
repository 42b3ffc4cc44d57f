"""The local server: a trustme CA and certificate, a docroot, and nghttpd over TLS."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"

#: One worker thread: the benchmark uses one connection at a time, and the box has
#: two cores (one for the server, one for the client). nghttpd logs nothing unless
#: ``-v`` is given.
NGHTTPD_OPTIONS = ("--workers=1",)


class ServerError(RuntimeError):
    """The server could not be prepared or started."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA clients trust, and the server's key and certificate chain."""

    ca: Path
    key: Path
    cert: Path


@dataclass(frozen=True)
class Target:
    """Where the running server listens, and the CA to verify it with."""

    host: str
    port: int
    ca: Path
    server_args: tuple[str, ...]

    def url(self, path: str) -> str:
        """Return the https URL of ``path`` on this server."""
        return f"https://{self.host}:{self.port}{path}"


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(HOST, "localhost")
    files = TlsFiles(
        ca=directory / "ca.pem", key=directory / "key.pem", cert=directory / "cert.pem"
    )
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    with files.cert.open("wb") as chain:
        for pem in server.cert_chain_pems:
            chain.write(pem.bytes())
    return files


def make_docroot(directory: Path, files: Mapping[str, int]) -> Path:
    """Create ``directory`` holding one file of random bytes per ``name -> size``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, size in files.items():
        _write_random_file(directory / name, size)
    return directory


def _write_random_file(path: Path, size: int, block_size: int = 2**20) -> None:
    """Write ``size`` bytes made of one random block repeated (fast, not sparse)."""
    block = os.urandom(min(size, block_size))
    with path.open("wb") as out:
        remaining = size
        while remaining:
            piece = block[:remaining]
            out.write(piece)
            remaining -= len(piece)


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def nghttpd_version() -> str:
    """Return nghttpd's version line, or ``"missing"``."""
    exe = shutil.which("nghttpd")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip() or out.stderr.strip()


@contextlib.contextmanager
def nghttpd(
    tls: TlsFiles, docroot: Path, log_path: Path, start_timeout: float = 10.0
) -> Iterator[Target]:
    """Run nghttpd on a free port of 127.0.0.1 for the duration of the block."""
    exe = shutil.which("nghttpd")
    if exe is None:
        raise ServerError("nghttpd not found on PATH (Debian: apt-get install nghttp2-server)")
    for _attempt in range(3):  # the free port may be taken before nghttpd binds it
        port = free_port()
        args = (f"--address={HOST}", f"--htdocs={docroot}", *NGHTTPD_OPTIONS)
        proc = _spawn([exe, *args, str(port), str(tls.key), str(tls.cert)], log_path)
        try:
            if _wait_listening(proc, port, start_timeout):
                yield Target(host=HOST, port=port, ca=tls.ca, server_args=args)
                return
        finally:
            _stop(proc)
    raise ServerError(f"nghttpd did not start: {_tail(log_path)}")


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output in ``log_path``; it dies if we die."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (best effort)."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Wait until ``port`` accepts connections; False if ``proc`` exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        time.sleep(0.05)
    raise ServerError(f"nghttpd did not listen on port {port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc``, killing it if it does not exit promptly."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _tail(path: Path, lines: int = 5) -> str:
    """Return the last ``lines`` lines of a log file, on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
