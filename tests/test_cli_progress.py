"""The download progress line of the ``hyper`` command: its format (a pure function of the
numbers), when it is redrawn (a fake clock), and when it is shown at all: only on a terminal
standard error, and only when the body does not go to the terminal itself (real
pseudo-terminals, with the tool in a subprocess).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper.cli.progress import Progress, format_duration, format_size, render_progress
from tests.support.cli import run_in_pty, sha256
from tests.support.nghttpd import NghttpdServer

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (3 * MIB, "3.0 MiB"),
        (5 * 1024 * MIB, "5.0 GiB"),
        (2048 * 1024 * MIB, "2.0 TiB"),
    ],
)
def test_format_size(count: int, expected: str) -> None:
    assert format_size(count) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0:00"),
        (0.2, "0:01"),
        (59, "0:59"),
        (61, "1:01"),
        (3599.5, "1:00:00"),
        (3725, "1:02:05"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize(
    ("done", "total", "elapsed", "expected"),
    [
        (0, 1000, 0.0, "  0% [..........] 0 B of 1000 B  --/s  ETA --:--"),
        (500, 1000, 2.0, " 50% [#####.....] 500 B of 1000 B  250 B/s  ETA 0:02"),
        (MIB, 4 * MIB, 1.0, " 25% [##........] 1.0 MiB of 4.0 MiB  1.0 MiB/s  ETA 0:03"),
        (2048, 2048, 0.5, "100% [##########] 2.0 KiB of 2.0 KiB  4.0 KiB/s  in 0:01"),
        (10, 1000, 600.0, "  1% [..........] 10 B of 1000 B  0 B/s  ETA 16:30:00"),
        (3 * MIB, None, 2.0, "3.0 MiB  1.5 MiB/s"),
        (0, None, 0.0, "0 B  --/s"),
        (5000, 1000, 1.0, "100% [##########] 4.9 KiB of 1000 B  4.9 KiB/s  in 0:01"),
    ],
)
def test_render_progress(done: int, total: int | None, elapsed: float, expected: str) -> None:
    assert render_progress(done, total, elapsed, width=10) == expected


class FakeTerminal(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_redraws_at_most_every_interval() -> None:
    clock = Clock()
    terminal = FakeTerminal()
    progress = Progress(terminal, 400, True, clock)

    def pieces() -> Iterator[bytes]:
        for step in (0.0, 0.05, 0.1, 0.05):
            clock.now += step
            yield b"x" * 100

    assert b"".join(progress.track(pieces())) == b"x" * 400
    draws = terminal.getvalue().split("\r")[1:]
    # At 0 s (first piece), 0.15 s (0.1 after the first draw), and once at the end.
    assert [d.split(" [")[0].strip() for d in draws] == ["25%", "75%", "100%"]
    assert draws[-1].rstrip(" \n").endswith("2.0 KiB/s  in 0:01")
    assert progress.done == 400
    assert progress.elapsed == pytest.approx(0.2)


def test_progress_pads_over_a_longer_previous_line() -> None:
    clock = Clock()
    terminal = FakeTerminal()
    progress = Progress(terminal, None, True, clock)

    def pieces() -> Iterator[bytes]:
        clock.now += 1
        yield b"x" * 1024
        clock.now += 1023
        yield b"x"

    list(progress.track(pieces()))
    draws = terminal.getvalue().split("\r")[1:]
    assert draws == [
        "1.0 KiB  1.0 KiB/s",
        "1.0 KiB  1 B/s".ljust(18),  # spaces cover the end of the longer line before
        "1.0 KiB  1 B/s".ljust(14) + "\n",
    ]


def test_progress_of_an_empty_body_draws_nothing() -> None:
    terminal = FakeTerminal()
    progress = Progress(terminal, 0, True, Clock())
    assert list(progress.track([])) == []
    assert terminal.getvalue() == ""


def test_progress_disabled_draws_nothing() -> None:
    quiet = FakeTerminal()
    progress = Progress(quiet, 6, False)
    assert list(progress.track([b"abc", b"def"])) == [b"abc", b"def"]
    assert progress.done == 6
    assert quiet.getvalue() == ""


def _lines(shown: bytes) -> list[bytes]:
    """What a terminal shows, split at carriage returns and new lines."""
    return [line for line in re.split(rb"[\r\n]+", shown) if line]


def test_progress_to_terminal_stderr_with_output_file(
    nghttpd_h2c: NghttpdServer, tmp_path: Path
) -> None:
    target = tmp_path / "out.bin"
    status, shown, out = run_in_pty(
        ["--http2", "-o", target, nghttpd_h2c.url("/1m.bin")], "stderr"
    )
    assert status == 0, shown
    assert out == b""
    assert sha256(target.read_bytes()) == nghttpd_h2c.files["1m.bin"]
    lines = _lines(shown)
    assert lines[0] == b"HTTP/2 200"
    bar = b"100% [" + b"#" * 30 + b"] 1.0 MiB of 1.0 MiB  "
    final = [line for line in lines if line.startswith(bar)]
    assert len(final) == 1 and re.search(rb"/s  in \d+:\d\d\s*$", final[0]), lines
    assert lines[-1].startswith(b"hyper: saved 1048576 bytes (1.0 MiB) to ")


def test_progress_to_terminal_stderr_with_stdout_redirected(nghttpd_h2c: NghttpdServer) -> None:
    status, shown, out = run_in_pty(["--http2", nghttpd_h2c.url("/10m.bin")], "stderr")
    assert status == 0, shown
    assert len(out) == 10 * MIB
    assert sha256(out) == nghttpd_h2c.files["10m.bin"]
    lines = _lines(shown)
    assert any(
        line.startswith(b"100% [" + b"#" * 30 + b"] 10.0 MiB of 10.0 MiB") for line in lines
    )
    assert not any(line.startswith(b"hyper: saved") for line in lines)  # no file: no summary


def test_no_progress_when_the_body_goes_to_the_terminal(nghttpd_h2c: NghttpdServer) -> None:
    # stdout on the terminal, stderr a pipe: the body is shown, and no progress anywhere.
    status, shown, err = run_in_pty(["--http2", nghttpd_h2c.url("/1k.bin")], "stdout")
    assert status == 0, err
    assert err.startswith(b"HTTP/2 200\n")
    assert b"\r" not in err and b"[" not in err
    assert b"of 1.0 KiB" not in shown
