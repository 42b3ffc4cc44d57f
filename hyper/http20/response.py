"""
:class:`HTTP20Response`, the answer to one request, and :class:`HTTP20Push`, a request the
server made on the client's behalf.

Both read their stream through the :class:`~hyper.common.stream_response.StreamHandle` the
connection gives them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..common.exceptions import InvalidResponse
from ..common.headers import HTTPHeaderMap
from ..common.stream_response import StreamHandle, StreamResponse
from ..common.trace import Timings
from ..common.util import HTTPVersion
from .stream import Stream

__all__ = ["HTTP20Push", "HTTP20Response"]


def _split_pseudo(
    headers: HTTPHeaderMap | Iterable[tuple[bytes, bytes]],
) -> tuple[dict[bytes, bytes], list[tuple[bytes, bytes]]]:
    """Separate pseudo-headers (``:status``, ``:path``...) from ordinary ones."""
    pairs = headers.iter_raw() if isinstance(headers, HTTPHeaderMap) else headers
    pseudo: dict[bytes, bytes] = {}
    plain: list[tuple[bytes, bytes]] = []
    for name, value in pairs:
        if name[:1] == b":":
            pseudo[name] = value
        else:
            plain.append((name, value))
    return pseudo, plain


class HTTP20Response(StreamResponse):
    """
    The response to an HTTP/2 request: status, headers, body and trailers.

    Responses come from :meth:`HTTP20Connection.get_response
    <hyper.HTTP20Connection.get_response>`; the constructor is not meant to be called
    directly. The body is read from the connection as the caller asks for it, so a response
    that is not read holds the server back (flow control) instead of filling memory.

    Iterating over a response yields its body in pieces (decoded, empty pieces skipped). It
    is a context manager: leaving the ``with`` block closes it. Closing a response whose body
    was not read to the end resets its stream (``CANCEL``).

    :param headers: the response's header fields as the engine checked them: ``:status``
        first, then regular fields only (RFC 9113 section 8.3).
    :param stream: the handle the response reads its stream through.
    :param timings: the request's :class:`~hyper.common.trace.Timings`.
    :raises InvalidResponse: if ``:status`` is not a three-digit status code.
    """

    #: The protocol of the response.
    version = HTTPVersion.http20

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]],
        stream: StreamHandle[Stream],
        timings: Timings | None = None,
    ) -> None:
        super().__init__(headers, stream, timings)


class HTTP20Push:
    """
    A response the server pushed (server push): the request the server made on the client's
    behalf, and the way to its response.

    Pushes come from :meth:`HTTP20Connection.get_pushes <hyper.HTTP20Connection.get_pushes>`.

    :param request_headers: the header block of the PUSH_PROMISE, pseudo-headers included.
    :param stream: the handle of the pushed stream.
    """

    def __init__(
        self,
        request_headers: HTTPHeaderMap | Iterable[tuple[bytes, bytes]],
        stream: StreamHandle[Stream],
    ) -> None:
        pseudo, plain = _split_pseudo(request_headers)
        #: The scheme of the promised request (``b"https"``).
        self.scheme = pseudo.get(b":scheme", b"")
        #: The method of the promised request (a safe method such as ``b"GET"``).
        self.method = pseudo.get(b":method", b"")
        #: The authority of the promised request (``b"host:port"``).
        self.authority = pseudo.get(b":authority", b"")
        #: The path of the promised request.
        self.path = pseudo.get(b":path", b"")
        #: The ordinary headers of the promised request.
        self.request_headers = HTTPHeaderMap.from_trusted(plain)
        self._stream = stream

    def __repr__(self) -> str:
        return f"<HTTP20Push {self.method!r} {self.authority!r}{self.path!r}>"

    @property
    def stream_id(self) -> int:
        """The id of the pushed stream."""
        return self._stream.stream_id

    def get_response(self) -> HTTP20Response:
        """
        Wait for and return the pushed response.

        :raises ~hyper.http20.exceptions.StreamResetError: if the push was reset (or cancelled)
            before its headers.
        """
        handle = self._stream
        handle.wait_for_headers()
        headers = handle.stream.response_headers
        if headers is None:
            handle.stream.raise_if_failed()
            raise InvalidResponse(f"pushed stream {handle.stream_id} ended without a response")
        return HTTP20Response(headers, handle, handle.stream.timings)

    def cancel(self) -> None:
        """Refuse the pushed response: the stream is reset with ``CANCEL``."""
        self._stream.close()
