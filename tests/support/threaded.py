"""Threaded TCP/TLS server machinery shared by the scripted test servers.

:class:`ThreadedServer` owns a listening socket on a free port, accepts in a
thread and runs ``_handle(sock)`` for each connection in its own thread:

* an exception escaping a handler is recorded and re-raised as an
  ``AssertionError`` by :meth:`ThreadedServer.check` or on ``__exit__``;
* on close, the read side of every connection is shut down, so handlers
  blocked in a read see EOF and finish; a handler still running after
  ``join_timeout`` is itself reported as an error (a hang fails fast);
* a handler that returns gets a lingering close (FIN, drain, close) so the
  client never loses response bytes to a TCP RST.

Nothing here sleeps: every wait is a socket read, select or join with a deadline.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DEFAULT_TIMEOUT = 5.0
RECV_SIZE = 65536


class ServerShutdown(Exception):
    """Raised in a handler waiting for input when the server closes; never reported."""


@dataclass
class _HandlerError:
    exc: BaseException
    where: str
    text: str


class ThreadedServer:
    """Listening socket + one thread per accepted connection; subclasses define ``_handle``.

    :param tls: wrap accepted sockets with TLS (``certfile``/``keyfile`` required).
    :param alpn: ALPN protocols offered when ``tls`` (None: no ALPN).
    :param join_timeout: bounded wait for handler threads when closing.
    :param tls_handshake_timeout: bound for each server-side TLS handshake.
    :param linger: after a handler returns, how long to drain the client's input
        (waiting for its close) before closing the socket.
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        alpn: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        join_timeout: float = 5.0,
        tls_handshake_timeout: float = 5.0,
        linger: float = 2.0,
        name: str | None = None,
    ) -> None:
        self.host = host
        self.linger = linger
        self.name = name or type(self).__name__
        self.join_timeout = join_timeout
        self.tls_handshake_timeout = tls_handshake_timeout
        self.tls = tls
        self.ssl_context: ssl.SSLContext | None = None
        if tls:
            if certfile is None or keyfile is None:
                raise ValueError("tls=True needs certfile and keyfile")
            self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl_context.load_cert_chain(str(certfile), str(keyfile))
            if alpn:
                self.ssl_context.set_alpn_protocols(list(alpn))
        #: TLS handshake failures (expected in certificate-rejection tests; not errors).
        self.tls_errors: list[BaseException] = []
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._socks: set[socket.socket] = set()
        self._errors: list[_HandlerError] = []
        self._accepted = 0
        self._active = 0  # connections whose handler has not returned yet
        self._closing = threading.Event()
        self._forced = False
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """Listening port (available after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self.port)

    @property
    def authority(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def connection_count(self) -> int:
        """Number of connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def closing(self) -> threading.Event:
        """Set once :meth:`close` has begun."""
        return self._closing

    def start(self) -> ThreadedServer:
        """Bind a free port on ``host`` and start accepting."""
        if self._listener is not None:
            raise RuntimeError(f"{self.name} already started")
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, end all connections and join threads (bounded); idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(self.join_timeout)
        if self._listener is not None:
            self._listener.close()
        # Phase 1: EOF for readers; handlers busy computing or sending may finish.
        self._shutdown_socks(socket.SHUT_RD)
        deadline = time.monotonic() + self.join_timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self._record(
                AssertionError(
                    f"handler thread(s) {stuck} still running {self.join_timeout:.1f}s "
                    "after the server was closed"
                ),
                where="close()",
            )
            # Phase 2: tear the sockets down; errors from here on are consequences.
            self._forced = True
            self._shutdown_socks(socket.SHUT_RDWR)
            for thread in threads:
                thread.join(1.0)
        with self._lock:
            for sock in list(self._socks):
                sock.close()
            self._socks.clear()
        self._wake_r.close()
        self._wake_w.close()

    def check(self) -> None:
        """Raise ``AssertionError`` for handler errors recorded so far (each reported once)."""
        with self._lock:
            errors, self._errors = self._errors, []
        if not errors:
            return
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AssertionError(
            f"{self.name}: handler failed in {first.where}{more}: {first.exc!r}\n{first.text}"
        ) from first.exc

    def join_handlers(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the handler of every connection accepted so far has returned
        (or raised; its error is then recorded and :meth:`check` reports it)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._active == 0, timeout):
                raise AssertionError(
                    f"{self.name}: {self._active} handler(s) still running after {timeout}s"
                )

    def wait_connections(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until at least ``count`` connections have been accepted."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._accepted >= count, timeout):
                raise AssertionError(
                    f"{self.name}: {self._accepted} connection(s) accepted, "
                    f"expected {count} within {timeout}s"
                )

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self.check()

    # -- internals ------------------------------------------------------------------------

    def _handle(self, sock: socket.socket) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        sock, peer = self._listener.accept()
                    except BlockingIOError:
                        continue
                    except OSError:
                        return
                    self._spawn(sock, peer)

    def _spawn(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.setblocking(True)
        # Scripts often write a head and a body separately: without this, Nagle's algorithm
        # and delayed ACKs add tens of milliseconds per response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closing.is_set():
                sock.close()
                return
            self._accepted += 1
            self._active += 1
            thread = threading.Thread(
                target=self._run_connection,
                args=(sock,),
                name=f"{self.name}-conn{self._accepted}-{peer[0]}:{peer[1]}",
                daemon=True,
            )
            self._threads.append(thread)
            self._socks.add(sock)
            thread.start()  # inside the lock: join_handlers() never sees an unstarted thread
            self._lock.notify_all()

    def _run_connection(self, sock: socket.socket) -> None:
        conn_sock = sock
        try:
            if self.ssl_context is not None:
                try:
                    sock.settimeout(self.tls_handshake_timeout)
                    conn_sock = self.ssl_context.wrap_socket(sock, server_side=True)
                    conn_sock.settimeout(None)
                except (ssl.SSLError, OSError) as exc:
                    self.tls_errors.append(exc)
                    return
                with self._lock:
                    self._socks.discard(sock)
                    self._socks.add(conn_sock)
            self._handle(conn_sock)
        except ServerShutdown:
            pass
        except BaseException as exc:
            if not self._forced:
                self._record(exc, where=threading.current_thread().name)
        finally:
            with self._lock:
                self._active -= 1
                self._lock.notify_all()
            self._lingering_close(conn_sock)
            with self._lock:
                self._socks.discard(conn_sock)
                self._socks.discard(sock)

    def _lingering_close(self, sock: socket.socket) -> None:
        """Send FIN, then drain input until EOF (bounded by ``linger``) before closing.

        Closing with unread input would make the kernel send RST, which can
        destroy response bytes the client has not read yet.
        """
        with contextlib.suppress(OSError, ValueError):
            if sock.fileno() >= 0:
                socket.socket.shutdown(sock, socket.SHUT_WR)
                deadline = time.monotonic() + self.linger
                while (remaining := deadline - time.monotonic()) > 0:
                    sock.settimeout(remaining)
                    if not sock.recv(RECV_SIZE):
                        break
        with contextlib.suppress(OSError):
            sock.close()

    def _record(self, exc: BaseException, where: str) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with self._lock:
            self._errors.append(_HandlerError(exc, where, text))

    def _shutdown_socks(self, how: int) -> None:
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            # socket.socket.shutdown, not SSLSocket.shutdown: only the TCP direction is
            # shut, the TLS session stays usable for the handler's last writes.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, how)


def abort_socket(sock: socket.socket) -> None:
    """Close ``sock`` so that the peer gets a TCP RST (SO_LINGER with zero timeout)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
