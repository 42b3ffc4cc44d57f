"""
Following redirects (``--follow``): the request a redirect response asks for.

* ``303 See Other`` becomes a ``GET`` without a body (a ``HEAD`` stays ``HEAD``), and so do
  ``301`` and ``302`` answering a ``POST``, as browsers and curl do (RFC 9110 section
  15.4.2 and 15.4.3 allow it);
* ``307`` and ``308`` keep the method and the body (RFC 9110 section 15.4.8 and 15.4.9);
* a relative ``Location`` is resolved against the URL that was requested;
* a request to another origin (scheme, host or port) loses its ``Authorization`` and
  ``Cookie`` headers, which were meant for the first one.
"""

from __future__ import annotations

from urllib.parse import urljoin

from .errors import CommandError, UsageError
from .request import PreparedRequest, parse_url

#: The statuses followed.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: How many redirects are followed by default (as HTTPie; curl's default is 50).
DEFAULT_MAX_REDIRECTS = 30
#: Headers never sent on to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
#: Headers that describe the body, dropped with it.
BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


def redirected(request: PreparedRequest, status: int, location: str) -> PreparedRequest:
    """
    The request to send after ``request`` was answered with the redirect ``status`` to
    ``location``.

    :raises CommandError: if ``location`` is not a URL the command can follow (another
        scheme, credentials in it, a bad port).
    """
    try:
        target = parse_url(urljoin(request.target.url, location.strip()))
    except UsageError as exc:
        raise CommandError(f"cannot follow the redirect to {location!r}: {exc}") from None
    method, body = request.method, request.body
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
    dropped: set[str] = set()
    if body is None:
        dropped |= BODY_HEADERS
    if target.origin != request.target.origin:
        dropped |= CREDENTIAL_HEADERS
    headers = [
        ("Host", target.authority) if name.lower() == "host" else (name, value)
        for name, value in request.headers
        if name.lower() not in dropped
    ]
    return PreparedRequest(method, target, headers, body)
