"""
The numbers HTTP/2 puts on the wire for errors and settings (RFC 9113 sections 7 and 6.5.2).

Both enumerations are :class:`enum.IntEnum`: a member compares equal to its number, and a
number hyper does not know stays a plain ``int`` wherever it is reported.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCodes", "SettingCodes", "code_name"]


class ErrorCodes(enum.IntEnum):
    """The error codes of RST_STREAM and GOAWAY frames (RFC 9113 section 7)."""

    #: Not an error: a graceful shutdown, or a stream no longer needed.
    NO_ERROR = 0x0
    #: The peer broke the protocol.
    PROTOCOL_ERROR = 0x1
    #: The peer hit an internal error.
    INTERNAL_ERROR = 0x2
    #: The peer broke the flow-control rules.
    FLOW_CONTROL_ERROR = 0x3
    #: SETTINGS were not acknowledged in time.
    SETTINGS_TIMEOUT = 0x4
    #: A frame arrived on a stream that was already half-closed.
    STREAM_CLOSED = 0x5
    #: A frame had an invalid size.
    FRAME_SIZE_ERROR = 0x6
    #: The stream was refused before any processing: it is safe to send it again.
    REFUSED_STREAM = 0x7
    #: The stream is no longer needed.
    CANCEL = 0x8
    #: The shared HPACK state was lost.
    COMPRESSION_ERROR = 0x9
    #: A CONNECT tunnel failed.
    CONNECT_ERROR = 0xA
    #: The peer is generating excessive load.
    ENHANCE_YOUR_CALM = 0xB
    #: The TLS connection does not meet HTTP/2's requirements.
    INADEQUATE_SECURITY = 0xC
    #: The server asks for HTTP/1.1 instead.
    HTTP_1_1_REQUIRED = 0xD


class SettingCodes(enum.IntEnum):
    """The identifiers of SETTINGS parameters (RFC 9113 section 6.5.2, RFC 8441)."""

    #: The largest HPACK dynamic table the sender's decoder accepts.
    HEADER_TABLE_SIZE = 0x1
    #: Whether server push is allowed (sent by clients only).
    ENABLE_PUSH = 0x2
    #: The most streams the sender lets its peer open at once.
    MAX_CONCURRENT_STREAMS = 0x3
    #: The receive window every new stream starts with.
    INITIAL_WINDOW_SIZE = 0x4
    #: The largest frame payload the sender accepts.
    MAX_FRAME_SIZE = 0x5
    #: The largest header list the sender accepts (advisory).
    MAX_HEADER_LIST_SIZE = 0x6
    #: Extended CONNECT (RFC 8441).
    ENABLE_CONNECT_PROTOCOL = 0x8


def code_name(code: int) -> str:
    """An error code as people read it: ``"PROTOCOL_ERROR (1)"``, or the bare number for a
    code HTTP/2 does not define."""
    try:
        return f"{ErrorCodes(code).name} ({code})"
    except ValueError:
        return str(code)


def as_error_code(code: int) -> int:
    """``code`` as an :class:`ErrorCodes` member when HTTP/2 defines it, else the number."""
    try:
        return ErrorCodes(code)
    except ValueError:
        return code
