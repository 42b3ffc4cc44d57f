"""Waiting for other threads by one's own limits (:mod:`hyper.common.condition`): taking a
lock another thread holds, waiting for a change without that lock, and a connection's connect
lock within a request's connect timeout and total deadline."""

from __future__ import annotations

import threading
import time

import pytest

from hyper.common.condition import (
    ChangeSignal,
    acquire_within,
    connect_time_left,
    take_connect_lock,
)
from hyper.common.exceptions import ConnectTimeout, DeadlineExceeded, ReadTimeout
from hyper.common.timeout import Deadline, WaitLimit

#: Bound on the waits of the helper threads here.
SAFETY_TIMEOUT = 5.0


def test_acquire_within_gives_up_at_the_limit() -> None:
    lock = threading.Lock()
    lock.acquire()  # held by "another thread" for the whole test
    started = time.monotonic()
    with pytest.raises(ReadTimeout, match=r"timed out waiting for the turn \(0\.2 s\)"):
        acquire_within(lock, WaitLimit(0.2, None), "the turn")
    assert 0.19 <= time.monotonic() - started < 2.0
    assert lock.locked()


def test_acquire_within_says_when_the_deadline_bound_it() -> None:
    lock = threading.Lock()
    lock.acquire()
    deadline = Deadline(None, 30, 0.2)
    with pytest.raises(DeadlineExceeded, match=r"total deadline of 0\.2 s passed"):
        acquire_within(lock, WaitLimit(30, None, deadline=deadline), "the turn")


def test_acquire_within_takes_a_lock_released_in_time() -> None:
    lock = threading.Lock()
    lock.acquire()
    timer = threading.Timer(0.05, lock.release)
    timer.start()
    try:
        acquire_within(lock, WaitLimit(SAFETY_TIMEOUT, None), "the turn")
        assert lock.locked()
    finally:
        timer.join(SAFETY_TIMEOUT)
    lock.release()


def test_wait_past_returns_on_a_change_and_gives_up_at_the_limit() -> None:
    signal = ChangeSignal()
    mark = signal.count
    signal.notify_all()
    signal.wait_past(mark, WaitLimit(0.01, None), "a change")  # changed already: no wait
    mark = signal.count
    with pytest.raises(ReadTimeout, match="a change"):
        signal.wait_past(mark, WaitLimit(0.1, None), "a change")
    timer = threading.Timer(0.05, signal.notify_all)
    timer.start()
    try:
        signal.wait_past(mark, WaitLimit(SAFETY_TIMEOUT, None), "a change")
    finally:
        timer.join(SAFETY_TIMEOUT)
    assert signal.count == mark + 1


def test_take_connect_lock_within_a_connect_timeout_and_what_is_left() -> None:
    lock = threading.Lock()
    limit = take_connect_lock(lock, 5.0)
    try:
        left = connect_time_left(limit)
        assert left is not None and 4.0 < left <= 5.0
    finally:
        lock.release()
    assert take_connect_lock(lock, None) is None  # nothing bounds it
    assert connect_time_left(None) is None
    lock.release()


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (0.2, r"timed out waiting for the connection to be opened \(0\.2 s\)"),
        (Deadline(30, 30, 0.2), r"deadline of 0\.2 s passed before the connection was open"),
    ],
    ids=["connect-timeout", "deadline"],
)
def test_take_connect_lock_held_too_long_is_a_connect_timeout(
    timeout: float | Deadline, message: str
) -> None:
    lock = threading.Lock()
    lock.acquire()
    with pytest.raises(ConnectTimeout, match=message):
        take_connect_lock(lock, timeout)
