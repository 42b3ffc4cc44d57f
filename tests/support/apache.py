"""Apache httpd 2.4 with ``mod_http2`` (Debian's ``apache2``) serving the interop docroot.

The configuration is generated in a work directory, loading only the modules it needs
from ``/usr/lib/apache2/modules/`` (mpm_event, ssl, http2, deflate, lua, ...), and
``apache2 -f <conf> -DFOREGROUND`` runs it without Debian's ``/etc/apache2`` or
``apache2ctl``.  Three virtual hosts on free ports of 127.0.0.1:

* ``tls``: TLS, ``Protocols h2 http/1.1`` (ALPN picks ``h2``);
* ``tls11``: TLS, ``Protocols http/1.1`` (ALPN picks ``http/1.1``);
* ``plain``: plaintext, ``Protocols h2c http/1.1`` (``Upgrade: h2c`` and prior knowledge).

Every host serves the same paths:

* ``/<file>``: the document root;
* ``/echo``: a mod_lua handler answering ``200`` with the request body.  (``mod_reflector``
  would be the obvious choice, but Apache 2.4.71 answers an HTTP/2 request to it with an
  empty body);
* ``/gzip/<file>``: the document root through ``SetOutputFilter DEFLATE``;
* ``/push/page.html``: ``H2PushResource /push/style.css`` (``H2Push on``).

Started as root, the parent keeps root (to bind and read the key) and the workers run as
``www-data`` (or ``nobody``), which is why the document root and the Lua script live in
world-readable directories.  The pid file, runtime files and the TLS session cache are
in the work directory; the error log goes to stderr, copied by
:class:`~tests.support.processes.ServerProcess` to its log file.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from .certs import CertPaths
from .interop import (
    PUSH_PAGE,
    PUSHED_FILE,
    Endpoint,
    InteropDocroot,
    InteropTarget,
    public_tempdir,
)
from .processes import missing_requirement, more_free_ports, require_binary, serve_on_free_port

MODULES_DIR = Path("/usr/lib/apache2/modules")
#: Module name -> shared object, in load order.
MODULES: Mapping[str, str] = {
    "mpm_event_module": "mod_mpm_event.so",
    "authz_core_module": "mod_authz_core.so",
    "mime_module": "mod_mime.so",
    "alias_module": "mod_alias.so",
    "ssl_module": "mod_ssl.so",
    "socache_shmcb_module": "mod_socache_shmcb.so",
    "http2_module": "mod_http2.so",
    "filter_module": "mod_filter.so",
    "deflate_module": "mod_deflate.so",
    "lua_module": "mod_lua.so",
}
#: Virtual host names, in the order their ports are allocated.
VHOSTS: tuple[str, ...] = ("tls", "tls11", "plain")
#: Logged by the parent once every listener is bound and the workers start.
READY_PATTERN = r"resuming normal operations"
#: Users the workers run as when Apache is started as root, first existing one wins.
WORKER_USERS: tuple[str, ...] = ("www-data", "nobody")
_VERSION_RE = re.compile(r"Apache/(\S+)")
ECHO_LUA = """\
-- Answers with the request body, so that the client can check what Apache received.
function handle(r)
  r.content_type = "application/octet-stream"
  r:write(r:requestbody())
  return apache2.OK
end
"""


def apache_version(binary: str) -> str:
    """``Apache/2.4.x (Debian)`` from ``apache2 -v``."""
    result = subprocess.run(
        [binary, "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    match = _VERSION_RE.search(result.stdout + result.stderr)
    return f"Apache/{match.group(1)}" if match else "Apache (unknown version)"


def _worker_identity() -> tuple[str, str] | None:
    """``(user, group)`` for the workers when running as root, else None (stay as is)."""
    if os.geteuid() != 0:
        return None
    for name in WORKER_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, grp.getgrgid(entry.pw_gid).gr_name
    missing_requirement(f"none of the users {WORKER_USERS} exists to run Apache's workers")


def _q(value: str | Path) -> str:
    text = str(value)
    if '"' in text or "\\" in text:
        raise ValueError(f"path unusable in an Apache config: {text!r}")
    return f'"{text}"'


def render_config(
    *,
    workdir: Path,
    docroot: Path,
    lua_path: Path,
    ports: Mapping[str, int],
    cert: CertPaths,
    host: str = "127.0.0.1",
) -> str:
    """The httpd configuration (see the module docstring)."""
    loads = "\n".join(f"LoadModule {name} {MODULES_DIR / so}" for name, so in MODULES.items())
    identity = _worker_identity()
    user = f"User {identity[0]}\nGroup {identity[1]}" if identity else ""
    listens = "\n".join(f"Listen {host}:{ports[name]}" for name in VHOSTS)
    tls = f"""\
  SSLEngine on
  SSLCertificateFile {_q(cert.cert_path)}
  SSLCertificateKeyFile {_q(cert.key_path)}"""
    return f"""\
# Generated for the hyper interop matrix.
ServerRoot {_q(workdir)}
PidFile {_q(workdir / "httpd.pid")}
DefaultRuntimeDir {_q(workdir)}
ErrorLog /dev/stderr
LogLevel warn
{loads}
{user}
ServerName localhost
{listens}
StartServers 1
TypesConfig /dev/null
AddType text/plain .txt
AddType text/html .html
AddType text/css .css
AddType application/octet-stream .bin
DocumentRoot {_q(docroot)}
<Directory {_q(docroot)}>
  Require all granted
</Directory>
Protocols h2 h2c http/1.1
H2Push on
KeepAlive on
KeepAliveTimeout 300
MaxKeepAliveRequests 0
LimitRequestBody 0
SSLSessionCache {_q(f"shmcb:{workdir / 'ssl_scache'}(512000)")}
LuaMapHandler ^/echo$ {_q(lua_path)} handle
Alias /gzip/ {_q(f"{docroot}/")}
<Location /gzip/>
  SetOutputFilter DEFLATE
</Location>
<Location /{PUSH_PAGE}>
  H2PushResource /{PUSHED_FILE}
</Location>
<VirtualHost {host}:{ports["tls"]}>
{tls}
  Protocols h2 http/1.1
</VirtualHost>
<VirtualHost {host}:{ports["tls11"]}>
{tls}
  Protocols http/1.1
</VirtualHost>
<VirtualHost {host}:{ports["plain"]}>
  Protocols h2c http/1.1
</VirtualHost>
"""


@contextlib.contextmanager
def run_apache(
    docroot: InteropDocroot,
    workdir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    host: str = "127.0.0.1",
) -> Iterator[InteropTarget]:
    """Run Apache (foreground, own config) with the ``tls``, ``tls11`` and ``plain`` hosts.

    A missing binary or module skips the test, or fails it under CI.
    """
    binary = require_binary("apache2")
    for so in MODULES.values():
        if not (MODULES_DIR / so).is_file():
            missing_requirement(f"Apache module {MODULES_DIR / so} is missing")
    version = apache_version(binary)
    workdir.mkdir(parents=True, exist_ok=True)
    conf_path = workdir / "httpd.conf"
    chosen: dict[str, int] = {}
    with public_tempdir("hyper-apache-") as public:
        lua_path = public / "echo.lua"
        lua_path.write_text(ECHO_LUA)
        lua_path.chmod(0o644)

        def argv(port: int) -> list[str]:
            ports = more_free_ports(host, port, len(VHOSTS))
            chosen.clear()
            chosen.update(zip(VHOSTS, ports, strict=True))
            conf_path.write_text(
                render_config(
                    workdir=workdir,
                    docroot=docroot.path,
                    lua_path=lua_path,
                    ports=chosen,
                    cert=cert,
                    host=host,
                )
            )
            return [binary, "-f", str(conf_path), "-DFOREGROUND"]

        # The ready line is logged after every Listen is bound: a lost race for any of the
        # three ports shows as "Address already in use" and serve_on_free_port retries.
        with serve_on_free_port(
            "apache", argv, log_dir=workdir, host=host, ready_pattern=READY_PATTERN
        ):
            tls = Endpoint(host, chosen["tls"], tls=True)
            tls11 = Endpoint(host, chosen["tls11"], tls=True, h2_in_alpn=False)
            plain = Endpoint(host, chosen["plain"], tls=False)
            yield InteropTarget(
                name="apache",
                version=version,
                docroot=docroot,
                ca_cert_path=ca_cert_path,
                endpoints={
                    "h2-tls": tls,
                    "h11-tls": tls11,
                    "h2c-upgrade": plain,
                    "h2c-prior": plain,
                },
                # Right after the response to the upgrade request, Apache 2.4.71 (mpm_event
                # or mpm_worker) sends GOAWAY(NO_ERROR, last_stream_id=1, "timeout"); curl
                # --http2 sees the same.  hyper opens a new connection for the next
                # request (the matrix sends a GET first, see connect() there).
                closes_after_upgrade=True,
            )
