"""Small helpers shared by both protocols: host strings, bytes/str conversion, versions."""

from __future__ import annotations

import enum
import importlib
import ssl
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from .exceptions import InvalidRequest
from .hosts import encode_host
from .timeout import Deadline, Timeout

_Closeable = TypeVar("_Closeable", bound="ClosingContextManager")

#: The longest hyper waits in one ``poll()``, in seconds; a longer wait is several polls. A
#: signal such as Ctrl-C that arrives just before a poll starts does not interrupt it, and
#: Python runs the signal's handler (raising ``KeyboardInterrupt``) only once the poll
#: returns: the slices bound that delay, however long the caller's timeout.
POLL_SLICE = 1.0


def poll_step(deadline: float | None) -> tuple[float, bool]:
    """
    How long the next ``poll()`` of a wait until ``deadline`` may last.

    :param deadline: the :func:`time.monotonic` time the wait ends, ``None`` for never.
    :returns: the poll's timeout in seconds (at most :data:`POLL_SLICE`), and whether the
        deadline falls within it (a poll that then finds nothing ready means a time-out).
    """
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    if timeout is None or timeout > POLL_SLICE:
        return POLL_SLICE, False
    return timeout, True


class ClosingContextManager:
    """A ``with`` block that calls the object's ``close()`` at its end."""

    def close(self) -> Any:
        """Close the object (each subclass says what that means)."""
        raise NotImplementedError

    def __enter__(self: _Closeable) -> _Closeable:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HTTPVersion(enum.Enum):
    """The protocol a connection ended up speaking."""

    #: HTTP/1.1, over TLS or in plaintext.
    http11 = "HTTP/1.1"
    #: HTTP/2, over TLS (ALPN ``h2``) or in plaintext (``h2c``).
    http20 = "HTTP/2"
    #: HTTP/3, over QUIC (ALPN ``h3``).
    http30 = "HTTP/3"


def to_bytestring(value: str | bytes | bytearray | memoryview) -> bytes:
    """
    Return ``value`` as ``bytes``; text is encoded as UTF-8.

    :raises InvalidRequest: if ``value`` is neither text nor bytes-like.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidRequest(f"expected str or bytes, got {type(value).__name__}")


def to_native_string(value: str | bytes, encoding: str = "utf-8") -> str:
    """Return ``value`` as ``str``, decoding bytes with ``encoding``."""
    if isinstance(value, str):
        return value
    return value.decode(encoding)


def to_host_port_tuple(host_string: str, default_port: int) -> tuple[str, int]:
    """
    Split a host string into ``(host, port)``.

    Accepts ``"example.com"``, ``"example.com:8443"``, ``"127.0.0.1:80"``, ``"[::1]"`` and
    ``"[::1]:8443"``; a bare IPv6 address such as ``"::1"`` is taken whole. IPv6 brackets are
    removed from the host returned, and a non-ASCII name is encoded as IDNA 2008 A-labels
    (see :func:`hyper.common.hosts.encode_host`).

    :param host_string: the host, optionally with a port.
    :param default_port: the port to use when the string names none.
    :returns: the host (without brackets, in ASCII) and the port.
    :raises InvalidRequest: if the string is empty, a bracket is unbalanced, the host is not a
        valid host name, or the port is not a number from 1 to 65535.
    """
    if not isinstance(host_string, str):
        raise InvalidRequest(f"host must be a str, not {type(host_string).__name__}")
    host_string = host_string.strip()
    if not host_string:
        raise InvalidRequest("host must not be empty")
    port_text: str | None = None
    if host_string.startswith("["):
        end = host_string.find("]")
        if end == -1:
            raise InvalidRequest(f"unbalanced '[' in host {host_string!r}")
        host = host_string[1:end]
        rest = host_string[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidRequest(f"unexpected text after ']' in host {host_string!r}")
            port_text = rest[1:]
    elif host_string.count(":") == 1:
        host, port_text = host_string.split(":")
    else:
        # No colon, or several: a bare IPv6 address.
        host = host_string
    if not host:
        raise InvalidRequest(f"no host name in {host_string!r}")
    if any(ord(char) < 0x21 or char in "/@[]\x7f" for char in host):
        raise InvalidRequest(f"invalid character in host {host_string!r}")
    host = encode_host(host)
    if port_text is None:
        return host, default_port
    return host, parse_port(port_text, host_string)


def parse_port(port: str | int, context: str = "") -> int:
    """
    Validate a port given as text or int.

    :raises InvalidRequest: unless it is a whole number from 1 to 65535.
    """
    try:
        value = int(port)
        valid = str(value) == str(port) and 0 < value < 65536
    except (TypeError, ValueError):
        valid = False
    if not valid:
        where = f" in {context!r}" if context else ""
        raise InvalidRequest(f"invalid port {port!r}{where}: a port is a number from 1 to 65535")
    return value


def resolve_host_port(host: str, port: int | str | None, default_port: int) -> tuple[str, int]:
    """
    The host and port a connection's ``host`` and ``port`` arguments name: the port from
    ``port`` when given, else from ``host`` (``"example.com:8443"``), else ``default_port``.

    :raises InvalidRequest: for an unusable host or port.
    """
    if port is None:
        return to_host_port_tuple(host, default_port=default_port)
    return to_host_port_tuple(host, default_port=default_port)[0], parse_port(port)


def resolve_proxy(
    proxy_host: str | None, proxy_port: int | str | None
) -> tuple[str | None, int | None]:
    """
    The proxy a connection's ``proxy_host`` and ``proxy_port`` arguments name, the port
    defaulting to 8080; ``(None, None)`` without a proxy.

    :raises InvalidRequest: for an unusable host or port.
    """
    if proxy_host is None:
        return None, None
    return resolve_host_port(proxy_host, proxy_port, 8080)


def authority_for(host: str, port: int, default_port: int) -> str:
    """
    Return the authority (``Host`` / ``:authority`` value) for ``host`` and ``port``:
    IPv6 literals bracketed, the port left out when it is the scheme's default.
    """
    shown = f"[{host}]" if ":" in host else host
    if port == default_port:
        return shown
    return f"{shown}:{port}"


#: A ``timeout`` argument: seconds for both phases, a ``(connect, read)`` pair, a
#: :class:`~hyper.Timeout` (which may add a total deadline), or ``None``.
TimeoutArg = float | int | tuple[float | None, float | None] | Timeout | None

#: A request's timeout as it travels with the request: seconds, ``None`` (no limit), or its
#: :class:`~hyper.common.timeout.Deadline` (which carries the per-wait timeout too).
WaitArg = float | None | Deadline


def split_timeout(timeout: TimeoutArg) -> tuple[float | None, float | None]:
    """
    Split a ``timeout`` argument into (connect, read) timeouts (a :class:`~hyper.Timeout`'s
    total is :func:`total_timeout`'s).

    :param timeout: ``None`` (no timeout), a number of seconds for both, a
        ``(connect, read)`` pair whose members may be ``None``, or a :class:`~hyper.Timeout`.
    :raises InvalidRequest: for negative numbers or other types.
    """
    if isinstance(timeout, Timeout):
        return timeout.connect, timeout.read
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise InvalidRequest(
                f"timeout must be an int, float or None, a (connect, read) pair of them, or "
                f"a hyper.Timeout, not a tuple of {len(timeout)}"
            )
        connect, read = timeout
    else:
        connect = read = timeout
    for value in (connect, read):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(
                "timeout must be an int, float or None, a (connect, read) pair of them, or a "
                f"hyper.Timeout, not {type(value).__name__} {value!r}"
            )
        if not value >= 0:  # also refuses NaN
            raise InvalidRequest(f"timeout must be a number of seconds >= 0, not {timeout!r}")
    return connect, read


def total_timeout(timeout: TimeoutArg) -> float | None:
    """The total deadline of a ``timeout`` argument, in seconds (only a
    :class:`~hyper.Timeout` has one)."""
    return timeout.total if isinstance(timeout, Timeout) else None


class DefaultTimeout(enum.Enum):
    """The type of :data:`CONNECTION_TIMEOUT`: an enum, so that a type checker tells it apart
    from a number of seconds and from ``None`` (which means waiting without limit)."""

    #: The connection's own timeout applies.
    CONNECTION = "the connection's timeout"


#: The default of every per-request ``timeout`` argument: the request waits as long as its
#: connection's ``timeout`` says.
CONNECTION_TIMEOUT = DefaultTimeout.CONNECTION

#: A per-request ``timeout`` argument: a :data:`TimeoutArg`, :data:`CONNECTION_TIMEOUT`, or a
#: :class:`~hyper.common.timeout.Deadline` already running (one total deadline shared by
#: several requests; :class:`hyper.HTTPConnection` hands its requests' on this way).
RequestTimeoutArg = TimeoutArg | DefaultTimeout | Deadline


def request_timeouts(
    timeout: RequestTimeoutArg,
    connect: float | None,
    read: float | None,
    total: float | None = None,
) -> tuple[WaitArg, WaitArg]:
    """
    The (connect, read) timeouts of one request, called when the request starts. With a
    total deadline both are the request's :class:`~hyper.common.timeout.Deadline`, which
    carries both timeouts and the time the request must be over by.

    :param timeout: the request's ``timeout`` argument.
    :param connect: the connection's connect timeout, used with :data:`CONNECTION_TIMEOUT`.
    :param read: the connection's read timeout, used with :data:`CONNECTION_TIMEOUT`.
    :param total: the connection's total deadline, used with :data:`CONNECTION_TIMEOUT`.
    :raises InvalidRequest: for a ``timeout`` the constructors refuse too (see
        :func:`split_timeout`).
    """
    if timeout is CONNECTION_TIMEOUT:
        if total is None:
            return connect, read
        deadline = Deadline(connect, read, total)
        return deadline, deadline
    if isinstance(timeout, Deadline):
        return timeout, timeout
    if isinstance(timeout, Timeout):
        started = timeout.start()
        if started is None:
            return timeout.connect, timeout.read
        return started, started
    return split_timeout(timeout)


def check_ssl_context(ssl_context: object) -> None:
    """
    Refuse an ``ssl_context`` argument that is not an :class:`ssl.SSLContext` (or ``None``).

    :raises InvalidRequest: naming the type given.
    """
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise InvalidRequest(
            f"ssl_context must be an ssl.SSLContext or None, not {type(ssl_context).__name__}"
        )


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """
    A module ``__getattr__`` (PEP 562) that imports ``names`` on first use: each name maps
    to the module, relative to ``package``, that defines it. The value found is stored in the
    package's namespace, so the lookup happens once.

    :param package: the ``__name__`` of the package whose attributes these are.
    :param names: attribute name -> relative module name (e.g. ``".http20.connection"``).
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
