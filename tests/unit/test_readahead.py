"""
Tests for :mod:`hyper.common.readahead`: turning on OpenSSL's read-ahead for the contexts
hyper makes. What it changes for reading is tested with real TLS connections in
``test_bufsocket_gather.py`` (every test there runs with and without it).
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator

import pytest

from hyper import tls
from hyper.common import readahead

SUPPORTED = sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 14)
needs_support = pytest.mark.skipif(not SUPPORTED, reason="read-ahead needs CPython 3.10-3.14")


def read_ahead_of(context: ssl.SSLContext) -> int:
    """What OpenSSL says about the context's read-ahead (SSL_CTX_get_read_ahead)."""
    functions = readahead._load()
    assert functions is not None
    ctrl, _ = functions
    address = readahead._ssl_ctx(context)
    return int(ctrl(address, readahead._SSL_CTRL_GET_READ_AHEAD, 0, None))


@pytest.fixture
def allowed() -> Iterator[None]:
    """Restore readahead.ALLOWED after a test that changes it."""
    saved = readahead.ALLOWED
    try:
        yield
    finally:
        readahead.ALLOWED = saved


@needs_support
def test_enable_turns_read_ahead_on_and_changes_nothing_else() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    options = context.options
    assert read_ahead_of(context) == 0
    assert not readahead.is_enabled(context)
    assert readahead.enable(context)
    assert read_ahead_of(context) == 1
    assert readahead.is_enabled(context)
    assert context.options == options


@needs_support
def test_contexts_from_init_context_read_ahead() -> None:
    context = tls.init_context()
    assert readahead.is_enabled(context)
    assert read_ahead_of(context) == 1


def test_a_context_made_elsewhere_is_left_alone() -> None:
    context = ssl.create_default_context()
    assert not readahead.is_enabled(context)
    assert not readahead.is_enabled(None)
    if SUPPORTED:
        assert read_ahead_of(context) == 0


def test_subclasses_are_left_alone() -> None:
    """A subclass may lay its object out differently; only ssl.SSLContext itself is used."""

    class Custom(ssl.SSLContext):
        pass

    context = Custom(ssl.PROTOCOL_TLS_CLIENT)
    assert not readahead.enable(context)
    assert not readahead.is_enabled(context)


@pytest.mark.usefixtures("allowed")
def test_allowed_false_turns_it_off() -> None:
    readahead.ALLOWED = False
    context = tls.init_context()
    assert not readahead.is_enabled(context)
    if SUPPORTED:
        assert read_ahead_of(context) == 0


def test_unknown_interpreters_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the CPython versions whose layout is known, nothing is loaded or changed."""
    monkeypatch.setattr(readahead, "_functions", None)
    monkeypatch.setattr(readahead, "_KNOWN_VERSIONS", ((2, 0), (2, 7)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert not readahead.enable(context)
    assert readahead._functions is False
    assert not readahead.is_enabled(context)
