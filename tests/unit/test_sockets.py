"""Tests for hyper.common.sockets: TCP connections, proxy header lines and CONNECT tunnels."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hyper.common import sockets as sockets_module
from hyper.common.exceptions import (
    ConnectTimeout,
    HyperError,
    InvalidRequest,
    ProxyError,
    SocketError,
)
from hyper.common.eyeballs import DEFAULT_POLICY, ConnectPolicy
from hyper.common.sockets import header_lines, open_tcp, open_tunnel
from hyper.common.trace import ConnectRecorder
from tests.support.addresses import StaticResolver, black_hole

#: Upper bound on every blocking operation of the helpers here.
SAFETY_TIMEOUT = 5.0

Behaviour = Callable[[socket.socket, bytes], None]


def _read_request(conn: socket.socket) -> bytes:
    """Read a request head from ``conn`` (up to and including the blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _drain(conn: socket.socket) -> bytes:
    """Read until the client closes; return what it sent."""
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


class FakeProxy:
    """
    A one-connection HTTP proxy in a thread: it reads the CONNECT request head, records it and
    hands the connection to ``behaviour``.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.request: bytes | None = None
        self.after: bytes | None = None  # what the client sent after the answer, if recorded
        self.errors: list[BaseException] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(SAFETY_TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(SAFETY_TIMEOUT)
                self.request = _read_request(conn)
                self.behaviour(conn, self.request)
        except BaseException as exc:  # re-raised by finish()
            self.errors.append(exc)

    def finish(self) -> None:
        """Wait for the thread; raise what it raised."""
        self.thread.join(SAFETY_TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive(), "fake proxy thread did not finish"
        if self.errors:
            raise self.errors[0]

    @property
    def request_lines(self) -> list[bytes]:
        assert self.request is not None
        assert self.request.endswith(b"\r\n\r\n")
        return self.request[:-4].split(b"\r\n")


@pytest.fixture
def make_proxy() -> Iterator[Callable[[Behaviour], FakeProxy]]:
    proxies: list[FakeProxy] = []

    def make(behaviour: Behaviour) -> FakeProxy:
        proxy = FakeProxy(behaviour)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.listener.close()
        proxy.thread.join(SAFETY_TIMEOUT)


def answer_then_echo(answer: bytes) -> Behaviour:
    """Send ``answer``; then echo everything until the client closes."""

    def behaviour(conn: socket.socket, request: bytes) -> None:
        conn.sendall(answer)
        while chunk := conn.recv(4096):
            conn.sendall(chunk)

    return behaviour


def answer_then_record(proxy_box: list[FakeProxy], answer: bytes) -> Behaviour:
    """Send ``answer``; then record what the client sends until it closes."""

    def behaviour(conn: socket.socket, request: bytes) -> None:
        conn.sendall(answer)
        proxy_box[0].after = _drain(conn)

    return behaviour


def refusing_proxy(make_proxy: Callable[[Behaviour], FakeProxy], answer: bytes) -> FakeProxy:
    """A proxy that sends ``answer`` and records whether/what the client sends before closing."""
    box: list[FakeProxy] = []
    proxy = make_proxy(answer_then_record(box, answer))
    box.append(proxy)
    return proxy


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


# -- open_tcp ----------------------------------------------------------------------------------


def test_open_tcp_connects_with_nodelay() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(SAFETY_TIMEOUT)
        port = listener.getsockname()[1]
        sock = open_tcp("127.0.0.1", port, SAFETY_TIMEOUT)
        with sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert sock.getpeername() == ("127.0.0.1", port)
            server_side, _ = listener.accept()
            with server_side:
                server_side.settimeout(SAFETY_TIMEOUT)
                sock.sendall(b"ping")
                assert recv_exactly(server_side, 4) == b"ping"


def test_open_tcp_resolves_localhost() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with open_tcp("localhost", port, SAFETY_TIMEOUT) as sock:
            assert sock.getpeername()[1] == port


def test_open_tcp_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("cannot bind to ::1")
    with listener:
        port = listener.getsockname()[1]
        with open_tcp("::1", port, SAFETY_TIMEOUT) as sock:
            assert sock.family == socket.AF_INET6
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_open_tcp_refused() -> None:
    port = closed_port()
    with pytest.raises(SocketError, match="cannot connect") as info:
        open_tcp("127.0.0.1", port, SAFETY_TIMEOUT)
    assert not isinstance(info.value, ConnectTimeout)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_open_tcp_unresolvable_host() -> None:
    with pytest.raises(SocketError, match="cannot resolve") as info:
        open_tcp("nonexistent.invalid", 443, SAFETY_TIMEOUT)
    assert isinstance(info.value.__cause__, socket.gaierror)


def test_open_tcp_timeout_is_connect_timeout() -> None:
    with black_hole("127.0.0.1") as hole:
        resolver = StaticResolver("example.com", [hole])
        with pytest.raises(ConnectTimeout, match=r"example\.com:443") as info:
            open_tcp("example.com", 443, 0.25, ConnectPolicy.build(resolver=resolver))
    assert isinstance(info.value, TimeoutError)
    assert resolver.calls == [("example.com", 443, socket.AF_UNSPEC)]


def test_open_tcp_invalid_idna_host_is_a_hyper_error() -> None:
    with pytest.raises(HyperError):
        open_tcp("a..example", 443, SAFETY_TIMEOUT)


# -- header_lines ------------------------------------------------------------------------------


def test_header_lines() -> None:
    assert header_lines(None) == []
    assert header_lines({}) == []
    assert header_lines({"Proxy-Authorization": "Basic Zm9vOmJhcg=="}) == [
        b"Proxy-Authorization: Basic Zm9vOmJhcg=="
    ]
    assert header_lines([(b"X-A", b"1"), ("X-B", "  2  "), ("X-A", "3")]) == [
        b"X-A: 1",
        b"X-B: 2",
        b"X-A: 3",
    ]
    assert header_lines([("X-Empty", "")]) == [b"X-Empty: "]


@pytest.mark.parametrize(
    "name", ["", "Bad Name", "Bad:Name", "Bad\tName", "Bad\r\nName", "Bad\nName", "Bad\x00"]
)
def test_header_lines_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid header name"):
        header_lines([(name, "v")])


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\rb", "a\nb", "a\x00b", b"a\nb"])
def test_header_lines_rejects_bad_values(value: str | bytes) -> None:
    with pytest.raises(InvalidRequest, match="invalid value"):
        header_lines({"X-Test": value})


@pytest.mark.parametrize("pair", [(None, "v"), ("X", None), ("X", 5.0)])
def test_header_lines_rejects_non_text(pair: tuple[object, object]) -> None:
    with pytest.raises(InvalidRequest):
        header_lines([pair])  # type: ignore[list-item]


def test_header_lines_accepts_integer_values() -> None:
    assert header_lines([("Max-Forwards", 5)]) == [b"Max-Forwards: 5"]  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["X(Y)", "Bäd", "X\x7fY", "X\x0bY"])
def test_header_lines_rejects_non_token_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        header_lines([(name, "v")])


# -- open_tunnel: success ----------------------------------------------------------------------


def test_tunnel_request_and_echo(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    proxy = make_proxy(answer_then_echo(b"HTTP/1.1 200 Connection established\r\n\r\n"))
    sock = open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    with sock:
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        sock.sendall(b"through the tunnel")
        assert recv_exactly(sock, 18) == b"through the tunnel"
    proxy.finish()
    assert proxy.request == (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")


def test_tunnel_with_proxy_authorization(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    proxy = make_proxy(answer_then_echo(b"HTTP/1.1 200 OK\r\nProxy-Agent: fake\r\n\r\n"))
    sock = open_tunnel(
        "127.0.0.1",
        proxy.port,
        "example.com",
        8443,
        proxy_headers={"Proxy-Authorization": "Basic dXNlcjpwYXNz"},
        timeout=SAFETY_TIMEOUT,
    )
    with sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
    proxy.finish()
    assert proxy.request_lines == [
        b"CONNECT example.com:8443 HTTP/1.1",
        b"Host: example.com:8443",
        b"Proxy-Authorization: Basic dXNlcjpwYXNz",
    ]


def test_tunnel_to_ipv6_target_uses_brackets(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(answer_then_echo(b"HTTP/1.1 200 Connection established\r\n\r\n"))
    with open_tunnel("127.0.0.1", proxy.port, "::1", 443, timeout=SAFETY_TIMEOUT):
        pass
    proxy.finish()
    assert proxy.request_lines[:2] == [b"CONNECT [::1]:443 HTTP/1.1", b"Host: [::1]:443"]


def test_tunnel_to_international_name_uses_idna(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(answer_then_echo(b"HTTP/1.1 200 Connection established\r\n\r\n"))
    with open_tunnel("127.0.0.1", proxy.port, "bücher.example", 80, timeout=SAFETY_TIMEOUT):
        pass
    proxy.finish()
    assert proxy.request_lines[0] == b"CONNECT xn--bcher-kva.example:80 HTTP/1.1"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 200 Connection established\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 204 No Content\n\n",
        b"HTTP/1.1 200 OK\r\nVia: 1.1 fake\r\nProxy-Agent: x\r\n\r\n",
    ],
)
def test_tunnel_accepts_2xx_answers(
    make_proxy: Callable[[Behaviour], FakeProxy], answer: bytes
) -> None:
    proxy = make_proxy(answer_then_echo(answer))
    with open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT) as sock:
        sock.sendall(b"ok?")
        assert recv_exactly(sock, 3) == b"ok?"
    proxy.finish()


def test_tunnel_answer_split_across_packets(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    def behaviour(conn: socket.socket, request: bytes) -> None:
        for piece in (b"HTTP/1.1 2", b"00 Connection est", b"ablished\r\n", b"\r", b"\n"):
            conn.sendall(piece)
        while chunk := conn.recv(4096):
            conn.sendall(chunk)

    proxy = make_proxy(behaviour)
    with open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT) as sock:
        sock.sendall(b"hi")
        assert recv_exactly(sock, 2) == b"hi"
    proxy.finish()


# -- open_tunnel: failures ---------------------------------------------------------------------


def test_tunnel_refused_with_407(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    answer = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="fake"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    proxy = refusing_proxy(make_proxy, answer)
    with pytest.raises(ProxyError, match="407") as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status == 407
    assert info.value.reason == "Proxy Authentication Required"
    proxy.finish()
    assert proxy.after == b""  # the client closed the connection and sent nothing more


def test_tunnel_refused_with_503(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    proxy = refusing_proxy(make_proxy, b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    with pytest.raises(ProxyError) as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert (info.value.status, info.value.reason) == (503, "Service Unavailable")
    proxy.finish()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 OK 200\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"\r\n",
    ],
)
def test_tunnel_garbage_answer(
    make_proxy: Callable[[Behaviour], FakeProxy], answer: bytes
) -> None:
    proxy = refusing_proxy(make_proxy, answer)
    with pytest.raises(ProxyError, match="invalid status line") as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status is None
    proxy.finish()
    assert proxy.after == b""


def test_tunnel_proxy_closes_before_answering(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(lambda conn, request: None)  # read the request, then hang up
    with pytest.raises(ProxyError) as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status is None
    proxy.finish()
    assert proxy.request is not None
    assert proxy.request.startswith(b"CONNECT example.com:443 HTTP/1.1\r\n")


def test_tunnel_proxy_closes_in_the_header_block(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(lambda conn, request: conn.sendall(b"HTTP/1.1 200 OK\r\nVia: x"))
    with pytest.raises(ProxyError, match="closed") as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status == 200
    proxy.finish()


def test_tunnel_proxy_closes_in_the_header_block_keeps_the_reason(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(lambda conn, request: conn.sendall(b"HTTP/1.1 200 Fine\r\nVia: x\r\n"))
    with pytest.raises(ProxyError) as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    proxy.finish()
    assert info.value.reason == "Fine"


def test_tunnel_proxy_sends_data_after_accepting(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = refusing_proxy(make_proxy, b"HTTP/1.1 200 OK\r\n\r\nunexpected")
    with pytest.raises(ProxyError, match="before the TLS handshake") as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status == 200
    assert info.value.reason == "OK"
    proxy.finish()
    assert proxy.after == b""


def test_tunnel_too_many_header_lines(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: y\r\n" * 150 + b"\r\n"
    proxy = refusing_proxy(make_proxy, answer)
    with pytest.raises(ProxyError, match="too many") as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert info.value.status == 200
    proxy.finish()


def test_tunnel_overlong_status_line(
    make_proxy: Callable[[Behaviour], FakeProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[socket.socket] = []

    def recording_open_tcp(
        host: str,
        port: int,
        timeout: float | None,
        policy: ConnectPolicy = DEFAULT_POLICY,
        recorder: ConnectRecorder | None = None,
    ) -> socket.socket:
        sock = open_tcp(host, port, timeout, policy, recorder)
        opened.append(sock)
        return sock

    monkeypatch.setattr(sockets_module, "open_tcp", recording_open_tcp)
    answer = b"HTTP/1.1 200 " + b"x" * 10_000 + b"\r\n\r\n"
    proxy = make_proxy(lambda conn, request: conn.sendall(answer))
    try:
        with pytest.raises(ProxyError):
            open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=SAFETY_TIMEOUT)
    finally:
        for sock in opened:
            leaked = sock.fileno() != -1
            sock.close()
    proxy.finish()
    assert len(opened) == 1
    assert not leaked, "open_tunnel left the proxy socket open"


def test_tunnel_proxy_answer_timeout(make_proxy: Callable[[Behaviour], FakeProxy]) -> None:
    proxy = make_proxy(lambda conn, request: _drain(conn))  # never answers
    with pytest.raises(ConnectTimeout):
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=0.2)
    proxy.finish()


def test_tunnel_proxy_answer_timeout_is_bounded(
    make_proxy: Callable[[Behaviour], FakeProxy],
) -> None:
    proxy = make_proxy(lambda conn, request: _drain(conn))  # never answers
    started = time.monotonic()
    with pytest.raises(HyperError) as info:
        open_tunnel("127.0.0.1", proxy.port, "example.com", 443, timeout=0.2)
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value.__cause__ or info.value, TimeoutError)
    proxy.finish()  # the client closed its end, so the proxy saw EOF


def test_tunnel_proxy_not_listening() -> None:
    with pytest.raises(HyperError) as info:
        open_tunnel("127.0.0.1", closed_port(), "example.com", 443, timeout=SAFETY_TIMEOUT)
    assert isinstance(info.value, (SocketError, ProxyError))


def test_tunnel_invalid_proxy_header_fields_fail_before_connecting() -> None:
    # Nothing listens on the port: reaching the network would give a SocketError instead.
    with pytest.raises(InvalidRequest):
        open_tunnel(
            "127.0.0.1",
            closed_port(),
            "example.com",
            443,
            proxy_headers={"Proxy-Authorization": "Basic x\r\nX-Injected: 1"},
        )


def test_tunnel_invalid_idna_target_is_a_hyper_error() -> None:
    with pytest.raises(HyperError):
        open_tunnel("127.0.0.1", closed_port(), "a" * 64 + ".example", 443)
