"""
What the ``hyper`` command writes: response heads, the body on standard output (indented
when it is JSON on a terminal), or the body in the ``-o`` file.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from typing import BinaryIO

from ..common.response import BaseResponse
from .errors import FileError

#: The most body bytes held in memory to pretty-print a JSON body on a terminal.
JSON_SNIFF_LIMIT = 1024 * 1024


def response_head(response: BaseResponse) -> list[str]:
    """The status line (``HTTP/2 200``, ``HTTP/1.1 200 OK``) and the header lines."""
    status = f"{response.version.value} {response.status} {response.reason}".rstrip()
    return [status] + [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in response.headers.iter_raw()
    ]


def header_value(response: BaseResponse, name: bytes) -> str:
    """The response's ``name`` fields joined with commas, lower-cased ("" if absent)."""
    values: list[bytes] = response.headers.get(name, [])
    return b", ".join(values).decode("latin-1").lower()


def content_length(response: BaseResponse) -> int | None:
    """The decoded body's length if known (not when a Content-Encoding changes it)."""
    if header_value(response, b"content-encoding") not in ("", "identity"):
        return None
    length = header_value(response, b"content-length")
    return int(length) if length.isdigit() else None


def write_body(pieces: Iterable[bytes], out: BinaryIO, pretty_json: bool, json_type: bool) -> int:
    """
    Copy the body to ``out`` piece by piece, flushing each.

    With ``pretty_json`` (``out`` is a terminal), a body of up to :data:`JSON_SNIFF_LIMIT`
    bytes is written indented instead if it is JSON: any JSON value when ``json_type`` (the
    Content-Type says JSON), an object or array otherwise.

    :returns: the number of body bytes received.
    """
    iterator = iter(pieces)
    held: list[bytes] = []
    size = 0
    if pretty_json:
        for piece in iterator:
            held.append(piece)
            size += len(piece)
            if size > JSON_SNIFF_LIMIT:
                break
        else:
            pretty = _pretty_json(b"".join(held), json_type)
            if pretty is not None:
                out.write(pretty)
                out.flush()
                return size
    for piece in held:
        out.write(piece)
    out.flush()
    for piece in iterator:
        out.write(piece)
        out.flush()
        size += len(piece)
    return size


def _pretty_json(data: bytes, json_type: bool) -> bytes | None:
    """``data`` indented if it is JSON, else ``None``."""
    if not data.strip() or not (json_type or data.lstrip()[:1] in (b"{", b"[")):
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


class OutputFile:
    """
    The ``-o`` file, opened before the request is sent so that a path that cannot be
    written fails first, with nothing sent.

    It is opened for appending, which creates it if needed but does not truncate it: an
    existing file is only emptied (:meth:`start`) once a body arrives to replace it, and a
    file this command created is removed again if no body came (:meth:`discard`).

    :raises FileError: naming the file, if it cannot be opened for writing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        existed = os.path.lexists(path)
        try:
            self.file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by finish/discard
        except OSError as exc:
            raise FileError(
                f"cannot write the output file {path!r}: {exc.strerror or exc}"
            ) from None
        self._created = not existed
        self._started = False

    def start(self) -> BinaryIO:
        """Empty the file (a regular one; devices and pipes cannot be) and return it for
        the body."""
        self._started = True
        if stat.S_ISREG(os.fstat(self.file.fileno()).st_mode):
            self.file.truncate(0)
        return self.file

    def finish(self) -> None:
        """Close the file once the body is written."""
        self.file.close()

    def discard(self) -> None:
        """Close the file after a failure; remove it if this command created it and wrote
        nothing to it."""
        self.file.close()
        if self._created and not self._started:
            try:
                os.unlink(self.path)
            except OSError:
                pass  # it was made by us; failing to tidy it up is not worth an error
