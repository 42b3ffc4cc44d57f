"""
What tests look at inside an :class:`hyper.HTTP20Connection` that its public API does not
show: its transports, the streams open on them, what they buffer; and the socket an
:class:`hyper.HTTP11Connection` holds between requests.

Every such look goes through here, so that the tests name what they check (``open_ids``,
``buffered``) and a change to the connection's internals touches one file.
"""

from __future__ import annotations

from collections.abc import Callable

from hyper import HTTP11Connection, HTTP20Connection, HTTP20Push, HTTP20Response
from hyper.common.bufsocket import BufferedSocket
from hyper.http20.stream import Stream
from hyper.http20.transport import Transport


def http11_socket(conn: HTTP11Connection) -> BufferedSocket | None:
    """The socket an HTTP/1.1 connection holds (``None`` once it closed it)."""
    return conn._sock


def transport(conn: HTTP20Connection) -> Transport | None:
    """The transport new requests go on (``None`` before the first connect)."""
    return conn._transport


def draining(conn: HTTP20Connection) -> list[Transport]:
    """The older transports still finishing their streams after a GOAWAY."""
    return [t for t in conn._draining if t.alive()]


def transports(conn: HTTP20Connection) -> list[Transport]:
    """The current transport and every draining one."""
    current = transport(conn)
    return ([current] if current is not None else []) + draining(conn)


def open_streams(conn: HTTP20Connection) -> dict[int, Stream]:
    """The streams open (in the protocol's sense) on every transport, by id."""
    found: dict[int, Stream] = {}
    for each in transports(conn):
        found.update(each.engine.streams)
    return found


def open_ids(conn: HTTP20Connection) -> set[int]:
    """The ids of the open streams."""
    return set(open_streams(conn))


def buffered(conn: HTTP20Connection) -> int:
    """Body bytes held for open streams and uncollected pushes, not yet read."""
    total = sum(stream.buffered for stream in open_streams(conn).values())
    for each in transports(conn):
        for queue in each.promises.values():
            total += sum(stream.buffered for stream in queue)
    return total


def uncollected_pushes(conn: HTTP20Connection) -> dict[int, int]:
    """How many accepted pushes wait to be collected, by parent stream id."""
    found: dict[int, int] = {}
    for each in transports(conn):
        for parent, queue in each.promises.items():
            if queue:
                found[parent] = found.get(parent, 0) + len(queue)
    return found


def fileno(conn: HTTP20Connection) -> int:
    """The file descriptor of the current transport's socket."""
    current = transport(conn)
    assert current is not None and current.sock is not None, "not connected"
    return current.sock.fileno()


def connected(conn: HTTP20Connection) -> bool:
    """Whether the connection has an open socket."""
    current = transport(conn)
    return current is not None and current.sock is not None


def stream_of(response: HTTP20Response | HTTP20Push) -> Stream:
    """The stream record a response or push reads from."""
    return response._stream.stream


def read_until(conn: HTTP20Connection, ready: Callable[[], bool]) -> None:
    """Read the current transport (as a waiting request would) until ``ready()`` holds."""
    current = transport(conn)
    assert current is not None, "not connected"
    current.read_until(ready)
