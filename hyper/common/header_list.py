"""
The request header list of HTTP/2 and HTTP/3: pseudo-header fields first, ``Host`` as
``:authority``, the connection-specific fields of HTTP/1.1 left out, and a
``Content-Length`` that agrees with the body (RFC 9113 section 8.2, RFC 9114 section 4.2).

Both protocols carry the same fields under the same rules, so both connection classes build
their requests here.
"""

from __future__ import annotations

from .decoder import SUPPORTED_ENCODINGS
from .exceptions import InvalidRequest
from .grammar import CONNECTION_SPECIFIC_FIELDS
from .request import (
    METHODS_EXPECTING_BODY,
    HeadersArg,
    check_method,
    check_scheme_is_secured,
    iter_header_pairs,
    split_absolute_url,
)

__all__ = [
    "ACCEPT_ENCODING",
    "HeaderList",
    "build_header_list",
    "declared_length",
    "finish_header_list",
]

#: A header list as HTTP/2 and HTTP/3 carry it: ``(name, value)`` pairs, pseudo-headers first.
HeaderList = list[tuple[bytes, bytes]]

#: Sent unless the caller sets Accept-Encoding: every coding hyper decodes transparently.
ACCEPT_ENCODING = (b"accept-encoding", ", ".join(SUPPORTED_ENCODINGS).encode("ascii"))


def declared_length(headers: HeaderList) -> int | None:
    """The Content-Length a request's headers announce, or None.

    :raises InvalidRequest: if a value is not a number, or two values differ.
    """
    declared: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit() or not value.isascii():
                raise InvalidRequest(f"invalid Content-Length {value[:30]!r}")
            if declared is not None and int(value) != declared:
                raise InvalidRequest("two different Content-Length values")
            declared = int(value)
    return declared


def build_header_list(
    method: str | bytes,
    url: str | bytes,
    headers: HeadersArg | None,
    body_length: int | None,
    *,
    scheme: bytes,
    authority: bytes,
    secure: bool,
) -> HeaderList:
    """
    The header list of a request: the four pseudo-headers, then the caller's fields (names
    lower-cased), with ``Accept-Encoding`` added unless the caller set it.

    :param method: the request method.
    :param url: the path, or an absolute URL whose authority replaces the connection's.
    :param headers: the caller's headers (a mapping or pairs), or ``None``.
    :param body_length: the body's length when known (``None`` for a streamed body).
    :param scheme: the connection's scheme (``b"https"``).
    :param authority: the connection's authority (``b"host:port"``).
    :param secure: whether the connection uses TLS (an ``https`` URL needs it).
    :raises InvalidRequest: for an invalid method, URL or header, or a ``Content-Length``
        the body contradicts.
    """
    url_scheme, url_authority, path = split_absolute_url(url)
    if url_scheme is not None:
        check_scheme_is_secured(url_scheme, secure)
    pseudo = [
        (b":method", check_method(method)),
        (b":scheme", url_scheme or scheme),
        (b":authority", url_authority or authority),
        (b":path", path),
    ]
    if headers is None:
        pseudo.append(ACCEPT_ENCODING)
        if body_length or (body_length == 0 and pseudo[0][1] in METHODS_EXPECTING_BODY):
            pseudo.append((b"content-length", str(body_length).encode()))
        return pseudo
    pseudo.extend((name.lower(), value) for name, value in iter_header_pairs(headers))
    if not any(name == b"accept-encoding" for name, _ in pseudo):
        pseudo.append(ACCEPT_ENCODING)
    return finish_header_list(pseudo, body_length)


def finish_header_list(headers: HeaderList, body_length: int | None) -> HeaderList:
    """
    Apply the rules of HTTP/2 and HTTP/3 to a request header list (pseudo-headers first):
    drop connection-specific fields and those ``Connection`` names, move ``Host`` to
    ``:authority``, keep ``TE`` only as ``trailers``, and add or check ``Content-Length``.

    :raises InvalidRequest: if a ``Content-Length`` is not a number, or contradicts the
        body's length.
    """
    dropped = set(CONNECTION_SPECIFIC_FIELDS)
    for name, value in headers:
        if name == b"connection":
            tokens = (token.strip().lower() for token in value.split(b","))
            dropped.update(t for t in tokens if t and not t.startswith(b":"))
    result: HeaderList = []
    host: bytes | None = None
    has_length = False
    for name, value in headers:
        if name in dropped:
            continue
        if name == b"host":
            host = host or value
            continue
        if name == b"te" and value.lower() != b"trailers":
            continue  # the only TE value HTTP/2 and HTTP/3 allow
        if name == b"content-length":
            has_length = True
        result.append((name, value))
    if host is not None:
        result = [(b":authority", host) if n == b":authority" else (n, v) for n, v in result]
    method = result[0][1] if result and result[0][0] == b":method" else b""
    expected = body_length or (body_length == 0 and method in METHODS_EXPECTING_BODY)
    if expected and not has_length:
        result.append((b"content-length", str(body_length).encode()))
    elif has_length:
        # The length announced must be the length sent (RFC 9113 8.1.1, RFC 9114 4.1.2).
        declared = declared_length(result)
        if body_length is not None and declared != body_length:
            raise InvalidRequest(
                f"Content-Length says {declared} but the body has {body_length} bytes"
            )
    return result
