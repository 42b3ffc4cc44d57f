"""Python HTTP/2 client drivers, run inside the client subprocess.

Each driver wraps one library behind the small :class:`~harness.clients.base.Driver`
interface. To add a client, write a module with a driver class and register
its factory below; the factory imports its library lazily, so this registry
imports cleanly even when a library is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from harness.clients.base import ClientTarget, Driver

#: Client name -> "module:factory" building a connected driver from a ClientTarget.
DRIVERS: dict[str, str] = {
    "hyper": "harness.clients.hyper_client:HyperDriver",
    "httpx": "harness.clients.httpx_client:HttpxDriver",
    "httpx-async": "harness.clients.httpx_client:HttpxAsyncDriver",
}


def load_driver(name: str) -> Callable[[ClientTarget], Driver]:
    """Return the factory of the driver registered as ``name``."""
    module_name, _, attr = DRIVERS[name].partition(":")
    factory: Callable[[ClientTarget], Driver] = getattr(importlib.import_module(module_name), attr)
    return factory
