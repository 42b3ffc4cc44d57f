"""Run ONE client on ONE workload in this fresh process and print one JSON line.

Usage (normally called by ``run.py``)::

    python bench/client.py --client httpx --workload serial --port 8443 --ca ca.pem -n 3000

The workload says which protocol to speak and whether to use TLS (the CA is then
trusted). Only the work is timed, with ``time.perf_counter()``: connecting and a
warm-up happen first. Every response's status and body length is checked. On failure the
first line of stderr says why (the traceback follows) and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.clients import DRIVERS, load_driver
from harness.clients.base import BenchError, ClientTarget, Driver
from harness.workloads import (
    CHUNK_SIZE,
    MEBIBYTE,
    WARMUP_PATH,
    WARMUP_SIZE,
    WORKLOADS,
    Workload,
)


@dataclass(frozen=True)
class Timed:
    """What one timed run did: requests completed, body bytes read, seconds taken,
    and how many requests were made before the timing started (warm-up)."""

    requests: int
    body_bytes: int
    seconds: float
    untimed_requests: int = 1
    #: The result itself when it is not a rate (memory: MiB), and how it was measured.
    value: float | None = None
    info: dict[str, str] = field(default_factory=dict)


def expect_size(workload: Workload, sizes: list[int]) -> int:
    """Return the total of ``sizes``, raising if any body has the wrong length."""
    for size in sizes:
        if size != workload.body_size:
            raise BenchError(f"GET {workload.path}: {size} bytes, expected {workload.body_size}")
    return sum(sizes)


def warm_up(driver: Driver) -> None:
    """One request on the connection, so handshakes and lazy setup are not timed."""
    size = driver.get(WARMUP_PATH)
    if size != WARMUP_SIZE:
        raise BenchError(f"warm-up GET {WARMUP_PATH}: {size} bytes, expected {WARMUP_SIZE}")


def time_serial(driver: Driver, workload: Workload, count: int) -> Timed:
    """``count`` GETs, each one finished before the next starts, each body read whole into
    one ``bytes`` (``whole`` is this with a large body: the way most programs read one)."""
    warm_up(driver)
    sizes = []
    start = time.perf_counter()
    for _ in range(count):
        sizes.append(driver.get(workload.path))
    seconds = time.perf_counter() - start
    return Timed(count, expect_size(workload, sizes), seconds)


def time_concurrent(driver: Driver, workload: Workload, count: int) -> Timed:
    """``count`` GETs in batches of ``in_flight`` requests in flight at once."""
    warm_up(driver)
    driver.get_batch(workload.path, workload.in_flight)  # also warms threads/stream state
    sizes: list[int] = []
    start = time.perf_counter()
    for _ in range(count // workload.in_flight):
        sizes.extend(driver.get_batch(workload.path, workload.in_flight))
    seconds = time.perf_counter() - start
    return Timed(count, expect_size(workload, sizes), seconds, 1 + workload.in_flight)


def time_download(driver: Driver, workload: Workload, count: int) -> Timed:
    """``count`` streamed GETs of a large body, read in CHUNK_SIZE pieces and discarded."""
    warm_up(driver)
    sizes = []
    start = time.perf_counter()
    for _ in range(count):
        sizes.append(driver.stream(workload.path, CHUNK_SIZE))
    seconds = time.perf_counter() - start
    return Timed(count, expect_size(workload, sizes), seconds)


def time_upload(driver: Driver, workload: Workload, count: int) -> Timed:
    """``count`` POSTs of ``upload_size`` bytes; the response (1 KiB) is read and checked.

    The body is one ``bytes`` object made before the clock starts, the same for every
    client; ``body_bytes`` is what was *sent*.
    """
    warm_up(driver)
    body = os.urandom(MEBIBYTE) * (workload.upload_size // MEBIBYTE)
    body += os.urandom(workload.upload_size - len(body))
    sizes = []
    start = time.perf_counter()
    for _ in range(count):
        sizes.append(driver.post(workload.path, body))
    seconds = time.perf_counter() - start
    expect_size(workload, sizes)
    return Timed(count, count * len(body), seconds)


def _status_kib(name: str) -> int:
    """A ``kB`` line of /proc/self/status (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    raise BenchError(f"no {name} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).

    Writing ``5`` to /proc/self/clear_refs does that; False where it is not allowed.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def time_memory(driver: Driver, workload: Workload, count: int) -> Timed:
    """Peak RSS above the baseline while ``in_flight`` requests are open at once.

    After a warm-up request (the connection, TLS and the library's lazy state exist)
    and a garbage collection, the baseline is the current RSS, and the peak RSS is
    reset to it; then all the requests are opened at once on the connection (hyper:
    ``request()`` 1,000 times, then ``get_response(id)`` for each) and read. The
    result is the peak RSS (``VmHWM``) minus the baseline, in MiB. Without
    /proc/self/clear_refs the peak is ``ru_maxrss``, the peak since the process
    started, which can only overstate the cost.
    """
    warm_up(driver)
    # Also open whatever the batch uses (niquests' multiplexed session, pycurl's multi
    # handle have connections of their own), so that no handshake is measured.
    expect_size(workload, driver.get_batch(workload.path, 1))
    gc.collect()
    exact = _reset_peak_rss()
    baseline = _status_kib("VmRSS")
    start = time.perf_counter()
    sizes = driver.get_batch(workload.path, workload.in_flight)
    seconds = time.perf_counter() - start
    if exact:
        peak, method = _status_kib("VmHWM"), "VmHWM after clear_refs"
    else:  # ru_maxrss is in KiB on Linux
        peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    total = expect_size(workload, sizes)
    info = {"baseline_mib": f"{baseline / 1024:.1f}", "peak_mib": f"{peak / 1024:.1f}"}
    info["method"] = method
    value = max(peak - baseline, 0) / 1024
    return Timed(len(sizes), total, seconds, untimed_requests=2, value=value, info=info)


#: Workload name -> timed function. Add one function here per new workload.
WORK: dict[str, Callable[[Driver, Workload, int], Timed]] = {
    "serial": time_serial,
    "concurrent": time_concurrent,
    "download": time_download,
    "whole": time_serial,
    "h11serial": time_serial,
    "h11serial-tls": time_serial,
    "h3serial": time_serial,
    "h3concurrent": time_concurrent,
    "h3download": time_download,
    "upload": time_upload,
    "memory": time_memory,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, choices=sorted(DRIVERS))
    parser.add_argument("--workload", required=True, choices=sorted(WORK))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--ca", required=True, help="PEM file of the CA to trust")
    parser.add_argument("-n", "--requests", required=True, type=int)
    parser.add_argument("--upload-size", type=int, help="bytes per POST (upload workloads)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, object]:
    """Connect, run the timed workload, and return the result record."""
    workload = WORKLOADS[args.workload]
    if args.upload_size is not None:
        workload = dataclasses.replace(workload, upload_size=args.upload_size)
    target = ClientTarget(
        host=args.host,
        port=args.port,
        ca=args.ca,
        secure=workload.tls,
        protocol=workload.protocol,
    )
    driver = load_driver(args.client)(target)
    try:
        timed = WORK[workload.name](driver, workload, args.requests)
    finally:
        driver.close()
    return {
        "client": args.client,
        "workload": workload.name,
        "requests": timed.requests,
        "body_bytes": timed.body_bytes,
        "seconds": timed.seconds,
        "untimed_requests": timed.untimed_requests,
        "version": driver.version,
        "origin": driver.origin,
        "value": timed.value,
        "info": timed.info,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the JSON result, or a one-line reason on stderr."""
    args = parse_args(argv)
    try:
        result = run(args)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        traceback.print_exc()
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
