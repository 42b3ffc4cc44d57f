"""Loopback addresses that behave like the network does on a bad day, for the Happy Eyeballs
tests: one that refuses, one that drops every SYN, and a resolver that gives a made-up name
whatever addresses a test wants.

Everything here stays on ``127.0.0.1`` and ``::1``: no packet leaves the machine.

The black hole is a listening socket whose accept queue is full: with a backlog of 0 Linux
queues one connection, and drops the SYNs that arrive behind it (``tcp_abort_on_overflow``
is 0 by default), so a connect to it neither succeeds nor fails until the client gives up.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence
from typing import Any

#: Bound on the helpers' own blocking calls.
SAFETY_TIMEOUT = 5.0

V6 = socket.AF_INET6
V4 = socket.AF_INET


def sockaddr(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """A ``(family, sockaddr)`` pair, as a resolver returns it."""
    if ":" in host:
        return V6, (host, port, 0, 0)
    return V4, (host, port)


def ipv6_loopback_works() -> bool:
    """Whether this machine can listen on, and connect to, ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with (
            socket.create_server(("::1", 0), family=V6) as server,
            socket.create_connection(server.getsockname()[:2], timeout=SAFETY_TIMEOUT),
        ):
            return True
    except OSError:
        return False


def refusing_port(host: str) -> int:
    """A port on ``host`` nothing listens on (a connect is refused at once)."""
    family = V6 if ":" in host else V4
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def black_hole(host: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """A ``(family, sockaddr)`` on ``host`` (a loopback address) that drops every SYN."""
    family = V6 if ":" in host else V4
    listener = socket.socket(family)
    fill = socket.socket(family)
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fill.settimeout(SAFETY_TIMEOUT)
        fill.connect((host, port))  # takes the one place in the accept queue
        yield sockaddr(host, port)
    finally:
        fill.close()
        listener.close()


@contextlib.contextmanager
def listener(host: str) -> Iterator[socket.socket]:
    """A listening socket on ``host``, its accept bounded by :data:`SAFETY_TIMEOUT`."""
    family = V6 if ":" in host else V4
    with socket.create_server((host, 0), family=family) as server:
        server.settimeout(SAFETY_TIMEOUT)
        yield server


Pair = tuple[int, tuple[Any, ...]]


class StaticResolver:
    """A resolver that knows one name; records what it was asked."""

    def __init__(self, name: str, answer: Sequence[Pair]) -> None:
        self.name = name
        self.answer = list(answer)
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, host: str, port: int, family: int) -> list[Pair]:
        self.calls.append((host, port, family))
        if host != self.name:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [pair for pair in self.answer if family in (socket.AF_UNSPEC, pair[0])]
