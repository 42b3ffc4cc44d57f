"""
A pytest plugin for running requests' own test suite (see ``scripts/requests_suite.py``).

With ``HYPER_SUITE_ADAPTER=hyper`` in the environment, every :class:`requests.Session`
mounts :class:`hyper.contrib.HTTP20Adapter` for ``http://`` and ``https://`` as it is made,
so every request the suite sends goes through hyper. With ``HYPER_SUITE_OUTCOMES`` naming a
file, each test's outcome (``passed``, ``failed``, ``skipped``) is written there as JSON when
the session ends.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

_outcomes: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Mount hyper's adapter in every Session when asked to."""
    if os.environ.get("HYPER_SUITE_ADAPTER") != "hyper":
        return
    import requests.sessions

    from hyper.contrib import HTTP20Adapter

    make_session = requests.sessions.Session.__init__

    def init_with_hyper(self: requests.sessions.Session, *args: Any, **kwargs: Any) -> None:
        make_session(self, *args, **kwargs)
        self.mount("https://", HTTP20Adapter())
        self.mount("http://", HTTP20Adapter())

    requests.sessions.Session.__init__ = init_with_hyper  # type: ignore[method-assign]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test fails if any phase fails; it passes if its call passed; else it was skipped."""
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" and report.passed:
        _outcomes.setdefault(report.nodeid, "passed")
    elif report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the outcomes where ``HYPER_SUITE_OUTCOMES`` says."""
    path = os.environ.get("HYPER_SUITE_OUTCOMES")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(_outcomes, out, indent=0, sort_keys=True)
