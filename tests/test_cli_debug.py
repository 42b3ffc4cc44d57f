"""What ``hyper -v`` and ``hyper --debug`` show, and the warnings of hyper's log on
standard error (an ``SSLKEYLOGFILE`` that cannot be written).

``--debug`` is ``-v`` (the heads, on standard output) plus hyper's DEBUG log on standard
error: one line per HTTP/2 frame, and each decoded header block with the values of
credentials masked (:mod:`hyper.http20.framelog`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from hyper import HTTP20Connection, tls
from hyper.http20 import framelog
from tests.support.cli import err_text, run_cli
from tests.support.http2bin import Http2binServer
from tests.support.push_app import NghttpdPushServer

SECRET = "s3cret-value"
#: A debug record: its time, the logger and the message.
RECORD = re.compile(r"\[ *\d+\.\d ms\] (hyper[.\w]*): (.*)")
#: The response's timings, which -v prints last.
TIMING = re.compile(r"\* timing: HTTP/(1\.1|2) new dns=\S+ connect=[\d.]+ms .* total=[\d.]+ms")


def debug_messages(stderr: str) -> list[str]:
    """The messages of the debug records on ``stderr``; fails on any other line but the
    timing line ``-v`` (and so ``--debug``) ends with."""
    messages = []
    for line in stderr.splitlines():
        if TIMING.fullmatch(line):
            continue
        match = RECORD.fullmatch(line)
        assert match, f"not a debug record: {line!r}"
        messages.append(match.group(2))
    return messages


def test_debug_logs_frames_and_header_blocks(http2bin_tls: Http2binServer) -> None:
    result = run_cli(
        "--debug",
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/cookies/set?flavour=oat"),
        f"Authorization:Bearer {SECRET}",
        f"Cookie:session={SECRET}",
        "X-Shown:visible",
    )
    assert result.returncode == 0, err_text(result)
    messages = debug_messages(err_text(result))
    sent = [m.removeprefix("send: ") for m in messages if m.startswith("send: ")]
    received = [m.removeprefix("received: ") for m in messages if m.startswith("received: ")]
    assert sent[0] == "connection preface"
    assert any(m.startswith("SettingsFrame(stream_id=0, flags=-, length=") for m in sent)
    request_block = sent[sent.index("HEADERS on stream 1:") :]
    assert request_block[1:5] == [
        "    :method: GET",
        "    :scheme: https",
        f"    :authority: {http2bin_tls.authority}",
        "    :path: /cookies/set?flavour=oat",
    ]
    assert "    authorization: ***" in request_block
    assert "    cookie: ***" in request_block
    assert "    x-shown: visible" in request_block
    assert any(
        m.startswith("HeadersFrame(stream_id=1, flags=END_HEADERS,END_STREAM, length=")
        for m in request_block
    )
    response_block = received[received.index("HEADERS on stream 1:") :]
    assert response_block[1] == "    :status: 302"
    assert "    set-cookie: ***" in response_block
    # The frame comes first, then its decoded block.
    frame = received.index("HEADERS on stream 1:") - 1
    assert received[frame].startswith("HeadersFrame(stream_id=1, flags=END_HEADERS, length=")
    assert any(m.startswith("DataFrame(stream_id=1, flags=") for m in received)
    stderr = err_text(result)
    assert SECRET not in stderr
    assert "flavour=oat" not in stderr.split("set-cookie")[1]  # the value set, masked
    assert " object at 0x" not in stderr and "<memory at" not in stderr
    # --debug includes -v: the heads are on standard output.
    assert b"> GET /cookies/set?flavour=oat HTTP/2" in result.stdout
    assert b"< HTTP/2 302" in result.stdout


def test_debug_over_http11_shows_the_heads(http2bin_plain: Http2binServer) -> None:
    result = run_cli("--debug", "--http1.1", http2bin_plain.url("/get"))
    assert result.returncode == 0, err_text(result)
    # No frames in HTTP/1.1: only the timing line.
    assert TIMING.fullmatch(err_text(result).rstrip("\n"))
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "> GET /get HTTP/1.1"
    assert "< HTTP/1.1 200" in lines  # hypercorn sends no reason phrase


def test_verbose_alone_logs_no_frames(http2bin_tls: Http2binServer) -> None:
    result = run_cli("-v", "--cacert", http2bin_tls.ca_cert_path, http2bin_tls.url("/get"))
    assert result.returncode == 0, err_text(result)
    assert TIMING.fullmatch(err_text(result).rstrip("\n"))  # and nothing else


def test_logging_is_left_as_it_was(http2bin_plain: Http2binServer) -> None:
    logger = logging.getLogger("hyper")
    handlers, level = list(logger.handlers), logger.level
    assert run_cli("--debug", http2bin_plain.url("/get")).returncode == 0
    assert (logger.handlers, logger.level) == (handlers, level)


def test_push_promise_block_is_logged(
    nghttpd_push: NghttpdPushServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The tool never enables push; the engine logs promised blocks for any program that does.
    caplog.set_level(logging.DEBUG, logger="hyper")
    assert nghttpd_push.ca_cert_path is not None
    context = tls.init_context(cert_path=nghttpd_push.ca_cert_path)
    with HTTP20Connection(
        nghttpd_push.host,
        nghttpd_push.port,
        secure=True,
        ssl_context=context,
        enable_push=True,
        timeout=10,
    ) as conn:
        response = conn.get_response(conn.request("GET", "/page.html"))
        response.read()
    messages = [r.getMessage() for r in caplog.records if r.name == "hyper.http20"]
    promised = [m for m in messages if re.fullmatch(r"received: PUSH_PROMISE of stream \d+ .*", m)]
    assert promised and all(m.endswith(" on stream 1:") for m in promised), messages
    first = messages.index(promised[0])
    assert messages[first + 1] == "received:     :method: GET"


def test_header_block_lines_mask_secrets() -> None:
    lines = list(
        framelog.header_block_lines(
            "HEADERS",
            3,
            [
                (b":status", b"200"),
                (b"Set-Cookie", b"id=1"),
                ("proxy-authorization", "Basic eA=="),
                (b"x-caf\xe9", b"\xe9t\xe9"),
            ],
        )
    )
    assert lines == [
        "HEADERS on stream 3:",
        "    :status: 200",
        "    Set-Cookie: ***",
        "    proxy-authorization: ***",
        "    x-caf\xe9: \xe9t\xe9",
    ]


def test_unwritable_sslkeylogfile_warns_on_stderr(
    http2bin_tls: Http2binServer, tmp_path: Path
) -> None:
    keylog = tmp_path / "no-such-dir" / "keys.log"
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/get"),
        env={"SSLKEYLOGFILE": str(keylog)},
    )
    assert result.returncode == 0, err_text(result)  # a debugging aid never stops a request
    lines = err_text(result).splitlines()
    assert lines[0].startswith(
        f"hyper: warning: cannot write TLS secrets to SSLKEYLOGFILE={str(keylog)!r}: "
    )
    assert "No such file or directory" in lines[0]
    assert lines[1] == "HTTP/2 200"


def test_writable_sslkeylogfile_gets_the_secrets(
    http2bin_tls: Http2binServer, tmp_path: Path
) -> None:
    keylog = tmp_path / "keys.log"
    result = run_cli(
        "--cacert",
        http2bin_tls.ca_cert_path,
        http2bin_tls.url("/get"),
        env={"SSLKEYLOGFILE": str(keylog)},
    )
    assert result.returncode == 0, err_text(result)
    assert "warning" not in err_text(result)
    assert b"CLIENT_TRAFFIC_SECRET_0 " in keylog.read_bytes()
