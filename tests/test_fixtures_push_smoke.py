"""Checks that the push / GOAWAY / stream-limit server fixtures behave as documented.

Everything here talks raw HTTP/2 through :class:`tests.support.push_app.H2Probe`
or :func:`tests.support.h2client.h2_request`, never through the library under test.
"""

from __future__ import annotations

import hashlib
import time

import h2.events
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from tests.support.h2client import client_ssl_context, h2_request
from tests.support.hypercorn_apps import (
    DEFAULT_PUSHES,
    PUSH_REQUEST_HEADER,
    PUSHING_BODY,
    deterministic_bytes,
    pushed_body,
)
from tests.support.nghttpd import NghttpdServer
from tests.support.push_app import (
    H2Probe,
    HypercornAppServer,
    NghttpdLimitedServer,
    NghttpdPushServer,
)

#: Upper bound for waiting on a server's idle timeout (all configured at 1-2 s).
CLOSE_WAIT = 5.0


def _probe(server: NghttpdServer | HypercornAppServer, *, enable_push: bool = True) -> H2Probe:
    return H2Probe(
        server.host, server.port, ca_cert_path=server.ca_cert_path, enable_push=enable_push
    )


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


# -- nghttpd_push ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/page.html", "/big.html"])
def test_nghttpd_push_promises_configured_resources(
    nghttpd_push: NghttpdPushServer, page: str
) -> None:
    with _probe(nghttpd_push) as probe:
        response = probe.request(page, timeout=10)
        pushes = probe.pushes_of(response.stream_id)
        events = list(probe.events)
    assert response.status == 200
    assert bytes(response.body) == nghttpd_push.read(page.lstrip("/"))
    assert list(pushes) == list(nghttpd_push.pushes[page])  # promised in configured order
    for path, pushed in pushes.items():
        assert pushed.stream_id % 2 == 0
        assert dict(pushed.request_headers)[b":authority"] == f"localhost:{probe.port}".encode()
        assert pushed.status == 200
        assert _sha256(pushed.body) == nghttpd_push.files[path.lstrip("/")]
    # nghttpd sends the PUSH_PROMISEs before the page's own response HEADERS.
    first_response = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == response.stream_id
    )
    early = [e for e in events[:first_response] if isinstance(e, h2.events.PushedStreamReceived)]
    assert len(early) == len(pushes)


def test_nghttpd_push_respects_enable_push_0(nghttpd_push: NghttpdPushServer) -> None:
    with _probe(nghttpd_push, enable_push=False) as probe:
        response = probe.request("/page.html")
        assert response.status == 200
        assert bytes(response.body) == nghttpd_push.read("page.html")
        assert not any(isinstance(e, h2.events.PushedStreamReceived) for e in probe.events)


def test_nghttpd_push_other_paths_push_nothing(nghttpd_push: NghttpdPushServer) -> None:
    with _probe(nghttpd_push) as probe:
        response = probe.request("/index.html")
        assert response.status == 200
        assert probe.pushes_of(response.stream_id) == {}
    assert nghttpd_push.url("/page.html") == f"https://127.0.0.1:{nghttpd_push.port}/page.html"


# -- nghttpd_limited ---------------------------------------------------------------------------


def test_nghttpd_limited_advertises_max_concurrent_streams(
    nghttpd_limited: NghttpdLimitedServer,
) -> None:
    assert nghttpd_limited.max_concurrent_streams == 4
    with _probe(nghttpd_limited) as probe:
        settings = probe.wait_for_settings()
        assert settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 4
        echoed = probe.request("/echo", method="POST", body=b"ping" * 100)
        assert bytes(echoed.body) == b"ping" * 100
        got = probe.request("/1k.bin")
        assert _sha256(got.body) == nghttpd_limited.files["1k.bin"]


def test_nghttpd_limited_refuses_streams_beyond_limit_before_settings_ack(
    nghttpd_limited: NghttpdLimitedServer,
) -> None:
    limit = nghttpd_limited.max_concurrent_streams
    with _probe(nghttpd_limited) as probe:
        # Sent with the preface, before the server SETTINGS could be acknowledged.
        ids = [
            probe.send_request("/echo", method="POST", end_stream=False) for _ in range(limit + 1)
        ]
        extra = probe.streams[ids[-1]]
        probe.wait_for(lambda: extra.reset_code is not None, "RST_STREAM of the extra stream")
        assert extra.reset_code == ErrorCodes.REFUSED_STREAM
        assert all(probe.streams[i].reset_code is None for i in ids[:-1])
        # The connection survives and the accepted streams still work.
        probe.send_data(ids[0], b"still here", end_stream=True)
        first = probe.streams[ids[0]]
        probe.wait_for(lambda: first.done, "echo on the first stream")
        assert bytes(first.body) == b"still here"
        assert probe.goaway is None


# -- hypercorn_push ----------------------------------------------------------------------------


def test_hypercorn_push_pushes_two_resources(hypercorn_push: HypercornAppServer) -> None:
    with _probe(hypercorn_push) as probe:
        response = probe.request("/pushing")
        pushes = probe.pushes_of(response.stream_id)
    assert response.status == 200
    assert bytes(response.body) == PUSHING_BODY
    assert dict(response.headers)[b"x-push-offered"] == b"1"
    assert list(pushes) == list(DEFAULT_PUSHES)
    for path, pushed in pushes.items():
        promise = dict(pushed.request_headers)
        assert promise[b":method"] == b"GET"
        assert promise[b":scheme"] == b"https"
        assert promise[b":authority"] == f"localhost:{probe.port}".encode()
        assert promise[PUSH_REQUEST_HEADER[0]] == PUSH_REQUEST_HEADER[1]
        assert pushed.status == 200
        assert bytes(pushed.body) == pushed_body(path.rsplit("/", 1)[1])


def test_hypercorn_push_custom_large_push(hypercorn_push: HypercornAppServer) -> None:
    with _probe(hypercorn_push) as probe:
        response = probe.request("/pushing?push=/bytes/200000", timeout=10)
        pushes = probe.pushes_of(response.stream_id)
    assert list(pushes) == ["/bytes/200000"]
    assert bytes(pushes["/bytes/200000"].body) == deterministic_bytes(200_000)


def test_hypercorn_push_respects_enable_push_0(hypercorn_push: HypercornAppServer) -> None:
    with _probe(hypercorn_push, enable_push=False) as probe:
        response = probe.request("/pushing")
        assert bytes(response.body) == PUSHING_BODY
        # The app asked to push; hypercorn dropped the pushes silently.
        assert dict(response.headers)[b"x-push-offered"] == b"1"
        assert not any(isinstance(e, h2.events.PushedStreamReceived) for e in probe.events)


def test_hypercorn_app_routes(hypercorn_push: HypercornAppServer) -> None:
    assert hypercorn_push.ca_cert_path is not None
    context = client_ssl_context(str(hypercorn_push.ca_cert_path))
    host, port = hypercorn_push.host, hypercorn_push.port
    payload = deterministic_bytes(50_000)
    echoed = h2_request(host, port, "/echo", method="POST", body=payload, ssl_context=context)
    assert (echoed.status, echoed.body, echoed.alpn_protocol) == (200, payload, "h2")
    got = h2_request(host, port, "/bytes/300000", ssl_context=context)
    assert got.body == deterministic_bytes(300_000)
    started = time.monotonic()
    slow = h2_request(host, port, "/slow/300", ssl_context=context)
    assert slow.body == b"slept 300ms"
    assert time.monotonic() - started >= 0.3
    assert h2_request(host, port, "/nope", ssl_context=context).status == 404
    assert hypercorn_push.url("/x") == f"https://127.0.0.1:{port}/x"


# -- hypercorn_limited -------------------------------------------------------------------------


def test_hypercorn_limited_advertises_and_enforces_limit(
    hypercorn_limited: HypercornAppServer,
) -> None:
    limit = hypercorn_limited.max_concurrent_streams
    assert limit == 4
    with _probe(hypercorn_limited) as probe:
        assert probe.wait_for_settings()[SettingCodes.MAX_CONCURRENT_STREAMS] == limit
        assert probe.request("/slow/10").status == 200
    with _probe(hypercorn_limited) as probe:
        ids = [
            probe.send_request("/echo", method="POST", end_stream=False) for _ in range(limit + 1)
        ]
        goaway = probe.wait_for_goaway()
        assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR
        assert goaway.last_stream_id == ids[limit - 1]
        probe.wait_for_close(CLOSE_WAIT)


# -- hypercorn_short_keepalive -----------------------------------------------------------------


def test_hypercorn_short_keepalive_closes_idle_connection_without_goaway(
    hypercorn_short_keepalive: HypercornAppServer,
) -> None:
    assert hypercorn_short_keepalive.keep_alive_timeout == 1.0
    with _probe(hypercorn_short_keepalive) as probe:
        probe.wait_for_settings()
        elapsed = probe.wait_for_close(CLOSE_WAIT)
        assert probe.goaway is None
    assert 0.5 <= elapsed < CLOSE_WAIT


def test_hypercorn_short_keepalive_spares_open_streams(
    hypercorn_short_keepalive: HypercornAppServer,
) -> None:
    with _probe(hypercorn_short_keepalive) as probe:
        response = probe.request("/slow/1500")  # longer than the keep-alive timeout
        assert bytes(response.body) == b"slept 1500ms"
        finished = time.monotonic()
        probe.wait_for_close(CLOSE_WAIT)
        idle_for = time.monotonic() - finished
        assert probe.goaway is None
    assert 0.5 <= idle_for < CLOSE_WAIT


# -- hypercorn_max_requests --------------------------------------------------------------------


def test_hypercorn_max_requests_sends_goaway(hypercorn_max_requests: HypercornAppServer) -> None:
    assert hypercorn_max_requests.max_requests == 2
    with _probe(hypercorn_max_requests) as probe:
        for name in ("a", "b"):
            assert bytes(probe.request(f"/pushed/{name}").body) == pushed_body(name)
        third = probe.send_request("/pushed/c")
        goaway = probe.wait_for_goaway()
        assert goaway.error_code == ErrorCodes.NO_ERROR
        assert goaway.last_stream_id == third
        probe.wait_for_close(CLOSE_WAIT)
        # hypercorn accepted the third request (last_stream_id) but never answered it.
        assert probe.streams[third].headers == []
