"""Unit tests for hyper.common.eyeballs: ordering addresses (RFC 8305 section 4), IP literals
and the checks on a connection's Happy Eyeballs arguments."""

from __future__ import annotations

import math
import socket

import pytest

from hyper.common.exceptions import InvalidRequest
from hyper.common.eyeballs import (
    DEFAULT_DELAY,
    Address,
    ConnectPolicy,
    interleave,
    ip_literal,
)

V6, V4 = socket.AF_INET6, socket.AF_INET


def a6(n: int) -> Address:
    return Address(V6, (f"2001:db8::{n}", 443, 0, 0))


def a4(n: int) -> Address:
    return Address(V4, (f"192.0.2.{n}", 443))


# -- interleave ----------------------------------------------------------------------------------


def test_families_alternate_starting_with_the_first_address_family() -> None:
    assert interleave([a6(1), a6(2), a6(3), a4(1), a4(2)]) == [a6(1), a4(1), a6(2), a4(2), a6(3)]


def test_an_ipv4_first_answer_starts_with_ipv4() -> None:
    assert interleave([a4(1), a4(2), a6(1)]) == [a4(1), a6(1), a4(2)]


def test_each_family_keeps_its_own_order() -> None:
    assert interleave([a6(3), a4(2), a6(1), a4(1)]) == [a6(3), a4(2), a6(1), a4(1)]


def test_one_family_is_left_as_it_is() -> None:
    assert interleave([a4(3), a4(1), a4(2)]) == [a4(3), a4(1), a4(2)]


def test_the_other_family_runs_on_when_the_first_is_exhausted() -> None:
    assert interleave([a6(1), a4(1), a4(2), a4(3)]) == [a6(1), a4(1), a4(2), a4(3)]


def test_a_first_address_family_count_of_two() -> None:
    ordered = interleave([a6(1), a6(2), a6(3), a4(1), a4(2)], first_family_count=2)
    assert ordered == [a6(1), a6(2), a4(1), a6(3), a4(2)]


def test_duplicates_are_tried_once() -> None:
    assert interleave([a6(1), a4(1), a6(1), a4(1)]) == [a6(1), a4(1)]


def test_no_addresses() -> None:
    assert interleave([]) == []


# -- IP literals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", Address(V4, ("127.0.0.1", 80))),
        ("::1", Address(V6, ("::1", 80, 0, 0))),
        ("[::1]", Address(V6, ("::1", 80, 0, 0))),
        ("localhost", None),
        ("127.1", None),  # getaddrinfo's business, not a strict literal
        ("fe80::1%eth0", None),  # a zone id needs the resolver to turn it into a scope id
    ],
)
def test_ip_literal(host: str, expected: Address | None) -> None:
    assert ip_literal(host, 80) == expected


def test_addresses_print_as_host_and_port() -> None:
    assert str(a6(1)) == "[2001:db8::1]:443"
    assert str(a4(1)) == "192.0.2.1:443"


# -- ConnectPolicy.build -------------------------------------------------------------------------


def test_the_defaults() -> None:
    assert ConnectPolicy.build() == ConnectPolicy(DEFAULT_DELAY, None, None)
    assert DEFAULT_DELAY == 0.25


def test_af_unspec_means_either_family() -> None:
    assert ConnectPolicy.build(family=socket.AF_UNSPEC).family is None


@pytest.mark.parametrize("delay", [0, 0.005, -1, math.nan, math.inf, True, "0.25", None])
def test_a_delay_that_rfc_8305_forbids_or_is_no_number_is_refused(delay: object) -> None:
    with pytest.raises(InvalidRequest, match="happy_eyeballs_delay"):
        ConnectPolicy.build(delay=delay)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", [socket.AF_UNIX, 99, "inet"])
def test_a_family_other_than_ipv4_or_ipv6_is_refused(family: object) -> None:
    with pytest.raises(InvalidRequest, match="address_family"):
        ConnectPolicy.build(family=family)  # type: ignore[arg-type]


def test_a_resolver_must_be_callable() -> None:
    with pytest.raises(InvalidRequest, match="resolver"):
        ConnectPolicy.build(resolver="8.8.8.8")  # type: ignore[arg-type]
