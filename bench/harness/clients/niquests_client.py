"""The niquests driver: a requests-like API over urllib3-future, with HTTP/2 multiplexing.

niquests runs in the peers' virtual environment only: it installs urllib3-future,
which takes the place of urllib3 (and would break requests) in the environment it
is installed in.

Two sessions share nothing: ``get``/``stream``/``post`` use a plain ``Session``,
``get_batch`` a ``Session(multiplexed=True)``, whose requests return lazy responses
until ``gather()`` (the way niquests has many requests in flight on one
connection). Both have one connection per host (``pool_maxsize=1``) and no OCSP
checks (the CA is local). Only the workload's protocol is enabled: HTTP/3 is off for
HTTP/2 and HTTP/1.1, and for HTTP/3 both HTTP/1.1 and HTTP/2 are off, which makes
niquests speak QUIC at once (without waiting for an ``Alt-Svc`` header). Every
response's HTTP version is checked: a run that spoke another one is an error, not a
number.

Over HTTP/3, the multiplexed session's first request goes alone: when its first
requests were 100 at once on a new connection made after the plain session's (the
warm-up), qh3 failed with ``ValueError: reserved stream is missing`` (niquests 3.21,
qh3 2.1), every time; after one request on it, batches of 100 run.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from harness.clients.base import BenchError, ClientTarget, ClientUnavailable, check_status

#: Seconds without progress before a request fails: on loopback, only a hang takes this long.
TIMEOUT = 10.0

#: ALPN protocol name -> what niquests' ``Response.http_version`` says for it.
_HTTP_VERSIONS = {"h2": 20, "http/1.1": 11, "h3": 30}


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
            "revocation_configuration": None,
            "timeout": TIMEOUT,
        }
        # Everything but the workload's protocol is off: no silent fallback.
        for protocol, option in (("http/1.1", "disable_http1"), ("h2", "disable_http2")):
            options[option] = target.protocol != protocol
        options["disable_http3"] = target.protocol != "h3"
        self._session: Any = niquests.Session(**options)
        self._multiplexed: Any = None
        self._multiplexed_used = False
        if target.protocol != "http/1.1":
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
        if self._target.protocol == "h3" and not self._multiplexed_used:
            # Connect with one request first (see the module's docstring).
            self._multiplexed.get(url, verify=self._verify)
            self._multiplexed.gather()
        self._multiplexed_used = True
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
