"""
Raw HTTP/2 frames built by hand, and scripted servers that send them, for the behaviour
tests of hyper's HTTP/2 engine (``tests/test_http20_response_framing.py``,
``tests/test_http20_repeated_responses.py``, ``tests/test_http20_many_streams.py``).

Header blocks are built from indexed fields and literals without indexing, which leave both
HPACK tables alone, so the same bytes can be sent any number of times on one connection. The
servers are :class:`~tests.support.hostile.RawH2Peer` scripts on a
:class:`~tests.support.scripted.ScriptedRawServer`: raw frames, no ``h2`` on the server side.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hyper import HTTP20Connection
from hyper.tls import init_context

from .hostile import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PING,
    PRIORITY_FLAG,
    SETTINGS,
    WINDOW_UPDATE,
    PeerGone,
    RawH2Peer,
    frame_bytes,
)
from .scripted import ScriptedRawServer

__all__ = [
    "INITIAL_WINDOW_SIZE",
    "MAX_CONCURRENT_STREAMS",
    "MAX_WINDOW",
    "RawFactory",
    "Script",
    "data_frame",
    "flagged_headers",
    "header_block",
    "headers_frames",
    "hpack_literal",
    "peer_handler",
    "ping_then",
    "restream",
    "scripted",
    "send_in_pieces",
    "settings_frame",
    "wait_closed",
    "window_update",
]

RawFactory = Callable[..., ScriptedRawServer]
Script = Callable[[RawH2Peer, int], None]

#: SETTINGS_MAX_CONCURRENT_STREAMS and SETTINGS_INITIAL_WINDOW_SIZE.
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
#: The largest flow-control window.
MAX_WINDOW = 2**31 - 1


# -- building frames ------------------------------------------------------------------------------


def hpack_literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, new name, no Huffman (lengths under 127): it leaves
    both HPACK tables alone, so the same bytes can be sent any number of times."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def header_block(content_length: int | None = None, padding: int = 0) -> bytes:
    """``:status 200`` (static index 8), optional content-length and an ``x-pad`` field."""
    block = b"\x88"
    if content_length is not None:
        block += hpack_literal(b"content-length", str(content_length).encode())
    if padding:
        block += hpack_literal(b"x-pad", b"p" * padding)
    return block


def headers_frames(stream_id: int, block: bytes, pieces: int = 1, end: bool = False) -> bytes:
    """``block`` as HEADERS plus ``pieces - 1`` CONTINUATION frames."""
    size = -(-len(block) // pieces)
    parts = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
    out = b""
    for index, part in enumerate(parts):
        flags = END_HEADERS if index == len(parts) - 1 else 0
        if index == 0:
            out += frame_bytes(HEADERS, flags | (END_STREAM if end else 0), stream_id, part)
        else:
            out += frame_bytes(CONTINUATION, flags, stream_id, part)
    return out


def flagged_headers(stream_id: int, block: bytes, flags: int, end: bool) -> bytes:
    """One HEADERS frame with ``block`` and PADDED and/or PRIORITY as asked."""
    payload = block
    if flags & PRIORITY_FLAG:
        payload = (0).to_bytes(4, "big") + b"\x0f" + payload  # depends on 0, weight 16
    if flags & PADDED:
        payload = b"\x03" + payload + b"\0\0\0"
    flags |= END_HEADERS | (END_STREAM if end else 0)
    return frame_bytes(HEADERS, flags, stream_id, payload)


def data_frame(
    stream_id: int, payload: bytes, *, end: bool = False, pad: int | None = None
) -> bytes:
    """A DATA frame, padded with ``pad`` bytes when given (0 means a Pad Length of 0)."""
    flags = END_STREAM if end else 0
    if pad is not None:
        return frame_bytes(DATA, flags | PADDED, stream_id, bytes([pad]) + payload + b"\0" * pad)
    return frame_bytes(DATA, flags, stream_id, payload)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame."""
    return frame_bytes(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def settings_frame(settings: dict[int, int]) -> bytes:
    """A SETTINGS frame."""
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings.items())
    return frame_bytes(SETTINGS, 0, 0, payload)


def restream(frames: bytes, stream_id: int) -> bytes:
    """``frames`` (built for any stream) moved onto ``stream_id``."""
    out = bytearray()
    view = memoryview(frames)
    while view:
        length = int.from_bytes(view[:3], "big")
        out += frame_bytes(view[3], view[4], stream_id, bytes(view[9 : 9 + length]))
        view = view[9 + length :]
    return bytes(out)


# -- sending --------------------------------------------------------------------------------------


def ping_then(peer: RawH2Peer, tag: int, first: bytes) -> None:
    """Send a PING followed by ``first`` in one write, and wait until the client acknowledged
    the PING: it has then processed the read that brought ``first`` (almost always all of
    it), so what is sent next arrives in a later read."""
    payload = tag.to_bytes(8, "big")
    peer.send(frame_bytes(PING, 0, 0, payload), first)
    assert peer.wait_for(lambda: peer.last_ping_ack == payload), "no PING ACK from the client"


def send_in_pieces(peer: RawH2Peer, data: bytes, sizes: Callable[[], int]) -> None:
    """Write ``data`` in separate writes of ``sizes()`` bytes each."""
    peer.sock.settimeout(peer.timeout)
    offset = 0
    while offset < len(data):
        size = sizes()
        peer.sock.sendall(data[offset : offset + size])
        offset += size


def wait_closed(peer: RawH2Peer) -> None:
    """Book the client's frames until it closes the connection (bounded)."""
    peer.wait_for(peer.eof.is_set, timeout=10)


# -- running a script -----------------------------------------------------------------------------


def peer_handler(script: Script) -> tuple[Callable[[socket.socket], None], list[RawH2Peer]]:
    """A connection handler for a scripted server that runs ``script(peer, index)`` on a
    :class:`RawH2Peer` per connection, and the list those peers are added to."""
    peers: list[RawH2Peer] = []
    lock = threading.Lock()

    def handle(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = RawH2Peer(sock, timeout=10)
        with lock:
            peers.append(peer)
            index = len(peers) - 1
        try:
            script(peer, index)
        except (PeerGone, ConnectionResetError, BrokenPipeError):
            return

    return handle, peers


@contextlib.contextmanager
def scripted(
    factory: RawFactory,
    script: Script,
    *,
    buffer_size: int | None = None,
    read_timeout: float = 5.0,
    tls_ca_path: Path | None = None,
    **conn_kwargs: Any,
) -> Iterator[tuple[HTTP20Connection, list[RawH2Peer], ScriptedRawServer]]:
    """Run ``script(peer, index)`` for each connection (``index`` counts from 0) and yield an
    HTTP20Connection to it, the peers, and the server. Plaintext by default; over TLS (ALPN
    ``h2``, one TLS record per write of the server) when ``tls_ca_path`` names the CA that
    signed the server's certificate. Errors in the script fail the test when the block ends;
    a client that hangs up is not one."""
    handle, peers = peer_handler(script)
    tls: dict[str, Any] = {} if tls_ca_path is None else {"tls": True, "alpn": ["h2"]}
    with factory(handle, **tls) as server:
        if tls_ca_path is None:
            conn = HTTP20Connection(
                server.host, server.port, secure=False, timeout=(5, read_timeout), **conn_kwargs
            )
        else:
            conn = HTTP20Connection(
                "localhost",
                server.port,
                secure=True,
                ssl_context=init_context(cert_path=str(tls_ca_path)),
                timeout=(5, read_timeout),
                **conn_kwargs,
            )
        if buffer_size is not None:
            conn.network_buffer_size = buffer_size
        with conn:
            yield conn, peers, server
