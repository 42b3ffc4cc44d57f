"""
:class:`QuicEngine`: one HTTP/3 client connection without I/O, on the QUIC stack.

The QUIC stack (qh3's ``QuicConnection`` and ``H3Connection``) does QUIC, TLS 1.3, HTTP/3
framing and QPACK. The engine drives it through its public API and turns what it reports into
hyper's terms: a :class:`~hyper.http30.stream.RequestStream` record per request, filled as the
response arrives; the connection's state (handshake done, GOAWAY, why it ended); and every
failure as a hyper exception. Its whole contract is datagrams in
(:meth:`QuicEngine.receive`), timers (:meth:`QuicEngine.timer`, :meth:`QuicEngine.handle_timer`),
and
datagrams out (:meth:`QuicEngine.datagrams_to_send`); the transport does the I/O.

Every method is called with the connection's lock held.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ..common.exceptions import HyperError, IncompleteRead, InvalidRequest, InvalidResponse
from ..common.header_list import HeaderList
from ..common.trace import GOAWAY, RESPONSE_BODY_DONE, RESPONSE_HEADERS, STREAM_RESET, Tracer
from ..common.util import to_host_port_tuple
from ..http20.validation import MalformedHeaders, check_response, check_trailers
from ..tls import certificate_covers
from .errors import H3ErrorCode, code_name, termination_error
from .exceptions import ConnectionError, FieldSectionTooLarge, HTTP30Error, ProtocolError
from .stack import (
    ConnectionTerminated,
    DataReceived,
    GoawayReceived,
    H3Connection,
    H3Error,
    H3Event,
    H3ProtocolError,
    H3StreamReset,
    HandshakeCompleted,
    HeadersReceived,
    InformationalHeadersReceived,
    PushPromiseReceived,
    QuicConfiguration,
    QuicConnection,
    QuicConnectionError,
    QuicStreamData,
    QuicStreamReset,
    StopSending,
)
from .stream import RequestStream

__all__ = ["IDLE_MARGIN", "MAX_FIELD_SECTION_SIZE", "MAX_HEAD_BYTES", "QuicEngine"]

log = logging.getLogger("hyper.http30")

#: The largest response header section (or trailers) hyper accepts, decoded, counted as RFC
#: 9114 section 4.2.2 counts it: each field's name and value plus 32 bytes. It is HTTP/2's
#: header list limit. The QUIC stack advertises its own, larger limit in
#: SETTINGS_MAX_FIELD_SECTION_SIZE (1 MiB in qh3 2.x, not adjustable through its API) and
#: ends the connection above it; hyper refuses a larger response than this one by itself
#: (a client may discard a response it cannot process) and fails that request only.
MAX_FIELD_SECTION_SIZE = 64 * 1024
#: The most bytes a response's stream may carry before its header section is whole, all
#: frames counted: the QUIC stack buffers an incomplete header block until its end arrives,
#: and hyper stops it here. Huffman coding can make a field up to about four times longer than
#: its text, so a header block this long cannot decode to a section hyper would accept.
MAX_HEAD_BYTES = 4 * MAX_FIELD_SECTION_SIZE

#: How long before the idle timeout a connection stops taking new requests, in seconds.
IDLE_MARGIN = 1.0

#: The QUIC stack's failures when it is asked to do something (send on a closed connection,
#: a stream in the wrong state).
_STACK_ERRORS = (QuicConnectionError, H3Error, H3ProtocolError, ValueError, AssertionError)
#: The highest push ID the QUIC stack offers the server: its HTTP/3 layer sends MAX_PUSH_ID
#: with this value when the connection starts (hyper uses no pushes, but cannot stop that).
STACK_MAX_PUSH_ID = 8
#: The types of the server's critical unidirectional streams (RFC 9114 section 6.2.1, RFC
#: 9204 section 4.2): control, QPACK encoder, QPACK decoder. None of them may end.
_CRITICAL_STREAM_TYPES = {0x0: "control", 0x2: "QPACK encoder", 0x3: "QPACK decoder"}
#: SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 section 7.2.4.1).
_MAX_FIELD_SECTION_SIZE = 0x6


class QuicEngine:
    """
    The HTTP/3 client protocol on one QUIC connection, without I/O.

    :param configuration: the QUIC configuration (see :mod:`hyper.http30.config`).
    :param address: the server's address, as the UDP socket is connected to it.
    :param origin: ``host:port``, for messages.
    :param key_log: the file the configuration logs TLS secrets to, closed with the engine.
    :param tracer: where trace events go (response headers, the end of a response, stream
        resets, GOAWAY); the engine also records when each stream's response began and ended
        in its :attr:`~hyper.http30.stream.RequestStream.timings`.
    """

    def __init__(
        self,
        configuration: QuicConfiguration,
        address: tuple[Any, ...],
        origin: str,
        key_log: TextIO | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        #: Where trace events go.
        self.tracer = tracer if tracer is not None else Tracer()
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic)
        self.address = address
        self.origin = origin
        self.key_log = key_log
        #: The streams whose request or response is still under way, by QUIC stream id.
        self.streams: dict[int, RequestStream] = {}
        #: The handshake completed (ALPN ``h3``).
        self.established = False
        #: The protocol the server selected with ALPN, once the handshake completed.
        self.alpn: str | None = None
        #: Why the connection ended, once it has.
        self.error: HyperError | None = None
        #: The lowest stream id of a GOAWAY the server sent: requests from there on were not
        #: processed, and no new ones may be sent.
        self.goaway_id: int | None = None
        #: The connection is closing: hyper closed it (CONNECTION_CLOSE is queued or sent), or
        #: the QUIC stack refused a new stream because it is ending. No new streams go on it.
        self.closing = False
        #: When a datagram last arrived (a :func:`time.monotonic` time): QUIC's idle timer
        #: runs from there.
        self.last_received = 0.0
        #: The names the server's certificate covers (read when a request first needs them).
        self._peer_names: frozenset[str] | None = None
        #: The ``:authority`` values requests may carry on this connection, once checked.
        self._authorities: set[bytes] = set()
        #: Push streams hyper asked the server to stop (it does not use pushes).
        self._refused_pushes: set[int] = set()
        #: Request streams whose response head hyper refused as too large: what still
        #: arrives on them is dropped before it reaches HTTP/3.
        self._refused_heads: set[int] = set()
        #: The push stream that carries each push ID, and the request fields each push ID
        #: was promised with: the server may use neither twice in different ways.
        self._push_streams: dict[int, int] = {}
        self._promises: dict[int, HeaderList] = {}
        #: The type of each unidirectional stream the server opened (``None`` until its
        #: first byte arrived).
        self._uni_types: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"<QuicEngine {self.origin} streams={len(self.streams)} error={self.error!r}>"

    @property
    def server_name(self) -> str | None:
        """The name the server's certificate is checked against (TLS SNI)."""
        return self.quic.configuration.server_name

    # -- I/O contract ---------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Start the handshake: the first datagrams are then ready to send."""
        self.last_received = now
        self.quic.connect(self.address, now=now)

    def near_idle_timeout(self, now: float) -> bool:
        """
        Whether the connection's idle timeout (hyper's ``idle_timeout``) is less than
        :data:`IDLE_MARGIN` away (a quarter of it, if that is shorter): a request sent now
        could meet the end of the connection on its way (RFC 9114 section 5.1), so new ones
        go on a new connection. The server's own idle timeout, when shorter, is not known
        through the QUIC stack's API.
        """
        idle = self.quic.configuration.idle_timeout
        return now - self.last_received >= idle - min(IDLE_MARGIN, idle / 4)

    def receive(self, datagrams: Sequence[bytes], now: float) -> None:
        """Process the datagrams that arrived, filing what they bring on the streams."""
        self.last_received = now
        try:
            if len(datagrams) == 1:
                self.quic.receive_datagram(datagrams[0], self.address, now=now)
            else:
                self.quic.receive_many_datagrams(list(datagrams), self.address, now=now)
        except _STACK_ERRORS as exc:
            self._stack_failed(exc)
        self._process_events()

    def timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (a :func:`time.monotonic` time), or
        ``None``."""
        if self.error is not None:
            return None
        return self.quic.get_timer()

    def handle_timer(self, now: float) -> None:
        """Run QUIC's timers that are due (loss recovery, ACK delay, idle timeout, pacing)."""
        timer = self.timer()
        if timer is not None and timer <= now:
            try:
                self.quic.handle_timer(now=now)
            except _STACK_ERRORS as exc:
                self._stack_failed(exc)
            self._process_events()

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """The datagrams QUIC wants sent now (after any call that changed its state)."""
        try:
            return [data for data, _ in self.quic.datagrams_to_send(now=now)]
        except _STACK_ERRORS as exc:
            self._stack_failed(exc)
            return []

    # -- requests ---------------------------------------------------------------------------

    def can_open_stream(self) -> bool:
        """
        Whether the server's stream limit leaves room for another request. QUIC's limit
        counts every bidirectional stream the connection ever opened (MAX_STREAMS, RFC 9000
        section 4.6), and the server raises it as streams end: the next stream's number must
        be below it.
        """
        quic = self.quic
        return quic.get_next_available_stream_id() // 4 < quic.max_concurrent_bidi_streams

    def send_headers(self, headers: HeaderList, end_stream: bool) -> RequestStream:
        """
        Send a request's headers on a new stream.

        :raises InvalidRequest: if the request is not for an ``https`` URL, or its header
            section is larger than the server accepts (its SETTINGS_MAX_FIELD_SECTION_SIZE);
            nothing is sent.
        :raises ~hyper.http30.exceptions.HTTP30Error: if the QUIC stack refuses and the
            connection's failure is known, or hyper closed it. A refusal before the stack says
            why the connection is ending returns the stream unsent, to fail with that reason.
        """
        self._check_request(headers)
        stream_id = self.quic.get_next_available_stream_id()
        stream = RequestStream(stream_id, head=headers[0][1] == b"HEAD")
        try:
            self.h3.send_headers(stream_id, headers, end_stream)
        except _STACK_ERRORS as exc:
            if self.error is not None or self.closing:
                raise self._refusal(exc) from exc
            # The stack refuses a new stream only once the connection is ending (the server
            # closed it: a TLS alert just after the handshake, say), and reports why when its
            # closing period is over. The request, never sent, waits for that and fails with
            # it; a new connection may take it.
            log.debug("the connection to %s is ending: %s", self.origin, exc)
            self.closing = True
            stream.unprocessed = True
        stream.local_closed = end_stream
        self.streams[stream_id] = stream
        return stream

    def send_data(self, stream: RequestStream, data: bytes | memoryview, end_stream: bool) -> None:
        """
        Queue request body data on ``stream``.

        :raises ~hyper.http30.exceptions.HTTP30Error: if the QUIC stack refuses.
        """
        try:
            self.h3.send_data(stream.stream_id, data, end_stream)
        except _STACK_ERRORS as exc:
            raise self._refusal(exc) from exc
        if end_stream:
            stream.local_closed = True
            self._forget_if_done(stream)

    def queued(self, stream: RequestStream) -> int:
        """How many bytes of ``stream`` wait for their first transmission."""
        try:
            return self.quic.get_send_buffer_size(stream.stream_id)
        except _STACK_ERRORS:
            return 0

    def reset_stream(self, stream: RequestStream, error_code: int) -> bool:
        """
        End ``stream`` in both directions (RESET_STREAM and STOP_SENDING) with ``error_code``,
        unless it is done already. Returns whether anything was sent.
        """
        if stream.stream_id not in self.streams or self.error is not None:
            return False
        try:
            if not stream.local_closed:
                self.quic.reset_stream(stream.stream_id, error_code)
            if not stream.remote_closed:
                self.quic.stop_stream(stream.stream_id, error_code)
        except _STACK_ERRORS as exc:
            log.debug("resetting stream %d: %s", stream.stream_id, exc)
        stream.local_closed = True
        if not stream.finished:
            stream.reset_code = error_code
        del self.streams[stream.stream_id]
        if self.tracer.hook is not None:
            info = {"error_code": error_code, "by": "client"}
            self.tracer.emit(STREAM_RESET, stream.stream_id, info)
        return True

    def close(self, error_code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """Close the connection (CONNECTION_CLOSE is then ready to send)."""
        if not self.closing:
            self.closing = True
            try:
                self.quic.close(error_code=error_code, reason_phrase=reason)
            except _STACK_ERRORS as exc:
                log.debug("closing: %s", exc)

    def fail(self, error: HyperError) -> None:
        """The connection is over: every stream still under way fails with ``error``."""
        if self.error is None:
            self.error = error
        for stream in self.streams.values():
            if not stream.finished:
                stream.error = self.error
        self.streams.clear()

    def release(self) -> None:
        """Close the key log file, if any (the connection is over)."""
        key_log = self.key_log
        if key_log is not None:
            self.key_log = None
            key_log.close()

    # -- what the stack reports -------------------------------------------------------------

    def _process_events(self) -> None:
        quic = self.quic
        h3 = self.h3
        while True:
            event = quic.next_event()
            if event is None:
                return
            kind = type(event)
            if kind is ConnectionTerminated:
                self._terminated(event)  # type: ignore[arg-type]
                continue
            if kind is HandshakeCompleted:
                self._handshake_completed(event)  # type: ignore[arg-type]
                continue
            if self.closing:
                continue  # the connection is ending: nothing that arrives matters now
            if (kind is QuicStreamData or kind is QuicStreamReset) and not self._stream_allowed(
                event  # type: ignore[arg-type]
            ):
                continue
            if kind is QuicStreamData and self._refuse_data(event):  # type: ignore[arg-type]
                continue
            try:
                h3_events = h3.handle_event(event)
            except QuicConnectionError as exc:
                # HTTP/3 could not answer what arrived because the connection is closing
                # (the server closed it meanwhile): the stack reports why, and the end,
                # with ConnectionTerminated once its closing period is over.
                log.debug("HTTP/3 on a closing connection to %s: %s", self.origin, exc)
                continue
            except _STACK_ERRORS as exc:
                # The stack could not parse a frame (its payload is shorter than its fields,
                # say): RFC 9114 section 7.1 makes that a connection error.
                self._connection_error(H3ErrorCode.H3_FRAME_ERROR, f"a malformed frame: {exc}")
                continue
            for h3_event in h3_events:
                self._on_h3_event(h3_event)

    def _stream_allowed(self, event: QuicStreamData | QuicStreamReset) -> bool:
        """
        Whether HTTP/3 may process ``event``, on a stream the server opened or ended. A
        bidirectional stream the server opens (RFC 9114 section 6.1) and the end of one of
        its control or QPACK streams (section 6.2.1, RFC 9204 section 4.2) end the
        connection; the stack checks neither.
        """
        stream_id = event.stream_id
        if stream_id & 0x3 == 0x1:
            self._connection_error(
                H3ErrorCode.H3_STREAM_CREATION_ERROR,
                f"the server opened bidirectional stream {stream_id}",
            )
            return False
        if stream_id & 0x3 != 0x3 or not isinstance(event, QuicStreamData):
            return True
        data = event
        stream_type = self._uni_types.get(stream_id)
        if stream_type is None and data.data:
            # The stream type is its first variable-length integer; the critical types
            # fit in one byte, so the first byte tells whether the stream is one of them.
            first = data.data[0]
            stream_type = self._uni_types[stream_id] = first if first < 0x40 else -1
        name = _CRITICAL_STREAM_TYPES.get(stream_type) if stream_type is not None else None
        if data.end_stream and name is not None:
            self._connection_error(
                H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
                f"the server closed its {name} stream {stream_id}",
            )
            return False
        return True

    def _handshake_completed(self, event: HandshakeCompleted) -> None:
        self.alpn = event.alpn_protocol
        if event.alpn_protocol != "h3":
            self.close(0x0178, "no application protocol")  # no_application_protocol alert
            self.fail(
                ConnectionError(
                    f"{self.origin} did not agree to HTTP/3 (ALPN {event.alpn_protocol!r})"
                )
            )
            return
        self.established = True

    def _terminated(self, event: ConnectionTerminated) -> None:
        error = termination_error(
            event.error_code,
            event.reason_phrase,
            established=self.established,
            origin=self.origin,
            transport=event.frame_type is not None,
            client_certificate=self.quic.configuration.certificate is not None,
        )
        log.debug("QUIC connection to %s ended: %r", self.origin, event)
        self.fail(error)

    def _on_h3_event(self, event: H3Event) -> None:
        kind = type(event)
        if kind is DataReceived:
            self._data(event)  # type: ignore[arg-type]
        elif kind is HeadersReceived:
            self._headers(event)  # type: ignore[arg-type]
        elif kind is H3StreamReset:
            self._reset(event)  # type: ignore[arg-type]
        elif kind is GoawayReceived:
            self._goaway(event.stream_id)  # type: ignore[attr-defined]
        elif kind is PushPromiseReceived:
            self._promised(event)  # type: ignore[arg-type]
        elif kind is InformationalHeadersReceived:
            self._informational(event)  # type: ignore[arg-type]
        elif kind is StopSending:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is not None:
                stream.stop_sending_code = event.error_code  # type: ignore[attr-defined]
                stream.local_closed = True
                self._forget_if_done(stream)
        # Datagrams and the rest need nothing.

    def _stream_for(self, stream_id: int, push_id: int | None) -> RequestStream | None:
        stream = self.streams.get(stream_id)
        if stream is None and push_id is not None and stream_id not in self._refused_pushes:
            if not self._push_stream_allowed(stream_id, push_id):
                return None
            # The stack allows a few pushes (MAX_PUSH_ID 8); hyper uses none: stop them.
            self._refused_pushes.add(stream_id)
            try:
                self.quic.stop_stream(stream_id, H3ErrorCode.H3_REQUEST_CANCELLED)
            except _STACK_ERRORS as exc:
                log.debug("refusing push stream %d: %s", stream_id, exc)
        return stream

    def _refuse_data(self, event: QuicStreamData) -> bool:
        """Whether stream data must not reach HTTP/3: it is on a stream whose response head
        hyper refused, or it takes a response's head over :data:`MAX_HEAD_BYTES`, which
        refuses it."""
        stream_id = event.stream_id
        if stream_id in self._refused_heads:
            return True
        stream = self.streams.get(stream_id)
        if stream is None or stream.response_headers is not None:
            return False
        stream.head_bytes += len(event.data)
        if stream.head_bytes <= MAX_HEAD_BYTES:
            return False
        self._refused_heads.add(stream_id)
        # A header block longer than hyper's decoder takes: a stream error of type
        # QPACK_DECOMPRESSION_FAILED (RFC 9204 section 7.4).
        self._too_large(
            stream,
            f"{stream.head_bytes} bytes arrived before the response's header section was "
            f"whole, over the {MAX_HEAD_BYTES} byte limit",
            stream.head_bytes,
            MAX_HEAD_BYTES,
            H3ErrorCode.QPACK_DECOMPRESSION_FAILED,
        )
        # HTTP/3 keeps the start of the header block until the stream is reset: have it
        # forget the stream now, whatever the server does next.
        reset = QuicStreamReset(error_code=H3ErrorCode.H3_REQUEST_CANCELLED, stream_id=stream_id)
        try:
            self.h3.handle_event(reset)
        except _STACK_ERRORS as exc:
            log.debug("dropping stream %d: %s", stream_id, exc)
        return True

    def _too_large(
        self,
        stream: RequestStream,
        why: str,
        size: int,
        limit: int,
        error_code: int = H3ErrorCode.H3_REQUEST_CANCELLED,
    ) -> None:
        """Discard a response whose header section or trailers are too large (RFC 9114
        section 4.2.2), resetting its stream with ``error_code``."""
        error = FieldSectionTooLarge(f"stream {stream.stream_id}: {why}", size, limit)
        self._discard(stream, error, error_code)

    def _push_stream_allowed(self, stream_id: int, push_id: int) -> bool:
        """A push stream's ID must be one hyper allowed and not be used by another push
        stream (RFC 9114 sections 4.6 and 6.2.2); otherwise the connection ends."""
        if push_id > STACK_MAX_PUSH_ID:
            self._connection_error(
                H3ErrorCode.H3_ID_ERROR,
                f"push stream {stream_id} has push ID {push_id}, over the maximum "
                f"{STACK_MAX_PUSH_ID}",
            )
            return False
        if self._push_streams.setdefault(push_id, stream_id) != stream_id:
            self._connection_error(
                H3ErrorCode.H3_ID_ERROR, f"push ID {push_id} used by a second push stream"
            )
            return False
        return True

    def _promised(self, event: PushPromiseReceived) -> None:
        """A PUSH_PROMISE: hyper takes no pushes, but a promise must still use an allowed
        push ID, and promise the same request each time it uses one (RFC 9114 section
        7.2.5)."""
        push_id = event.push_id
        if push_id > STACK_MAX_PUSH_ID:
            self._connection_error(
                H3ErrorCode.H3_ID_ERROR,
                f"PUSH_PROMISE with push ID {push_id}, over the maximum {STACK_MAX_PUSH_ID}",
            )
        elif self._promises.setdefault(push_id, event.headers) != event.headers:
            self._connection_error(
                H3ErrorCode.H3_GENERAL_PROTOCOL_ERROR,
                f"push ID {push_id} promised again with other request fields",
            )

    def _headers(self, event: HeadersReceived) -> None:
        stream = self._stream_for(event.stream_id, event.push_id)
        if stream is None:
            return
        headers = event.headers
        size = sum(len(name) + len(value) + 32 for name, value in headers)
        if size > MAX_FIELD_SECTION_SIZE:
            what = "header section" if stream.response_headers is None else "trailers"
            self._too_large(
                stream,
                f"the response's {what} of {size} bytes is over the "
                f"{MAX_FIELD_SECTION_SIZE} byte limit",
                size,
                MAX_FIELD_SECTION_SIZE,
            )
            return
        final = stream.response_headers is None
        if final:
            self._head_arrived(stream, headers)
        try:
            if final:
                check_response(headers)
                stream.response_headers = headers
                stream.expected_length = _content_length(headers)
                if stream.head or headers[0][1] in (b"204", b"304"):
                    stream.expected_length = None
            else:
                check_trailers(headers)
                stream.trailers = headers
        except MalformedHeaders as exc:
            self._malformed(stream, f"a malformed response header section: {exc}")
            return
        if event.stream_ended:
            self._ended(stream)

    def _informational(self, event: InformationalHeadersReceived) -> None:
        """An interim (1xx) response: nothing to keep, but it is the response's first
        byte."""
        stream = self.streams.get(event.stream_id)
        if stream is not None and stream.response_headers is None:
            self._head_arrived(stream, event.headers)

    def _head_arrived(self, stream: RequestStream, headers: HeaderList) -> None:
        """A response head (interim or final) arrived on ``stream``: the first one is the
        response's first byte; each is reported."""
        now = time.monotonic()
        timings = stream.timings
        if timings is not None and timings.first_byte is None:
            timings.first_byte = now
        if self.tracer.hook is not None:
            status = headers[0][1] if headers and headers[0][0] == b":status" else b""
            info = {"status": int(status) if status.isdigit() else None}
            self.tracer.emit(RESPONSE_HEADERS, stream.stream_id, info, now)

    def _data(self, event: DataReceived) -> None:
        stream = self._stream_for(event.stream_id, event.push_id)
        if stream is None:
            return
        data = event.data
        if data:
            if stream.trailers is not None:
                self._malformed(stream, "body data after the trailers")
                return
            stream.received(data)
            expected = stream.expected_length
            if stream.head or (expected is not None and stream.received_length > expected):
                self._malformed(stream, f"more body than its content-length {expected}")
                return
        if event.stream_ended:
            self._ended(stream)

    def _ended(self, stream: RequestStream) -> None:
        expected = stream.expected_length
        if stream.response_headers is None:
            self._malformed(stream, "the stream ended without a response")
            return
        if expected is not None and stream.received_length != expected:
            stream.error = IncompleteRead(stream.received_length, expected)
        stream.remote_closed = True
        timings = stream.timings
        if timings is not None:
            timings.body_done = time.monotonic()
            if self.tracer.hook is not None:
                self.tracer.emit(RESPONSE_BODY_DONE, stream.stream_id, {}, timings.body_done)
        self._forget_if_done(stream)

    def _malformed(self, stream: RequestStream, why: str) -> None:
        """A malformed response is a stream error of type H3_MESSAGE_ERROR (RFC 9114
        section 4.1.2)."""
        error = InvalidResponse(f"stream {stream.stream_id}: {why}")
        self._discard(stream, error, H3ErrorCode.H3_MESSAGE_ERROR)

    def _discard(self, stream: RequestStream, error: HyperError, error_code: int) -> None:
        """End ``stream`` with ``error``: hyper refused its response, and resets it with
        ``error_code``."""
        self.reset_stream(stream, error_code)
        stream.reset_code = None
        stream.error = error

    def _reset(self, event: H3StreamReset) -> None:
        stream = self.streams.pop(event.stream_id, None)
        if stream is None:
            return
        if self.tracer.hook is not None:
            info = {"error_code": event.error_code, "by": "server"}
            self.tracer.emit(STREAM_RESET, event.stream_id, info)
        if stream.remote_closed:
            return  # a reset after the whole response changes nothing
        stream.reset_code = event.error_code
        stream.reset_by_peer = True
        if event.error_code == H3ErrorCode.H3_REQUEST_REJECTED and stream.response_headers is None:
            stream.unprocessed = True  # RFC 9114 4.1.1: not processed at all

    def _goaway(self, stream_id: int) -> None:
        goaway = self.goaway_id
        if stream_id & 0x3:
            self._connection_error(
                H3ErrorCode.H3_ID_ERROR, f"GOAWAY names stream {stream_id}, not a request stream"
            )
            return
        if goaway is not None and stream_id > goaway:
            self._connection_error(
                H3ErrorCode.H3_ID_ERROR,
                f"GOAWAY raised its stream ID from {goaway} to {stream_id}",
            )
            return
        self.goaway_id = stream_id
        log.debug("GOAWAY from %s at stream %d", self.origin, stream_id)
        if self.tracer.hook is not None:
            # HTTP/3's GOAWAY names the first request stream not processed, and has no
            # error code; the streams below it may have been processed.
            info = {
                "goaway_id": stream_id,
                "last_stream_id": stream_id - 4 if stream_id >= 4 else None,
                "error_code": None,
            }
            self.tracer.emit(GOAWAY, None, info)
        for sid in [sid for sid in self.streams if sid >= stream_id]:
            stream = self.streams.pop(sid)
            stream.unprocessed = True
            stream.error = ConnectionError(
                f"{self.origin} went away (GOAWAY) without processing the request on stream {sid}",
                H3ErrorCode.H3_NO_ERROR,
            )

    # -- helpers ----------------------------------------------------------------------------

    def _forget_if_done(self, stream: RequestStream) -> None:
        if stream.local_closed and stream.finished:
            self.streams.pop(stream.stream_id, None)

    def _connection_error(self, code: int, why: str) -> None:
        """The server broke HTTP/3 in a way that ends the connection: close it with
        ``code``; every stream under way fails with :class:`ProtocolError`."""
        log.debug("connection error %s with %s: %s", code_name(code), self.origin, why)
        self.close(code, why)
        self.fail(
            ProtocolError(
                f"the connection to {self.origin} ended with {code_name(code)} ({why})", code
            )
        )

    def _check_request(self, headers: HeaderList) -> None:
        """
        Refuse, before anything is sent, a request HTTP/3 may not carry here: one for a
        scheme other than ``https`` (RFC 9114 section 3.1.2: the server would first have to
        say it serves that scheme, which hyper does not ask), and one whose header section is
        over the server's SETTINGS_MAX_FIELD_SECTION_SIZE (section 4.2.2), counted as the
        RFC counts it: each field's name and value plus 32.
        """
        for name, value in headers:
            if name == b":scheme" and value != b"https":
                raise InvalidRequest(
                    f"HTTP/3 carries https requests only, not {value.decode('ascii', 'replace')}"
                )
            if name == b":authority" and value not in self._authorities:
                self._check_authority(value.decode("ascii", "replace"))
                self._authorities.add(value)
        settings = self.h3.received_settings
        limit = settings.get(_MAX_FIELD_SECTION_SIZE) if settings else None
        if limit is None:
            return
        size = sum(len(name) + len(value) + 32 for name, value in headers)
        if size > limit:
            raise InvalidRequest(
                f"the request's header section is {size} bytes; {self.origin} accepts at most "
                f"{limit} (SETTINGS_MAX_FIELD_SECTION_SIZE)"
            )

    def _check_authority(self, authority: str) -> None:
        """
        A request for another host may share this connection only if the server's
        certificate covers that host too (RFC 9114 section 3.3); with verification off
        nothing is checked, as for the connection's own host.

        :raises InvalidRequest: if the certificate does not cover it.
        """
        host = to_host_port_tuple(authority, 443)[0].lower()
        configuration = self.quic.configuration
        if host == (configuration.server_name or "").lower():
            return
        if configuration.verify_mode == ssl.CERT_NONE:
            return
        if self._peer_names is None:
            certificate = self.quic.get_peercert()
            sans = certificate.get_subject_alt_names() if certificate is not None else []
            self._peer_names = _certificate_names(sans)
        if not certificate_covers(self._peer_names, host):
            raise InvalidRequest(
                f"{authority} is another origin than {self.origin}, and the server's "
                "certificate does not cover it: open a connection to it (RFC 9114 section 3.3)"
            )

    def _stack_failed(self, exc: Exception) -> None:
        """The QUIC stack failed inside: the connection cannot go on."""
        error = ConnectionError(f"the QUIC connection to {self.origin} failed: {exc}")
        error.__cause__ = exc
        self.close(H3ErrorCode.H3_INTERNAL_ERROR, "internal error")
        self.fail(error)

    def _refusal(self, exc: Exception) -> HyperError:
        """Why the stack refused to send: the connection's failure if it has one."""
        if self.error is not None:
            return self.error
        return HTTP30Error(f"cannot send on the connection to {self.origin}: {exc}")


def _content_length(headers: HeaderList) -> int | None:
    """The response's content-length, or ``None``; an invalid one is malformed."""
    length: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if (
                not value.isdigit()
                or not value.isascii()
                or (length is not None and int(value) != length)
            ):
                raise MalformedHeaders(f"an invalid content-length {value[:30]!r}")
            length = int(value)
    return length


def _certificate_names(subject_alt_names: Sequence[bytes]) -> frozenset[str]:
    """The host names and addresses in a certificate's subjectAltName entries as the QUIC
    stack lists them (``DNSName(example.com)``, ``IPAddress(7f:00:00:01)``), spelled as
    :func:`~hyper.tls.certificate_covers` compares them."""
    names = set()
    for entry in subject_alt_names:
        kind, _, rest = entry.decode("ascii", "replace").partition("(")
        value = rest.rstrip(")")
        if kind == "DNSName":
            names.add(value.lower())
        elif kind == "IPAddress":
            try:
                names.add(str(ipaddress.ip_address(bytes.fromhex(value.replace(":", "")))))
            except ValueError:
                continue  # not an address the stack could spell: it covers nothing
    return frozenset(names)
