"""Performance regression guard: hyper must not fall behind httpx on one-at-a-time GETs.

A quick, side-by-side version of the ``serial`` workload of ``bench/run.py``: 1 KiB
GETs, one at a time, on one HTTP/2 connection over TLS to nghttpd (the session's
``nghttpd_tls`` server), by hyper and by httpx (``http2=True``) in this process.
Rounds are interleaved (hyper then httpx, then httpx then hyper, ...), so that a
machine getting busier or quieter affects both alike, and the guard compares the
median of the per-round ratios.

hyper does about 1.7-2.5x httpx's rate here, so requiring at least 1.0x is a real
guard (a regression that loses hyper's lead fails it) that the noise of a shared
machine does not trip: the per-round ratios vary by ~10-20%. The full benchmark
(``python bench/run.py``) is where the actual targets are measured.
"""

from __future__ import annotations

import ssl
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

import hyper
import hyper.tls
from tests.support.nghttpd import NghttpdServer
from tests.support.processes import missing_requirement

pytestmark = [pytest.mark.bench, pytest.mark.timeout(60)]

#: Interleaved rounds, and timed requests per client per round (~1 s in all on an idle
#: 2-core machine; a few seconds on a busy one).
ROUNDS = 7
REQUESTS = 120
#: Untimed requests per client before the first round (connection, TLS, lazy setup).
WARMUP = 30
#: hyper's median per-round rate ratio to httpx must be at least this.
MIN_RATIO = 1.0

PATH = "/1k.bin"


def _hyper_client(server: NghttpdServer) -> tuple[Callable[[], int], Callable[[], None]]:
    """A GET function on one hyper HTTP/2 connection (returns the body length), and close."""
    assert server.ca_cert_path is not None
    context = hyper.tls.init_context(cert_path=str(server.ca_cert_path))
    conn = hyper.HTTP20Connection(server.host, server.port, secure=True, ssl_context=context)

    def get() -> int:
        response = conn.get_response(conn.request("GET", PATH))
        body = response.read()
        assert response.status == 200
        return len(body)

    return get, conn.close


def _httpx_client(server: NghttpdServer) -> tuple[Callable[[], int], Callable[[], None]]:
    """A GET function on one httpx HTTP/2 client (returns the body length), and close."""
    try:
        import httpx
    except ImportError:  # it is in the test extras; under CI its absence fails the test
        missing_requirement("httpx is not installed (pip install 'httpx[http2]')")
    context = ssl.create_default_context(cafile=str(server.ca_cert_path))
    client: Any = httpx.Client(
        http2=True,
        verify=context,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=10.0,
    )
    url = f"https://{server.host}:{server.port}{PATH}"

    def get() -> int:
        response = client.get(url)
        assert response.status_code == 200
        # Without h2 httpx would silently measure HTTP/1.1, not the same work.
        assert response.http_version == "HTTP/2"
        return len(response.content)

    return get, client.close


def _rate(get: Callable[[], int], expected_size: int) -> float:
    """Requests per second over REQUESTS GETs, every body length checked."""
    start = time.perf_counter()
    sizes = [get() for _ in range(REQUESTS)]
    seconds = time.perf_counter() - start
    assert sizes == [expected_size] * REQUESTS
    return REQUESTS / seconds


def test_hyper_is_not_slower_than_httpx_one_at_a_time(nghttpd_tls: NghttpdServer) -> None:
    """hyper's one-at-a-time HTTP/2 rate is at least MIN_RATIO x httpx's (median of rounds)."""
    size = nghttpd_tls.sizes[PATH.lstrip("/")]
    hyper_get, hyper_close = _hyper_client(nghttpd_tls)
    httpx_get, httpx_close = _httpx_client(nghttpd_tls)
    try:
        for get in (hyper_get, httpx_get):
            assert all(get() == size for _ in range(WARMUP))
        hyper_rates, httpx_rates = [], []
        for round_no in range(ROUNDS):
            # Alternate who goes first, so that neither always runs on a warmer machine.
            if round_no % 2:
                httpx_rates.append(_rate(httpx_get, size))
                hyper_rates.append(_rate(hyper_get, size))
            else:
                hyper_rates.append(_rate(hyper_get, size))
                httpx_rates.append(_rate(httpx_get, size))
    finally:
        hyper_close()
        httpx_close()
    ratios = [mine / theirs for mine, theirs in zip(hyper_rates, httpx_rates, strict=True)]
    ratio = statistics.median(ratios)
    report = (
        f"hyper {statistics.median(hyper_rates):,.0f} req/s, "
        f"httpx {statistics.median(httpx_rates):,.0f} req/s: "
        f"hyper/httpx = {ratio:.2f}x (per round: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(report)  # shown with -s or -rA: the measured ratio, pass or fail
    assert ratio >= MIN_RATIO, f"hyper fell behind httpx: {report}"
