"""
The ``hyper`` command: :func:`main` reads the command line, prepares everything that can
fail before a byte is sent (the request, its files, the proxy, the output file), then
:func:`run` sends the request, follows redirects, and writes the response.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import ssl
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from ..common.exceptions import HyperError
from ..common.response import BaseResponse
from ..common.timeout import Timeout
from ..common.trace import Timings
from ..tls import check_trust
from .bodies import read_stdin
from .connect import Connector, Protocol, check_http3_only, send, tls_context
from .errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    FileError,
    UsageError,
)
from .items import split_words
from .logs import command_logging
from .options import build_parser
from .output import OutputFile, content_length, header_value, response_head, write_body
from .progress import Progress, format_size
from .proxies import Proxy, proxy_for
from .redirects import REDIRECT_STATUSES, redirected
from .request import PreparedRequest, prepare_request


@dataclass(frozen=True)
class Console:
    """The command's standard streams, and which of them are terminals."""

    #: Standard input (binary), or ``None`` when the process has none.
    stdin: BinaryIO | None
    #: Standard output, binary (the body) and text (the heads of ``-v``).
    stdout: BinaryIO
    text: TextIO
    stderr: TextIO

    @classmethod
    def from_sys(cls) -> Console:
        """The streams of :mod:`sys` as they are now."""
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        return cls(stdin, sys.stdout.buffer, sys.stdout, sys.stderr)

    @property
    def stdin_is_terminal(self) -> bool:
        """Whether standard input is a terminal (or missing): then it is never read."""
        return self.stdin is None or _is_terminal(self.stdin)

    @property
    def stdout_is_terminal(self) -> bool:
        """Whether standard output is a terminal."""
        return _is_terminal(self.stdout)

    @property
    def stderr_is_terminal(self) -> bool:
        """Whether standard error is a terminal."""
        return _is_terminal(self.stderr)

    def waiting_for_stdin(self) -> None:
        """Say, on standard error, that the command waits for a body on standard input."""
        self.stderr.write(
            "hyper: waiting for the request body on standard input (--ignore-stdin to send none)\n"
        )
        self.stderr.flush()

    def error(self, message: str) -> None:
        """Print ``hyper: error: <message>`` on standard error."""
        self.stderr.write(f"hyper: error: {message}\n")
        self.stderr.flush()


def _is_terminal(stream: BinaryIO | TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def _write_lines(stream: TextIO, lines: Iterable[str], prefix: str = "") -> None:
    for line in lines:
        stream.write(f"{prefix}{line}\n")
    stream.flush()


# -- before sending ------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, console: Console) -> PreparedRequest:
    """
    Turn the command line into the request, reading the files it names and, when no item
    makes a body, standard input (if it is not a terminal and ``--ignore-stdin`` is not
    given). Checks ``--cacert`` and the proxy settings too, so that their errors come
    before anything is sent.

    :raises UsageError: for an invalid command line.
    :raises FileError: for a file that cannot be read.
    """
    if not args.words:
        raise UsageError("a URL is required (see hyper --help)")
    method, url, texts = split_words(args.words)
    if args.cacert is not None and not os.path.exists(args.cacert):
        raise FileError(f"--cacert: no such file or directory: {args.cacert!r}")
    read_body = None
    if console.stdin is not None and not args.ignore_stdin and not console.stdin_is_terminal:
        read_body = functools.partial(read_stdin, console.stdin, console.waiting_for_stdin)
    if args.http3 or args.http3_only:
        _require(
            "--http3" if args.http3 else "--http3-only",
            lambda: importlib.import_module("hyper.http30.stack"),
        )
    if args.trust_system:
        _require("--trust-system", lambda: check_trust("system"))
    if args.http3_only and _tcp_options(args):
        raise UsageError(
            "-4, -6 and --happy-eyeballs-delay choose how TCP connects: --http3-only "
            "makes no TCP connection"
        )
    request = prepare_request(method, url, texts, form=args.form, stdin=read_body)
    try:
        proxy = proxy_for(request.target, os.environ, args.proxy, args.noproxy)
        if args.http3_only:
            check_http3_only(request.target, proxy)
    except UsageError:
        if request.body is not None:
            request.body.close()
        raise
    return request


def _require(option: str, load: Callable[[], object]) -> None:
    """:raises UsageError: when ``load`` finds the optional package ``option`` needs (the QUIC
    stack, truststore) not installed."""
    try:
        load()
    except ImportError as exc:
        raise UsageError(f"{option}: {exc}") from None


# -- the exchange --------------------------------------------------------------------------------


def exit_status(status: int, check_status: bool, followed: bool = False) -> int:
    """
    The exit status for a final response ``status``: 0, or with ``check_status`` 3 for a
    3xx that was not followed (``followed``: ``--follow`` was given), 4 for a 4xx and 5 for
    a 5xx.
    """
    if not check_status:
        return EXIT_OK
    if 300 <= status < 400 and not followed:
        return 3
    if 400 <= status < 600:
        return status // 100
    return EXIT_OK


def _location(response: BaseResponse) -> str | None:
    """The redirect's ``Location`` (its first value), if any."""
    values: list[bytes] = response.headers.get(b"location", [])
    if not values or not values[0].strip():
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        return values[0].decode("latin-1")


def _protocol(args: argparse.Namespace) -> Protocol:
    if args.http11:
        return "http1.1"
    if args.http2:
        return "http2"
    if args.http3:
        return "http3"
    if args.http3_only:
        return "http3-only"
    return "auto"


def _tcp_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``-4``, ``-6`` and ``--happy-eyeballs-delay`` ask of the connections (only what
    was given: the rest keeps the connections' defaults)."""
    options: dict[str, Any] = {}
    if args.address_family is not None:
        options["address_family"] = args.address_family
    if args.happy_eyeballs_delay is not None:
        options["happy_eyeballs_delay"] = args.happy_eyeballs_delay
    return options


def _context_factory(args: argparse.Namespace, console: Console) -> ssl.SSLContext:
    trust = "system" if args.trust_system else "certifi"
    context = tls_context(args.cacert, args.insecure, _protocol(args), trust)
    if args.insecure:
        console.stderr.write("hyper: warning: --insecure: the TLS certificate is not verified\n")
    return context


def run(
    args: argparse.Namespace,
    request: PreparedRequest,
    console: Console,
    output: OutputFile | None = None,
) -> int:
    """Send the request (following redirects with ``--follow``), print the response, and
    return the exit status."""
    verbose = args.verbose or args.debug
    heads = console.text if verbose else console.stderr
    # --max-time runs from here: every hop and body read shares the one deadline.
    limits = Timeout(args.timeout, args.timeout, args.max_time)
    connector = Connector(
        lambda: _context_factory(args, console),
        _protocol(args),
        args.timeout,
        limits.start(),
        _tcp_options(args),
    )
    hop = 0  # redirects followed so far
    try:
        while True:
            try:
                proxy = proxy_for(request.target, os.environ, args.proxy, args.noproxy)
            except UsageError as exc:  # a redirect to a scheme whose proxy variable is wrong
                raise CommandError(str(exc)) from None
            timings = Timings(time.monotonic())  # connecting counts in the request's timings
            conn = connector.connection(request.target, proxy)
            if verbose:
                _show_request(heads, request, conn.version.value, proxy)
            with send(conn, request, connector.request_timeout, timings) as response:
                redirect = response.status in REDIRECT_STATUSES and args.follow
                location = _location(response) if redirect else None
                if location is None:
                    _write_lines(heads, response_head(response), "< " if verbose else "")
                    if verbose:
                        _write_lines(heads, [""], "< ")
                    _write_response_body(response, console, output)
                    if verbose or args.timing:
                        _show_timing(console.stderr, response)
                    return exit_status(response.status, args.check_status, args.follow)
                if verbose:
                    _write_lines(heads, [*response_head(response), ""], "< ")
                if hop >= args.max_redirs:
                    raise CommandError(
                        f"too many redirects: more than {args.max_redirs} "
                        f"(the last to {location!r}; see --max-redirs)"
                    )
                for _ in response:
                    pass  # read to its end, so that the connection can be reused
                if verbose or args.timing:
                    _show_timing(console.stderr, response)
                hop += 1
                request = redirected(request, response.status, location)
                if verbose:
                    _write_lines(heads, [f"redirect {hop}: {request.target.url}"], "* ")
    finally:
        connector.close()


def _show_request(
    heads: TextIO, request: PreparedRequest, version: str, proxy: Proxy | None
) -> None:
    """The request head as ``-v`` shows it (after the proxy's line, if there is one)."""
    if proxy is not None:
        _write_lines(heads, [f"proxy {proxy.url}"], "* ")
    line = f"{request.method} {request.target.path} {version}"
    headers = [f"{name}: {value}" for name, value in request.headers]
    _write_lines(heads, [line, *headers, ""], "> ")


def _show_timing(stream: TextIO, response: BaseResponse) -> None:
    """The response's phase timings on one line (``--timing``, ``-v``): the protocol,
    ``new`` or ``reused`` connection, then each phase in milliseconds, ``-`` for one that did
    not happen (:meth:`~hyper.common.trace.Timings.summary`)."""
    _write_lines(stream, [f"timing: {response.timings.summary()}"], "* ")


def _write_response_body(
    response: BaseResponse, console: Console, output: OutputFile | None
) -> None:
    """The body to the ``-o`` file (with a summary line) or standard output, with a progress
    line on standard error when it is a terminal and the body does not go there."""
    stderr_tty = console.stderr_is_terminal
    if output is not None:
        progress = Progress(console.stderr, content_length(response), stderr_tty)
        file = output.start()
        for piece in progress.track(response):
            file.write(piece)
        output.finish()
        size = f" ({format_size(progress.done)})" if progress.done >= 1024 else ""
        console.stderr.write(
            f"hyper: saved {progress.done} bytes{size} to {output.path} "
            f"in {progress.elapsed:.2f} s\n"
        )
        return
    stdout_tty = console.stdout_is_terminal
    progress = Progress(console.stderr, content_length(response), stderr_tty and not stdout_tty)
    json_type = "json" in header_value(response, b"content-type")
    write_body(progress.track(response), console.stdout, stdout_tty, json_type)


# -- main ----------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``hyper`` command.

    :param argv: the arguments (``sys.argv[1:]`` when ``None``).
    :returns: the exit status: 0, 1 for a network, TLS, protocol or redirect error, 2 for a
        usage error (nothing was sent), 3, 4 or 5 for an HTTP status with
        ``--check-status``, 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:  # --help, --version, or an error argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console = Console.from_sys()
    try:
        request = prepare(args, console)
    except KeyboardInterrupt:  # while standard input was read
        console.stderr.write("hyper: interrupted\n")
        return EXIT_INTERRUPTED
    except FileError as exc:
        console.error(_one_line(exc))
        return EXIT_USAGE
    except UsageError as exc:
        parser.print_usage(console.stderr)
        console.error(_one_line(exc))
        return EXIT_USAGE
    try:
        return _run_prepared(args, request, console)
    finally:
        if request.body is not None:
            request.body.close()


def _run_prepared(args: argparse.Namespace, request: PreparedRequest, console: Console) -> int:
    """Open the output file, run, and turn failures into one line and an exit status."""
    try:
        output = OutputFile(args.output) if args.output is not None else None
    except FileError as exc:
        console.error(_one_line(exc))
        return EXIT_USAGE
    done = False
    with command_logging(console.stderr, args.debug):
        try:
            status = run(args, request, console, output)
            done = True
            return status
        except KeyboardInterrupt:
            if args.debug:
                traceback.print_exc(file=console.stderr)
            console.stderr.write("hyper: interrupted\n")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader of stdout went away (``hyper URL | head``): nothing more to say.
            _silence_stdout()
            return EXIT_ERROR
        except (HyperError, OSError, CommandError) as exc:
            if args.debug:
                traceback.print_exc(file=console.stderr)
            console.error(_one_line(exc))
            return EXIT_ERROR
        finally:
            if output is not None and not done:
                output.discard()


def _silence_stdout() -> None:
    """Point standard output at the null device, so that the interpreter's final flush
    does not fail again on the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
