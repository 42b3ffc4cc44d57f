"""Tests for hyper.http20.window: the flow-control accounting and hyper's default policy."""

from __future__ import annotations

import pytest

from hyper.http20.window import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    MAX_WINDOW,
    BaseFlowControlManager,
    FlowControlManager,
)


class ScriptedManager(BaseFlowControlManager):
    """A policy that returns preset increments and records what it saw."""

    def __init__(
        self, initial: int, increase: int = 0, on_blocked: int | None = None, **kwargs: int
    ) -> None:
        super().__init__(initial, **kwargs)
        self.increase = increase
        self.on_blocked = on_blocked
        self.seen: list[tuple[int, int]] = []  # (frame_size, window_size at the call)
        self.blocked_at: list[int] = []  # window_size whenever blocked() was called

    def increase_window_size(self, frame_size: int) -> int:
        self.seen.append((frame_size, self.window_size))
        return self.increase

    def blocked(self) -> int:
        self.blocked_at.append(self.window_size)
        if self.on_blocked is None:
            return super().blocked()
        return self.on_blocked


# -- BaseFlowControlManager --------------------------------------------------------------------


def test_base_attributes() -> None:
    manager = BaseFlowControlManager(1000)
    assert manager.initial_window_size == 1000
    assert manager.window_size == 1000
    assert manager.document_size is None
    assert BaseFlowControlManager(10, document_size=5).document_size == 5
    assert BaseFlowControlManager(10, 7).document_size == 7


def test_base_policy_is_abstract() -> None:
    manager = BaseFlowControlManager(1000)
    with pytest.raises(NotImplementedError):
        manager.increase_window_size(10)
    with pytest.raises(NotImplementedError):
        manager.account(10)
    with pytest.raises(NotImplementedError):  # as hyper 0.7 documents the interface
        manager.blocked()


class _OnlyIncrease(BaseFlowControlManager):
    """A policy implementing only increase_window_size(), like hyper 0.7's documented
    example: a window used up stays closed rather than failing."""

    def increase_window_size(self, frame_size: int) -> int:
        return 0


def test_a_policy_without_blocked_leaves_a_used_up_window_closed() -> None:
    manager = _OnlyIncrease(100)
    assert manager.account(100) == 0
    assert manager.window_size == 0


def test_account_reduces_the_window_without_update() -> None:
    manager = ScriptedManager(100)
    assert manager.account(30) == 0
    assert manager.window_size == 70
    assert manager.account(20) == 0
    assert manager.window_size == 50
    assert manager.blocked_at == []


def test_policy_is_asked_before_the_window_is_reduced() -> None:
    manager = ScriptedManager(100)
    manager.account(30)
    manager.account(20)
    assert manager.seen == [(30, 100), (20, 70)]


def test_zero_sized_frame_still_consults_the_policy() -> None:
    manager = ScriptedManager(100, increase=0)
    assert manager.account(0) == 0
    assert manager.window_size == 100
    assert manager.seen == [(0, 100)]


def test_account_applies_the_increment() -> None:
    manager = ScriptedManager(100, increase=50)
    assert manager.account(30) == 50
    assert manager.window_size == 120


def test_blocked_called_when_window_reaches_zero() -> None:
    manager = ScriptedManager(100, on_blocked=0)
    assert manager.account(100) == 0
    assert manager.window_size == 0
    assert manager.blocked_at == [0]


def test_blocked_called_when_peer_overruns_the_window() -> None:
    manager = ScriptedManager(100, on_blocked=0)
    assert manager.account(130) == 0
    assert manager.window_size == -30
    assert manager.blocked_at == [-30]


def test_blocked_not_called_while_window_is_open() -> None:
    manager = ScriptedManager(100, on_blocked=999)
    manager.account(99)
    assert manager.window_size == 1
    assert manager.blocked_at == []


def test_blocked_increment_is_applied_and_returned() -> None:
    manager = ScriptedManager(100, on_blocked=64)
    assert manager.account(100) == 64
    assert manager.window_size == 64
    assert manager.blocked_at == [0]


def test_policy_and_blocked_increments_add_up() -> None:
    manager = ScriptedManager(100, increase=10, on_blocked=20)
    # 100 + 10 - 110 == 0: blocked, which adds 20 more.
    assert manager.account(110) == 30
    assert manager.window_size == 20
    assert manager.blocked_at == [0]


def test_default_blocked_leaves_the_window_closed() -> None:
    manager = ScriptedManager(100)  # inherits BaseFlowControlManager.blocked
    assert manager.account(100) == 0
    assert manager.window_size == 0
    assert manager.blocked_at == [0]


def test_negative_increment_raises() -> None:
    manager = ScriptedManager(100, increase=-1)
    with pytest.raises(ValueError, match="invalid window increment -1"):
        manager.account(10)


def test_negative_blocked_increment_raises() -> None:
    manager = ScriptedManager(100, on_blocked=-5)
    with pytest.raises(ValueError, match="ScriptedManager"):
        manager.account(100)


def test_negative_blocked_increment_raises_even_after_a_positive_increase() -> None:
    manager = ScriptedManager(100, increase=10, on_blocked=-10)
    with pytest.raises(ValueError):
        manager.account(110)


def test_increment_past_the_maximum_window_raises() -> None:
    manager = ScriptedManager(100, increase=MAX_WINDOW)
    with pytest.raises(ValueError, match=r"beyond 2\*\*31 - 1"):
        manager.account(10)


def test_blocked_increment_past_the_maximum_window_raises() -> None:
    manager = ScriptedManager(100, on_blocked=MAX_WINDOW + 1)
    with pytest.raises(ValueError):
        manager.account(100)


def test_window_may_reach_exactly_the_maximum() -> None:
    manager = ScriptedManager(100, increase=MAX_WINDOW - 100 + 10)
    assert manager.account(10) == MAX_WINDOW - 90
    assert manager.window_size == MAX_WINDOW


# -- FlowControlManager ------------------------------------------------------------------------


def test_defaults() -> None:
    assert DEFAULT_STREAM_WINDOW == 4 * 1024 * 1024
    assert DEFAULT_CONNECTION_WINDOW == 16 * 1024 * 1024
    assert MAX_WINDOW == 2**31 - 1
    assert issubclass(FlowControlManager, BaseFlowControlManager)


def test_no_update_while_window_above_half() -> None:
    manager = FlowControlManager(100)
    assert manager.account(49) == 0
    assert manager.window_size == 51


def test_reopens_to_initial_when_window_falls_to_half() -> None:
    manager = FlowControlManager(100)
    manager.account(49)
    assert manager.account(1) == 50  # 51 - 1 == 50: exactly half
    assert manager.window_size == 100


def test_reopens_to_initial_when_window_falls_below_half() -> None:
    manager = FlowControlManager(100)
    assert manager.account(70) == 70
    assert manager.window_size == 100


def test_window_used_up_entirely() -> None:
    manager = FlowControlManager(100)
    assert manager.account(100) == 100
    assert manager.window_size == 100


def test_peer_overrunning_the_window_is_reopened_to_initial() -> None:
    manager = FlowControlManager(100)
    assert manager.account(150) == 150
    assert manager.window_size == 100


def test_zero_frame_sends_nothing() -> None:
    manager = FlowControlManager(100)
    assert manager.account(0) == 0
    assert manager.window_size == 100


def test_odd_initial_size() -> None:
    manager = FlowControlManager(101)  # half is 50
    assert manager.account(50) == 0
    assert manager.window_size == 51
    assert manager.account(1) == 51
    assert manager.window_size == 101


def test_blocked_reopens_to_initial() -> None:
    manager = FlowControlManager(100)
    manager.window_size = 0
    assert manager.blocked() == 100
    manager.window_size = -20
    assert manager.blocked() == 120


def test_document_size_does_not_change_the_policy() -> None:
    with_size = FlowControlManager(100, document_size=10)
    without = FlowControlManager(100)
    for frame in (10, 30, 20, 45, 0, 100):
        assert with_size.account(frame) == without.account(frame)
        assert with_size.window_size == without.window_size


@pytest.mark.parametrize(
    ("initial", "frame"), [(DEFAULT_STREAM_WINDOW, 16384), (DEFAULT_CONNECTION_WINDOW, 16384)]
)
def test_bulk_download_sends_few_large_updates(initial: int, frame: int) -> None:
    manager = FlowControlManager(initial)
    total = initial * 2
    updates = []
    lowest = initial
    for _ in range(total // frame):
        increment = manager.account(frame)
        if increment:
            updates.append(increment)
        lowest = min(lowest, manager.window_size)
    assert updates == [initial // 2] * 4
    assert lowest > initial // 2
    assert manager.window_size == initial


def test_window_stays_within_bounds_for_any_frame_sequence() -> None:
    manager = FlowControlManager(1000)
    sizes = [1, 999, 0, 500, 501, 250, 250, 1000, 7, 3, 16384, 499]
    for size in sizes:
        increment = manager.account(size)
        assert increment >= 0
        assert manager.initial_window_size // 2 < manager.window_size <= 1000


def test_maximum_initial_window() -> None:
    manager = FlowControlManager(MAX_WINDOW)
    assert manager.account(16384) == 0
    assert manager.account(MAX_WINDOW // 2) == MAX_WINDOW // 2 + 16384
    assert manager.window_size == MAX_WINDOW
