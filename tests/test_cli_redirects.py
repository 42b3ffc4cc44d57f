"""``hyper --follow``: which redirects are followed, with what method and body, which headers
go on to another origin, and the limit.

Scripted HTTP/1.1 servers record every request they get, so each test checks what the tool
actually sent on every hop; httpbin (hypercorn) checks the same against a real server, over
HTTP/2 and across a switch to TLS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import assert_one_line_error, err_text, run_cli, run_cli_process
from tests.support.http2bin import Http2binServer
from tests.support.http11 import HTTP11Responder, Reply, http11_responder
from tests.support.scripted import ScriptedRawServer

ServerFactory = Callable[..., ScriptedRawServer]


class Origin:
    """A scripted HTTP/1.1 server answering from ``routes``; ``requests`` are what it got."""

    def __init__(self, factory: ServerFactory, routes: Mapping[str, Any]) -> None:
        self.responder: HTTP11Responder = http11_responder(routes)
        self.server = factory(self.responder).start()

    @property
    def requests(self) -> list[Any]:
        """The requests received so far, in order."""
        return self.responder.requests

    def url(self, path: str) -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://{self.server.authority}{path}"


def redirect(status: int, location: str) -> Reply:
    """A redirect response with an empty body."""
    return Reply(status, [("Location", location)])


ECHO = Reply(200, [("Content-Type", "text/plain")], b"arrived")


def test_redirects_are_not_followed_by_default(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(302, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", origin.url("/start"))
    assert result.returncode == 0
    assert err_text(result).startswith("HTTP/1.1 302")
    assert [r.path for r in origin.requests] == ["/start"]
    checked = run_cli("--http1.1", "--check-status", origin.url("/start"))
    assert checked.returncode == 3  # a redirect not followed


def test_follow_reaches_the_final_response(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(
        scripted_raw_server,
        {"/1": redirect(301, "/2"), "/2": redirect(302, "/3"), "/3": ECHO},
    )
    result = run_cli("--http1.1", "-L", "--check-status", origin.url("/1"))
    assert result.returncode == 0, err_text(result)
    assert result.stdout == b"arrived"
    assert err_text(result).startswith("HTTP/1.1 200")  # only the final head is printed
    assert [r.path for r in origin.requests] == ["/1", "/2", "/3"]
    # Same origin: one connection carried every hop.
    assert {r.connection_id for r in origin.requests} == {0}


@pytest.mark.parametrize(
    ("status", "method", "then", "keeps_body"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (301, "PUT", "PUT", True),  # only POST changes on 301 and 302
        (302, "DELETE", "DELETE", True),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
        (308, "PATCH", "PATCH", True),
    ],
)
def test_method_and_body_after_a_redirect(
    scripted_raw_server: ServerFactory, status: int, method: str, then: str, keeps_body: bool
) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(status, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", "-L", method, origin.url("/start"), "name=hyper", "n:=1")
    assert result.returncode == 0, err_text(result)
    first, second = origin.requests
    assert first.method == method
    assert json.loads(first.body) == {"name": "hyper", "n": 1}
    assert second.method == then
    if keeps_body:
        assert second.body == first.body
        assert second.header("content-type") == b"application/json"
        assert second.header("content-length") == str(len(first.body)).encode()
    else:
        assert second.body == b""
        assert second.header("content-type") is None
        assert second.header("content-length") is None


def test_303_keeps_head(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(303, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", "-L", "HEAD", origin.url("/start"))
    assert result.returncode == 0, err_text(result)
    assert [r.method for r in origin.requests] == ["HEAD", "HEAD"]


def test_307_sends_piped_stdin_again(scripted_raw_server: ServerFactory) -> None:
    # Read once from a real pipe, and kept in memory for the second request.
    body = b'{"piped": true, "bytes": "' + b"x" * 100_000 + b'"}'
    origin = Origin(scripted_raw_server, {"/start": redirect(307, "/end"), "/end": ECHO})
    result = run_cli_process("--http1.1", "-L", origin.url("/start"), stdin=body)
    assert result.returncode == 0, err_text(result)
    assert result.stdout == b"arrived"
    assert [(r.method, r.body) for r in origin.requests] == [("POST", body), ("POST", body)]


def test_308_sends_a_file_body_again(scripted_raw_server: ServerFactory, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    (tmp_path / "upload.bin").write_bytes(data)
    origin = Origin(scripted_raw_server, {"/start": redirect(308, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", "-L", "PUT", origin.url("/start"), f"@{tmp_path}/upload.bin")
    assert result.returncode == 0, err_text(result)
    assert [r.body for r in origin.requests] == [data, data]


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/abs?x=1", "/abs?x=1"),
        ("sibling", "/a/sibling"),
        ("../up#fragment", "/up"),
        ("?q=only", "/a/start?q=only"),
        ("//127.0.0.1:{port}/net-path", "/net-path"),
        ("/sp ace/é", "/sp%20ace/%C3%A9"),
    ],
)
def test_relative_locations(
    scripted_raw_server: ServerFactory, location: str, expected: str
) -> None:
    origin = Origin(scripted_raw_server, {})
    location = location.format(port=origin.server.port)
    # The exact target of the second request wins over the first's path.
    origin.responder.routes = {"/a/start": redirect(302, location), expected: ECHO}
    origin.responder.default = ECHO
    result = run_cli("--http1.1", "-L", origin.url("/a/start"))
    assert result.returncode == 0, err_text(result)
    assert origin.requests[1].target == expected


def test_credentials_stay_on_their_origin(scripted_raw_server: ServerFactory) -> None:
    other = Origin(scripted_raw_server, {"/end": ECHO})
    first = Origin(
        scripted_raw_server,
        {"/start": redirect(302, "/same"), "/same": redirect(307, other.url("/end"))},
    )
    result = run_cli(
        "--http1.1",
        "-L",
        first.url("/start"),
        "Authorization:Bearer s3cret",
        "Cookie:session=1",
        "X-Kept:yes",
    )
    assert result.returncode == 0, err_text(result)
    start, same = first.requests
    for request in (start, same):
        assert request.header("authorization") == b"Bearer s3cret"
        assert request.header("cookie") == b"session=1"
    (end,) = other.requests
    assert end.header("authorization") is None
    assert end.header("cookie") is None
    assert end.header("x-kept") == b"yes"
    assert end.header("host") == other.server.authority.encode()


def test_too_many_redirects(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/loop": redirect(302, "/loop")})
    result = run_cli("--http1.1", "-L", "--max-redirs", "3", origin.url("/loop"))
    line = assert_one_line_error(result, 1)
    assert line == (
        "hyper: error: too many redirects: more than 3 (the last to '/loop'; see --max-redirs)"
    )
    assert len(origin.requests) == 4  # the first request and three redirects
    assert result.stdout == b""


def test_max_redirs_zero_refuses_the_first(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(301, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", "-L", "--max-redirs", "0", origin.url("/start"))
    assert "more than 0" in assert_one_line_error(result, 1)
    assert len(origin.requests) == 1


def test_max_redirs_must_be_a_count() -> None:
    result = run_cli("-L", "--max-redirs=-1", "127.0.0.1:9/")
    assert result.returncode == 2
    assert "expected a whole number" in err_text(result)
    # Written apart, -1 reads as an option (the command has -4 and -6): still a usage error.
    result = run_cli("-L", "--max-redirs", "-1", "127.0.0.1:9/")
    assert result.returncode == 2
    assert "--max-redirs: expected one argument" in err_text(result)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://127.0.0.1/file", "unsupported URL scheme 'ftp'"),
        ("http://user:pw@127.0.0.1/", "credentials in the URL"),
        ("http://127.0.0.1:99999/", "invalid port"),
    ],
)
def test_redirect_to_an_unusable_url(
    scripted_raw_server: ServerFactory, location: str, message: str
) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(302, location)})
    line = assert_one_line_error(run_cli("--http1.1", "-L", origin.url("/start")), 1)
    assert line.startswith(f"hyper: error: cannot follow the redirect to {location!r}")
    assert message in line


def test_redirect_to_a_scheme_with_an_invalid_proxy(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(302, "https://127.0.0.1:9/")})
    env = {"https_proxy": "ftp://127.0.0.1:2121"}  # unused until the redirect
    result = run_cli("--http1.1", "-L", origin.url("/start"), env=env)
    line = assert_one_line_error(result, 1)
    assert line.startswith("hyper: error: https_proxy: unsupported proxy scheme 'ftp'")


def test_redirect_without_location_is_final(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": Reply(302, body=b"nowhere to go")})
    result = run_cli("--http1.1", "-L", origin.url("/start"))
    assert result.returncode == 0
    assert result.stdout == b"nowhere to go"
    assert len(origin.requests) == 1


def test_verbose_shows_every_hop(scripted_raw_server: ServerFactory) -> None:
    origin = Origin(scripted_raw_server, {"/start": redirect(302, "/end"), "/end": ECHO})
    result = run_cli("--http1.1", "-L", "-v", origin.url("/start"))
    assert result.returncode == 0, err_text(result)
    lines = result.stdout.decode().splitlines()
    assert "> GET /start HTTP/1.1" in lines
    assert "< HTTP/1.1 302 Found" in lines
    assert f"* redirect 1: {origin.url('/end')}" in lines
    assert "> GET /end HTTP/1.1" in lines
    assert "< HTTP/1.1 200 OK" in lines
    assert lines[-1] == "arrived"


def test_httpbin_redirect_chain_over_http2(http2bin_plain: Http2binServer) -> None:
    result = run_cli("--http2", "-L", http2bin_plain.url("/redirect/3"))
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")
    assert json.loads(result.stdout)["url"] == http2bin_plain.url("/get")


def test_httpbin_redirect_to_tls_drops_authorization(
    http2bin_plain: Http2binServer, http2bin_tls: Http2binServer
) -> None:
    assert http2bin_tls.ca_cert_path is not None
    result = run_cli(
        "-L",
        "--cacert",
        http2bin_tls.ca_cert_path,
        "POST",
        http2bin_plain.url("/redirect-to"),
        f"url=={http2bin_tls.url('/anything')}",
        "status_code==308",
        "Authorization:Basic aHlwZXI6cHc=",
        "X-Kept:1",
        "moved:=true",
    )
    assert result.returncode == 0, err_text(result)
    assert err_text(result).startswith("HTTP/2 200")
    echoed = json.loads(result.stdout)
    assert echoed["url"] == http2bin_tls.url("/anything")
    assert echoed["method"] == "POST"
    assert echoed["json"] == {"moved": True}
    assert "Authorization" not in echoed["headers"]
    assert echoed["headers"]["X-Kept"] == "1"
