"""
Host names as they go on the wire.

A host name a caller gives hyper is used four ways: it is resolved through DNS, sent in TLS
SNI, checked against the server's certificate, and written into the ``Host`` header or the
``:authority`` pseudo-header. All four need the same ASCII form, which :func:`encode_host`
computes once, where the name enters hyper.

Names with non-ASCII characters are encoded the way browsers and requests encode them:
mapped with UTS 46 (non-transitional processing) and turned into IDNA 2008 A-labels by the
``idna`` package. ``faß.de`` becomes ``xn--fa-hia.de``. Python's built-in ``idna`` codec,
which :mod:`socket`, :mod:`ssl` and hyper 0.7 use on a ``str`` host, implements IDNA 2003
instead and turns ``faß.de`` into ``fass.de``, another domain.
"""

from __future__ import annotations

import functools

import idna

from .exceptions import InvalidRequest

#: The longest label of a DNS name, in octets (RFC 1035 section 2.3.4).
MAX_LABEL_LENGTH = 63

#: The longest non-ASCII host name, in characters, that is given to IDNA processing. A DNS
#: name has at most 253 octets; the bound leaves room for characters UTS 46 maps to nothing
#: (such as soft hyphens) and keeps the mapping's work, and the cache's memory, small.
MAX_INTERNATIONAL_LENGTH = 1024


def encode_host(host: str) -> str:
    """
    The ASCII form of ``host`` that hyper resolves, sends in TLS SNI, checks the certificate
    against and writes into ``Host`` / ``:authority``.

    * IP literals pass unchanged: IPv4 addresses, and IPv6 addresses (a host with a colon),
      with or without brackets and zone id.
    * ASCII names pass as given, case included, and so do names already in A-label
      (``xn--``) form. Each label must have 1 to 63 characters; a final dot is allowed.
    * Other names are mapped with UTS 46, non-transitional (upper case is folded, ``ß`` is
      kept, ideographic full stops become dots), and encoded as IDNA 2008 A-labels:
      ``"Bücher.example"`` becomes ``"xn--bcher-kva.example"``.

    :param host: a host name or IP address, without a port.
    :returns: the host in ASCII.
    :raises InvalidRequest: naming ``host``, if it is no valid host name: an empty or
        over-long label, a character IDNA 2008 does not allow (``_``, a space, an emoji), an
        invalid A-label, a non-ASCII IPv6 literal. The ``idna`` package's error, if any, is
        its ``__cause__``.
    """
    if host.isascii():
        if ":" not in host:
            _check_labels(host)
        return host
    if ":" in host:
        raise InvalidRequest(f"invalid host name {host!r}: an IPv6 address is ASCII")
    if len(host) > MAX_INTERNATIONAL_LENGTH:
        raise InvalidRequest(
            f"invalid host name {host[:40]!r}...: longer than {MAX_INTERNATIONAL_LENGTH} "
            "characters"
        )
    return _to_a_labels(host)


def _check_labels(host: str) -> None:
    """Refuse an ASCII name with an empty or over-long label (a final dot is allowed)."""
    labels = host.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()
    for label in labels:
        if not label:
            raise InvalidRequest(f"invalid host name {host!r}: empty label")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidRequest(
                f"invalid host name {host!r}: a label is longer than {MAX_LABEL_LENGTH} characters"
            )


# Bounded: connections to the same few hosts are made again and again, and each encoding
# takes tens of microseconds; only successes are cached.
@functools.lru_cache(maxsize=256)
def _to_a_labels(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError is one
        raise InvalidRequest(f"invalid host name {host!r}: {exc}") from exc
