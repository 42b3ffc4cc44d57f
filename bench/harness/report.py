"""Turning runs into medians, ratios, text tables and a JSON document."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.runners import Sample
from harness.workloads import Workload

#: The client being judged, and the ones it is compared with (when they ran).
SUBJECT = "hyper"
BASELINES = (
    "http.client",
    "httpx",
    "httpx-async",
    "niquests",
    "pycurl",
    "requests",
    "h2load",
    "curl",
)


@dataclass(frozen=True)
class Outcome:
    """One run of one client in one round: a value in the workload's unit, or an error."""

    round: int
    value: float | None = None
    sample: Sample | None = None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """This run as a JSON object."""
        if self.sample is None:
            return {"round": self.round, "error": self.error}
        return {
            "round": self.round,
            "value": self.value,
            "requests": self.sample.requests,
            "body_bytes": self.sample.body_bytes,
            "seconds": self.sample.seconds,
        }


@dataclass(frozen=True)
class Summary:
    """A client's runs of one workload: median, min and max of the successful ones."""

    ok: int
    runs: int
    median: float | None
    min: float | None
    max: float | None
    error: str | None

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Summary:
        """Summarize ``outcomes``; ``error`` is the first failure's reason."""
        values = [o.value for o in outcomes if o.value is not None]
        errors = [o.error for o in outcomes if o.error is not None]
        return cls(
            ok=len(values),
            runs=len(outcomes),
            median=statistics.median(values) if values else None,
            min=min(values, default=None),
            max=max(values, default=None),
            error=errors[0] if errors else None,
        )


@dataclass(frozen=True)
class Ratio:
    """How many times better the subject did than a baseline (>1: the subject is better).

    For rates that is subject/baseline; for costs (memory, import time: lower is
    better) baseline/subject. ``median_of_round_ratios`` pairs runs of the same
    round (robust to the machine getting slower or faster during the run);
    ``ratio_of_medians`` is the plain one.
    """

    median_of_round_ratios: float
    ratio_of_medians: float

    @classmethod
    def of(
        cls, subject: list[Outcome], baseline: list[Outcome], *, lower_is_better: bool = False
    ) -> Ratio | None:
        """The ratio, or None unless both succeeded in at least one common round."""

        def better(mine: float, theirs: float) -> float:
            return theirs / mine if lower_is_better else mine / theirs

        base_by_round = {o.round: o.value for o in baseline if o.value}
        paired = [
            better(o.value, base_by_round[o.round])
            for o in subject
            if o.value and o.round in base_by_round
        ]
        subject_median, base_median = Summary.of(subject).median, Summary.of(baseline).median
        if not paired or not subject_median or not base_median:
            return None
        return cls(statistics.median(paired), better(subject_median, base_median))


@dataclass
class WorkloadResult:
    """All runs of one workload, by client (in report order)."""

    workload: Workload
    quick: bool
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def add(self, client: str, outcome: Outcome) -> None:
        """Record one run."""
        self.outcomes.setdefault(client, []).append(outcome)

    def ratios(self) -> dict[str, Ratio | None]:
        """hyper against each baseline that ran."""
        if SUBJECT not in self.outcomes:
            return {}
        lower = self.workload.lower_is_better
        return {
            f"{SUBJECT}/{base}": Ratio.of(
                self.outcomes[SUBJECT], self.outcomes[base], lower_is_better=lower
            )
            for base in BASELINES
            if base in self.outcomes
        }

    def to_json(self) -> dict[str, object]:
        """Definition, per-client summaries with every run, and ratios."""
        wl = self.workload
        clients = {}
        for name, runs in self.outcomes.items():
            info = next((o.sample.info for o in runs if o.sample and o.sample.info), {})
            runs_json = [o.to_json() for o in runs]
            clients[name] = {**asdict(Summary.of(runs)), "info": info, "runs_detail": runs_json}
        return {
            "description": wl.description,
            "lower_is_better": wl.lower_is_better,
            "protocol": wl.protocol,
            "server": wl.endpoint,
            "unit": wl.unit,
            "path": wl.path,
            "body_size": wl.body_size,
            "in_flight": wl.in_flight,
            "requests_per_run": wl.count(quick=self.quick),
            "requests_per_run_native": wl.count(quick=self.quick, native=True),
            "clients": clients,
            "ratios": {k: asdict(r) if r else None for k, r in self.ratios().items()},
        }

    def format(self, rounds: int) -> str:
        """A text table of the clients, then hyper's ratios to the others."""
        wl = self.workload
        width = max([len("client"), *map(len, self.outcomes)])
        better = "lower" if wl.lower_is_better else "higher"
        per_run = (
            f"{wl.count(quick=self.quick)} interpreter(s) per run"
            if wl.server == "none"
            else f"{wl.count(quick=self.quick)} request(s) per run "
            f"(native tools: {wl.count(quick=self.quick, native=True)})"
        )
        lines = [
            f"{wl.name}: {wl.description}",
            f"  {wl.unit}, {better} is better; {rounds} round(s); {per_run}",
            f"  {'client':<{width}} {'median':>11} {'min':>11} {'max':>11}  ok",
        ]
        for name, runs in self.outcomes.items():
            lines.append(_format_row(name, width, Summary.of(runs)))
        lines.extend(_format_ratios(self.ratios()))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _format_row(name: str, width: int, s: Summary) -> str:
    row = f"  {name:<{width}} {_fmt(s.median):>11} {_fmt(s.min):>11} {_fmt(s.max):>11}"
    row += f"  {s.ok}/{s.runs}"
    return row + (f"  error: {s.error}" if s.error else "")


def _format_ratios(ratios: dict[str, Ratio | None]) -> list[str]:
    if not ratios:
        return [f"  ratios: n/a ({SUBJECT} not run)"]
    width = max(map(len, ratios))
    lines = [f"  ratios (median of per-round ratios; >1: {SUBJECT} is better)"]
    for label, r in ratios.items():
        value = f"{r.median_of_round_ratios:.2f}x" if r else "n/a"
        lines.append(f"    {label:<{width}} {value:>7}")
    return lines


def write_json(document: dict[str, object], path: Path) -> None:
    """Write ``document`` to ``path`` atomically (via ``path.tmp``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
