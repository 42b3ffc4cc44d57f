"""
The ``hyper`` command-line tool: one request, its response on the terminal.

    $ hyper https://localhost:8443/get search==hyper X-Trace:1
    $ hyper localhost:8000/post name=Hyper count:=3

The work is split into small pieces: :func:`split_words` and :func:`parse_items` read the
command line (pure functions), :func:`parse_url` and :func:`prepare_request` turn it into a
request, :func:`open_connection` picks the connection class, and :func:`write_body` and
:class:`Progress` produce the output. :func:`main` ties them together and maps failures to
exit codes. See ``docs/cli.rst`` for the user's side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, TextIO
from urllib.parse import quote, urlencode, urlsplit

from . import __version__
from .common.decoder import SUPPORTED_ENCODINGS
from .common.exceptions import HyperError, InvalidRequest
from .common.grammar import TOKEN_CHARACTERS
from .common.hosts import encode_host
from .common.response import BaseResponse
from .common.util import authority_for
from .connection import HTTPConnection
from .http20.connection import HTTP20Connection
from .tls import init_context

#: Exit statuses (besides argparse's 2 for usage errors).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: The most body bytes held in memory to pretty-print a JSON body on a terminal.
JSON_SNIFF_LIMIT = 1024 * 1024

#: Seconds between two redraws of the progress bar.
PROGRESS_INTERVAL = 0.1

#: A request method: an upper-case HTTP token.
_METHOD_RE = re.compile(r"[A-Z][A-Z0-9_-]*")
#: A header name: an HTTP token (RFC 9110 section 5.6.2).
_TOKEN_RE = re.compile("[" + TOKEN_CHARACTERS + "]+")
#: Item separators, longest first: at one position ``:=`` wins over ``:``, ``==`` over ``=``.
_SEPARATORS = (":=", "==", ":", "=")
#: The characters a backslash escapes in an item's name.
_ESCAPABLE = ":=\\"
#: Characters left as they are when quoting a URL's path and query (``%`` keeps escapes).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"

ItemKind = Literal["header", "param", "field", "json"]
_KINDS: dict[str, ItemKind] = {":": "header", "==": "param", "=": "field", ":=": "json"}


class UsageError(ValueError):
    """The command line cannot be turned into a request (exit status 2)."""


# -- the command line ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestItem:
    """One ``REQUEST_ITEM``: its kind, name and value (decoded JSON for ``json``)."""

    kind: ItemKind
    name: str
    value: Any


@dataclass
class ParsedItems:
    """The request items sorted by kind, in command-line order."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    #: The JSON body's fields, or ``None`` when no item asks for a body.
    data: dict[str, Any] | None = None


def split_words(words: Sequence[str]) -> tuple[str | None, str, list[str]]:
    """
    Split the positional words into ``(METHOD or None, URL, REQUEST_ITEMs)``.

    The first word is the method when it is an upper-case token and another word (the URL)
    follows it; otherwise it is the URL.

    :raises UsageError: if there is no URL.
    """
    if not words:
        raise UsageError("no URL given")
    if len(words) >= 2 and _METHOD_RE.fullmatch(words[0]):
        return words[0], words[1], list(words[2:])
    return None, words[0], list(words[1:])


def parse_item(text: str) -> RequestItem:
    """
    Parse one request item: ``Header:value``, ``name==value`` (query parameter),
    ``field=value`` (JSON string field) or ``field:=json`` (JSON field, raw value).

    The first separator in the text decides; in the name, a backslash makes the next
    ``:``, ``=`` or ``\\`` literal. The value is taken as it is (header values are stripped
    of surrounding spaces).

    :raises UsageError: if there is no separator or no name, a header name is not a token,
        or a ``:=`` value is not valid JSON.
    """
    name: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            name.append(text[i + 1])
            i += 2
            continue
        separator = next((s for s in _SEPARATORS if text.startswith(s, i)), None)
        if separator is not None:
            return _make_item(text, _KINDS[separator], "".join(name), text[i + len(separator) :])
        name.append(text[i])
        i += 1
    raise UsageError(
        f"{text!r} is not a request item "
        "(expected Header:value, name==value, field=value or field:=json)"
    )


def _make_item(text: str, kind: ItemKind, name: str, value: str) -> RequestItem:
    if not name:
        raise UsageError(f"request item {text!r} has no name before its separator")
    if kind == "header":
        if not _TOKEN_RE.fullmatch(name):
            raise UsageError(f"invalid header name {name!r} in request item {text!r}")
        if any(char in value for char in "\r\n\0"):
            raise UsageError(f"header value with CR, LF or NUL in request item {text!r}")
        return RequestItem(kind, name, value.strip(" \t"))
    if kind == "json":
        try:
            return RequestItem(kind, name, json.loads(value))
        except ValueError as exc:
            raise UsageError(f"invalid JSON in request item {text!r}: {exc}") from None
    return RequestItem(kind, name, value)


def parse_items(texts: Iterable[str]) -> ParsedItems:
    """Parse every request item (see :func:`parse_item`); a repeated body field's last value
    wins, repeated headers and parameters are all sent."""
    parsed = ParsedItems()
    for text in texts:
        item = parse_item(text)
        if item.kind == "header":
            parsed.headers.append((item.name, item.value))
        elif item.kind == "param":
            parsed.params.append((item.name, item.value))
        else:
            if parsed.data is None:
                parsed.data = {}
            parsed.data[item.name] = item.value
    return parsed


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hyper`` command."""
    parser = argparse.ArgumentParser(
        prog="hyper",
        description="Send one HTTP/2 or HTTP/1.1 request with hyper and print the response.",
        epilog="Request items: Header:value, name==value (query), field=value (JSON string), "
        "field:=json (raw JSON). A backslash escapes ':', '=' or '\\' in a name.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="log every frame to stderr; full tracebacks"
    )
    parser.add_argument(
        "--h2",
        action="store_true",
        help="force HTTP/2 (prior knowledge for http URLs, whatever ALPN says for https)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print the request and response heads"
    )
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the TLS certificate"
    )
    parser.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_timeout,
        default=30.0,
        help="connect and read timeout (default: 30)",
    )
    parser.add_argument(
        "--check-status", action="store_true", help="exit 4 on a 4xx status, 5 on a 5xx status"
    )
    parser.add_argument(
        "method", metavar="METHOD", nargs="?", help="GET, or POST when there is a JSON body"
    )
    parser.add_argument("url", metavar="URL", help="https://host[:port]/path or host[:port]/path")
    parser.add_argument("items", metavar="REQUEST_ITEM", nargs="*", help="see below")
    return parser


# -- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the request goes."""

    secure: bool
    host: str
    port: int
    #: The request target: path and query string.
    path: str

    @property
    def authority(self) -> str:
        """The ``Host`` header's value."""
        return authority_for(self.host, self.port, 443 if self.secure else 80)


def parse_url(url: str, params: Sequence[tuple[str, str]] = ()) -> Target:
    """
    Parse ``https://host[:port]/path?query``, ``http://...`` or ``host[:port]/path`` (plain
    http), appending ``params`` to the query string.

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
        host = encode_host(parts.hostname)  # the Host header below is built from it
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
    body: bytes | None


def prepare_request(method: str | None, url: str, texts: Sequence[str]) -> PreparedRequest:
    """
    Build the request from the command line's method (``None``: GET, or POST when the items
    carry a body), URL and request items. Default headers (``Host``, ``User-Agent``,
    ``Accept-Encoding``, ``Accept``, and for a body ``Content-Type`` and ``Content-Length``)
    are added unless an item sets them.

    :raises UsageError: if an item or the URL is invalid.
    """
    items = parse_items(texts)
    target = parse_url(url, items.params)
    body = None if items.data is None else json.dumps(items.data).encode("utf-8")
    defaults = [
        ("Host", target.authority),
        ("User-Agent", f"hyper/{__version__}"),
        ("Accept-Encoding", ", ".join(SUPPORTED_ENCODINGS)),
        ("Accept", "*/*" if body is None else "application/json"),
    ]
    if body is not None:
        defaults += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    given = {name.lower() for name, _ in items.headers}
    headers = [(n, v) for n, v in defaults if n.lower() not in given] + items.headers
    return PreparedRequest(method or ("GET" if body is None else "POST"), target, headers, body)


def tls_context(cacert: str | None, insecure: bool) -> ssl.SSLContext:
    """hyper's TLS context, trusting ``cacert`` if given; ``insecure`` turns verification
    off."""
    context = init_context(cacert)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_connection(
    target: Target, context: ssl.SSLContext | None, force_h2: bool, timeout: float
) -> HTTPConnection | HTTP20Connection:
    """
    The connection for ``target``: an :class:`~hyper.HTTPConnection` (ALPN over TLS, an h2c
    upgrade in plaintext), or with ``force_h2`` an :class:`~hyper.HTTP20Connection` (prior
    knowledge in plaintext, ``force_proto="h2"`` over TLS).
    """
    if force_h2:
        return HTTP20Connection(
            target.host,
            target.port,
            secure=target.secure,
            ssl_context=context,
            force_proto="h2" if target.secure else None,
            timeout=timeout,
        )
    return HTTPConnection(
        target.host, target.port, secure=target.secure, ssl_context=context, timeout=timeout
    )


# -- output --------------------------------------------------------------------------------------


def response_head(response: BaseResponse) -> list[str]:
    """The status line (``HTTP/2 200``, ``HTTP/1.1 200 OK``) and the header lines."""
    status = f"{response.version.value} {response.status} {response.reason}".rstrip()
    return [status] + [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in response.headers.iter_raw()
    ]


def _header_value(response: BaseResponse, name: bytes) -> str:
    values: list[bytes] = response.headers.get(name, [])
    return b", ".join(values).decode("latin-1").lower()


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


def _size(count: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if count < 1024:
        return f"{count:.0f} B"
    units = ["KiB", "MiB", "GiB"]
    count /= 1024
    while count >= 1024 and len(units) > 1:
        count /= 1024
        units.pop(0)
    return f"{count:.1f} {units[0]}"


def render_progress(done: int, total: int | None, width: int = 30) -> str:
    """One progress-bar line: a percentage and bar when ``total`` is known, bytes otherwise."""
    if not total:
        return f"{_size(done)} received"
    fraction = min(done / total, 1.0)
    filled = int(fraction * width)
    return f"{fraction:4.0%} [{'#' * filled}{'.' * (width - filled)}] {_size(done)}"


class Progress:
    """A progress bar on ``stream``, redrawn at most every :data:`PROGRESS_INTERVAL` seconds;
    silent when ``stream`` is not a terminal."""

    def __init__(self, stream: TextIO, total: int | None) -> None:
        self.stream = stream
        self.total = total
        self.enabled = stream.isatty()
        self.done = 0
        self._drawn_at = 0.0
        self._width = 0

    def track(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Yield ``pieces``, counting them and redrawing the bar."""
        for piece in pieces:
            self.done += len(piece)
            if self.enabled and time.monotonic() - self._drawn_at >= PROGRESS_INTERVAL:
                self._draw()
            yield piece
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        line = render_progress(self.done, self.total)
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)
        self._drawn_at = time.monotonic()


def _content_length(response: BaseResponse) -> int | None:
    """The decoded body's length if known (not when a Content-Encoding changes it)."""
    if _header_value(response, b"content-encoding") not in ("", "identity"):
        return None
    length = _header_value(response, b"content-length")
    return int(length) if length.isdigit() else None


def save_body(response: BaseResponse, path: str, stderr: TextIO) -> None:
    """Stream the body into the file ``path``, with a progress bar on a terminal, and print
    a summary line."""
    started = time.monotonic()
    progress = Progress(stderr, _content_length(response))
    with open(path, "wb") as out:
        for piece in progress.track(response):
            out.write(piece)
    elapsed = time.monotonic() - started
    size = f" ({_size(progress.done)})" if progress.done >= 1024 else ""
    stderr.write(f"hyper: saved {progress.done} bytes{size} to {path} in {elapsed:.2f} s\n")


def _write_lines(stream: TextIO, lines: Iterable[str], prefix: str) -> None:
    for line in lines:
        stream.write(f"{prefix}{line}\n")
    stream.flush()


# -- running -------------------------------------------------------------------------------------


def exit_status(status: int, check_status: bool) -> int:
    """0, or with ``check_status`` 4 for a 4xx and 5 for a 5xx status."""
    if check_status and 400 <= status < 600:
        return status // 100
    return EXIT_OK


def run(args: argparse.Namespace, request: PreparedRequest) -> int:
    """Send the request, print the response, and return the exit status."""
    target = request.target
    context = None
    if target.secure:
        context = tls_context(args.cacert, args.insecure)
        if args.insecure:
            sys.stderr.write("hyper: warning: --insecure: the TLS certificate is not verified\n")
    head_stream = sys.stdout if args.verbose else sys.stderr
    out, err = ("> ", "< ") if args.verbose else ("", "")
    with open_connection(target, context, args.h2, args.timeout) as conn:
        conn.connect()
        if args.verbose:
            line = f"{request.method} {target.path} {conn.version.value}"
            headers = [f"{name}: {value}" for name, value in request.headers]
            _write_lines(head_stream, [line, *headers, ""], out)
        stream_id = conn.request(
            request.method, target.path, body=request.body, headers=request.headers
        )
        with conn.get_response(stream_id) as response:
            _write_lines(head_stream, response_head(response), err)
            if args.verbose:
                _write_lines(head_stream, [""], err)
            if args.output is not None:
                save_body(response, args.output, sys.stderr)
            else:
                stdout = sys.stdout.buffer
                json_type = "json" in _header_value(response, b"content-type")
                write_body(response, stdout, stdout.isatty(), json_type)
            return exit_status(response.status, args.check_status)


def _enable_debug_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(relativeCreated)8.1f ms] %(name)s: %(message)s"))
    logger = logging.getLogger("hyper")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``hyper`` command.

    :param argv: the arguments (``sys.argv[1:]`` when ``None``).
    :returns: the exit status: 0, 1 for a network, TLS or protocol error, 2 for a usage
        error, 4 or 5 for an HTTP error status with ``--check-status``, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    words = [w for w in (args.method, args.url, *args.items) if w is not None]
    try:
        method, url, texts = split_words(words)
        request = prepare_request(method, url, texts)
        if args.cacert is not None and not os.path.exists(args.cacert):
            raise UsageError(f"--cacert: no such file or directory: {args.cacert!r}")
    except UsageError as exc:
        parser.error(str(exc))  # exits with status 2
    if args.debug:
        _enable_debug_logging()
    try:
        return run(args, request)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write("hyper: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``hyper URL | head``): nothing more to say.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_ERROR
    except (HyperError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"hyper: error: {_one_line(exc)}\n")
        return EXIT_ERROR
