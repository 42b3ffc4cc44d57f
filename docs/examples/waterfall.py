"""
Send requests at once on one HTTP/2 connection and print a text waterfall of their phases,
drawn from the timings hyper records for every response (``response.timings``).

    python docs/examples/waterfall.py https://localhost:8443/64k.bin --cacert ca.pem -n 20
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from hyper import HTTP20Connection, Timings
from hyper.tls import init_context

#: Columns of the bar area.
WIDTH = 64

#: The phases drawn, in order, with their letter. ``send`` has no timestamp of its own:
#: it ends at ``request_sent`` and lasts ``Timings.send``.
PHASES = (
    ("dns", "d"),
    ("connect", "c"),
    ("tls", "t"),
    ("queued", "q"),
    ("send", "s"),
    ("wait", "."),
    ("receive", "r"),
)


def spans(t: Timings) -> list[tuple[str, float, float]]:
    """Each phase that happened, as (letter, begin, end) monotonic timestamps."""
    sent, send = t.request_sent, t.send
    bounds = {
        "dns": (t.dns_start, t.dns_end),
        "connect": (t.connect_start, t.connect_end),
        "tls": (t.tls_start, t.tls_end),
        "queued": (t.queued_start, t.queued_end),
        "send": (None if sent is None or send is None else sent - send, sent),
        "wait": (t.request_sent, t.first_byte),
        "receive": (t.first_byte, t.body_done),
    }
    found = []
    for name, letter in PHASES:
        begin, end = bounds[name]
        if begin is not None and end is not None:
            found.append((letter, begin, end))
    return found


def bar(t: Timings, origin: float, scale: float) -> str:
    """The request's row: a column per ``1 / scale`` seconds from ``origin``."""
    cells = [" "] * WIDTH
    for letter, begin, end in spans(t):
        first = min(int((begin - origin) * scale), WIDTH - 1)
        last = min(max(int((end - origin) * scale), first), WIDTH - 1)
        for column in range(first, last + 1):
            cells[column] = letter
    return "".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("url", help="an https:// URL on an HTTP/2 server")
    parser.add_argument("-n", type=int, default=20, help="how many requests (default 20)")
    parser.add_argument("--cacert", help="trust the CA certificates in this file")
    args = parser.parse_args()
    url = urlsplit(args.url)
    assert url.hostname is not None
    context = init_context(cert_path=args.cacert) if args.cacert else None
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    with HTTP20Connection(
        url.hostname, url.port or 443, secure=True, ssl_context=context, timeout=30
    ) as conn:
        # All requests go out before any response is read: they share the connection.
        ids = [conn.request("GET", path) for _ in range(args.n)]
        responses = [conn.get_response(stream_id) for stream_id in ids]
        sizes = [len(response.read()) for response in responses]
    timings = [response.timings for response in responses]
    origin = min(t.start for t in timings)
    end = max(t.body_done or t.start for t in timings)
    scale = WIDTH / max(end - origin, 1e-6)
    ms = (end - origin) * 1000
    print(f"{len(ids)} requests for {path} on one connection, {sum(sizes)} bytes in {ms:.1f} ms")
    print(f"stream  start ms  total ms  |0 ms{'':{WIDTH - 13}}{ms:6.1f} ms|")
    for stream_id, t in zip(ids, timings, strict=True):
        start = (t.start - origin) * 1000
        total = (t.total or 0.0) * 1000
        print(f"{stream_id:>6}  {start:8.2f}  {total:8.2f}  |{bar(t, origin, scale)}|")
    print("d dns  c connect  t tls  q queued for a stream  s send  . wait  r receive")
    print(f"stream {ids[0]}: {timings[0].summary()}")
    print(f"stream {ids[-1]}: {timings[-1].summary()}")


if __name__ == "__main__":
    main()
