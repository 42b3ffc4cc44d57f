"""
The ``hyper`` command-line tool: one request, its response on the terminal.

    $ hyper https://localhost:8443/get search==hyper X-Trace:1
    $ hyper localhost:8000/post name=Hyper count:=3
    $ hyper -L --form POST localhost:8000/post name=Hyper photo@cat.jpg

The package is split by job: :mod:`~hyper.cli.items` reads the positional words,
:mod:`~hyper.cli.request` and :mod:`~hyper.cli.bodies` build the request,
:mod:`~hyper.cli.redirects` and :mod:`~hyper.cli.proxies` decide where it goes next and
through what, :mod:`~hyper.cli.connect` opens the connections, :mod:`~hyper.cli.output` and
:mod:`~hyper.cli.progress` write the response, :mod:`~hyper.cli.logs` shows hyper's log, and
:mod:`~hyper.cli.command` ties them together in :func:`main`, the entry point. See
``docs/cli.rst`` for the user's side.
"""

from __future__ import annotations

from .command import main

__all__ = ["main"]
