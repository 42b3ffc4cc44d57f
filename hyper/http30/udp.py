"""
:class:`DatagramSocket`: a connected, non-blocking UDP socket for one QUIC connection, with
``poll()``-based waits that another thread can interrupt.

Errors of the socket become hyper exceptions here, once. One exception to that: an ICMP
"port unreachable" (``ECONNREFUSED`` on a connected UDP socket) is noted, not raised. Such
messages are not authenticated, and QUIC does not end a connection on them (RFC 9000 section
14.2.1 and section 21.12): a handshake that gets no answer fails at the connect timeout, and
its message says the port was reported unreachable.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from typing import Any

from ..common.exceptions import SocketError
from ..common.eyeballs import DEFAULT_POLICY, Address, ip_literal, resolve
from ..common.trace import DNS_END, DNS_START, ConnectRecorder
from ..common.util import POLL_SLICE

__all__ = ["DatagramSocket", "open_datagram_socket"]

#: The most datagrams taken in one read: enough to empty a burst, few enough that the
#: acknowledgements and window updates they call for go out promptly.
BATCH = 64

#: The largest UDP payload that can arrive.
_MAX_DATAGRAM = 65535

#: The receive buffer asked of the kernel (it may grant less): room for a burst of a fast
#: download while the reader is busy processing the previous one.
_RECEIVE_BUFFER = 4 * 1024 * 1024


def open_datagram_socket(
    host: str,
    port: int,
    timeout: float | None = None,
    recorder: ConnectRecorder | None = None,
) -> DatagramSocket:
    """
    A UDP socket connected to ``host:port`` (the first address the name resolves to, as
    :func:`hyper.common.eyeballs.resolve` orders them).

    :param timeout: bound on resolving the name, in seconds (``None``: none; the lookup
        then runs in the caller's thread).
    :param recorder: where the ``dns_start`` and ``dns_end`` phases go (not for an IP
        address, which is not looked up).
    :raises SocketError: if the name does not resolve or the socket cannot be made.
    :raises ConnectTimeout: if resolving takes longer than ``timeout``.
    :raises InvalidRequest: if ``host`` is no valid host name.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    # An IP address is not looked up: it has no DNS phase.
    dns = recorder if recorder is not None and ip_literal(host, port) is None else None
    if dns is not None:
        dns.mark(DNS_START, {"host": host, "transport": "quic"})
    try:
        first = resolve(host, port, DEFAULT_POLICY, deadline)[0]
    except BaseException as exc:
        if dns is not None:
            dns.mark(DNS_END, {"host": host, "error": exc, "transport": "quic"})
        raise
    if dns is not None:
        dns.mark(DNS_END, {"host": host, "addresses": [str(first)], "transport": "quic"})
    address = first.sockaddr
    sock = socket.socket(first.family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        except OSError:
            pass  # a smaller buffer only means more loss under load
        sock.setblocking(False)
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise SocketError(f"cannot open a UDP socket to {host}:{port}: {exc}") from exc
    return DatagramSocket(sock, address)


class DatagramSocket:
    """
    A connected UDP socket in non-blocking mode, and a way to wake the thread that waits on
    it.

    :param sock: the socket, connected and non-blocking; owned from now on.
    :param address: the address it is connected to.
    """

    def __init__(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        self.sock = sock
        #: The peer's address (as QUIC is told about it).
        self.address = address
        #: That address as text, ``host:port`` (an IPv6 address in brackets).
        self.peer = str(Address(sock.family, address))
        #: The network reported the peer's port unreachable (ICMP) at least once.
        self.refused = False
        self._waker_pair = socket.socketpair()
        for end in self._waker_pair:
            end.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._poll.register(self._waker_pair[0].fileno(), select.POLLIN)
        self.closed = False

    def __repr__(self) -> str:
        return f"<DatagramSocket {self.address!r}{' closed' if self.closed else ''}>"

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self.sock.fileno()

    def wait_readable(self, timeout: float | None) -> None:
        """
        Wait until a datagram may be read, :meth:`wake` is called, or ``timeout`` seconds
        pass (at most :data:`~hyper.common.util.POLL_SLICE` per ``poll()``, so that signals
        are handled). Returns in every case; the caller looks at what is there.
        """
        wait = POLL_SLICE if timeout is None else min(max(timeout, 0.0), POLL_SLICE)
        try:
            ready = self._poll.poll(wait * 1000)
        except OSError:
            return  # closed meanwhile: the caller sees it when it reads
        waker = self._waker_pair[0].fileno()
        if any(fd == waker for fd, _ in ready):
            try:
                while self._waker_pair[0].recv(4096):
                    pass
            except OSError:
                pass  # drained

    def wake(self) -> None:
        """Interrupt a :meth:`wait_readable` in another thread."""
        try:
            self._waker_pair[1].send(b"\0")
        except OSError:
            pass  # the pipe is full (a wake is pending already) or closed

    def receive(self, limit: int = BATCH) -> list[bytes]:
        """
        Up to ``limit`` datagrams that have arrived, without waiting (possibly none).

        :raises SocketError: if the socket failed.
        """
        datagrams: list[bytes] = []
        recv = self.sock.recv
        while len(datagrams) < limit:
            try:
                datagrams.append(recv(_MAX_DATAGRAM))
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                self.refused = True
            except OSError as exc:
                if self.closed:
                    break
                raise SocketError(f"receiving from {self.address!r} failed: {exc}") from exc
        return datagrams

    def send(self, datagrams: list[bytes]) -> None:
        """
        Send datagrams. One that the kernel has no room for is dropped, as the network may
        drop it: QUIC sends it again.

        :raises SocketError: if the socket failed.
        """
        send = self.sock.send
        for data in datagrams:
            try:
                send(data)
            except BlockingIOError:
                pass  # lost, as on the network
            except ConnectionRefusedError:
                self.refused = True
            except OSError as exc:
                if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                    continue  # too large for this path, or no buffer now: lost
                raise SocketError(f"sending to {self.address!r} failed: {exc}") from exc

    def close(self) -> None:
        """Close the socket; a thread waiting on it is woken."""
        if self.closed:
            return
        self.closed = True
        self.wake()
        self.sock.close()
        for end in self._waker_pair:
            end.close()
