"""
:class:`HTTP2TransportPlugin`: an `HTTPie <https://httpie.io/>`_ transport plugin that sends
HTTPie's ``https://`` requests through hyper, over HTTP/2 when the server offers it (ALPN
``h2``) and over HTTP/1.1 otherwise.

HTTPie finds the plugin through the ``httpie.plugins.transport.v1`` entry point that hyper
declares, so installing ``hyper[httpie]`` is enough::

    $ pip install 'hyper[httpie]'
    $ http https://nghttp2.org/httpbin/get
    HTTP/2.0 200 OK
    ...

Only ``https://`` URLs are taken over. Plain ``http://`` URLs keep HTTPie's own transport:
hyper would try to upgrade them to cleartext HTTP/2 (``Upgrade: h2c`` on the first request),
which few servers offer, adds hop-by-hop headers HTTPie does not show, and trips up some
servers and intermediaries. HTTP/2 on the web is HTTP/2 over TLS; ``http://`` stays exactly
as HTTPie sends it without the plugin.

This module imports HTTPie, which is an optional dependency of hyper: it is meant to be
loaded by HTTPie through the entry point, not imported by hyper itself.
"""

from __future__ import annotations

from httpie.plugins import TransportPlugin

from .adapter import HTTP20Adapter

__all__ = ["HTTP2TransportPlugin"]


class HTTP2TransportPlugin(TransportPlugin):  # type: ignore[misc]  # httpie is untyped
    """
    HTTPie transport plugin mounting :class:`hyper.contrib.HTTP20Adapter` on ``https://``.

    HTTPie instantiates every installed transport plugin once per run and mounts the adapter
    returned by :meth:`get_adapter` on its requests session at :attr:`prefix`, replacing
    HTTPie's own adapter for that prefix. Requests then go over HTTP/2 when the server
    negotiates ``h2`` through ALPN, and over HTTP/1.1 when it does not; HTTPie shows which
    in the status line (``HTTP/2.0 200 OK`` or ``HTTP/1.1 200 OK``).

    HTTPie options carried by the requests API work as usual (``--verify``, ``--cert``,
    ``--timeout``, ``--proxy``, ``--stream``, ``--download``, sessions, authentication);
    ``--ssl`` and ``--ciphers`` configure HTTPie's own HTTPS adapter and have no effect on
    this one.
    """

    #: Shown by ``http --debug`` among the loaded plugins.
    name = "HTTP/2 transport by hyper"
    #: A short description of the plugin.
    description = (
        "Sends https:// requests with hyper: HTTP/2 when the server offers it (ALPN), "
        "HTTP/1.1 otherwise."
    )
    #: The URL prefix the adapter is mounted on: every HTTPS URL.
    prefix = "https://"

    def get_adapter(self) -> HTTP20Adapter:
        """
        Return the transport adapter HTTPie mounts on :attr:`prefix`.

        :returns: a new :class:`hyper.contrib.HTTP20Adapter`. Its connections are pooled
            for the one HTTPie run (redirects to the same server reuse them) and go away
            with the process.
        """
        return HTTP20Adapter()
