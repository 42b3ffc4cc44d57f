"""Python HTTP client drivers, run inside the client subprocess.

Each driver wraps one library behind the small :class:`~harness.clients.base.Driver`
interface. To add a client, write a module with a driver class and register
its factory below, with the protocols it speaks; the factory imports its library
lazily, so this registry imports cleanly even when a library is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from harness.clients.base import ClientTarget, Driver


@dataclass(frozen=True)
class DriverSpec:
    """Where a driver's factory is (``"module:attribute"``) and which protocols it speaks
    (ALPN names: ``"h2"``, ``"http/1.1"``, ``"h3"``); it runs the workloads in those, except the
    ones in ``exclude``.

    ``module`` is what the import-time workload imports (None: not measured).
    ``peer`` drivers run with the peers' virtual environment's interpreter
    (``bench/.venv``, see ``harness/venv.py``); the others with the interpreter running
    ``run.py``, which imports hyper from this work tree.
    """

    factory: str
    protocols: frozenset[str]
    module: str | None = None
    peer: bool = False
    exclude: frozenset[str] = frozenset()
    #: The module whose import proves the client can run (default: ``module``).
    requires: str | None = None


_BOTH = frozenset({"h2", "http/1.1"})
_ALL = _BOTH | {"h3"}

#: Client name -> the driver speaking for it, in report order.
DRIVERS: dict[str, DriverSpec] = {
    "hyper": DriverSpec("harness.clients.hyper_client:HyperDriver", _ALL, module="hyper"),
    "http.client": DriverSpec(
        "harness.clients.stdlib_client:HttpClientDriver",
        frozenset({"http/1.1"}),
        module="http.client",
    ),
    # httpx's sync client is not thread-safe: 1,000 threads on one connection (memory)
    # would measure its failures; httpx-async stands for httpx there.
    "httpx": DriverSpec(
        "harness.clients.httpx_client:HttpxDriver",
        _BOTH,
        module="httpx",
        peer=True,
        exclude=frozenset({"memory"}),
    ),
    # The way httpx is meant to be used concurrently: only the workloads with many
    # requests in flight (one request at a time, or one big body, would only add
    # asyncio's overhead to httpx's, and take long).
    "httpx-async": DriverSpec(
        "harness.clients.httpx_client:HttpxAsyncDriver",
        frozenset({"h2"}),
        peer=True,
        requires="httpx",
        exclude=frozenset({"serial", "download", "whole", "upload"}),
    ),
    "niquests": DriverSpec(
        "harness.clients.niquests_client:NiquestsDriver", _ALL, module="niquests", peer=True
    ),
    "pycurl": DriverSpec(
        "harness.clients.pycurl_client:PycurlDriver", _ALL, module="pycurl", peer=True
    ),
}

#: Libraries whose import time is measured without a driver: name -> (module, peer).
#: requests runs in the main environment: in the peers' one, niquests' urllib3-future
#: takes the place of the urllib3 that requests needs.
IMPORT_ONLY: dict[str, tuple[str, bool]] = {"requests": ("requests", False)}


def load_driver(name: str) -> Callable[[ClientTarget], Driver]:
    """Return the factory of the driver registered as ``name``."""
    module_name, _, attr = DRIVERS[name].factory.partition(":")
    factory: Callable[[ClientTarget], Driver] = getattr(importlib.import_module(module_name), attr)
    return factory
