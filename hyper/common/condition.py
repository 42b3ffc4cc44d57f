"""
A condition variable that knows whether anyone waits on it.

The HTTP/2 reader wakes the other threads after every socket read, in case one of them waits
for the data it brought. Most programs use a connection from one thread, so usually nobody
waits; :class:`Condition` then makes :meth:`~Condition.notify_all` a single comparison
instead of the standard library's three Python calls.
"""

from __future__ import annotations

import threading


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
