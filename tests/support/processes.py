"""Run external server processes for the test suite, with bounded waits everywhere.

:class:`ServerProcess` starts a command in its own process group, copies its
merged stdout/stderr to a log file (and keeps a tail in memory), and waits,
up to a deadline, until the server is ready: either a line of its output
matches ``ready_pattern`` (preferred, and may carry the bound port in a
``port`` group) or its TCP port accepts connections.  Stopping sends SIGTERM
to the whole process group, then SIGKILL after a bounded wait.

:func:`serve_on_free_port` wraps that for servers that cannot report the port
they bound: it picks a free port, and retries with another one if the server
lost a race for it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, NoReturn

import pytest

DEFAULT_STARTUP_TIMEOUT = 15.0
DEFAULT_STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.05
_ADDRESS_IN_USE = re.compile(r"address already in use|could not listen|errno 98", re.IGNORECASE)

_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


class ServerStartError(RuntimeError):
    """A server process did not become ready; the message carries its log tail."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(
            f"{message}\n--- server log tail ---\n{log_tail}" if log_tail else message
        )
        self.log_tail = log_tail


def in_ci() -> bool:
    """Return True when the ``CI`` environment variable is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def missing_requirement(reason: str) -> NoReturn:
    """Skip the current test for ``reason``, or fail it when running under CI.

    CI must never silently skip a server-backed test because a tool is missing.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure rather than a skip)")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """Return the path of executable ``name``, else skip/fail via :func:`missing_requirement`."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        missing_requirement(f"required executable {name!r} not found on PATH")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def more_free_ports(host: str, first: int, count: int) -> list[int]:
    """``first`` followed by distinct free ports of ``host``, ``count`` in all (for a server
    that listens on several ports: :func:`serve_on_free_port` chooses the first)."""
    ports = [first]
    while len(ports) < count:
        candidate = free_port(host)
        if candidate not in ports:
            ports.append(candidate)
    return ports


def port_accepts(host: str, port: int, timeout: float) -> bool:
    """Return True if a TCP connection to ``host:port`` succeeds within ``timeout``."""
    try:
        with socket.create_connection((host, port), timeout=max(timeout, 0.01)):
            return True
    except OSError:
        return False


class ServerProcess:
    """One server subprocess, usable as a context manager (start on enter, stop on exit).

    :param name: label used in log file names and error messages.
    :param argv: the command line.
    :param log_path: file receiving the merged stdout/stderr of the process.
    :param host: address the server listens on (used for the TCP readiness probe).
    :param port: the port, if known in advance; otherwise ``ready_pattern`` must
        have a ``port`` group.
    :param ready_pattern: regex searched in each output line; a match means ready.
        Without it, readiness is "the port accepts TCP connections".
    :param startup_timeout: deadline in seconds for becoming ready.
    :param stop_timeout: bounded wait after SIGTERM (and again after SIGKILL).
    :param probe_tcp: confirm readiness by connecting to the TCP port. ``False`` for a port
        that is not a TCP one (a QUIC server's UDP port): the ready line alone then counts.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_pattern: str | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        probe_tcp: bool = True,
    ) -> None:
        if port is None and (ready_pattern is None or "(?P<port>" not in ready_pattern):
            raise ValueError("need a port or a ready_pattern with a (?P<port>...) group")
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.host = host
        self._port = port
        self._ready_re = re.compile(ready_pattern) if ready_pattern else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._cwd = cwd
        self._probe_tcp = probe_tcp
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._ready = threading.Event()
        self._eof = threading.Event()
        self._tail_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (known once :meth:`start` returned)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: port not known yet (server not started)")
        return self._port

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None if not started."""
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        """Return True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of server output."""
        with self._tail_lock:
            return "".join(list(self._tail)[-lines:])

    def start(self) -> None:
        """Start the process and wait (bounded) until it is ready.

        :raises ServerStartError: the process exited, or was not ready in time;
            the process is stopped before raising.
        """
        if self._proc is not None:
            raise RuntimeError(f"{self.name}: already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("wb")
        log_file.write(f"$ {' '.join(self.argv)}\n".encode())
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        except OSError as exc:
            log_file.close()
            raise ServerStartError(f"{self.name}: cannot execute {self.argv[0]!r}: {exc}") from exc
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._pump_output,
            args=(self._proc.stdout, log_file),
            name=f"{self.name}-log",
            daemon=True,
        )
        self._reader.start()
        with _live_lock:
            _live.add(self)
        try:
            self._wait_ready(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the process group, kill it after ``stop_timeout``; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(self.stop_timeout)
        # Children (e.g. hypercorn workers) may outlive their parent: sweep the group.
        self._signal_group(signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(self.stop_timeout)
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} pid={self.pid} port={self._port}>"

    # -- internals --------------------------------------------------------------------------

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def _pump_output(self, stream: IO[bytes], log_file: IO[bytes]) -> None:
        """Copy output lines to the log file and the tail; detect the ready line."""
        try:
            for raw in iter(stream.readline, b""):
                log_file.write(raw)
                log_file.flush()
                line = raw.decode("utf-8", "replace")
                with self._tail_lock:
                    self._tail.append(line)
                if self._ready_re is not None and not self._ready.is_set():
                    match = self._ready_re.search(line)
                    if match:
                        if "port" in match.groupdict():
                            self._port = int(match.group("port"))
                        self._ready.set()
        finally:
            log_file.close()
            stream.close()
            self._eof.set()

    def _fail(self, why: str) -> ServerStartError:
        if self._reader is not None and self._proc is not None and self._proc.poll() is not None:
            self._reader.join(1.0)  # let the pump copy the last words of a dead server
        return ServerStartError(
            f"{self.name} failed to start: {why} (command: {' '.join(self.argv)}; "
            f"log: {self.log_path})",
            self.log_tail(),
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        if self._ready_re is not None:
            while not self._ready.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._fail(f"no ready line within {self.startup_timeout:.0f}s")
                if self._eof.is_set() or self._proc.poll() is not None:
                    raise self._fail(f"process exited early (exit code {self._proc.poll()})")
                # Woken as soon as the pump sees the ready line; short cap to notice exits.
                self._ready.wait(min(remaining, _POLL_INTERVAL * 4))
            if not self._probe_tcp:
                return
        # Confirm (or, without a ready line, detect) that the port accepts connections.
        while True:
            if self._proc.poll() is not None:
                raise self._fail(f"process exited early (exit code {self._proc.returncode})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(
                    f"port {self.host}:{self._port} not accepting connections "
                    f"within {self.startup_timeout:.0f}s"
                )
            if port_accepts(self.host, self.port, min(remaining, 1.0)):
                return
            self._eof.wait(min(_POLL_INTERVAL, max(deadline - time.monotonic(), 0)))


@contextlib.contextmanager
def serve_on_free_port(
    name: str,
    make_argv: Callable[[int], Sequence[str]],
    *,
    log_dir: Path,
    host: str = "127.0.0.1",
    attempts: int = 3,
    **kwargs: object,
) -> Iterator[ServerProcess]:
    """Start ``make_argv(port)`` on a free port and yield the ready :class:`ServerProcess`.

    If the server fails with "address already in use" (it lost a race for the
    port), another port is tried, up to ``attempts`` times.  Extra keyword
    arguments go to :class:`ServerProcess`.
    """
    for attempt in range(1, attempts + 1):
        port = free_port(host)
        server = ServerProcess(
            name,
            make_argv(port),
            log_path=log_dir / f"{name}.{attempt}.log",
            host=host,
            port=port,
            **kwargs,  # type: ignore[arg-type]
        )
        try:
            server.start()
        except ServerStartError as exc:
            if attempt < attempts and _ADDRESS_IN_USE.search(exc.log_tail):
                continue
            raise
        try:
            yield server
        finally:
            server.stop()
        return


@atexit.register
def _stop_leftovers() -> None:
    """Last-resort cleanup if the interpreter exits with servers still running."""
    with _live_lock:
        leftovers = list(_live)
    for server in leftovers:
        with contextlib.suppress(Exception):
            server.stop()
