"""Tests for hyper.http20.window: the flow-control accounting and hyper's default policy."""

from __future__ import annotations

import pytest

from hyper.http20.window import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    MAX_WINDOW,
    REFILL_FLOOR,
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


# hyper 0.7's documented rule: reopen to the initial size once the window would fall below a
# quarter of it, or below 1 kB (REFILL_FLOOR). With 65536 (HTTP/2's default) a quarter is 16384.


def test_no_update_while_window_stays_at_a_quarter_or_more() -> None:
    manager = FlowControlManager(65536)
    assert manager.account(40000) == 0
    assert manager.account(9152) == 0  # 65536 - 49152 == 16384: exactly a quarter
    assert manager.window_size == 16384


def test_reopens_to_initial_when_window_falls_below_a_quarter() -> None:
    manager = FlowControlManager(65536)
    manager.account(49152)
    assert manager.account(1) == 65536 - 16383
    assert manager.window_size == 65536


@pytest.mark.parametrize(
    "frame",
    [50_000, 65_536, 70_000],
    ids=["below-a-quarter", "used-up", "overrun-by-the-peer"],
)
def test_a_frame_leaving_less_than_a_quarter_is_returned_whole(frame: int) -> None:
    manager = FlowControlManager(65536)
    assert manager.account(frame) == frame
    assert manager.window_size == 65536


def test_refill_floor_is_1_kib() -> None:
    assert REFILL_FLOOR == 1024


def test_floor_reopens_a_small_window_above_a_quarter() -> None:
    # 4000 // 4 == 1000 < 1024: here the floor decides, not the quarter.
    manager = FlowControlManager(4000)
    assert manager.account(2976) == 0  # 1024 left: not below the floor
    assert manager.window_size == 1024
    assert manager.account(1) == 4000 - 1023
    assert manager.window_size == 4000


def test_window_smaller_than_the_floor_is_reopened_after_every_frame() -> None:
    manager = FlowControlManager(100)
    for frame in (1, 30, 99):
        assert manager.account(frame) == frame
        assert manager.window_size == 100


def test_zero_frame_sends_nothing() -> None:
    manager = FlowControlManager(65536)
    assert manager.account(0) == 0
    assert manager.window_size == 65536


def test_quarter_is_exact_for_an_initial_size_not_divisible_by_4() -> None:
    manager = FlowControlManager(65537)  # a quarter is 16384.25
    assert manager.account(49152) == 0  # 16385 left
    assert manager.window_size == 16385
    assert manager.account(1) == 65537 - 16384  # 16384 < 16384.25
    assert manager.window_size == 65537


def test_blocked_reopens_to_initial() -> None:
    manager = FlowControlManager(100)
    manager.window_size = 0
    assert manager.blocked() == 100
    manager.window_size = -20
    assert manager.blocked() == 120


def test_document_size_does_not_change_the_policy() -> None:
    with_size = FlowControlManager(65536, document_size=10)
    without = FlowControlManager(65536)
    for frame in (10, 30000, 20000, 45000, 0, 65536):
        assert with_size.account(frame) == without.account(frame)
        assert with_size.window_size == without.window_size


@pytest.mark.parametrize("initial", [DEFAULT_STREAM_WINDOW, DEFAULT_CONNECTION_WINDOW])
def test_bulk_download_sends_few_large_updates(initial: int) -> None:
    frame = 16384
    manager = FlowControlManager(initial)
    updates = []
    lowest = initial
    for _ in range(initial * 2 // frame):
        increment = manager.account(frame)
        if increment:
            updates.append(increment)
        lowest = min(lowest, manager.window_size)
    # The frame that takes the window below a quarter brings one update of three quarters
    # of the window plus that frame: two in twice the window.
    assert updates == [initial - initial // 4 + frame] * 2
    assert lowest == initial // 4


def test_window_stays_within_bounds_for_any_frame_sequence() -> None:
    manager = FlowControlManager(100_000)
    sizes = [1, 74_999, 1, 0, 50_000, 25_001, 24_999, 100_000, 7, 3, 16384, 80_000, 499]
    for size in sizes:
        increment = manager.account(size)
        assert increment >= 0
        assert 25_000 <= manager.window_size <= 100_000


def test_maximum_initial_window() -> None:
    manager = FlowControlManager(MAX_WINDOW)
    assert manager.account(16384) == 0
    three_quarters = 3 * (MAX_WINDOW // 4)
    assert manager.account(three_quarters) == 16384 + three_quarters
    assert manager.window_size == MAX_WINDOW
