"""
Parsing the head of an HTTP/1.1 response (status line and header fields), sans I/O.

:class:`Parser` works on bytes already received: it returns ``None`` when the head is not
complete yet, so the caller reads more and tries again. It is strict where leniency would let
a response be read two ways (the basis of response splitting and smuggling) and lenient where
RFC 9112 asks recipients to be (LF line endings, obs-fold).
"""

from __future__ import annotations

import re

from ..common.exceptions import InvalidResponse, InvalidResponseHeader, LineTooLongError
from ..common.grammar import TOKEN, TOKEN_CHARACTERS

#: The longest status or header line accepted, in bytes.
DEFAULT_MAX_LINE = 65536
#: The most header fields accepted in one response head.
DEFAULT_MAX_HEADERS = 100

_STATUS_LINE = re.compile(rb"HTTP/1\.([0-9]) ([0-9]{3})(?: ([^\r\n]*))?")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00\r]")
#: The field lines of an ordinary head, each ``name:value`` ending in CRLF, then the blank
#: line: one match checks them all (names are tokens; values hold no NUL, CR or LF). Anything
#: else (obs-fold, bare LF, an invalid line) takes the line-by-line path.
_PLAIN_FIELDS = re.compile(
    rb"(?:[" + TOKEN_CHARACTERS.encode("ascii") + rb"]+:[^\r\n\x00]*\r\n)*\r\n"
)


class ResponseHead:
    """The parsed head of one response.

    A plain class rather than a dataclass: :mod:`dataclasses` pulls in :mod:`inspect`, which
    would add about a tenth to the time ``import hyper`` takes.
    """

    __slots__ = ("consumed", "headers", "minor_version", "reason", "status")

    def __init__(
        self,
        minor_version: int,
        status: int,
        reason: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        consumed: int = 0,
    ) -> None:
        #: 0 for HTTP/1.0, 1 for HTTP/1.1.
        self.minor_version = minor_version
        #: The status code.
        self.status = status
        #: The reason phrase (decoded as Latin-1), possibly empty.
        self.reason = reason
        #: The header fields in order, names as sent.
        self.headers: list[tuple[bytes, bytes]] = [] if headers is None else headers
        #: How many bytes of the buffer the head took, blank line included.
        self.consumed = consumed

    def __repr__(self) -> str:
        return (
            f"ResponseHead(minor_version={self.minor_version}, status={self.status}, "
            f"reason={self.reason!r}, headers={self.headers!r}, consumed={self.consumed})"
        )


class Parser:
    """
    The HTTP/1.1 response parser an :class:`~hyper.HTTP11Connection` uses (its ``parser``
    attribute). A replacement must provide :meth:`parse_response` with the same contract.

    :param max_line_length: the longest status or header line accepted.
    :param max_headers: the most header fields accepted.
    """

    def __init__(
        self, max_line_length: int = DEFAULT_MAX_LINE, max_headers: int = DEFAULT_MAX_HEADERS
    ) -> None:
        self.max_line_length = max_line_length
        self.max_headers = max_headers

    def parse_response(self, data: bytes | bytearray | memoryview) -> ResponseHead | None:
        """
        Parse a response head from the start of ``data``.

        :param data: the bytes received so far.
        :returns: the head, with ``consumed`` set to its length; ``None`` if ``data`` does not
            hold a complete head yet.
        :raises LineTooLongError: if a line is longer than ``max_line_length``.
        :raises InvalidResponse: if the head is malformed, or has too many header fields.
        """
        raw = bytes(data)
        end = _find_head_end(raw)
        if end == -1:
            self._check_partial(raw)
            return None
        first = raw.find(b"\n")
        if (
            end <= self.max_line_length
            and raw[first - 1 : first] == b"\r"
            and _PLAIN_FIELDS.fullmatch(raw, first + 1, end)
        ):
            # The usual head: checked in one match, split without further checks.
            head = _parse_status_line(raw[: first - 1])
            fields_end = end - 4  # before the CRLF of the last field and the blank line
            fields: list[tuple[bytes, bytes]] = []
            if fields_end > first:
                for line in raw[first + 1 : fields_end].split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    fields.append((name, value.strip(b" \t")))
                if len(fields) > self.max_headers:
                    raise InvalidResponse(
                        f"response has more than {self.max_headers} header fields"
                    )
            head.headers = fields
            head.consumed = end
            return head
        lines = raw[:end].split(b"\n")
        # The head ends with an empty line; drop it and the CR of every CRLF.
        lines.pop()
        if lines and lines[-1] in (b"", b"\r"):
            lines.pop()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        for line in lines:
            if len(line) > self.max_line_length:
                raise LineTooLongError(f"response line longer than {self.max_line_length} bytes")
        head = _parse_status_line(lines[0] if lines else b"")
        head.headers = self._parse_fields(lines[1:])
        head.consumed = end
        return head

    def _check_partial(self, raw: bytes) -> None:
        """Fail early on an incomplete head that can already be seen to be bad."""
        if len(raw) >= 5 and raw[:5] != b"HTTP/":
            _parse_status_line(raw[:64].split(b"\n")[0])
        tail = len(raw) - (raw.rfind(b"\n") + 1)
        if tail > self.max_line_length + 1:
            raise LineTooLongError(f"response line longer than {self.max_line_length} bytes")

    def _parse_fields(self, lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        fields: list[tuple[bytes, bytes]] = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                # obs-fold: RFC 9112 5.2 asks a user agent to replace it with a space.
                if not fields:
                    raise InvalidResponseHeader("response head starts with a continuation line")
                name, value = fields[-1]
                fields[-1] = (name, (value + b" " + line.strip(b" \t")).strip(b" \t"))
                continue
            name, colon, value = line.partition(b":")
            if not colon or not TOKEN.fullmatch(name):
                # Whitespace before the colon included: RFC 9112 5.1 says reject it.
                raise InvalidResponseHeader(f"invalid header line in response: {line[:100]!r}")
            value = value.strip(b" \t")
            if _FORBIDDEN_IN_VALUE.search(value):
                raise InvalidResponseHeader(f"header {name!r} has a NUL or bare CR in its value")
            fields.append((name, value))
            if len(fields) > self.max_headers:
                raise InvalidResponse(f"response has more than {self.max_headers} header fields")
        return fields


def _find_head_end(data: bytes) -> int:
    """Return the length of the head (through its blank line), or -1 if incomplete."""
    # The blank line ends in LF, after a line that ends in LF: "\n\n" or "\n\r\n".
    crlf = data.find(b"\n\r\n")
    lf = data.find(b"\n\n", 0, crlf if crlf != -1 else len(data))
    if lf != -1:
        return lf + 2
    if crlf != -1:
        return crlf + 3
    return -1


def _parse_status_line(line: bytes) -> ResponseHead:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise InvalidResponse(f"invalid status line: {line[:100]!r}")
    minor, status, reason = match.groups()
    code = int(status)
    if code < 100:
        raise InvalidResponse(f"invalid status code {code}")
    reason_b = reason or b""
    if b"\x00" in reason_b or b"\r" in reason_b:
        raise InvalidResponse(f"invalid status line: {line[:100]!r}")
    # RFC 9112 2.3: a later HTTP/1 minor version is read as the highest one hyper speaks.
    return ResponseHead(min(int(minor), 1), code, reason_b.decode("latin-1"))
