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
    (ALPN names: ``"h2"``, ``"http/1.1"``); it runs exactly the workloads in those."""

    factory: str
    protocols: frozenset[str]


_BOTH = frozenset({"h2", "http/1.1"})

#: Client name -> the driver speaking for it, in report order.
DRIVERS: dict[str, DriverSpec] = {
    "hyper": DriverSpec("harness.clients.hyper_client:HyperDriver", _BOTH),
    "http.client": DriverSpec(
        "harness.clients.stdlib_client:HttpClientDriver", frozenset({"http/1.1"})
    ),
    "httpx": DriverSpec("harness.clients.httpx_client:HttpxDriver", _BOTH),
    # HTTP/2 only: one request at a time on HTTP/1.1 says nothing httpx does not.
    "httpx-async": DriverSpec("harness.clients.httpx_client:HttpxAsyncDriver", frozenset({"h2"})),
}


def load_driver(name: str) -> Callable[[ClientTarget], Driver]:
    """Return the factory of the driver registered as ``name``."""
    module_name, _, attr = DRIVERS[name].factory.partition(":")
    factory: Callable[[ClientTarget], Driver] = getattr(importlib.import_module(module_name), attr)
    return factory
