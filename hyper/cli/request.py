"""
The request the ``hyper`` command sends: where it goes (:class:`Target`, from
:func:`parse_url`) and what it is (:class:`PreparedRequest`, from :func:`prepare_request`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from .. import __version__
from ..common.decoder import SUPPORTED_ENCODINGS
from ..common.exceptions import InvalidRequest
from ..common.hosts import encode_host
from ..common.util import authority_for
from .bodies import FORM_TYPE, JSON_TYPE, Body, file_body, form_body, in_memory, json_body
from .errors import UsageError
from .items import parse_items

#: Characters left as they are when quoting a URL's path and query (``%`` keeps escapes).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class Target:
    """Where the request goes."""

    secure: bool
    host: str
    port: int
    #: The request target: path and query string.
    path: str

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.secure else "http"

    @property
    def authority(self) -> str:
        """The ``Host`` header's value."""
        return authority_for(self.host, self.port, 443 if self.secure else 80)

    @property
    def url(self) -> str:
        """The absolute URL (what relative redirect locations are resolved against)."""
        return f"{self.scheme}://{self.authority}{self.path}"

    @property
    def origin(self) -> tuple[str, str, int]:
        """Scheme, host and port: requests to another origin do not get the credentials
        of this one."""
        return self.scheme, self.host, self.port


def parse_url(url: str, params: Sequence[tuple[str, str]] = ()) -> Target:
    """
    Parse ``https://host[:port]/path?query``, ``http://...`` or ``host[:port]/path`` (plain
    http), appending ``params`` to the query string. A ``#fragment`` is dropped.

    :raises UsageError: for another scheme, credentials in the URL, no or an invalid host, or
        a bad port.
    """
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"unsupported URL scheme {scheme!r} (use http or https)")
    if parts.username is not None:
        raise UsageError("credentials in the URL are not supported: send an Authorization item")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid port in URL {url!r}") from None
    if not parts.hostname:
        raise UsageError(f"no host in URL {url!r}")
    try:
        host = encode_host(parts.hostname)  # the Host header is built from it
    except InvalidRequest as exc:
        raise UsageError(str(exc)) from None
    secure = scheme == "https"
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = quote(parts.query, safe=_QUERY_SAFE)
    if params:
        query = "&".join(filter(None, [query, urlencode(params, quote_via=quote)]))
    if query:
        path += "?" + query
    return Target(secure, host, port or (443 if secure else 80), path)


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to send."""

    method: str
    target: Target
    headers: list[tuple[str, str]]
    body: Body | None


def prepare_request(
    method: str | None,
    url: str,
    texts: Sequence[str],
    *,
    form: bool = False,
    stdin: Callable[[], bytes] | None = None,
) -> PreparedRequest:
    """
    Build the request from the command line's method, URL and request items.

    The body is made of the items (a JSON object, or a form with ``form``), or is the file
    of an ``@path`` item; without either, ``stdin`` (when given) is called for one, and an
    empty result means no body. The method defaults to ``GET``, or ``POST`` with a body.
    Default headers (``Host``, ``User-Agent``, ``Accept-Encoding``, ``Accept``, and for a
    body ``Content-Type`` and ``Content-Length``) are added unless an item sets them.

    :raises UsageError: if an item or the URL is invalid.
    :raises FileError: if a file an item names cannot be read.
    """
    items = parse_items(texts)
    target = parse_url(url, items.params)
    body: Body | None = None
    accept = "*/*"
    if items.body_file is not None:
        body = file_body(items.body_file)
    elif items.fields and form:
        body = form_body(items.fields)
    elif items.fields:
        body = json_body(items.fields)
        accept = JSON_TYPE
    elif stdin is not None:
        data = stdin()
        if data:
            body = in_memory(data, FORM_TYPE if form else JSON_TYPE)
    defaults = [
        ("Host", target.authority),
        ("User-Agent", f"hyper/{__version__}"),
        ("Accept-Encoding", ", ".join(SUPPORTED_ENCODINGS)),
        ("Accept", accept),
    ]
    if body is not None:
        defaults += [("Content-Type", body.content_type), ("Content-Length", str(body.length))]
    given = {name.lower() for name, _ in items.headers}
    headers = [(n, v) for n, v in defaults if n.lower() not in given] + items.headers
    return PreparedRequest(method or ("GET" if body is None else "POST"), target, headers, body)
