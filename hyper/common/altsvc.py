"""
HTTP Alternative Services (RFC 7838): reading ``Alt-Svc`` response fields, and remembering
which origins offer HTTP/3 (``h3``) and on which UDP port.

An origin that answers over TCP with ``Alt-Svc: h3=":443"; ma=86400`` says that for the next
``ma`` seconds the same host serves the same content over HTTP/3 on UDP port 443. hyper only
takes alternatives on the origin's own host (``h3=":port"``, or the host named again):
following an alternative on another host would need that host's certificate to be checked
against the origin's name, which a client gains nothing from here. ``clear`` forgets what an
origin said before.

:data:`ALT_SVC_CACHE` is the process-wide record, bounded and safe to share between threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import NamedTuple
from urllib.parse import unquote

#: How long an alternative is kept when the field gives no ``ma`` (RFC 7838 section 3).
DEFAULT_MAX_AGE = 86400

#: How many origins :data:`ALT_SVC_CACHE` remembers; the least recently used go first.
DEFAULT_MAX_ENTRIES = 1024

#: The longest ``Alt-Svc`` field value read; anything longer is ignored as a whole.
MAX_FIELD_LENGTH = 4096

#: How long, in seconds, hyper stays off HTTP/3 to a UDP port of an origin after a QUIC
#: attempt there failed or lost the race to TCP (see :meth:`AltSvcCache.mark_broken`).
BROKEN_FOR = 300.0

#: An origin: scheme, host (lower case) and port.
Origin = tuple[str, str, int]


class Alternative(NamedTuple):
    """One alternative service from an ``Alt-Svc`` field value."""

    #: The ALPN protocol id (``h3``, ``h2``...).
    protocol: str
    #: The host, or ``""`` for the origin's own host.
    host: str
    #: The port.
    port: int
    #: Seconds from now the alternative may be used (``ma``).
    max_age: int = DEFAULT_MAX_AGE


def parse_alt_svc(value: str) -> list[Alternative] | None:
    """
    Read one ``Alt-Svc`` field value.

    :returns: the alternatives it lists, in order (those that cannot be read are left out:
        a server's mistake must not cost the whole field); ``None`` for ``clear``.
    """
    text = value.strip()
    if text == "clear":
        return None
    if len(text) > MAX_FIELD_LENGTH:
        return []
    alternatives = []
    for item in _split_outside_quotes(text, ","):
        alternative = _parse_alternative(item)
        if alternative is not None:
            alternatives.append(alternative)
    return alternatives


def _parse_alternative(item: str) -> Alternative | None:
    parts = _split_outside_quotes(item, ";")
    protocol, sep, authority = parts[0].strip().partition("=")
    authority = authority.strip()
    if not sep or len(authority) < 2 or authority[0] != '"' or authority[-1] != '"':
        return None
    host, sep, port_text = authority[1:-1].rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    max_age = DEFAULT_MAX_AGE
    for parameter in parts[1:]:
        name, _, raw = parameter.strip().partition("=")
        if name.strip().lower() == "ma":
            digits = raw.strip().strip('"')
            if not digits.isdigit():
                return None
            max_age = int(digits)
    return Alternative(_unescape(protocol.strip()), host.lower(), int(port_text), max_age)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is not inside a quoted string."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


def _unescape(protocol: str) -> str:
    """The protocol id with its percent-encoding undone (RFC 7838 section 3: ``h2%3Ax``)."""
    return unquote(protocol) if "%" in protocol else protocol


class AltSvcCache:
    """
    Which origins offer HTTP/3, and on which port, until when: a bounded, thread-safe record
    fed with the ``Alt-Svc`` fields of responses.

    :param max_entries: how many origins are remembered; the least recently used go first.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Origin, tuple[int, float]] = OrderedDict()
        #: (origin, UDP port) -> until when HTTP/3 there counts as broken.
        self._broken: OrderedDict[tuple[Origin, int], float] = OrderedDict()

    def remember(self, origin: Origin, values: list[str], now: float | None = None) -> None:
        """
        Record what the ``Alt-Svc`` field ``values`` (one string per field line) of a
        response from ``origin`` say about HTTP/3: the first ``h3`` alternative on the
        origin's host replaces what was known; ``clear`` forgets it; a field without an
        ``h3`` alternative on the same host changes nothing.

        :param now: the :func:`time.monotonic` time, for tests.
        """
        if not values:
            return
        scheme, host, port = origin
        key = (scheme, host.lower(), port)
        moment = time.monotonic() if now is None else now
        for value in values:
            alternatives = parse_alt_svc(value)
            with self._lock:
                if alternatives is None:
                    self._entries.pop(key, None)
                    continue
                for alternative in alternatives:
                    if alternative.protocol != "h3" or alternative.host not in ("", key[1]):
                        continue
                    if alternative.max_age == 0:
                        self._entries.pop(key, None)
                    else:
                        self._entries[key] = (alternative.port, moment + alternative.max_age)
                        self._entries.move_to_end(key)
                        while len(self._entries) > max(self.max_entries, 0):
                            self._entries.popitem(last=False)
                    break

    def lookup(self, origin: Origin, now: float | None = None) -> int | None:
        """The UDP port ``origin`` serves HTTP/3 on, or ``None`` if unknown or expired."""
        scheme, host, port = origin
        key = (scheme, host.lower(), port)
        moment = time.monotonic() if now is None else now
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= moment:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def forget(self, origin: Origin) -> None:
        """Forget ``origin``'s alternative."""
        scheme, host, port = origin
        with self._lock:
            self._entries.pop((scheme, host.lower(), port), None)

    def mark_broken(
        self, origin: Origin, udp_port: int, seconds: float = BROKEN_FOR, now: float | None = None
    ) -> None:
        """
        Record that HTTP/3 to ``origin`` on ``udp_port`` failed (or lost the race to TCP):
        :meth:`broken` says so for ``seconds``, so that later connections go straight to TCP
        instead of waiting for QUIC again. What the origin advertised is kept: once the time
        is up, HTTP/3 is tried again.

        :param now: the :func:`time.monotonic` time, for tests.
        """
        scheme, host, port = origin
        key = ((scheme, host.lower(), port), udp_port)
        moment = time.monotonic() if now is None else now
        with self._lock:
            self._broken[key] = moment + seconds
            self._broken.move_to_end(key)
            while len(self._broken) > max(self.max_entries, 0):
                self._broken.popitem(last=False)

    def broken(self, origin: Origin, udp_port: int, now: float | None = None) -> bool:
        """Whether HTTP/3 to ``origin`` on ``udp_port`` failed less than the time given to
        :meth:`mark_broken` ago."""
        scheme, host, port = origin
        key = ((scheme, host.lower(), port), udp_port)
        moment = time.monotonic() if now is None else now
        with self._lock:
            until = self._broken.get(key)
            if until is None:
                return False
            if until <= moment:
                del self._broken[key]
                return False
            return True

    def clear(self) -> None:
        """Forget every origin, and every failure."""
        with self._lock:
            self._entries.clear()
            self._broken.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


#: The process-wide record of the origins that offer HTTP/3.
ALT_SVC_CACHE = AltSvcCache()
