"""nginx serving HTTP/1.1 (and HTTP/2 over TLS) from a generated configuration.

One nginx master process (``daemon off; master_process on; worker_processes 1``)
serves three server blocks on free ports of 127.0.0.1:

* ``h2_tls``: TLS with HTTP/2 enabled, so ALPN selects ``h2`` (``http/1.1`` offered too);
* ``h11_tls``: TLS without HTTP/2, so ALPN selects ``http/1.1``;
* ``plain``: plaintext HTTP/1.1 (nginx does not implement the ``h2c`` upgrade).

Everything nginx writes lives under the given directory: pid and lock files, the
``*_temp_path`` directories, one access log per server block; the error log goes to
stderr, which :class:`~tests.support.processes.ServerProcess` copies to its log
file.  Running as root, the workers are told to run as the current user and group
too (nginx would otherwise switch them to ``nobody``, who cannot read pytest's
0700 temporary directories).

Every server block has the same locations (see :data:`LOCATIONS_DOC`).
:class:`LogView` reads a growing log file (also used for tinyproxy's log).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .certs import CertPaths
from .nghttpd import Docroot, make_docroot
from .processes import free_port, missing_requirement, require_binary, serve_on_free_port

#: Server block names, in the order their ports are allocated.
SERVER_NAMES: tuple[str, ...] = ("h2_tls", "h11_tls", "plain")
#: Status codes answered by ``/status/<code>`` (``return <code>``; 418 has no reason phrase).
STATUS_CODES: tuple[int, ...] = (200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 418, 500, 503)
#: Compressible text file added to the docroot (for ``/gzip/``).
TEXT_FILE = "text.txt"
#: Bandwidth limit of ``/slow/`` (nginx ``limit_rate`` syntax) and in bytes per second.
SLOW_RATE = "64k"
SLOW_RATE_BYTES = 64 * 1024
#: Body of ``/close``.
CLOSE_BODY = b"this connection closes after this response\n"
LOCATIONS_DOC = """\
/<file>            static docroot file (Content-Length, ranges, ETag); / is index.html
/chunked/<file>    same file, HTTP/1.1 Transfer-Encoding: chunked (SSI filter drops the length)
/chunked           index.html, chunked
/gzip/<file>       same file, Content-Encoding: gzip when the request accepts gzip (chunked)
/close             200 with Connection: close (keepalive_timeout 0); body CLOSE_BODY
/close/<file>      docroot file with Connection: close
/slow/<file>       docroot file sent at SLOW_RATE bytes per second
/redirect          301, Location: /index.html (relative)
/redirect/302      302, Location: /index.html (relative)
/redirect/absolute 301, Location: <scheme>://<host>:<port>/index.html
/status/<code>     <code> from STATUS_CODES, body "status <code>\\n" (none for 204/304)
request bodies are accepted (and discarded) by /status/*, /close and /redirect*
"""

#: Printed (error_log level notice) by the master after binding all listeners.
READY_PATTERN = r"start worker processes"
_VERSION_RE = re.compile(r"nginx/(\d+)\.(\d+)\.(\d+)")
#: nginx gained ``-e`` (startup error log) in 1.19.5 and ``http2 on;`` in 1.25.1.
_ERROR_LOG_OPTION_SINCE = (1, 19, 5)
_HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
_POLL_INTERVAL = 0.02


# -- logs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogView:
    """Read access to a log file another process appends to."""

    path: Path

    def position(self) -> int:
        """Current size of the log; pass it as ``since`` to look at later lines only."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, since: int = 0) -> str:
        """Log text from byte offset ``since`` on."""
        try:
            with self.path.open("rb") as log:
                log.seek(since)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines."""
        return "".join(self.read().splitlines(keepends=True)[-lines:])

    def wait_for(
        self, pattern: str | re.Pattern[str], *, since: int = 0, timeout: float = 5.0
    ) -> re.Match[str]:
        """Wait (bounded) until ``pattern`` matches the log text after ``since``.

        For logs written *after* the response went out (nginx's access log is
        written once the request is finalized), a client cannot rely on the line
        being there as soon as it has the response.

        :raises AssertionError: no match within ``timeout`` seconds.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        idle = threading.Event()  # never set: a bounded pause between reads of the file
        while True:
            match = regex.search(self.read(since))
            if match is not None:
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{regex.pattern!r} not in {self.path} within {timeout}s; "
                    f"log tail:\n{self.tail()}"
                )
            idle.wait(min(_POLL_INTERVAL, remaining))


# -- docroot -----------------------------------------------------------------------------------


def make_nginx_docroot(path: Path) -> Docroot:
    """The nghttpd docroot files (see :func:`~tests.support.nghttpd.make_docroot`) plus
    :data:`TEXT_FILE`, a compressible 64 KiB text file."""
    base = make_docroot(path)
    line = b"hyper test text: the quick brown fox jumps over the lazy dog.\n"
    text = (line * (64 * 1024 // len(line) + 1))[: 64 * 1024]
    (path / TEXT_FILE).write_bytes(text)
    return Docroot(
        path=base.path,
        files={**base.files, TEXT_FILE: hashlib.sha256(text).hexdigest()},
        sizes={**base.sizes, TEXT_FILE: len(text)},
    )


# -- fixture objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NginxServer:
    """One server block of a running nginx (see :data:`LOCATIONS_DOC` for its paths).

    ``files``/``sizes`` map docroot file names to sha256 hex digest / length;
    ``ca_cert_path`` is the CA to trust (None in plaintext); ``http2`` says whether
    ALPN offers ``h2``; ``log_path`` is nginx's error log (shared by the blocks),
    ``access_log_path`` this block's access log (format: see :data:`ACCESS_LOG_FORMAT`).
    """

    name: str
    host: str
    port: int
    tls: bool
    http2: bool
    docroot: Path
    files: Mapping[str, str]
    sizes: Mapping[str, int]
    ca_cert_path: Path | None
    log_path: Path
    access_log_path: Path
    pid: int

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls else "http"

    @property
    def authority(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def alpn_protocols(self) -> tuple[str, ...]:
        """Protocols nginx accepts in ALPN, preferred first (empty in plaintext)."""
        if not self.tls:
            return ()
        return ("h2", "http/1.1") if self.http2 else ("http/1.1",)

    @property
    def access_log(self) -> LogView:
        """This server block's access log."""
        return LogView(self.access_log_path)

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this server."""
        return f"{self.scheme}://{self.authority}{path}"

    def read(self, name: str) -> bytes:
        """Return the content of docroot file ``name``."""
        return (self.docroot / name).read_bytes()


@dataclass(frozen=True)
class NginxInstance:
    """The nginx master process and its server blocks (keyed by :data:`SERVER_NAMES`)."""

    pid: int
    version: tuple[int, int, int]
    conf_path: Path
    log_path: Path
    servers: Mapping[str, NginxServer]

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (children of the master), from ``/proc`` (Linux)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Fields after the parenthesised command name: state, ppid, ...
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[1]) == self.pid:
                    pids.append(int(stat.parent.name))
        return pids


#: Access log line: ``<client ip>:<client port> conn=<n> req=<n> "<request line>" <status>
#: <body bytes> <protocol> "<user agent>"``; ``conn`` is nginx's connection serial number
#: and ``req`` the request's number on that connection (keep-alive reuse shows as req > 1).
ACCESS_LOG_FORMAT = (
    '$remote_addr:$remote_port conn=$connection req=$connection_requests "$request" '
    '$status $body_bytes_sent $server_protocol "$http_user_agent"'
)


# -- configuration -----------------------------------------------------------------------------


def nginx_build(binary: str) -> tuple[tuple[int, int, int], str]:
    """``(version, configure arguments)`` of the nginx ``binary`` (``nginx -V``)."""
    result = subprocess.run(
        [binary, "-V"], capture_output=True, text=True, timeout=10, check=False
    )
    output = result.stdout + result.stderr
    match = _VERSION_RE.search(output)
    if match is None:
        raise RuntimeError(f"cannot parse the version of {binary}: {output!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return (major, minor, patch), output


def _quote(path: Path | str) -> str:
    text = str(path)
    if '"' in text or "\\" in text:
        raise ValueError(f"path unusable in an nginx config: {text!r}")
    return f'"{text}"'


def _user_directive() -> str:
    """``user`` line for a root master: workers keep the current identity.

    Not root: nginx cannot switch users, and the directive would only warn.
    """
    if os.geteuid() != 0:
        return ""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
    except KeyError:
        user, group = "root", "root"
    return f"user {user} {group};"


def _locations(docroot: Path) -> str:
    root = _quote(f"{docroot}/")
    statuses = "\n".join(
        f"        location = /status/{code} {{ return {code}; }}"
        if code in (204, 304)
        else f'        location = /status/{code} {{ return {code} "status {code}\\n"; }}'
        for code in STATUS_CODES
    )
    close_body = CLOSE_BODY.decode().replace("\n", "\\n")
    return f"""
        root {_quote(docroot)};
        index index.html;
        location / {{ }}
        location /chunked/ {{ alias {root}; ssi on; ssi_types *; }}
        location = /chunked {{
            alias {_quote(docroot / "index.html")};
            default_type text/html;
            ssi on;
        }}
        location /gzip/ {{
            alias {root};
            gzip on;
            gzip_min_length 0;
            gzip_types *;
            gzip_http_version 1.0;
            gzip_proxied any;
            gzip_vary on;
        }}
        location = /close {{ keepalive_timeout 0; return 200 "{close_body}"; }}
        location /close/ {{ alias {root}; keepalive_timeout 0; }}
        location /slow/ {{ alias {root}; limit_rate {SLOW_RATE}; }}
        location = /redirect {{ return 301 /index.html; }}
        location = /redirect/302 {{ return 302 /index.html; }}
        location = /redirect/absolute {{ absolute_redirect on; return 301 /index.html; }}
{statuses}
"""


def render_config(
    *,
    workdir: Path,
    docroot: Path,
    ports: Mapping[str, int],
    cert: CertPaths,
    version: tuple[int, int, int],
    host: str = "127.0.0.1",
) -> str:
    """The nginx configuration for the three server blocks (see the module docstring)."""
    temp = workdir / "temp"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / sub).mkdir(parents=True, exist_ok=True)
    new_http2 = version >= _HTTP2_DIRECTIVE_SINCE
    locations = _locations(docroot)
    blocks = []
    for name in SERVER_NAMES:
        tls = name.endswith("_tls")
        http2 = name == "h2_tls"
        listen = f"listen {host}:{ports[name]}" + (" ssl" if tls else "")
        if http2 and not new_http2:
            listen += " http2"
        lines = [f"        {listen};"]
        if http2 and new_http2:
            lines.append("        http2 on;")
        if tls:
            lines.append(f"        ssl_certificate {_quote(cert.cert_path)};")
            lines.append(f"        ssl_certificate_key {_quote(cert.key_path)};")
        lines.append(f"        access_log {_quote(workdir / f'access-{name}.log')} hyper;")
        blocks.append("    server {\n" + "\n".join(lines) + locations + "    }\n")
    return f"""\
# Generated for the hyper test suite.
daemon off;
master_process on;
worker_processes 1;
{_user_directive()}
pid {_quote(workdir / "nginx.pid")};
lock_file {_quote(workdir / "nginx.lock")};
error_log stderr notice;

events {{
    worker_connections 512;
}}

http {{
    types {{
        text/html html;
        text/plain txt;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    client_body_temp_path {_quote(temp / "body")};
    proxy_temp_path {_quote(temp / "proxy")};
    fastcgi_temp_path {_quote(temp / "fastcgi")};
    uwsgi_temp_path {_quote(temp / "uwsgi")};
    scgi_temp_path {_quote(temp / "scgi")};
    log_format hyper '{ACCESS_LOG_FORMAT}';
    sendfile on;
    keepalive_timeout 300s;
    keepalive_requests 10000;
    client_max_body_size 0;
    absolute_redirect off;
{"".join(blocks)}}}
"""


def _distinct_free_ports(first: int, count: int, host: str) -> list[int]:
    ports = [first]
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


@contextlib.contextmanager
def run_nginx(
    docroot: Docroot,
    workdir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
) -> Iterator[NginxInstance]:
    """Run one nginx with the ``h2_tls``, ``h11_tls`` and ``plain`` server blocks.

    ``workdir`` receives the configuration, logs, pid file and temp directories.
    A missing binary (or one without the SSL/HTTP/2 modules) skips, or fails under CI.
    """
    binary = require_binary("nginx")
    version, build = nginx_build(binary)
    for module in ("--with-http_ssl_module", "--with-http_v2_module"):
        if module not in build:
            missing_requirement(f"{binary} was built without {module}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)  # default error log dir of some builds
    conf_path = workdir / "nginx.conf"
    chosen: dict[str, int] = {}

    def argv(port: int) -> list[str]:
        # Called once per start attempt (with the port probed for readiness).
        ports = dict(
            zip(SERVER_NAMES, _distinct_free_ports(port, len(SERVER_NAMES), host), strict=True)
        )
        chosen.clear()
        chosen.update(ports)
        conf_path.write_text(
            render_config(
                workdir=workdir,
                docroot=docroot.path,
                ports=ports,
                cert=cert,
                version=version,
                host=host,
            )
        )
        args = [binary, "-c", str(conf_path), "-p", f"{workdir}/"]
        if version >= _ERROR_LOG_OPTION_SINCE:
            args += ["-e", "stderr"]
        return args

    # Readiness is nginx's own line, printed once every listener is bound: a TCP probe
    # alone could be answered by whoever won a race for the port while nginx still
    # retries bind() (it does for ~2.5 s before giving up with "Address already in use").
    with serve_on_free_port(
        "nginx", argv, log_dir=workdir, host=host, ready_pattern=READY_PATTERN
    ) as proc:
        assert proc.pid is not None
        servers = {
            name: NginxServer(
                name=name,
                host=host,
                port=chosen[name],
                tls=name.endswith("_tls"),
                http2=name == "h2_tls",
                docroot=docroot.path,
                files=docroot.files,
                sizes=docroot.sizes,
                ca_cert_path=ca_cert_path if name.endswith("_tls") else None,
                log_path=proc.log_path,
                access_log_path=workdir / f"access-{name}.log",
                pid=proc.pid,
            )
            for name in SERVER_NAMES
        }
        yield NginxInstance(
            pid=proc.pid,
            version=version,
            conf_path=conf_path,
            log_path=proc.log_path,
            servers=servers,
        )
