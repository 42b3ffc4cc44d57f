"""Shared machinery of the fuzz harnesses: a scripted peer on a socket pair, the property every
example must satisfy, hypothesis settings, and byte mutations.

hyper opens every TCP connection through ``hyper.common.sockets.open_tcp``. The harnesses
replace that one function (for the duration of an example, never in hyper's source) with
:meth:`ScriptedPeer.open_tcp`, which hands hyper one end of a :func:`socket.socketpair` and
plays a scripted server on the other end: it writes the script, shuts down its write side
(so hyper sees EOF after the last scripted byte) and records whatever hyper sends. No TCP
server, no port, no accept loop: an example costs a thread and a few system calls.

Because the peer always ends with EOF, hyper never has a reason to wait for its timeout: a
:class:`~hyper.common.exceptions.SocketTimeout` in a fuzz example means hyper waited for bytes
that could never come (a hang), and fails the property.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import hyper.common.sockets
from hyper.common.exceptions import HyperError, InvalidRequest, SocketTimeout
from hyper.common.eyeballs import DEFAULT_POLICY, ConnectPolicy
from hyper.common.trace import ConnectRecorder

#: The modules whose exception classes ``docs/api.rst`` documents (``automodule :members:``).
DOCUMENTED_MODULES = frozenset({"hyper.common.exceptions", "hyper.http20.exceptions"})

#: Read timeout given to hyper's connections. The peer always closes, so a timeout is a hang.
CLIENT_TIMEOUT = 2.0
#: Wall-clock bound on one example, in seconds (socket timeout plus slack for a slow machine).
EXAMPLE_LIMIT = 3.0
#: How long the peer thread may take to write its script and drain hyper's bytes.
PEER_TIMEOUT = 5.0

#: ``HYPER_FUZZ_EXAMPLES=N`` runs every harness with N examples (long local runs).
ENV_EXAMPLES = "HYPER_FUZZ_EXAMPLES"


def example_count(ci_default: int) -> int:
    """The number of examples for a harness: its CI default, or ``$HYPER_FUZZ_EXAMPLES``."""
    raw = os.environ.get(ENV_EXAMPLES, "").strip()
    return int(raw) if raw else ci_default


def fuzz_settings(ci_default: int) -> settings:
    """Hypothesis settings for one harness.

    Randomised on every run (more inputs seen over time), with ``print_blob`` so a failure
    prints the ``@reproduce_failure`` line that replays it; no example database, so nothing
    is written into the work tree.
    """
    return settings(
        max_examples=example_count(ci_default),
        deadline=timedelta(seconds=EXAMPLE_LIMIT),
        print_blob=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def fuzz(ci_default: int) -> Callable[[Any], Any]:
    """Decorator for a harness (above ``@given``): :func:`fuzz_settings`, plus a pytest-timeout
    that grows with the example count, so long local runs are not cut at the suite's 60 s."""
    budget = max(60.0, 60.0 + 0.2 * example_count(ci_default))

    def apply(test: Any) -> Any:
        return pytest.mark.timeout(budget)(fuzz_settings(ci_default)(test))

    return apply


# -- the property -----------------------------------------------------------------------------


def undocumented(exc: BaseException) -> str | None:
    """Why ``exc`` breaks the error contract when it comes from server bytes, or ``None``.

    Allowed: :class:`HyperError` subclasses defined in the documented exception modules.
    Refused: anything else (a bare h2/hpack/hyperframe/ssl/socket/zlib/brotli error, an
    ``AssertionError``...), a timeout (the peer closed, so waiting was a hang), and
    :class:`InvalidRequest`, which would blame the caller for what the server sent.
    """
    if not isinstance(exc, HyperError):
        return f"non-hyper exception escaped: {type(exc).__module__}.{type(exc).__qualname__}"
    if type(exc).__module__ not in DOCUMENTED_MODULES:
        return f"undocumented hyper exception class {type(exc).__module__}.{type(exc).__name__}"
    if isinstance(exc, SocketTimeout):
        return "hyper timed out although the peer had sent everything and closed (a hang)"
    if isinstance(exc, InvalidRequest):
        return "InvalidRequest (a caller error) raised for bytes the server sent"
    return None


#: How examples ended, by exception class name ("ok" for none): printed by a long local run
#: with ``-s`` (see ``report_outcomes``) to show how deep the inputs get.
OUTCOMES: collections.Counter[str] = collections.Counter()


def check_outcome(action: Callable[[], Any]) -> BaseException | None:
    """Run ``action`` and assert the fuzz property: a normal return or a documented hyper
    exception, within :data:`EXAMPLE_LIMIT` seconds. Returns the exception, if any."""
    start = time.monotonic()
    error: BaseException | None = None
    try:
        action()
    except Exception as exc:
        error = exc
        problem = undocumented(exc)
        if problem is not None:
            raise AssertionError(f"{problem}: {exc!r}") from exc
    OUTCOMES[type(error).__name__ if error is not None else "ok"] += 1
    elapsed = time.monotonic() - start
    assert elapsed < EXAMPLE_LIMIT, f"example took {elapsed:.2f}s (limit {EXAMPLE_LIMIT}s)"
    return error


# -- the scripted peer ------------------------------------------------------------------------


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def request_seen(data: bytes | bytearray) -> bool:
    """Whether ``data``, the bytes a client sent so far, hold a whole request head: an
    HTTP/1.1 head, or (after the HTTP/2 preface) a HEADERS frame."""
    if not data.startswith(H2_PREFACE):
        return b"\r\n\r\n" in data
    pos = len(H2_PREFACE)
    while pos + 9 <= len(data):
        if data[pos + 3] == 0x1:  # HEADERS
            return True
        pos += 9 + int.from_bytes(data[pos : pos + 3], "big")
    return False


class ScriptedPeer:
    """Plays the server's half of every connection hyper opens while :meth:`installed`.

    The n-th connection gets ``scripts[n]`` (connections past the list get an empty script:
    immediate EOF), then EOF. Everything hyper writes is recorded in ``received[n]``.

    By default the script is written once hyper's request has arrived (see
    :func:`request_seen`), as a server answers: written earlier, a response could be read
    (and the EOF behind it seen) while hyper checks an idle connection before sending,
    which rightly makes it reconnect. ``early=True`` writes at once, which exercises that
    check with arbitrary bytes.
    """

    def __init__(self, scripts: Sequence[bytes], early: bool = False) -> None:
        self.scripts = list(scripts)
        self.early = early
        self.received: list[bytearray] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def open_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None,
        policy: ConnectPolicy = DEFAULT_POLICY,
        recorder: ConnectRecorder | None = None,
    ) -> socket.socket:
        """Stand-in for :func:`hyper.common.sockets.open_tcp` (no phases recorded)."""
        client, server = socket.socketpair()
        with self._lock:
            index = len(self.received)
            self.received.append(bytearray())
        script = self.scripts[index] if index < len(self.scripts) else b""
        thread = threading.Thread(
            target=self._serve, args=(server, script, self.received[index]), daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return client

    def _serve(self, sock: socket.socket, script: bytes, sink: bytearray) -> None:
        asked = threading.Event()
        if self.early:
            asked.set()

        # Drain in parallel with writing, so neither side can fill its buffer and block.
        def drain() -> None:
            try:
                while data := sock.recv(65536):
                    sink.extend(data)
                    if not asked.is_set() and request_seen(sink):
                        asked.set()
            except OSError:
                pass
            asked.set()  # hyper closed without a request: nothing is waiting for the script

        sock.settimeout(PEER_TIMEOUT)
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            asked.wait(PEER_TIMEOUT)
            sock.sendall(script)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # hyper gave up and closed early: a normal outcome
        reader.join(PEER_TIMEOUT)
        sock.close()

    @contextmanager
    def installed(self) -> Iterator[ScriptedPeer]:
        """Route hyper's ``open_tcp`` to this peer inside the block; join the peer threads
        after it (bounded: hyper must have closed its sockets by then)."""
        with mock.patch.object(hyper.common.sockets, "open_tcp", self.open_tcp):
            yield self
        for thread in self._threads:
            thread.join(PEER_TIMEOUT)
            assert not thread.is_alive(), "hyper left a socket open after close()"


# -- mutations --------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_mutations: int = 4) -> bytes:
    """``base`` with a few random byte-level mutations: flips, deletions, insertions,
    duplications and a truncation. Often none, so the well-formed input is tried too."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, max_mutations))):
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "dup", "truncate"]))
        if not data and kind != "insert":
            continue
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.sampled_from([0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0x80, 0xFF]))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 32))]
        else:
            del data[pos:]
    return bytes(data)


# -- compressed bodies ------------------------------------------------------------------------


def _zstd_compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def _gzip_compress(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def _deflate_compress(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data)


def _raw_deflate_compress(data: bytes) -> bytes:
    # Some servers send "deflate" without the zlib wrapper; hyper accepts both.
    import zlib

    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


def _br_compress(data: bytes) -> bytes:
    import brotli

    # A low quality: the default (11) costs milliseconds per example for nothing.
    return bytes(brotli.compress(data, quality=4))


#: How each content coding is produced, for bodies that start out well-formed.
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gzip_compress,
    "deflate": _deflate_compress,
    "br": _br_compress,
    "zstd": _zstd_compress,
}


def encode_body(data: bytes, codings: Sequence[str], raw_deflate: bool = False) -> bytes:
    """``data`` with ``codings`` applied in order (as a Content-Encoding header lists them)."""
    for coding in codings:
        if coding == "deflate" and raw_deflate:
            data = _raw_deflate_compress(data)
        else:
            data = COMPRESSORS[coding](data)
    return data


#: Content-Encoding values: supported codings, chains, and some hyper must pass through.
content_codings = st.lists(st.sampled_from(sorted(COMPRESSORS)), min_size=1, max_size=3)


def plaintext() -> st.SearchStrategy[bytes]:
    """Bodies to compress: small random bytes, or repetitive text that compresses well."""
    return st.one_of(
        st.binary(max_size=600),
        st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 2000)),
    )


def consume(response: Any, plan: dict[str, Any]) -> None:
    """
    Read ``response`` the way ``plan["mode"]`` says (``read``, ``raw``, ``amt`` with
    ``plan["amt"]``, ``chunked``, ``iter``, ``trailers``; anything else just closes it),
    with a bound on the number of calls, then close it.
    """
    mode = plan["mode"]
    if mode == "read":
        response.read()
    elif mode == "raw":
        response.read(decode_content=False)
    elif mode == "amt":
        for _ in range(200_000):
            if not response.read(plan["amt"]):
                break
        else:
            raise AssertionError("read(amt) never reached the end of a finite body")
    elif mode in ("chunked", "iter"):
        pieces = response.read_chunked() if mode == "chunked" else iter(response)
        for count, _ in enumerate(pieces):
            assert count < 200_000, "read_chunked() never ended"
    elif mode == "trailers":
        response.read()
    _ = getattr(response, "trailers", None)
    response.close()
