"""
HTTP/2 frames on the wire (RFC 9113 section 4 and 6): the numbers, the 9-byte frame header,
and the frames a client sends.

The engine parses every received frame in place, from these constants, so that a DATA frame
costs no object of its own. Frames it sends are built here: HEADERS, CONTINUATION and DATA
headers by hand (one of each per request, or per frame of a body), the rare control frames
with ``hyperframe``. :func:`describe` renders frames for the debug log.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from hyperframe.frame import (
    Frame,
    GoAwayFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

__all__ = [
    "ACK",
    "CONTINUATION",
    "DATA",
    "END_HEADERS",
    "END_STREAM",
    "FRAME_HEADER",
    "GOAWAY",
    "HEADERS",
    "MAX_STREAM_ID",
    "MAX_WINDOW",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PUSH_PROMISE",
    "RST_STREAM",
    "SETTINGS",
    "STREAM_ID_MASK",
    "WINDOW_UPDATE",
    "describe",
    "goaway_frame",
    "header_frames",
    "ping_frame",
    "rst_stream_frame",
    "settings_ack",
    "settings_frame",
    "window_update_frame",
]

#: What a client sends first on every HTTP/2 connection (section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (section 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags: each means something only on the frame types named.
#: DATA, HEADERS: the last frame the sender sends on the stream.
END_STREAM = 0x1
#: SETTINGS, PING: an acknowledgement.
ACK = 0x1
#: HEADERS, PUSH_PROMISE, CONTINUATION: the header block is complete.
END_HEADERS = 0x4
#: DATA, HEADERS, PUSH_PROMISE: a pad length byte leads, padding follows.
PADDED = 0x8
#: HEADERS: five bytes of priority information lead the block.
PRIORITY_FLAG = 0x20

#: The frame header: the length's high byte and low 16 bits, the type, the flags, and the
#: stream id (with its reserved bit, which receivers ignore).
FRAME_HEADER = struct.Struct(">BHBBL")
#: Stream ids and window increments are 31 bits; the top bit is reserved.
STREAM_ID_MASK = 0x7FFFFFFF
#: The highest stream id, and the largest flow-control window (section 6.9.1).
MAX_STREAM_ID = MAX_WINDOW = 2**31 - 1

_HEADERS_END = bytes((HEADERS, END_HEADERS))
_HEADERS_END_STREAM = bytes((HEADERS, END_HEADERS | END_STREAM))


def header_frames(stream_id: int, block: bytes, end_stream: bool, max_size: int) -> bytes:
    """
    A HEADERS frame carrying the header block ``block``, followed by CONTINUATION frames
    when the block is larger than ``max_size`` (the peer's SETTINGS_MAX_FRAME_SIZE).
    """
    sid = stream_id.to_bytes(4, "big")
    if len(block) <= max_size:
        kind = _HEADERS_END_STREAM if end_stream else _HEADERS_END
        return len(block).to_bytes(3, "big") + kind + sid + block
    pieces = [block[i : i + max_size] for i in range(0, len(block), max_size)]
    out = bytearray()
    for index, piece in enumerate(pieces):
        frame_type = HEADERS if index == 0 else CONTINUATION
        flags = (END_STREAM if end_stream and index == 0 else 0) | (
            END_HEADERS if index == len(pieces) - 1 else 0
        )
        out += len(piece).to_bytes(3, "big") + bytes((frame_type, flags)) + sid + piece
    return bytes(out)


def data_header(stream_id: int, length: int, end_stream: bool) -> bytes:
    """The 9-byte header of a DATA frame whose payload is ``length`` bytes."""
    return FRAME_HEADER.pack(
        length >> 16, length & 0xFFFF, DATA, END_STREAM if end_stream else 0, stream_id
    )


def settings_frame(settings: dict[int, int]) -> bytes:
    """A SETTINGS frame carrying ``settings`` (identifier -> value)."""
    return bytes(SettingsFrame(0, settings=dict(settings)).serialize())


def settings_payload(settings: dict[int, int]) -> bytes:
    """The payload of a SETTINGS frame carrying ``settings``, without the frame header."""
    return bytes(SettingsFrame(0, settings=dict(settings)).serialize_body())


def settings_ack() -> bytes:
    """A SETTINGS frame acknowledging the peer's."""
    return bytes(SettingsFrame(0, flags=["ACK"]).serialize())


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame opening ``stream_id``'s window (0: the connection's)."""
    return bytes(WindowUpdateFrame(stream_id, window_increment=increment).serialize())


def rst_stream_frame(stream_id: int, error_code: int) -> bytes:
    """An RST_STREAM frame ending ``stream_id`` with ``error_code``."""
    return bytes(RstStreamFrame(stream_id, error_code=error_code).serialize())


def ping_frame(data: bytes, ack: bool = False) -> bytes:
    """A PING frame carrying the 8 bytes ``data`` (an acknowledgement with ``ack``)."""
    return bytes(PingFrame(0, opaque_data=data, flags=["ACK"] if ack else []).serialize())


def goaway_frame(last_stream_id: int, error_code: int, debug_data: bytes = b"") -> bytes:
    """A GOAWAY frame: the highest stream id of the peer's that was processed, and why."""
    frame = GoAwayFrame(
        0, last_stream_id=last_stream_id, error_code=error_code, additional_data=debug_data
    )
    return bytes(frame.serialize())


def describe(data: bytes | memoryview) -> Iterator[str]:
    """
    Describe the whole frames in ``data`` (which may start with the client preface), one
    line each, for the debug log. Stops at an incomplete or unparsable frame.
    """
    view = memoryview(data)
    if view[: len(PREFACE)] == PREFACE:
        yield "connection preface"
        view = view[len(PREFACE) :]
    while len(view) >= 9:
        length = int.from_bytes(view[:3], "big")
        if len(view) < 9 + length:
            return
        try:
            frame, _ = Frame.parse_frame_header(view[:9])
            frame.parse_body(view[9 : 9 + length])
        except Exception as exc:  # a log line must never fail the connection
            yield f"frame type {view[3]} on stream {int.from_bytes(view[5:9], 'big')}: {exc}"
            return
        yield _summary(frame, length)
        view = view[9 + length :]


def _summary(frame: Frame, length: int) -> str:
    """A frame's type, stream, flags and length, and the fields of a control frame (its
    error code, settings, increment...); never a body or header block, which may be large
    or private."""
    name = type(frame).__name__
    flags = ",".join(sorted(frame.flags)) or "-"
    line = f"{name}(stream_id={frame.stream_id}, flags={flags}, length={length})"
    fields = _FIELDS.get(name)
    if fields is None:
        return line
    shown = ", ".join(f"{field}={getattr(frame, field, None)!r}" for field in fields)
    return f"{line}: {shown}"


#: The fields shown for each control frame.
_FIELDS = {
    "SettingsFrame": ("settings",),
    "RstStreamFrame": ("error_code",),
    "PingFrame": ("opaque_data",),
    "GoAwayFrame": ("last_stream_id", "error_code", "additional_data"),
    "WindowUpdateFrame": ("window_increment",),
    "PriorityFrame": ("depends_on", "stream_weight", "exclusive"),
}
