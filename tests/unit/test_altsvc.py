"""Reading ``Alt-Svc`` fields (RFC 7838) and the bounded, thread-safe record of which
origins offer HTTP/3."""

from __future__ import annotations

import threading

import pytest

from hyper.common.altsvc import (
    DEFAULT_MAX_AGE,
    MAX_FIELD_LENGTH,
    Alternative,
    AltSvcCache,
    parse_alt_svc,
)

ORIGIN = ("https", "example.org", 443)


# -- reading the field ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('h3=":443"', [Alternative("h3", "", 443)]),
        ('h3=":8443"; ma=60', [Alternative("h3", "", 8443, 60)]),
        (
            'h3=":443"; ma=3600, h3-29=":443"; ma=3600, h2=":443"',
            [
                Alternative("h3", "", 443, 3600),
                Alternative("h3-29", "", 443, 3600),
                Alternative("h2", "", 443),
            ],
        ),
        ('h3="alt.example:443"; persist=1', [Alternative("h3", "alt.example", 443)]),
        ('h3="[::1]:443"', [Alternative("h3", "::1", 443)]),
        ('h3="Example.ORG:443"', [Alternative("h3", "example.org", 443)]),
        ('h2%3Ax=":443"', [Alternative("h2:x", "", 443)]),
        ('h3=":443"; ma="120"', [Alternative("h3", "", 443, 120)]),
        ('h3=":4,43", h3=":443"', [Alternative("h3", "", 443)]),  # a comma inside quotes
    ],
)
def test_alternatives_are_read(value: str, expected: list[Alternative]) -> None:
    assert parse_alt_svc(value) == expected


def test_clear_is_none() -> None:
    assert parse_alt_svc(" clear ") is None


@pytest.mark.parametrize(
    "value",
    [
        "h3=:443",  # not quoted
        'h3=":0"',
        'h3=":65536"',
        'h3=":port"',
        'h3="443"',  # no colon
        'h3=":443"; ma=soon',
        "",
        '=":443"x',
    ],
)
def test_unreadable_alternatives_are_left_out(value: str) -> None:
    assert parse_alt_svc(value) == []


def test_a_bad_alternative_does_not_cost_the_good_ones() -> None:
    assert parse_alt_svc('h3=":nope", h3=":443"') == [Alternative("h3", "", 443)]


def test_an_oversized_field_is_ignored() -> None:
    assert parse_alt_svc('h3=":443", ' + "x" * MAX_FIELD_LENGTH) == []


# -- the record ----------------------------------------------------------------------------------


def test_h3_on_the_same_host_is_remembered_for_ma_seconds() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h2=":443", h3=":8443"; ma=60'], now=1000.0)
    assert cache.lookup(ORIGIN, now=1059.0) == 8443
    assert cache.lookup(ORIGIN, now=1060.0) is None
    assert len(cache) == 0  # expired entries are dropped when seen


def test_without_ma_the_default_max_age_applies() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"'], now=0.0)
    assert cache.lookup(ORIGIN, now=DEFAULT_MAX_AGE - 1.0) == 443
    assert cache.lookup(ORIGIN, now=float(DEFAULT_MAX_AGE)) is None


@pytest.mark.parametrize(
    "values",
    [
        ['h3="other.example:443"'],  # another host: ignored
        ['h2=":443"'],  # no h3
        ['h3-29=":443"'],  # a draft version, not h3
        ["garbage"],
        [],
    ],
)
def test_what_does_not_offer_h3_here_changes_nothing(values: list[str]) -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"'], now=0.0)
    cache.remember(ORIGIN, values, now=1.0)
    assert cache.lookup(ORIGIN, now=2.0) == 443
    fresh = AltSvcCache()
    fresh.remember(ORIGIN, values, now=1.0)
    assert fresh.lookup(ORIGIN, now=2.0) is None


def test_the_origins_own_host_named_again_counts() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3="EXAMPLE.org:9443"'], now=0.0)
    assert cache.lookup(("https", "Example.Org", 443), now=1.0) == 9443


def test_clear_and_ma_zero_forget() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"'], now=0.0)
    cache.remember(ORIGIN, ["clear"], now=1.0)
    assert cache.lookup(ORIGIN, now=2.0) is None
    cache.remember(ORIGIN, ['h3=":443"'], now=3.0)
    cache.remember(ORIGIN, ['h3=":443"; ma=0'], now=4.0)
    assert cache.lookup(ORIGIN, now=5.0) is None


def test_a_later_field_replaces_an_earlier_one() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"', 'h3=":8443"'], now=0.0)
    assert cache.lookup(ORIGIN, now=1.0) == 8443


def test_origins_differ_by_scheme_host_and_port() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"'], now=0.0)
    assert cache.lookup(("https", "example.org", 8443), now=1.0) is None
    assert cache.lookup(("http", "example.org", 443), now=1.0) is None
    assert cache.lookup(("https", "example.com", 443), now=1.0) is None


def test_forget_and_clear() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":443"'], now=0.0)
    cache.remember(("https", "b.example", 443), ['h3=":443"'], now=0.0)
    cache.forget(ORIGIN)
    assert cache.lookup(ORIGIN, now=1.0) is None
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_a_failed_port_counts_as_broken_for_a_while() -> None:
    cache = AltSvcCache()
    cache.remember(ORIGIN, ['h3=":8443"'], now=0.0)
    cache.mark_broken(ORIGIN, 8443, seconds=60, now=10.0)
    assert cache.broken(ORIGIN, 8443, now=69.0)
    assert not cache.broken(ORIGIN, 443, now=69.0)  # another port is another attempt
    assert not cache.broken(("https", "example.org", 8443), 8443, now=69.0)
    assert cache.lookup(ORIGIN, now=69.0) == 8443  # what was advertised stays known
    assert not cache.broken(ORIGIN, 8443, now=70.0)
    assert not cache.broken(ORIGIN, 8443, now=20.0)  # expired entries are dropped
    cache.mark_broken(ORIGIN, 8443, now=0.0)
    cache.clear()
    assert not cache.broken(ORIGIN, 8443, now=1.0)


def test_the_broken_record_is_bounded_too() -> None:
    cache = AltSvcCache(max_entries=2)
    for port in (1, 2, 3):
        cache.mark_broken(ORIGIN, port, now=0.0)
    assert [cache.broken(ORIGIN, port, now=1.0) for port in (1, 2, 3)] == [False, True, True]


def test_the_record_is_bounded_least_recently_used_first() -> None:
    cache = AltSvcCache(max_entries=3)
    for n in range(3):
        cache.remember(("https", f"h{n}.example", 443), ['h3=":443"'], now=0.0)
    assert cache.lookup(("https", "h0.example", 443), now=1.0) == 443  # h0 used again
    cache.remember(("https", "h3.example", 443), ['h3=":443"'], now=2.0)
    assert len(cache) == 3
    assert cache.lookup(("https", "h1.example", 443), now=3.0) is None  # the oldest went
    assert cache.lookup(("https", "h0.example", 443), now=3.0) == 443


def test_threads_share_one_record() -> None:
    cache = AltSvcCache(max_entries=50)
    start = threading.Barrier(8)

    def feed(worker: int) -> None:
        start.wait(5)
        for n in range(200):
            origin = ("https", f"w{worker}-{n % 20}.example", 443)
            cache.remember(origin, [f'h3=":{1000 + n}"'])
            cache.lookup(origin)

    threads = [threading.Thread(target=feed, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(cache) == 50
