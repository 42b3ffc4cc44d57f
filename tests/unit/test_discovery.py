"""The race between QUIC and TCP (:func:`hyper.discovery.race`), with attempts that are
plain functions, and the choice of the UDP port to try (:func:`hyper.discovery.quic_port`)."""

from __future__ import annotations

import threading

import pytest

from hyper.common.altsvc import AltSvcCache
from hyper.common.exceptions import ConnectTimeout, HyperError, SocketError
from hyper.discovery import quic_port, race

ORIGIN = ("https", "example.org", 8443)
WAIT = 10.0  # the bound on every wait here: the attempts themselves never sleep


class Attempt:
    """An attempt that blocks until told how to end, or until cancelled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = threading.Event()
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.fail_with: HyperError | None = None
        self.discarded: list[str] = []
        self.discard_called = threading.Event()

    def run(self) -> str:
        self.started.set()
        assert self.release.wait(WAIT)
        if self.cancelled.is_set():
            raise ConnectTimeout(f"{self.name} cancelled")
        if self.fail_with is not None:
            raise self.fail_with
        return self.name

    def cancel(self) -> None:
        self.cancelled.set()
        self.release.set()

    def discard(self, value: str) -> None:
        self.discarded.append(value)
        self.discard_called.set()


def test_the_first_attempt_wins_within_its_head_start() -> None:
    first, second = Attempt("quic"), Attempt("tcp")
    first.release.set()
    result = race(first.run, first.cancel, second.run, second.discard, head_start=WAIT)
    assert (result.first, result.second) == ("quic", None)
    assert not second.started.is_set()
    assert not first.cancelled.is_set()


def test_a_failed_first_attempt_starts_the_second_at_once() -> None:
    first, second = Attempt("quic"), Attempt("tcp")
    first.fail_with = SocketError("no route")
    first.release.set()
    second.release.set()
    # A head start far longer than the test: only the failure can start the second.
    result = race(first.run, first.cancel, second.run, second.discard, head_start=3600)
    assert (result.first, result.second) == (None, "tcp")
    assert isinstance(result.first_error, SocketError)


def test_the_second_attempt_wins_and_cancels_the_first() -> None:
    first, second = Attempt("quic"), Attempt("tcp")
    second.release.set()
    result = race(first.run, first.cancel, second.run, second.discard, head_start=0)
    assert (result.first, result.second) == (None, "tcp")
    assert first.cancelled.is_set()
    assert second.discarded == []


def test_when_both_fail_the_second_error_is_raised_with_the_first_as_context() -> None:
    first, second = Attempt("quic"), Attempt("tcp")
    first.fail_with = ConnectTimeout("quic timed out")
    second.fail_with = SocketError("connection refused")
    second.release.set()
    first_done = threading.Thread(target=lambda: (second.started.wait(WAIT), first.release.set()))
    first_done.start()
    with pytest.raises(SocketError, match="refused") as raised:
        race(first.run, first.cancel, second.run, second.discard, head_start=0)
    first_done.join(WAIT)
    assert isinstance(raised.value.__context__, ConnectTimeout)


def test_a_second_attempt_that_completes_after_the_first_won_is_discarded() -> None:
    first, second = Attempt("quic"), Attempt("tcp")
    result_box: list[object] = []
    runner = threading.Thread(
        target=lambda: result_box.append(
            race(first.run, first.cancel, second.run, second.discard, head_start=0)
        )
    )
    runner.start()
    assert second.started.wait(WAIT)
    first.release.set()  # QUIC completes while TCP is still connecting
    runner.join(WAIT)
    assert result_box and result_box[0].first == "quic"  # type: ignore[attr-defined]
    second.release.set()
    assert second.discard_called.wait(WAIT)  # in the second's own thread
    assert second.discarded == ["tcp"]


def test_a_caller_interrupted_during_the_race_leaves_nothing_open() -> None:
    second = Attempt("tcp")
    second.release.set()
    second_won = threading.Event()

    def interrupted() -> str:
        assert second_won.wait(WAIT)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        race(interrupted, second_won.set, second.run, second.discard, head_start=0)
    assert second.discarded == ["tcp"]


def test_the_port_to_try_is_the_advertised_one_unless_it_failed() -> None:
    cache = AltSvcCache()
    assert quic_port(ORIGIN, cache) == 8443  # nothing known: the origin's own number
    cache.remember(ORIGIN, ['h3=":9443"'])
    assert quic_port(ORIGIN, cache) == 9443
    cache.mark_broken(ORIGIN, 9443)
    assert quic_port(ORIGIN, cache) is None
