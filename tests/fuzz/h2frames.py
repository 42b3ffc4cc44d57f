"""Strategies that build HTTP/2 server traffic for the fuzz harnesses: frames with any type,
flags, stream id and payload (payloads built with ``hyperframe`` and ``hpack`` where they are
meant to be well-formed), plausible responses, and whole scripts at three levels of disorder.
"""

from __future__ import annotations

import struct

import hpack
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import strategies as st

from tests.fuzz.harness import content_codings, encode_body, mutated, plaintext

# Frame type codes (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

#: Stream ids worth trying: the request's (1), the next request's (3), push ids, the
#: connection (0), idle and far-away ones, and the reserved bit set.
stream_ids = st.one_of(
    st.sampled_from([1, 1, 1, 0, 3, 2, 4, 5, 0x7FFFFFFF]), st.integers(0, 2**32 - 1)
)


def raw_frame(frame_type: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """A frame with exactly these fields: no checks, so stream 0 DATA and the like can be
    sent (hyperframe refuses to build them)."""
    length = len(payload)
    return (
        struct.pack(">BHBBL", length >> 16, length & 0xFFFF, frame_type, flags, stream_id)
        + payload
    )


def settings_payload(pairs: list[tuple[int, int]]) -> bytes:
    """A SETTINGS payload (built with hyperframe, so values may be out of range)."""
    frame = SettingsFrame(0)
    for key, value in pairs:
        frame.settings[key] = value
    return frame.serialize_body()


settings_pairs = st.lists(
    st.tuples(
        st.one_of(st.integers(1, 6), st.integers(0, 0xFFFF)),
        st.one_of(
            st.sampled_from([0, 1, 100, 16384, 65535, 2**24 - 1, 2**31 - 1, 2**31]),
            st.integers(0, 2**32 - 1),
        ),
    ),
    max_size=6,
)

# -- header blocks ----------------------------------------------------------------------------

statuses = st.one_of(
    st.sampled_from([b"200", b"204", b"304", b"404", b"100", b"103", b"101", b"999", b"20"]),
    st.binary(max_size=4),
)
_names = st.sampled_from(
    [
        b"content-length",
        b"content-encoding",
        b"content-type",
        b"set-cookie",
        b"connection",
        b"te",
        b"Upper-Case",
        b":path",
        b":status",
        b"x-a",
        b"",
    ]
)
extra_fields = st.lists(
    st.tuples(
        st.one_of(_names, st.binary(min_size=1, max_size=12)),
        st.one_of(
            st.sampled_from([b"0", b"5", b"-1", b"99999999999", b"gzip", b"br, zstd", b"x\r\n"]),
            st.binary(max_size=20),
        ),
    ),
    max_size=5,
)


#: Fields a valid response may carry (lower-case names, visible values).
benign_fields = st.lists(
    st.tuples(
        st.sampled_from([b"content-type", b"set-cookie", b"x-a", b"cache-control", b"date"]),
        st.text("abcdefghij0123456789 =;/-", max_size=20).map(str.encode),
    ),
    max_size=3,
)


@st.composite
def response_fields(
    draw: st.DrawFn, codings: list[str] | None, length: int | None, chaos: bool = True
) -> list[tuple[bytes, bytes]]:
    """A response header list: ``:status``, framing fields that usually match the body, and
    extras; with ``chaos``, statuses and fields that break the rules, and reordering."""
    fields: list[tuple[bytes, bytes]] = []
    if not chaos or draw(st.integers(0, 9)):
        fields.append(
            (b":status", draw(statuses if chaos else st.sampled_from([b"200", b"404", b"500"])))
        )
    if codings:
        fields.append((b"content-encoding", ", ".join(codings).encode()))
    if length is not None and draw(st.booleans()):
        off = draw(st.sampled_from([0, 0, 0, 1, -1])) if chaos else 0
        fields.append((b"content-length", str(length + off).encode()))
    fields.extend(draw(extra_fields if chaos else benign_fields))
    if chaos and fields and draw(st.integers(0, 9)) == 0:
        fields.reverse()  # pseudo-header after regular ones
    return fields


def header_block(encoder: hpack.Encoder, fields: list[tuple[bytes, bytes]]) -> bytes:
    """HPACK-encode ``fields`` with the script's own encoder (its dynamic table carries over
    between blocks, as a real server's does)."""
    return bytes(encoder.encode(fields))


@st.composite
def headers_frames(
    draw: st.DrawFn,
    encoder: hpack.Encoder,
    fields: list[tuple[bytes, bytes]],
    stream_id: int,
    end_stream: bool,
    chaos: bool = True,
) -> bytes:
    """HEADERS (maybe padded, with priority) for ``fields``, maybe split over CONTINUATION."""
    block = header_block(encoder, fields)
    if chaos and draw(st.integers(0, 19)) == 0:
        block = draw(st.binary(max_size=40))  # not HPACK at all
    pieces = [block]
    if len(block) > 1 and draw(st.booleans()):
        cut = draw(st.integers(1, len(block) - 1))
        pieces = [block[:cut], block[cut:]]
    flags = END_STREAM if end_stream else 0
    prefix = b""
    suffix = b""
    if draw(st.integers(0, 4)) == 0:
        flags |= PRIORITY_FLAG
        prefix += struct.pack(">LB", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 255)))
    if draw(st.integers(0, 4)) == 0:
        flags |= PADDED
        pad = draw(st.integers(0, 20))
        prefix = bytes([pad]) + prefix
        suffix = b"\0" * pad
    if len(pieces) == 1:
        return raw_frame(HEADERS, flags | END_HEADERS, stream_id, prefix + pieces[0] + suffix)
    out = raw_frame(HEADERS, flags, stream_id, prefix + pieces[0] + suffix)
    continuation_id = stream_id if not chaos or draw(st.integers(0, 9)) else draw(stream_ids)
    return out + raw_frame(CONTINUATION, END_HEADERS, continuation_id, pieces[1])


@st.composite
def data_frames(draw: st.DrawFn, body: bytes, stream_id: int, end_stream: bool) -> bytes:
    """``body`` as DATA frames, split at random points, some padded."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    out = b""
    for index, piece in enumerate(pieces):
        frame = DataFrame(1, data=piece)
        if draw(st.integers(0, 5)) == 0:
            frame.flags.add("PADDED")
            frame.pad_length = draw(st.integers(0, 30))
        if end_stream and index == len(pieces) - 1:
            frame.flags.add("END_STREAM")
        flags = sum(flag.bit for flag in DataFrame.defined_flags if flag.name in frame.flags)
        out += raw_frame(DATA, flags, stream_id, frame.serialize_body())
    return out


@st.composite
def response(draw: st.DrawFn, encoder: hpack.Encoder, chaos: bool) -> bytes:
    """A plausible response on stream 1 (1xx heads, final head, body maybe compressed,
    trailers), which the other frames and the mutations then disturb."""
    stream_id = 1 if not chaos or draw(st.integers(0, 9)) else draw(stream_ids)
    codings = draw(st.one_of(st.none(), content_codings))
    body = draw(plaintext())
    if codings:
        body = encode_body(body, codings, raw_deflate=draw(st.booleans()))
    out = b""
    if draw(st.integers(0, 5)) == 0:
        out += draw(headers_frames(encoder, [(b":status", b"103")], stream_id, False, chaos))
    has_trailers = draw(st.integers(0, 4)) == 0
    no_body = draw(st.integers(0, 5)) == 0
    head = draw(response_fields(codings, len(body), chaos))
    out += draw(headers_frames(encoder, head, stream_id, no_body, chaos))
    if not no_body:
        out += draw(data_frames(body, stream_id, not has_trailers))
    if has_trailers:
        trailers = draw(
            benign_fields
            if not chaos
            else st.lists(st.tuples(_names, st.binary(max_size=8)), max_size=3)
        )
        out += draw(headers_frames(encoder, trailers, stream_id, True, chaos))
    return out


@st.composite
def benign_frame(draw: st.DrawFn) -> bytes:
    """A frame a well-behaved server may send around a response: PING, SETTINGS (and ACK),
    WINDOW_UPDATE, PRIORITY, a graceful GOAWAY, an unknown extension frame."""
    kind = draw(
        st.sampled_from(["ping", "settings", "ack", "window", "priority", "goaway", "ext"])
    )
    if kind == "ping":
        return raw_frame(PING, 0, 0, draw(st.binary(min_size=8, max_size=8)))
    if kind == "settings":
        pairs = [(1, 4096), (3, 100), (4, 65535), (5, 16384)]
        return raw_frame(SETTINGS, 0, 0, settings_payload(draw(st.lists(st.sampled_from(pairs)))))
    if kind == "ack":
        return raw_frame(SETTINGS, ACK, 0, b"")
    if kind == "window":
        return raw_frame(WINDOW_UPDATE, 0, draw(st.sampled_from([0, 1])), struct.pack(">L", 1000))
    if kind == "priority":
        return raw_frame(PRIORITY, 0, draw(st.sampled_from([1, 3, 5])), struct.pack(">LB", 0, 16))
    if kind == "goaway":
        return raw_frame(GOAWAY, 0, 0, struct.pack(">LL", 1, 0))
    return raw_frame(0x20 + draw(st.integers(0, 15)), 0, 1, draw(st.binary(max_size=8)))


@st.composite
def any_frame(draw: st.DrawFn, encoder: hpack.Encoder) -> bytes:
    """One random frame of any type, mostly well-formed in its payload."""
    kind = draw(
        st.sampled_from(
            [
                "settings",
                "settings_ack",
                "ping",
                "goaway",
                "window_update",
                "rst_stream",
                "priority",
                "push_promise",
                "headers",
                "data",
                "continuation",
                "raw",
            ]
        )
    )
    sid = draw(stream_ids)
    if kind == "settings":
        return raw_frame(SETTINGS, 0, 0, settings_payload(draw(settings_pairs)))
    if kind == "settings_ack":
        return raw_frame(SETTINGS, ACK, 0 if draw(st.integers(0, 9)) else sid, b"")
    if kind == "ping":
        frame = PingFrame(0, opaque_data=draw(st.binary(min_size=8, max_size=8)))
        flags = ACK if draw(st.booleans()) else 0
        payload = frame.serialize_body() if draw(st.integers(0, 9)) else draw(st.binary())
        return raw_frame(PING, flags, 0 if draw(st.integers(0, 9)) else sid, payload)
    if kind == "goaway":
        frame = GoAwayFrame(
            0,
            last_stream_id=draw(stream_ids) & 0x7FFFFFFF,
            error_code=draw(st.one_of(st.integers(0, 13), st.integers(0, 2**32 - 1))),
            additional_data=draw(st.binary(max_size=16)),
        )
        return raw_frame(GOAWAY, 0, 0, frame.serialize_body())
    if kind == "window_update":
        frame = WindowUpdateFrame(
            1,
            window_increment=draw(
                st.one_of(st.sampled_from([0, 1, 2**31 - 1]), st.integers(0, 2**31 - 1))
            ),
        )
        return raw_frame(
            WINDOW_UPDATE, 0, draw(st.sampled_from([0, 1, sid])), frame.serialize_body()
        )
    if kind == "rst_stream":
        frame = RstStreamFrame(1, error_code=draw(st.integers(0, 2**32 - 1)))
        return raw_frame(RST_STREAM, 0, sid, frame.serialize_body())
    if kind == "priority":
        frame = PriorityFrame(
            1,
            depends_on=draw(stream_ids) & 0x7FFFFFFF,
            stream_weight=draw(st.integers(0, 255)),
            exclusive=draw(st.booleans()),
        )
        return raw_frame(PRIORITY, 0, sid, frame.serialize_body())
    if kind == "push_promise":
        promised = draw(st.sampled_from([2, 4, 1, 0, 3, 0x7FFFFFFF]))
        fields = [
            (b":method", draw(st.sampled_from([b"GET", b"HEAD", b"POST", b""]))),
            (b":scheme", b"http"),
            (b":authority", draw(st.sampled_from([b"fuzz.invalid", b"other.invalid"]))),
            (b":path", draw(st.sampled_from([b"/pushed", b"", b"*"]))),
        ]
        if draw(st.integers(0, 4)) == 0:
            fields = draw(st.permutations(fields))[: draw(st.integers(0, 4))]
        payload = struct.pack(">L", promised) + header_block(encoder, fields)
        flags = END_HEADERS if draw(st.integers(0, 9)) else 0
        return raw_frame(PUSH_PROMISE, flags, sid, payload)
    if kind == "headers":
        fields = draw(response_fields(None, None))
        return draw(headers_frames(encoder, fields, sid, draw(st.booleans())))
    if kind == "data":
        return draw(data_frames(draw(st.binary(max_size=200)), sid, draw(st.booleans())))
    if kind == "continuation":
        return raw_frame(
            CONTINUATION,
            draw(st.sampled_from([0, END_HEADERS])),
            sid,
            draw(st.binary(max_size=20)),
        )
    return raw_frame(
        draw(st.integers(0, 255)), draw(st.integers(0, 255)), sid, draw(st.binary(max_size=64))
    )


@st.composite
def frame_script(draw: st.DrawFn) -> bytes:
    """A whole server script: SETTINGS preface, maybe its ACK, a response to stream 1 among
    other frames. Three levels of disorder, drawn first: a clean exchange with benign frames
    (so that the reading paths are reached), random frames of any kind, and random frames
    plus byte mutations of the whole."""
    level = draw(st.sampled_from(["clean", "frames", "mutated"]))
    chaos = level != "clean"
    encoder = hpack.Encoder()
    if draw(st.integers(0, 3)) == 0:
        # Only the encoder's table shrinks; the client's decoder must cope with the update.
        encoder.header_table_size = draw(st.sampled_from([0, 256, 4096]))
    pairs = draw(settings_pairs) if chaos else [(4, 65535), (5, 16384)]
    out = raw_frame(SETTINGS, 0, 0, settings_payload(pairs))
    if draw(st.booleans()):
        out += raw_frame(SETTINGS, ACK, 0, b"")
    frames = any_frame(encoder) if chaos else benign_frame()
    before = draw(st.lists(frames, max_size=3))
    middle = [draw(response(encoder, chaos))] if not chaos or draw(st.integers(0, 5)) else []
    after = draw(st.lists(frames, max_size=3))
    out += b"".join([*before, *middle, *after])
    if level == "mutated":
        out = draw(mutated(out))
    return out
