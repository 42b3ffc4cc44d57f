"""
The errors the ``hyper`` command reports itself, and its exit statuses.

Errors from hyper (:class:`~hyper.common.exceptions.HyperError`) and from the operating
system (:class:`OSError`) are reported as they are; these classes cover what only the command
knows about: its command line, the files named on it, and following redirects.
"""

from __future__ import annotations

#: A response was received and written (whatever its status without ``--check-status``).
EXIT_OK = 0
#: A network, TLS, protocol or output error, or a redirect that could not be followed.
EXIT_ERROR = 1
#: A usage error, found before anything was sent.
EXIT_USAGE = 2
#: Interrupted with Control-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """The command line cannot be turned into a request (exit status 2). The usage summary
    is printed above the message."""


class FileError(UsageError):
    """A file named on the command line cannot be read (or the output file cannot be
    written). Found before anything is sent; the message names the file and is printed on
    its own, without the usage summary (exit status 2)."""


class CommandError(Exception):
    """The exchange cannot go on for a reason of the command's own: too many redirects, or
    a redirect to a URL it cannot follow (with ``--http3-only``, one over plain HTTP or
    through a proxy) (exit status 1)."""
