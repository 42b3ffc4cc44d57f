"""Sessions for the tests of :class:`hyper.contrib.HTTP20Adapter`."""

from __future__ import annotations

import requests

from hyper.contrib import HTTP20Adapter


def session_with(adapter: HTTP20Adapter) -> requests.Session:
    """A session sending ``http`` and ``https`` URLs through ``adapter``, blind to the
    environment's proxy and CA variables."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
