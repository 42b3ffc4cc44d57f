"""The published conformance table (``docs/conformance.rst``) is true to the test suite.

Every row names tests that exist and can be run; rows are unique and well formed; the
tables hold at least 100 requirements; and ``pytest -k rfcNNNN_S_S`` selects a section's
tests. The tests themselves run with the rest of the suite.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.conformance import (
    MET_VALUES,
    TABLE_DIR,
    Row,
    is_section,
    read_rows,
    table_files,
)

REPO = Path(__file__).resolve().parents[1]
#: The RFCs the table covers, each in its own file.
RFCS = ("9110", "9112", "9113", "7541", "9114", "9204")
#: The levels a row may have: the RFC's keyword.
LEVELS = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "REQUIRED", "SHALL", "SHALL NOT", "MAY"}
ROWS = list(read_rows())


def _collected(files: set[str], *options: str) -> set[str]:
    """The node ids pytest collects from ``files`` (with ``options``, such as ``-k``)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *options, *sorted(files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {line.strip() for line in result.stdout.splitlines() if "::" in line}


def test_every_rfc_has_a_table() -> None:
    assert {path.stem for path in table_files()} == {f"rfc{rfc}" for rfc in RFCS}
    assert (REPO / "docs" / "conformance.rst").read_text().count(".. csv-table::") == len(RFCS)


def test_at_least_a_hundred_rows() -> None:
    assert len(ROWS) >= 100, len(ROWS)


def test_rows_are_unique_and_well_formed() -> None:
    duplicates = [key for key, count in Counter(row.id for row in ROWS).items() if count > 1]
    assert not duplicates
    problems: list[str] = []
    for row in ROWS:
        if not row.id.startswith(f"{row.rfc}-{row.section}-"):
            problems.append(f"{row.id}: the id does not start with {row.rfc}-{row.section}-")
        if not is_section(row.section):
            problems.append(f"{row.id}: section {row.section!r}")
        if row.level not in LEVELS:
            problems.append(f"{row.id}: level {row.level!r}")
        if row.met not in MET_VALUES:
            problems.append(f"{row.id}: met {row.met!r}")
        if not row.requirement or not row.hyper:
            problems.append(f"{row.id}: empty requirement or description")
        if row.met == "yes" and not row.tests:
            problems.append(f"{row.id}: met, but names no test")
    assert not problems, "\n".join(problems)


def test_every_named_test_exists() -> None:
    named = {test for row in ROWS for test in row.tests}
    missing_files = sorted({test.split("::", 1)[0] for test in named} - _existing_files())
    assert not missing_files, missing_files
    collected = _collected({test.split("::", 1)[0] for test in named})
    unparametrized = {node.split("[", 1)[0] for node in collected}
    missing = sorted(test for test in named if test not in collected | unparametrized)
    assert not missing, "named in the table but not collected:\n" + "\n".join(missing)


def _existing_files() -> set[str]:
    return {str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py")}


@pytest.mark.parametrize("section", ["9113_6_6", "9112_6_3", "9114_6_2_1", "9204_4_2"])
def test_a_section_keyword_selects_its_tests(section: str) -> None:
    rows: list[Row] = [row for row in ROWS if row.keyword.startswith(f"rfc{section}")]
    assert rows, section
    expected = {test for row in rows for test in row.tests}
    files = {test.split("::", 1)[0] for test in expected}
    selected = _collected(files, "-k", f"rfc{section}")
    selected |= {node.split("[", 1)[0] for node in selected}
    assert expected <= selected, sorted(expected - selected)


def test_the_summary_counts_the_rows() -> None:
    text = " ".join((REPO / "docs" / "conformance.rst").read_text().split())
    met = sum(row.met == "yes" for row in ROWS)
    expected = f"{len(ROWS)} requirements; hyper meets {met} and does not meet {len(ROWS) - met}."
    assert expected in text
    for rfc in RFCS:
        rows = [row for row in ROWS if row.rfc == rfc]
        met = sum(row.met == "yes" for row in rows)
        assert f"RFC {rfc}, {len(rows)}" in text and f"({met} met)" in text, rfc
    for row in ROWS:
        if row.met == "no":
            short = row.id.split("-", 1)[1]
            assert row.id in text or short in text, f"{row.id} is not met but not listed"


def test_the_tables_are_where_the_docs_include_them() -> None:
    text = (REPO / "docs" / "conformance.rst").read_text()
    for path in table_files():
        assert f":file: {path.relative_to(TABLE_DIR.parent)}" in text, path.name
