"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

#: Upper bound, in seconds, on a blocking call on a ``pair`` socket: a bug cannot hang the run.
PAIR_TIMEOUT = 5.0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected stream sockets, (ours, the peer's), closed after the test."""
    ours, peer = socket.socketpair()
    ours.settimeout(PAIR_TIMEOUT)
    peer.settimeout(PAIR_TIMEOUT)
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()
