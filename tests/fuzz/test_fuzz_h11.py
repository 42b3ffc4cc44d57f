"""Fuzzing hyper's HTTP/1.1 side: the response parser, HTTP11Connection, and the protocol
negotiation of HTTPConnection in plaintext.

* ``test_parser_arbitrary_bytes``: the sans-I/O :class:`~hyper.http11.parser.Parser` fed any
  bytes, whole or in two parts: a head, ``None`` (incomplete), or ``InvalidResponse``.
* ``test_http11_arbitrary_server_bytes`` and ``test_http11_structured_responses``: a scripted
  server (``harness.ScriptedPeer``) answers an ``HTTP11Connection`` with arbitrary bytes, or
  with a response built from parts that matter for framing (status lines, Content-Length,
  Transfer-Encoding, chunk sizes and extensions, trailers, Content-Encoding, Connection,
  line endings, obs-fold), optionally followed by a second pipelined response, then mutated.
* ``test_negotiation``: ``HTTPConnection`` in plaintext sends ``Upgrade: h2c``; the script is
  an HTTP/1.1 response, a ``101 Switching Protocols`` followed by HTTP/2 frames, or HTTP/2
  frames straight away (a prior-knowledge-only server, which makes hyper reconnect).

The property is the same as for HTTP/2 (``harness.check_outcome``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hyper import HTTP11Connection, HTTPConnection
from hyper.common.exceptions import InvalidResponse
from hyper.http11.parser import Parser, ResponseHead
from tests.fuzz.h2frames import frame_script
from tests.fuzz.harness import (
    CLIENT_TIMEOUT,
    ScriptedPeer,
    check_outcome,
    consume,
    content_codings,
    encode_body,
    fuzz,
    mutated,
    plaintext,
)

# -- response parts ---------------------------------------------------------------------------

status_lines = st.one_of(
    st.sampled_from(
        [
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 204 No Content",
            b"HTTP/1.1 304 Not Modified",
            b"HTTP/1.0 200 OK",
            b"HTTP/1.1 100 Continue",
            b"HTTP/1.1 101 Switching Protocols",
            b"HTTP/1.1 404 ",
            b"HTTP/1.1 200",
            b"HTTP/2 200 OK",
            b"HTTP/1.1 2000 OK",
            b"ICY 200 OK",
            b"HTTP/1.1 -20 OK",
        ]
    ),
    st.builds(
        lambda v, code, reason: b"HTTP/1." + v + b" " + code + b" " + reason,
        st.sampled_from([b"0", b"1", b"9"]),
        st.binary(max_size=4),
        st.binary(max_size=10),
    ),
)

framing_fields = st.sampled_from(
    [
        (b"Content-Length", b"0"),
        (b"Content-Length", b"5"),
        (b"Content-Length", b"-1"),
        (b"Content-Length", b"5, 5"),
        (b"Content-Length", b"5, 6"),
        (b"Content-Length", b"99999999999999999999"),
        (b"Content-Length", b"0x10"),
        (b"Content-Length", b" 3 "),
        (b"Transfer-Encoding", b"chunked"),
        (b"Transfer-Encoding", b"gzip, chunked"),
        (b"Transfer-Encoding", b"chunked, gzip"),
        (b"Transfer-Encoding", b"identity"),
        (b"Transfer-Encoding", b"Chunked"),
        (b"Connection", b"close"),
        (b"Connection", b"keep-alive"),
        (b"Connection", b"Upgrade"),
        (b"Upgrade", b"h2c"),
        (b"Content-Encoding", b"gzip"),
        (b"Content-Encoding", b"identity, br"),
        (b"Content-Encoding", b"bogus"),
        (b"Trailer", b"X-T"),
        (b"Keep-Alive", b"timeout=5"),
    ]
)
random_fields = st.tuples(st.binary(max_size=12), st.binary(max_size=20))
line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\r\n"])


@st.composite
def head(draw: st.DrawFn, fields: list[tuple[bytes, bytes]]) -> bytes:
    """A status line and ``fields`` (plus random extras), with varied separators, line ends
    and the occasional obs-fold."""
    eol = draw(line_ends) if draw(st.integers(0, 4)) == 0 else b"\r\n"
    lines = [draw(status_lines)]
    fields = fields + draw(st.lists(st.one_of(framing_fields, random_fields), max_size=3))
    for name, value in draw(st.permutations(fields)):
        sep = draw(st.sampled_from([b": ", b":", b" : ", b":\t"]))
        lines.append(name + sep + value)
        if draw(st.integers(0, 19)) == 0:
            lines.append(b" folded")
    return eol.join(lines) + eol + eol


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` in chunks whose size lines are usually right, sometimes not, with extensions,
    upper-case hex, leading zeros, and trailers."""
    out = b""
    start = 0
    while start < len(body):
        size = draw(st.integers(1, max(1, len(body) - start)))
        piece = body[start : start + size]
        start += size
        declared = len(piece) + (draw(st.sampled_from([0, 0, 0, 0, 1, -1])))
        size_text = draw(
            st.sampled_from(
                [b"%x" % max(declared, 0), b"%X" % max(declared, 0), b"00%x" % max(declared, 0)]
            )
        )
        if draw(st.integers(0, 9)) == 0:
            size_text += draw(st.sampled_from([b";ext=1", b" ;x", b'; q="a"', b";"]))
        out += size_text + b"\r\n" + piece + b"\r\n"
    out += draw(st.sampled_from([b"0\r\n", b"0;ext\r\n", b"000\r\n", b"0\n"]))
    for name, value in draw(
        st.lists(st.tuples(st.sampled_from([b"X-T", b""]), st.binary(max_size=6)), max_size=2)
    ):
        out += name + b": " + value + b"\r\n"
    return out + b"\r\n"


@st.composite
def http11_response(draw: st.DrawFn) -> bytes:
    """One response: interim 1xx heads sometimes, then a head whose framing fields usually
    agree with the body, the body (compressed half the time), chunked or counted."""
    out = b""
    if draw(st.integers(0, 7)) == 0:
        out += b"HTTP/1.1 100 Continue\r\n\r\n"
    body = draw(plaintext())
    fields: list[tuple[bytes, bytes]] = []
    codings = draw(st.one_of(st.none(), content_codings))
    if codings:
        body = encode_body(body, codings, raw_deflate=draw(st.booleans()))
        fields.append((b"Content-Encoding", ", ".join(codings).encode()))
    framing = draw(st.sampled_from(["length", "chunked", "close", "none"]))
    if framing == "length":
        fields.append((b"Content-Length", str(len(body)).encode()))
        payload = body
    elif framing == "chunked":
        fields.append((b"Transfer-Encoding", b"chunked"))
        payload = draw(chunked(body))
    elif framing == "close":
        fields.append((b"Connection", b"close"))
        payload = body
    else:
        payload = body
    return out + draw(head(fields)) + payload


@st.composite
def http11_script(draw: st.DrawFn) -> bytes:
    """One response, sometimes two (for a second request on the same connection), then
    byte mutations half the time."""
    out = draw(http11_response())
    if draw(st.integers(0, 3)) == 0:
        out += draw(http11_response())
    if draw(st.booleans()):
        out = draw(mutated(out))
    return out


# -- the client side --------------------------------------------------------------------------


@st.composite
def client_plan(draw: st.DrawFn) -> dict[str, Any]:
    """What the client does: method, body, how to read, whether to send a second request."""
    return {
        "method": draw(st.sampled_from(["GET", "GET", "HEAD", "POST"])),
        "body": draw(st.sampled_from([None, b"upload", [b"chunked", b" upload"]])),
        "mode": draw(st.sampled_from(["read", "amt", "chunked", "iter", "raw", "close"])),
        "amt": draw(st.sampled_from([1, 7, 100, 65536])),
        "second": draw(st.integers(0, 2)) == 0,
        # The script written before the request arrives (see ScriptedPeer).
        "early": draw(st.integers(0, 4)) == 0,
    }


def drive(cls: Any, scripts: list[bytes], plan: dict[str, Any]) -> ScriptedPeer:
    """One client session of ``cls`` against ``scripts``; checks the property."""
    peer = ScriptedPeer(scripts, early=plan["early"])
    with peer.installed():
        conn = cls("fuzz.invalid", 80, secure=False, timeout=CLIENT_TIMEOUT)

        def session() -> None:
            try:
                body = plan["body"]
                method = "POST" if body is not None else plan["method"]
                # A list body is consumed when sent: give each request its own copy.
                conn.request(method, "/", body=list(body) if isinstance(body, list) else body)
                consume(conn.get_response(), plan)
                if plan["second"]:
                    conn.request("GET", "/again")
                    consume(conn.get_response(), plan)
            finally:
                conn.close()

        check_outcome(session)
        conn.close()
    return peer


# -- harnesses --------------------------------------------------------------------------------


@fuzz(ci_default=1000)
@given(st.binary(max_size=400), st.integers(0, 400))
def test_parser_arbitrary_bytes(data: bytes, cut: int) -> None:
    """The parser returns a head, ``None`` (incomplete) or raises ``InvalidResponse``; and a
    prefix of a valid head is reported incomplete, never refused (bytes arrive in pieces)."""
    parser = Parser()
    results: list[ResponseHead | None] = []
    error = check_outcome(lambda: results.append(parser.parse_response(data)))
    if error is not None:
        assert isinstance(error, InvalidResponse), error
        return
    head = results[0]
    if head is None:
        return
    assert 0 < head.consumed <= len(data)
    prefix: list[ResponseHead | None] = []
    error = check_outcome(lambda: prefix.append(parser.parse_response(data[:cut])))
    assert error is None, f"a prefix of a valid head was refused: {error!r}"
    if cut < head.consumed:
        assert prefix[0] is None
    else:
        assert prefix[0] is not None and prefix[0].consumed == head.consumed


@fuzz(ci_default=300)
@given(st.binary(max_size=400), client_plan())
def test_http11_arbitrary_server_bytes(script: bytes, plan: dict[str, Any]) -> None:
    """Any bytes from the server: a documented hyper error or a response."""
    drive(HTTP11Connection, [script], plan)


@fuzz(ci_default=500)
@given(http11_script(), client_plan())
def test_http11_structured_responses(script: bytes, plan: dict[str, Any]) -> None:
    """Responses built from framing-relevant parts, then mutated."""
    drive(HTTP11Connection, [script], plan)


@st.composite
def negotiation_scripts(draw: st.DrawFn) -> list[bytes]:
    """Scripts for HTTPConnection's first (and, after a prior-knowledge refusal, second)
    connection."""
    kind = draw(st.sampled_from(["http11", "upgrade", "prior_knowledge"]))
    if kind == "http11":
        return [draw(http11_script())]
    frames = draw(frame_script())
    if kind == "prior_knowledge":
        return [frames, draw(frame_script())]
    switch = draw(
        st.sampled_from(
            [
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 OK\r\nUpgrade: h2c\r\n\r\n",
            ]
        )
    )
    return [switch + frames]


@fuzz(ci_default=300)
@given(negotiation_scripts(), client_plan())
def test_negotiation(scripts: list[bytes], plan: dict[str, Any]) -> None:
    """HTTPConnection's plaintext negotiation against HTTP/1.1, h2c upgrades and HTTP/2."""
    drive(HTTPConnection, scripts, plan)
