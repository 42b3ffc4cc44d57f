"""Real servers for server-push, GOAWAY and stream-limit tests, and a raw ``h2`` probe.

Servers (all over TLS with the test certificate, ALPN ``h2``):

* :func:`run_nghttpd_push` -- nghttpd with ``--push=<PATH>=<PUSH_PATH>,...``
  (``-p``; ``PATH``/``PUSH_PATH`` are request paths below the docroot) serving
  :func:`make_push_docroot`.  nghttpd sends the PUSH_PROMISEs (promised
  streams 2, 4, ...) before the response HEADERS of the page, and sends none
  when the client's ``SETTINGS_ENABLE_PUSH`` is 0.
* :func:`run_nghttpd_limited` -- nghttpd with ``--max-concurrent-streams=N``
  (``-m``).  Streams beyond N opened *before* the client acknowledged the
  server SETTINGS are refused with ``RST_STREAM(REFUSED_STREAM)`` (the
  connection survives; tested); beyond N *after* the acknowledgement, nghttpd
  sends ``GOAWAY(PROTOCOL_ERROR)`` ("request HEADERS: max concurrent streams
  exceeded") and closes (seen once by hand: a compliant client cannot do it).
* :func:`run_hypercorn_app` -- hypercorn serving
  :mod:`tests.support.hypercorn_apps` (push, echo, bytes, slow routes), with
  keep-alive timeout, ``h2_max_concurrent_streams`` and
  ``keep_alive_max_requests`` from a generated TOML config (``--config``; the
  CLI has no flag for the last two and ``--keep-alive`` takes whole seconds).

What hypercorn 0.18 does, measured with :class:`H2Probe`:

* *Idle keep-alive timeout*: no GOAWAY.  After ``keep_alive_timeout`` seconds
  without an open stream (counted from the handshake, restarted whenever the
  last stream closes, paused while a stream is open) it closes the TLS
  connection (asyncio transport close): the client just reads EOF.
* *Max concurrent streams*: the limit applies at once (no wait for the SETTINGS
  ACK); opening stream N+1 gets ``GOAWAY(PROTOCOL_ERROR, last_stream_id=<stream
  N>)`` and the connection is closed.
* *keep_alive_max_requests = M*: request M+1 on a connection gets
  ``GOAWAY(NO_ERROR, last_stream_id=<that request's stream>)`` and is never
  answered (hypercorn's h2 connection is already closed when the app responds);
  the socket then stays open until the idle timeout closes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events
import h2.settings

from . import hypercorn_apps
from .certs import CertPaths
from .h2client import Header, client_ssl_context
from .http2bin import READY_PATTERN, Http2binServer, _require_modules
from .nghttpd import Docroot, NghttpdServer, make_docroot, run_nghttpd
from .processes import ServerProcess

# -- nghttpd -----------------------------------------------------------------------------------

#: Extra docroot files of the push server: name -> content.
PUSH_FILES: Mapping[str, bytes] = {
    "page.html": (
        b"<!DOCTYPE html>\n<html><head><title>push page</title>\n"
        b'<link rel="stylesheet" href="/style.css">\n<script src="/script.js"></script>\n'
        b"</head><body><p>This page comes with two pushed resources.</p></body></html>\n"
    ),
    "style.css": b"/* pushed by nghttpd */\nbody { color: #102030; margin: 0 auto; }\n" * 4,
    "script.js": b"// pushed by nghttpd\nconsole.log('hyper push test');\n" * 4,
    "big.html": b"<!DOCTYPE html>\n<html><body><p>Pushes /1m.bin.</p></body></html>\n",
}
#: nghttpd push configuration: requested page -> pushed paths (in PUSH_PROMISE order).
#: ``/big.html`` pushes 1 MiB, more than the default 64 KiB flow-control window.
NGHTTPD_PUSHES: Mapping[str, tuple[str, ...]] = {
    "/page.html": ("/style.css", "/script.js"),
    "/big.html": ("/1m.bin",),
}
#: ``SETTINGS_MAX_CONCURRENT_STREAMS`` of the limited servers.
LIMITED_MAX_CONCURRENT_STREAMS = 4


@dataclass(frozen=True)
class NghttpdPushServer(NghttpdServer):
    """A running nghttpd that pushes: ``pushes`` maps a page path to its pushed paths."""

    pushes: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class NghttpdLimitedServer(NghttpdServer):
    """A running nghttpd whose SETTINGS_MAX_CONCURRENT_STREAMS is ``max_concurrent_streams``."""

    max_concurrent_streams: int


_Server = TypeVar("_Server", bound=NghttpdServer)


def _extend(server: NghttpdServer, cls: type[_Server], **extra: Any) -> _Server:
    """``server`` as an instance of subclass ``cls`` with the ``extra`` fields."""
    base = {f.name: getattr(server, f.name) for f in dataclasses.fields(server)}
    return cls(**base, **extra)


def make_push_docroot(path: Path) -> Docroot:
    """The standard nghttpd docroot plus :data:`PUSH_FILES`."""
    docroot = make_docroot(path)
    for name, data in PUSH_FILES.items():
        (path / name).write_bytes(data)
    return Docroot(
        path=docroot.path,
        files={
            **docroot.files,
            **{name: hashlib.sha256(data).hexdigest() for name, data in PUSH_FILES.items()},
        },
        sizes={**docroot.sizes, **{name: len(data) for name, data in PUSH_FILES.items()}},
    )


@contextlib.contextmanager
def run_nghttpd_push(
    docroot: Docroot,
    log_dir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    pushes: Mapping[str, tuple[str, ...]] = NGHTTPD_PUSHES,
) -> Iterator[NghttpdPushServer]:
    """Run nghttpd over TLS pushing ``pushes`` (page path -> pushed paths)."""
    push_args = tuple(f"--push={page}={','.join(paths)}" for page, paths in pushes.items())
    with run_nghttpd(
        docroot, log_dir, cert=cert, ca_cert_path=ca_cert_path, extra_args=push_args
    ) as server:
        yield _extend(server, NghttpdPushServer, pushes=dict(pushes))


@contextlib.contextmanager
def run_nghttpd_limited(
    docroot: Docroot,
    log_dir: Path,
    *,
    cert: CertPaths,
    ca_cert_path: Path,
    max_concurrent_streams: int = LIMITED_MAX_CONCURRENT_STREAMS,
) -> Iterator[NghttpdLimitedServer]:
    """Run nghttpd over TLS with ``--max-concurrent-streams`` (and ``--echo-upload``)."""
    with run_nghttpd(
        docroot,
        log_dir,
        cert=cert,
        ca_cert_path=ca_cert_path,
        extra_args=(f"--max-concurrent-streams={max_concurrent_streams}",),
    ) as server:
        yield _extend(server, NghttpdLimitedServer, max_concurrent_streams=max_concurrent_streams)


# -- hypercorn ---------------------------------------------------------------------------------

#: Keep-alive timeout of the hypercorn fixtures that must never idle out during a test.
LONG_KEEP_ALIVE = 3600.0
#: Requests per connection before hypercorn sends GOAWAY, for fixtures that must not.
UNLIMITED_REQUESTS = 1_000_000
_APP_SPEC = f"{Path(hypercorn_apps.__file__).resolve()}:app"


@dataclass(frozen=True)
class HypercornAppServer(Http2binServer):
    """A running hypercorn serving :mod:`tests.support.hypercorn_apps` over TLS.

    Same shape as :class:`Http2binServer` (``host``, ``port``, ``tls``,
    ``ca_cert_path``, ``log_path``, ``url()``), plus the settings it runs with:
    ``keep_alive_timeout`` (seconds), ``max_concurrent_streams`` (advertised
    ``SETTINGS_MAX_CONCURRENT_STREAMS``) and ``max_requests`` (requests per
    connection before GOAWAY; see the module docstring for what happens then).
    """

    keep_alive_timeout: float = LONG_KEEP_ALIVE
    max_concurrent_streams: int = 100
    max_requests: int = UNLIMITED_REQUESTS


@contextlib.contextmanager
def run_hypercorn_app(
    log_dir: Path,
    *,
    name: str,
    cert: CertPaths,
    ca_cert_path: Path,
    keep_alive_timeout: float = LONG_KEEP_ALIVE,
    max_concurrent_streams: int = 100,
    max_requests: int = UNLIMITED_REQUESTS,
    host: str = "127.0.0.1",
) -> Iterator[HypercornAppServer]:
    """Run hypercorn (one worker, TLS, h2 via ALPN) serving the push test app."""
    _require_modules("hypercorn")
    log_dir.mkdir(parents=True, exist_ok=True)
    config_path = log_dir / f"{name}.toml"
    config_path.write_text(
        f"keep_alive_timeout = {float(keep_alive_timeout)!r}\n"
        f"h2_max_concurrent_streams = {int(max_concurrent_streams)}\n"
        f"keep_alive_max_requests = {int(max_requests)}\n"
    )
    argv = [
        sys.executable,
        "-m",
        "hypercorn",
        "--config",
        str(config_path),
        "--bind",
        f"{host}:0",  # the OS picks the port; hypercorn reports it in its ready line
        "--workers",
        "1",
        "--graceful-timeout",
        "1",
        "--log-level",
        "info",
        "--error-logfile",
        "-",
        "--access-logfile",
        "-",
        "--certfile",
        str(cert.cert_path),
        "--keyfile",
        str(cert.key_path),
        _APP_SPEC,
    ]
    with ServerProcess(
        name,
        argv,
        log_path=log_dir / f"{name}.log",
        host=host,
        ready_pattern=READY_PATTERN,
        cwd=log_dir,
    ) as proc:
        yield HypercornAppServer(
            host=host,
            port=proc.port,
            tls=True,
            ca_cert_path=ca_cert_path,
            log_path=proc.log_path,
            keep_alive_timeout=keep_alive_timeout,
            max_concurrent_streams=max_concurrent_streams,
            max_requests=max_requests,
        )


# -- raw h2 probe ------------------------------------------------------------------------------


@dataclass
class ProbeStream:
    """What :class:`H2Probe` saw on one stream (a request's or a pushed one)."""

    stream_id: int
    request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset_code: int | None = None
    parent_stream_id: int | None = None  # set for pushed streams

    @property
    def status(self) -> int | None:
        """The ``:status`` of the response, if headers arrived."""
        value = dict(self.headers).get(b":status")
        return int(value) if value is not None else None

    @property
    def path(self) -> str:
        """The ``:path`` of the (sent or promised) request."""
        return dict(self.request_headers).get(b":path", b"").decode()

    @property
    def done(self) -> bool:
        """True once the stream ended or was reset."""
        return self.ended or self.reset_code is not None


class H2Probe:
    """One raw HTTP/2 connection (socket + ``h2``, never the library under test).

    Every read is bounded by a deadline.  ``enable_push`` sets
    ``SETTINGS_ENABLE_PUSH`` in the connection preface.  Events are kept in
    ``events``; ``streams`` holds per-stream results (pushed streams included),
    ``remote_settings`` the server's SETTINGS values, ``goaway`` the GOAWAY
    event if any and ``eof`` whether the server closed the connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca_cert_path: Path | str | None,
        enable_push: bool = True,
        server_hostname: str = "localhost",
        timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.events: list[h2.events.Event] = []
        self.streams: dict[int, ProbeStream] = {}
        self.remote_settings: dict[int, int] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.eof = False
        context = client_ssl_context(str(ca_cert_path) if ca_cert_path else None)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        self.connected_at = time.monotonic()
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.ENABLE_PUSH: int(enable_push)},
        )
        self.conn.initiate_connection()
        self._flush()

    # -- sending ----------------------------------------------------------------------------

    def send_request(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: Iterable[Header] = (),
        body: bytes = b"",
        end_stream: bool = True,
    ) -> int:
        """Send a request (HEADERS, then ``body`` if any) and return its stream id; no waiting.

        With ``end_stream=False`` the request stays open for :meth:`send_data`.
        """
        stream_id: int = self.conn.get_next_available_stream_id()
        request_headers: list[Header] = [
            (":method", method),
            (":scheme", "https"),
            (":authority", f"localhost:{self.port}"),
            (":path", path),
            *headers,
        ]
        self.streams[stream_id] = ProbeStream(
            stream_id,
            request_headers=[(_b(n), _b(v)) for n, v in request_headers],
        )
        self.conn.send_headers(stream_id, request_headers, end_stream=end_stream and not body)
        self._flush()
        if body:
            self.send_data(stream_id, body, end_stream=end_stream)
        return stream_id

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send ``data`` on ``stream_id`` (it must fit the flow-control window; no waiting)."""
        if len(data) > self.conn.local_flow_control_window(stream_id):
            raise ValueError("H2Probe only sends bodies that fit the flow-control window")
        for start in range(0, max(len(data), 1), self.conn.max_outbound_frame_size):
            chunk = data[start : start + self.conn.max_outbound_frame_size]
            last = start + self.conn.max_outbound_frame_size >= len(data)
            self.conn.send_data(stream_id, chunk, end_stream=end_stream and last)
        self._flush()

    # -- waiting ----------------------------------------------------------------------------

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float | None = None,
        *,
        stop_on_close: bool = True,
    ) -> None:
        """Read and process frames until ``condition()`` holds.

        :raises AssertionError: after ``timeout`` (default: the probe's), or when the
            connection ends (EOF, or GOAWAY if ``stop_on_close``) first.
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not condition():
            if self.eof or (stop_on_close and self.goaway is not None):
                raise AssertionError(
                    f"connection ended while waiting for {what}: "
                    f"goaway={self.goaway!r} eof={self.eof}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {limit}s")
            self._read_once(remaining)

    def wait_for_settings(self, timeout: float | None = None) -> dict[int, int]:
        """Wait until the server's first SETTINGS frame arrived; return its values."""
        self.wait_for(lambda: bool(self.remote_settings), "server SETTINGS", timeout)
        return self.remote_settings

    def request(self, path: str, *, timeout: float | None = None, **kwargs: Any) -> ProbeStream:
        """Send a request and wait for its response *and* all streams it got pushed.

        :raises AssertionError: on timeout, EOF or GOAWAY first.
        """
        stream_id = self.send_request(path, **kwargs)

        def complete() -> bool:
            family = [s for s in self.streams.values() if s.parent_stream_id == stream_id]
            return self.streams[stream_id].done and all(s.done for s in family)

        self.wait_for(complete, f"response to {path}", timeout)
        return self.streams[stream_id]

    def pushes_of(self, stream_id: int) -> dict[str, ProbeStream]:
        """Streams pushed with ``stream_id`` as parent, by promised ``:path``."""
        return {s.path: s for s in self.streams.values() if s.parent_stream_id == stream_id}

    def wait_for_close(self, timeout: float) -> float:
        """Read until the server closes the connection; return seconds since connecting.

        A GOAWAY on the way is kept in ``goaway``.  :raises AssertionError: if the
        connection is still open after ``timeout``.
        """
        self.wait_for(lambda: self.eof, "connection close", timeout, stop_on_close=False)
        return time.monotonic() - self.connected_at

    def wait_for_goaway(self, timeout: float | None = None) -> h2.events.ConnectionTerminated:
        """Read until a GOAWAY arrives and return it."""
        self.wait_for(lambda: self.goaway is not None, "GOAWAY", timeout, stop_on_close=False)
        assert self.goaway is not None
        return self.goaway

    def close(self) -> None:
        """Close the socket (without GOAWAY)."""
        self.sock.close()

    def __enter__(self) -> H2Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.eof:
            try:
                self.sock.sendall(data)
            except OSError:
                self.eof = True  # the server is gone; the next read confirms it

    def _read_once(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        except (ssl.SSLError, ConnectionError):
            data = b""
        if not data:
            self.eof = True
            return
        for event in self.conn.receive_data(data):
            self.events.append(event)
            self._dispatch(event)
        self._flush()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.remote_settings[int(code)] = change.new_value
        elif isinstance(event, h2.events.PushedStreamReceived):
            assert event.pushed_stream_id is not None and event.headers is not None
            self.streams[event.pushed_stream_id] = ProbeStream(
                event.pushed_stream_id,
                request_headers=[(bytes(n), bytes(v)) for n, v in event.headers],
                parent_stream_id=event.parent_stream_id,
            )
        elif isinstance(event, h2.events.ResponseReceived):
            self._stream(event.stream_id).headers = [
                (bytes(n), bytes(v)) for n, v in event.headers
            ]
        elif isinstance(event, h2.events.DataReceived):
            self._stream(event.stream_id).body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._stream(event.stream_id).ended = True
        elif isinstance(event, h2.events.StreamReset):
            self._stream(event.stream_id).reset_code = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def _stream(self, stream_id: int) -> ProbeStream:
        return self.streams.setdefault(stream_id, ProbeStream(stream_id))


def _b(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
