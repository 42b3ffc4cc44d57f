"""tinyproxy HTTP proxies (absolute-form forwarding and CONNECT tunnels) for the test suite.

Each proxy runs in the foreground (``tinyproxy -d -c <conf>``) from a configuration
generated under the given directory, listening on a free port of 127.0.0.1.  It
writes its own log (``LogFile``, ``LogLevel Info``); the request line of every
request (``CONNECT host:port HTTP/1.1``, ``GET http://host:port/path HTTP/1.1``)
is logged *before* tinyproxy answers or contacts the origin, so once a client has
the proxy's response the line is in the file.

Behaviour of tinyproxy 1.11 that tests may rely on (verified):

* no ``ConnectPort`` line means CONNECT may reach any port;
* a successful CONNECT is answered ``HTTP/1.0 200 Connection established``;
* an origin that refuses the connection gives ``500 Unable to connect``;
* the refusing proxy (``FilterDefaultDeny Yes`` with an empty filter list)
  answers CONNECT and absolute-form requests with ``403 Filtered``;
* with ``BasicAuth``, a request without ``Proxy-Authorization`` gets
  ``407 Proxy Authentication Required`` with ``Proxy-Authenticate: Basic
  realm="Tinyproxy"``, but one with *wrong* credentials gets ``401 Unauthorized``
  (with ``WWW-Authenticate``), a tinyproxy quirk;
* error responses carry ``Connection: close`` and an HTML body;
* running as root without a ``User`` line only logs a warning (tinyproxy stays
  root), so no ``User``/``Group`` is configured.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .nginx import LogView
from .processes import ServerProcess, ServerStartError, require_binary, serve_on_free_port

#: Status of a CONNECT or request refused by :func:`run_tinyproxy` with ``refusing=True``.
REFUSED_STATUS = 403
REFUSED_REASON = "Filtered"
#: Status without ``Proxy-Authorization`` when the proxy requires credentials.
AUTH_REQUIRED_STATUS = 407
#: Status with wrong credentials (tinyproxy answers 401, not 407).
AUTH_REJECTED_STATUS = 401
#: Status when the origin server cannot be reached.
UNREACHABLE_STATUS = 500
#: Default credentials of the authenticating proxy.
DEFAULT_AUTH = ("hyper", "pr0xy-s3cret")
#: Inactivity timeout of proxied connections and tunnels, in seconds.
IDLE_TIMEOUT = 600

_START_ATTEMPTS = 3
#: What tinyproxy prints on stderr when it cannot bind its port (lost the race for it).
_BIND_FAILED = re.compile(r"could not create listening sockets", re.IGNORECASE)
#: Logged once the listening socket is set up.
_READY = re.compile(r"Starting main loop\. Accepting connections\.")
_POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class TinyproxyServer:
    """A running tinyproxy.

    ``log_path`` is tinyproxy's own log (requests, connections); ``process_log_path``
    holds its stdout/stderr.  ``auth`` is ``(user, password)`` when the proxy
    requires ``Proxy-Authorization``; ``refusing`` is True for a proxy that
    refuses every request with :data:`REFUSED_STATUS`.
    """

    name: str
    host: str
    port: int
    log_path: Path
    process_log_path: Path
    conf_path: Path
    auth: tuple[str, str] | None = None
    refusing: bool = False

    @property
    def authority(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Proxy URL without credentials, ``http://host:port``."""
        return f"http://{self.authority}"

    @property
    def url_with_auth(self) -> str:
        """Proxy URL with ``user:password@`` when :attr:`auth` is set."""
        if self.auth is None:
            return self.url
        user, password = self.auth
        return f"http://{user}:{password}@{self.authority}"

    @property
    def proxy_authorization(self) -> str | None:
        """Value for a ``Proxy-Authorization`` header (``Basic ...``), if :attr:`auth`."""
        if self.auth is None:
            return None
        token = base64.b64encode(":".join(self.auth).encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def log(self) -> LogView:
        """tinyproxy's log file."""
        return LogView(self.log_path)

    def log_position(self) -> int:
        """Current end of the log; see :meth:`log_since`."""
        return self.log.position()

    def log_since(self, position: int) -> str:
        """Log text written after :meth:`log_position` returned ``position``."""
        return self.log.read(position)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return self.log.tail(lines)

    def requests_since(self, position: int) -> list[str]:
        """Request lines (``"CONNECT 127.0.0.1:443 HTTP/1.1"``...) logged after ``position``."""
        return re.findall(r"Request \(file descriptor \d+\): (.+)", self.log_since(position))


def render_config(
    port: int,
    *,
    host: str,
    log_path: Path,
    pid_path: Path,
    filter_path: Path | None = None,
    auth: tuple[str, str] | None = None,
) -> str:
    """A tinyproxy configuration (values are quoted; paths must not contain ``"``)."""
    lines = [
        "# Generated for the hyper test suite.",
        f"Port {port}",
        f"Listen {host}",
        f"Timeout {IDLE_TIMEOUT}",
        f'LogFile "{log_path}"',
        "LogLevel Info",
        f'PidFile "{pid_path}"',
        "MaxClients 100",
        'ViaProxyName "tinyproxy"',
        # No ConnectPort line: CONNECT may reach any port.
    ]
    if filter_path is not None:
        lines += [f'Filter "{filter_path}"', "FilterDefaultDeny Yes"]
    if auth is not None:
        user, password = auth
        lines.append(f"BasicAuth {user} {password}")
    return "\n".join(lines) + "\n"


def _confirm_listening(proc: ServerProcess, log: LogView) -> None:
    """Wait (bounded) for tinyproxy's own "listening" log line.

    The readiness probe of :class:`ServerProcess` only shows that *something* accepts
    on the port; it could be whoever won a race for it while tinyproxy was failing
    to bind.  Normally the line is already there and this returns at once.
    """
    deadline = time.monotonic() + proc.startup_timeout
    idle = threading.Event()  # never set: bounded pauses between reads of the log
    while not _READY.search(log.read()):
        if not proc.is_running() or time.monotonic() > deadline:
            why = "exited" if not proc.is_running() else "did not log its start"
            proc.stop()  # also waits until its last output is in the tail
            raise ServerStartError(
                f"{proc.name} {why} (log: {log.path})", proc.log_tail() + log.tail()
            )
        idle.wait(_POLL_INTERVAL)


@contextlib.contextmanager
def run_tinyproxy(
    workdir: Path,
    *,
    name: str = "tinyproxy",
    refusing: bool = False,
    auth: tuple[str, str] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[TinyproxyServer]:
    """Run tinyproxy on a free port of ``host``; files go to ``workdir``.

    :param refusing: deny every request (:data:`REFUSED_STATUS`).
    :param auth: ``(user, password)`` required as Basic ``Proxy-Authorization``.
    """
    binary = require_binary("tinyproxy")
    workdir.mkdir(parents=True, exist_ok=True)
    conf_path = workdir / f"{name}.conf"
    filter_path: Path | None = None
    if refusing:
        filter_path = workdir / f"{name}.filter"
        filter_path.write_text("# FilterDefaultDeny Yes and no rule: everything is denied.\n")
    log_paths: dict[int, Path] = {}

    def argv(port: int) -> list[str]:
        log_paths[port] = workdir / f"{name}-{port}.log"
        conf_path.write_text(
            render_config(
                port,
                host=host,
                log_path=log_paths[port],
                pid_path=workdir / f"{name}.pid",
                filter_path=filter_path,
                auth=auth,
            )
        )
        return [binary, "-d", "-c", str(conf_path)]

    with contextlib.ExitStack() as stack:
        # serve_on_free_port only retries on messages naming "address in use", which
        # tinyproxy does not print: retry here on its own bind-failure message.
        for attempt in range(1, _START_ATTEMPTS + 1):
            attempt_stack = contextlib.ExitStack()
            try:
                proc = attempt_stack.enter_context(
                    serve_on_free_port(name, argv, log_dir=workdir, host=host, attempts=1)
                )
                _confirm_listening(proc, LogView(log_paths[proc.port]))
            except ServerStartError as exc:
                attempt_stack.close()
                if attempt == _START_ATTEMPTS or not _BIND_FAILED.search(exc.log_tail):
                    raise
                continue
            stack.enter_context(attempt_stack)
            break
        yield TinyproxyServer(
            name=name,
            host=host,
            port=proc.port,
            log_path=log_paths[proc.port],
            process_log_path=proc.log_path,
            conf_path=conf_path,
            auth=auth,
            refusing=refusing,
        )
