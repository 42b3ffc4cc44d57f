"""
Streaming decoding of response bodies according to their ``Content-Encoding``.

:func:`get_decoder` turns a ``Content-Encoding`` header into a :class:`Decoder`, which is fed the
body as it arrives and hands back the decoded bytes. Every call can be given a ``max_length``,
and then produces at most that many bytes, whatever the compressed input expands to: a small
"compression bomb" never makes hyper hold more than about ``max_length`` bytes at once.

Supported codings: ``gzip`` (and its alias ``x-gzip``), ``deflate``, ``br`` (with the
``brotli`` package, 1.2 or newer) and ``zstd`` (see below). :data:`SUPPORTED_ENCODINGS` lists
the ones available in this environment.

``zstd`` has two back-ends, listed in :data:`ZSTD_BACKENDS` in the order hyper prefers them:

* ``"zstandard"``: the ``zstandard`` package, a dependency of hyper below Python 3.14;
* ``"compression.zstd"``: the standard library's :mod:`compression.zstd` on Python 3.14 and
  newer, or the same module from the ``backports.zstd`` package below 3.14.

hyper uses the first one installed. Both decode the same streams to the same bytes and raise
the same :class:`~hyper.common.exceptions.ContentDecodingError`; ``zstd_backend=`` on
:class:`Decoder` and :func:`get_decoder` picks one explicitly (the tests run each).

What happens to bytes that follow the end of a compressed stream:

* ``gzip``: another member (starting with the gzip magic bytes) is decoded and appended, as
  for concatenated ``.gz`` files. Anything else after a complete member, such as NUL padding or
  junk some servers append, is ignored, as browsers and curl do.
* ``deflate``: bytes after the end of the stream are ignored.
* ``zstd``: further frames, and skippable frames, are decoded; anything else after a complete
  frame is ignored, as for ``gzip``.
* ``br``: the format has no members and the brotli library rejects data past the end of the
  stream, so such data raises :class:`~hyper.common.exceptions.ContentDecodingError`
  (whether it arrives in the same chunk as the end of the stream or in a later one).

A body that is empty is decoded to nothing, without error, whatever its coding (responses to
``HEAD``, ``204`` and ``304`` often carry a ``Content-Encoding`` and no body).
"""

from __future__ import annotations

import importlib
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from .exceptions import ContentDecodingError, InvalidRequest

__all__ = [
    "MAX_CODINGS",
    "SUPPORTED_ENCODINGS",
    "ZSTD_BACKENDS",
    "ZSTD_MAX_WINDOW_SIZE",
    "Decoder",
    "get_decoder",
]

#: The most content codings hyper undoes for one body. Real servers apply one, rarely two;
#: a longer list is refused (:class:`~hyper.common.exceptions.ContentDecodingError`) before
#: any byte is decoded, so a header cannot make hyper build an arbitrarily deep chain.
MAX_CODINGS = 5

#: The largest zstd window hyper accepts, in bytes. RFC 9659 limits the window of the ``zstd``
#: content coding to 8 MiB; a frame asking for more is refused, which also bounds the memory a
#: hostile server can make the decoder allocate.
ZSTD_MAX_WINDOW_SIZE = 8 * 1024 * 1024

# When output is bounded, compressed input is handed to a codec at most this much at a time,
# so that what the codec copies and keeps between calls stays small.
_INPUT_SLICE = 32 * 1024
# How much decoded data one codec of a chain asks of the codec before it at a time.
_CHAIN_CHUNK = 64 * 1024
# The output_buffer_limit given to brotli per call. brotli grows its output in chunks (the
# first one is about 32 KiB) until it reaches the limit, so a small limit means one chunk.
_BROTLI_STEP = 16 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_SKIPPABLE_TAIL = b"\x2a\x4d\x18"  # bytes 1-3 of 0x184D2A50..0x184D2A5F, little-endian


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _bounded_brotli() -> ModuleType | None:
    """The brotli module, if it has the bounded-output API (brotli 1.2, brotlicffi 1.2)."""
    for name in ("brotli", "brotlicffi"):
        module = _optional_module(name)
        if module is None:
            continue
        try:
            probe = module.Decompressor()
            probe.process(b"", output_buffer_limit=1)
            probe.can_accept_more_data()
        except (TypeError, AttributeError):
            continue
        return module
    return None


_brotli = _bounded_brotli()


class _Input:
    """Compressed bytes waiting to be decoded: a queue of chunks, consumed without copying."""

    __slots__ = ("_chunks", "size")

    def __init__(self) -> None:
        self._chunks: deque[bytes | memoryview] = deque()
        self.size = 0

    def push(self, data: bytes | memoryview) -> None:
        if data:
            self._chunks.append(data)
            self.size += len(data)

    def push_front(self, data: bytes | memoryview) -> None:
        if data:
            self._chunks.appendleft(data)
            self.size += len(data)

    def take(self, limit: int) -> bytes | memoryview:
        """Remove and return up to ``limit`` bytes (everything if ``limit`` <= 0)."""
        chunks = self._chunks
        if not chunks:
            return b""
        if limit <= 0:
            data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self.size = 0
            return data
        first = chunks.popleft()
        if len(first) > limit:
            view = first if isinstance(first, memoryview) else memoryview(first)
            chunks.appendleft(view[limit:])
            first = view[:limit]
        self.size -= len(first)
        return first

    def peek(self, count: int, offset: int = 0) -> bytes:
        """Return up to ``count`` bytes starting ``offset`` bytes in, without removing them."""
        parts: list[bytes] = []
        wanted = count
        for chunk in self._chunks:
            length = len(chunk)
            if offset >= length:
                offset -= length
                continue
            piece = bytes(chunk[offset : offset + wanted])
            parts.append(piece)
            wanted -= len(piece)
            offset = 0
            if not wanted:
                break
        return b"".join(parts)

    def clear(self) -> None:
        self._chunks.clear()
        self.size = 0


class _Stage:
    """
    One codec of a decoding chain.

    ``feed`` stores compressed input; ``read(limit)`` decodes and returns up to ``limit`` bytes
    (all it can when ``limit`` < 0), returning fewer only when it needs more input.
    """

    __slots__ = ("_input", "_surplus", "_surplus_pos", "finished", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._input = _Input()
        # Output decoded but not yet returned (when a codec overshoots a limit).
        self._surplus: bytes = b""
        self._surplus_pos = 0
        #: The stream has ended and nothing more will come out; further input is ignored.
        self.finished = False

    def feed(self, data: bytes | memoryview) -> None:
        if not self.finished:
            self._input.push(data)

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes:
        self.feed(data)
        return self.read(limit)

    def read(self, limit: int) -> bytes:
        if self._surplus:
            served = self._serve_surplus(limit)
            if limit < 0:
                return served + self._decode(-1)
            if len(served) == limit:
                return served
            return served + self._decode(limit - len(served))
        return self._decode(limit)

    def _serve_surplus(self, limit: int) -> bytes:
        start = self._surplus_pos
        end = len(self._surplus)
        if 0 <= limit < end - start:
            end = start + limit
            self._surplus_pos = end
            return self._surplus[start:end]
        data = self._surplus if start == 0 else self._surplus[start:]
        self._surplus = b""
        self._surplus_pos = 0
        return data

    def _keep_surplus(self, data: bytes, used: int) -> None:
        """Keep ``data[used:]`` for later calls; there is no surplus left when this is called."""
        self._surplus = data
        self._surplus_pos = used

    @property
    def has_surplus(self) -> bool:
        return bool(self._surplus)

    def _error(self, exc: Exception) -> ContentDecodingError:
        return ContentDecodingError(f"invalid {self.name} data: {exc}")

    # Implemented by each codec.

    def _decode(self, limit: int) -> bytes:
        raise NotImplementedError

    @property
    def needs_input(self) -> bool:
        """True when no more output can be produced without more input."""
        raise NotImplementedError

    @property
    def eof(self) -> bool:
        """True when a complete stream has been decoded and no member or frame is open."""
        raise NotImplementedError

    def check_complete(self) -> None:
        """At the end of the body: raise if the stream was cut short."""
        raise NotImplementedError


class _ZlibStage(_Stage):
    """``gzip`` (concatenated members allowed) and ``deflate`` (zlib-wrapped or raw)."""

    __slots__ = ("_gzip", "_obj", "_saturated", "_started")

    def __init__(self, name: str, gzip: bool) -> None:
        super().__init__(name)
        self._gzip = gzip
        self._obj: Any = None  # the decompressobj of the member being decoded
        self._started = False
        # The last bounded call filled its limit, so zlib may hold more output.
        self._saturated = False

    def _start_member(self) -> bool:
        """Open the next member if the input allows; tell whether one is open."""
        pending = self._input
        if not self._started:
            if self._gzip:
                if not pending.size:
                    return False
                wbits = 16 + zlib.MAX_WBITS
            else:
                if pending.size < 2:
                    return False
                wbits = zlib.MAX_WBITS if _looks_like_zlib(pending.peek(2)) else -zlib.MAX_WBITS
        else:
            # Only gzip gets here: deflate finishes at the end of its stream.
            head = pending.peek(2)
            if head in (b"", _GZIP_MAGIC[:1]):
                return False  # cannot tell yet what follows
            if head != _GZIP_MAGIC:
                self._finish()  # not another member: ignored
                return False
            wbits = 16 + zlib.MAX_WBITS
        self._obj = zlib.decompressobj(wbits)
        self._started = True
        return True

    def _finish(self) -> None:
        self.finished = True
        self._input.clear()

    def _decode(self, limit: int) -> bytes:
        if limit == 0:
            return b""
        pending = self._input
        bounded = limit > 0
        parts: list[bytes] = []
        while not self.finished:
            if self._obj is None and not self._start_member():
                break
            obj = self._obj
            if pending.size:
                data = pending.take(_INPUT_SLICE if bounded else 0)
            elif self._saturated:
                data = b""
            else:
                break
            try:
                out = obj.decompress(data, limit if bounded else 0)
            except zlib.error as exc:
                raise self._error(exc) from exc
            pending.push_front(obj.unconsumed_tail)
            if out:
                parts.append(out)
            if obj.eof:
                self._obj = None
                self._saturated = False
                if self._gzip:
                    pending.push_front(obj.unused_data)
                else:
                    self._finish()  # anything after a deflate stream is ignored
            elif bounded:
                self._saturated = len(out) == limit
            if bounded:
                limit -= len(out)
                if not limit:
                    break
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes:
        obj = self._obj
        if limit < 0 and obj is not None and not self._input.size and not self._saturated:
            # The common case: the whole chunk in one call, nothing queued.
            try:
                out: bytes = obj.decompress(data)
            except zlib.error as exc:
                raise self._error(exc) from exc
            if not obj.eof:
                return out
            self._obj = None
            if not self._gzip:
                self._finish()
                return out
            self._input.push(obj.unused_data)
            return out + self._decode(-1)
        return super().decompress(data, limit)

    @property
    def needs_input(self) -> bool:
        if self.finished:
            return True
        if self._obj is None:
            return self._input.size < (1 if self._gzip and not self._started else 2)
        return not self._input.size and not self._saturated

    @property
    def eof(self) -> bool:
        return self._started and self._obj is None

    def check_complete(self) -> None:
        if self._obj is not None or (not self._gzip and not self._started and self._input.size):
            raise ContentDecodingError(f"the {self.name} stream is truncated")


def _looks_like_zlib(head: bytes) -> bool:
    """Whether two bytes are a zlib header (RFC 1950): deflate method, valid check bits."""
    cmf, flg = head[0], head[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


class _BrotliStage(_Stage):
    """``br``, decoded with ``brotli.Decompressor.process(..., output_buffer_limit=...)``."""

    __slots__ = ("_dec", "_error_type", "_saturated", "_started")

    def __init__(self, name: str, module: ModuleType) -> None:
        super().__init__(name)
        self._dec = module.Decompressor()
        self._error_type: type[Exception] = module.error
        self._saturated = False
        self._started = False

    def feed(self, data: bytes | memoryview) -> None:
        if data and self.finished:
            raise ContentDecodingError(f"data after the end of the {self.name} stream")
        super().feed(data)

    def _decode(self, limit: int) -> bytes:
        if limit == 0:
            return b""
        pending = self._input
        dec = self._dec
        bounded = limit > 0
        parts: list[bytes] = []
        while True:
            if dec.is_finished():
                if pending.size:
                    raise ContentDecodingError(f"data after the end of the {self.name} stream")
                self.finished = True
                break
            if dec.can_accept_more_data():
                if pending.size:
                    data = pending.take(_INPUT_SLICE if bounded else 0)
                    self._started = True
                elif self._saturated:
                    data = b""
                else:
                    break
            else:
                data = b""  # brotli still holds input from an earlier call
            try:
                if bounded:
                    step = min(limit, _BROTLI_STEP)
                    out = dec.process(data, output_buffer_limit=step)
                    self._saturated = len(out) >= step
                else:
                    out = dec.process(data)
                    self._saturated = False
            except self._error_type as exc:
                raise self._error(exc) from exc
            if bounded:
                if len(out) > limit:
                    self._keep_surplus(out, limit)
                    out = out[:limit]
                limit -= len(out)
            if out:
                parts.append(out)
            if bounded and not limit:
                break
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)

    @property
    def needs_input(self) -> bool:
        if self.has_surplus:
            return False
        if self.finished or self._dec.is_finished():
            return True
        return not self._input.size and not self._saturated and self._dec.can_accept_more_data()

    @property
    def eof(self) -> bool:
        return bool(self._dec.is_finished()) and not self.has_surplus

    def check_complete(self) -> None:
        if self._started and not self._dec.is_finished():
            raise ContentDecodingError(f"the {self.name} stream is truncated")


# Phases of the zstd frame walker (RFC 8878 section 3.1).
_Z_MAGIC = 0  # expecting the start of a frame
_Z_BLOCK = 1  # expecting a block header
_Z_CHECKSUM = 2  # the last block is done; a content checksum follows
_Z_END = 3  # when the current segment is done, so is the frame


class _ZstandardStage(_Stage):
    """
    ``zstd`` with the ``zstandard`` package.

    ``zstandard``'s ``decompressobj`` returns everything the input it is given decodes to, with
    no way to limit it. So this stage walks the frame structure itself (frame headers, block
    headers, checksums, skippable frames) and, when output is bounded, gives the decompressor
    input only up to the end of the next block. A block decodes to at most 128 KiB (the
    library rejects anything larger), so one call never produces more than that; the excess
    over ``max_length`` is kept for the next call.
    """

    __slots__ = (
        "_checksum",
        "_dobj",
        "_error_type",
        "_frames",
        "_garbage",
        "_in_block",
        "_in_frame",
        "_phase",
        "_remaining",
        "_stalled",
    )

    def __init__(self, name: str, module: ModuleType) -> None:
        super().__init__(name)
        self._error_type: type[Exception] = module.ZstdError
        self._dobj = module.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW_SIZE).decompressobj(
            read_across_frames=True
        )
        self._phase = _Z_MAGIC
        self._remaining = 0  # bytes left in the segment being passed through
        self._in_block = False  # that segment is a block
        self._checksum = False  # the current frame ends with a content checksum
        self._in_frame = False
        self._frames = 0  # complete frames so far
        self._garbage = False  # the walker reached bytes that are not a frame
        self._stalled = False  # the walker needs more input to go on

    def feed(self, data: bytes | memoryview) -> None:
        if data:
            self._stalled = False
        super().feed(data)

    def _walk(self, one_block: bool) -> int:
        """
        Advance over the queued input; return how many bytes may go to the decompressor now.

        Stops at the end of the input, where the next header is incomplete, after the end of
        a block when ``one_block`` is set, and at trailing garbage (setting ``_garbage``).
        """
        pending = self._input
        available = pending.size
        pos = 0
        while pos < available:
            if self._remaining:
                step = min(self._remaining, available - pos)
                pos += step
                self._remaining -= step
                if self._remaining:
                    break
                ended_block = self._in_block
                self._in_block = False
                if self._phase == _Z_CHECKSUM:
                    self._remaining = 4
                    self._phase = _Z_END
                elif self._phase == _Z_END:
                    self._phase = _Z_MAGIC
                    self._in_frame = False
                    self._frames += 1
                if one_block and ended_block:
                    break
            elif self._phase == _Z_MAGIC:
                head = pending.peek(8, pos)
                if len(head) < 4:
                    break
                if head[:4] == _ZSTD_MAGIC:
                    if len(head) < 5:
                        break
                    self._phase = _Z_BLOCK
                    self._remaining = _zstd_header_size(head[4])
                    self._checksum = bool(head[4] & 0x04)
                    self._in_frame = True
                elif head[0] & 0xF0 == 0x50 and head[1:4] == _ZSTD_SKIPPABLE_TAIL:
                    if len(head) < 8:
                        break
                    self._phase = _Z_END
                    self._remaining = 8 + int.from_bytes(head[4:8], "little")
                    self._in_frame = True
                elif self._frames:
                    self._garbage = True  # after a complete frame: ignored
                    break
                else:
                    raise ContentDecodingError(f"invalid {self.name} data: not a zstd frame")
            else:  # _Z_BLOCK: a block header
                header = pending.peek(3, pos)
                if len(header) < 3:
                    break
                value = int.from_bytes(header, "little")
                block_type = (value >> 1) & 3
                if block_type == 3:
                    raise ContentDecodingError(f"invalid {self.name} data: reserved block type")
                # An RLE block (type 1) holds one byte, repeated Block_Size times.
                self._remaining = 3 + (1 if block_type == 1 else value >> 3)
                self._in_block = True
                if value & 1:  # the last block of the frame
                    self._phase = _Z_CHECKSUM if self._checksum else _Z_END
        return pos

    def _decode(self, limit: int) -> bytes:
        if limit == 0:
            return b""
        pending = self._input
        bounded = limit > 0
        parts: list[bytes] = []
        while not self.finished:
            count = self._walk(one_block=bounded)
            if not count and not self._garbage:
                self._stalled = True
                break
            out_parts: list[bytes] = []
            while count:
                data = pending.take(count)
                count -= len(data)
                try:
                    out = self._dobj.decompress(data)
                except self._error_type as exc:
                    raise self._error(exc) from exc
                if out:
                    out_parts.append(out)
            if self._garbage:
                self.finished = True
                pending.clear()
            out = out_parts[0] if len(out_parts) == 1 else b"".join(out_parts)
            if bounded and len(out) > limit:
                self._keep_surplus(out, limit)
                out = out[:limit]
            if out:
                parts.append(out)
            if bounded:
                limit -= len(out)
                if not limit:
                    break
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    @property
    def needs_input(self) -> bool:
        if self.has_surplus:
            return False
        return self.finished or self._stalled or not self._input.size

    @property
    def eof(self) -> bool:
        return self._frames > 0 and not self._in_frame and not self.has_surplus

    def check_complete(self) -> None:
        pending = self._input.size
        if self._in_frame or pending >= 4 or (pending and not self._frames):
            raise ContentDecodingError(f"the {self.name} stream is truncated")


def _zstd_header_size(descriptor: int) -> int:
    """Size of a zstd frame header (magic included) from its Frame_Header_Descriptor byte."""
    single_segment = descriptor & 0x20
    size = 5 + (0 if single_segment else 1)  # magic, descriptor, window descriptor
    size += (0, 1, 2, 4)[descriptor & 0x03]  # dictionary id
    size += (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]  # frame content size
    return size


class _StdlibZstdStage(_Stage):
    """
    ``zstd`` with :mod:`compression.zstd` (Python 3.14+, or ``backports.zstd`` below), whose
    decompressor takes a ``max_length`` itself. It decodes one frame per decompressor.
    """

    __slots__ = ("_frames", "_module", "_obj", "_options")

    def __init__(self, name: str, module: ModuleType) -> None:
        super().__init__(name)
        self._module = module
        window_log = ZSTD_MAX_WINDOW_SIZE.bit_length() - 1
        self._options = {module.DecompressionParameter.window_log_max: window_log}
        self._obj: Any = None  # the decompressor of the frame being decoded
        self._frames = 0

    def _start_frame(self) -> bool:
        pending = self._input
        if self._frames:
            head = pending.peek(4)
            if len(head) < 4:
                return False
            if head != _ZSTD_MAGIC and not (
                head[0] & 0xF0 == 0x50 and head[1:4] == _ZSTD_SKIPPABLE_TAIL
            ):
                self.finished = True  # after a complete frame: ignored
                pending.clear()
                return False
        elif not pending.size:
            return False
        self._obj = self._module.ZstdDecompressor(options=self._options)
        return True

    def _decode(self, limit: int) -> bytes:
        if limit == 0:
            return b""
        pending = self._input
        bounded = limit > 0
        parts: list[bytes] = []
        while not self.finished:
            if self._obj is None and not self._start_frame():
                break
            obj = self._obj
            if not obj.needs_input:
                data: bytes | memoryview = b""
            elif pending.size:
                data = pending.take(_INPUT_SLICE if bounded else 0)
            else:
                break
            try:
                out = obj.decompress(data, limit if bounded else -1)
            except self._module.ZstdError as exc:
                raise self._error(exc) from exc
            if obj.eof:
                pending.push_front(obj.unused_data)
                self._obj = None
                self._frames += 1
            if out:
                parts.append(out)
            if bounded:
                limit -= len(out)
                if not limit:
                    break
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)

    @property
    def needs_input(self) -> bool:
        if self.finished:
            return True
        obj = self._obj
        if obj is None:
            return self._input.size < (4 if self._frames else 1)
        return bool(obj.needs_input) and not self._input.size

    @property
    def eof(self) -> bool:
        return self._frames > 0 and self._obj is None

    def check_complete(self) -> None:
        pending = self._input.size
        if self._obj is not None or pending >= 4 or (pending and not self._frames):
            raise ContentDecodingError(f"the {self.name} stream is truncated")


def _zstd_stage_makers() -> dict[str, Callable[[str], _Stage]]:
    """The installed zstd back-ends, by name, the preferred one first."""
    makers: dict[str, Callable[[str], _Stage]] = {}
    zstandard = _optional_module("zstandard")
    if zstandard is not None:
        makers["zstandard"] = lambda name: _ZstandardStage(name, zstandard)
    # backports.zstd is compression.zstd for Python < 3.14, under another name.
    stdlib = _optional_module("compression.zstd") or _optional_module("backports.zstd")
    if stdlib is not None:
        makers["compression.zstd"] = lambda name: _StdlibZstdStage(name, stdlib)
    return makers


# zstd back-end name -> function making a stage for it.
_ZSTD_STAGES = _zstd_stage_makers()

#: The ``zstd`` back-ends installed, the one hyper uses by default first: ``"zstandard"`` (the
#: ``zstandard`` package) and ``"compression.zstd"`` (the standard library's module on Python
#: 3.14+, or ``backports.zstd`` below). Empty when there is none, and then ``zstd`` is not in
#: :data:`SUPPORTED_ENCODINGS`.
ZSTD_BACKENDS: tuple[str, ...] = tuple(_ZSTD_STAGES)


def _build_factories() -> dict[bytes, Callable[[str], _Stage]]:
    factories: dict[bytes, Callable[[str], _Stage]] = {
        b"gzip": lambda name: _ZlibStage(name, gzip=True),
        b"x-gzip": lambda name: _ZlibStage(name, gzip=True),
        b"deflate": lambda name: _ZlibStage(name, gzip=False),
    }
    if _brotli is not None:
        brotli = _brotli
        factories[b"br"] = lambda name: _BrotliStage(name, brotli)
    if ZSTD_BACKENDS:
        factories[b"zstd"] = _ZSTD_STAGES[ZSTD_BACKENDS[0]]
    return factories


# Coding name (lower case) -> function making a stage for it, zstd with the default back-end.
_FACTORIES = _build_factories()

#: The content codings this installation can decode, suitable for ``Accept-Encoding``.
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(
    name for name in ("gzip", "deflate", "br", "zstd") if name.encode() in _FACTORIES
)


def _factories_with(zstd_backend: str | None) -> dict[bytes, Callable[[str], _Stage]]:
    """The stage makers to use when ``zstd_backend`` is asked for (``None``: the default)."""
    if zstd_backend is None:
        return _FACTORIES
    maker = _ZSTD_STAGES.get(zstd_backend)
    if maker is None:
        raise InvalidRequest(
            f"zstd back-end {zstd_backend!r} is not available; installed: {ZSTD_BACKENDS}"
        )
    return {**_FACTORIES, b"zstd": maker}


def _parse_codings(content_encoding: Iterable[bytes | str] | bytes | str) -> list[bytes]:
    """Split Content-Encoding values into lower-case codings, dropping ``identity``."""
    values = [content_encoding] if isinstance(content_encoding, (bytes, str)) else content_encoding
    codings: list[bytes] = []
    for value in values:
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        for part in raw.split(b","):
            coding = part.strip(b" \t").lower()
            if coding and coding != b"identity":
                codings.append(coding)
    return codings


class Decoder:
    """
    Decodes a body encoded with one or more content codings, as it arrives.

    Feed the body to :meth:`decompress` chunk by chunk and call :meth:`flush` once it has all
    arrived. With a ``max_length`` every call returns at most that many bytes, and keeps what
    it could not decode yet for the following calls (which may pass ``b""``)::

        decoder = get_decoder(response.headers.get("content-encoding"))
        for chunk in chunks:
            out = decoder.decompress(chunk, 65536)
            ...
            while not decoder.needs_input:
                out = decoder.decompress(b"", 65536)
                ...
        while out := decoder.flush(65536):
            ...

    Use :func:`get_decoder` to make one from a header; the constructor takes the codings in
    the order they were applied, as the header lists them.

    :param codings: the content codings, e.g. ``["gzip"]`` or ``[b"gzip", b"br"]``.
    :param zstd_backend: the back-end that decodes ``zstd``, one of :data:`ZSTD_BACKENDS`;
        ``None`` (the default) means the first of them.
    :raises InvalidRequest: if a coding is not supported (see :data:`SUPPORTED_ENCODINGS`),
        none is given, more than :data:`MAX_CODINGS` are, or ``zstd_backend`` names a back-end
        that is not installed.
    """

    __slots__ = ("_codings", "_stages")

    def __init__(
        self, codings: Iterable[bytes | str] | bytes | str, *, zstd_backend: str | None = None
    ) -> None:
        factories = _factories_with(zstd_backend)
        names = _parse_codings(codings)
        if not names:
            raise InvalidRequest("no content coding to decode")
        if len(names) > MAX_CODINGS:
            raise InvalidRequest(
                f"{len(names)} content codings given; hyper decodes at most {MAX_CODINGS}"
            )
        stages: list[_Stage] = []
        # Codings are listed in the order they were applied, so they are undone in reverse.
        for name in reversed(names):
            factory = factories.get(name)
            if factory is None:
                raise InvalidRequest(f"unsupported content coding {name!r}")
            stages.append(factory(name.decode("ascii", "replace")))
        self._stages = stages
        self._codings = tuple(name.decode("ascii", "replace") for name in names)

    @property
    def codings(self) -> tuple[str, ...]:
        """
        The codings this decoder undoes, in the order they were applied.

        :returns: e.g. ``("gzip", "br")``.
        """
        return self._codings

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """
        Decode the next chunk of the body.

        :param data: the next bytes of the encoded body; may be ``b""`` to go on decoding
            input given earlier.
        :param max_length: the most bytes to return; input that would decode to more is kept
            for the next calls. Negative (the default) means no limit; ``0`` returns nothing.
        :returns: the decoded bytes, possibly none.
        :raises ContentDecodingError: if the data is not valid for its coding.
        """
        stages = self._stages
        if max_length < 0:
            for stage in stages:
                data = stage.decompress(data, -1)
            return data
        stages[0].feed(data)
        if max_length == 0:
            return b""
        return self._pull(max_length)

    def _pull(self, limit: int) -> bytes:
        """Return up to ``limit`` bytes from the last stage, feeding each stage from the one
        before it as it runs dry. A loop, not a recursion: a chain's depth costs no stack."""
        stages = self._stages
        last = stages[-1]
        parts: list[bytes] = []
        got = 0
        while got < limit:
            out = last.read(limit - got)
            if out:
                parts.append(out)
                got += len(out)
                continue
            if last.finished or not last.needs_input or not self._refill(len(stages) - 1):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _refill(self, index: int) -> bool:
        """Give stage ``index`` more input from the stages before it; ``False`` when they
        have nothing more until the caller feeds the chain."""
        stages = self._stages
        current = index - 1
        while current >= 0:
            out = stages[current].read(_CHAIN_CHUNK)
            if out:
                stages[current + 1].feed(out)
                if current + 1 == index:
                    return True
                current += 1  # the next stage down has input now: try it again
                continue
            stage = stages[current]
            if current == 0 or stage.finished or not stage.needs_input:
                return False
            current -= 1
        return False

    def flush(self, max_length: int = -1) -> bytes:
        """
        Finish decoding at the end of the body.

        With a ``max_length``, call it again until it returns ``b""``: each call returns at
        most ``max_length`` bytes of what remains.

        :param max_length: the most bytes to return; negative (the default) means no limit.
        :returns: the rest of the decoded body (or the next part of it).
        :raises ContentDecodingError: if the body ended before the end of its compressed
            stream (it was cut short), or holds invalid data. The error comes from the call
            that finds nothing more to return, and any output of that call is dropped.
        """
        out = self.decompress(b"", max_length)
        if 0 <= max_length <= len(out):
            return out  # there may be more; the caller calls again
        for stage in reversed(self._stages):
            stage.check_complete()
            if stage.finished:
                break  # what came before it is being ignored
        return out

    @property
    def needs_input(self) -> bool:
        """
        ``True`` when no more output can be produced without more input.

        :returns: ``False`` while :meth:`decompress` with ``b""`` would still return data.
        """
        for stage in reversed(self._stages):
            if not stage.needs_input:
                return False
            if stage.finished:
                break
        return True

    @property
    def eof(self) -> bool:
        """
        ``True`` once the compressed stream has ended and all its output has been returned.

        For ``gzip`` and ``zstd`` another member or frame may still follow.

        :returns: whether the end of the (innermost) stream has been reached.
        """
        return self._stages[-1].eof


def get_decoder(
    content_encoding: list[bytes] | bytes | str | None, *, zstd_backend: str | None = None
) -> Decoder | None:
    """
    Make a :class:`Decoder` for a ``Content-Encoding`` header.

    The header may be given as one value (``b"gzip, br"``) or as the list of its values (as
    :class:`~hyper.common.headers.HTTPHeaderMap` returns them). Codings are matched without
    regard to case and ``identity`` is skipped.

    :param content_encoding: the header's value or values, or ``None`` when there is none.
    :param zstd_backend: the back-end that decodes ``zstd``, one of :data:`ZSTD_BACKENDS`;
        ``None`` (the default) means the first of them.
    :returns: a decoder, or ``None`` when there is nothing to decode, or when *any* listed
        coding is not supported: the body is then passed on as it arrived, still encoded,
        rather than decoded in part.
    :raises ContentDecodingError: if the header lists more than :data:`MAX_CODINGS` codings.
    :raises InvalidRequest: if ``zstd_backend`` names a back-end that is not installed
        (whatever the header says).
    """
    # A back-end that is not installed is the caller's error, whatever the header says.
    factories = _factories_with(zstd_backend)
    if content_encoding is None:
        return None
    codings = _parse_codings(content_encoding)
    if len(codings) > MAX_CODINGS:
        raise ContentDecodingError(
            f"the response lists {len(codings)} content codings; hyper decodes at most "
            f"{MAX_CODINGS}"
        )
    if not codings or any(coding not in factories for coding in codings):
        return None
    return Decoder(codings, zstd_backend=zstd_backend)
