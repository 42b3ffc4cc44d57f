"""Benchmark hyper against httpx, niquests, pycurl, http.client, h2load and curl, locally.

HTTP/2 workloads run against nghttpd over TLS, HTTP/1.1 workloads against nginx (in
plaintext and over TLS), HTTP/3 workloads against Caddy; only the servers the chosen
workloads need are started.
The peers (httpx, niquests, pycurl) run in their own virtual environment,
``bench/.venv``, made on first use from ``bench/requirements-peers.txt``.

Usage::

    python bench/run.py [--quick] [--rounds N] [--workloads a,b] [--clients x,y] [--json PATH]
    python bench/run.py --setup        # only (re)make bench/.venv

Every client x workload runs in its own fresh subprocess; rounds are interleaved
(each round runs every client once, in a rotating order) and the report gives, per
workload, each client's median/min/max and hyper's ratio to the others, then a
summary with issue 6's targets. It writes the JSON file, a PNG bar chart and an
RST table next to it (``latest.json``, ``latest.png``, ``latest.rst``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from harness import machine
from harness.report import Outcome, WorkloadResult, write_json
from harness.runners import (
    RUNNERS,
    Job,
    Runner,
    RunnerError,
    set_peers_python,
    tool_versions,
)
from harness.server import (
    ServerError,
    Target,
    caddy_version,
    make_docroot,
    make_tls_files,
    nghttpd_version,
    nginx_version,
    server_missing,
    servers,
)
from harness.summary import Verdict, evaluate, rst_document, text_tables
from harness.venv import VENV_DIR, VenvError, ensure_peers_venv, peer_versions
from harness.workloads import WORKLOADS, Workload, docroot_files

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
DEFAULT_ROUNDS, QUICK_ROUNDS = 3, 1
DEFAULT_TIMEOUT, QUICK_TIMEOUT = 120.0, 20.0


def _names(registry: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated list of names from ``registry``."""

    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in names if n not in registry]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {unknown or text!r}; choose from {','.join(registry)}"
            )
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 round, fewer requests (< 1 minute in all)"
    )
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}, quick 1)")
    parser.add_argument(
        "--workloads",
        type=_names(list(WORKLOADS)),
        metavar="A,B",
        help=f"comma-separated, from {','.join(WORKLOADS)} "
        "(default: all whose server is installed)",
    )
    parser.add_argument(
        "--clients",
        type=_names(list(RUNNERS)),
        metavar="X,Y",
        help=f"comma-separated, from {','.join(RUNNERS)} (default: all installed)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write results; the chart (.png) and table (.rst) go next to it",
    )
    parser.add_argument("--timeout", type=float, help="seconds allowed per run (default 120/20)")
    parser.add_argument(
        "--setup",
        action="store_true",
        help=f"only (re)make the peers' virtual environment ({VENV_DIR}), then exit",
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="run the peers with this interpreter instead of bench/.venv",
    )
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.timeout is None:
        args.timeout = QUICK_TIMEOUT if args.quick else DEFAULT_TIMEOUT
    return args


def select_workloads(names: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The workloads to run, and the ones left out (with why).

    Workloads named explicitly are always run (a missing server is then an error);
    by default, workloads whose server is not installed are left out.
    """
    if names is not None:
        return names, {}
    chosen, skipped = [], {}
    for workload in WORKLOADS.values():
        reason = server_missing(workload.server)
        if reason is None:
            chosen.append(workload.name)
        else:
            skipped[workload.name] = reason
    return chosen, skipped


def select_runners(names: list[str] | None) -> tuple[list[Runner], dict[str, str]]:
    """The runners to use, and the clients left out (with why).

    Clients named explicitly are always run (a missing tool then shows as an error);
    by default, clients whose tool is not installed are left out.
    """
    if names is not None:
        return [RUNNERS[n] for n in names], {}
    chosen, skipped = [], {}
    for runner in RUNNERS.values():
        reason = runner.missing()
        if reason is None:
            chosen.append(runner)
        else:
            skipped[runner.name] = reason
    return chosen, skipped


def run_one(runner: Runner, job: Job, round_no: int) -> Outcome:
    """Run one client once; never raises for a client failure."""
    reason = runner.missing()
    if reason is not None:
        return Outcome(round_no, error=reason)
    try:
        sample = runner.measure(job)
    except RunnerError as exc:
        return Outcome(round_no, error=str(exc))
    except Exception as exc:  # a bug in a runner must not end the whole benchmark
        return Outcome(round_no, error=f"runner failed: {type(exc).__name__}: {exc}")
    value = sample.value
    if value is None:
        value = job.workload.rate(sample.requests, sample.body_bytes, sample.seconds)
    return Outcome(round_no, value=value, sample=sample)


def run_workload(
    workload: Workload, runners: list[Runner], rounds: int, job: Job
) -> WorkloadResult:
    """Run every runner once per round; each round starts with a different client."""
    result = WorkloadResult(workload, job.quick)
    active = [r for r in runners if r.supports(workload)]
    for r in active:  # fix the report order before rotating the run order
        result.outcomes[r.name] = []
    for round_no in range(1, rounds + 1):
        shift = (round_no - 1) % max(len(active), 1)
        for runner in active[shift:] + active[:shift]:
            outcome = run_one(runner, job, round_no)
            result.add(runner.name, outcome)
            _progress(workload, round_no, rounds, runner.name, outcome)
    return result


def _progress(workload: Workload, round_no: int, rounds: int, client: str, o: Outcome) -> None:
    tag = f"[{workload.name} {round_no}/{rounds}] {client:<11}"
    if o.sample is None:
        print(f"{tag} error: {o.error}", file=sys.stderr, flush=True)
    else:
        text = f"{o.value:,.1f} {workload.unit} ({o.sample.seconds:.2f} s)"
        print(f"{tag} {text}", file=sys.stderr, flush=True)


def run_all(
    args: argparse.Namespace, runners: list[Runner], scratch: Path
) -> tuple[dict[str, Target], list[WorkloadResult]]:
    """Prepare TLS files and docroot, start the servers, and run every workload."""
    workloads = [WORKLOADS[name] for name in args.workloads]
    tls = make_tls_files(scratch / "tls")
    docroot = make_docroot(scratch / "htdocs", docroot_files(workloads))
    results = []
    with servers(workloads, tls, docroot, scratch) as targets:
        for name, target in targets.items():
            if target.program != "none":
                print(f"{name} listening on {target.url('/')}", file=sys.stderr)
        for workload in workloads:
            target = targets[workload.endpoint]
            job = Job(workload, target, args.quick, args.timeout, scratch)
            results.append(run_workload(workload, runners, args.rounds, job))
    return targets, results


def start_document(
    args: argparse.Namespace,
    skipped: dict[str, str],
    info: dict[str, object],
    peers: dict[str, str],
) -> dict[str, object]:
    """What is known before running: when, where, with what, and how."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "rounds": args.rounds,
        "timeout_per_run": args.timeout,
        "machine": info,
        "versions": {
            "packages": machine.package_versions(),
            "peers_venv": peers,
            "tools": {
                "nghttpd": nghttpd_version(),
                "nginx": nginx_version(),
                "caddy": caddy_version(),
                **tool_versions(),
            },
        },
        "skipped_clients": skipped,
    }


def finish_document(
    document: dict[str, object],
    targets: dict[str, Target],
    results: list[WorkloadResult],
    verdicts: list[Verdict],
) -> dict[str, object]:
    """Add the servers, the load at the end, every number and the targets."""
    return {
        **document,
        "load_average_at_end": machine.load_average(),
        "servers": {
            name: target.to_json() for name, target in targets.items() if target.program != "none"
        },
        "workloads": {r.workload.name: r.to_json() for r in results},
        "targets": [v.to_json() for v in verdicts],
    }


def describe(info: dict[str, object], targets: dict[str, Target], peers: dict[str, str]) -> str:
    """One line saying what ran where, printed above the tables."""
    packages = machine.package_versions()
    programs = {t.program for t in targets.values()}
    versions = [
        v()
        for name, v in (
            ("nghttpd", nghttpd_version),
            ("nginx", nginx_version),
            ("caddy", lambda: f"Caddy {caddy_version()}"),
        )
        if name in programs
    ]
    libraries = [f"hyper {packages['hyper']}"]
    libraries += [
        f"{name} {peers[name]}" for name in ("httpx", "niquests", "pycurl") if name in peers
    ]
    return (
        f"{info['cpu_model']}, {info['usable_cores']} core(s), Linux {info['kernel']}, "
        f"Python {info['python']}; {', '.join(libraries)}; {', '.join(versions)}; "
        f"load average at start {info['load_average_at_start']}"
    )


def prepare_peers(args: argparse.Namespace) -> dict[str, str]:
    """Make (if needed) and select the peers' venv; return its package versions.

    If it cannot be made (no network, no pip), the peers run with this interpreter
    when their libraries import there, and are skipped otherwise.
    """
    if args.no_venv:
        return {}
    try:
        python = ensure_peers_venv()
    except VenvError as exc:
        print(f"warning: no peers' venv ({exc}); peers run with {sys.executable}", file=sys.stderr)
        return {}
    set_peers_python(python)
    return peer_versions(python)


def chart_python() -> str | None:
    """An interpreter that has matplotlib: this one, else the peers' venv, else None."""
    if importlib.util.find_spec("matplotlib") is not None:
        return sys.executable
    python = VENV_DIR / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import matplotlib"], capture_output=True, timeout=60
        )
        if probe.returncode == 0:
            return str(python)
    return None


def write_chart(json_path: Path, png_path: Path) -> None:
    """Draw ``png_path`` from ``json_path`` with bench/chart.py (skipped without matplotlib)."""
    python = chart_python()
    if python is None:
        print("no chart: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        return
    script = Path(__file__).resolve().parent / "chart.py"
    proc = subprocess.run(
        [python, str(script), str(json_path), str(png_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        print(f"no chart: chart.py failed: {tail}", file=sys.stderr)
        return
    print(f"chart written to {png_path}")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: the server and subprocesses are stopped


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.setup:
        try:
            python = ensure_peers_venv(force=True)
        except VenvError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"peers' environment ready: {python}")
        return 0
    peers = prepare_peers(args)
    args.workloads, skipped_workloads = select_workloads(args.workloads)
    for name, reason in skipped_workloads.items():
        print(f"skipping workload {name}: {reason}", file=sys.stderr)
    if not args.workloads:
        print("error: no workload can run here", file=sys.stderr)
        return 2
    runners, skipped = select_runners(args.clients)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
    info = machine.machine_info()
    document = start_document(args, skipped, info, peers)
    document["skipped_workloads"] = skipped_workloads
    try:
        with tempfile.TemporaryDirectory(prefix="hyper-bench-") as tmp:
            targets, results = run_all(args, runners, Path(tmp))
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    line = describe(info, targets, peers)
    verdicts = evaluate(results)
    print(f"\n{line}\n")
    print("\n\n".join(r.format(args.rounds) for r in results))
    print(f"\n{text_tables(results, verdicts, list(RUNNERS))}\n")
    write_json(finish_document(document, targets, results, verdicts), args.json)
    print(f"results written to {args.json}")
    caption = (
        f"Measured on {document['date'][:10]} with ``{document['command']}``"
        f" ({args.rounds} round(s)): {line}."
    )
    rst_path = args.json.with_suffix(".rst")
    workloads = [r.workload for r in results]
    rst_path.write_text(rst_document(results, verdicts, list(RUNNERS), caption, workloads))
    print(f"table written to {rst_path}")
    write_chart(args.json, args.json.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
