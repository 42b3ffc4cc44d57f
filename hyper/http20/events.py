"""
What the HTTP/2 engine reports that concerns more than one stream.

Everything that happens to a stream is filed in its :class:`~hyper.http20.stream.Stream`
record (headers, body, trailers, how it ended), where the threads waiting for it look. What
the connection must decide or know about is returned by
:meth:`Engine.receive_data <hyper.http20.engine.Engine.receive_data>` as one of these events,
in the order the frames arrived.
"""

from __future__ import annotations

from .stream import HeaderList, Stream

__all__ = ["Event", "GoAwayReceived", "PingAcknowledged", "PushPromised"]


class Event:
    """The base class of the engine's events."""

    __slots__ = ()


class PushPromised(Event):
    """
    The server promised a push. The engine has checked the promised request and reserved
    the stream; whoever handles the event accepts it (keeps ``stream``) or refuses it
    (:meth:`Engine.reset_stream <hyper.http20.engine.Engine.reset_stream>`).

    :ivar parent_stream_id: the request the push belongs to.
    :ivar stream: the pushed stream, its promised request in ``request_headers``.
    """

    __slots__ = ("parent_stream_id", "stream")

    def __init__(self, parent_stream_id: int, stream: Stream) -> None:
        self.parent_stream_id = parent_stream_id
        self.stream = stream

    @property
    def headers(self) -> HeaderList:
        """The promised request's header block."""
        return self.stream.request_headers

    def __repr__(self) -> str:
        return f"<PushPromised {self.stream.stream_id} on {self.parent_stream_id}>"


class GoAwayReceived(Event):
    """
    The server sent GOAWAY. No new stream may be opened on the connection. Streams above
    ``last_stream_id`` were never processed: the engine has marked them ``unprocessed`` and
    ended them. With an error code, the connection has failed as a whole.

    :ivar error_code: the GOAWAY's error code (``ErrorCodes.NO_ERROR`` for a graceful one).
    :ivar last_stream_id: the highest stream id the server may have processed.
    :ivar additional_data: the debug data the server attached (may be empty).
    """

    __slots__ = ("additional_data", "error_code", "last_stream_id")

    def __init__(self, error_code: int, last_stream_id: int, additional_data: bytes) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data

    def __repr__(self) -> str:
        return f"<GoAwayReceived code={self.error_code} last_stream_id={self.last_stream_id}>"


class PingAcknowledged(Event):
    """
    The server acknowledged a PING.

    :ivar data: the 8 bytes the PING carried.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<PingAcknowledged {self.data!r}>"
