"""
Flow-control window managers: the pluggable policy that decides when hyper opens its receive
windows again.

HTTP/2 lets a receiver limit how much a sender may send: each stream, and the connection as a
whole, has a window that DATA frames use up and WINDOW_UPDATE frames reopen. hyper asks a
window manager how far to reopen. A connection creates one manager (an instance of the class
given as ``window_manager``) for the connection window and one per stream.

When the manager is told about data differs by level, and this is what bounds memory:

* the **connection** manager hears of each DATA frame as it is received;
* a **stream** manager hears of data as the caller *consumes* it (reads it from the
  response). Data the caller has not read yet therefore stays within the stream's window, so
  a slow reader holds the server back instead of making hyper buffer without limit.

Padding, which never reaches the caller, is reported to the stream manager when received.
"""

from __future__ import annotations

from .exceptions import HTTP20Error


class FlowControlManagerError(HTTP20Error, ValueError):
    """A window manager returned an increment HTTP/2 cannot send (negative, or too large)."""


#: The receive window hyper advertises for each stream (SETTINGS_INITIAL_WINDOW_SIZE).
DEFAULT_STREAM_WINDOW = 4 * 1024 * 1024

#: The receive window hyper opens for the connection as a whole.
DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024

#: The largest window HTTP/2 allows (2**31 - 1).
MAX_WINDOW = 2**31 - 1


class BaseFlowControlManager:
    """
    The interface of a flow-control policy. Subclass it and implement
    :meth:`increase_window_size` (and, optionally, :meth:`blocked`).

    The attributes are kept up to date by hyper; methods of a subclass read them but must not
    change them.

    :param initial_window_size: the size the window starts at, in bytes.
    :param document_size: the size of the response body in bytes, when the server announced
        it with Content-Length (``None`` otherwise, and for the connection manager).
    """

    #: The size of the window when it was created, in bytes.
    initial_window_size: int
    #: How much the peer may still send before it must wait for hyper, in bytes (as hyper
    #: accounts it: data counts against the window when the manager is told about it).
    window_size: int
    #: The body size from Content-Length, if known. Padding may make the data that counts
    #: against the window larger than this.
    document_size: int | None

    def __init__(self, initial_window_size: int, document_size: int | None = None) -> None:
        self.initial_window_size = initial_window_size
        self.window_size = initial_window_size
        self.document_size = document_size

    def increase_window_size(self, frame_size: int) -> int:
        """
        Decide how much to reopen the window now that ``frame_size`` more bytes have been
        received (connection) or consumed (stream).

        Called before ``window_size`` is reduced by ``frame_size``.

        :param frame_size: the number of bytes; it may be zero.
        :returns: the number of bytes to add to the window (0 to send no WINDOW_UPDATE). The
            window may never exceed 2**31 - 1 bytes.
        """
        raise NotImplementedError

    def blocked(self) -> int:
        """
        Called when the window has been used up entirely: the peer cannot send on this stream
        (or connection) until it is reopened. HTTP/2 has no frame for a peer to say it is
        blocked, so hyper calls this itself when the window reaches zero. Part of the
        interface to implement, like :meth:`increase_window_size`; a policy that does not
        implement it leaves the window as :meth:`increase_window_size` made it.

        :returns: the number of bytes to add to the window; 0 leaves it closed.
        :raises NotImplementedError: here, in the base class.
        """
        raise NotImplementedError

    def account(self, frame_size: int) -> int:
        """
        Account for ``frame_size`` more bytes received (connection) or consumed (stream):
        ask :meth:`increase_window_size` (and :meth:`blocked` when the window is used up),
        update :attr:`window_size`, and return the increment to send. hyper calls this;
        subclasses do not override it.

        :param frame_size: the number of bytes.
        :returns: the WINDOW_UPDATE increment to send (0 for none).
        :raises FlowControlManagerError: if the policy returned an invalid increment, or one
            that would open the window beyond 2**31 - 1 bytes.
        """
        increase = self._checked(self.increase_window_size(frame_size))
        self.window_size += increase - frame_size
        if self.window_size <= 0:
            try:
                extra = self._checked(self.blocked())
            except NotImplementedError:
                extra = 0  # the policy has nothing to say about a closed window
            self.window_size += extra
            increase += extra
        if self.window_size > MAX_WINDOW:
            raise FlowControlManagerError(
                f"{type(self).__name__} opened the window beyond 2**31 - 1 bytes "
                f"({self.window_size})"
            )
        return increase

    def _checked(self, increment: int) -> int:
        if not isinstance(increment, int) or increment < 0:
            raise FlowControlManagerError(
                f"{type(self).__name__} asked for an invalid window increment {increment!r}"
            )
        return increment


#: However large the initial window, :class:`FlowControlManager` reopens a window that would
#: fall below this many bytes (hyper 0.7's "1kB").
REFILL_FLOOR = 1024


class FlowControlManager(BaseFlowControlManager):
    """
    hyper's default policy, the rule hyper 0.7 documents: keep the window large and reopen it
    in few, large steps.

    When data would leave the window below a quarter of its initial size, or below
    :data:`REFILL_FLOOR` (1024 bytes), it is reopened to the full initial size with one
    WINDOW_UPDATE; otherwise nothing is sent. For a bulk download with hyper's default windows
    (4 MiB per stream, 16 MiB for the connection) that is one frame per 3 MiB read from a
    stream and per 12 MiB received on the connection. The update goes out while nearly a
    quarter of the window is still open, so a server need not stop while the caller keeps
    reading.
    """

    def increase_window_size(self, frame_size: int) -> int:
        """
        Reopen to the initial size if the window would fall below a quarter of it, or below
        :data:`REFILL_FLOOR`.

        :returns: ``initial_window_size - (window_size - frame_size)`` then, else 0.
        """
        future = self.window_size - frame_size
        # future < initial / 4, in integers.
        if future * 4 < self.initial_window_size or future < REFILL_FLOOR:
            return self.initial_window_size - future
        return 0

    def blocked(self) -> int:
        """Reopen a window that reached zero to its initial size."""
        return self.initial_window_size - self.window_size
