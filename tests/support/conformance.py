"""The conformance table (``docs/conformance/*.csv``) as the tests read it.

Each CSV file holds the client-side requirements of one RFC, one row each: ``id``,
``section``, ``level``, ``requirement``, ``hyper`` (what hyper does), ``tests`` (pytest node
ids, separated by spaces, that show it) and ``met`` (``yes`` or ``no``). The same rows are
rendered in ``docs/conformance.rst`` and give every named test the keyword of its section
(``rfc9113_6_6``), so ``pytest -k rfc9113_6_6`` runs the tests of RFC 9113 section 6.6.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Where the tables are, one CSV file per RFC (``rfc9113.csv``).
TABLE_DIR = Path(__file__).resolve().parents[2] / "docs" / "conformance"
#: The columns of every table, in order.
COLUMNS = ("id", "section", "level", "requirement", "hyper", "tests", "met")
#: What the ``met`` column may say.
MET_VALUES = ("yes", "no")

_SECTION = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True)
class Row:
    """One requirement of one RFC."""

    rfc: str
    id: str
    section: str
    level: str
    requirement: str
    hyper: str
    tests: tuple[str, ...]
    met: str

    @property
    def keyword(self) -> str:
        """The pytest keyword of the row's section: ``rfc9113_6_6`` for RFC 9113 6.6."""
        return f"rfc{self.rfc}_{self.section.replace('.', '_')}"


def table_files() -> list[Path]:
    return sorted(TABLE_DIR.glob("rfc*.csv"))


def read_rows() -> Iterator[Row]:
    """Every row of every table, in file order."""
    for path in table_files():
        rfc = path.stem.removeprefix("rfc")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"{path.name}: columns must be {COLUMNS}")
            for record in reader:
                yield Row(
                    rfc=rfc,
                    id=record["id"].strip(),
                    section=record["section"].strip(),
                    level=record["level"].strip(),
                    requirement=record["requirement"].strip(),
                    hyper=record["hyper"].strip(),
                    tests=tuple(record["tests"].split()),
                    met=record["met"].strip(),
                )


def is_section(text: str) -> bool:
    """Whether ``text`` looks like a section number (``6.5.2``)."""
    return bool(_SECTION.match(text))


def keywords_by_test() -> dict[str, set[str]]:
    """Node id (without parameters when the row names none) -> section keywords."""
    found: dict[str, set[str]] = {}
    for row in read_rows():
        for test in row.tests:
            found.setdefault(test, set()).add(row.keyword)
    return found
