"""
The progress line of a download: how much has arrived, how fast, and (when the length is
known) what share of the body that is and how long the rest should take.

:func:`render_progress` formats one line from numbers (a pure function);
:class:`Progress` counts the pieces of a body and redraws that line on a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

#: Seconds between two redraws of the progress line.
PROGRESS_INTERVAL = 0.1
#: The width of the bar, in characters.
BAR_WIDTH = 30


def format_size(count: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if count < 1024:
        return f"{count:.0f} B"
    units = ["KiB", "MiB", "GiB", "TiB"]
    count /= 1024
    while count >= 1024 and len(units) > 1:
        count /= 1024
        units.pop(0)
    return f"{count:.1f} {units[0]}"


def format_duration(seconds: float) -> str:
    """A duration as ``m:ss``, or ``h:mm:ss`` from an hour on (rounded up, so that a
    remaining fraction of a second does not show as ``0:00``)."""
    whole = int(-(-seconds // 1))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def render_progress(done: int, total: int | None, elapsed: float, width: int = BAR_WIDTH) -> str:
    """
    One progress line.

    With the length known: ``' 50% [#####.....] 512.0 KiB of 1.0 MiB  2.0 MiB/s  ETA 0:01'``;
    without it: ``'3.0 MiB  1.5 MiB/s'``. The rate is the average since the start; it and
    the ETA show as ``--`` until there is one.

    :param done: the bytes received so far.
    :param total: the body's length, if known.
    :param elapsed: seconds since the body started.
    :param width: the width of the bar.
    """
    rate = done / elapsed if elapsed > 0 and done else 0.0
    speed = f"{format_size(rate)}/s" if rate else "--/s"
    if not total:
        return f"{format_size(done)}  {speed}"
    fraction = min(done / total, 1.0)
    filled = int(fraction * width)
    if done >= total:
        eta = f"in {format_duration(elapsed)}"
    elif rate:
        eta = f"ETA {format_duration((total - done) / rate)}"
    else:
        eta = "ETA --:--"
    bar = "#" * filled + "." * (width - filled)
    return f"{fraction:4.0%} [{bar}] {format_size(done)} of {format_size(total)}  {speed}  {eta}"


class Progress:
    """
    Counts the pieces of a body and, when ``enabled``, draws the progress line on ``stream``
    (redrawn in place, at most every :data:`PROGRESS_INTERVAL` seconds, and once more at the
    end, followed by a new line; an empty body draws nothing).

    :param stream: where the line goes (standard error).
    :param total: the body's length, if known.
    :param enabled: whether to draw at all.
    :param clock: the clock (seconds), :func:`time.monotonic` by default.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        enabled: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total
        self.enabled = enabled
        #: The bytes counted so far.
        self.done = 0
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._width = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the progress started."""
        return self._clock() - self._started

    def track(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Yield ``pieces``, counting them and redrawing the line."""
        for piece in pieces:
            self.done += len(piece)
            if self.enabled:
                now = self._clock()
                if self._drawn_at is None or now - self._drawn_at >= PROGRESS_INTERVAL:
                    self._draw(now)
            yield piece
        if self._drawn_at is not None:  # nothing to show for an empty body
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        line = render_progress(self.done, self.total, now - self._started)
        # Spaces cover the end of a longer previous line.
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)
        self._drawn_at = now
