"""
Small pieces of a hand-written HTTP/1.1 server, for socket handlers that script a peer byte by
byte where :mod:`tests.support.http11`'s request reader would read too much or too little
(a proxy answering CONNECT, a server answering before the request body has arrived).
"""

from __future__ import annotations

import socket

__all__ = ["recv_head"]


def recv_head(sock: socket.socket, timeout: float) -> bytes | None:
    """Receive from ``sock`` until a whole request head (up to the blank line) has arrived,
    waiting at most ``timeout`` for each read.

    :returns: all bytes received, the head and whatever came with its last part (the start
        of a body, or tunnelled bytes); None if the client closed the connection first.
    """
    sock.settimeout(timeout)
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            return None
        head += data
    return head
