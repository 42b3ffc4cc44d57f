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
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from harness.clients import DRIVERS, load_driver
from harness.clients.base import BenchError, ClientTarget, Driver
from harness.workloads import CHUNK_SIZE, WARMUP_PATH, WARMUP_SIZE, WORKLOADS, Workload


@dataclass(frozen=True)
class Timed:
    """What one timed run did: requests completed, body bytes read, seconds taken,
    and how many requests were made before the timing started (warm-up)."""

    requests: int
    body_bytes: int
    seconds: float
    untimed_requests: int = 1


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
    """``count`` GETs, each one finished before the next starts."""
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


#: Workload name -> timed function. Add one function here per new workload.
WORK: dict[str, Callable[[Driver, Workload, int], Timed]] = {
    "serial": time_serial,
    "concurrent": time_concurrent,
    "download": time_download,
    "h11serial": time_serial,
    "h11serial-tls": time_serial,
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
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, object]:
    """Connect, run the timed workload, and return the result record."""
    workload = WORKLOADS[args.workload]
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
