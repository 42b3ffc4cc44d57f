"""Facts about the machine and software, recorded with every result."""

from __future__ import annotations

import os
import platform
import ssl
import sys
from importlib import metadata
from pathlib import Path

#: Python packages whose versions matter to the numbers.
#: (Those of the peers' venv are recorded separately: ``versions.peers_venv``.)
PACKAGES = ("hyper", "httpx", "httpcore", "h2", "hpack", "hyperframe", "trustme", "requests")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    """How many cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, object]:
    """Platform, CPU, cores, Python and load: what makes numbers comparable or not."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "openssl": ssl.OPENSSL_VERSION,
        "load_average_at_start": load_average(),
    }


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` ("not installed" when absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
