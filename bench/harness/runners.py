"""Runners: how the parent measures one client on one workload, in a subprocess.

:data:`RUNNERS` maps a client name to a :class:`Runner`. Python clients all go
through ``client.py`` (one fresh interpreter per run); native tools (h2load,
curl) are run and their output parsed here. To add a client, add one entry.

On nginx (when its stub_status is compiled in), :meth:`Runner.measure` also reads
the server's totals before and after each run, and refuses a run that opened another
number of connections than it should have (a client that reconnected, or a server
that closed a keep-alive connection) or made another number of requests.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.clients import DRIVERS, IMPORT_ONLY, DriverSpec
from harness.server import NginxCounters, ServerError, Target, nginx_counters
from harness.workloads import WORKLOADS, Workload

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BENCH_DIR.parent
CLIENT_SCRIPT = BENCH_DIR / "client.py"


class RunnerError(RuntimeError):
    """One run failed; the message is a one-line reason for the report."""


@dataclass(frozen=True)
class Job:
    """One run: a workload against the server, within a time limit."""

    workload: Workload
    target: Target
    quick: bool
    timeout: float
    scratch: Path


@dataclass(frozen=True)
class Sample:
    """What one run measured; ``info`` carries e.g. the library version.

    ``connections`` and ``untimed_requests`` are how many connections the run opened
    and how many requests it made besides the timed ones (warm-up, or a separate run
    as for curl); they are checked against nginx's counters.
    """

    requests: int
    body_bytes: int
    seconds: float
    info: dict[str, str] = field(default_factory=dict)
    connections: int = 1
    untimed_requests: int = 0
    #: The result in the workload's unit when it is not a rate (memory, import time).
    value: float | None = None


@dataclass(frozen=True)
class Runner:
    """A client as the parent sees it.

    ``workloads`` lists the workloads it can run (None: all of them);
    ``missing`` returns why it cannot run on this machine, or None if it can.
    """

    name: str
    run: Callable[[Job], Sample]
    workloads: frozenset[str] | None = None
    missing: Callable[[], str | None] = lambda: None

    def supports(self, workload: Workload) -> bool:
        """Whether this client has an implementation of ``workload``."""
        return self.workloads is None or workload.name in self.workloads

    def measure(self, job: Job) -> Sample:
        """Run once; on a server with counters, check and record what it saw."""
        before = _counters(job.target)
        sample = self.run(job)
        if before is None:
            return sample
        after = _counters(job.target)
        assert after is not None
        # Each reading of the counters is one connection and one request: the later
        # reading counts itself, the earlier one was counted already.
        connections = after.accepts - before.accepts - 1
        served = after.requests - before.requests - 1
        if connections != sample.connections:
            raise RunnerError(
                f"{connections} connection(s) to the server, expected {sample.connections} "
                "(a connection was not kept alive)"
            )
        expected = sample.requests + sample.untimed_requests
        if served != expected:
            raise RunnerError(f"the server saw {served} requests, expected {expected}")
        info = {**sample.info, "server_connections": str(connections)}
        info["server_requests"] = str(served)
        return dataclasses.replace(sample, info=info)


def _counters(target: Target) -> NginxCounters | None:
    try:
        return nginx_counters(target)
    except ServerError as exc:
        raise RunnerError(str(exc)) from exc


def execute(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run ``cmd``; return its stdout, or raise RunnerError with its first stderr line."""
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise RunnerError(f"timed out after {timeout:.0f} s") from exc
    except OSError as exc:
        raise RunnerError(f"cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        if not lines:
            raise RunnerError(f"exit status {proc.returncode}")
        # client.py puts its one-line reason first; an uncaught exception's is last.
        raise RunnerError(lines[-1] if lines[0].startswith("Traceback") else lines[0])
    return proc.stdout


def check_totals(job: Job, sample: Sample, requests: int) -> Sample:
    """Refuse a sample whose request count or byte count is not what was asked.

    The bytes are those received, or those sent for an upload.
    """
    wl = job.workload
    per_request = wl.upload_bytes(quick=job.quick) if wl.method == "POST" else wl.body_size
    expected = requests * per_request
    if sample.requests != requests or sample.body_bytes != expected:
        raise RunnerError(
            f"wrong totals: {sample.requests} requests / {sample.body_bytes} bytes, "
            f"expected {requests} / {expected}"
        )
    if sample.seconds <= 0:
        raise RunnerError(f"impossible time {sample.seconds!r}")
    return sample


# --- Python clients: one fresh interpreter running client.py -----------------------------

#: The peers' interpreter (``bench/.venv``), set by ``run.py`` before running; when None,
#: peer clients run with this interpreter (and are reported missing if they cannot import).
PEERS_PYTHON: Path | None = None


def set_peers_python(python: Path | None) -> None:
    """Use ``python`` for the peer clients (httpx, niquests, pycurl)."""
    global PEERS_PYTHON
    PEERS_PYTHON = python
    _import_problem.cache_clear()


def interpreter(peer: bool) -> str:
    """The interpreter a client runs with: the peers' one, or the one running run.py."""
    if peer and PEERS_PYTHON is not None:
        return str(PEERS_PYTHON)
    return sys.executable


@functools.cache
def _import_problem(python: str, module: str, peer: bool) -> str | None:
    """Why ``module`` cannot be imported by ``python``, or None if it can (checked once)."""
    try:
        proc = subprocess.run(
            [python, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_child_env(peer),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"{module} does not import with {python}: {last}"


def python_runner(name: str, spec: DriverSpec) -> Runner:
    """Return the runner of the Python client registered in ``harness.clients.DRIVERS``.

    It runs the workloads spoken in one of the driver's protocols (but not those in
    ``spec.exclude``), and the import-time workload when ``spec.module`` is set.
    """

    def run(job: Job) -> Sample:
        if job.workload.server == "none":
            assert spec.module is not None
            return run_import(job, spec.module, spec.peer)
        requests = job.workload.count(quick=job.quick)
        cmd = [
            interpreter(spec.peer),
            str(CLIENT_SCRIPT),
            f"--client={name}",
            f"--workload={job.workload.name}",
            f"--host={job.target.host}",
            f"--port={job.target.port}",
            f"--ca={job.target.ca}",
            f"--requests={requests}",
        ]
        if job.workload.method == "POST":
            cmd.append(f"--upload-size={job.workload.upload_bytes(quick=job.quick)}")
        out = execute(cmd, job.timeout, env=_child_env(spec.peer))
        return check_totals(job, _parse_client_output(out), requests)

    def missing() -> str | None:
        module = spec.requires or spec.module
        if module is None:
            return None
        return _import_problem(interpreter(spec.peer), module, spec.peer)

    supported = frozenset(
        w.name
        for w in WORKLOADS.values()
        if (w.protocol in spec.protocols and w.server != "none")
        or (w.server == "none" and spec.module is not None)
    )
    return Runner(name=name, run=run, workloads=supported - spec.exclude, missing=missing)


def import_runner(name: str, module: str, peer: bool) -> Runner:
    """A library measured only for its import time (requests)."""
    imports = frozenset(w.name for w in WORKLOADS.values() if w.server == "none")
    return Runner(
        name=name,
        run=lambda job: run_import(job, module, peer),
        workloads=imports,
        missing=lambda: _import_problem(interpreter(peer), module, peer),
    )


#: Run in a fresh interpreter: time ``import <module>`` alone (interpreter start-up and
#: the site module are not counted), print milliseconds.
_IMPORT_CODE = (
    "import time\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print((time.perf_counter() - t) * 1000.0)\n"
)


def run_import(job: Job, module: str, peer: bool) -> Sample:
    """Import ``module`` in N fresh interpreters; the median time (ms) is the value.

    One untimed import first fills the bytecode caches (``__pycache__``), as on any
    machine after the first use of a library.
    """
    repeats = job.workload.count(quick=job.quick)
    cmd = [interpreter(peer), "-c", _IMPORT_CODE.format(module=module)]
    env = _child_env(peer)
    # The caches must be written even where the environment says not to (some sandboxes
    # and CI images set PYTHONDONTWRITEBYTECODE): otherwise a library imported from a work
    # tree is compiled from source every time, while installed ones had theirs written by
    # pip, and the comparison would time the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    execute(cmd, job.timeout, env=env)
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        out = execute(cmd, job.timeout, env=env)
        try:
            times.append(float(out.strip().splitlines()[-1]))
        except (IndexError, ValueError) as exc:
            raise RunnerError(f"no import time in output: {out[-200:]!r}") from exc
    seconds = time.perf_counter() - start
    info = {"module": module, "min_ms": f"{min(times):.1f}", "max_ms": f"{max(times):.1f}"}
    info["python"] = interpreter(peer)
    return Sample(repeats, 0, seconds, info, connections=0, value=statistics.median(times))


def _parse_client_output(out: str) -> Sample:
    """The Sample in the last line of ``client.py``'s stdout."""
    try:
        record = json.loads(out.strip().splitlines()[-1])
        info = {"version": str(record["version"]), "origin": str(record["origin"])}
        info.update({str(k): str(v) for k, v in (record.get("info") or {}).items()})
        value = record.get("value")
        return Sample(
            int(record["requests"]),
            int(record["body_bytes"]),
            float(record["seconds"]),
            info,
            untimed_requests=int(record["untimed_requests"]),
            value=None if value is None else float(value),
        )
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise RunnerError(f"no valid JSON result line in output: {out[-200:]!r}") from exc


def _child_env(peer: bool = False) -> dict[str, str]:
    """The environment of client subprocesses.

    For hyper's side the work tree comes first on ``PYTHONPATH`` (hyper is imported from
    it); the peers' interpreter gets no addition (nothing of the work tree is imported
    there: client.py finds ``harness`` next to itself).
    """
    env = dict(os.environ)
    if peer and PEERS_PYTHON is not None:
        env.pop("PYTHONPATH", None)
        return env
    paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


# --- h2load: nghttp2's C load generator ------------------------------------------------------

_H2LOAD_REQUESTS = re.compile(
    r"^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", re.M
)
_H2LOAD_2XX = re.compile(r"^status codes: (\d+) 2xx", re.M)
_H2LOAD_DATA = re.compile(r"^traffic: .*\((\d+)\) data$", re.M)
_H2LOAD_PROTO = re.compile(r"^Application protocol: (\S+)", re.M)


def run_h2load(job: Job) -> Sample:
    """``h2load -n N -c 1 -m IN_FLIGHT`` (with ``--h1`` for HTTP/1.1); timed from its log.

    The time is from the first request's start to the last response's end, so the
    TCP and TLS handshakes are excluded, as for the Python clients. With ``--h1`` and
    ``-m 1``, h2load sends one request at a time on one keep-alive connection.
    """
    requests = job.workload.count(quick=job.quick, native=True)
    log = job.scratch / f"h2load-{job.workload.name}.tsv"
    log.unlink(missing_ok=True)
    cmd = [
        "h2load",
        f"--requests={requests}",
        "--clients=1",
        "--threads=1",
        f"--max-concurrent-streams={job.workload.in_flight}",
        f"--log-file={log}",
        job.target.url(job.workload.path),
    ]
    if job.workload.protocol == "http/1.1":
        cmd.insert(1, "--h1")
    if job.workload.method == "POST":  # h2load POSTs the file given with --data
        cmd.insert(1, f"--data={upload_file(job)}")
    out = execute(cmd, job.timeout)
    body_bytes = _h2load_body_bytes(out, requests, job)
    if job.workload.method == "POST":
        if body_bytes != requests * job.workload.body_size:
            raise RunnerError(f"h2load received {body_bytes} bytes of responses")
        body_bytes = requests * job.workload.upload_bytes(quick=job.quick)  # as 2xx proves
    seconds = _h2load_seconds(log, requests)
    return check_totals(job, Sample(requests, body_bytes, seconds), requests)


def upload_file(job: Job) -> Path:
    """A file of random bytes for the native tools to POST (made once per size)."""
    size = job.workload.upload_bytes(quick=job.quick)
    path = job.scratch / f"upload-{size}.bin"
    if not path.exists():
        block = os.urandom(2**20)
        with path.open("wb") as out:
            for _ in range(size // len(block)):
                out.write(block)
            out.write(block[: size % len(block)])
    return path


def _h2load_body_bytes(out: str, requests: int, job: Job) -> int:
    """Check h2load's summary (protocol, successes, 2xx) and return the data bytes.

    h2load names the protocol only when it was negotiated (with ALPN, over TLS).
    """
    proto = _H2LOAD_PROTO.search(out)
    counts = _H2LOAD_REQUESTS.search(out)
    ok_2xx = _H2LOAD_2XX.search(out)
    data = _H2LOAD_DATA.search(out)
    if not (counts and ok_2xx and data and (proto or not job.target.secure)):
        raise RunnerError(f"unexpected h2load output: {out.strip().splitlines()[-1:]}")
    if proto and proto.group(1) != job.workload.protocol:
        raise RunnerError(f"h2load negotiated {proto.group(1)}, not {job.workload.protocol}")
    succeeded, n_2xx = int(counts.group(2)), int(ok_2xx.group(1))
    if succeeded != requests or n_2xx != requests:
        raise RunnerError(f"h2load: {succeeded} succeeded, {n_2xx} 2xx of {requests}")
    return int(data.group(1))


def _h2load_seconds(log: Path, requests: int) -> float:
    """First start to last end, in seconds, from h2load's ``--log-file``."""
    starts, ends = [], []
    for line in log.read_text().splitlines():
        start_us, status, duration_us = line.split("\t")[:3]
        if status != "200":
            raise RunnerError(f"h2load logged status {status}")
        starts.append(int(start_us))
        ends.append(int(start_us) + int(duration_us))
    if len(starts) != requests:
        raise RunnerError(f"h2load logged {len(starts)} requests, expected {requests}")
    return (max(ends) - min(starts)) / 1e6


def _h2load_version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


# --- curl: one HTTP/2 download, or serial HTTP/1.1 GETs on one connection -----------------------

_CURL_FORMAT = (
    "%{http_code} %{http_version} %{size_download} %{size_upload} "
    "%{time_pretransfer} %{time_total}"
)
_CURL_SERIAL_FORMAT = (
    "%{http_code} %{http_version} %{size_download} %{num_connects} %{time_total}\n"
)


def run_curl(job: Job) -> Sample:
    """curl for ``download`` (HTTP/2) or for an HTTP/1.1 serial workload."""
    if job.workload.protocol == "http/1.1":
        return _run_curl_serial(job)
    return _run_curl_download(job)


def _run_curl_download(job: Job) -> Sample:
    """``curl --http2`` to /dev/null; timed from the start of the transfer (after TLS).

    For an upload, ``--data-binary @file`` (curl reads the file into memory first,
    before the clock starts), and the bytes counted are those sent.
    """
    url = job.target.url(job.workload.path)
    cmd = ["curl", "--http2", "--silent", "--show-error", "--cacert", str(job.target.ca)]
    if job.workload.method == "POST":
        cmd += ["--data-binary", f"@{upload_file(job)}"]
    cmd += ["--output", "/dev/null", "--write-out", _CURL_FORMAT, url]
    fields = execute(cmd, job.timeout).split()
    if len(fields) != 6:
        raise RunnerError(f"unexpected curl output: {fields}")
    status, version, size, sent, pretransfer, total = fields
    if status != "200" or version != "2":
        raise RunnerError(f"curl: status {status} over HTTP/{version}")
    if int(size) != job.workload.body_size:
        raise RunnerError(f"curl: {size} bytes received, expected {job.workload.body_size}")
    transferred = int(sent) if job.workload.method == "POST" else int(size)
    sample = Sample(1, transferred, float(total) - float(pretransfer))
    return check_totals(job, sample, 1)


def _run_curl_serial(job: Job) -> Sample:
    """``curl --http1.1`` fetching the URL N+1 times, one after the other, on one connection.

    The URLs come from a ``--config`` file. curl reports no absolute times, so the run
    is timed from outside: the wall time of this curl minus that of a curl making one
    request, i.e. N requests with all of curl's work between them (the first transfer,
    process start and connecting cancel out). The sum of curl's own per-transfer
    ``time_total``, which leaves out curl's work between transfers, is kept in the JSON
    as ``transfer_only_rate``.
    """
    requests = job.workload.count(quick=job.quick, native=True)
    url = job.target.url(job.workload.path)
    cmd = ["curl", "--http1.1", "--silent", "--show-error", "--write-out", _CURL_SERIAL_FORMAT]
    if job.target.secure:
        cmd += ["--cacert", str(job.target.ca)]
    one = _curl_config(job.scratch / "curl-1.conf", url, 1)
    many = _curl_config(job.scratch / f"curl-{requests + 1}.conf", url, requests + 1)
    start = time.perf_counter()
    _curl_transfers(execute([*cmd, "--config", str(one)], job.timeout), 1)
    middle = time.perf_counter()
    out = execute([*cmd, "--config", str(many)], job.timeout)
    end = time.perf_counter()
    timed = _curl_transfers(out, requests + 1)[1:]  # the first one connected: a warm-up
    transfer_seconds = sum(seconds for _, seconds in timed)
    info = {"transfer_only_rate": f"{requests / transfer_seconds:.1f}"} if transfer_seconds else {}
    body_bytes = sum(size for size, _ in timed)
    seconds = (end - middle) - (middle - start)
    sample = Sample(requests, body_bytes, seconds, info, connections=2, untimed_requests=2)
    return check_totals(job, sample, requests)


def _curl_config(path: Path, url: str, count: int) -> Path:
    """Write a curl config fetching ``url`` ``count`` times into /dev/null."""
    entry = f'url = "{url}"\noutput = "/dev/null"\n'
    path.write_text(entry * count)
    return path


def _curl_transfers(out: str, count: int) -> list[tuple[int, float]]:
    """Check curl's lines (200, HTTP/1.1, one connection) and return (size, seconds) each."""
    lines = out.splitlines()
    if len(lines) != count:
        raise RunnerError(f"curl reported {len(lines)} transfers, expected {count}")
    transfers = []
    for index, line in enumerate(lines):
        fields = line.split()
        if len(fields) != 5:
            raise RunnerError(f"unexpected curl output: {line!r}")
        status, version, size, connects, seconds = fields
        if status != "200" or version != "1.1":
            raise RunnerError(f"curl: status {status} over HTTP/{version}")
        if connects != ("1" if index == 0 else "0"):
            raise RunnerError(f"curl: transfer {index + 1} made {connects} new connection(s)")
        transfers.append((int(size), float(seconds)))
    return transfers


def _missing_tool(tool: str, package: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        if shutil.which(tool):
            return None
        return f"{tool} not found on PATH (Debian: apt-get install {package})"

    return missing


def tool_versions() -> dict[str, str]:
    """Version lines of the native tools that are installed."""
    versions = {}
    if shutil.which("h2load"):
        versions["h2load"] = _h2load_version()
    if shutil.which("curl"):
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10)
        versions["curl"] = out.stdout.splitlines()[0] if out.stdout else "?"
    return versions


#: Workloads the native tools do not run: memory and import time are Python matters, and
#: reading a body whole into one object is the same transfer as ``download`` for them.
_PYTHON_ONLY = frozenset({"memory", "import", "whole"})

#: Every client the benchmark knows, in report order. h2load and curl (Debian's builds)
#: speak no HTTP/3: pycurl, whose wheels bring a libcurl with ngtcp2, is the C reference
#: there.
RUNNERS: dict[str, Runner] = {
    **{name: python_runner(name, spec) for name, spec in DRIVERS.items()},
    **{name: import_runner(name, module, peer) for name, (module, peer) in IMPORT_ONLY.items()},
    "h2load": Runner(
        "h2load",
        run_h2load,
        frozenset(w.name for w in WORKLOADS.values() if w.protocol != "h3") - _PYTHON_ONLY,
        missing=_missing_tool("h2load", "nghttp2-client"),
    ),
    "curl": Runner(
        "curl",
        run_curl,
        frozenset(
            {
                "download",
                "upload",
                *(w.name for w in WORKLOADS.values() if w.protocol == "http/1.1"),
            }
        )
        - _PYTHON_ONLY,
        missing=_missing_tool("curl", "curl"),
    ),
}
