"""Where a whole-body read's time goes: hyper's ``read()`` against its streamed read.

Both reads fetch the same body from nghttpd over TLS on one HTTP/2 connection, interleaved,
for each body size given. For each it reports the median wall time, the client's user and
system CPU time (``getrusage``; nghttpd runs in a child process and is not counted) and its
minor page faults. The streamed read reuses a few 64 KiB buffers; the whole read fills one
new buffer of the body's size, so the difference in system time and faults is what fresh
memory costs on the machine.

Usage::

    python bench/faults.py [--sizes 16,30,100] [--reads 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from harness.server import make_docroot, make_tls_files, nghttpd

REPO_ROOT = Path(__file__).resolve().parent.parent
MEBIBYTE = 2**20
CHUNK_SIZE = 65_536


class Sample(NamedTuple):
    """One read: wall seconds, user and system CPU seconds, minor page faults."""

    wall: float
    user: float
    system: float
    faults: int


def measure(read: Callable[[], int], size: int) -> Sample:
    """Run ``read`` once and check that it returned ``size`` bytes."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    got = read()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    if got != size:
        raise SystemExit(f"read {got} bytes, expected {size}")
    return Sample(
        wall,
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
        after.ru_minflt - before.ru_minflt,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one table row per body size and read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,30,100", help="body sizes in MiB")
    parser.add_argument("--reads", type=int, default=7, help="reads of each kind per size")
    args = parser.parse_args(argv)
    sizes = [int(part) * MEBIBYTE for part in args.sizes.split(",")]

    sys.path.insert(0, str(REPO_ROOT))
    import hyper
    from hyper.tls import init_context

    scratch = Path(tempfile.mkdtemp(prefix="hyper-faults-"))
    tls = make_tls_files(scratch / "tls")
    docroot = make_docroot(scratch / "docroot", {f"{size}.bin": size for size in sizes})
    print(f"{'MiB':>5} {'read':<8} {'wall ms':>8} {'user ms':>8} {'sys ms':>7} {'faults':>7}")
    with nghttpd(tls, docroot, scratch / "nghttpd.log") as target:
        context = init_context(cert_path=str(target.ca))
        conn = hyper.HTTP20Connection(target.host, target.port, secure=True, ssl_context=context)

        for size in sizes:
            path = f"/{size}.bin"

            def whole(path: str = path) -> int:
                conn.request("GET", path)
                return len(conn.get_response().read())

            def streamed(path: str = path) -> int:
                conn.request("GET", path)
                response = conn.get_response()
                total = 0
                while piece := response.read(CHUNK_SIZE):
                    total += len(piece)
                return total

            whole()  # the first read of a size warms the allocator and the server's cache
            samples: dict[str, list[Sample]] = {"whole": [], "streamed": []}
            for _ in range(args.reads):
                samples["whole"].append(measure(whole, size))
                samples["streamed"].append(measure(streamed, size))
            for name, runs in samples.items():
                print(
                    f"{size // MEBIBYTE:>5} {name:<8}"
                    f" {statistics.median(s.wall for s in runs) * 1000:>8.1f}"
                    f" {statistics.median(s.user for s in runs) * 1000:>8.1f}"
                    f" {statistics.median(s.system for s in runs) * 1000:>7.1f}"
                    f" {statistics.median(s.faults for s in runs):>7.0f}"
                )
            ratio = statistics.median(
                s.wall / w.wall for s, w in zip(samples["streamed"], samples["whole"], strict=True)
            )
            print(f"{size // MEBIBYTE:>5} whole read at {ratio:.2f}x the streamed read's rate")
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
