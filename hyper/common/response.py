"""
What HTTP/1.1 and HTTP/2 responses share: status, headers, and reading a body that may be
compressed, in bounded pieces.

A protocol's response class supplies two primitives, :meth:`BaseResponse._raw_read` and
:meth:`BaseResponse._raw_chunk`, and inherits :meth:`~BaseResponse.read`,
:meth:`~BaseResponse.read_chunked`, iteration and the context manager from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO

from .decoder import Decoder, get_decoder
from .exceptions import InvalidRequest
from .headers import HTTPHeaderMap
from .trace import Timings
from .util import ClosingContextManager, HTTPVersion

#: The most decoded bytes produced per step when decompressing for read_chunked() or
#: iteration, so a small compressed body cannot expand into one huge piece.
DECODE_STEP = 256 * 1024


class BaseResponse(ClosingContextManager):
    """
    The parts of a response common to both protocols. Not instantiated directly.

    Iterating over a response yields its body in pieces (decoded, empty pieces skipped). It
    is a context manager: leaving the ``with`` block closes it.
    """

    #: The protocol of the response.
    version: HTTPVersion
    #: The status code, an int.
    status: int
    #: The reason phrase (always ``""`` for HTTP/2).
    reason: str
    #: The response headers, set once and never changed.
    headers: HTTPHeaderMap
    #: When each phase of the request and of this response happened
    #: (:class:`~hyper.common.trace.Timings`, see :doc:`/timings`).
    timings: Timings

    _decoder: Decoder | None = None
    _decoder_made = False

    # -- what a protocol provides -----------------------------------------------------------------

    def _raw_read(self, amt: int | None) -> bytes:
        """Return up to ``amt`` bytes of the body as sent (all when ``None``); b"" at the end."""
        raise NotImplementedError

    def _raw_chunk(self) -> bytes | None:
        """Return the next piece of the body as sent (possibly empty), or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the response; the protocol decides what that means for the connection."""
        raise NotImplementedError

    # -- reading ----------------------------------------------------------------------------------

    def _get_decoder(self) -> Decoder | None:
        if not self._decoder_made:
            self._decoder = get_decoder(self.headers.get(b"content-encoding"))
            self._decoder_made = True
        return self._decoder

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        """
        Read the body, or up to ``amt`` bytes of it.

        :param amt: the most bytes to return; ``None`` reads to the end of the body. With
            ``amt``, the call returns exactly ``amt`` bytes unless the body ends first (an
            empty result means the body is over). Without it, the body is gathered in one
            growing buffer that becomes the result: memory peaks at about the size of the
            (decoded) body, not twice it.
        :param decode_content: decode a body sent with a ``Content-Encoding`` hyper knows
            (gzip, deflate, br, zstd). With ``amt``, at most ``amt`` *decoded* bytes are
            returned, so a small compressed body cannot expand without limit in one call.
            Use the same setting for every read of one response.
        :returns: the data.
        :raises ContentDecodingError: if the body does not decode, or its
            ``Content-Encoding`` lists more than
            :data:`~hyper.common.decoder.MAX_CODINGS` codings (raised before any byte is
            decoded).
        :raises HyperError: (a subclass) if the body cannot be read to its end: the stream
            was reset, the connection failed, or the body was shorter than announced.
        """
        if amt is not None and (isinstance(amt, bool) or not isinstance(amt, int)):
            raise InvalidRequest(f"amt must be an int or None, not {type(amt).__name__}")
        decoder = self._get_decoder() if decode_content else None
        if decoder is None:
            return self._raw_read(amt) if amt is None or amt > 0 else b""
        if amt is None:
            return self._decode_whole(decoder)
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

    def _decode_whole(self, decoder: Decoder) -> bytes:
        """The rest of the body, decoded. The encoded body is taken piece by piece and
        decoded in bounded steps into one growing buffer, so the peak is about the decoded
        body, never the encoded and decoded bodies together or a second copy of either."""
        sink = BytesIO()
        while True:
            raw = self._raw_chunk()
            if raw is None:
                break
            sink.write(decoder.decompress(raw, DECODE_STEP))
            while not decoder.needs_input:
                sink.write(decoder.decompress(b"", DECODE_STEP))
        while out := decoder.flush(DECODE_STEP):
            sink.write(out)
        # CPython's BytesIO hands over its buffer without copying it when no view is open.
        return sink.getvalue()

    def read_chunked(self, decode_content: bool = True) -> Iterator[bytes]:
        """
        Yield the body as it arrives: one DATA frame at a time for HTTP/2, one chunk at a
        time for a chunked HTTP/1.1 body (a chunk larger than one socket read comes in
        several pieces, so memory stays bounded), and what each socket read brings otherwise.

        An empty piece (HTTP/2 allows empty DATA frames) does not mean the body is over; the
        generator ending does. When the body is decoded (``decode_content``), each piece is
        what the decoder produced, split so that no piece is larger than 256 KiB.

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
