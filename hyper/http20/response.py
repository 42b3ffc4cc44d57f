"""
:class:`HTTP20Response`, the answer to one request, and :class:`HTTP20Push`, a request the
server made on the client's behalf.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from ..common.decoder import Decoder, get_decoder
from ..common.exceptions import InvalidResponse
from ..common.headers import HTTPHeaderMap
from ..common.util import HTTPVersion

if TYPE_CHECKING:
    from .stream import Stream

#: The most decoded bytes produced per step when decompressing for read_chunked() or
#: iteration, so a small compressed body cannot expand into one huge piece.
DECODE_STEP = 256 * 1024


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


class HTTP20Response:
    """
    The response to an HTTP/2 request: status, headers, body and trailers.

    Responses come from :meth:`HTTP20Connection.get_response
    <hyper.HTTP20Connection.get_response>`; the constructor is not meant to be called
    directly. The body is read from the connection as the caller asks for it, so a response
    that is not read holds the server back (flow control) instead of filling memory.

    Iterating over a response yields its body in pieces (decoded, empty pieces skipped). It
    is a context manager: leaving the ``with`` block closes it.

    :param headers: the response header block, ``:status`` included.
    :param stream: the stream the response arrives on.
    :raises InvalidResponse: if ``:status`` is not a three-digit status code.
    """

    #: The protocol of the response.
    version = HTTPVersion.http20

    def __init__(
        self, headers: HTTPHeaderMap | Iterable[tuple[bytes, bytes]], stream: Stream
    ) -> None:
        pseudo, plain = _split_pseudo(headers)
        status = pseudo.get(b":status", b"")
        if len(status) != 3 or not status.isdigit():
            stream._conn._close_stream(stream)
            raise InvalidResponse(
                f"stream {stream.stream_id}: invalid :status {status[:20]!r} in response"
            )
        #: The status code, an int.
        self.status = int(status)
        #: HTTP/2 has no reason phrase: always ``""``.
        self.reason = ""
        #: The response headers (pseudo-headers left out), set once and never changed.
        self.headers = HTTPHeaderMap._from_trusted(plain)
        self._stream = stream
        self._decoder: Decoder | None = None
        self._decoder_made = False
        #: Raw body bytes read ahead (to reach the trailers) and not yet returned.
        self._cache: bytes | None = None

    def __repr__(self) -> str:
        return f"<HTTP20Response [{self.status}] stream={self._stream.stream_id}>"

    @property
    def stream_id(self) -> int:
        """The id of the stream the response arrived on."""
        return self._stream.stream_id

    # -- body -------------------------------------------------------------------------------------

    def _get_decoder(self) -> Decoder | None:
        if not self._decoder_made:
            self._decoder = get_decoder(self.headers.get(b"content-encoding"))
            self._decoder_made = True
        return self._decoder

    def _raw_read(self, amt: int | None) -> bytes:
        cache = self._cache
        if cache is not None:
            if amt is None or amt >= len(cache):
                self._cache = None
                if amt is not None or self._stream.finished:
                    return cache
                return cache + self._stream._conn._read_body(self._stream, None)
            self._cache = cache[amt:]
            return cache[:amt]
        return self._stream._conn._read_body(self._stream, amt)

    def _raw_chunk(self) -> bytes | None:
        cache = self._cache
        if cache is not None:
            self._cache = None
            return cache
        return self._stream._conn._read_frame(self._stream)

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        """
        Read the body, or up to ``amt`` bytes of it.

        :param amt: the most bytes to return; ``None`` reads to the end of the body. With
            ``amt``, the call returns exactly ``amt`` bytes unless the body ends first (an
            empty result means the body is over).
        :param decode_content: decode a body sent with a ``Content-Encoding`` hyper knows
            (gzip, deflate, br, zstd). With ``amt``, at most ``amt`` *decoded* bytes are
            returned, so a small compressed body cannot expand without limit in one call.
        :returns: the data.
        :raises StreamResetError: if the server reset the stream before the body ended.
        :raises ConnectionClosed: if the connection failed before the body ended.
        :raises ContentDecodingError: if the body does not decode.
        """
        decoder = self._get_decoder() if decode_content else None
        if decoder is None:
            return self._raw_read(amt)
        if amt is None:
            return decoder.decompress(self._raw_read(None)) + decoder.flush()
        if amt <= 0:
            return b""
        while True:
            if not decoder.needs_input:
                out = decoder.decompress(b"", amt)
                if out:
                    return out
            raw = self._raw_chunk()
            if raw is None:
                return decoder.flush(amt)
            out = decoder.decompress(raw, amt)
            if out:
                return out

    def read_chunked(self, decode_content: bool = True) -> Iterator[bytes]:
        """
        Yield the body as it arrives, one DATA frame at a time.

        HTTP/2 allows empty DATA frames, and they are yielded as ``b""``: an empty piece does
        not mean the body is over; the generator ending does. When the body is decoded
        (``decode_content``), each piece is what the decoder produced from a frame, split so
        that no piece is larger than 256 KiB.

        :param decode_content: decode a compressed body (see :meth:`read`).
        :returns: a generator of ``bytes``.
        """
        decoder = self._get_decoder() if decode_content else None
        while True:
            raw = self._raw_chunk()
            if raw is None:
                break
            if decoder is None:
                yield raw
                continue
            yield decoder.decompress(raw, DECODE_STEP)
            while not decoder.needs_input:
                out = decoder.decompress(b"", DECODE_STEP)
                if not out:
                    break
                yield out
        if decoder is not None:
            while True:
                tail = decoder.flush(DECODE_STEP)
                if not tail:
                    break
                yield tail

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.read_chunked():
            if piece:
                yield piece

    @property
    def trailers(self) -> HTTPHeaderMap | None:
        """
        The trailers the server sent after the body, or ``None`` if it sent none.

        Trailers come after the body, so asking for them reads the rest of the body into
        memory (it stays available to :meth:`read`).
        """
        stream = self._stream
        if not stream.finished:
            self._cache = (self._cache or b"") + stream._conn._read_body(stream, None)
        stream.raise_if_failed()
        if stream.trailers is None:
            return None
        return HTTPHeaderMap._from_trusted(list(stream.trailers))

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """
        Close the response. If the body has not been read to the end, the stream is reset
        (``CANCEL``) so the server stops sending it; data not read is dropped.
        """
        self._cache = None
        self._stream._conn._close_stream(self._stream)

    def fileno(self) -> int:
        """
        The file descriptor of the connection's socket (shared by every stream on it), for
        ``select``-style readiness checks.
        """
        return self._stream._conn._fileno()

    def __enter__(self) -> HTTP20Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HTTP20Push:
    """
    A response the server pushed (server push): the request the server made on the client's
    behalf, and the way to its response.

    Pushes come from :meth:`HTTP20Connection.get_pushes <hyper.HTTP20Connection.get_pushes>`.

    :param request_headers: the header block of the PUSH_PROMISE, pseudo-headers included.
    :param stream: the pushed stream.
    """

    def __init__(
        self, request_headers: HTTPHeaderMap | Iterable[tuple[bytes, bytes]], stream: Stream
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
        self.request_headers = HTTPHeaderMap._from_trusted(plain)
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
        stream = self._stream
        if not stream.has_headers():
            stream._conn._read_until(stream.has_headers)
        if stream.response_headers is None:
            stream.raise_if_failed()
            raise InvalidResponse(f"pushed stream {stream.stream_id} ended without a response")
        return HTTP20Response(stream.response_headers, stream)

    def cancel(self) -> None:
        """Refuse the pushed response: the stream is reset with ``CANCEL``."""
        stream = self._stream
        stream._conn._close_stream(stream)
        stream.reset_code = ErrorCodes.CANCEL
