"""
Waiting for other threads: a condition variable that knows whether anyone waits on it, and
the two waits a thread gives up on by its own time limit, never by another thread's.

The HTTP/2 reader wakes the other threads after every socket read, in case one of them waits
for the data it brought. Most programs use a connection from one thread, so usually nobody
waits; :class:`Condition` then makes :meth:`~Condition.notify_all` a single comparison
instead of the standard library's three Python calls.

A lock that its holder keeps while it waits for the network (an HTTP/1.1 exchange sending
its request, a connection being opened) would make every other thread wait as long, however
little time its own request has left. :func:`acquire_within` takes such a lock within a
:class:`~hyper.common.timeout.WaitLimit`, and :class:`ChangeSignal` lets a thread wait for
the holder to finish without that lock: a :class:`threading.Condition` on it could not give
up, since its ``wait()`` takes the lock back before it returns, however long that takes.
"""

from __future__ import annotations

import threading

from .timeout import Deadline, WaitLimit, connect_wait

__all__ = [
    "ChangeSignal",
    "Condition",
    "acquire_within",
    "connect_time_left",
    "take_connect_lock",
]


class Condition(threading.Condition):
    """
    A :class:`threading.Condition` that counts its waiters.

    :param lock: the lock the condition uses (a new :class:`threading.RLock` if ``None``).
        Callers that hold a reference to it may enter ``lock`` itself instead of the
        condition (``with lock:``): that is the same lock, entered without a Python call.
    """

    def __init__(self, lock: threading.Lock | threading.RLock | None = None) -> None:
        if lock is None:
            lock = threading.RLock()
        super().__init__(lock)
        #: The lock this condition uses.
        self.lock = lock
        #: How many threads are in :meth:`wait` now. Only changed with the lock held, so
        #: exact whenever the lock is held.
        self.waiting = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (the lock held) until notified or until ``timeout`` seconds pass; see
        :meth:`threading.Condition.wait`.

        :returns: False if the wait timed out, else True.
        """
        self.waiting += 1
        try:
            return super().wait(timeout)
        finally:
            self.waiting -= 1

    def notify_all(self) -> None:
        """Wake every waiting thread (the lock held); nothing to do when none waits."""
        if self.waiting:
            super().notify_all()


def acquire_within(
    lock: threading.Lock | threading.RLock, limit: WaitLimit | None, what: str
) -> None:
    """
    Take ``lock``, waiting no longer than ``limit`` allows.

    :param limit: the caller's limit; ``None`` waits as long as it takes.
    :param what: what the caller waits for, for the error message.
    :raises ReadTimeout: (or the limit's error) if the limit's timeout passes first.
    :raises DeadlineExceeded: if the limit's total deadline passes first (while connecting,
        :class:`~hyper.common.exceptions.ConnectTimeout`).
    """
    if limit is None:
        lock.acquire()
        return
    while not lock.acquire(timeout=limit.remaining(what)):
        pass  # remaining() raises once no time is left


class ChangeSignal:
    """
    A count of the changes to some state that another lock guards, which threads wait on
    without holding that lock.

    A waiter reads :attr:`count` with the other lock held (the state is not what it needs),
    lets that lock go and calls :meth:`wait_past`; whoever changes the state, with the other
    lock held, calls :meth:`notify_all` after it. The waiter then takes the other lock back
    itself (:func:`acquire_within`), by its own limit.
    """

    __slots__ = ("_cond", "count")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        #: How many changes there have been.
        self.count = 0

    def notify_all(self) -> None:
        """Count a change and wake the threads waiting for one."""
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_past(self, mark: int, limit: WaitLimit | None, what: str) -> None:
        """
        Wait until :attr:`count` is no longer ``mark``.

        :param limit: the caller's limit; ``None`` waits as long as it takes.
        :param what: what the caller waits for, for the error message.
        :raises ReadTimeout: (or the limit's error) if the limit's timeout passes first.
        :raises DeadlineExceeded: if the limit's total deadline passes first.
        """
        with self._cond:
            while self.count == mark:
                self._cond.wait(None if limit is None else limit.remaining(what))


#: What a request waits for while its connection is being opened.
_OPENING = "the connection to be opened"


def take_connect_lock(
    lock: threading.Lock | threading.RLock, connect_timeout: float | Deadline | None
) -> WaitLimit | None:
    """
    Take a connection's connect lock, which a thread opening the connection holds until it
    is open (or failed), within a request's ``connect_timeout`` (a number, ``None``, or its
    :class:`~hyper.common.timeout.Deadline`): a request waits for another thread's connect
    no longer than for its own.

    :returns: the limit of opening, running since the wait began (see
        :func:`~hyper.common.timeout.connect_wait`); :func:`connect_time_left` says what is
        left of it for connecting. ``None`` when nothing bounds opening.
    :raises ConnectTimeout: if the lock is not free in time (saying that the total deadline
        passed, when that is what bound the wait).
    """
    limit = connect_wait(connect_timeout)
    acquire_within(lock, limit, _OPENING)
    return limit


def connect_time_left(limit: WaitLimit | None) -> float | None:
    """
    The connect timeout left of ``limit`` (from :func:`take_connect_lock`); ``None`` for no
    limit.

    :raises ConnectTimeout: if none is left.
    """
    return None if limit is None else limit.remaining(_OPENING)
