"""Print pip requirements pinning the lowest versions pyproject.toml allows of the packages
named on the command line (``hpack==4.0``...), from ``[project] dependencies`` and the
optional dependencies. CI installs them to check that the declared lower bounds are true."""

from __future__ import annotations

import re
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lowest(names: list[str]) -> list[str]:
    """``name==lower-bound`` for each of ``names`` (each must have a ``>=`` bound)."""
    text = PYPROJECT.read_text(encoding="utf-8")
    pins = []
    for name in names:
        found = re.search(rf'"{re.escape(name)}(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)', text)
        if found is None:
            raise SystemExit(f"no '>=' lower bound for {name} in {PYPROJECT}")
        pins.append(f"{name}=={found.group(1)}")
    return pins


if __name__ == "__main__":
    print("\n".join(lowest(sys.argv[1:])))
