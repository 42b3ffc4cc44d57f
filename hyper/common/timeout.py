"""
:class:`Timeout`, the documented form of a ``timeout`` argument with a total deadline, and
what the connections make of one: a :class:`Deadline` per request, and the
:class:`WaitLimit` that bounds each wait for the server by both the per-wait timeout and
that deadline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .exceptions import ConnectTimeout, DeadlineExceeded, InvalidRequest, ReadTimeout

__all__ = [
    "Deadline",
    "Timeout",
    "WaitLimit",
    "check_seconds",
    "connect_limit",
    "connect_wait",
    "split_wait",
]


def check_seconds(name: str, value: object) -> float | None:
    """
    ``value`` as a number of seconds, or ``None``.

    :param name: what the value is, for the error message.
    :raises InvalidRequest: for anything but ``None`` or an int or float >= 0 (booleans and
        NaN included).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(
            f"{name} must be an int, float or None, not {type(value).__name__} {value!r}"
        )
    if not value >= 0:  # also refuses NaN
        raise InvalidRequest(f"{name} must be a number of seconds >= 0, not {value!r}")
    return value


class Timeout:
    """
    How long a request may take, wherever hyper takes a ``timeout`` (the connection
    constructors, each ``request()``/``putrequest()``, the requests adapter): an immutable
    value. A number and a ``(connect, read)`` pair keep working; this form adds ``total``.

    :param connect: the longest wait to open a connection (DNS, TCP, proxy, TLS; over
        HTTP/3 the QUIC handshake), in seconds; ``None`` for no limit.
    :param read: the longest wait for the server each time the request waits for it (room
        for a stream, flow-control window, the response head, each piece of the body);
        ``None`` for no limit.
    :param total: the longest the whole request may take, from the call that sends it
        until the last byte of its response's body, whatever it waits for meanwhile (the
        connection, a stream slot, another thread's exchange, the body going out, the
        server's answer). Each wait is bounded by its own timeout and by the time left;
        when none is left, :class:`~hyper.common.exceptions.DeadlineExceeded` is raised (a
        :class:`~hyper.common.exceptions.ReadTimeout`), or
        :class:`~hyper.common.exceptions.ConnectTimeout` while connecting. ``None`` (the
        default) for no total limit.
    :raises InvalidRequest: for a value that is not ``None`` or a number of seconds >= 0.

    >>> hyper.Timeout(connect=3, read=10, total=30)
    Timeout(connect=3, read=10, total=30)
    """

    __slots__ = ("connect", "read", "total")

    connect: float | None
    read: float | None
    total: float | None

    def __init__(
        self,
        connect: float | None = None,
        read: float | None = None,
        total: float | None = None,
    ) -> None:
        object.__setattr__(self, "connect", check_seconds("Timeout connect", connect))
        object.__setattr__(self, "read", check_seconds("Timeout read", read))
        object.__setattr__(self, "total", check_seconds("Timeout total", total))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Timeout cannot be changed: make a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Timeout cannot be changed: make a new one")

    def __repr__(self) -> str:
        return f"Timeout(connect={self.connect!r}, read={self.read!r}, total={self.total!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeout):
            return NotImplemented
        return (self.connect, self.read, self.total) == (other.connect, other.read, other.total)

    def __hash__(self) -> int:
        return hash((Timeout, self.connect, self.read, self.total))

    def start(self) -> Deadline | None:
        """The deadline of a request starting now (``None`` without a ``total``)."""
        if self.total is None:
            return None
        return Deadline(self.connect, self.read, self.total)


class Deadline:
    """
    One request's total deadline, made when the request is sent: it travels with the
    request (where a read timeout would otherwise) so that each wait is bounded by both.

    :param connect: the request's connect timeout.
    :param read: the request's per-wait read timeout.
    :param total: the seconds from now the request may take.
    """

    __slots__ = ("at", "connect", "read", "total")

    def __init__(self, connect: float | None, read: float | None, total: float) -> None:
        self.connect = connect
        self.read = read
        self.total = total
        #: The :func:`time.monotonic` time the request's time is up.
        self.at = time.monotonic() + total

    def __repr__(self) -> str:
        return f"<Deadline total={self.total:g} s, {self.at - time.monotonic():.3f} s left>"

    def exceeded(self) -> DeadlineExceeded:
        """The error that says the deadline passed."""
        return DeadlineExceeded(f"the request's total deadline of {self.total:g} s passed")

    def remaining(self) -> float:
        """
        The seconds left.

        :raises DeadlineExceeded: if none are.
        """
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def wait(self, timeout: float | None) -> float:
        """
        How long a wait bounded by ``timeout`` (``None``: none) may last within the deadline.

        :raises DeadlineExceeded: if no time is left.
        """
        left = self.remaining()
        return left if timeout is None or timeout > left else timeout

    def connect_timeout(self) -> float:
        """
        The connect timeout of a connection opened now: the request's own, cut to the time
        left.

        :raises ConnectTimeout: if no time is left.
        """
        left = self.at - time.monotonic()
        if left <= 0:
            raise ConnectTimeout(
                f"the request's total deadline of {self.total:g} s passed before the "
                "connection was open"
            )
        connect = self.connect
        return left if connect is None or connect > left else connect


def split_wait(timeout: float | Deadline | None) -> tuple[float | None, Deadline | None]:
    """A request's read timeout (a number, ``None``, or its :class:`Deadline`) as the
    per-wait timeout and the total deadline (``None`` without one)."""
    if isinstance(timeout, Deadline):
        return timeout.read, timeout
    return timeout, None


def connect_limit(timeout: float | Deadline | None) -> float | None:
    """The connect timeout to open a connection with now, for a request's connect timeout
    (a number, ``None``, or its :class:`Deadline`)."""
    if isinstance(timeout, Deadline):
        return timeout.connect_timeout()
    return timeout


def connect_wait(timeout: float | Deadline | None) -> WaitLimit | None:
    """
    The limit of opening a connection for a request, from now on: its connect timeout (a
    number, ``None``, or its :class:`Deadline`) and its total deadline. It runs through every
    wait opening takes (another thread's connect, then one's own), and says
    :class:`~hyper.common.exceptions.ConnectTimeout` when it is up. ``None`` when nothing
    bounds opening.
    """
    if isinstance(timeout, Deadline):
        return WaitLimit(timeout.connect, None, ConnectTimeout, timeout)
    return None if timeout is None else WaitLimit(timeout, None, ConnectTimeout)


class WaitLimit:
    """
    When one wait for the server gives up: ``timeout`` seconds after it began, or after the
    latest progress when ``progress`` is given (a body read starts again with each piece of
    data), and in any case at the request's total ``deadline``.

    The limit is the waiting thread's own, whatever other threads do meanwhile: being woken
    because another stream's data came does not start it again.

    :param timeout: the per-wait timeout, ``None`` for none.
    :param progress: a count that grows as what the caller waits for comes nearer.
    :param error: the exception class raised when ``timeout`` is up.
    :param deadline: the request's total deadline, if it has one.
    """

    __slots__ = ("at", "by_deadline", "deadline", "error", "mark", "progress", "timeout")

    def __init__(
        self,
        timeout: float | None,
        progress: Callable[[], int] | None,
        error: type[ReadTimeout | ConnectTimeout] = ReadTimeout,
        deadline: Deadline | None = None,
    ) -> None:
        self.timeout = math.inf if timeout is None else timeout
        self.progress = progress
        self.error = error
        self.deadline = deadline
        self.mark = progress() if progress is not None else 0
        self.at = time.monotonic() + self.timeout
        #: The latest :meth:`remaining` was the total deadline's, not the timeout's.
        self.by_deadline = False

    def remaining(self, what: str = "the server") -> float:
        """
        The seconds left (with the lock held that guards what ``progress`` reads).

        :raises ReadTimeout: (or :attr:`error`) if none are left of the per-wait timeout.
        :raises DeadlineExceeded: if the total deadline passed (while connecting,
            :class:`~hyper.common.exceptions.ConnectTimeout`).
        """
        now = time.monotonic()
        progress = self.progress
        if progress is not None:
            mark = progress()
            if mark != self.mark:
                self.mark = mark
                self.at = now + self.timeout
        left = self.at - now
        deadline = self.deadline
        self.by_deadline = deadline is not None and deadline.at - now <= left
        if deadline is not None and self.by_deadline:
            left = deadline.at - now
            if left <= 0:
                if self.error is ConnectTimeout:
                    deadline.connect_timeout()  # raises, saying the deadline passed
                raise deadline.exceeded()
        if left <= 0:
            raise self.error(f"timed out waiting for {what} ({self.timeout:g} s)")
        return left

    def translate(self, error: ReadTimeout) -> ReadTimeout:
        """The error to raise for a wait of :meth:`remaining`'s length that timed out
        (``error``): the total deadline's, when that was what bound the wait."""
        deadline = self.deadline
        if deadline is not None and self.by_deadline:
            return deadline.exceeded()
        return error
