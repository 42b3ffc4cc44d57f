"""Running the ``hyper`` command in tests: in-process through :func:`hyper.cli.main` with
captured standard streams (:func:`run_cli`), or as a subprocess where a real pipe, terminal
or signal is needed (:func:`run_cli_process`, :func:`run_in_pty`).

Both start from an environment without proxy variables or ``SSLKEYLOGFILE`` (a test adds
what it needs through ``env``), so that the machine's settings cannot change what a test
sees.
"""

from __future__ import annotations

import hashlib
import io
import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from unittest import mock

from hyper import cli

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
#: No single run of the tool may take longer than this.
TIMEOUT = 15.0
#: Environment variables a run never inherits.
ISOLATED = frozenset(
    {"SSLKEYLOGFILE", "REQUEST_METHOD"}
    | {
        spelling
        for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        for spelling in (name, name.upper())
    }
)

Result = subprocess.CompletedProcess[bytes]


class _Terminal(io.BytesIO):
    """A binary stream that says whether it is a terminal."""

    def __init__(self, data: bytes = b"", tty: bool = False) -> None:
        super().__init__(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    base.update(env or {})
    return base


def run_cli(
    *args: object,
    stdin: bytes | io.BufferedIOBase | None = b"",
    env: Mapping[str, str] | None = None,
    stdin_tty: bool = False,
) -> Result:
    """
    Run ``hyper args...`` in this process; stdout and stderr are captured (not terminals).

    :param stdin: what standard input holds, or the binary stream it reads (``None``: the
        process has none).
    :param env: variables added to the isolated environment.
    :param stdin_tty: standard input claims to be a terminal (so it is never read).
    """
    argv = [str(arg) for arg in args]
    out = _Terminal()
    err = _Terminal()
    text_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    text_err = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    if isinstance(stdin, bytes):
        stdin = _Terminal(stdin, stdin_tty)
    text_in = None if stdin is None else io.TextIOWrapper(stdin)
    with (
        mock.patch.dict(os.environ, _environment(env), clear=True),
        mock.patch.object(sys, "stdin", text_in),
        mock.patch.object(sys, "stdout", text_out),
        mock.patch.object(sys, "stderr", text_err),
    ):
        status = cli.main(argv)
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def hyper_cmd(*args: object) -> list[str]:
    """The command line running ``hyper`` with ``args`` in a new interpreter."""
    return [sys.executable, "-m", "hyper", *map(str, args)]


def process_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a subprocess: isolated, with the working tree's hyper."""
    result = _environment(env)
    result["PYTHONPATH"] = str(REPO_ROOT)
    return result


def run_cli_process(
    *args: object, stdin: bytes = b"", env: Mapping[str, str] | None = None
) -> Result:
    """Run ``hyper args...`` as a subprocess with ``stdin`` on a pipe; stdout and stderr are
    captured (pipes, not terminals)."""
    return subprocess.run(
        hyper_cmd(*args),
        input=stdin,
        capture_output=True,
        env=process_env(env),
        timeout=TIMEOUT,
        check=False,
    )


def err_text(result: Result) -> str:
    """The decoded stderr of a run."""
    return result.stderr.decode("utf-8", "replace")


def assert_one_line_error(result: Result, status: int) -> str:
    """The run failed with ``status`` and one ``hyper: error:`` line, no traceback."""
    stderr = err_text(result)
    assert result.returncode == status, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hyper: error: ")
    return lines[0]


def sha256(data: bytes) -> str:
    """The hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def run_in_pty(
    args: list[object], tty: str, env: Mapping[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``hyper`` as a subprocess with stdout or stderr (``tty``) on a pseudo-terminal,
    the other stream on a pipe, and standard input empty.

    :returns: the exit status, what the terminal showed, and the other stream.
    """
    master, slave = pty.openpty()
    streams: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, tty: slave}
    proc = subprocess.Popen(
        hyper_cmd(*args), env=process_env(env), stdin=subprocess.DEVNULL, **streams
    )
    os.close(slave)
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    reader.join(TIMEOUT)
    os.close(master)
    return proc.returncode, b"".join(shown), out if tty == "stderr" else err


class IdleListener:
    """A listening socket on 127.0.0.1 nobody answers on. A connection the tool makes shows
    in its queue (the kernel completes the handshake), so a test can tell that nothing was
    sent (:meth:`assert_nothing_sent`)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        #: The port it listens on.
        self.port: int = self.sock.getsockname()[1]

    def assert_nothing_sent(self) -> None:
        """No connection reached the socket."""
        self.sock.setblocking(False)
        try:
            self.sock.accept()
        except BlockingIOError:
            return
        raise AssertionError("the tool connected: something was sent")

    def __enter__(self) -> IdleListener:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.sock.close()
