"""
The server's half of a conversation with hyper's sans-I/O HTTP/2 engine, built by hand.

Tests drive :class:`~hyper.http20.engine.Engine` with byte strings: the frames a server
would send are built here from raw fields (so anything, well-formed or not, can be sent)
and ``hpack``, and what the engine sends back is parsed with ``hyperframe``. Used by
``tests/unit/test_engine.py`` and the RFC 7541 and RFC 9113 conformance tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import hpack
import pytest
from hyperframe.frame import Frame, GoAwayFrame, RstStreamFrame

from hyper.http20.engine import Engine
from hyper.http20.errors import SettingCodes
from hyper.http20.exceptions import ProtocolError
from hyper.http20.stream import Stream

from .hostile import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PUSH_PROMISE,
    SETTINGS,
    WINDOW_UPDATE,
    frame_bytes,
)

__all__ = [
    "PREFACE",
    "PROMISED",
    "REQUEST",
    "Headers",
    "Server",
    "data",
    "fails_connection",
    "frame_types",
    "goaway_code",
    "goaways",
    "requested",
    "rst_codes",
    "sent_frames",
    "settings",
    "started",
    "window_update",
]

Headers = list[tuple[bytes, bytes]]

#: The client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: The request :func:`requested` sends on stream 1.
REQUEST: Headers = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"x"),
    (b":path", b"/"),
]
#: The request :meth:`Server.promise` promises by default.
PROMISED: Headers = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"x"),
    (b":path", b"/p"),
]


# -- frames the server sends ---------------------------------------------------------------------


def settings(*pairs: tuple[int, int], **values: int) -> bytes:
    """A SETTINGS frame with ``(identifier, value)`` pairs, then named settings
    (``initial_window_size=...``); values are not checked, so out-of-range ones can be sent."""
    named = [(SettingCodes[name.upper()], value) for name, value in values.items()]
    payload = b"".join(struct.pack(">HL", key, value) for key, value in [*pairs, *named])
    return frame_bytes(SETTINGS, 0, 0, payload)


def data(stream_id: int, payload: bytes, end: bool = False) -> bytes:
    """A DATA frame, ending the stream if ``end``."""
    return frame_bytes(DATA, END_STREAM if end else 0, stream_id, payload)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame (the increment is not checked)."""
    return frame_bytes(WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))


class Server:
    """The server's HPACK encoder, so its blocks stay in step with the engine's decoder, and
    the frames that carry them."""

    def __init__(self) -> None:
        self.encoder = hpack.Encoder()

    def block(self, headers: Headers) -> bytes:
        """``headers`` encoded as one header block."""
        return bytes(self.encoder.encode(headers))

    def headers(self, stream_id: int, headers: Headers, end_stream: bool = False) -> bytes:
        """One HEADERS frame (END_HEADERS set) with ``headers``."""
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame_bytes(HEADERS, flags, stream_id, self.block(headers))

    def promise(self, parent: int, promised: int, headers: Headers = PROMISED) -> bytes:
        """A PUSH_PROMISE on ``parent`` reserving ``promised`` for ``headers``."""
        payload = struct.pack(">L", promised) + self.block(headers)
        return frame_bytes(PUSH_PROMISE, END_HEADERS, parent, payload)

    @staticmethod
    def settings(**values: int) -> bytes:
        """A SETTINGS frame with these named settings: see :func:`settings`."""
        return settings(**values)


# -- the engine, started --------------------------------------------------------------------------


def started(**kwargs: Any) -> tuple[Engine, Server]:
    """An engine (built with ``kwargs``) that sent its preface and received the server's
    (empty) SETTINGS, all it sent so far taken."""
    engine = Engine(**kwargs)
    engine.start()
    engine.data_to_send()
    engine.receive_data(frame_bytes(SETTINGS, 0, 0, b""))
    engine.data_to_send()
    return engine, Server()


def requested(end_stream: bool = True, **kwargs: Any) -> tuple[Engine, Server, Stream]:
    """A :func:`started` engine that sent :data:`REQUEST` on stream 1."""
    engine, server = started(**kwargs)
    stream = engine.send_headers(1, REQUEST, end_stream=end_stream)
    engine.data_to_send()
    return engine, server, stream


# -- what the engine sent -------------------------------------------------------------------------


def sent_frames(data: bytes) -> Iterator[Frame]:
    """The frames in what the engine sent (after the client preface, if present)."""
    view = memoryview(data)
    if bytes(view[:24]) == PREFACE:
        view = view[24:]
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        yield frame
        view = view[9 + length :]


def frame_types(data: bytes) -> list[str]:
    """The class names of the frames in ``data``, in order (``"SettingsFrame"``, ...)."""
    return [type(frame).__name__ for frame in sent_frames(data)]


def goaways(sent: bytes) -> list[tuple[int, int]]:
    """``(last stream id, error code)`` of every GOAWAY in ``sent``."""
    return [
        (f.last_stream_id, f.error_code) for f in sent_frames(sent) if isinstance(f, GoAwayFrame)
    ]


def goaway_code(sent: bytes) -> int | None:
    """The error code of the last GOAWAY in ``sent``, or None if there is none."""
    codes = [code for _, code in goaways(sent)]
    return codes[-1] if codes else None


def rst_codes(sent: bytes) -> list[tuple[int, int]]:
    """``(stream id, error code)`` of every RST_STREAM in ``sent``."""
    return [
        (f.stream_id, f.error_code) for f in sent_frames(sent) if isinstance(f, RstStreamFrame)
    ]


def fails_connection(
    engine: Engine, payload: bytes, code: int, *, one_goaway: bool = False
) -> ProtocolError:
    """``payload`` is a connection error ``code``: ProtocolError raised and kept as the
    engine's error, and a GOAWAY with that code queued (the only one, if ``one_goaway``)."""
    with pytest.raises(ProtocolError) as info:
        engine.receive_data(payload)
    assert info.value.error_code == code, repr(info.value)
    sent = engine.data_to_send()
    if one_goaway:
        assert [error for _, error in goaways(sent)] == [code]
    else:
        assert goaway_code(sent) == code
    assert engine.error is info.value
    return info.value
