"""Dante (``danted``, Debian package ``dante-server``) SOCKS proxies for the test suite.

Each proxy runs in the foreground as the current user (``danted -f <conf> -p <pid>``) from a
configuration generated under the given directory, listening on a free port of 127.0.0.1 and
connecting out from 127.0.0.1. It logs to stderr, which :class:`ServerProcess` copies to a
file.

Behaviour of Dante 1.4 that tests may rely on (verified):

* it speaks SOCKS4 and SOCKS5 without authentication (``socksmethod: none``), resolving the
  host names SOCKS5 clients send; it does *not* speak SOCKS4a (the ``0.0.0.x`` address of a
  4a request is taken literally, and the request fails);
* a destination a ``socks block`` rule matches is refused with SOCKS5 reply 2 ("connection
  not allowed by ruleset") or SOCKS4 reply 91 (0x5B, "rejected or failed");
* a destination port nobody listens on gets SOCKS5 reply 5 ("connection refused");
* every tunnel opened is logged (``log: connect``) as ``pass(N): tcp/connect [: <client>
  <proxy> -> <proxy's outgoing address> <destination>``, addresses written ``a.b.c.d.port``:
  the outgoing port is the client port the destination sees, which ties one tunnel to one
  connection in the destination's log;
* its ``username`` method checks the system's passwords, so the suite tests SOCKS5
  credentials against :mod:`tests.support.socks_peer` instead.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .nginx import LogView
from .processes import missing_requirement, serve_on_free_port

#: Logged once the proxy has bound its port and started its children.
_READY = r"Dante/server\[\d+/\d+\] v[\d.]+ running"


@dataclass(frozen=True)
class DanteServer:
    """A running Dante SOCKS proxy.

    ``blocked_port`` is a port of 127.0.0.1 the proxy refuses to connect to (a ``socks
    block`` rule); ``log_path`` holds its output (see :meth:`wait_for_tunnel`).
    """

    host: str
    port: int
    blocked_port: int
    log_path: Path
    conf_path: Path

    def url(self, scheme: str = "socks5h") -> str:
        """The proxy's URL with ``scheme`` (``socks5h``, ``socks5`` or ``socks4``)."""
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def log(self) -> LogView:
        """Dante's output."""
        return LogView(self.log_path)

    def wait_for_tunnel(
        self, port: int, *, since: int, from_port: int | None = None, timeout: float = 5.0
    ) -> None:
        """Wait (bounded) until the log shows a tunnel to ``port`` of 127.0.0.1 opened after
        ``since`` (a :meth:`LogView.position`): the proxy carried that connection.

        :param from_port: the port the proxy's own connection to the destination came from
            (what the destination saw as the client's port), when it must be that one.
        :raises AssertionError: no such line within ``timeout`` seconds.
        """
        source = r"\d+" if from_port is None else str(from_port)
        pattern = rf"tcp/connect \[: .* -> 127\.0\.0\.1\.{source} 127\.0\.0\.1\.{port}\n"
        self.log.wait_for(pattern, since=since, timeout=timeout)


def render_config(port: int, *, host: str, blocked_port: int) -> str:
    """A Dante configuration: no authentication, connections from 127.0.0.0/8 to anywhere
    but ``blocked_port`` of 127.0.0.1, every tunnel logged."""
    return f"""# Generated for the hyper test suite.
logoutput: stderr
internal: {host} port = {port}
external: {host}
clientmethod: none
socksmethod: none
client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error
}}
socks block {{
    from: 0.0.0.0/0 to: 127.0.0.1/32 port = {blocked_port}
    log: connect error
}}
socks pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    protocol: tcp
    log: connect error
}}
"""


def dante_binary() -> str:
    """The path of ``danted`` (Debian's name) or ``sockd`` (upstream's), else skip/fail via
    :func:`~tests.support.processes.missing_requirement`."""
    for name in ("danted", "sockd"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
        if path is not None:
            return path
    missing_requirement("neither danted nor sockd found (Debian package dante-server)")


@contextlib.contextmanager
def run_dante(
    workdir: Path, *, name: str = "dante", host: str = "127.0.0.1"
) -> Iterator[DanteServer]:
    """Run Dante on a free port of ``host``; files go to ``workdir``."""
    binary = dante_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    conf_path = workdir / f"{name}.conf"
    # Held (bound, never listening) while the proxy runs: no test server can get the port.
    reserved = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    reserved.bind((host, 0))
    blocked_port: int = reserved.getsockname()[1]

    def argv(port: int) -> list[str]:
        conf_path.write_text(render_config(port, host=host, blocked_port=blocked_port))
        return [binary, "-f", str(conf_path), "-p", str(workdir / f"{name}.pid")]

    # Dante says "Address already in use" when it loses the race for its port:
    # serve_on_free_port then tries another.
    with (
        reserved,
        serve_on_free_port(name, argv, log_dir=workdir, host=host, ready_pattern=_READY) as proc,
    ):
        yield DanteServer(
            host=host,
            port=proc.port,
            blocked_port=blocked_port,
            log_path=proc.log_path,
            conf_path=conf_path,
        )
