"""Fuzzing content decoding: compressed bodies, valid or not, through hyper's
:class:`~hyper.common.decoder.Decoder` and through whole responses.

* ``test_decoder``: a chain of codings (gzip, deflate, br, zstd), a body that is either any
  bytes or a real encoding of some plaintext (then maybe mutated), fed in random pieces with
  a random ``max_length``. Only ``ContentDecodingError`` may escape; no call returns more
  than ``max_length`` bytes; an unmutated encoding decodes back to the plaintext.
* ``test_response_bodies``: the same bodies served by a scripted server over HTTP/1.1
  (counted or chunked) or HTTP/2 (DATA frames), read with ``read()``, ``read(amt)``,
  ``read_chunked()`` or without decoding. The same checks, end to end.
"""

from __future__ import annotations

from typing import Any

import hpack
from hypothesis import given
from hypothesis import strategies as st

from hyper import HTTP11Connection, HTTP20Connection
from hyper.common.decoder import SUPPORTED_ENCODINGS, Decoder
from hyper.common.exceptions import ContentDecodingError
from tests.fuzz.h2frames import DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS, raw_frame
from tests.fuzz.harness import (
    CLIENT_TIMEOUT,
    COMPRESSORS,
    ScriptedPeer,
    check_outcome,
    encode_body,
    fuzz,
    mutated,
    plaintext,
)

#: Codings this environment decodes (all four are hyper dependencies, but stay honest).
CODINGS = sorted(set(COMPRESSORS) & set(SUPPORTED_ENCODINGS))
#: Decoded output above this means a bomb got through a bounded read.
OUTPUT_CAP = 32 * 1024 * 1024


@st.composite
def encoded_bodies(draw: st.DrawFn) -> tuple[list[str], bytes, bytes | None]:
    """(codings, body, plaintext the body must decode to, or None when it need not)."""
    codings = draw(st.lists(st.sampled_from(CODINGS), min_size=1, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        return codings, draw(st.binary(max_size=300)), None
    plain = draw(plaintext())
    body = encode_body(plain, codings, raw_deflate=draw(st.booleans()))
    if draw(st.booleans()):
        mutated_body = draw(mutated(body))
        if mutated_body != body:
            return codings, mutated_body, None
    if draw(st.integers(0, 4)) == 0:
        # Junk after the end of the stream: ignored for gzip/deflate/zstd, an error for br.
        body += draw(st.sampled_from([b"\0\0\0\0", b"junk", b"\n"]))
        return codings, body, None
    return codings, body, plain


def pieces(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` split at a few random points (empty pieces included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


max_lengths = st.sampled_from([-1, 1, 7, 1000, 65536])


def decode_all(decoder: Decoder, chunks: list[bytes], max_length: int) -> bytes:
    """Feed ``chunks`` and flush, the way the docstring of Decoder says to; check the bound."""
    out: list[bytes] = []
    total = 0

    def take(data: bytes) -> bool:
        nonlocal total
        assert max_length < 0 or len(data) <= max_length, (len(data), max_length)
        out.append(data)
        total += len(data)
        assert total <= OUTPUT_CAP, "decoded output over the cap"
        return bool(data)

    for chunk in chunks:
        take(decoder.decompress(chunk, max_length))
        while max_length > 0 and not decoder.needs_input:
            if not take(decoder.decompress(b"", max_length)):
                break
    while take(decoder.flush(max_length)):
        if max_length < 0:
            break
    return b"".join(out)


@fuzz(ci_default=1000)
@given(encoded_bodies(), st.data(), max_lengths)
def test_decoder(encoded: tuple[list[str], bytes, bytes | None], data: Any, limit: int) -> None:
    """Decoder: bounded output, exact round trip, only ContentDecodingError."""
    codings, body, plain = encoded
    decoder = Decoder(codings)
    result: list[bytes] = []
    chunks = pieces(data.draw, body)
    error = check_outcome(lambda: result.append(decode_all(decoder, chunks, limit)))
    if error is not None:
        assert isinstance(error, ContentDecodingError), repr(error)
        assert plain is None, f"a valid {codings} body was refused: {error!r}"
    elif plain is not None:
        assert result[0] == plain


def http11_script(codings: list[str], body: bytes, data: Any) -> bytes:
    """An HTTP/1.1 response carrying ``body``, counted or chunked."""
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: " + ", ".join(codings).encode() + b"\r\n"
    if data.draw(st.booleans()):
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    chunks = [c for c in pieces(data.draw, body) if c]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


def http2_script(codings: list[str], body: bytes, data: Any) -> bytes:
    """An HTTP/2 response carrying ``body`` in DATA frames on stream 1."""
    block = hpack.Encoder().encode(
        [(b":status", b"200"), (b"content-encoding", ", ".join(codings).encode())]
    )
    out = raw_frame(SETTINGS, 0, 0, b"") + raw_frame(HEADERS, END_HEADERS, 1, bytes(block))
    for chunk in pieces(data.draw, body):
        out += raw_frame(DATA, 0, 1, chunk)
    return out + raw_frame(DATA, END_STREAM, 1, b"")


@fuzz(ci_default=500)
@given(
    encoded_bodies(),
    st.data(),
    st.sampled_from(["http11", "http2"]),
    st.sampled_from(["read", "amt", "chunked", "raw"]),
    st.sampled_from([1, 100, 65536]),
)
def test_response_bodies(
    encoded: tuple[list[str], bytes, bytes | None],
    data: Any,
    protocol: str,
    mode: str,
    amt: int,
) -> None:
    """Compressed bodies end to end: a documented error, or exactly the plaintext."""
    codings, body, plain = encoded
    if protocol == "http11":
        script, cls = http11_script(codings, body, data), HTTP11Connection
    else:
        script, cls = http2_script(codings, body, data), HTTP20Connection
    got: list[bytes] = []
    peer = ScriptedPeer([script])
    with peer.installed():
        conn = cls("fuzz.invalid", 80, secure=False, timeout=CLIENT_TIMEOUT)

        def session() -> None:
            try:
                conn.request("GET", "/")
                response = conn.get_response()
                if mode == "read":
                    got.append(response.read())
                elif mode == "raw":
                    got.append(response.read(decode_content=False))
                elif mode == "chunked":
                    got.append(b"".join(response.read_chunked()))
                else:
                    parts = []
                    while part := response.read(amt):
                        assert len(part) <= amt
                        parts.append(part)
                        assert len(parts) < 1_000_000
                    got.append(b"".join(parts))
            finally:
                conn.close()

        error = check_outcome(session)
    if error is not None:
        assert plain is None, f"a valid {codings} body was refused: {error!r}"
    elif mode == "raw":
        assert got[0] == body
    elif plain is not None:
        assert got[0] == plain
