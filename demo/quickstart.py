"""
The quickstart, run against a real HTTP/2 server on this machine.

Starts hypercorn serving httpbin (a local http2bin) over TLS on 127.0.0.1, with a certificate
from a throwaway trustme CA, then uses hyper as a caller would and prints what it got. The
server is stopped on the way out.

Run it with ``bash scripts/demo.sh`` (which installs what it needs first).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

import hyper
import hyper.tls
from hyper import HTTPConnection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the demo server exited early (status {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port: the server prints no ready line we can rely on
    raise SystemExit("the demo server did not start within 20 seconds")


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hyper-demo-"))
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path = workdir / "ca.pem"
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server_cert.private_key_pem.write_to_path(str(key_path))
    server_cert.cert_chain_pems[0].write_to_path(str(cert_path))
    port, plain_port = free_port(), free_port()
    servers = [
        start_server(["--bind", f"127.0.0.1:{port}", "--certfile", str(cert_path),
                      "--keyfile", str(key_path)]),
        start_server(["--bind", f"127.0.0.1:{plain_port}"]),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        for server, server_port in zip(servers, (port, plain_port), strict=True):
            wait_for_port(server_port, server, deadline)
        print(f"hyper {hyper.__version__}: a local http2bin at https://localhost:{port}\n")
        context = hyper.tls.init_context(cert_path=str(ca_path))
        with HTTPConnection(f"localhost:{port}", secure=True, ssl_context=context) as conn:
            first = conn.request("GET", "/get", headers={"user-agent": "hyper-demo"})
            second = conn.request("POST", "/post", body=b"hello, HTTP/2")
            response = conn.get_response(first)
            print(f"GET /get -> {response.status}, negotiated protocol: {conn.version.value}")
            print(f"  (request() returned stream ids {first} and {second})")
            for name, value in response.headers.items():
                print(f"  {name.decode()}: {value.decode()}")
            print(json.dumps(json.loads(response.read()), indent=2))
            posted = conn.get_response(second)
            echoed = json.loads(posted.read())["data"]
            print(f"\nPOST /post -> {posted.status}, the server saw body {echoed!r}")
            gzipped = conn.get_response(conn.request("GET", "/gzip"))
            decoded = json.loads(gzipped.read())
            print(f"GET /gzip -> {gzipped.status}, decoded transparently: {decoded['gzipped']}")

        print(f"\nPlaintext, http://127.0.0.1:{plain_port}: the first request asks to upgrade")
        with HTTPConnection(f"127.0.0.1:{plain_port}") as conn:
            stream_id = conn.request("GET", "/get")
            response = conn.get_response(stream_id)
            response.read()
            print(f"GET /get -> {response.status}, now speaking {conn.version.value} (h2c)")
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def start_server(bind_args: list[str]) -> subprocess.Popen[bytes]:
    """Start hypercorn serving httpbin with the given bind/TLS arguments."""
    return subprocess.Popen(
        [sys.executable, "-m", "hypercorn", *bind_args, "wsgi:httpbin:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    main()
