"""Draw the bar chart of a results file: ``python bench/chart.py results.json chart.png``.

One panel per workload, one bar per client (its median, with a line from the
slowest to the fastest round), hyper highlighted. ``run.py`` calls this with any
interpreter that has matplotlib (it is in the ``bench`` extra); it uses the Agg
backend, so no display is needed. Only matplotlib and the standard library are used.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

SUBJECT = "hyper"
HIGHLIGHT, OTHERS, NATIVE = "#d6452a", "#8c9db5", "#c9ced6"
NATIVE_TOOLS = ("h2load", "curl")


def _panel(ax: Any, name: str, workload: dict[str, Any]) -> None:
    clients = list(workload["clients"].items())
    lower = workload.get("lower_is_better", False)
    unit = workload["unit"]
    ax.set_title(f"{name} ({unit}, {'lower' if lower else 'higher'} is better)", fontsize=9)
    ok = [d["median"] for _, d in clients if d.get("median") is not None]
    if not ok:
        ax.text(0.5, 0.5, "no successful run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = [c for c, _ in clients]
    medians = [d["median"] or 0.0 for _, d in clients]
    low = [(d["median"] - d["min"]) if d.get("median") else 0.0 for _, d in clients]
    high = [(d["max"] - d["median"]) if d.get("median") else 0.0 for _, d in clients]
    colours = [
        HIGHLIGHT if c == SUBJECT else NATIVE if c in NATIVE_TOOLS else OTHERS for c in names
    ]
    positions = list(range(len(names)))[::-1]  # first client on top
    ax.barh(positions, medians, color=colours, xerr=[low, high], ecolor="#444", capsize=2)
    ax.set_yticks(positions, names, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    # A C tool far ahead would flatten every Python bar: cut the axis above the Python
    # clients and print the C tool's value at the edge.
    python_top = max(
        (m + h for c, m, h in zip(names, medians, high, strict=True) if c not in NATIVE_TOOLS),
        default=0.0,
    )
    top = max(m + h for m, h in zip(medians, high, strict=True))
    limit = python_top * 1.3 if python_top and top > 3 * python_top else top * 1.25
    ax.set_xlim(0, limit)
    for (_, data), pos, value, above in zip(clients, positions, medians, high, strict=True):
        if data.get("median") is None:
            ax.text(0, pos, " error", va="center", fontsize=7, color=HIGHLIGHT)
            continue
        text = f"{value:.1f}" if unit in ("MiB", "ms") else f"{value:,.0f}"
        if value > limit:
            ax.text(limit, pos, f"{text} (axis cut) ", va="center", ha="right", fontsize=7)
        else:  # right of the bar and of its min-max line
            ax.text(min(value + above, limit), pos, f" {text}", va="center", fontsize=7)


def draw(document: dict[str, Any], out: Path) -> None:
    """Write the chart of ``document`` (a ``latest.json``) to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = document["workloads"]
    columns = 3 if len(workloads) > 4 else 2
    rows = max(1, math.ceil(len(workloads) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 2.9 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (name, workload) in zip(flat, workloads.items(), strict=False):
        _panel(ax, name, workload)
    for ax in flat[len(workloads) :]:
        ax.set_axis_off()
    machine = document["machine"]
    fig.suptitle(
        f"hyper vs other HTTP clients: {document['date'][:10]}, {machine['cpu_model']}, "
        f"{machine['usable_cores']} core(s), Python {machine['python']}, "
        f"{document['rounds']} round(s), medians (lines: min-max)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    draw(json.loads(Path(args[0]).read_text()), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
