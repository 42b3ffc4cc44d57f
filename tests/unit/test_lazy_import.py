"""``import hyper`` leaves hpack and hyperframe unloaded until HTTP/2 is used (import time),
and hyper never imports h2 (the tests' reference implementation) at all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
import hyper
early = sorted(m for m in ("h2", "hpack", "hyperframe") if m in sys.modules)
cls = hyper.HTTP20Connection
from hyper.http20 import HTTP20Push, HTTP20Response
import hyper.http20.connection, hyper.http20.engine, hyper.http20.transport, hyper.contrib
print(json.dumps([early, "hpack" in sys.modules, "h2" in sys.modules, cls.__module__,
                  HTTP20Push.__name__]))
"""


def test_http2_machinery_loads_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    early, loaded_after, h2_loaded, module, push_name = json.loads(out.strip().splitlines()[-1])
    assert early == []  # nothing of the HTTP/2 stack was imported by "import hyper"
    assert loaded_after is True
    assert h2_loaded is False  # h2 is no dependency of hyper's
    assert module == "hyper.http20.connection"
    assert push_name == "HTTP20Push"


def test_unknown_attribute_is_an_attribute_error() -> None:
    import hyper
    import hyper.http20

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hyper.nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hyper.http20.nope  # type: ignore[attr-defined]  # noqa: B018


_HTTP3_PROBE = """
import json, sys
import hyper
early = sorted(m for m in ("qh3", "aioquic") if m in sys.modules)
cls = hyper.HTTP30Connection
print(json.dumps([early, "qh3" in sys.modules, "aioquic" in sys.modules, cls.__module__]))
"""

_NO_QH3_PROBE = """
import sys
sys.modules["qh3"] = None  # as if it were not installed
import hyper
from hyper.common.exceptions import HyperError
try:
    hyper.HTTP30Connection
except ImportError as exc:
    print(type(exc).__name__, isinstance(exc, HyperError), exc)
"""


def test_http3_loads_qh3_on_first_use_and_never_aioquic() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _HTTP3_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    early, qh3_loaded, aioquic_loaded, module = json.loads(out.strip().splitlines()[-1])
    assert early == []
    assert qh3_loaded is True
    assert aioquic_loaded is False  # the test servers' QUIC stack is not hyper's
    assert module == "hyper.http30.connection"


def test_http3_without_qh3_says_how_to_install_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_QH3_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("HTTP3Unavailable True ")
    assert "pip install 'hyper[http3]'" in out


def test_import_hyper_leaves_heavy_stdlib_modules_unloaded() -> None:
    """dataclasses (with inspect) and the QUIC stack cost import time hyper's plain use does
    not need."""
    probe = (
        "import sys, json; import hyper; "
        "print(json.dumps(sorted(m for m in ('dataclasses', 'inspect', 'qh3') "
        "if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
