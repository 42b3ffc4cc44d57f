"""
What the HTTP/2 and HTTP/3 connections share above their transports: the record of a request
the caller holds an id for, the table that finds it by that id, sending its body against its
``Content-Length``, waiting for its response, and the rule that decides whether it goes out
again after its connection failed (see :ref:`which requests hyper sends again <retries>`).

:class:`MultiplexedConnection`, the base class of both connections, puts these together
into the http.client-shaped methods, from ``request()`` to ``cancel()``, documented once for
both protocols. What only a protocol knows, its connection passes in as a
:class:`StreamOpener`: how to put a request's headers on a new stream, how to hold an id for
a request being built, how to send a request again, and which failures mean the connection
died.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from .condition import Condition
from .exceptions import (
    ConnectionClosed,
    DeadlineExceeded,
    HyperError,
    InvalidRequest,
    ReadTimeout,
)
from .header_list import HeaderList, build_header_list, declared_length, finish_header_list
from .request import IDEMPOTENT_METHODS, BodyArg, HeadersArg, RequestBody, iter_header_pairs
from .trace import (
    QUEUED_END,
    QUEUED_START,
    REQUEST_BODY_SENT,
    REQUEST_HEADERS_SENT,
    Timings,
    Tracer,
)
from .util import (
    CONNECTION_TIMEOUT,
    ClosingContextManager,
    HTTPVersion,
    RequestTimeoutArg,
    WaitArg,
    request_timeouts,
)

__all__ = [
    "HeaderWaiter",
    "LiveTransport",
    "MultiplexedConnection",
    "PendingRequest",
    "RequestTable",
    "StreamOpener",
    "StreamState",
    "add_header",
    "await_response",
    "find_request",
    "mark_headers_sent",
    "mark_queued",
    "ready_locked",
    "retire_locked",
    "retry_verdict",
    "send_body",
    "send_request_body",
    "waiting_request",
]


class StreamState(Protocol):
    """What the shared rules read of a protocol's stream record."""

    #: The server said it never processed the request: safe to send again.
    unprocessed: bool
    #: The final response's header list, once it arrived.
    response_headers: HeaderList | None
    #: Why the stream failed, if it did.
    error: HyperError | None

    @property
    def finished(self) -> bool:
        """No more data will arrive on the stream."""

    def raise_if_failed(self) -> None:
        """Raise why the stream ended abnormally, if it did."""


TransportT = TypeVar("TransportT")
StreamT = TypeVar("StreamT", bound=StreamState)


class PendingRequest(Generic[TransportT, StreamT]):
    """
    A request the caller holds an id for: being built (``putrequest()``), sent and awaiting
    ``get_response()``. The id stays the caller's handle even if the request goes out again
    on another stream or connection.

    :param handle: the id the caller holds.
    :param headers: the header list (built up by ``putheader()`` until sent).
    :param connect_timeout: the request's connect timeout (for a connection it needs).
    :param read_timeout: the request's read timeout (every wait for the server). With a
        total deadline both are the request's :class:`~hyper.common.timeout.Deadline`.
    :param timings: where the request's phases are recorded; a new one, started now, by
        default.
    """

    __slots__ = (
        "body_sent",
        "connect_timeout",
        "handle",
        "headers",
        "read_timeout",
        "replay",
        "sent",
        "stream",
        "timings",
        "transport",
    )

    def __init__(
        self,
        handle: int,
        headers: HeaderList,
        connect_timeout: WaitArg,
        read_timeout: WaitArg,
        timings: Timings | None = None,
    ) -> None:
        self.handle = handle
        #: When each phase of the request happened (its response's ``timings``).
        self.timings = timings if timings is not None else Timings(time.monotonic())
        self.headers = headers
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        #: The headers went out.
        self.sent = False
        #: Where the request went: its transport and stream, once sent.
        self.transport: TransportT | None = None
        self.stream: StreamT | None = None
        #: The headers and in-memory body, to send again if the server never processed it.
        self.replay: tuple[HeaderList, bytes | memoryview] | None = None
        #: How many body bytes the caller has handed over so far.
        self.body_sent = 0


_Request = TypeVar("_Request", bound=PendingRequest[Any, Any])


class RequestTable(Generic[_Request]):
    """
    The requests a connection holds ids for, and the lock that guards them together with
    the rest of the connection's state (its transports). The connection makes one and hands
    it to :class:`MultiplexedConnection`, whose methods
    use it too.
    """

    __slots__ = ("awaiting", "cond", "latest", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Notified, with the lock held, whenever a thread may have something new to wait for.
        self.cond = Condition(self.lock)
        #: Requests whose response has not been fetched with ``get_response()``, oldest first.
        self.awaiting: dict[int, _Request] = {}
        #: The id of the latest request, which ``putheader()``, ``endheaders()`` and
        #: ``send()`` default to.
        self.latest: int | None = None

    def find(self, request_id: int | None) -> _Request:
        """
        The request ``request_id`` names, the latest one for ``None`` (see
        :func:`find_request`).

        :raises InvalidRequest: if there is none.
        """
        return find_request(self.awaiting, self.latest if request_id is None else request_id)

    def fail_locked(self, error: HyperError) -> None:
        """Fail every request whose stream has not ended with ``error`` (the connection was
        closed), and wake the threads waiting for them. Call with the lock held."""
        for request in self.awaiting.values():
            stream = request.stream
            if stream is not None and not stream.finished:
                stream.error = error
        self.cond.notify_all()


def find_request(awaiting: dict[int, _Request], request_id: int | None) -> _Request:
    """
    The request ``request_id`` names in ``awaiting`` (the caller passes its latest id for
    ``None``).

    :raises InvalidRequest: if there is none.
    """
    request = awaiting.get(request_id) if request_id is not None else None
    if request is None:
        raise InvalidRequest(f"no open request with id {request_id}")
    return request


def waiting_request(awaiting: dict[int, _Request], request_id: int | None) -> _Request:
    """
    The sent request whose response ``get_response(request_id)`` waits for: the oldest when
    ``request_id`` is ``None``. Call with the connection's lock held.

    :raises InvalidRequest: if there is none, or it was not sent yet.
    """
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, int)
    ):
        raise InvalidRequest(f"stream_id must be an int, not {type(request_id).__name__}")
    if request_id is None:
        if not awaiting:
            raise InvalidRequest("there is no request waiting for a response")
        request_id = next(iter(awaiting))
    request = awaiting.get(request_id)
    if request is None:
        raise InvalidRequest(f"no request is waiting for a response on stream {request_id}")
    if not request.sent:
        raise InvalidRequest(f"the request on stream {request_id} was not sent yet")
    return request


def add_header(
    request: PendingRequest[Any, Any], header: str | bytes, argument: str | bytes, replace: bool
) -> None:
    """
    ``putheader()``: add a field to a request not sent yet (with the connection's lock held),
    replacing the values of that name when ``replace``.

    :raises InvalidRequest: for an invalid name or value, or a request already sent.
    """
    if request.sent:
        raise InvalidRequest(f"the headers of stream {request.handle} were already sent")
    pairs = list(iter_header_pairs([(header, argument)]))
    name = pairs[0][0].lower()
    if replace:
        request.headers[:] = [pair for pair in request.headers if pair[0] != name]
    request.headers.extend((name, value) for _, value in pairs)


def mark_queued(request_timings: Timings, tracer: Tracer, stream_id: int | None) -> None:
    """A request is about to wait for a stream slot: record when it began waiting (the
    first time), and report it."""
    if request_timings.queued_start is None:
        at = request_timings.queued_start = time.monotonic()
        tracer.emit(QUEUED_START, stream_id, {}, at)


def mark_headers_sent(request: PendingRequest[Any, Any], end_stream: bool, tracer: Tracer) -> None:
    """
    A request's headers went out on its stream (with the request's end when
    ``end_stream``): record it, and the end of its wait for a slot if it waited.
    """
    timings = request.timings
    now = timings.headers_sent = time.monotonic()
    if end_stream:
        timings.request_sent = now
    if timings.queued_start is not None and timings.queued_end is None:
        timings.queued_end = now
        if tracer.hook is not None:
            tracer.emit(QUEUED_END, _stream_id(request), {}, now)
    if tracer.hook is not None:
        stream_id = _stream_id(request)
        pseudo = dict(request.headers[:4])
        info = {
            "method": pseudo.get(b":method", b"").decode("latin-1"),
            "target": pseudo.get(b":path", b"").decode("latin-1"),
        }
        tracer.emit(REQUEST_HEADERS_SENT, stream_id, info, now)
        if end_stream:
            tracer.emit(REQUEST_BODY_SENT, stream_id, {"bytes": 0}, now)


def _stream_id(request: PendingRequest[Any, Any]) -> int | None:
    return request.stream.stream_id if request.stream is not None else None


def send_body(
    request: PendingRequest[Any, Any],
    chunks: Iterator[bytes | memoryview],
    final: bool,
    abandon: Callable[[], None],
    tracer: Tracer | None = None,
) -> None:
    """
    Send body pieces on the request's stream (``request.transport.send_data``, each wait
    bounded by its read timeout), the last one ending the request when ``final`` (which
    is then recorded in its timings, and reported to ``tracer``). A body that turns out
    longer or shorter than its ``Content-Length`` is not sent past that point: ``abandon()``
    gives the request up and :class:`InvalidRequest` is raised (RFC 9113 section 8.1.1,
    RFC 9114 section 4.1.2).
    """
    transport, stream = request.transport, request.stream
    assert transport is not None and stream is not None
    timeout = request.read_timeout

    def send(piece: bytes | memoryview, last: bool) -> None:
        transport.send_data(stream, piece, last, timeout)

    declared = declared_length(request.headers)
    sent = request.body_sent
    previous: bytes | memoryview | None = None
    for chunk in chunks:
        sent += len(chunk)
        if declared is not None and sent > declared:
            abandon()
            raise InvalidRequest(f"the body is longer than its Content-Length {declared}")
        if previous is not None:
            send(previous, False)
        previous = chunk
    request.body_sent = sent
    if final and declared is not None and sent != declared:
        abandon()
        raise InvalidRequest(
            f"the body had {sent} bytes, not the {declared} its Content-Length announced"
        )
    if previous is not None:
        send(previous, final)
    elif final:
        send(b"", True)
    if final:
        at = request.timings.request_sent = time.monotonic()
        if tracer is not None and tracer.hook is not None:
            tracer.emit(REQUEST_BODY_SENT, stream.stream_id, {"bytes": sent}, at)


def retry_verdict(
    request: PendingRequest[Any, Any],
    died: Callable[[HyperError | None], bool],
    never_again: type[HyperError],
) -> tuple[bool, bool]:
    """
    For a request that failed before its response came: whether hyper sends it again by
    itself, and whether it is safe to send again at all (docs/advanced.rst, retries).

    It is safe when the server cannot have processed it (its stream says so) or when its
    method is idempotent. hyper sends it again itself, once, when its body is in memory and
    either the server did not process it or its method is idempotent and the connection
    died under it before its response headers arrived.

    :param died: whether a stream's error means its connection ended under it (closed,
        reset, a TLS failure, ended by the server with an error), as opposed to a reset of
        the stream, a time-out, or a server breaking the protocol (whose next answer would
        be no better).
    :param never_again: the error of a request the caller's ``close()`` ended: it is never
        sent again.
    """
    stream = request.stream
    method = request.headers[0][1] if request.headers else b""
    unprocessed = stream is not None and stream.unprocessed
    safe = unprocessed or method in IDEMPOTENT_METHODS
    if request.replay is None or stream is None or stream.response_headers is not None:
        return False, safe
    error = stream.error
    if isinstance(error, never_again):
        return False, safe
    return unprocessed or (safe and died(error)), safe


class LiveTransport(Protocol):
    """A transport, as :func:`ready_locked` and :func:`retire_locked` look at it."""

    #: Set aside by its connection: no new streams go on it.
    retired: bool

    def alive(self) -> bool:
        """Whether it has not ended."""

    def unfinished(self) -> bool:
        """Whether any stream on it is still under way."""

    def usable(self) -> bool:
        """Whether new streams may go on it."""

    def poll_locked(self) -> None:
        """Process whatever has arrived, without waiting."""

    def raise_if_dead_locked(self) -> None:
        """Raise why it ended, if it did."""


def ready_locked(transport: LiveTransport, lost: list[Any]) -> bool:
    """
    Whether a request's headers can go on ``transport`` (the connection's current one) now,
    with the connection's lock held. An idle transport first processes what has arrived, so
    that a GOAWAY, the server's close or (over QUIC) the idle timeout that came unnoticed
    leads to a new transport, not to a request sent into a closed connection. A transport
    that cannot take it joins ``lost`` (the request's list).

    :raises HyperError: when a third one is lost: the server ends fresh connections at once,
        and trying again is no use.
    """
    if not transport.unfinished():
        transport.poll_locked()
    if transport.usable():
        return True
    if transport not in lost:
        lost.append(transport)
    if len(lost) > 2:
        transport.raise_if_dead_locked()
        raise ConnectionClosed("the server keeps closing new connections")
    return False


_Transport = TypeVar("_Transport", bound=LiveTransport)


def retire_locked(
    old: _Transport | None, draining: list[_Transport], close: Callable[[_Transport], None]
) -> list[_Transport]:
    """
    Retire a connection's current transport ``old`` (with the connection's lock held): it
    joins those still draining if it carries streams (its last one closes it), else
    ``close(old)`` closes it now.

    :returns: the transports draining from now on (those that ended are left out).
    """
    draining = [t for t in draining if t.alive()]
    if old is not None:
        old.retired = True
        if old.alive() and old.unfinished():
            draining.append(old)  # closed by its last stream (Transport.drained_locked)
        else:
            close(old)
    return draining


def send_request_body(
    request: PendingRequest[Any, Any],
    send: Callable[[], None],
    verdict: Callable[[], tuple[bool, bool]],
    resend: Callable[[], None],
    abandon: Callable[[], None],
) -> None:
    """
    ``request()``'s body: ``send()`` it; if that fails, send the whole request again once
    when the rule allows (``verdict()``, ``resend()``), else give it up (``abandon()``) and
    raise the failure, saying whether it is safe to retry.
    """
    try:
        send()
    except InvalidRequest:
        abandon()  # a caller's mistake: nothing to send again
        raise
    except HyperError as failure:
        error = failure
        again, safe = verdict()
        if again:
            try:
                resend()
                return
            except HyperError as later:
                error, safe = later, verdict()[1]
        abandon()
        raise error.for_request(safe) from error.__cause__
    except BaseException:
        abandon()  # the caller never gets this request's id: do not leave it behind
        raise


class HeaderWaiter(Protocol):
    """A transport, as :func:`await_response` waits on it."""

    def wait_for_headers(self, stream: Any, timeout: Any) -> None:
        """Wait until the stream's response headers arrive, or it ends without them."""


def await_response(
    awaiting: dict[int, _Request],
    lock: AbstractContextManager[Any],
    request_id: int | None,
    verdict: Callable[[_Request], tuple[bool, bool]],
    resend: Callable[[_Request], None],
    abandon: Callable[[_Request], None],
) -> _Request:
    """
    ``get_response(request_id)``'s wait: find the request (see :func:`waiting_request`),
    wait for the headers on its stream (``request.transport.wait_for_headers``), and, when
    the stream fails first, send the request again once if the rule allows
    (``verdict(request)``, ``resend(request)``), else raise the failure, saying whether it
    is safe to retry. The request leaves ``awaiting`` at the end, and on every failure but a
    time-out of a stream still under way (the caller may wait again); when its total
    deadline passed, ``abandon(request)`` gives it up (its stream is reset).

    :param awaiting: the connection's table of requests.
    :param lock: the connection's lock, which guards ``awaiting``.
    :returns: the request, whose stream has its response headers.
    :raises HyperError: why the response did not come.
    """
    with lock:
        request = waiting_request(awaiting, request_id)
    resent = False
    while True:
        stream = request.stream
        transport: HeaderWaiter | None = request.transport
        assert stream is not None and transport is not None
        try:
            transport.wait_for_headers(stream, request.read_timeout)
            if stream.response_headers is not None:
                with lock:
                    awaiting.pop(request.handle, None)
                return request
            stream.raise_if_failed()
            raise ConnectionClosed(f"stream {request.handle} ended without a response")
        except DeadlineExceeded:
            abandon(request)  # its time is up: the stream is reset, the connection lives on
            raise
        except HyperError as failure:
            error = failure
            again, safe = verdict(request)
            if again and not resent:
                resent = True
                try:
                    resend(request)
                    continue
                except HyperError as later:
                    error, safe = later, verdict(request)[1]
            current = request.stream
            timed_out = isinstance(error, ReadTimeout)
            if not (timed_out and current is not None and not current.finished):
                with lock:
                    awaiting.pop(request.handle, None)
            raise error.for_request(safe) from error.__cause__


_Response = TypeVar("_Response")


class StreamOpener(NamedTuple):
    """
    What a protocol's connection tells :class:`MultiplexedConnection` about itself. The
    functions are the connection's own (bound methods); each is called without the lock
    unless its name ends in ``_locked``.
    """

    #: ``open(headers, end_stream, connect_timeout, read_timeout, timings)``: a new request,
    #: its headers sent on a new stream (opening a connection, waiting for room under the
    #: server's stream limit), in the table of requests as the latest one, its phases
    #: recorded in ``timings``.
    open: Callable[[HeaderList, bool, WaitArg, WaitArg, Timings], PendingRequest[Any, Any]]
    #: ``send_headers(request, end_stream)``: send the headers of a request started with
    #: ``putrequest()``, on a new stream.
    send_headers: Callable[[PendingRequest[Any, Any], bool], None]
    #: ``reserve_locked()``: the id of a request ``putrequest()`` starts.
    reserve_locked: Callable[[], int]
    #: ``release_locked(request)``: forget what the protocol holds for a request given up.
    release_locked: Callable[[PendingRequest[Any, Any]], None]
    #: ``resend(request)``: send an unprocessed request (headers and body) again on a new
    #: stream; the caller's id keeps naming it.
    resend: Callable[[PendingRequest[Any, Any]], None]
    #: ``connection_died(error)``: whether a stream's error means its connection ended under
    #: it (see :func:`retry_verdict`).
    connection_died: Callable[[HyperError | None], bool]
    #: The error of a request the caller's ``close()`` ended: it is never sent again.
    closed_by_caller: type[HyperError]
    #: The error code a stream given up is reset with.
    cancel_code: int


class MultiplexedConnection(ClosingContextManager, Generic[_Response]):
    """
    The http.client-shaped methods of a connection that carries many requests at once,
    each on its own stream, named by an id the connection hands out.

    :param table: the connection's table of requests and its lock (the connection keeps
        it too, for its own state).
    :param opener: what only the protocol knows (see :class:`StreamOpener`).
    :param response_class: the protocol's response class: it takes a response's headers
        and the handle its body is read through.
    :param connect_timeout: the connection's connect timeout, for requests without their
        own.
    :param read_timeout: the connection's read timeout, likewise.
    :param total_timeout: the connection's total deadline per request, likewise.
    :param scheme: ``:scheme`` of the requests.
    :param authority: ``:authority`` of the requests, unless the URL names another.
    :param secure: whether the connection uses TLS (an ``https`` URL needs it).
    :param tracer: where the connection's trace events go.
    """

    #: The protocol the connection speaks (each subclass says).
    version: HTTPVersion

    def __init__(
        self,
        table: RequestTable[Any],
        opener: StreamOpener,
        response_class: Callable[[HeaderList, Any, Timings], _Response],
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        total_timeout: float | None = None,
        scheme: bytes,
        authority: bytes,
        secure: bool,
        tracer: Tracer | None = None,
    ) -> None:
        #: Where this connection's trace events go (:class:`~hyper.common.trace.Tracer`).
        self.tracer = tracer if tracer is not None else Tracer()
        # The protocol's name for the timings, looked up once (an enum's value is a property).
        self._protocol = self.version.value
        self._table = table
        self._opener = opener
        self._response_class = response_class
        self._timeouts = (connect_timeout, read_timeout, total_timeout)
        self._header_context = (scheme, authority, secure)

    # -- sending requests -------------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        body: BodyArg = None,
        headers: HeadersArg | None = None,
        *,
        timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
        timings: Timings | None = None,
    ) -> int:
        """
        Send a request and return its id without waiting for the response.

        :param method: the request method, e.g. ``"GET"``.
        :param url: the path (``"/search?q=1"``), or an absolute ``http(s)`` URL whose
            authority then replaces the connection's in ``:authority`` (an ``https`` URL
            needs TLS, which an HTTP/3 connection always has; over HTTP/3 a URL for another
            host also needs the server's certificate to cover that host).
        :param body: ``bytes``, ``str`` (sent as UTF-8), a file-like object opened in binary
            mode, or an iterable of ``bytes``. Content-Length is set when the length is known
            and the caller did not set it. Over HTTP/2 the body is sent in frames as large as
            the server and flow control allow.
        :param headers: a mapping or an iterable of ``(name, value)`` pairs (str or bytes).
            Headers that only mean something to HTTP/1.1 (``Connection``, ``Keep-Alive``,
            ``Transfer-Encoding``, ``Upgrade``, ``Proxy-Connection`` and those ``Connection``
            names) are left out; ``Host`` becomes ``:authority``.
        :param timeout: this request's own timeout, in the forms the constructor takes (one
            number, a ``(connect, read)`` pair, ``None`` for no limit), instead of the
            connection's. Its read timeout bounds every wait for this request: for room for
            its stream, for flow-control window while its body is sent, for its response in
            :meth:`get_response` and for each read of that response's body, whatever
            timeouts other requests on the connection have. Its connect timeout applies when
            the request has to open the connection (over HTTP/3, to the QUIC handshake it
            waits for). See :ref:`request-timeouts`.
        :param timings: the :class:`~hyper.common.trace.Timings` to record this request's
            phases in (its response's ``timings``), when the caller began them earlier; a
            new one, started now, by default.
        :returns: the request's id (over HTTP/2, its stream id), to pass to
            :meth:`get_response`.
        :raises InvalidRequest: for an invalid method, URL, header, body or timeout, before
            anything is sent.
        :raises ConnectTimeout: if the request has to open the connection and that (over
            HTTP/3, the handshake) takes longer than the connect timeout.
        :raises ReadTimeout: if the server's limit on concurrent streams (over HTTP/2, its
            ``SETTINGS_MAX_CONCURRENT_STREAMS``) leaves no room for a new stream within the
            read timeout (``request()`` waits for one, reading other streams' data
            meanwhile), or flow control (over HTTP/2, also a server that reads nothing)
            keeps the body from going out as long.
        :raises ~hyper.http20.exceptions.StreamResetError: over HTTP/2, if the server reset
            the stream while the body was sent.
        :raises ~hyper.http30.exceptions.StreamResetError: over HTTP/3, likewise.
        """
        if timings is None:
            timings = Timings(time.monotonic())
        timings.protocol = self._protocol
        connect_timeout, read_timeout = request_timeouts(timeout, *self._timeouts)
        request_body = RequestBody(body)
        header_list = self._build_headers(method, url, headers, request_body.length)
        end_stream = request_body.is_empty
        try:
            request = self._opener.open(
                header_list, end_stream, connect_timeout, read_timeout, timings
            )
        except InvalidRequest:
            raise
        except HyperError as failure:
            raise failure.for_request(True) from failure.__cause__  # nothing of it left hyper
        if request_body.data is not None:
            # In memory: it can be sent again if the server says it never processed it.
            request.replay = (header_list, request_body.data)
        if not end_stream:
            chunks = request_body.chunks()
            send_request_body(
                request,
                lambda: self._send_body(request, chunks, final=True),
                lambda: self._retry_verdict(request),
                lambda: self._opener.resend(request),
                lambda: self._abandon(request),
            )
        return request.handle

    def putrequest(
        self,
        method: str | bytes,
        selector: str | bytes,
        *,
        timeout: RequestTimeoutArg = CONNECTION_TIMEOUT,
        **kwargs: Any,
    ) -> int:
        """
        Start building a request piece by piece (the http.client way). Nothing is sent until
        :meth:`endheaders`.

        :param method: the request method.
        :param selector: the path, or an absolute URL.
        :param timeout: the request's own timeout, as for :meth:`request`: it bounds the
            waits of :meth:`endheaders`, :meth:`send` and :meth:`get_response` for it, and
            the reads of its response's body.
        :param kwargs: http.client's ``skip_host`` and ``skip_accept_encoding`` are accepted
            and change nothing (HTTP/2 and HTTP/3 have no Host header; Accept-Encoding is
            only added by :meth:`request`); anything else raises
            :class:`~hyper.common.exceptions.InvalidRequest`.
        :returns: the new request's id (over HTTP/2, the stream id held for it); pass it to
            :meth:`putheader`, :meth:`endheaders`, :meth:`send` (they default to the latest
            one) and :meth:`get_response`.
        :raises InvalidRequest: for an invalid method, URL or timeout.
        """
        unknown = set(kwargs) - {"skip_host", "skip_accept_encoding"}
        if unknown:
            raise InvalidRequest(f"putrequest() got unexpected arguments: {sorted(unknown)}")
        timings = Timings(time.monotonic(), protocol=self._protocol)
        connect_timeout, read_timeout = request_timeouts(timeout, *self._timeouts)
        header_list = self._build_headers(method, selector, None, None)
        del header_list[4:]  # no default Accept-Encoding: the caller builds the headers
        table = self._table
        with table.lock:
            handle = self._opener.reserve_locked()
            table.awaiting[handle] = PendingRequest(
                handle, header_list, connect_timeout, read_timeout, timings
            )
            table.latest = handle
        return handle

    def putheader(
        self,
        header: str | bytes,
        argument: str | bytes,
        stream_id: int | None = None,
        replace: bool = False,
    ) -> None:
        """
        Add a header to a request started with :meth:`putrequest`. Nothing is sent yet.

        Connection-specific headers are dropped when the headers are sent, as for
        :meth:`request`.

        :param header: the header name.
        :param argument: the header value.
        :param stream_id: the request's id (over HTTP/2, its stream id); the latest request
            when ``None``.
        :param replace: replace any values already set for this header instead of adding one.
        :raises InvalidRequest: for an invalid name or value, or a request already sent.
        """
        request = self._table.find(stream_id)
        with self._table.lock:
            add_header(request, header, argument, replace)

    def endheaders(
        self,
        message_body: BodyArg = None,
        final: bool = False,
        stream_id: int | None = None,
    ) -> None:
        """
        Send the headers of a request started with :meth:`putrequest`, and optionally a body.

        :param message_body: data to send after the headers (same types as
            :meth:`request`'s ``body``).
        :param final: whether the request ends here. Leave it ``False`` to send more with
            :meth:`send`.
        :param stream_id: the request's id (over HTTP/2, its stream id); the latest request
            when ``None``.
        :raises InvalidRequest: if its headers were already sent.
        """
        request = self._table.find(stream_id)
        if request.sent:
            raise InvalidRequest(f"the headers of request {request.handle} were already sent")
        try:
            body = RequestBody(message_body)
            # The body's length is the request's length only if no send() calls follow.
            length = body.length if final else None
            request.headers = finish_header_list(request.headers, length)
            self._opener.send_headers(request, final and body.is_empty)
            if not body.is_empty:
                self._send_body(request, body.chunks(), final=final)
        except BaseException:
            # Give up a half-built request: it holds its id (and on HTTP/2 every later
            # stream waits for it).
            self._abandon(request)
            raise

    def send(self, data: BodyArg, final: bool = False, stream_id: int | None = None) -> None:
        """
        Send (more) body data on a request whose headers were sent with :meth:`endheaders`.
        Data goes out as flow control allows, waiting for the server to open its window.

        :param data: the data (same types as :meth:`request`'s ``body``).
        :param final: whether this is the end of the request body.
        :param stream_id: the request's id (over HTTP/2, its stream id); the latest request
            when ``None``.
        :raises InvalidRequest: if its headers were not sent yet.
        :raises ~hyper.http20.exceptions.StreamResetError: over HTTP/2, if the server reset
            the stream.
        :raises ~hyper.http30.exceptions.StreamResetError: over HTTP/3, likewise.
        """
        request = self._table.find(stream_id)
        if not request.sent:
            raise InvalidRequest(f"call endheaders() for request {request.handle} first")
        self._send_body(request, RequestBody(data).chunks(), final=final)

    def _build_headers(
        self,
        method: str | bytes,
        url: str | bytes,
        headers: HeadersArg | None,
        body_length: int | None,
    ) -> HeaderList:
        scheme, authority, secure = self._header_context
        return build_header_list(
            method, url, headers, body_length, scheme=scheme, authority=authority, secure=secure
        )

    def _send_body(
        self, request: PendingRequest[Any, Any], chunks: Iterator[bytes | memoryview], final: bool
    ) -> None:
        """Send body pieces, ending the request with the last one when ``final``, within its
        Content-Length (see :func:`~hyper.common.multiplexed.send_body`)."""
        send_body(request, chunks, final, lambda: self._abandon(request), self.tracer)

    def _abandon(self, request: PendingRequest[Any, Any]) -> None:
        """A request failed on its way out, or the caller gave it up: forget it, and reset
        its stream if its headers went out."""
        table = self._table
        with table.lock:
            self._opener.release_locked(request)
            if request.transport is not None and request.stream is not None:
                request.transport.reset_locked(request.stream, self._opener.cancel_code)
            table.awaiting.pop(request.handle, None)
            table.cond.notify_all()

    # -- responses --------------------------------------------------------------------------------

    def get_response(self, stream_id: int | None = None) -> _Response:
        """
        Wait for and return the response to a request. A request that failed before its
        response came is sent again when :ref:`hyper's rule <retries>` allows. Each
        connection class documents what its protocol raises.

        :param stream_id: the id :meth:`request` returned. ``None`` takes the oldest request
            whose response has not been fetched yet.
        """
        request = await_response(
            self._table.awaiting,
            self._table.lock,
            stream_id,
            self._retry_verdict,
            self._opener.resend,
            self._abandon,
        )
        transport, stream = request.transport, request.stream
        assert transport is not None and stream is not None and stream.response_headers is not None
        handle = transport.handle(stream, request.read_timeout)
        return self._response_class(stream.response_headers, handle, request.timings)

    def cancel(self, stream_id: int) -> None:
        """
        Give up a request whose response has not been fetched with :meth:`get_response`:
        after a :class:`~hyper.common.exceptions.ReadTimeout`, say, when the caller will not
        wait again. A stream already sent is reset with the protocol's cancel code
        (``CANCEL`` over HTTP/2, ``H3_REQUEST_CANCELLED`` over HTTP/3), so the server stops
        working on it and whatever arrives for it later is dropped; over HTTP/2 it also
        stops counting against the server's limit on open streams. The id is forgotten:
        :meth:`get_response` raises :class:`~hyper.common.exceptions.InvalidRequest` for it
        from then on.

        To give up a response already returned, close it instead
        (:meth:`HTTP20Response.close <hyper.HTTP20Response.close>`,
        :meth:`HTTP30Response.close <hyper.HTTP30Response.close>`).

        :param stream_id: the id :meth:`request` or :meth:`putrequest` returned.
        :raises InvalidRequest: if no request with that id awaits its response.
        """
        with self._table.lock:
            request = self._table.awaiting.get(stream_id)
        if request is None:
            raise InvalidRequest(f"no request is waiting for a response with id {stream_id}")
        self._abandon(request)

    def _retry_verdict(self, request: PendingRequest[Any, Any]) -> tuple[bool, bool]:
        """Whether hyper sends a failed request again by itself, and whether that is safe at
        all (see :func:`~hyper.common.multiplexed.retry_verdict`)."""
        opener = self._opener
        return retry_verdict(request, opener.connection_died, opener.closed_by_caller)
