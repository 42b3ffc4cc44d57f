"""
Checking and normalising what a caller asks to send, for both protocols.

Everything here runs before a byte reaches the wire, so a bad method, target, header or body
type ends in :class:`~hyper.common.exceptions.InvalidRequest` and never in a half-sent
request.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from .exceptions import InvalidRequest
from .grammar import FORBIDDEN_IN_TARGET, FORBIDDEN_IN_VALUE, TOKEN
from .hosts import encode_host

#: Methods given as str and already checked, with their bytes: a program uses a handful.
#: (Only str: a str and a bytes key of the same text would compare, which ``python -b``
#: reports.)
_CHECKED_METHODS: dict[str, bytes] = {}
#: The most methods remembered, so that a program inventing methods cannot grow the table.
_MAX_CHECKED_METHODS = 64

#: The size of the pieces a file-like body is read in (the send path splits them further
#: into frames as flow control allows).
BODY_READ_SIZE = 256 * 1024


class Readable(Protocol):
    """Anything with a ``read(size)`` method: files, sockets' makefile(), BytesIO..."""

    def read(self, size: int = ..., /) -> bytes | str: ...


HeadersArg = (
    Mapping[str, str] | Mapping[bytes, bytes] | Mapping[Any, Any] | Iterable[tuple[Any, Any]]
)
BodyArg = bytes | bytearray | memoryview | str | Readable | Iterable[bytes] | None


#: Methods whose request carries a body by definition: an empty one is sent with a
#: Content-Length of 0 (as http.client does, and RFC 9110 8.6 asks), so the server does not
#: wait for one.
METHODS_EXPECTING_BODY = frozenset({b"POST", b"PUT", b"PATCH"})

#: The idempotent methods (RFC 9110 9.2.2): sending one twice has the effect of sending it
#: once, so a request whose fate is unknown may go out again.
IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


def _encode_text(text: str, what: str) -> bytes:
    """``text`` as UTF-8; text that has no UTF-8 form (lone surrogates) is refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"{what} cannot be encoded as UTF-8: {text[:100]!r}") from exc


def to_header_bytes(value: object, what: str) -> bytes:
    """Return a header name or value as bytes (str as UTF-8, int as decimal)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return _encode_text(value, f"header {what}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidRequest(f"header {what} must be str or bytes, not {type(value).__name__}")


def check_method(method: str | bytes) -> bytes:
    """
    Return the method as bytes after checking it is an RFC 9110 token.

    :raises InvalidRequest: if it is empty or has other characters (spaces, CR, LF...).
    """
    if type(method) is str:
        known = _CHECKED_METHODS.get(method)
        if known is not None:
            return known
    method_b = to_header_bytes(method, "method")
    if not TOKEN.fullmatch(method_b):
        raise InvalidRequest(f"invalid request method {method_b!r}")
    if type(method) is str and len(_CHECKED_METHODS) < _MAX_CHECKED_METHODS:
        _CHECKED_METHODS[method] = method_b
    return method_b


def check_target(target: str | bytes) -> bytes:
    """
    Return the request target as bytes after checking it has no whitespace or control
    characters (which would let it split the request).

    :raises InvalidRequest: if it is empty or has such characters.
    """
    if (
        type(target) is str
        and target
        and target.isascii()
        and target.isprintable()
        and " " not in target
    ):
        # The usual target: printable ASCII has no control characters, and no space.
        return target.encode("ascii")
    target_b = to_header_bytes(target, "target")
    if not target_b or FORBIDDEN_IN_TARGET.search(target_b):
        raise InvalidRequest(f"invalid request target {target_b[:200]!r}")
    return target_b


def split_absolute_url(url: str | bytes) -> tuple[bytes | None, bytes | None, bytes]:
    """
    Split an absolute URL (``https://host:8443/path?q``) into scheme, authority and path.

    A non-ASCII host name in ``url`` is encoded as IDNA 2008 / UTS 46 A-labels (see
    :func:`hyper.common.hosts.encode_host`); the rest of the URL must be ASCII already.

    :returns: ``(scheme, authority, path)``; scheme and authority are ``None`` when ``url``
        is already a path (``/path?q``) or ``*``.
    """
    if isinstance(url, str) and not url.isascii():
        url = _with_ascii_host(url)
    url_b = check_target(url)
    if url_b.startswith(b"/") or url_b == b"*":
        return None, None, url_b
    text = url_b.decode("ascii", "strict") if url_b.isascii() else None
    if text is None:
        raise InvalidRequest(f"invalid request target {url_b[:200]!r}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"request target must be a path or an http(s) URL: {text[:200]!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    netloc = parts.netloc.rpartition("@")[2]  # user info never goes on the wire
    if not netloc:
        raise InvalidRequest(f"no host in URL {text[:200]!r}")
    return parts.scheme.encode(), netloc.encode(), path.encode()


def _with_ascii_host(url: str) -> str:
    """``url`` with its host name encoded for the wire (left as it is if it is no absolute
    http(s) URL: the checks that follow refuse it)."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme.lower() not in ("http", "https") or not host or host.isascii():
        return url
    try:
        port = parts.port
    except ValueError:
        raise InvalidRequest(f"invalid port in URL {url[:200]!r}") from None
    authority = encode_host(host) + ("" if port is None else f":{port}")
    return urlunsplit((parts.scheme, authority, parts.path, parts.query, parts.fragment))


def check_scheme_is_secured(scheme: bytes, secure: bool) -> None:
    """
    Refuse to send a request for an ``https`` URL over a connection without TLS (RFC 9110
    section 4.2.2: such a request must be secured before it is sent).

    :param scheme: the scheme of the request's absolute URL.
    :param secure: whether the connection uses TLS.
    :raises InvalidRequest: for an ``https`` URL on a plaintext connection.
    """
    if scheme == b"https" and not secure:
        raise InvalidRequest(
            "an https URL cannot be requested over a plaintext connection (use secure=True)"
        )


def iter_header_pairs(headers: HeadersArg | None) -> Iterator[tuple[bytes, bytes]]:
    """
    Yield caller-supplied headers as checked ``(name, value)`` bytes pairs, in order.

    Accepts a mapping (values may be lists, for repeated fields), an
    :class:`~hyper.common.headers.HTTPHeaderMap` or an iterable of pairs. Names keep their
    case; values lose surrounding whitespace.

    :raises InvalidRequest: for a name that is not a token, or a value with CR, LF or NUL.
    """
    if headers is None:
        return
    raw = getattr(headers, "iter_raw", None)
    pairs: Iterable[tuple[Any, Any]]
    if raw is not None:
        pairs = raw()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    elif isinstance(headers, (str, bytes, bytearray)) or not isinstance(headers, Iterable):
        raise InvalidRequest(
            f"headers must be a mapping or an iterable of (name, value) pairs, "
            f"not {type(headers).__name__}"
        )
    else:
        pairs = cast("Iterable[tuple[Any, Any]]", headers)
    for item in pairs:
        if isinstance(item, (str, bytes, bytearray)):
            raise InvalidRequest(f"headers must be (name, value) pairs, got {item!r}")
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidRequest(f"headers must be (name, value) pairs, got {item!r}") from None
        name_b = to_header_bytes(name, "name")
        if not TOKEN.fullmatch(name_b):
            raise InvalidRequest(f"invalid header name {name_b[:100]!r}")
        values = value if isinstance(value, (list, tuple)) else (value,)
        for one in values:
            value_b = to_header_bytes(one, "value")
            if FORBIDDEN_IN_VALUE.search(value_b):
                raise InvalidRequest(
                    f"invalid value for header {name_b!r}: it contains CR, LF or NUL"
                )
            yield name_b, value_b.strip(b" \t")


class RequestBody:
    """
    A request body in a shape the send paths can use.

    :ivar data: the whole body when it is held in memory (bytes/str given), else ``None``.
    :ivar length: the body length when it is known in advance, else ``None``.
    """

    __slots__ = ("_source", "data", "length")

    def __init__(self, body: BodyArg) -> None:
        self.data: bytes | memoryview | None = None
        self.length: int | None = None
        self._source: Any = None
        if body is None:
            self.data = b""
            self.length = 0
        elif isinstance(body, (bytes, bytearray, memoryview)):
            if isinstance(body, bytes):
                self.data = body
            else:
                view = memoryview(body)
                # cast() needs a contiguous buffer; copy the rare one that is not.
                self.data = view.cast("B") if view.c_contiguous else view.tobytes()
            self.length = len(self.data)
        elif isinstance(body, str):
            self.data = _encode_text(body, "the body")
            self.length = len(self.data)
        elif isinstance(body, (list, tuple)):
            # Pieces already in memory: checked (and joined) now, so a bad piece is refused
            # before anything is sent, and the request can be sent again if need be.
            self.data = b"".join(_as_body_bytes(piece, "the body list") for piece in body)
            self.length = len(self.data)
        elif hasattr(body, "read"):
            self._source = body
            self.length = _remaining_file_length(body)
        elif isinstance(body, Iterable) and not isinstance(body, Mapping):
            self._source = body
        else:
            raise InvalidRequest(
                f"body must be bytes, str, a file-like object or an iterable of bytes, "
                f"not {type(body).__name__}"
            )

    @property
    def is_empty(self) -> bool:
        """Whether the body is known to be empty."""
        return self.length == 0

    def chunks(self) -> Iterator[bytes | memoryview]:
        """
        Yield the body in pieces (one piece for in-memory bodies). Text from a file opened
        in text mode, or from an iterable, is encoded as UTF-8.

        :raises InvalidRequest: if an iterable yields something that is not bytes or str.
        """
        if self.data is not None:
            if self.data:
                yield self.data
            return
        source = self._source
        if hasattr(source, "read"):
            while True:
                piece = source.read(BODY_READ_SIZE)
                if not piece:
                    return
                yield _as_body_bytes(piece, "the body's read()")
        for piece in source:
            piece = _as_body_bytes(piece, "the body iterable")
            if piece:
                yield piece


def _as_body_bytes(piece: object, source: str) -> bytes | memoryview:
    """A piece of body as a flat byte buffer (text encoded as UTF-8)."""
    if isinstance(piece, bytes):
        return piece
    if isinstance(piece, str):
        return _encode_text(piece, source)
    if isinstance(piece, (bytearray, memoryview)):
        view = memoryview(piece)
        return view.cast("B") if view.c_contiguous else view.tobytes()
    raise InvalidRequest(f"{source} gave {type(piece).__name__}, expected bytes")


def _remaining_file_length(body: Any) -> int | None:
    """The bytes left to read in a regular binary file, or None when it can't be known."""
    if isinstance(body, io.TextIOBase):
        return None
    if isinstance(body, io.BytesIO):
        return len(body.getbuffer()) - body.tell()
    try:
        status = os.fstat(body.fileno())
        position = int(body.tell())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(status.st_mode):
        return None  # a pipe or socket: its size says nothing
    return max(status.st_size - position, 0)
