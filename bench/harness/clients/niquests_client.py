"""The niquests driver: a requests-like API over urllib3-future, with HTTP/2 multiplexing.

niquests runs in the peers' virtual environment only: it installs urllib3-future,
which takes the place of urllib3 (and would break requests) in the environment it
is installed in.

Two sessions share nothing: ``get``/``stream``/``post`` use a plain ``Session``,
``get_batch`` a ``Session(multiplexed=True)``, whose requests return lazy responses
until ``gather()`` (the way niquests has many requests in flight on one
connection). Both have one connection per host (``pool_maxsize=1``), HTTP/3 off
(there is no QUIC server) and no OCSP checks (the CA is local). Every response's
HTTP version is checked: a run that fell back to HTTP/1.1 is an error, not a number.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status

#: Seconds without progress before a request fails: on loopback, only a hang takes this long.
TIMEOUT = 10.0

#: ALPN protocol name -> what niquests' ``Response.http_version`` says for it.
_HTTP_VERSIONS = {"h2": 20, "http/1.1": 11}


def _import_niquests() -> ModuleType:
    try:
        import niquests
    except ImportError as exc:
        raise ClientUnavailable(f"niquests is not usable: {exc} (pip install niquests)") from exc
    return niquests


class NiquestsDriver:
    """niquests sessions verified against the benchmark CA, speaking ``target.protocol``."""

    def __init__(self, target: ClientTarget) -> None:
        niquests = _import_niquests()
        if target.protocol not in _HTTP_VERSIONS:
            raise ClientUnavailable(f"niquests driver: unknown protocol {target.protocol!r}")
        self.version = niquests.__version__
        self.origin = niquests.__file__ or "?"
        self._target = target
        self._expected = _HTTP_VERSIONS[target.protocol]
        # verify= is passed per request: a path given to Session(verify=...) was not
        # used for the TLS handshake in niquests 3.x here.
        self._verify: str | bool = target.ca if target.secure else False
        options: dict[str, Any] = {
            "pool_connections": 1,
            "pool_maxsize": 1,
            "disable_http3": True,
            "revocation_configuration": None,
            "timeout": TIMEOUT,
        }
        if target.protocol == "h2":
            options["disable_http1"] = True  # no silent fallback to HTTP/1.1
        else:
            options["disable_http2"] = True
        self._session: Any = niquests.Session(**options)
        self._multiplexed: Any = None
        if target.protocol == "h2":
            self._multiplexed = niquests.Session(multiplexed=True, **options)

    def get(self, path: str) -> int:
        """GET ``path`` and return the body length."""
        response = self._session.get(self._target.url(path), verify=self._verify)
        self._check(path, response)
        return len(response.content)

    def get_batch(self, path: str, count: int) -> list[int]:
        """Issue ``count`` lazy GETs on the multiplexed session, then ``gather()`` them."""
        if self._multiplexed is None:
            raise BenchError("niquests: HTTP/1.1 has one request in flight per connection")
        url = self._target.url(path)
        responses = [self._multiplexed.get(url, verify=self._verify) for _ in range(count)]
        self._multiplexed.gather()
        sizes = []
        for response in responses:
            self._check(path, response)
            sizes.append(len(response.content))
        return sizes

    def stream(self, path: str, chunk_size: int) -> int:
        """GET ``path`` with ``stream=True`` and iterate over the body in ``chunk_size`` pieces."""
        response = self._session.get(self._target.url(path), stream=True, verify=self._verify)
        self._check(path, response)
        total = 0
        for chunk in response.iter_content(chunk_size):
            total += len(chunk)
        return total

    def post(self, path: str, body: bytes) -> int:
        """POST ``body`` and return the response body's length."""
        response = self._session.post(self._target.url(path), data=body, verify=self._verify)
        self._check(path, response)
        return len(response.content)

    def close(self) -> None:
        """Close both sessions."""
        self._session.close()
        if self._multiplexed is not None:
            self._multiplexed.close()

    def _check(self, path: str, response: Any) -> None:
        check_status("niquests", path, response.status_code)
        if response.http_version != self._expected:
            raise BenchError(
                f"niquests spoke HTTP version {response.http_version}, expected {self._expected}"
            )
