"""
Request bodies of the ``hyper`` command: a JSON object or a form made of the body-field
items, the file of an ``@path`` item, or what arrives on standard input.

Every file is opened (or read) here, before anything is sent, so that a missing one is a
one-line :class:`~hyper.cli.errors.FileError` naming it. Each :class:`Body` can be sent
again from its start, as a ``307`` or ``308`` redirect asks.
"""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
import select
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

from .errors import FileError, UsageError
from .items import RequestItem

#: The Content-Type of a JSON body.
JSON_TYPE = "application/json"
#: The Content-Type of a ``--form`` body without files.
FORM_TYPE = "application/x-www-form-urlencoded"
#: The Content-Type of a file whose name says nothing about it.
DEFAULT_FILE_TYPE = "application/octet-stream"
#: Seconds to wait for standard input before saying, once, that the command waits for it.
STDIN_HINT_AFTER = 10.0


@dataclass(frozen=True)
class Body:
    """
    A request body: bytes in memory, or a regular file sent from its start.

    :param content_type: the default ``Content-Type`` (an item may replace it).
    :param length: the body's size in bytes.
    :param data: the body, when it is in memory.
    :param file: the open file, when it is sent from a file.
    """

    content_type: str
    length: int
    data: bytes | None = None
    file: BinaryIO | None = None

    def payload(self) -> bytes | BinaryIO:
        """What ``request()`` sends: the bytes, or the file rewound to its start (so that the
        body can be sent again after a redirect)."""
        if self.file is None:
            return self.data if self.data is not None else b""
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        """Close the body's file, if it has one."""
        if self.file is not None:
            self.file.close()


def in_memory(data: bytes, content_type: str) -> Body:
    """A body held in memory."""
    return Body(content_type, len(data), data=data)


def read_file(path: str) -> bytes:
    """
    The contents of the file ``path``.

    :raises FileError: naming the file, if it cannot be read.
    """
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise FileError(f"cannot read {path!r}: {exc.strerror or exc}") from None


def read_text_file(path: str) -> str:
    """
    The contents of the file ``path`` as UTF-8 text.

    :raises FileError: naming the file, if it cannot be read or is not UTF-8.
    """
    data = read_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileError(f"{path!r} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def file_type(path: str) -> str:
    """The Content-Type a file's name suggests, :data:`DEFAULT_FILE_TYPE` if none."""
    guessed, _ = mimetypes.guess_type(path)
    return guessed or DEFAULT_FILE_TYPE


def file_body(path: str) -> Body:
    """
    The body of an ``@path`` item: a regular file is sent from the file (it is opened now
    and rewound for each send); anything else (a pipe, a device) is read into memory.

    :raises FileError: naming the file, if it cannot be opened or read.
    """
    try:
        file = open(path, "rb")  # noqa: SIM115 - kept open until the command ends
    except OSError as exc:
        raise FileError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(file.fileno())
        if stat.S_ISREG(info.st_mode):
            return Body(file_type(path), info.st_size, file=file)
        data = file.read()
    except OSError as exc:
        file.close()
        raise FileError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    file.close()
    return in_memory(data, file_type(path))


def json_body(fields: Sequence[RequestItem]) -> Body:
    """
    A JSON object made of the body-field items, in order; a repeated field's last value
    wins.

    :raises UsageError: for a file upload item (``field@path``), which needs ``--form``.
    :raises FileError: if a file an item names cannot be read, or holds invalid JSON.
    """
    document: dict[str, Any] = {}
    for item in fields:
        if item.kind in ("field", "json"):
            document[item.name] = item.value
        elif item.kind == "field_file":
            document[item.name] = read_text_file(item.value)
        elif item.kind == "json_file":
            document[item.name] = _json_from_file(item.value)
        else:
            raise UsageError(
                f"file upload {item.name}@{item.value} needs --form (a multipart/form-data "
                "body); to send the file's text as a JSON string, use "
                f"{item.name}=@{item.value}"
            )
    return in_memory(json.dumps(document).encode("utf-8"), JSON_TYPE)


def _json_from_file(path: str) -> Any:
    text = read_text_file(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FileError(f"invalid JSON in {path!r}: {exc}") from None


def form_body(fields: Sequence[RequestItem], boundary: str | None = None) -> Body:
    """
    A ``--form`` body: ``application/x-www-form-urlencoded``, or ``multipart/form-data``
    when an item uploads a file (``field@path``). The parts of a multipart body are built
    in memory.

    :param boundary: the multipart boundary (random by default).
    :raises UsageError: for a ``:=`` item, which is JSON.
    :raises FileError: if a file an item names cannot be read.
    """
    for item in fields:
        if item.kind in ("json", "json_file"):
            raise UsageError(
                f"the JSON item {item.name!r} (':=') cannot be sent in a --form body: "
                f"use {item.name}=value"
            )
    if not any(item.kind == "file" for item in fields):
        pairs = [(item.name, _field_text(item)) for item in fields]
        return in_memory(urlencode(pairs, quote_via=quote).encode("ascii"), FORM_TYPE)
    boundary = boundary or "hyper-" + secrets.token_hex(16)
    parts = bytearray()
    for item in fields:
        disposition = f'form-data; name="{_quoted(item.name)}"'
        if item.kind == "file":
            filename = os.path.basename(item.value)
            disposition += f'; filename="{_quoted(filename)}"'
            head = f"Content-Disposition: {disposition}\r\nContent-Type: {file_type(filename)}"
            content = read_file(item.value)
        else:
            head = f"Content-Disposition: {disposition}"
            content = _field_text(item).encode("utf-8")
        parts += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    parts += f"--{boundary}--\r\n".encode()
    return in_memory(bytes(parts), f"multipart/form-data; boundary={boundary}")


def _field_text(item: RequestItem) -> str:
    return read_text_file(item.value) if item.kind == "field_file" else str(item.value)


def _quoted(name: str) -> str:
    """A name for a quoted Content-Disposition parameter, escaped as the HTML standard's
    multipart/form-data encoding does: ``"``, CR and LF percent-encoded."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def read_stdin(stream: BinaryIO, on_wait: Callable[[], None]) -> bytes:
    """
    Everything on ``stream`` (standard input) up to its end.

    If nothing has arrived after :data:`STDIN_HINT_AFTER` seconds, ``on_wait`` is called
    once (to say what the command is waiting for), and the wait goes on.

    :raises FileError: if standard input cannot be read.
    """
    try:
        if not _readable_within(stream, STDIN_HINT_AFTER):
            on_wait()
        return stream.read()
    except OSError as exc:
        raise FileError(f"cannot read standard input: {exc.strerror or exc}") from None


def _readable_within(stream: BinaryIO, seconds: float) -> bool:
    """Whether ``stream`` has data (or its end) within ``seconds``; True when that cannot
    be known (no file descriptor, or a platform whose select() takes only sockets)."""
    try:
        fd = stream.fileno()
        ready, _, _ = select.select([fd], [], [], seconds)
    except (OSError, ValueError):
        return True
    return bool(ready)
