"""The options of the ``hyper`` command (its :mod:`argparse` parser)."""

from __future__ import annotations

import argparse
import math
import socket
from typing import Any, Protocol

from .. import __version__
from ..common.eyeballs import DEFAULT_DELAY, MIN_DELAY
from .redirects import DEFAULT_MAX_REDIRECTS

#: The usage line.
USAGE = "hyper [OPTIONS] [METHOD] URL [REQUEST_ITEM ...]"

_EPILOG = """\
request items:
  Header:value     a request header
  name==value      a query-string parameter
  field=value      a body field (JSON string; a form field with --form)
  field:=json      a body field with a raw JSON value
  field=@file      a body field holding the text of a file
  field:=@file     a body field holding the JSON in a file
  field@file       a file upload (with --form: a multipart/form-data body)
  @file            the body is the file, as it is

  A backslash escapes ':', '=', '@' or '\\' in a name. Without body items,
  piped standard input is the body (unless --ignore-stdin).

exit status:
  0 ok, 1 network/TLS/protocol error, 2 usage error (nothing sent),
  3/4/5 a 3xx/4xx/5xx status with --check-status, 130 interrupted.
"""


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_DELAY <= value < math.inf:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, at least {MIN_DELAY}, got {text!r}"
        )
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}")
    return int(text)


class _OptionGroup(Protocol):
    """A parser or an argument group: what options are added to."""

    def add_argument(self, *names: str, **settings: Any) -> Any:
        """Add an option."""


def _switch(group: _OptionGroup, *names: str, help: str, dest: str | None = None) -> None:
    """An option without a value (``store_true``)."""
    extra = {"dest": dest} if dest is not None else {}
    group.add_argument(*names, action="store_true", help=help, **extra)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hyper`` command."""
    parser = argparse.ArgumentParser(
        prog="hyper",
        usage=USAGE,
        description="Send an HTTP/2 or HTTP/1.1 request with hyper and print the response.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "words",
        metavar="[METHOD] URL [REQUEST_ITEM ...]",
        nargs="*",
        help="the method (GET, or POST with a body), the URL and the request items",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    output = parser.add_argument_group("output")
    _switch(output, "-v", "--verbose", help="print the request and response heads")
    _switch(
        output,
        "--debug",
        help="-v, and log every HTTP/2 frame and header block to stderr; full tracebacks",
    )
    _switch(
        output,
        "--timing",
        help="print each response's phase timings on one line to stderr (-v prints them too)",
    )
    output.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    _switch(
        output, "--check-status", help="exit 3, 4 or 5 on a 3xx (not followed), 4xx or 5xx status"
    )

    body = parser.add_argument_group("request body")
    _switch(
        body,
        "-f",
        "--form",
        help="send body fields as a form (urlencoded; multipart with field@file items)",
    )
    _switch(body, "--ignore-stdin", help="never read standard input for a body")

    redirects = parser.add_argument_group("redirects")
    _switch(redirects, "-L", "--follow", help="follow 301, 302, 303, 307 and 308 redirects")
    redirects.add_argument(
        "--max-redirs",
        metavar="N",
        type=_count,
        default=DEFAULT_MAX_REDIRECTS,
        help=f"with --follow, fail after N redirects (default: {DEFAULT_MAX_REDIRECTS})",
    )

    connection = parser.add_argument_group("connection")
    protocol = connection.add_mutually_exclusive_group()
    _switch(protocol, "--http1.1", dest="http11", help="speak HTTP/1.1 only")
    _switch(
        protocol,
        "--http2",
        "--h2",
        dest="http2",
        help="speak HTTP/2 only (prior knowledge for http:// URLs)",
    )
    _switch(
        protocol,
        "--http3",
        dest="http3",
        help="for https:// URLs without a proxy, try HTTP/3 (QUIC) first and fall back to "
        "HTTP/2 or HTTP/1.1 over TCP",
    )
    _switch(
        protocol,
        "--http3-only",
        dest="http3_only",
        help="speak HTTP/3 only (https:// URLs, no proxy)",
    )
    connection.add_argument(
        "--proxy",
        metavar="URL",
        help="HTTP proxy, http://[user:password@]host[:port] ('' for none; default: "
        "the *_proxy environment variables)",
    )
    connection.add_argument(
        "--noproxy",
        metavar="HOSTS",
        help="comma-separated hosts to reach without the proxy ('*': all); replaces NO_PROXY",
    )
    connection.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_timeout,
        default=30.0,
        help="connect and read timeout (default: 30)",
    )
    connection.add_argument(
        "--max-time",
        metavar="SECONDS",
        type=_timeout,
        default=None,
        help="the longest the whole transfer may take: connecting, every request and "
        "redirect followed, and reading the body (default: no limit)",
    )
    family = connection.add_mutually_exclusive_group()
    for digit, value in (("4", socket.AF_INET), ("6", socket.AF_INET6)):
        family.add_argument(
            f"-{digit}",
            f"--ipv{digit}",
            dest="address_family",
            action="store_const",
            const=value,
            help=f"resolve host names to IPv{digit} addresses only, and connect over IPv{digit}",
        )
    connection.add_argument(
        "--happy-eyeballs-delay",
        metavar="SECONDS",
        type=_delay,
        default=None,
        help="how long a TCP connection attempt has to itself before the next address is "
        f"tried beside it (default: {DEFAULT_DELAY:g}, at least {MIN_DELAY:g})",
    )
    _switch(connection, "-k", "--insecure", help="do not verify the TLS certificate")
    trust = connection.add_mutually_exclusive_group()
    trust.add_argument(
        "--cacert", metavar="FILE", help="trust the CA certificates in FILE (and no others)"
    )
    _switch(
        trust,
        "--trust-system",
        help="verify with the operating system's trust store instead of certifi's CA bundle "
        "(needs the truststore extra)",
    )
    return parser
