"""
What the ``hyper`` command shows of hyper's log on standard error.

hyper logs on the ``hyper`` logger and, being a library, only gives it a
:class:`logging.NullHandler`. The command adds a handler of its own for the duration of a
run: warnings always (``hyper: warning: ...``, such as a ``SSLKEYLOGFILE`` that cannot be
written), and with ``--debug`` every DEBUG record too: each HTTP/2 frame sent and received,
with the decoded header blocks (see :mod:`hyper.http20.framelog`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

#: The format of a DEBUG or INFO record: milliseconds since the start, logger, message.
DEBUG_FORMAT = "[%(relativeCreated)8.1f ms] %(name)s: %(message)s"


class CommandFormatter(logging.Formatter):
    """Formats warnings and errors like the command's own (``hyper: warning: ...``), and
    other records with their time and logger (:data:`DEBUG_FORMAT`)."""

    def __init__(self) -> None:
        super().__init__(DEBUG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record on one line, as described above."""
        if record.levelno >= logging.WARNING:
            return f"hyper: {record.levelname.lower()}: {record.getMessage()}"
        return super().format(record)


@contextmanager
def command_logging(stream: TextIO, debug: bool) -> Iterator[None]:
    """
    Show hyper's warnings (and with ``debug`` its DEBUG records) on ``stream`` while the
    block runs; the ``hyper`` logger is left as it was found afterwards.
    """
    logger = logging.getLogger("hyper")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CommandFormatter())
    wanted = logging.DEBUG if debug else logging.WARNING
    handler.setLevel(wanted)
    level = logger.level
    logger.addHandler(handler)
    # Lowered only: a level set lower by the program running the command stays.
    logger.setLevel(min(logger.getEffectiveLevel(), wanted))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
