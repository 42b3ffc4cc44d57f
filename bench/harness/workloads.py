"""The workloads: what is measured, how much of it, and in which unit.

This module is shared by the parent (``run.py``) and the client subprocess
(``client.py``), so it must stay importable with the standard library alone.
To add a workload, add a :class:`Workload` to :data:`WORKLOADS`, a timed
function to ``client.py``'s ``WORK`` and, if needed, a driver primitive.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

#: Rates (higher is better), or a cost: MiB of memory, ms of import time (lower is better).
Unit = Literal["req/s", "MB/s", "MiB", "ms"]
#: The HTTP version a workload is spoken in (ALPN names).
Protocol = Literal["h2", "http/1.1", "h3"]
#: The program serving a workload: nghttpd (HTTP/2 over TLS), nginx (HTTP/1.1), Caddy
#: (HTTP/3), or none (the import-time workload needs no server).
ServerName = Literal["nghttpd", "nginx", "caddy", "none"]

#: The small file fetched by warm-up requests.
WARMUP_PATH = "/1k.bin"
WARMUP_SIZE = 1024

#: One megabyte, as used for MB/s (decimal, like network throughput figures).
MEGABYTE = 10**6
#: One mebibyte, as used for memory (like RSS figures).
MEBIBYTE = 2**20

#: Streams opened at once on one connection by the memory workload (the server allows
#: that many: see NGHTTPD_OPTIONS in server.py).
MEMORY_STREAMS = 1000
#: Fresh interpreters timed per run of the import workload (full run, ``--quick``).
IMPORT_REPEATS, IMPORT_REPEATS_QUICK = 11, 5


@dataclass(frozen=True)
class Workload:
    """One thing to measure, identical for every client.

    ``requests`` is the number of requests a Python client makes per run;
    native load generators (h2load) are ``native_scale`` times faster, so they
    make that many times more requests, to run for a comparable, measurable time.
    """

    name: str
    description: str
    path: str
    body_size: int
    unit: Unit
    requests: int
    quick_requests: int
    in_flight: int = 1
    native_scale: int = 1
    protocol: Protocol = "h2"
    server: ServerName = "nghttpd"
    tls: bool = True
    #: ``POST`` workloads send ``upload_size`` bytes per request (``quick_upload_size``
    #: with ``--quick``); the server discards them.
    method: Literal["GET", "POST"] = "GET"
    upload_size: int = 0
    quick_upload_size: int = 0

    def upload_bytes(self, *, quick: bool) -> int:
        """How many bytes each request of this workload sends."""
        return self.quick_upload_size if quick else self.upload_size

    @property
    def lower_is_better(self) -> bool:
        """Whether the unit is a cost (memory, time) rather than a rate."""
        return self.unit in ("MiB", "ms")

    def __post_init__(self) -> None:
        for count in (self.requests, self.quick_requests):
            if count % self.in_flight:
                raise ValueError(f"{self.name}: {count} requests is not a multiple of in_flight")
        if self.server == "none":
            return
        if self.protocol == "h2" and (self.server != "nghttpd" or not self.tls):
            raise ValueError(f"{self.name}: HTTP/2 workloads run on nghttpd over TLS")
        if self.protocol == "h3" and (self.server != "caddy" or not self.tls):
            raise ValueError(f"{self.name}: HTTP/3 workloads run on Caddy (QUIC is TLS)")
        if self.protocol == "http/1.1" and self.in_flight != 1:
            raise ValueError(f"{self.name}: HTTP/1.1 has one request in flight per connection")

    @property
    def endpoint(self) -> str:
        """The name of the listening socket this workload uses, e.g. ``"nginx-tls"``."""
        if self.server == "none":
            return "none"
        return f"{self.server}-{'tls' if self.tls else 'plain'}"

    def count(self, *, quick: bool, native: bool = False) -> int:
        """Return how many requests one run makes."""
        base = self.quick_requests if quick else self.requests
        return base * self.native_scale if native else base

    def rate(self, requests: int, body_bytes: int, seconds: float) -> float:
        """Convert one run's totals into this workload's rate unit (higher is better).

        ``body_bytes`` counts the bytes transferred: received for GETs, sent for uploads.
        (Memory and import time are measured directly, in their unit, by the runs.)
        """
        if self.unit == "req/s":
            return requests / seconds
        return body_bytes / seconds / MEGABYTE


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="serial",
            description="1 KiB GETs, one at a time, on one connection",
            path="/1k.bin",
            body_size=1024,
            unit="req/s",
            requests=2000,
            quick_requests=300,
            native_scale=2,
        ),
        Workload(
            name="concurrent",
            description="1 KiB GETs, 100 in flight, on one connection",
            path="/1k.bin",
            body_size=1024,
            unit="req/s",
            requests=2000,
            quick_requests=500,
            in_flight=100,
            native_scale=40,
        ),
        Workload(
            name="download",
            description="one 100 MiB GET, body read in 64 KiB pieces",
            path="/100m.bin",
            body_size=100 * 2**20,
            unit="MB/s",
            requests=1,
            quick_requests=1,
        ),
        Workload(
            name="whole",
            description="one 100 MiB GET, the body read whole: read(), .content, pycurl "
            "into a BytesIO",
            path="/100m.bin",
            body_size=100 * 2**20,
            unit="MB/s",
            requests=1,
            quick_requests=1,
        ),
        Workload(
            name="upload",
            description="one 100 MiB POST (16 MiB with --quick); nghttpd reads and "
            "discards the body, and answers with /1k.bin",
            path="/1k.bin",
            body_size=1024,
            unit="MB/s",
            requests=1,
            quick_requests=1,
            method="POST",
            upload_size=100 * 2**20,
            # httpx uploads at ~10 MB/s: 100 MiB would not fit --quick's time limit.
            quick_upload_size=16 * 2**20,
        ),
        Workload(
            name="h11serial",
            description="1 KiB GETs, one at a time, on one HTTP/1.1 keep-alive connection "
            "(nginx, plaintext)",
            path="/1k.bin",
            body_size=1024,
            unit="req/s",
            requests=3000,
            quick_requests=1000,
            native_scale=4,
            protocol="http/1.1",
            server="nginx",
            tls=False,
        ),
        Workload(
            name="h11serial-tls",
            description="1 KiB GETs, one at a time, on one HTTP/1.1 keep-alive connection "
            "(nginx, TLS, ALPN http/1.1)",
            path="/1k.bin",
            body_size=1024,
            unit="req/s",
            requests=3000,
            quick_requests=1000,
            native_scale=4,
            protocol="http/1.1",
            server="nginx",
            tls=True,
        ),
        Workload(
            name="memory",
            description="peak RSS above the baseline with 1,000 streams open at once "
            "on one connection (1 KiB GETs)",
            path="/1k.bin",
            body_size=1024,
            unit="MiB",
            requests=MEMORY_STREAMS,
            quick_requests=MEMORY_STREAMS,
            in_flight=MEMORY_STREAMS,
        ),
        Workload(
            name="import",
            description="time to import the library, in fresh interpreters "
            "(median over the interpreters of a run)",
            path="",
            body_size=0,
            unit="ms",
            requests=IMPORT_REPEATS,
            quick_requests=IMPORT_REPEATS_QUICK,
            protocol="http/1.1",
            server="none",
            tls=False,
        ),
    )
}


def _over_http3(base: str, name: str, description: str, **changes: int) -> Workload:
    """The work of the HTTP/2 workload ``base``, over HTTP/3 to Caddy (no native tool
    speaks HTTP/3 here, hence no ``native_scale``)."""
    return dataclasses.replace(
        WORKLOADS[base],
        name=name,
        description=description,
        protocol="h3",
        server="caddy",
        native_scale=1,
        **changes,
    )


WORKLOADS.update(
    (w.name, w)
    for w in (
        _over_http3(
            "serial", "h3serial", "1 KiB GETs, one at a time, on one HTTP/3 connection (Caddy)"
        ),
        _over_http3(
            "concurrent",
            "h3concurrent",
            "1 KiB GETs, 100 in flight, on one HTTP/3 connection (Caddy)",
            # 2,000 took hyper and pycurl under a second: too short to time steadily.
            requests=5000,
        ),
        _over_http3(
            "download",
            "h3download",
            "one 100 MiB GET over HTTP/3 (Caddy), body read in 64 KiB pieces",
        ),
    )
)

#: How large each piece of a streamed body is.
CHUNK_SIZE = 64 * 1024


def docroot_files(workloads: list[Workload]) -> dict[str, int]:
    """Return the files (name -> size) the server must serve for ``workloads``."""
    files = {WARMUP_PATH.lstrip("/"): WARMUP_SIZE}
    for workload in workloads:
        if workload.path:
            files[workload.path.lstrip("/")] = workload.body_size
    return files
