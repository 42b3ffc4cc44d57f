"""How many content codings hyper undoes for one response, over both protocols.

A ``Content-Encoding`` with more than five codings (hyper's
:data:`~hyper.common.decoder.MAX_CODINGS`) is refused with ``ContentDecodingError`` by the
first read, whichever way the body is read, before any byte is decoded; the connection
carries the next request. Five codings decode.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable

import pytest

from hyper import HTTP11Connection, HTTP20Connection
from hyper.common.decoder import MAX_CODINGS
from hyper.common.exceptions import ContentDecodingError
from hyper.common.response import BaseResponse
from tests.support.http11 import RawReply, http11_responder
from tests.support.scripted import Reply, ScriptedRawServer, ScriptedServer, simple_responder

#: How fast the refusal must come, in seconds: it needs no body at all.
FAST = 2.0
BODY = b"the body, gzipped five times over"

READERS: dict[str, Callable[[BaseResponse], bytes]] = {
    "read": lambda response: response.read(),
    "read-amt": lambda response: response.read(10),
    "read_chunked": lambda response: b"".join(response.read_chunked()),
    "iteration": lambda response: b"".join(response),
}


def _nested_gzip(times: int) -> bytes:
    body = BODY
    for _ in range(times):
        body = gzip.compress(body)
    return body


def _routes(codings: int) -> dict[str, tuple[bytes, bytes]]:
    """``/many``: a body labelled with ``codings`` gzip codings; ``/five``: five, correct."""
    return {
        "/many": (b", ".join([b"gzip"] * codings), _nested_gzip(1)),
        "/five": (b", ".join([b"gzip"] * MAX_CODINGS), _nested_gzip(MAX_CODINGS)),
    }


def _check(response: BaseResponse, reader: Callable[[BaseResponse], bytes], codings: int) -> None:
    started = time.monotonic()
    with pytest.raises(ContentDecodingError, match=f"{codings} content codings"):
        reader(response)
    assert time.monotonic() - started < FAST
    response.close()


@pytest.mark.parametrize("codings", [MAX_CODINGS + 1, 1200])
@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_too_many_codings_over_http11(
    scripted_raw_server: Callable[..., ScriptedRawServer],
    reader: Callable[[BaseResponse], bytes],
    codings: int,
) -> None:
    replies = {
        path: RawReply(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (header, len(body), body),
            close=False,
        )
        for path, (header, body) in _routes(codings).items()
    }
    with (
        scripted_raw_server(http11_responder(replies), tls=False) as server,
        HTTP11Connection(server.host, server.port, timeout=5) as conn,
    ):
        conn.request("GET", "/many")
        _check(conn.get_response(), reader, codings)
        conn.request("GET", "/five")
        assert conn.get_response().read() == BODY


@pytest.mark.parametrize("codings", [MAX_CODINGS + 1, 1200])
@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_too_many_codings_over_http2(
    scripted_server: Callable[..., ScriptedServer],
    reader: Callable[[BaseResponse], bytes],
    codings: int,
) -> None:
    replies = {
        path: Reply(headers=[(b"content-encoding", header)], body=body)
        for path, (header, body) in _routes(codings).items()
    }
    with (
        scripted_server(simple_responder(replies), tls=False) as server,
        HTTP20Connection(server.host, server.port, secure=False, timeout=5) as conn,
    ):
        _check(conn.get_response(conn.request("GET", "/many")), reader, codings)
        assert conn.get_response(conn.request("GET", "/five")).read() == BODY
