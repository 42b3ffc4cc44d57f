"""
What the HTTP/2 and HTTP/3 connections share above their transports: the record of a request
the caller holds an id for, finding it by that id, sending its body against its
``Content-Length``, waiting for its response, and the rule that decides whether it goes out
again after its connection failed (see :ref:`which requests hyper sends again <retries>`).

Each connection keeps its own table of requests (``{id: PendingRequest}``) and lock, and
passes in what only it knows: how to wait for a stream's headers, how to send a piece of
body, how to send the whole request again, and which failures mean the connection died.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, Protocol, TypeVar

from .exceptions import ConnectionClosed, HyperError, InvalidRequest, ReadTimeout
from .header_list import HeaderList, declared_length
from .request import IDEMPOTENT_METHODS, iter_header_pairs

__all__ = [
    "HeaderWaiter",
    "PendingRequest",
    "StreamState",
    "add_header",
    "await_response",
    "find_request",
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
    :param read_timeout: the request's read timeout (every wait for the server).
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
        "transport",
    )

    def __init__(
        self,
        handle: int,
        headers: HeaderList,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> None:
        self.handle = handle
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


def send_body(
    request: PendingRequest[Any, Any],
    chunks: Iterator[bytes | memoryview],
    final: bool,
    send: Callable[[bytes | memoryview, bool], None],
    abandon: Callable[[], None],
) -> None:
    """
    Send body pieces with ``send(piece, last)``, the last one ending the request when
    ``final``. A body that turns out longer or shorter than its ``Content-Length`` is not sent
    past that point: ``abandon()`` gives the request up and :class:`InvalidRequest` is raised
    (RFC 9113 section 8.1.1, RFC 9114 section 4.1.2).
    """
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
) -> _Request:
    """
    ``get_response(request_id)``'s wait: find the request (see :func:`waiting_request`),
    wait for the headers on its stream (``request.transport.wait_for_headers``), and, when
    the stream fails first, send the request again once if the rule allows
    (``verdict(request)``, ``resend(request)``), else raise the failure, saying whether it
    is safe to retry. The request leaves ``awaiting`` at the end, and on every failure but a
    time-out of a stream still under way (the caller may wait again).

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
