"""A pytest plugin that collects the interop matrix and prints it at the end of the session.

Tests marked ``@pytest.mark.interop(server, mode, check)`` fill one cell each.  A cell
reads ``pass``, ``FAIL`` (the test or its setup failed), ``xfail`` (a known hyper bug,
strictly xfailed), ``skip`` (a server is missing; never under ``CI``), ``n/a`` (the
combination makes no sense: :data:`~tests.support.interop.NOT_APPLICABLE`, or a test that
skipped itself with a reason starting ``n/a:``) or ``-`` (not run this session).

With ``HYPER_WRITE_INTEROP_MATRIX=1`` the matrix is also written as reStructuredText to
``docs/interop_matrix.inc`` (included by ``docs/interop.rst``), with the server versions
the fixtures reported through :func:`record_version`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .interop import (
    CHECK_TITLES,
    CHECKS,
    MODE_NOTES,
    MODE_TITLES,
    MODES,
    SERVERS,
    not_applicable,
)

WRITE_ENV = "HYPER_WRITE_INTEROP_MATRIX"
INC_PATH = Path("docs") / "interop_matrix.inc"
NA_PREFIX = "n/a:"
#: Worse outcomes win when a test reports several phases (setup, call, teardown).
_RANK = {"pass": 0, "n/a": 1, "skip": 2, "xfail": 3, "FAIL": 4}


@dataclass
class MatrixState:
    """Cells seen so far: ``(server, mode, check)`` -> outcome, and n/a reasons."""

    cells: dict[tuple[str, str, str], str] = field(default_factory=dict)
    runtime_na: dict[tuple[str, str, str], str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


_STATE_KEY = pytest.StashKey[MatrixState]()


def record_version(config: pytest.Config, server: str, version: str) -> None:
    """Remember the version of ``server`` for the report (called by the fixtures)."""
    plugin = config.pluginmanager.get_plugin(InteropMatrixPlugin.NAME)
    if isinstance(plugin, InteropMatrixPlugin):
        plugin.state.versions[server] = version


def _outcome(report: pytest.TestReport) -> tuple[str, str | None] | None:
    """``(cell value, n/a reason)`` for one phase report, or None if it says nothing."""
    if hasattr(report, "wasxfail"):
        return ("xfail", None) if report.skipped else ("FAIL", None)
    if report.failed:
        return "FAIL", None
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(NA_PREFIX):
            return "n/a", reason[len(NA_PREFIX) :].strip()
        return "skip", None
    if report.when == "call":
        return "pass", None
    return None


class InteropMatrixPlugin:
    """Registered once per session by ``tests/conftest.py``."""

    NAME = "hyper-interop-matrix"

    def __init__(self) -> None:
        self.state = MatrixState()

    @pytest.hookimpl
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("interop")
            if marker is not None:
                item.user_properties.append(("interop", tuple(marker.args)))

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = dict(report.user_properties).get("interop")
        if not isinstance(key, tuple) or len(key) != 3:
            return
        found = _outcome(report)
        if found is None:
            return
        value, reason = found
        previous = self.state.cells.get(key)
        if previous is None or _RANK[value] > _RANK[previous]:
            self.state.cells[key] = value
        if reason:
            self.state.runtime_na[key] = reason

    def cell(self, server: str, mode: str, check: str) -> tuple[str, str | None]:
        """The cell's text and its n/a reason, if any."""
        key = (server, mode, check)
        static = not_applicable(server, mode, check)
        if static is not None:
            return "n/a", static
        value = self.state.cells.get(key, "-")
        return value, self.state.runtime_na.get(key) if value == "n/a" else None

    @pytest.hookimpl
    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, config: pytest.Config
    ) -> None:
        if not self.state.cells:
            return
        write = terminalreporter.write_line
        terminalreporter.section("interop matrix (server x mode x check)")
        servers = [s for s in SERVERS if any(k[0] == s for k in self.state.cells)]
        width = max(len(f"{s} {m}") for s in servers for m in MODES)
        widths = [max(len(check), 5) for check in CHECKS]
        write(
            f"{'':{width}}  " + "  ".join(f"{c:{w}}" for c, w in zip(CHECKS, widths, strict=True))
        )
        for server in servers:
            for mode in MODES:
                cells = [self.cell(server, mode, check)[0] for check in CHECKS]
                row = "  ".join(f"{c:{w}}" for c, w in zip(cells, widths, strict=True))
                write(f"{server + ' ' + mode:{width}}  {row}")
        if self.state.versions:
            write(
                "versions: "
                + "; ".join(self.state.versions[s] for s in sorted(self.state.versions))
            )
        write("n/a cells and notes are explained in docs/interop.rst")
        if os.environ.get(WRITE_ENV, "").strip() not in ("", "0"):
            path = config.rootpath / INC_PATH
            path.write_text(self.render_rst(servers))
            write(f"interop matrix written to {path}")

    def render_rst(self, servers: list[str]) -> str:
        """The matrix as an RST ``list-table`` per server, with numbered n/a footnotes."""
        notes: dict[str, int] = {}
        lines = [
            ".. This file is generated by the test suite: HYPER_WRITE_INTEROP_MATRIX=1",
            "   python3 -m pytest tests/test_interop_matrix.py (see interop.rst).",
            "",
        ]
        if self.state.versions:
            versions = ", ".join(
                self.state.versions[s] for s in servers if s in self.state.versions
            )
            lines += [f"Server versions: {versions}.", ""]
        for server in servers:
            lines += [
                f".. list-table:: {server}",
                "   :header-rows: 1",
                "   :stub-columns: 1",
                "",
                "   * - mode",
                *(f"     - {CHECK_TITLES[check]}" for check in CHECKS),
            ]
            for mode in MODES:
                lines.append(f"   * - {MODE_TITLES[mode]}")
                for check in CHECKS:
                    value, reason = self.cell(server, mode, check)
                    if value == "n/a" and reason:
                        number = notes.setdefault(reason, len(notes) + 1)
                        value = f"n/a ({number})"
                    elif value == "-":
                        value = "not run"  # a bare "-" would start a nested RST list
                    lines.append(f"     - {value}")
            lines.append("")
            for mode in MODES:
                note = MODE_NOTES.get((server, mode))
                if note is not None:
                    lines += [f"{server}, {MODE_TITLES[mode]}: {note}.", ""]
        if notes:
            lines += ["Why a cell is n/a:", ""]
            lines += [f"| ({number}) {reason}" for reason, number in notes.items()]
            lines.append("")
        return "\n".join(lines)
