"""Unit tests for hyper.common.trace: durations from fixed timestamps, the one-line and
dictionary forms, delivering events to a hook, and detaching a hook that raises."""

from __future__ import annotations

import logging
import math

import pytest

from hyper.common.exceptions import InvalidRequest
from hyper.common.trace import (
    CONNECT_END,
    DNS_START,
    EVENTS,
    GOAWAY,
    ConnectRecorder,
    Timings,
    TraceEvent,
    Tracer,
    tracer_for,
)


def timings(start: float, **fields: object) -> Timings:
    """A Timings started at ``start``, with ``fields`` set."""
    made = Timings(start)
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def full() -> Timings:
    """A fresh-connection request with every phase, at easy numbers."""
    return timings(
        100.0,
        dns_start=100.5,
        dns_end=101.0,
        connect_start=101.0,
        connect_end=102.5,
        tls_start=102.5,
        tls_end=104.0,
        queued_start=104.0,
        queued_end=106.0,
        headers_sent=106.25,
        request_sent=106.5,
        first_byte=110.0,
        body_done=113.0,
        protocol="HTTP/2",
    )


# -- durations ------------------------------------------------------------------------------------


def test_durations_are_the_differences_of_their_timestamps() -> None:
    t = full()
    assert (t.dns, t.connect, t.tls, t.queued) == (0.5, 1.5, 1.5, 2.0)
    assert t.send == 0.5  # from the end of queueing, the latest of the earlier phases
    assert (t.wait, t.receive, t.total) == (3.5, 3.0, 13.0)


def test_absent_phases_give_none() -> None:
    t = timings(5.0, request_sent=5.25, first_byte=6.0, reused=True, protocol="HTTP/1.1")
    assert (t.dns, t.connect, t.tls, t.queued) == (None, None, None, None)
    assert t.send == 0.25  # from the start: nothing came between
    assert t.wait == 0.75
    assert t.receive is None and t.total is None  # the body is not read yet


def test_send_is_none_until_the_request_is_sent() -> None:
    assert timings(1.0, connect_end=2.0).send is None


def test_send_counts_from_the_start_when_the_connection_was_opened_earlier() -> None:
    # connect() called before the request: its phases come before start.
    t = timings(50.0, connect_start=10.0, connect_end=11.0, request_sent=50.5)
    assert t.send == 0.5


def test_a_request_adopts_the_phases_of_the_connection_it_opened() -> None:
    phases = timings(1.0, dns_start=1.0, dns_end=1.5, connect_start=1.5, connect_end=2.0)
    t = Timings(0.5, reused=True)
    t.adopt_connection(phases)
    assert (t.dns_start, t.dns_end, t.connect_start, t.connect_end) == (1.0, 1.5, 1.5, 2.0)
    assert t.tls_start is None and t.reused is False
    assert t.start == 0.5  # the request's own start is kept


# -- forms ----------------------------------------------------------------------------------------


def test_as_dict_holds_every_timestamp_and_duration() -> None:
    d = full().as_dict()
    assert set(d) == {"protocol", "reused", *Timings.TIMESTAMPS, *Timings.DURATIONS}
    assert d["protocol"] == "HTTP/2" and d["reused"] is False
    assert d["first_byte"] == 110.0 and d["wait"] == 3.5


def test_summary_is_one_line_in_milliseconds() -> None:
    line = full().summary()
    assert line == (
        "HTTP/2 new dns=500.0ms connect=1500.0ms tls=1500.0ms queued=2000.0ms send=500.0ms "
        "wait=3500.0ms receive=3000.0ms total=13000.0ms"
    )
    assert str(full()) == line and "\n" not in line


def test_summary_of_a_reused_connection_dashes_the_missing_phases() -> None:
    t = timings(0.0, request_sent=0.001, first_byte=0.003, body_done=0.004, reused=True)
    t.protocol = "HTTP/1.1"
    assert t.summary() == (
        "HTTP/1.1 reused dns=- connect=- tls=- queued=- send=1.0ms wait=2.0ms receive=1.0ms "
        "total=4.0ms"
    )


def test_timings_have_no_instance_dict() -> None:
    with pytest.raises(AttributeError):
        Timings(0.0).nonsense = 1  # type: ignore[attr-defined]


# -- tracer ---------------------------------------------------------------------------------------


def test_the_hook_gets_each_event_with_its_details() -> None:
    got: list[TraceEvent] = []
    tracer = Tracer(got.append)
    tracer.emit(GOAWAY, None, {"last_stream_id": 7, "error_code": 0}, at=12.5)
    tracer.emit(CONNECT_END, 3)
    assert got[0] == TraceEvent(GOAWAY, 12.5, None, {"last_stream_id": 7, "error_code": 0})
    assert got[1].name == CONNECT_END and got[1].stream_id == 3 and dict(got[1].info) == {}
    assert math.isfinite(got[1].at)


def test_a_raising_hook_is_logged_and_detached(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def hook(event: TraceEvent) -> None:
        calls.append(event.name)
        raise RuntimeError("hook bug")

    tracer = Tracer(hook)
    with caplog.at_level(logging.ERROR, logger="hyper.trace"):
        tracer.emit(DNS_START)  # does not raise
        tracer.emit(CONNECT_END)
    assert calls == [DNS_START]  # never called again
    assert tracer.hook is None
    [record] = [r for r in caplog.records if r.name == "hyper.trace"]
    assert "detached" in record.getMessage() and "dns_start" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_a_hook_raising_base_exception_is_not_swallowed() -> None:
    def hook(event: TraceEvent) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Tracer(hook).emit(DNS_START)


def test_tracer_for_checks_the_argument() -> None:
    assert tracer_for(None).hook is None
    shared = Tracer(print)
    assert tracer_for(shared) is shared
    assert tracer_for(print).hook is print
    with pytest.raises(InvalidRequest, match="trace must be a callable"):
        tracer_for("not callable")
    with pytest.raises(InvalidRequest, match=r"^on_event must be"):
        tracer_for(42, "on_event")


def test_event_names_are_distinct_strings() -> None:
    assert len(EVENTS) == 14 and all(isinstance(name, str) for name in EVENTS)


# -- connect recorder -----------------------------------------------------------------------------


def test_the_recorder_marks_phases_and_reports_them() -> None:
    got: list[TraceEvent] = []
    recorder = ConnectRecorder(Tracer(got.append))
    assert recorder.tracing
    at = recorder.mark(DNS_START, {"host": "example.com"})
    recorder.event(CONNECT_END, {"address": "127.0.0.1:80"})
    assert recorder.phases.dns_start == at and recorder.phases.connect_end is None
    assert [(e.name, e.at == at, dict(e.info)) for e in got[:1]] == [
        (DNS_START, True, {"host": "example.com"})
    ]
    assert got[1].info["address"] == "127.0.0.1:80"


def test_the_recorder_without_a_hook_still_records_phases() -> None:
    recorder = ConnectRecorder(Tracer())
    assert not recorder.tracing
    recorder.mark("tls_start")
    assert recorder.phases.tls_start is not None
