"""
How :class:`~hyper.HTTPConnection` reaches a server over HTTP/3 when the caller allows it
(``http3=True``): which UDP port to try, and the race between QUIC and TCP.

It is what browsers and curl do. QUIC goes first: to the UDP port the origin advertised in an
``Alt-Svc`` field (:data:`~hyper.common.altsvc.ALT_SVC_CACHE`), or else to the origin's own port
number. If its handshake has not completed :data:`HTTP3_HEAD_START` seconds later, a TCP
connection (TLS, then ALPN picks HTTP/2 or HTTP/1.1) starts beside it, at once if QUIC fails
before that. Whichever completes first is used and the other is closed. A QUIC attempt that
failed or lost counts as broken for that origin and port for a while
(:meth:`~hyper.common.altsvc.AltSvcCache.mark_broken`): later connections go straight to TCP
rather than wait for UDP that a firewall drops.

The TCP attempt runs in a short-lived thread of its own: it ends with the attempt, and never
outlives its connect timeout. (The only other thread hyper starts resolves a host name within
a connect timeout, :mod:`hyper.common.eyeballs`.) The QUIC attempt runs in the caller's
thread; the TCP one gets Happy Eyeballs like any other TCP connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .common.altsvc import AltSvcCache, Origin
from .common.exceptions import HyperError
from .common.trace import TraceEvent, Tracer

__all__ = ["HTTP3_HEAD_START", "RaceResult", "labelled", "quic_port", "race"]

log = logging.getLogger(__name__)

#: Seconds the QUIC handshake has to itself before TCP starts beside it. A QUIC handshake to a
#: server that answers over UDP takes one round trip; a few hundred milliseconds covers that on
#: most paths, and costs no more than that where UDP is blocked.
HTTP3_HEAD_START = 0.3

FirstT = TypeVar("FirstT")
SecondT = TypeVar("SecondT")


def quic_port(origin: Origin, cache: AltSvcCache) -> int | None:
    """
    The UDP port to try HTTP/3 on for ``origin``: the one it advertised with ``Alt-Svc``,
    else its own port number; ``None`` if HTTP/3 on that port failed recently.
    """
    port = cache.lookup(origin) or origin[2]
    return None if cache.broken(origin, port) else port


def labelled(tracer: Tracer, transport: str) -> Tracer:
    """
    A tracer for one attempt of the race: the events reported to it go on to ``tracer``
    with ``transport`` (``"tcp"``) in their details, as the QUIC attempt's carry ``"quic"``.
    A hook that raises is detached from ``tracer`` itself. Without a hook, ``tracer``.
    """
    if tracer.hook is None:
        return tracer

    def forward(event: TraceEvent) -> None:
        info = {**event.info, "transport": transport}
        tracer.emit(event.name, event.stream_id, info, event.at)

    return Tracer(forward)


class RaceResult(Generic[FirstT, SecondT]):
    """What :func:`race` ended with: exactly one of ``first`` and ``second`` is set."""

    __slots__ = ("first", "first_error", "second")

    def __init__(
        self, first: FirstT | None, second: SecondT | None, first_error: HyperError | None = None
    ) -> None:
        #: The first attempt's result, if it won.
        self.first = first
        #: The second attempt's result, if it won.
        self.second = second
        #: Why the first attempt failed, if it did (it may also have lost without failing).
        self.first_error = first_error


class _Race(Generic[SecondT]):
    """The state both attempts share, guarded by :attr:`cond`."""

    def __init__(
        self,
        second: Callable[[], SecondT],
        discard_second: Callable[[SecondT], None],
        cancel_first: Callable[[], None],
        head_start: float,
    ) -> None:
        self.second = second
        self.discard_second = discard_second
        self.cancel_first = cancel_first
        self.head_start = head_start
        self.cond = threading.Condition()
        #: The first attempt has ended: won, failed, or given up by the caller.
        self.first_over = False
        self.first_failed = False
        #: "first", "second", or "abandoned" (the caller gave up on both).
        self.winner: str | None = None
        self.second_over = False
        self.second_value: SecondT | None = None
        self.second_error: BaseException | None = None

    def run_second(self) -> None:
        """The second attempt's thread: wait out the head start, then try."""
        with self.cond:
            self.cond.wait_for(lambda: self.first_over, self.head_start)
            if self.first_over and not self.first_failed:
                self.second_over = True
                return  # the first won, or the caller gave up
        try:
            value = self.second()
        except BaseException as exc:  # reported to the caller's thread, which raises it
            with self.cond:
                self.second_error = exc
                self.second_over = True
                self.cond.notify_all()
            return
        with self.cond:
            self.second_over = True
            won = self.winner is None
            if won:
                self.winner = "second"
                self.second_value = value
            self.cond.notify_all()
        if won:
            self.cancel_first()  # ends the first attempt's wait at once
        else:
            self.discard_second(value)


def race(
    first: Callable[[], FirstT],
    cancel_first: Callable[[], None],
    second: Callable[[], SecondT],
    discard_second: Callable[[SecondT], None],
    head_start: float | None = None,
) -> RaceResult[FirstT, SecondT]:
    """
    Run ``first`` in this thread and, ``head_start`` seconds later (at once if ``first``
    fails before), ``second`` in a thread of its own; the result of whichever succeeds first.

    :param first: the preferred attempt: returns what it opened (never ``None``), or fails
        with a :class:`~hyper.HyperError`.
    :param cancel_first: makes a ``first`` still under way fail at once; also closes what
        ``first`` opened if it completed after ``second`` won. Called from either thread.
    :param second: the fallback attempt: returns what it opened (never ``None``).
    :param discard_second: closes what ``second`` opened when it is not wanted.
    :param head_start: seconds; ``None``: :data:`HTTP3_HEAD_START` as it is when called.
    :raises BaseException: what ``second`` raised, when both attempts failed (``first``'s
        error is its context).
    """
    if head_start is None:
        head_start = HTTP3_HEAD_START
    state = _Race(second, discard_second, cancel_first, head_start)
    threading.Thread(target=state.run_second, name="hyper-tcp-fallback", daemon=True).start()
    cond = state.cond
    try:
        value = first()
    except HyperError as exc:
        with cond:
            state.first_over = state.first_failed = True
            cond.notify_all()
            # The second attempt is bounded by its own connect timeout.
            cond.wait_for(lambda: state.second_over)
            if state.winner == "second":
                return RaceResult(None, state.second_value, exc)
            error = state.second_error
        log.debug("QUIC failed (%s), and so did TCP (%s)", exc, error)
        assert error is not None
        raise error  # noqa: B904 - the first attempt's error stays its context
    except BaseException:
        with cond:
            state.first_over = True
            lost = state.second_value if state.winner == "second" else None
            state.winner = "abandoned"
            cond.notify_all()
        if lost is not None:
            discard_second(lost)
        raise
    with cond:
        state.first_over = True
        cond.notify_all()
        if state.winner is None:
            state.winner = "first"
            return RaceResult(value, None)
        second_value = state.second_value
    cancel_first()  # completed just after the second won: not wanted
    return RaceResult(None, second_value)
