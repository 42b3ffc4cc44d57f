"""Debian's ``h2o`` (2.2) serving the interop document root, over TLS and in plaintext.

One h2o process (``num-threads: 1``) listens on two free ports of 127.0.0.1: one with
TLS (ALPN offers ``h2`` and ``http/1.1``; h2o has no switch to leave ``h2`` out) and one
in plaintext (HTTP/1.1, ``Upgrade: h2c`` and h2c with prior knowledge).  Paths:

* ``/<file>``: the document root (``file.dir``);
* ``/echo``: an mruby handler answering ``200`` with the request body (h2o 2.2 has no
  other way to show what it received);
* ``/gzip/<file>``: the document root with ``compress: ON`` (gzip when the request
  accepts only gzip);
* ``/push/page.html``: an mruby handler answering ``399`` (delegate to the next handler)
  with ``link: </push/style.css>; rel=preload``, which h2o turns into a push
  (``http2-push-preload``, on by default), then the file itself.

h2o writes its pid file and logs under the work directory; the error and access logs go
to stderr/stdout, which :class:`~tests.support.processes.ServerProcess` copies to its log.
Started as root, h2o would switch to ``nobody``; ``user`` keeps the current user instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .certs import CertPaths
from .interop import PUSH_PAGE, PUSHED_FILE, Endpoint, InteropDocroot, InteropTarget
from .processes import more_free_ports, require_binary, serve_on_free_port


def h2o_version(binary: str) -> str:
    """``h2o version 2.2.5`` (first line of ``h2o --version``)."""
    result = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0] if first else "h2o (unknown version)"


def _q(value: str | Path) -> str:
    # JSON strings are valid YAML scalars: no quoting surprises with paths.
    return json.dumps(str(value))


def render_config(
    *,
    workdir: Path,
    docroot: Path,
    tls_port: int,
    plain_port: int,
    cert: CertPaths,
    host: str = "127.0.0.1",
) -> str:
    """The h2o YAML configuration (see the module docstring)."""
    echo = (
        "Proc.new do |env|\n"
        '  body = env["rack.input"] ? env["rack.input"].read : ""\n'
        '  [200, {"content-type" => "application/octet-stream"}, [body]]\n'
        "end\n"
    )
    push = f'Proc.new do |env|\n  [399, {{"link" => "</{PUSHED_FILE}>; rel=preload"}}, []]\nend\n'
    user = pwd.getpwuid(os.geteuid()).pw_name

    def block(code: str, indent: str) -> str:
        return "|\n" + "".join(f"{indent}{line}\n" for line in code.splitlines())

    return f"""\
# Generated for the hyper interop matrix.
pid-file: {_q(workdir / "h2o.pid")}
error-log: /dev/stderr
access-log: /dev/stdout
num-threads: 1
user: {_q(user)}
hosts:
  default:
    listen:
      host: {host}
      port: {tls_port}
      ssl:
        certificate-file: {_q(cert.cert_path)}
        key-file: {_q(cert.key_path)}
    listen:
      host: {host}
      port: {plain_port}
    paths:
      /echo:
        mruby.handler: {block(echo, "          ")}
      /{PUSH_PAGE}:
        mruby.handler: {block(push, "          ")}
        file.file: {_q(docroot / PUSH_PAGE)}
      /gzip:
        compress: ON
        file.dir: {_q(docroot)}
      /:
        file.dir: {_q(docroot)}
"""


@contextlib.contextmanager
def run_h2o(
    docroot: InteropDocroot,
    workdir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
) -> Iterator[InteropTarget]:
    """Run h2o on two free ports (TLS, plaintext); a missing binary skips (fails under CI)."""
    binary = require_binary("h2o")
    version = h2o_version(binary)
    workdir.mkdir(parents=True, exist_ok=True)
    conf_path = workdir / "h2o.conf"
    ports: dict[str, int] = {}

    def argv(tls_port: int) -> list[str]:
        plain_port = more_free_ports(host, tls_port, 2)[1]
        ports.update(tls=tls_port, plain=plain_port)
        conf_path.write_text(
            render_config(
                workdir=workdir,
                docroot=docroot.path,
                tls_port=tls_port,
                plain_port=plain_port,
                cert=cert,
                host=host,
            )
        )
        return [binary, "-c", str(conf_path)]

    # h2o prints no ready line; it binds every listener while reading the configuration,
    # before serving, so the TLS port accepting connections means both are up.
    with serve_on_free_port("h2o", argv, log_dir=workdir, host=host):
        tls = Endpoint(host, ports["tls"], tls=True)
        plain = Endpoint(host, ports["plain"], tls=False)
        yield InteropTarget(
            name="h2o",
            version=version,
            docroot=docroot,
            ca_cert_path=ca_cert_path,
            endpoints={
                "h2-tls": tls,
                "h11-tls": tls,
                "h2c-upgrade": plain,
                "h2c-prior": plain,
            },
        )
