"""HTTP/2: the connection, its streams, responses, pushes, flow control and errors.

The names below load their modules (and h2) on first use, so that importing a module of this
package that does not need h2, such as :mod:`hyper.http20.window`, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import HTTP20Connection
    from .response import HTTP20Push, HTTP20Response

__all__ = ["HTTP20Connection", "HTTP20Push", "HTTP20Response"]

_LAZY = {
    "HTTP20Connection": ".connection",
    "HTTP20Push": ".response",
    "HTTP20Response": ".response",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
