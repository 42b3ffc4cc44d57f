"""
The decoded header blocks in the HTTP/2 debug log.

:func:`hyper.http20.frames.describe` logs one line per frame; a header block cannot be
decoded from its frame alone (HPACK's table depends on every block before it), so the engine
logs the decoded fields itself once a block is complete, through :func:`log_header_block`:
a line naming the block, then one indented line per field. The values of fields that carry
credentials (:data:`SECRET_FIELDS`) are shown as :data:`MASK`, so that a debug log can be
shared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

__all__ = ["MASK", "SECRET_FIELDS", "header_block_lines", "log_header_block"]

log = logging.getLogger("hyper.http20")

#: Fields whose values are credentials: never written to the log.
SECRET_FIELDS = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"})
#: What a secret value is shown as.
MASK = "***"


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def header_block_lines(
    what: str, stream_id: int, headers: Iterable[tuple[bytes | str, bytes | str]]
) -> Iterator[str]:
    """
    Describe a decoded header block: ``"<what> on stream <id>:"``, then ``"    name: value"``
    for each field, secret values masked.

    :param what: the kind of block (``"HEADERS"``, ``"PUSH_PROMISE of stream 2"``...).
    :param stream_id: the stream the block came (or goes) on.
    :param headers: the decoded fields.
    """
    yield f"{what} on stream {stream_id}:"
    for name, value in headers:
        shown = _text(name)
        secret = shown.lower().encode("latin-1", "replace") in SECRET_FIELDS
        yield f"    {shown}: {MASK if secret else _text(value)}"


def log_header_block(
    direction: str,
    what: str,
    stream_id: int,
    headers: Iterable[tuple[bytes | str, bytes | str]],
) -> None:
    """
    Log a decoded header block at DEBUG level on ``hyper.http20``, one record per line of
    :func:`header_block_lines`, each prefixed with ``direction`` (``"send"`` or
    ``"received"``) as the frame lines are.
    """
    for line in header_block_lines(what, stream_id, headers):
        log.debug("%s: %s", direction, line)
