"""nghttpd, nginx and hypercorn configured for the interop matrix.

The suite's usual fixtures for these servers (``nghttpd_tls``, ``nginx_*``,
``http2bin_*``) serve other document roots and lack what the matrix needs (a trailer, a
push, an echo on nginx, h2c on nginx, the 100 MiB file), so the matrix runs its own
instances, built from the same helpers:

* nghttpd (TLS, and ``--no-tls``): ``--echo-upload``,
  ``--trailer 'x-interop-trailer: yes'`` (on every response with a body) and
  ``--push=/push/page.html=/push/style.css``.
* nginx: four server blocks -- ``h2_tls``, ``h11_tls``, ``plain`` (HTTP/1.1) and ``h2c``
  (``listen ... http2`` without TLS: prior knowledge only; nginx has no ``Upgrade: h2c``).
  ``/echo`` echoes the body with stock modules: ``mirror_request_body`` makes nginx read
  the whole body into memory (``client_body_buffer_size`` 16m), the static handler answers
  404/405, and ``error_page`` sends that to a named location doing
  ``return 200 $request_body``.  ``/trailers/`` adds ``add_trailer`` (and SSI, which
  drops the content length so that HTTP/1.1 uses chunked coding, the only way to carry
  trailers), ``/push/page.html`` has ``http2_push`` (nginx < 1.25.1), ``/gzip/`` gzip.
* hypercorn (TLS, and plaintext) serving :mod:`tests.support.interop_app`.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.metadata
import os
import pwd
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import interop_app
from .certs import CertPaths
from .http2bin import READY_PATTERN as HYPERCORN_READY_PATTERN
from .http2bin import _require_modules, hypercorn_argv
from .interop import (
    PUSH_PAGE,
    PUSHED_FILE,
    TRAILER,
    Endpoint,
    InteropDocroot,
    InteropTarget,
)
from .nghttpd import Docroot, run_nghttpd
from .nginx import READY_PATTERN as NGINX_READY_PATTERN
from .nginx import nginx_build
from .processes import (
    ServerProcess,
    missing_requirement,
    more_free_ports,
    require_binary,
    serve_on_free_port,
)

_TRAILER_TEXT = f"{TRAILER[0].decode()}: {TRAILER[1].decode()}"

# -- nghttpd -----------------------------------------------------------------------------------


def _nghttpd_version() -> str:
    binary = require_binary("nghttpd")
    result = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return (result.stdout or result.stderr).strip() or "nghttpd (unknown version)"


@contextlib.contextmanager
def run_interop_nghttpd(
    docroot: InteropDocroot, log_dir: Path, *, cert: CertPaths, ca_cert_path: Path
) -> Iterator[InteropTarget]:
    """Two nghttpd processes (TLS and h2c) with echo, gzipped errors, a trailer and a push."""
    version = _nghttpd_version()
    as_docroot = Docroot(path=docroot.path, files=docroot.files, sizes=docroot.sizes)
    extra = (
        f"--trailer={_TRAILER_TEXT}",
        f"--push=/{PUSH_PAGE}=/{PUSHED_FILE}",
    )
    with (
        run_nghttpd(
            as_docroot, log_dir / "tls", cert=cert, ca_cert_path=ca_cert_path, extra_args=extra
        ) as tls,
        run_nghttpd(as_docroot, log_dir / "h2c", extra_args=extra) as h2c,
    ):
        plain = Endpoint(h2c.host, h2c.port, tls=False)
        yield InteropTarget(
            name="nghttpd",
            version=version,
            docroot=docroot,
            ca_cert_path=ca_cert_path,
            endpoints={
                "h2-tls": Endpoint(tls.host, tls.port, tls=True),
                "h2c-upgrade": plain,
                "h2c-prior": plain,
            },
            # The trailer comes with every response that has a body.
            paths={"trailers": "/index.html"},
            upgrade=False,
        )


# -- nginx -------------------------------------------------------------------------------------

NGINX_BLOCKS: tuple[str, ...] = ("h2_tls", "h11_tls", "plain", "h2c")
_HTTP2_DIRECTIVE_SINCE = (1, 25, 1)  # ``http2 on;``; ``http2_push`` was removed then too


def _nginx_user() -> str:
    """Keep root's workers as the current user: they read pytest's private directories."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


def render_nginx_config(
    *,
    workdir: Path,
    docroot: Path,
    ports: Mapping[str, int],
    cert: CertPaths,
    version: tuple[int, int, int],
    host: str = "127.0.0.1",
) -> str:
    """The nginx configuration of the four server blocks (see the module docstring)."""
    new_http2 = version >= _HTTP2_DIRECTIVE_SINCE
    push = "" if new_http2 else f" http2_push /{PUSHED_FILE};"
    trailer = f"add_trailer {TRAILER[0].decode()} {TRAILER[1].decode()};"
    locations = f"""
        root "{docroot}";
        location / {{ }}
        location = /echo {{
            client_body_buffer_size 16m;
            client_body_in_single_buffer on;
            mirror /_mirror;
            mirror_request_body on;
            error_page 404 405 =200 @echo;
        }}
        location = /_mirror {{ internal; return 204; }}
        location @echo {{ default_type application/octet-stream; return 200 $request_body; }}
        location /gzip/ {{
            alias "{docroot}/";
            gzip on; gzip_min_length 0; gzip_types *; gzip_http_version 1.0; gzip_proxied any;
        }}
        location /trailers/ {{ alias "{docroot}/"; {trailer} ssi on; ssi_types *; }}
        location = /{PUSH_PAGE} {{{push} }}
"""
    blocks = []
    for name in NGINX_BLOCKS:
        tls = name.endswith("_tls")
        http2 = name in ("h2_tls", "h2c")
        listen = f"listen {host}:{ports[name]}" + (" ssl" if tls else "")
        if http2 and not new_http2:
            listen += " http2"
        lines = [f"        {listen};"]
        if http2 and new_http2:
            lines.append("        http2 on;")
        if tls:
            lines.append(f'        ssl_certificate "{cert.cert_path}";')
            lines.append(f'        ssl_certificate_key "{cert.key_path}";')
        blocks.append("    server {\n" + "\n".join(lines) + locations + "    }\n")
    temp = workdir / "temp"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / sub).mkdir(parents=True, exist_ok=True)
    temps = "\n".join(f'    {sub}_temp_path "{temp / sub}";' for sub in ("proxy", "fastcgi"))
    temps += "\n" + "\n".join(f'    {sub}_temp_path "{temp / sub}";' for sub in ("uwsgi", "scgi"))
    return f"""\
# Generated for the hyper interop matrix.
daemon off;
master_process on;
worker_processes 1;
{_nginx_user()}
pid "{workdir / "nginx.pid"}";
error_log stderr notice;
events {{ worker_connections 512; }}
http {{
    types {{ text/html html; text/plain txt; text/css css; application/octet-stream bin; }}
    default_type application/octet-stream;
    client_body_temp_path "{temp / "body"}";
{temps}
    access_log "{workdir / "access.log"}";
    sendfile on;
    keepalive_timeout 300s;
    keepalive_requests 10000;
    client_max_body_size 0;
{"".join(blocks)}}}
"""


@contextlib.contextmanager
def run_interop_nginx(
    docroot: InteropDocroot,
    workdir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
) -> Iterator[InteropTarget]:
    """One nginx master with the four interop server blocks on free ports."""
    binary = require_binary("nginx")
    version, build = nginx_build(binary)
    for module in ("--with-http_ssl_module", "--with-http_v2_module"):
        if module not in build:
            missing_requirement(f"{binary} was built without {module}")
    workdir.mkdir(parents=True, exist_ok=True)
    conf_path = workdir / "nginx.conf"
    chosen: dict[str, int] = {}

    def argv(port: int) -> list[str]:
        ports = more_free_ports(host, port, len(NGINX_BLOCKS))
        chosen.clear()
        chosen.update(zip(NGINX_BLOCKS, ports, strict=True))
        conf_path.write_text(
            render_nginx_config(
                workdir=workdir,
                docroot=docroot.path,
                ports=chosen,
                cert=cert,
                version=version,
                host=host,
            )
        )
        return [binary, "-c", str(conf_path), "-p", f"{workdir}/", "-e", "stderr"]

    with serve_on_free_port(
        "nginx-interop", argv, log_dir=workdir, host=host, ready_pattern=NGINX_READY_PATTERN
    ):
        yield InteropTarget(
            name="nginx",
            version="nginx/" + ".".join(map(str, version)),
            docroot=docroot,
            ca_cert_path=ca_cert_path,
            endpoints={
                "h2-tls": Endpoint(host, chosen["h2_tls"], tls=True),
                "h11-tls": Endpoint(host, chosen["h11_tls"], tls=True, h2_in_alpn=False),
                # No Upgrade: h2c in nginx; hyper falls back to prior knowledge.
                "h2c-upgrade": Endpoint(host, chosen["h2c"], tls=False),
                "h2c-prior": Endpoint(host, chosen["h2c"], tls=False),
            },
            push=version < _HTTP2_DIRECTIVE_SINCE,
            upgrade=False,
        )


# -- hypercorn ---------------------------------------------------------------------------------

_APP_SPEC = f"{Path(interop_app.__file__).resolve()}:app"


def _hypercorn(
    docroot: InteropDocroot, log_dir: Path, name: str, cert: CertPaths | None, host: str
) -> ServerProcess:
    return ServerProcess(
        name,
        hypercorn_argv(_APP_SPEC, host, cert),
        log_path=log_dir / f"{name}.log",
        host=host,
        ready_pattern=HYPERCORN_READY_PATTERN,
        env={interop_app.DOCROOT_ENV: str(docroot.path)},
        cwd=log_dir,
    )


@contextlib.contextmanager
def run_interop_hypercorn(
    docroot: InteropDocroot,
    log_dir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
) -> Iterator[InteropTarget]:
    """Two hypercorn processes serving the interop app: TLS (h2, http/1.1) and plaintext."""
    _require_modules("hypercorn")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        _hypercorn(docroot, log_dir, "hypercorn-interop-tls", cert, host) as tls,
        _hypercorn(docroot, log_dir, "hypercorn-interop-plain", None, host) as plain,
    ):
        plain_endpoint = Endpoint(host, plain.port, tls=False)
        tls_endpoint = Endpoint(host, tls.port, tls=True)
        yield InteropTarget(
            name="hypercorn",
            version="hypercorn " + importlib.metadata.version("hypercorn"),
            docroot=docroot,
            ca_cert_path=ca_cert_path,
            endpoints={
                "h2-tls": tls_endpoint,
                "h11-tls": tls_endpoint,
                "h2c-upgrade": plain_endpoint,
                "h2c-prior": plain_endpoint,
            },
        )
