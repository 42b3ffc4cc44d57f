"""A QUIC connection near its idle timeout takes no new request (RFC 9114 section 5.1):
:meth:`~hyper.http30.engine.QuicEngine.near_idle_timeout`, with the clock given."""

from __future__ import annotations

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper.http30.config import QuicSettings, quic_configuration
from hyper.http30.engine import IDLE_MARGIN, QuicEngine


def _engine(idle_timeout: float) -> QuicEngine:
    configuration, _ = quic_configuration(
        QuicSettings(server_name="example.test", idle_timeout=idle_timeout)
    )
    return QuicEngine(configuration, ("127.0.0.1", 443), "example.test:443", None)


def test_the_margin_before_the_idle_timeout() -> None:
    engine = _engine(30.0)
    engine.connect(now=100.0)
    assert not engine.near_idle_timeout(100.0 + 30.0 - IDLE_MARGIN - 0.01)
    assert engine.near_idle_timeout(100.0 + 30.0 - IDLE_MARGIN)


def test_a_short_idle_timeout_keeps_three_quarters_of_itself() -> None:
    engine = _engine(1.0)
    engine.connect(now=0.0)
    assert not engine.near_idle_timeout(0.74)
    assert engine.near_idle_timeout(0.75)


def test_what_arrives_restarts_the_idle_timer() -> None:
    engine = _engine(30.0)
    engine.connect(now=0.0)
    engine.receive([], now=25.0)
    assert not engine.near_idle_timeout(50.0)
    assert engine.near_idle_timeout(54.0)
