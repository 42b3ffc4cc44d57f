"""
Run requests' own test suite twice, with requests' adapter and with hyper's, and fail on
every test that passes with requests' adapter and fails with hyper's.

The suite is the sdist of the installed requests release (downloaded once into
``.cache/requests-suite``). Its test dependencies (from the sdist's ``test`` dependency group) are
installed into the running interpreter. Both runs happen every time: there is no stored
baseline to go stale. ``HTTP20Adapter`` is mounted for every Session by
``scripts/requests_suite_plugin.py``.

Usage: ``python scripts/requests_suite.py [extra pytest arguments]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "requests-suite"

#: Tests that need an address outside this machine; deselected in both runs.
OUTSIDE = [
    # Connect to 10.255.255.1, an address that never answers, to provoke a connect timeout.
    "tests/test_requests.py::TestTimeout::test_connect_timeout",
    "tests/test_requests.py::TestTimeout::test_total_timeout_connect",
    # Resolve doesnotexist.google.com through the machine's DNS.
    "tests/test_requests.py::TestRequests::test_errors[http://doesnotexist.google.com-ConnectionError]",
]

#: Tests that pass with requests' adapter and are allowed to fail with hyper's, and why.
#: Each inspects urllib3's pools or the adapter's urllib3 internals, which hyper does not use.
_POOLS = "counts the pools of the adapter's urllib3 PoolManager (hyper pools its own way)"
EXCLUDED: dict[str, str] = {
    "tests/test_requests.py::TestPreparingURLs::"
    "test_different_connection_pool_for_tls_settings_verify_True": _POOLS,
    "tests/test_requests.py::TestPreparingURLs::"
    "test_different_connection_pool_for_tls_settings_verify_bundle_expired_cert": _POOLS,
    "tests/test_requests.py::TestPreparingURLs::"
    "test_different_connection_pool_for_tls_settings_verify_bundle_unexpired_cert": _POOLS,
}

#: Test dependencies of requests' suite that do not concern it here: coverage and xdist.
UNNEEDED = ("pytest-cov", "pytest-xdist")


def requests_version() -> str:
    """The installed requests' version."""
    import requests

    return str(requests.__version__)


def suite_directory(version: str) -> Path:
    """The unpacked sdist of requests ``version`` (downloaded if not cached)."""
    unpacked = CACHE / f"requests-{version}"
    if (unpacked / "tests").is_dir():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"requests=={version}",
                "--dest",
                download,
            ],
            check=True,
        )
        (archive,) = Path(download).glob("requests-*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    return unpacked


def install_test_dependencies(suite: Path) -> None:
    """Install the sdist's ``test`` dependency group (PySocks stands for ``requests[socks]``,
    the installed requests being the one under test)."""
    import tomllib  # Python 3.11+, which CI runs; the library itself supports 3.10

    project = tomllib.loads((suite / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = []
    for requirement in project["dependency-groups"]["test"]:
        if requirement.startswith("requests["):
            wanted.append("PySocks>=1.5.6")
        elif not requirement.startswith(UNNEEDED):
            wanted.append(requirement)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wanted], check=True)


def run(suite: Path, adapter: str, extra: list[str]) -> dict[str, str]:
    """Run the suite with ``adapter`` (``requests`` or ``hyper``); return the outcomes."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        outcomes_path = handle.name
    env = dict(os.environ)
    env.update(
        HYPER_SUITE_ADAPTER=adapter,
        HYPER_SUITE_OUTCOMES=outcomes_path,
        # hyper from this checkout, and the plugin.
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO), str(REPO / "scripts"), env.get("PYTHONPATH")])
        ),
    )
    deselect = [arg for test in OUTSIDE for arg in ("--deselect", test)]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "requests_suite_plugin",
        "-p",
        "no:warnings",
        "-o",
        "addopts=",
        "--timeout=60",
        *deselect,
        *extra,
        "tests",
    ]
    print(f"requests-suite: {adapter}'s adapter: {' '.join(command[3:])}", flush=True)
    subprocess.run(command, cwd=suite, env=env, check=False)
    try:
        with open(outcomes_path, encoding="utf-8") as saved:
            outcomes: dict[str, str] = json.load(saved)
    finally:
        os.unlink(outcomes_path)
    return outcomes


def deselected(nodeid: str) -> bool:
    """Whether ``nodeid`` is one of :data:`OUTSIDE` (or a parametrisation of one)."""
    return any(nodeid == test or nodeid.startswith(test + "[") for test in OUTSIDE)


def main(argv: list[str]) -> int:
    """Run both suites, print the figures, return 1 on a regression."""
    version = requests_version()
    suite = suite_directory(version)
    install_test_dependencies(suite)
    baseline = run(suite, "requests", argv)
    with_hyper = run(suite, "hyper", argv)
    passing = {test for test, outcome in baseline.items() if outcome == "passed"}
    hyper_passing = {test for test, outcome in with_hyper.items() if outcome == "passed"}
    lost = sorted(passing - hyper_passing)
    allowed = [test for test in lost if test in EXCLUDED]
    regressions = [test for test in lost if test not in EXCLUDED]
    print(
        f"requests-suite: requests {version}: {len(passing)} tests pass with requests' "
        f"adapter; {len(passing & hyper_passing)} of them pass with hyper's; "
        f"{len(allowed)} excluded; {len(OUTSIDE)} tests (with their parameters) deselected "
        "in both runs (outside addresses)"
    )
    for test in allowed:
        print(f"requests-suite: excluded: {test}: {EXCLUDED[test]}")
    stale = sorted(set(EXCLUDED) - set(lost))
    for test in stale:
        print(f"requests-suite: excluded but no longer failing (remove it): {test}")
    for test in regressions:
        print(f"requests-suite: FAILS with hyper's adapter: {test}")
    return 1 if regressions or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
