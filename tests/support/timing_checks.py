"""Checks on :class:`~hyper.common.trace.Timings` that the timing tests of every protocol
share."""

from __future__ import annotations

from hyper import Timings


def in_order(*stamps: float | None) -> bool:
    """Whether every timestamp is there and none comes before the one before it."""
    present = [stamp for stamp in stamps if stamp is not None]
    return len(present) == len(stamps) and present == sorted(present)


def assert_reused(t: Timings) -> None:
    """The timings of a request on a connection opened earlier."""
    assert t.reused is True
    assert all(getattr(t, name) is None for name in Timings.CONNECTION_PHASES)
    assert in_order(t.start, t.headers_sent, t.request_sent, t.first_byte, t.body_done)
