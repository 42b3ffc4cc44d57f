"""The local servers: a trustme CA and certificate, a docroot, nghttpd, nginx and Caddy.

nghttpd serves the HTTP/2 workloads over TLS; nginx serves the HTTP/1.1 ones, in
plaintext and over TLS (ALPN http/1.1); Caddy serves the HTTP/3 ones (QUIC, on UDP).
:func:`servers` starts the ones a run needs and yields its endpoints by name
(:attr:`Workload.endpoint`).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.workloads import WARMUP_PATH, WARMUP_SIZE, Workload

HOST = "127.0.0.1"

#: One worker thread: the benchmark uses one connection at a time, and the box has
#: two cores (one for the server, one for the client). nghttpd logs nothing unless
#: ``-v`` is given. It allows 1,000 concurrent streams (default 100) for the memory
#: workload, and advertises 16 MiB receive windows (stream and connection; default
#: 64 KiB) so that the upload measures the client rather than nghttpd's window
#: updates. Both settings only concern what the *client* may send or open; downloads
#: are governed by the clients' own windows.
NGHTTPD_OPTIONS = (
    "--workers=1",
    "--max-concurrent-streams=1000",
    "--window-bits=24",
    "--connection-window-bits=24",
)


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
    """Where a running server listens, and the CA to verify it with (when ``secure``).

    ``program``, ``server_args`` and ``config`` (nginx's generated configuration) are
    recorded in the JSON. ``status_port`` is set when nginx's ``stub_status`` can be
    read there (see :func:`nginx_counters`).
    """

    host: str
    port: int
    ca: Path
    server_args: tuple[str, ...]
    secure: bool = True
    program: str = "nghttpd"
    config: str = ""
    status_port: int | None = None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.secure else "http"

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def to_json(self) -> dict[str, object]:
        """What the JSON document records about this endpoint."""
        record: dict[str, object] = {
            "program": self.program,
            "scheme": self.scheme,
            "args": list(self.server_args),
        }
        if self.config:
            record["config"] = self.config
        return record


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


# --- nginx: HTTP/1.1 in plaintext and over TLS -------------------------------------------------

#: Far beyond any run, so that nginx never closes a client's connection during one (its
#: defaults, 1,000 requests and 75 s, would end long runs' connections).
NGINX_KEEPALIVE_REQUESTS = 1_000_000
NGINX_KEEPALIVE_TIMEOUT = "600s"

#: Where nginx's stub_status answers (on the plaintext listener), when it is compiled in.
NGINX_STATUS_PATH = "/nginx-status"

#: stub_status's line of totals: accepted connections, handled connections, requests.
_STUB_STATUS = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", re.M)

#: Where Debian and source builds put nginx, which non-root users may not have on PATH.
_NGINX_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")


@dataclass(frozen=True)
class NginxCounters:
    """nginx's totals since it started, over all listeners (from stub_status)."""

    accepts: int
    requests: int


def find_nginx() -> str | None:
    """Return the nginx executable, looking also in the usual sbin directories."""
    return shutil.which("nginx") or shutil.which("nginx", path=os.pathsep.join(_NGINX_DIRS))


def nginx_version() -> str:
    """Return nginx's version line, or ``"missing"``."""
    exe = find_nginx()
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10)
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")


def _nginx_has_stub_status(exe: str) -> bool:
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10)
    return "http_stub_status_module" in out.stderr + out.stdout


def _quote(path: Path) -> str:
    """``path`` as a quoted nginx configuration string."""
    text = str(path.absolute())
    if any(c in text for c in '"\\$;{}') or "\n" in text:
        raise ServerError(f"cannot use {text!r} in an nginx configuration")
    return f'"{text}"'


def _user_directive() -> str:
    """``user <user> <group>;`` when running as root, so workers can read our files.

    As root, nginx's workers would otherwise run as ``nobody``, who cannot read the
    docroot inside our 0700 temporary directory. Otherwise the workers run as we do.
    """
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};\n"


def nginx_config(
    prefix: Path, docroot: Path, tls: TlsFiles, ports: tuple[int, int], *, status: bool
) -> str:
    """The whole nginx configuration: one worker, no access log, every path under ``prefix``.

    ``ports`` are the plaintext and the TLS listeners' ports; both serve ``docroot``.
    """
    plain_port, tls_port = ports
    temp = {
        name: _quote(prefix / name)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    status_block = (
        f"        location = {NGINX_STATUS_PATH} {{\n            stub_status;\n        }}\n"
        if status
        else ""
    )
    return f"""\
# Generated by bench/harness/server.py for one benchmark run.
daemon off;
master_process on;
worker_processes 1;
pid {_quote(prefix / "nginx.pid")};
lock_file {_quote(prefix / "nginx.lock")};
error_log {_quote(prefix / "nginx.log")} notice;
{_user_directive()}
events {{
    worker_connections 64;
}}

http {{
    access_log off;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    types {{ }}
    default_type application/octet-stream;
    keepalive_requests {NGINX_KEEPALIVE_REQUESTS};
    keepalive_timeout {NGINX_KEEPALIVE_TIMEOUT};

    server {{
        listen {HOST}:{plain_port};
        root {_quote(docroot)};
{status_block}    }}

    server {{
        listen {HOST}:{tls_port} ssl;
        ssl_certificate {_quote(tls.cert)};
        ssl_certificate_key {_quote(tls.key)};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {_quote(docroot)};
    }}
}}
"""


@contextlib.contextmanager
def nginx(
    tls: TlsFiles, docroot: Path, prefix: Path, start_timeout: float = 10.0
) -> Iterator[dict[str, Target]]:
    """Run nginx on two free ports of 127.0.0.1 for the duration of the block.

    Yields the ``nginx-plain`` and ``nginx-tls`` endpoints. Its configuration, pid file,
    temporary directories and log are all under ``prefix``. nginx is ready once it has
    logged ``start worker processes`` (so it bound both ports: nobody else answers
    there), both ports accept connections, and a GET of the warm-up file answers 200
    with the right length (which also proves that the worker can read the docroot).
    """
    exe = find_nginx()
    if exe is None:
        raise ServerError("nginx not found on PATH (Debian: apt-get install nginx-light)")
    prefix = prefix.absolute()
    docroot = docroot.absolute()
    prefix.mkdir(parents=True, exist_ok=True)
    status = _nginx_has_stub_status(exe)
    log_path, conf_path = prefix / "nginx.log", prefix / "nginx.conf"
    for _attempt in range(3):  # a free port may be taken before nginx binds it
        ports = (free_port(), free_port())
        if ports[0] == ports[1]:
            continue
        config = nginx_config(prefix, docroot, tls, ports, status=status)
        conf_path.write_text(config)
        args = ("-p", f"{prefix}/", "-c", str(conf_path), "-e", str(log_path))
        log_start = log_path.stat().st_size if log_path.exists() else 0
        proc = _spawn([exe, *args], log_path, new_session=True)
        try:
            if _wait_nginx(proc, ports, log_path, log_start, start_timeout):
                _probe("nginx", ports[0], proc, log_path, start_timeout)
                plain = Target(
                    HOST,
                    ports[0],
                    tls.ca,
                    server_args=args,
                    secure=False,
                    program="nginx",
                    config=config,
                    status_port=ports[0] if status else None,
                )
                yield {
                    "nginx-plain": plain,
                    "nginx-tls": dataclasses.replace(plain, port=ports[1], secure=True),
                }
                return
        finally:
            _stop(proc, group=True)
        if b"Address already in use" not in _read_from(log_path, log_start):
            break  # not a lost race for a port: trying again would not help
    raise ServerError(f"nginx did not start: {_tail(log_path)}")


def _wait_nginx(
    proc: subprocess.Popen[bytes],
    ports: tuple[int, int],
    log_path: Path,
    log_start: int,
    timeout: float,
) -> bool:
    """Wait until nginx has started its worker and both ports accept connections.

    False if nginx exited first (e.g. a port was taken); ServerError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if b"start worker processes" in _read_from(log_path, log_start) and all(
            _accepts(port) for port in ports
        ):
            return True
        time.sleep(0.05)
    raise ServerError(f"nginx did not start within {timeout:.0f} s: {_tail(log_path)}")


def _read_from(path: Path, offset: int) -> bytes:
    """The bytes of ``path`` from ``offset`` on (empty if it cannot be read)."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read()
    except OSError:
        return b""


def _probe(
    name: str,
    port: int,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float,
    ca: Path | None = None,
) -> None:
    """GET the warm-up file (over TLS trusting ``ca`` if given, else in plaintext); raise
    ServerError unless it is served whole."""
    if ca is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    else:
        context = ssl.create_default_context(cafile=str(ca))
        conn = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=context)
    try:
        conn.request("GET", WARMUP_PATH)
        response = conn.getresponse()
        size = len(response.read())
    except (OSError, http.client.HTTPException) as exc:
        raise ServerError(f"{name} does not answer: {exc}; log: {_tail(log_path)}") from exc
    finally:
        conn.close()
    if response.status != 200 or size != WARMUP_SIZE:
        raise ServerError(
            f"{name} answered GET {WARMUP_PATH} with {response.status}, {size} bytes "
            f"(expected 200, {WARMUP_SIZE}); log: {_tail(log_path)}"
        )
    if proc.poll() is not None:
        raise ServerError(f"{name} exited: {_tail(log_path)}")


def nginx_counters(target: Target) -> NginxCounters | None:
    """nginx's connection and request totals, or None when ``target`` has no stub_status.

    Reading them is itself one connection and one request, both already counted in
    the figures returned.
    """
    if target.status_port is None:
        return None
    conn = http.client.HTTPConnection(target.host, target.status_port, timeout=10)
    try:
        conn.request("GET", NGINX_STATUS_PATH)
        response = conn.getresponse()
        text = response.read().decode("ascii", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise ServerError(f"cannot read nginx's status: {exc}") from exc
    finally:
        conn.close()
    match = _STUB_STATUS.search(text)
    if response.status != 200 or match is None:
        raise ServerError(f"unexpected nginx status: {response.status} {text[:100]!r}")
    return NginxCounters(accepts=int(match.group(1)), requests=int(match.group(3)))


# --- Caddy: HTTP/3 (QUIC) ----------------------------------------------------------------------

#: Caddy logs this once every listener, the UDP one included, is up.
CADDY_READY = b"serving initial configuration"

#: Caddy's Go runtime gets one core, as nghttpd and nginx run one worker: the box has two
#: cores, one for the server and one for the client.
CADDY_MAXPROCS = "1"


def caddy_version() -> str:
    """Return Caddy's version, or ``"missing"``."""
    exe = shutil.which("caddy")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=10)
    return (out.stdout.strip() or out.stderr.strip()).split()[0]


def caddy_config(docroot: Path, tls: TlsFiles, port: int) -> str:
    """The Caddyfile: a static file server on ``port`` of 127.0.0.1, TCP and UDP (HTTP/3).

    No admin endpoint, no access log, no redirect listener on port 80.
    """
    return (
        "{\n\tadmin off\n\tauto_https disable_redirects\n"
        "\tservers {\n\t\tprotocols h1 h2 h3\n\t}\n}\n\n"
        f"https://{HOST}:{port} {{\n\tbind {HOST}\n"
        f"\ttls {_caddy_path(tls.cert)} {_caddy_path(tls.key)}\n"
        f"\troot * {_caddy_path(docroot)}\n\tfile_server\n}}\n"
    )


def _caddy_path(path: Path) -> str:
    """``path`` as one Caddyfile token."""
    text = str(path.absolute())
    if any(c.isspace() or c in '"{}' for c in text):
        raise ServerError(f"cannot use {text!r} in a Caddyfile")
    return text


@contextlib.contextmanager
def caddy(
    tls: TlsFiles, docroot: Path, prefix: Path, start_timeout: float = 10.0
) -> Iterator[Target]:
    """Run Caddy serving ``docroot`` over HTTP/3 on a free port of 127.0.0.1.

    It listens on the same port number over TCP (HTTP/1.1 and HTTP/2) and UDP (HTTP/3);
    the workloads use UDP. Its configuration, log and state (``XDG_*`` directories) are
    under ``prefix``. It is ready once it has logged :data:`CADDY_READY` and a GET of the
    warm-up file over TCP answers 200 with the right length.
    """
    exe = shutil.which("caddy")
    if exe is None:
        raise ServerError("caddy not found on PATH (Debian: apt-get install caddy)")
    prefix = prefix.absolute()
    prefix.mkdir(parents=True, exist_ok=True)
    log_path, conf_path = prefix / "caddy.log", prefix / "Caddyfile"
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(prefix / "data"),
        "XDG_CONFIG_HOME": str(prefix / "config"),
        "GOMAXPROCS": CADDY_MAXPROCS,
    }
    for _attempt in range(3):  # a free port may be taken before Caddy binds it
        port = free_port()
        config = caddy_config(docroot, tls, port)
        conf_path.write_text(config)
        args = ("run", "--config", str(conf_path), "--adapter", "caddyfile")
        log_start = log_path.stat().st_size if log_path.exists() else 0
        proc = _spawn([exe, *args], log_path, env=env)
        try:
            if _wait_logged(proc, log_path, log_start, CADDY_READY, start_timeout):
                _probe("caddy", port, proc, log_path, start_timeout, tls.ca)
                yield Target(
                    HOST,
                    port,
                    tls.ca,
                    server_args=args,
                    program="caddy",
                    config=config,
                )
                return
        finally:
            _stop(proc)
        if b"address already in use" not in _read_from(log_path, log_start):
            break  # not a lost race for a port: trying again would not help
    raise ServerError(f"caddy did not start: {_tail(log_path)}")


def _wait_logged(
    proc: subprocess.Popen[bytes], log_path: Path, log_start: int, line: bytes, timeout: float
) -> bool:
    """Wait until ``proc`` has logged ``line``; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if line in _read_from(log_path, log_start):
            return True
        time.sleep(0.05)
    raise ServerError(f"the server did not start within {timeout:.0f} s: {_tail(log_path)}")


# --- all of them ---------------------------------------------------------------------------------


def server_missing(server: str) -> str | None:
    """Why ``server`` (``"nghttpd"``, ``"nginx"``, ``"caddy"``) cannot run here, or None if
    it can."""
    if server == "nghttpd" and shutil.which("nghttpd") is None:
        return "nghttpd not found on PATH (Debian: apt-get install nghttp2-server)"
    if server == "nginx" and find_nginx() is None:
        return "nginx not found on PATH (Debian: apt-get install nginx-light)"
    if server == "caddy" and shutil.which("caddy") is None:
        return "caddy not found on PATH (Debian: apt-get install caddy)"
    return None  # "none": the import-time workload needs no server


@contextlib.contextmanager
def servers(
    workloads: Iterable[Workload], tls: TlsFiles, docroot: Path, scratch: Path
) -> Iterator[dict[str, Target]]:
    """Start the servers ``workloads`` need; yield their endpoints by name."""
    needed = {w.server for w in workloads}
    with contextlib.ExitStack() as stack:
        targets: dict[str, Target] = {}
        if "nghttpd" in needed:
            log = scratch / "nghttpd.log"
            targets["nghttpd-tls"] = stack.enter_context(nghttpd(tls, docroot, log))
        if "nginx" in needed:
            targets.update(stack.enter_context(nginx(tls, docroot, scratch / "nginx")))
        if "caddy" in needed:
            targets["caddy-tls"] = stack.enter_context(caddy(tls, docroot, scratch / "caddy"))
        if "none" in needed:
            # No server: a placeholder, so that every workload has a target.
            targets["none"] = Target(HOST, 0, tls.ca, server_args=(), secure=False, program="none")
        yield targets


# --- process handling ----------------------------------------------------------------------------


def _spawn(
    cmd: list[str],
    log_path: Path,
    *,
    new_session: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output in ``log_path``; it dies if we die.

    With ``new_session`` it leads its own process group, so that :func:`_stop` can
    also kill the children it forked (nginx's worker) if it has to kill it.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            start_new_session=new_session,
            env=env,
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
        if _accepts(port):
            return True
        time.sleep(0.05)
    raise ServerError(f"nghttpd did not listen on port {port} within {timeout:.0f} s")


def _accepts(port: int) -> bool:
    """Whether ``port`` of :data:`HOST` accepts a TCP connection right now."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """Terminate ``proc``, killing it if it does not exit promptly.

    With ``group`` (a process started with ``new_session``), a kill goes to its whole
    process group, so that children it forked (nginx's worker) do not outlive it. The
    group is killed before ``proc`` is reaped, while its id cannot name anything else.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait(timeout=5)


def _tail(path: Path, lines: int = 5) -> str:
    """Return the last ``lines`` lines of a log file, on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
