"""The peers' virtual environment: ``bench/.venv`` with httpx, niquests and pycurl.

:func:`ensure_peers_venv` creates it when it is missing, or when
``bench/requirements-peers.txt`` changed since it was made (a stamp file in the
venv records a hash of that file), with the interpreter running ``run.py`` (so both
sides run the same Python). It uses ``python -m venv`` and that venv's pip,
i.e. whatever index pip is configured with.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
VENV_DIR = BENCH_DIR / ".venv"
REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"
_STAMP = "hyper-bench-requirements.sha256"

#: Seconds allowed to create the venv and to install the peers.
CREATE_TIMEOUT, INSTALL_TIMEOUT = 120, 600


class VenvError(RuntimeError):
    """The peers' environment could not be made."""


def venv_python(venv: Path = VENV_DIR) -> Path:
    """The interpreter of ``venv`` (it may not exist)."""
    return venv / "bin" / "python"


def _requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def is_current(venv: Path = VENV_DIR) -> bool:
    """Whether ``venv`` exists and was made from the current requirements file."""
    stamp = venv / _STAMP
    return (
        venv_python(venv).exists()
        and stamp.exists()
        and stamp.read_text().strip() == _requirements_hash()
    )


def ensure_peers_venv(venv: Path = VENV_DIR, *, force: bool = False) -> Path:
    """Create or update ``venv`` if needed; return its interpreter.

    Progress goes to stderr. Raises :class:`VenvError` when venv or pip fails.
    """
    if not force and is_current(venv):
        return venv_python(venv)
    if force and venv.exists():
        shutil.rmtree(venv)
    if not venv_python(venv).exists():
        print(f"creating the peers' virtual environment in {venv}", file=sys.stderr)
        _run([sys.executable, "-m", "venv", str(venv)], CREATE_TIMEOUT)
    print(f"installing the peers from {REQUIREMENTS.name} (pip)", file=sys.stderr)
    pip = [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", "-r", str(REQUIREMENTS)], INSTALL_TIMEOUT)
    (venv / _STAMP).write_text(_requirements_hash() + "\n")
    return venv_python(venv)


def _run(cmd: list[str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvError(f"{cmd[2] if len(cmd) > 2 else cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise VenvError(f"{' '.join(cmd[:4])} failed (exit {proc.returncode}): {tail}")


def peer_versions(python: Path) -> dict[str, str]:
    """Versions of the packages installed in the peers' environment (name -> version)."""
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    versions: dict[str, str] = json.loads(out)
    return dict(sorted(versions.items()))
