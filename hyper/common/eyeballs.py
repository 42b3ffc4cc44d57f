"""
Happy Eyeballs version 2 (:rfc:`8305`): how hyper opens every TCP connection, to a server or
to an HTTP proxy.

A host name may resolve to IPv6 and IPv4 addresses, and one of them may be unreachable: an
IPv6 route that drops packets, a firewall that swallows SYNs. Trying the addresses one after
the other, as :func:`socket.create_connection` does, then stalls for the whole connect timeout
before the next address gets its turn. Instead:

1. The name is resolved for both families at once (:func:`system_resolver`, or the caller's
   resolver). ``getaddrinfo`` cannot be cancelled, so when the connection has a deadline it
   runs in a short-lived helper thread and the caller waits for it no longer than the deadline
   (:func:`resolve`). The thread is a daemon; a lookup that outlives the deadline finishes on
   its own and its answer is dropped. Without a deadline the lookup runs in the caller's
   thread. An IP literal is never looked up.
2. The addresses, in the order the system's address selection (:rfc:`6724`) gave them, are
   interleaved by family, starting with the family of the first one (:func:`interleave`,
   :rfc:`8305` section 4 with a "First Address Family Count" of one).
3. The first address is tried with a non-blocking connect; every
   :attr:`ConnectPolicy.delay` seconds (250 ms by default) while no attempt has succeeded the
   next address is tried beside the ones still in flight, at once when an attempt fails.
   One ``poll()`` (``select()`` where there is none) waits for all of them. The first
   attempt that connects wins and the others are closed (:func:`race`).

:rfc:`8305` section 3 asks for separate AAAA and A queries, with a 50 ms "resolution delay"
for an A answer that arrives first. ``getaddrinfo`` with ``AF_UNSPEC`` returns both families
together, sorted, so there is no first answer to wait behind; that costs the time of the
slower query when one of them is slow, which the standard library gives no way around short of
a DNS library of hyper's own. hyper keeps the system's resolver: it honours ``/etc/hosts``,
``nsswitch.conf``, search domains and the platform's DNS settings, which a Python DNS library
would have to imitate.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .exceptions import ConnectTimeout, InvalidRequest, SocketError
from .trace import CONNECT_END, CONNECT_START, DNS_END, DNS_START, ConnectRecorder

__all__ = [
    "DEFAULT_DELAY",
    "MIN_DELAY",
    "Address",
    "Attempt",
    "ConnectPolicy",
    "ConnectReport",
    "Resolver",
    "TCPSocket",
    "connect",
    "interleave",
    "race",
    "resolve",
    "system_resolver",
]

#: Seconds an attempt has to itself before the next address is tried beside it (the
#: "Connection Attempt Delay" of :rfc:`8305` section 5, whose recommended value it is).
DEFAULT_DELAY = 0.25

#: The shortest delay allowed: :rfc:`8305` section 5 forbids less than 10 ms.
MIN_DELAY = 0.01

#: The address families hyper connects over.
FAMILIES = (socket.AF_INET6, socket.AF_INET)

_HAS_POLL = hasattr(select, "poll")
_POLLOUT = getattr(select, "POLLOUT", 4)
#: What a non-blocking connect() answers when the attempt is under way.
_IN_PROGRESS = frozenset(
    code
    for code in (
        errno.EINPROGRESS,
        errno.EWOULDBLOCK,
        errno.EINTR,
        getattr(errno, "WSAEWOULDBLOCK", None),
    )
    if code is not None
)


class Address(NamedTuple):
    """One address to connect to, as :func:`socket.getaddrinfo` gives it."""

    #: ``socket.AF_INET6`` or ``socket.AF_INET``.
    family: int
    #: The address for :meth:`socket.socket.connect`: ``(host, port)`` for IPv4,
    #: ``(host, port, flowinfo, scope_id)`` (or just ``(host, port)``) for IPv6.
    sockaddr: tuple[Any, ...]

    @property
    def host(self) -> str:
        """The IP address, as text."""
        return str(self.sockaddr[0])

    def __str__(self) -> str:
        host = self.host
        return f"[{host}]:{self.sockaddr[1]}" if ":" in host else f"{host}:{self.sockaddr[1]}"


#: A resolver: called with the host name, the port and the address family wanted
#: (``socket.AF_UNSPEC`` for any, or the family :attr:`ConnectPolicy.family` pins), it returns
#: the addresses to try as ``(family, sockaddr)`` pairs (the first and last items of what
#: :func:`socket.getaddrinfo` returns), best first. The port in each ``sockaddr`` is used as
#: given. It signals a failure with an :class:`OSError` (``socket.gaierror`` included).
Resolver = Callable[[str, int, int], Iterable[tuple[int, tuple[Any, ...]]]]


def system_resolver(host: str, port: int, family: int) -> list[tuple[int, tuple[Any, ...]]]:
    """
    The default :data:`Resolver`: :func:`socket.getaddrinfo` for TCP, which applies the
    system's hosts file, DNS settings and destination address selection (:rfc:`6724`).
    """
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    return [(info[0], info[4]) for info in infos]


class ConnectPolicy(NamedTuple):
    """
    How a connection picks and races addresses: the ``happy_eyeballs_delay``,
    ``address_family`` and ``resolver`` arguments of the connection classes.
    :meth:`build` checks them.
    """

    #: Seconds before the next address is tried beside those in flight.
    delay: float = DEFAULT_DELAY
    #: ``socket.AF_INET`` or ``socket.AF_INET6`` to use that family only; ``None`` for both.
    family: int | None = None
    #: The :data:`Resolver` for host names; ``None`` for :func:`system_resolver`.
    resolver: Resolver | None = None

    @classmethod
    def build(
        cls,
        delay: float = DEFAULT_DELAY,
        family: int | None = None,
        resolver: Resolver | None = None,
    ) -> ConnectPolicy:
        """
        A checked policy. ``family`` may also be ``socket.AF_UNSPEC``, which means ``None``.

        :raises InvalidRequest: for a delay that is no number or under :data:`MIN_DELAY`, a
            family other than IPv4 or IPv6, or a resolver that cannot be called.
        """
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not math.isfinite(delay)
            or delay < MIN_DELAY
        ):
            raise InvalidRequest(
                f"happy_eyeballs_delay must be a number of seconds, at least {MIN_DELAY}: "
                f"{delay!r}"
            )
        if family == socket.AF_UNSPEC:
            family = None
        if family is not None and family not in FAMILIES:
            raise InvalidRequest(
                f"address_family must be socket.AF_INET, socket.AF_INET6 or None: {family!r}"
            )
        if resolver is not None and not callable(resolver):
            raise InvalidRequest(f"resolver must be callable: {resolver!r}")
        return cls(float(delay), family, resolver)


#: The policy of a connection that sets none of its arguments.
DEFAULT_POLICY = ConnectPolicy()


class Attempt(NamedTuple):
    """One connection attempt of a race."""

    #: The address tried.
    address: Address
    #: When it started (:func:`time.monotonic`).
    started: float
    #: When it connected, failed or was abandoned.
    ended: float
    #: Why it failed; ``None`` if it connected, or was abandoned still in flight.
    error: OSError | None


class ConnectReport(NamedTuple):
    """How a TCP connection was opened: what was resolved and which address won."""

    #: The address connected to.
    address: Address
    #: The addresses in the order they were (or would have been) tried.
    addresses: tuple[Address, ...]
    #: Every attempt made, in the order they started; the winner's ``error`` is ``None``.
    attempts: tuple[Attempt, ...]
    #: When resolving started and ended (:func:`time.monotonic`); equal for an IP literal.
    resolve_started: float
    resolve_ended: float
    #: When the winning attempt connected.
    connected: float


class TCPSocket(socket.socket):
    """A socket :func:`connect` opened, which remembers how."""

    __slots__ = ("connect_report",)

    #: How the connection was opened.
    connect_report: ConnectReport


def ip_literal(host: str, port: int) -> Address | None:
    """The address ``host`` spells, if it is an IPv4 or IPv6 literal (brackets allowed);
    ``None`` for a name, or a literal with a zone id (which needs the resolver)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    for family in FAMILIES:
        try:
            socket.inet_pton(family, bare)
        except (OSError, ValueError):
            continue
        return Address(family, (bare, port) if family == socket.AF_INET else (bare, port, 0, 0))
    return None


def interleave(addresses: Iterable[Address], first_family_count: int = 1) -> list[Address]:
    """
    Order addresses for connecting (:rfc:`8305` section 4): ``first_family_count`` addresses
    of the first address's family, then one of the other family, then alternately one of
    each, keeping each family's own order. Duplicates are dropped.
    """
    unique = list(dict.fromkeys(addresses))
    if not unique:
        return []
    first = unique[0].family
    preferred = [a for a in unique if a.family == first]
    other = [a for a in unique if a.family != first]
    ordered = preferred[:first_family_count]
    rest = preferred[first_family_count:]
    for index in range(max(len(rest), len(other))):
        ordered.extend(other[index : index + 1])
        ordered.extend(rest[index : index + 1])
    return ordered


class _Lookup:
    """A resolver call running in a helper thread, and what it returned or raised."""

    def __init__(self, call: Callable[[], list[Address]]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: list[Address] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # handed to the waiting caller, who raises it
            self.error = exc
        finally:
            self.done.set()


def resolve(
    host: str,
    port: int,
    policy: ConnectPolicy,
    deadline: float | None,
    recorder: ConnectRecorder | None = None,
) -> list[Address]:
    """
    The addresses of ``host``, interleaved (:func:`interleave`) and limited to the policy's
    family. An IP literal is returned as is, without calling the resolver.

    :param deadline: the :func:`time.monotonic` time resolving must end by: the resolver
        then runs in a helper thread. ``None`` runs it in the caller's thread.
    :param recorder: where the ``dns_start`` and ``dns_end`` phases go (not for an IP
        literal, which is not looked up).
    :raises ConnectTimeout: if the resolver has not answered by ``deadline``.
    :raises SocketError: if the name does not resolve, or to no address of the family.
    :raises InvalidRequest: if the resolver returns something that is no address.
    """
    literal = ip_literal(host, port)
    if literal is not None:
        if policy.family is not None and literal.family != policy.family:
            raise SocketError(
                f"cannot connect to {host}:{port}: not an {_family_name(policy.family)} address"
            )
        return [literal]
    resolver = policy.resolver or system_resolver
    wanted = policy.family if policy.family is not None else socket.AF_UNSPEC

    def lookup() -> list[Address]:
        return _checked(resolver(host, port, wanted), host)

    if recorder is not None:
        recorder.mark(DNS_START, {"host": host})
    try:
        found = _lookup(host, port, lookup, deadline)
    except BaseException as exc:
        if recorder is not None:
            recorder.mark(DNS_END, {"host": host, "error": exc})
        raise
    if policy.family is not None:
        found = [a for a in found if a.family == policy.family]
    ordered = interleave(found)
    if recorder is not None:
        recorder.mark(DNS_END, {"host": host, "addresses": [str(a) for a in ordered]})
    if not ordered:
        which = "" if policy.family is None else f" {_family_name(policy.family)}"
        raise SocketError(f"cannot resolve host {host!r}: no{which} address")
    return ordered


def _lookup(
    host: str, port: int, lookup: Callable[[], list[Address]], deadline: float | None
) -> list[Address]:
    """Run ``lookup``, in a helper thread waited for until ``deadline`` if there is one;
    its failures become hyper exceptions."""
    try:
        if deadline is None:
            found = lookup()
        else:
            job = _Lookup(lookup)
            threading.Thread(target=job.run, name=f"hyper-resolve {host}", daemon=True).start()
            if not job.done.wait(max(deadline - time.monotonic(), 0.0)):
                raise ConnectTimeout(f"timed out connecting to {host}:{port} (resolving {host})")
            if job.error is not None:
                raise job.error
            found = job.result
    except OSError as exc:
        if isinstance(exc, SocketError):
            raise
        raise SocketError(f"cannot resolve host {host!r}: {exc}") from exc
    except UnicodeError as exc:  # an "IPv6 address" that is none, with an over-long label
        raise InvalidRequest(f"invalid host name {host!r}: {exc}") from exc
    return found


def _checked(entries: Iterable[tuple[int, tuple[Any, ...]]], host: str) -> list[Address]:
    """The resolver's answer as addresses, refusing what is none."""
    addresses = []
    for entry in entries:
        try:
            family, sockaddr = entry
            valid = family in FAMILIES and isinstance(sockaddr, tuple) and len(sockaddr) >= 2
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise InvalidRequest(
                f"the resolver returned {entry!r} for {host!r}: expected (family, sockaddr) "
                "with an AF_INET or AF_INET6 family"
            )
        addresses.append(Address(family, tuple(sockaddr)))
    return addresses


def _family_name(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


class _Racer:
    """The attempts of one race: the sockets in flight and what became of each."""

    def __init__(self, recorder: ConnectRecorder | None = None) -> None:
        #: Where each attempt's start and end are reported, if anywhere.
        self.recorder = recorder if recorder is not None and recorder.tracing else None
        #: Attempts in flight: file descriptor -> socket, address, start time.
        self.pending: dict[int, tuple[TCPSocket, Address, float]] = {}
        self.done: list[Attempt] = []
        self.winner: tuple[TCPSocket, Address] | None = None
        self.poller = select.poll() if _HAS_POLL else None

    def start(self, address: Address) -> bool:
        """Start an attempt; whether it is in flight (it may connect, or fail, at once)."""
        started = time.monotonic()
        if self.recorder is not None:
            self.recorder.tracer.emit(CONNECT_START, None, {"address": str(address)}, started)
        try:
            sock = TCPSocket(address.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except OSError as exc:  # the family is not supported here
            self._record(Attempt(address, started, time.monotonic(), exc))
            return False
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address.sockaddr)
        except (OSError, OverflowError, TypeError) as exc:  # a sockaddr the OS refuses
            sock.close()
            error = exc if isinstance(exc, OSError) else OSError(errno.EINVAL, str(exc))
            self._record(Attempt(address, started, time.monotonic(), error))
            return False
        if code not in _IN_PROGRESS:
            self._settle(sock, address, started, code)
            return False
        fd = sock.fileno()
        self.pending[fd] = (sock, address, started)
        if self.poller is not None:
            self.poller.register(fd, _POLLOUT)
        return True

    def wait(self, timeout: float | None) -> list[int]:
        """The descriptors whose attempt has finished, waiting at most ``timeout``."""
        if self.poller is not None:
            ms = None if timeout is None else max(math.ceil(timeout * 1000), 0)
            return [fd for fd, _ in self.poller.poll(ms)]
        fds = list(self.pending)
        # Windows reports a failed connect among the "exceptional" descriptors.
        _, writable, failed = select.select([], fds, fds, timeout)
        return list(dict.fromkeys(writable + failed))

    def finish(self, fd: int) -> None:
        """Settle the attempt on ``fd``, which poll() reported done."""
        sock, address, started = self.pending[fd]
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            try:
                sock.getpeername()
            except OSError:  # a spurious wake-up: still connecting
                return
        self._drop(fd)
        self._settle(sock, address, started, code)

    def _settle(self, sock: TCPSocket, address: Address, started: float, code: int) -> None:
        """Record an attempt that ended with ``code`` (0: connected)."""
        if code == 0:
            self.winner = (sock, address)
            self._record(Attempt(address, started, time.monotonic(), None), "connected")
            return
        sock.close()
        # OSError(code, ...) is the subclass for the code: ConnectionRefusedError...
        self._record(Attempt(address, started, time.monotonic(), OSError(code, _strerror(code))))

    def _record(self, attempt: Attempt, outcome: str = "failed") -> None:
        """Keep an attempt that ended, and report it."""
        self.done.append(attempt)
        if self.recorder is not None:
            info = {"address": str(attempt.address), "outcome": outcome, "error": attempt.error}
            self.recorder.tracer.emit(CONNECT_END, None, info, attempt.ended)

    def _drop(self, fd: int) -> None:
        del self.pending[fd]
        if self.poller is not None:
            self.poller.unregister(fd)

    def abandon(self) -> None:
        """Close every attempt still in flight."""
        now = time.monotonic()
        for fd in list(self.pending):
            sock, address, started = self.pending[fd]
            self._drop(fd)
            sock.close()
            self._record(Attempt(address, started, now, None), "abandoned")


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"


def race(
    addresses: list[Address],
    delay: float,
    deadline: float | None,
    recorder: ConnectRecorder | None = None,
) -> tuple[tuple[TCPSocket, Address] | None, list[Attempt]]:
    """
    Connect to the first of ``addresses`` that accepts, starting the next attempt ``delay``
    seconds after the last one started, or at once when one fails, while earlier ones are
    still in flight. The losers are closed.

    :param deadline: the :func:`time.monotonic` time to give up at; ``None`` for never.
    :param recorder: where each attempt's ``connect_start`` and ``connect_end`` events go,
        as the attempt starts and ends.
    :returns: the connected socket (non-blocking) and its address, or ``None`` if every
        attempt failed or the deadline passed; and the attempts, in the order they started.
    """
    racer = _Racer(recorder)
    queue = list(reversed(addresses))
    next_start = 0.0
    try:
        while racer.winner is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if queue and (not racer.pending or now >= next_start):
                # One that failed at once hands over at once, as one that fails later does.
                next_start = now + delay if racer.start(queue.pop()) else now
                continue
            if not racer.pending:
                break
            timeout = None if deadline is None else deadline - now
            if queue:
                timeout = next_start - now if timeout is None else min(timeout, next_start - now)
            for fd in racer.wait(None if timeout is None else max(timeout, 0.0)):
                racer.finish(fd)
                if racer.winner is not None:
                    break
                if fd not in racer.pending:  # it failed: the next address goes now
                    next_start = now
    finally:
        racer.abandon()
    return racer.winner, sorted(racer.done, key=lambda attempt: attempt.started)


def connect(
    host: str,
    port: int,
    timeout: float | None,
    policy: ConnectPolicy = DEFAULT_POLICY,
    recorder: ConnectRecorder | None = None,
) -> TCPSocket:
    """
    Open a TCP connection to ``host``:``port`` with Happy Eyeballs: resolve, interleave,
    race. ``timeout`` bounds all of it, resolving included.

    :param recorder: where the ``dns_*`` phases, the ``connect_*`` phases (the whole race)
        and the events of each attempt go.

    :returns: the socket (blocking, its timeout ``timeout``); its ``connect_report`` says
        how it was opened.
    :raises ConnectTimeout: if ``timeout`` passes first, or every attempt timed out.
    :raises SocketError: if the name does not resolve, or every address failed (the message
        names each address tried with its error).
    :raises InvalidRequest: for a host that is no valid name, or a resolver's bad answer.
    """
    resolve_started = time.monotonic()
    deadline = None if timeout is None else resolve_started + timeout
    addresses = resolve(host, port, policy, deadline, recorder)
    resolve_ended = time.monotonic()
    if recorder is not None:
        recorder.phases.connect_start = time.monotonic()
    winner, attempts = race(addresses, policy.delay, deadline, recorder)
    if winner is None:
        raise _failure(host, port, attempts, deadline)
    sock, address = winner
    if recorder is not None:
        recorder.phases.connect_end = time.monotonic()
    sock.settimeout(timeout)
    sock.connect_report = ConnectReport(
        address=address,
        addresses=tuple(addresses),
        attempts=tuple(attempts),
        resolve_started=resolve_started,
        resolve_ended=resolve_ended,
        connected=time.monotonic(),
    )
    return sock


def _failure(host: str, port: int, attempts: list[Attempt], deadline: float | None) -> SocketError:
    """The error for a race nobody won."""
    failed = [attempt for attempt in attempts if attempt.error is not None]
    tried = ", ".join(str(attempt.address) for attempt in attempts)
    timed_out = deadline is not None and time.monotonic() >= deadline
    if timed_out or (failed and all(isinstance(a.error, TimeoutError) for a in failed)):
        detail = f" ({tried})" if tried else ""
        error: SocketError = ConnectTimeout(f"timed out connecting to {host}:{port}{detail}")
    elif len(failed) == 1:
        error = SocketError(f"cannot connect to {host}:{port}: {failed[0].error}")
    else:
        reasons = "; ".join(f"{a.address}: {a.error}" for a in failed)
        error = SocketError(f"cannot connect to {host}:{port}: {reasons}")
    if failed:
        error.__cause__ = failed[-1].error
    return error
