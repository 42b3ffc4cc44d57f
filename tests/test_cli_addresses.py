"""How the ``hyper`` command picks addresses: ``-4``/``--ipv4``, ``-6``/``--ipv6`` and
``--happy-eyeballs-delay``, run in-process against a made-up host name.

The system's resolver is swapped for one that knows that name (the module's
:func:`~hyper.common.eyeballs.system_resolver`, which every connection without a ``resolver``
of its own calls), so the name can resolve to a black-holed ``::1`` and a live ``127.0.0.1``
(tests/support/addresses.py). Nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hyper.common import eyeballs
from tests.support.addresses import (
    V4,
    V6,
    StaticResolver,
    black_hole,
    ipv6_loopback_works,
    refusing_port,
    sockaddr,
)
from tests.support.cli import assert_one_line_error, err_text, run_cli
from tests.support.http11 import http11_responder
from tests.support.scripted import ScriptedRawServer

NAME = "dual.test"

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here")


@pytest.fixture
def server(scripted_raw_server: Any) -> Iterator[ScriptedRawServer]:
    """A plain HTTP/1.1 server on 127.0.0.1 answering ``ok``."""
    with scripted_raw_server(http11_responder({"/": b"ok"})) as running:
        yield running


def resolve_name_to(
    monkeypatch: pytest.MonkeyPatch, *answer: tuple[int, tuple[Any, ...]]
) -> StaticResolver:
    """Make :data:`NAME` resolve to ``answer`` for every connection of the command."""
    resolver = StaticResolver(NAME, answer)
    monkeypatch.setattr(eyeballs, "system_resolver", resolver)
    return resolver


def get(port: int, *options: str) -> Any:
    """``hyper [options] --http1.1 http://dual.test:<port>/`` in-process."""
    return run_cli(*options, "--http1.1", f"http://{NAME}:{port}/")


# -- -4 and -6 ---------------------------------------------------------------------------------


@needs_ipv6
def test_ipv4_asks_for_ipv4_only_and_never_tries_ipv6(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedRawServer
) -> None:
    with black_hole("::1") as hole:
        resolver = resolve_name_to(monkeypatch, hole, sockaddr("127.0.0.1", server.port))
        # The black hole would hold the connection until --timeout if it were tried first.
        result = get(server.port, "-4", "--happy-eyeballs-delay", "5", "--timeout", "3")
    assert result.returncode == 0, err_text(result)
    assert result.stdout == b"ok"
    assert resolver.calls == [(NAME, server.port, V4)]


def test_ipv6_asks_for_ipv6_only(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedRawServer
) -> None:
    refused = refusing_port("::1") if ipv6_loopback_works() else 1
    resolver = resolve_name_to(
        monkeypatch, sockaddr("127.0.0.1", server.port), sockaddr("::1", refused)
    )
    result = get(server.port, "--ipv6")
    line = assert_one_line_error(result, 1)
    assert f"cannot connect to {NAME}:{server.port}" in line
    assert resolver.calls == [(NAME, server.port, V6)]
    assert server.connection_count == 0


def test_a_family_refuses_an_ip_literal_of_the_other(server: ScriptedRawServer) -> None:
    result = run_cli("-6", "--http1.1", f"http://127.0.0.1:{server.port}/")
    line = assert_one_line_error(result, 1)
    assert "not an IPv6 address" in line


@pytest.mark.parametrize("option", ["-4", "--ipv4"])
def test_ipv4_reaches_an_ipv4_literal(server: ScriptedRawServer, option: str) -> None:
    result = run_cli(option, "--http1.1", f"http://127.0.0.1:{server.port}/")
    assert result.returncode == 0, err_text(result)
    assert result.stdout == b"ok"


# -- --happy-eyeballs-delay --------------------------------------------------------------------


@needs_ipv6
def test_the_delay_decides_when_the_next_address_is_tried(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedRawServer
) -> None:
    with black_hole("::1") as hole:
        resolve_name_to(monkeypatch, hole, sockaddr("127.0.0.1", server.port))
        # A delay longer than the timeout: IPv4 never gets its turn.
        slow = get(server.port, "--happy-eyeballs-delay", "3", "--timeout", "0.5")
        quick = get(server.port, "--happy-eyeballs-delay", "0.05", "--timeout", "3")
    assert "timed out connecting to dual.test" in assert_one_line_error(slow, 1)
    assert quick.returncode == 0, err_text(quick)
    assert quick.stdout == b"ok"


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "0.001", "-1", "abc", "inf", "nan", ""])
def test_an_unusable_delay_is_a_usage_error(value: str) -> None:
    result = run_cli(f"--happy-eyeballs-delay={value}", "http://127.0.0.1:9/")
    assert result.returncode == 2
    stderr = err_text(result)
    assert "--happy-eyeballs-delay" in stderr
    assert "at least 0.01" in stderr


def test_ipv4_and_ipv6_exclude_each_other() -> None:
    result = run_cli("-4", "-6", "http://127.0.0.1:9/")
    assert result.returncode == 2
    assert "not allowed with argument" in err_text(result)


@pytest.mark.parametrize("options", [["-4"], ["-6"], ["--happy-eyeballs-delay", "0.1"]])
def test_tcp_options_with_http3_only_are_a_usage_error(options: list[str]) -> None:
    pytest.importorskip("qh3")
    result = run_cli("--http3-only", *options, "https://127.0.0.1:9/")
    assert result.returncode == 2
    assert "--http3-only makes no TCP connection" in err_text(result)
