"""Benchmark hyper against httpx, http.client, h2load and curl on local nghttpd and nginx.

HTTP/2 workloads run against nghttpd over TLS, HTTP/1.1 workloads against nginx (in
plaintext and over TLS); only the servers the chosen workloads need are started.

Usage::

    python bench/run.py [--quick] [--rounds N] [--workloads a,b] [--clients x,y] [--json PATH]

Every client x workload runs in its own fresh subprocess; rounds are interleaved
(each round runs every client once, in a rotating order) and the report gives, per
workload, each client's median/min/max and hyper's ratio to the others.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from harness import machine
from harness.report import Outcome, WorkloadResult, write_json
from harness.runners import RUNNERS, Job, Runner, RunnerError, tool_versions
from harness.server import (
    ServerError,
    Target,
    make_docroot,
    make_tls_files,
    nghttpd_version,
    nginx_version,
    server_missing,
    servers,
)
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
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument("--timeout", type=float, help="seconds allowed per run (default 120/20)")
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
            print(f"{name} listening on {target.url('/')}", file=sys.stderr)
        for workload in workloads:
            target = targets[workload.endpoint]
            job = Job(workload, target, args.quick, args.timeout, scratch)
            results.append(run_workload(workload, runners, args.rounds, job))
    return targets, results


def start_document(
    args: argparse.Namespace, skipped: dict[str, str], info: dict[str, object]
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
            "tools": {
                "nghttpd": nghttpd_version(),
                "nginx": nginx_version(),
                **tool_versions(),
            },
        },
        "skipped_clients": skipped,
    }


def finish_document(
    document: dict[str, object], targets: dict[str, Target], results: list[WorkloadResult]
) -> dict[str, object]:
    """Add the servers, the load at the end, and every number."""
    return {
        **document,
        "load_average_at_end": machine.load_average(),
        "servers": {name: target.to_json() for name, target in targets.items()},
        "workloads": {r.workload.name: r.to_json() for r in results},
    }


def describe(info: dict[str, object], targets: dict[str, Target]) -> str:
    """One line saying what ran where, printed above the tables."""
    packages = machine.package_versions()
    programs = {t.program for t in targets.values()}
    versions = [
        v()
        for name, v in (("nghttpd", nghttpd_version), ("nginx", nginx_version))
        if name in programs
    ]
    return (
        f"{info['cpu_model']}, {info['usable_cores']} core(s), Python {info['python']}; "
        f"hyper {packages['hyper']}, httpx {packages['httpx']}, {', '.join(versions)}; "
        f"load average at start {info['load_average_at_start']}"
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: the server and subprocesses are stopped


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
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
    document = start_document(args, skipped, info)
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
    print(f"\n{describe(info, targets)}\n")
    print("\n\n".join(r.format(args.rounds) for r in results))
    write_json(finish_document(document, targets, results), args.json)
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
