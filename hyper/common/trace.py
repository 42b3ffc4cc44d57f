"""
Per-request phase timings and trace events, for every protocol.

Every response carries a :class:`Timings`: :func:`time.monotonic` timestamps of the phases of
its request (resolving the host name, connecting, the TLS handshake, waiting for a stream
slot, sending, waiting for the response, reading its body) and their durations. Recording
them costs a few clock reads and attribute stores per request.

A connection given a trace hook (``trace=``, a callable taking one :class:`TraceEvent`) also
reports named events as they happen, the per-address attempts of the Happy Eyeballs race
included. :class:`Tracer` delivers them: a hook that raises is logged on the
``hyper.trace`` logger and detached, and the request goes on as if nothing happened. Without
a hook no event object is made.

This module knows nothing of protocols: the connection classes record into it, and hand the
layers below them (the socket helpers, the transports) a :class:`Tracer` or a
:class:`ConnectRecorder` to report through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .exceptions import InvalidRequest

__all__ = [
    "CONNECT_END",
    "CONNECT_START",
    "DNS_END",
    "DNS_START",
    "EVENTS",
    "GOAWAY",
    "QUEUED_END",
    "QUEUED_START",
    "REQUEST_BODY_SENT",
    "REQUEST_HEADERS_SENT",
    "RESPONSE_BODY_DONE",
    "RESPONSE_HEADERS",
    "STREAM_RESET",
    "TLS_END",
    "TLS_START",
    "ConnectRecorder",
    "Timings",
    "TraceEvent",
    "TraceHook",
    "Tracer",
    "tracer_for",
]

#: The logger a raising hook is reported on.
logger = logging.getLogger("hyper.trace")

#: Resolving the host name began (not reported for an IP address, which is not looked up).
#: ``info``: ``host``.
DNS_START = "dns_start"
#: Resolving ended. ``info``: ``host``; ``addresses`` (the addresses to try, as text, in the
#: order they will be tried) or ``error`` (the exception) if it failed.
DNS_END = "dns_end"
#: One connection attempt began: reported once per address the Happy Eyeballs race tries,
#: when it tries it, so attempts in flight together overlap. Through a proxy the address is
#: the proxy's. ``info``: ``address`` (``"host:port"``, IPv6 in brackets). Over QUIC, one
#: attempt (its handshake), and the events of connecting have ``transport: "quic"`` in
#: ``info``.
CONNECT_START = "connect_start"
#: One connection attempt ended. ``info``: ``address``; ``outcome``: ``"connected"``,
#: ``"failed"`` or ``"abandoned"`` (still in flight when another address won, or at the
#: deadline); ``error``: the :class:`OSError` of a failed attempt (over QUIC, the
#: :class:`~hyper.HyperError`), else ``None``.
CONNECT_END = "connect_end"
#: The TLS handshake began. ``info``: ``server_name``.
TLS_START = "tls_start"
#: The TLS handshake ended. ``info``: ``version`` (e.g. ``"TLSv1.3"``) and ``alpn`` (the
#: protocol the server selected, or ``None``); ``error`` instead if it failed.
TLS_END = "tls_end"
#: A request began waiting for a stream slot (HTTP/2, HTTP/3: the server's limit on
#: concurrent streams was reached). ``stream_id``: ``None``, as the request has no stream
#: yet (unless ``putrequest()`` reserved one). ``info``: empty.
QUEUED_START = "queued_start"
#: The request got its slot. ``stream_id``: its stream. ``info``: empty.
QUEUED_END = "queued_end"
#: The request's head was handed to the socket. ``stream_id``: its stream (HTTP/2, HTTP/3).
#: ``info``: ``method`` and ``target`` (the request target as sent: the path and query;
#: to an HTTP proxy in plain http, the absolute URL).
REQUEST_HEADERS_SENT = "request_headers_sent"
#: The request's last byte was handed to the socket. ``info``: ``bytes`` (body bytes sent).
REQUEST_BODY_SENT = "request_body_sent"
#: A response head arrived (each interim 1xx head too). ``info``: ``status``.
RESPONSE_HEADERS = "response_headers"
#: The response body was read to its end. ``info``: empty.
RESPONSE_BODY_DONE = "response_body_done"
#: A stream was reset. ``info``: ``error_code`` (an int) and ``by`` (``"server"`` or
#: ``"client"``).
STREAM_RESET = "stream_reset"
#: The server sent GOAWAY. ``stream_id``: ``None``. ``info``: ``last_stream_id`` and
#: ``error_code``. HTTP/3's GOAWAY names the first stream *not* processed and has no error
#: code: ``info`` adds that id as ``goaway_id``, ``last_stream_id`` is the one before it
#: (``None`` for none) and ``error_code`` is ``None``.
GOAWAY = "goaway"

#: Every event name hyper reports.
EVENTS = frozenset(
    (
        DNS_START,
        DNS_END,
        CONNECT_START,
        CONNECT_END,
        TLS_START,
        TLS_END,
        QUEUED_START,
        QUEUED_END,
        REQUEST_HEADERS_SENT,
        REQUEST_BODY_SENT,
        RESPONSE_HEADERS,
        RESPONSE_BODY_DONE,
        STREAM_RESET,
        GOAWAY,
    )
)

_NO_INFO: Mapping[str, object] = {}


class TraceEvent(NamedTuple):
    """One thing that happened on a connection, as a trace hook receives it."""

    #: What happened: one of the event name constants of :mod:`hyper.common.trace`.
    name: str
    #: When, as a :func:`time.monotonic` timestamp (comparable with :class:`Timings`).
    at: float
    #: The stream the event is about (HTTP/2 and HTTP/3); ``None`` for HTTP/1.1 and for
    #: events about the connection.
    stream_id: int | None
    #: Details; each event name's constant says which keys it has.
    info: Mapping[str, object]


#: A trace hook: called with each :class:`TraceEvent`, in the thread that drives the event.
TraceHook = Callable[[TraceEvent], None]


def _between(begin: float | None, end: float | None) -> float | None:
    if begin is None or end is None:
        return None
    return end - begin


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}ms"


class Timings:
    """
    When each phase of one request happened: :func:`time.monotonic` timestamps (``None`` for
    a phase that did not happen), and durations computed from them in seconds.

    A request that opened its connection carries the connection's ``dns_*``, ``connect_*``
    and ``tls_*`` phases; one that ran on a connection opened earlier (a keep-alive
    connection, another stream of an HTTP/2 connection, including a connection another
    thread was opening while this request waited for it) has :attr:`reused` set and those
    phases ``None``. A connection opened by an explicit ``connect()`` gives its phases to the
    first request sent on it; they then come before :attr:`start`.

    Through an HTTP proxy, ``connect_*`` is the connection to the proxy; asking it for a
    ``CONNECT`` tunnel has no phase of its own: it lies between :attr:`connect_end` and
    :attr:`tls_start` (without TLS, it counts in :attr:`send`).

    Over HTTP/3, TLS runs inside the QUIC handshake: ``connect_*`` and ``tls_*`` both span
    that handshake, so :attr:`connect` and :attr:`tls` are the same time, not two that add
    up.
    """

    __slots__ = (
        "body_done",
        "connect_end",
        "connect_start",
        "dns_end",
        "dns_start",
        "first_byte",
        "headers_sent",
        "protocol",
        "queued_end",
        "queued_start",
        "request_sent",
        "reused",
        "start",
        "tls_end",
        "tls_start",
    )

    #: When resolving the host name began (``None`` for an IP address).
    dns_start: float | None
    #: When resolving the host name ended.
    dns_end: float | None
    #: When connecting began: the whole Happy Eyeballs race; through a proxy, the connection
    #: to the proxy.
    connect_start: float | None
    #: When connecting ended.
    connect_end: float | None
    #: When the TLS handshake began (``None`` without TLS).
    tls_start: float | None
    #: When the TLS handshake ended.
    tls_end: float | None
    #: When the request began waiting for a stream slot (``None`` if it never waited).
    queued_start: float | None
    #: When the request stopped waiting for a stream slot.
    queued_end: float | None
    #: When the request's head was handed to the socket.
    headers_sent: float | None
    #: When the request's last byte was handed to the socket.
    request_sent: float | None
    #: When the first byte of the response's head arrived (an interim 1xx head counts).
    first_byte: float | None
    #: When the response body ended.
    body_done: float | None

    #: The connection-opening phases, which a request takes from its connection.
    CONNECTION_PHASES = (
        "dns_start",
        "dns_end",
        "connect_start",
        "connect_end",
        "tls_start",
        "tls_end",
    )
    #: Every timestamp, in the order the phases happen.
    TIMESTAMPS = (
        "start",
        *CONNECTION_PHASES,
        "queued_start",
        "queued_end",
        "headers_sent",
        "request_sent",
        "first_byte",
        "body_done",
    )
    #: The durations, as properties of the same names.
    DURATIONS = ("dns", "connect", "tls", "queued", "send", "wait", "receive", "total")

    def __init__(self, start: float, reused: bool = False, protocol: str | None = None) -> None:
        # One chained store for the phases still to come: a Timings is made per request.
        self.dns_start = self.dns_end = self.connect_start = self.connect_end = None
        self.tls_start = self.tls_end = self.queued_start = self.queued_end = None
        self.headers_sent = self.request_sent = self.first_byte = self.body_done = None
        #: When the request call began.
        self.start = start
        #: Whether the request ran on a connection opened before it (the connection phases
        #: are then ``None``).
        self.reused = reused
        #: The protocol spoken: ``"HTTP/1.1"``, ``"HTTP/2"`` or ``"HTTP/3"``.
        self.protocol = protocol

    def adopt_connection(self, phases: Timings) -> None:
        """
        Take the connection phases (``dns_*``, ``connect_*``, ``tls_*``) recorded in
        ``phases`` while a connection was opened: this request is the one that opened it.
        """
        self.dns_start = phases.dns_start
        self.dns_end = phases.dns_end
        self.connect_start = phases.connect_start
        self.connect_end = phases.connect_end
        self.tls_start = phases.tls_start
        self.tls_end = phases.tls_end
        self.reused = False

    @property
    def dns(self) -> float | None:
        """Seconds spent resolving the host name."""
        return _between(self.dns_start, self.dns_end)

    @property
    def connect(self) -> float | None:
        """Seconds spent connecting (TCP, all attempts of the race; or to the proxy)."""
        return _between(self.connect_start, self.connect_end)

    @property
    def tls(self) -> float | None:
        """Seconds spent in the TLS handshake."""
        return _between(self.tls_start, self.tls_end)

    @property
    def queued(self) -> float | None:
        """Seconds spent waiting for a stream slot."""
        return _between(self.queued_start, self.queued_end)

    @property
    def send(self) -> float | None:
        """
        Seconds spent sending the request: from when sending could begin (the latest of
        :attr:`start`, the end of connecting, of the TLS handshake and of waiting for a
        slot) to :attr:`request_sent`.
        """
        if self.request_sent is None:
            return None
        began = self.start
        for mark in (self.connect_end, self.tls_end, self.queued_end):
            if mark is not None and mark > began:
                began = mark
        return self.request_sent - began

    @property
    def wait(self) -> float | None:
        """Seconds from the request's last byte to the response's first byte."""
        return _between(self.request_sent, self.first_byte)

    @property
    def receive(self) -> float | None:
        """Seconds from the response's first byte to the end of its body."""
        return _between(self.first_byte, self.body_done)

    @property
    def total(self) -> float | None:
        """Seconds from the request call to the end of the response body."""
        return _between(self.start, self.body_done)

    def as_dict(self) -> dict[str, object]:
        """
        Everything as a flat dictionary (for JSON): ``protocol``, ``reused``, every timestamp
        (:attr:`TIMESTAMPS`) and every duration (:attr:`DURATIONS`) in seconds.
        """
        out: dict[str, object] = {"protocol": self.protocol, "reused": self.reused}
        for name in self.TIMESTAMPS:
            out[name] = getattr(self, name)
        for name in self.DURATIONS:
            out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        """
        The durations on one line, in milliseconds, ``-`` for a phase that did not happen:
        ``HTTP/2 new dns=1.2ms connect=0.3ms tls=4.0ms queued=- send=0.1ms wait=2.5ms
        receive=0.2ms total=8.6ms`` (``reused`` instead of ``new`` on a reused connection).
        """
        fields = " ".join(f"{name}={_ms(getattr(self, name))}" for name in self.DURATIONS)
        return f"{self.protocol or '?'} {'reused' if self.reused else 'new'} {fields}"

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<Timings {self.summary()}>"


class Tracer:
    """
    Delivers trace events to one hook. A hook that raises (an :class:`Exception`) is logged
    on the ``hyper.trace`` logger with its traceback and detached: this tracer never calls
    it again, and the request that was being traced goes on. A call already under way in
    another thread when the hook is detached still completes.
    """

    __slots__ = ("hook",)

    def __init__(self, hook: TraceHook | None = None) -> None:
        #: The hook events go to; ``None`` when there is none, or after it raised. Callers
        #: check it before building an event's details, to cost nothing without a hook.
        self.hook = hook

    def emit(
        self,
        name: str,
        stream_id: int | None = None,
        info: Mapping[str, object] = _NO_INFO,
        at: float | None = None,
    ) -> None:
        """
        Report the event ``name`` to the hook, if there is one.

        :param at: the event's :func:`time.monotonic` time; now when ``None``.
        """
        hook = self.hook
        if hook is None:
            return
        event = TraceEvent(name, time.monotonic() if at is None else at, stream_id, info)
        try:
            hook(event)
        except Exception:
            self.hook = None
            logger.exception("trace hook %r raised on %r; it is detached", hook, name)


def tracer_for(trace: object, argument: str = "trace") -> Tracer:
    """
    The tracer for a connection's ``trace`` argument: ``None`` (no hook), a callable taking a
    :class:`TraceEvent`, or a :class:`Tracer` (returned as is, so connections that work
    together, such as :class:`~hyper.HTTPConnection` and the connection it delegates to,
    share one and detach a raising hook from both).

    :param argument: the argument's name, for the error message.
    :raises InvalidRequest: if ``trace`` is neither.
    """
    if isinstance(trace, Tracer):
        return trace
    if trace is None:
        return Tracer()
    if not callable(trace):
        raise InvalidRequest(f"{argument} must be a callable taking a TraceEvent: {trace!r}")
    return Tracer(trace)


class ConnectRecorder:
    """
    What opening one connection records: the connection phases into :attr:`phases` (a
    :class:`Timings` whose :attr:`~Timings.start` is when opening began) and events to
    :attr:`tracer`. The socket helpers (:mod:`hyper.common.sockets`,
    :mod:`hyper.common.eyeballs`) report through it; the connection then hands
    :attr:`phases` to the request that opened it (:meth:`Timings.adopt_connection`).
    """

    __slots__ = ("phases", "tracer")

    def __init__(self, tracer: Tracer) -> None:
        #: The connection phases recorded so far.
        self.phases = Timings(time.monotonic())
        #: Where events go.
        self.tracer = tracer

    def mark(self, name: str, info: Mapping[str, object] = _NO_INFO) -> float:
        """
        Record now as the phase timestamp ``name`` (one of :attr:`Timings.CONNECTION_PHASES`)
        and report the event of the same name.

        :returns: the timestamp.
        """
        at = time.monotonic()
        setattr(self.phases, name, at)
        self.tracer.emit(name, None, info, at)
        return at

    def event(self, name: str, info: Mapping[str, object] = _NO_INFO) -> None:
        """Report the event ``name`` without recording a phase (one attempt of a race)."""
        self.tracer.emit(name, None, info)

    @property
    def tracing(self) -> bool:
        """Whether a hook is installed (callers skip building details otherwise)."""
        return self.tracer.hook is not None
