"""
:class:`HTTP20Response`, the answer to one request, and :class:`HTTP20Push`, a request the
server made on the client's behalf.

Both read their stream through the :class:`~hyper.http20.transport.StreamHandle` the
connection gives them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..common.exceptions import InvalidResponse
from ..common.headers import HTTPHeaderMap
from ..common.response import BaseResponse
from ..common.util import HTTPVersion
from .transport import StreamHandle

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


class HTTP20Response(BaseResponse):
    """
    The response to an HTTP/2 request: status, headers, body and trailers.

    Responses come from :meth:`HTTP20Connection.get_response
    <hyper.HTTP20Connection.get_response>`; the constructor is not meant to be called
    directly. The body is read from the connection as the caller asks for it, so a response
    that is not read holds the server back (flow control) instead of filling memory.

    Iterating over a response yields its body in pieces (decoded, empty pieces skipped). It
    is a context manager: leaving the ``with`` block closes it.

    :param headers: the response's header fields as the engine checked them: ``:status``
        first, then regular fields only (RFC 9113 section 8.3).
    :param stream: the handle the response reads its stream through.
    :raises InvalidResponse: if ``:status`` is not a three-digit status code.
    """

    #: The protocol of the response.
    version = HTTPVersion.http20

    def __init__(self, headers: list[tuple[bytes, bytes]], stream: StreamHandle) -> None:
        status = headers[0][1] if headers and headers[0][0] == b":status" else b""
        if len(status) != 3 or not status.isdigit():
            stream.close()
            raise InvalidResponse(
                f"stream {stream.stream_id}: invalid :status {status[:20]!r} in response"
            )
        #: The status code, an int.
        self.status = int(status)
        #: HTTP/2 has no reason phrase: always ``""``.
        self.reason = ""
        #: The response headers (pseudo-headers left out), set once and never changed.
        self.headers = HTTPHeaderMap.from_trusted(headers[1:])
        self._stream = stream
        #: Raw body bytes read ahead (to reach the trailers) and not yet returned.
        self._cache: bytes | None = None

    def __repr__(self) -> str:
        return f"<HTTP20Response [{self.status}] stream={self._stream.stream_id}>"

    @property
    def stream_id(self) -> int:
        """The id of the stream the response arrived on."""
        return self._stream.stream_id

    # -- body -------------------------------------------------------------------------------------

    def _raw_read(self, amt: int | None) -> bytes:
        cache = self._cache
        if cache is not None:
            if amt is None or amt >= len(cache):
                self._cache = None
                if amt is not None or self._stream.finished:
                    return cache
                return cache + self._stream.read(None)
            self._cache = cache[amt:]
            return cache[:amt]
        return self._stream.read(amt)

    def _raw_chunk(self) -> bytes | None:
        cache = self._cache
        if cache is not None:
            self._cache = None
            return cache
        return self._stream.read_chunk()

    @property
    def trailers(self) -> HTTPHeaderMap | None:
        """
        The trailers the server sent after the body, or ``None`` if it sent none.

        Trailers come after the body, so asking for them reads the rest of the body into
        memory (it stays available to :meth:`read`).
        """
        stream = self._stream
        if not stream.finished:
            self._cache = (self._cache or b"") + stream.read(None)
        trailers = stream.trailers()
        if trailers is None:
            return None
        return HTTPHeaderMap.from_trusted(list(trailers))

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """
        Close the response. If the body has not been read to the end, the stream is reset
        (``CANCEL``) so the server stops sending it; data not read is dropped.
        """
        self._cache = None
        self._stream.close()

    def fileno(self) -> int:
        """
        The file descriptor of the socket this response arrives on (shared by every stream
        on it), for ``select``-style readiness checks.
        """
        return self._stream.fileno()


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
        stream: StreamHandle,
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

        :raises StreamResetError: if the push was reset (or cancelled) before its headers.
        """
        handle = self._stream
        handle.wait_for_headers()
        headers = handle.stream.response_headers
        if headers is None:
            handle.stream.raise_if_failed()
            raise InvalidResponse(f"pushed stream {handle.stream_id} ended without a response")
        return HTTP20Response(headers, handle)

    def cancel(self) -> None:
        """Refuse the pushed response: the stream is reset with ``CANCEL``."""
        self._stream.close()
