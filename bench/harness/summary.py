"""The one-screen summary: medians of every client per workload, and hyper's targets.

:data:`GOALS` are the targets hyper is held to; :func:`evaluate` checks them
against one run's results. :func:`text_tables` prints both tables for the terminal,
:func:`rst_document` writes them as reStructuredText (``bench/results/latest.rst``,
included by the docs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.report import SUBJECT, Ratio, Summary, WorkloadResult
from harness.workloads import Workload

#: The Python peers hyper's concurrency target names (the best of them counts): httpx
#: with a thread pool, httpx's async client, and niquests multiplexed. pycurl is shown for
#: reference only: its multiplexing runs in libcurl's C, which issue 6 sets apart ("the
#: fastest pure Python client by a wide margin and close to libcurl").
PURE_PYTHON_PEERS = ("httpx", "httpx-async", "niquests")


@dataclass(frozen=True)
class Goal:
    """One target: hyper's ratio to the best of ``baselines`` is at least ``minimum``,
    or (no baselines) hyper's own median is below ``maximum`` (a cost)."""

    workload: str
    label: str
    baselines: tuple[str, ...] = ()
    minimum: float = 0.0
    maximum: float | None = None
    #: Shown for comparison only: never met or missed.
    reference: bool = False
    #: Compare hyper with itself in this other workload instead of with ``baselines``.
    against_workload: str | None = None


GOALS: tuple[Goal, ...] = (
    Goal("serial", "one at a time (1 KiB GETs, h2): hyper >= 0.9x pycurl", ("pycurl",), 0.9),
    Goal("serial", "one at a time (1 KiB GETs, h2): hyper >= 2.0x httpx", ("httpx",), 2.0),
    Goal(
        "concurrent",
        "100 in flight: hyper >= 10x the best Python peer (httpx, httpx-async, niquests)",
        PURE_PYTHON_PEERS,
        10.0,
    ),
    Goal(
        "concurrent",
        "(for reference, no target: pycurl, multiplexing in libcurl's C)",
        ("pycurl",),
        reference=True,
    ),
    Goal("download", "100 MiB download: hyper >= 0.85x pycurl", ("pycurl",), 0.85),
    Goal("download", "100 MiB download: hyper >= 2.5x httpx", ("httpx",), 2.5),
    Goal("whole", "100 MiB read whole: hyper >= 0.85x pycurl", ("pycurl",), 0.85),
    Goal(
        "whole",
        "100 MiB read whole: hyper >= 0.9x its own streamed read",
        minimum=0.9,
        against_workload="download",
    ),
    Goal("upload", "100 MiB upload: hyper >= 2x httpx", ("httpx",), 2.0),
    Goal(
        "h11serial",
        "HTTP/1.1 one at a time (nginx): hyper >= 1.15x http.client",
        ("http.client",),
        1.15,
    ),
    Goal("h3serial", "HTTP/3 one at a time: hyper >= 1.5x niquests", ("niquests",), 1.5),
    Goal("h3serial", "HTTP/3 one at a time: hyper >= 0.5x pycurl", ("pycurl",), 0.5),
    Goal("h3concurrent", "HTTP/3 100 in flight: hyper >= 1.5x niquests", ("niquests",), 1.5),
    Goal("h3concurrent", "HTTP/3 100 in flight: hyper >= 0.5x pycurl", ("pycurl",), 0.5),
    Goal("h3download", "HTTP/3 100 MiB download: hyper >= 1.0x niquests", ("niquests",), 1.0),
    Goal("h3download", "HTTP/3 100 MiB download: hyper >= 0.5x pycurl", ("pycurl",), 0.5),
    Goal("memory", "1,000 open streams on one connection: < 10 MiB", maximum=10.0),
    Goal("import", "import time: hyper <= httpx", ("httpx",), 1.0),
)


@dataclass(frozen=True)
class Verdict:
    """A goal checked against a run: what was measured, and whether it is met."""

    goal: Goal
    measured: str
    met: bool | None  # None: could not be measured (not run, or failed)
    value: float | None = None
    against: str | None = None

    def to_json(self) -> dict[str, object]:
        """This verdict as a JSON object."""
        return {
            "workload": self.goal.workload,
            "target": self.goal.label,
            "measured": self.measured,
            "value": self.value,
            "against": self.against,
            "met": self.met,
        }


def evaluate(results: Sequence[WorkloadResult]) -> list[Verdict]:
    """Check every goal whose workload ran."""
    by_name = {r.workload.name: r for r in results}
    verdicts = []
    for goal in GOALS:
        result = by_name.get(goal.workload)
        if result is None:
            continue
        if goal.against_workload is not None:
            other = by_name.get(goal.against_workload)
            if other is not None:
                verdicts.append(_check_against_itself(goal, result, other))
            continue
        verdicts.append(_check(goal, result))
    return verdicts


def _check_against_itself(goal: Goal, result: WorkloadResult, other: WorkloadResult) -> Verdict:
    """hyper in ``result`` against hyper in ``other`` (same unit), round by round."""
    ratio = Ratio.of(result.outcomes.get(SUBJECT, []), other.outcomes.get(SUBJECT, []))
    label = f"{SUBJECT} {other.workload.name}"
    if ratio is None:
        return Verdict(goal, f"no common round with {label}", None, against=label)
    value = ratio.median_of_round_ratios
    return Verdict(goal, f"{value:.2f}x {label}", value >= goal.minimum, value, label)


def _check(goal: Goal, result: WorkloadResult) -> Verdict:
    mine = Summary.of(result.outcomes.get(SUBJECT, [])).median
    unit = result.workload.unit
    if mine is None:
        return Verdict(goal, f"{SUBJECT} did not run", None)
    if goal.maximum is not None:
        return Verdict(goal, f"{_fmt(mine, unit)} {unit}", mine < goal.maximum, mine)
    # Against the best baseline that ran: the highest rate (or lowest cost).
    medians = {
        name: Summary.of(result.outcomes[name]).median
        for name in goal.baselines
        if name in result.outcomes
    }
    ran = {name: m for name, m in medians.items() if m is not None}
    if not ran:
        return Verdict(goal, f"{', '.join(goal.baselines)} did not run", None)
    pick = min if result.workload.lower_is_better else max
    best = pick(ran, key=lambda name: ran[name])
    ratio = Ratio.of(
        result.outcomes[SUBJECT],
        result.outcomes[best],
        lower_is_better=result.workload.lower_is_better,
    )
    if ratio is None:
        return Verdict(goal, f"no common round with {best}", None, against=best)
    value = ratio.median_of_round_ratios
    met = None if goal.reference else value >= goal.minimum
    return Verdict(goal, f"{value:.2f}x {best}", met, value, best)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("MiB", "ms"):
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _cell(result: WorkloadResult, client: str) -> str:
    if client not in result.outcomes:
        return ""
    summary = Summary.of(result.outcomes[client])
    if summary.median is None:
        return "error"
    text = _fmt(summary.median, result.workload.unit)
    # Some rounds failed (e.g. httpx's thread-unsafe HTTP/2): say how many succeeded.
    return text if summary.ok == summary.runs else f"{text} ({summary.ok}/{summary.runs})"


def _clients(results: Sequence[WorkloadResult], order: Sequence[str]) -> list[str]:
    seen = {name for r in results for name in r.outcomes}
    return [name for name in order if name in seen]


def _medians_rows(
    results: Sequence[WorkloadResult], order: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    clients = _clients(results, order)
    header = ["workload", "unit", *clients]
    rows = []
    for r in results:
        unit = f"{r.workload.unit} {'(lower)' if r.workload.lower_is_better else ''}".strip()
        rows.append([r.workload.name, unit, *(_cell(r, c) for c in clients)])
    return header, rows


def _goal_rows(verdicts: Sequence[Verdict]) -> tuple[list[str], list[list[str]]]:
    marks = {True: "yes", False: "NO", None: "n/a"}
    rows = [
        [v.goal.label, v.measured, "-" if v.goal.reference else marks[v.met]] for v in verdicts
    ]
    return ["target", "measured", "met"], rows


def _simple_table(header: list[str], rows: list[list[str]], *, rst: bool) -> list[str]:
    """A table with aligned columns (numbers right-aligned); RST simple-table syntax if asked."""
    cells = [header, *rows]
    widths = [max(len(row[i]) or 1 for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        parts = []
        for i, text in enumerate(row):
            numeric = i > 0 and text[:1].isdigit()
            parts.append(text.rjust(widths[i]) if numeric else text.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    rule = "  ".join("=" * w for w in widths)
    if rst:
        return [rule, line(header), rule, *(line(r) for r in rows), rule]
    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def text_tables(
    results: Sequence[WorkloadResult], verdicts: Sequence[Verdict], order: Sequence[str]
) -> str:
    """The medians table and the targets table, for the terminal."""
    header, rows = _medians_rows(results, order)
    lines = ["Medians (req/s and MB/s: higher is better; MiB and ms: lower is better)", ""]
    lines += _simple_table(header, rows, rst=False)
    if verdicts:
        lines += ["", "Targets (ratios: median of per-round ratios, >1: hyper is better)", ""]
        lines += _simple_table(*_goal_rows(verdicts), rst=False)
    return "\n".join(lines)


def rst_document(
    results: Sequence[WorkloadResult],
    verdicts: Sequence[Verdict],
    order: Sequence[str],
    caption: str,
    workloads: Sequence[Workload],
) -> str:
    """Both tables in reStructuredText, after a caption line (date and machine)."""
    header, rows = _medians_rows(results, order)
    lines = [
        ".. Generated by bench/run.py: do not edit; run ``python bench/run.py`` instead.",
        "",
        caption,
        "",
        "Medians of the interleaved rounds (req/s and MB/s: higher is better; MiB and ms:",
        "lower is better; an empty cell: that client does not run that workload; (k/n): only",
        "k of the n rounds succeeded):",
        "",
        *_simple_table(header, rows, rst=True),
        "",
    ]
    if verdicts:
        lines += [
            "Targets (ratios are medians of per-round ratios; above 1, hyper is better):",
            "",
            *_simple_table(*_goal_rows(verdicts), rst=True),
            "",
        ]
    lines.append("Workloads:")
    lines.append("")
    for wl in workloads:
        lines.append(f"- ``{wl.name}``: {wl.description}.")
    lines.append("")
    return "\n".join(lines)
