"""
:class:`HTTP30Response`, the answer to one HTTP/3 request, read through the
:class:`~hyper.common.stream_response.StreamHandle` the connection gives it.
"""

from __future__ import annotations

from ..common.stream_response import StreamHandle, StreamResponse
from ..common.trace import Timings
from ..common.util import HTTPVersion
from .stream import RequestStream

__all__ = ["HTTP30Response"]


class HTTP30Response(StreamResponse):
    """
    The response to an HTTP/3 request: status, headers, body and trailers.

    Responses come from :meth:`HTTP30Connection.get_response
    <hyper.HTTP30Connection.get_response>`; the constructor is not meant to be called
    directly. The body is taken from the connection as the caller reads it (see
    :doc:`/http3` for what that means for memory).

    Iterating over a response yields its body in pieces (decoded, empty pieces skipped);
    :meth:`read_chunked` yields what has arrived each time. It is a context manager: leaving
    the ``with`` block closes it. Closing a response whose body was not read to the end
    resets its stream (``H3_REQUEST_CANCELLED``).

    :param headers: the response's header fields as the engine checked them: ``:status``
        first, then regular fields only (RFC 9114 section 4.3.2).
    :param stream: the handle the response reads its stream through.
    :param timings: the request's :class:`~hyper.common.trace.Timings`.
    :raises InvalidResponse: if ``:status`` is not a three-digit status code.
    """

    #: The protocol of the response.
    version = HTTPVersion.http30

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]],
        stream: StreamHandle[RequestStream],
        timings: Timings | None = None,
    ) -> None:
        super().__init__(headers, stream, timings)
