"""Request bodies of the ``hyper`` command: piped standard input, ``@file`` bodies and
``field=@file`` fields, ``--form`` (urlencoded and multipart), and the errors for files that
cannot be read, reported before anything is sent.

httpbin's ``/post`` and ``/anything`` echo what they received: the raw body (``data``), the
parsed JSON, form fields and uploaded files.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper.cli import bodies
from hyper.cli.errors import FileError, UsageError
from hyper.cli.items import parse_items
from tests.support.cli import (
    IdleListener,
    assert_one_line_error,
    err_text,
    run_cli,
    run_cli_process,
)
from tests.support.http2bin import Http2binServer


@pytest.fixture
def listener() -> Iterator[IdleListener]:
    """A port nobody answers on (see :class:`IdleListener`)."""
    with IdleListener() as idle:
        yield idle


def echo(result: object) -> dict[str, object]:
    """httpbin's echo of the request, from a successful run."""
    assert getattr(result, "returncode", None) == 0, err_text(result)  # type: ignore[arg-type]
    document: dict[str, object] = json.loads(result.stdout)  # type: ignore[attr-defined]
    return document


# -- standard input ------------------------------------------------------------------------------


def test_piped_stdin_is_the_body(http2bin_plain: Http2binServer) -> None:
    # A real pipe, in a subprocess: the body is what was written to it.
    result = run_cli_process(http2bin_plain.url("/anything"), stdin=b'{"from": "stdin"}')
    echoed = echo(result)
    assert echoed["method"] == "POST"  # a body and no METHOD: POST
    assert echoed["data"] == '{"from": "stdin"}'
    assert echoed["json"] == {"from": "stdin"}
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == "17"


def test_binary_stdin_with_method_and_content_type(http2bin_plain: Http2binServer) -> None:
    data = bytes(range(256)) * 64
    result = run_cli(
        "PUT", http2bin_plain.url("/anything"), "Content-Type:application/octet-stream", stdin=data
    )
    echoed = echo(result)
    assert echoed["method"] == "PUT"
    assert isinstance(echoed["data"], str)
    assert echoed["data"].startswith("data:application/octet-stream;base64,")
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Length"] == str(len(data))


def test_piped_stdin_as_a_form(http2bin_plain: Http2binServer) -> None:
    result = run_cli("--form", http2bin_plain.url("/post"), stdin=b"a=1&b=two")
    echoed = echo(result)
    assert echoed["form"] == {"a": "1", "b": "two"}


@pytest.mark.parametrize(
    ("args", "stdin", "tty"),
    [
        ([], b"", False),  # empty (like /dev/null): no body
        ([], b"ignored", True),  # a terminal is never read
        (["--ignore-stdin"], b"ignored", False),
    ],
)
def test_stdin_that_is_not_a_body(
    http2bin_plain: Http2binServer, args: list[str], stdin: bytes, tty: bool
) -> None:
    result = run_cli(*args, http2bin_plain.url("/anything"), stdin=stdin, stdin_tty=tty)
    echoed = echo(result)
    assert echoed["method"] == "GET"
    assert echoed["data"] == ""


def test_no_stdin_at_all(http2bin_plain: Http2binServer) -> None:
    echoed = echo(run_cli(http2bin_plain.url("/anything"), stdin=None))
    assert echoed["method"] == "GET"


def test_body_items_leave_stdin_alone(http2bin_plain: Http2binServer) -> None:
    result = run_cli(http2bin_plain.url("/post"), "item=1", stdin=b"not read")
    assert echo(result)["json"] == {"item": "1"}


def test_stdin_from_dev_null_in_a_subprocess(http2bin_plain: Http2binServer) -> None:
    echoed = echo(run_cli_process(http2bin_plain.url("/anything")))
    assert echoed["method"] == "GET"


class InterruptedStdin(io.BytesIO):
    """Standard input on which the user presses Control-C."""

    def read(self, size: int | None = -1) -> bytes:
        raise KeyboardInterrupt


def test_interrupt_while_reading_stdin(listener: IdleListener) -> None:
    result = run_cli(f"127.0.0.1:{listener.port}/", stdin=InterruptedStdin())
    assert result.returncode == 130
    assert err_text(result) == "hyper: interrupted\n"
    listener.assert_nothing_sent()


def test_waiting_for_stdin_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "STDIN_HINT_AFTER", 0.01)
    read_end, write_end = os.pipe()
    hints: list[int] = []

    def on_wait() -> None:
        # Nothing was written before: the wait always runs out. Now the data arrives.
        hints.append(1)
        os.write(write_end, b"late body")
        os.close(write_end)

    with os.fdopen(read_end, "rb") as stream:
        assert bodies.read_stdin(stream, on_wait) == b"late body"
    assert hints == [1]


def test_stdin_ready_at_once_gives_no_hint() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"ready")
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        assert bodies.read_stdin(stream, lambda: pytest.fail("hint without a wait")) == b"ready"


def test_unreadable_stdin_is_a_file_error() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    # Standard input open for writing only (``hyper URL 0>file``): reading it fails.
    message = "cannot read standard input: Bad file descriptor"
    with os.fdopen(write_end, "rb") as stream, pytest.raises(FileError, match=message):
        bodies.read_stdin(stream, lambda: None)


# -- files ---------------------------------------------------------------------------------------


def test_file_body(http2bin_plain: Http2binServer, tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"from": "file"}')
    echoed = echo(run_cli(http2bin_plain.url("/anything"), f"@{path}", stdin=b"not read"))
    assert echoed["method"] == "POST"
    assert echoed["json"] == {"from": "file"}
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Type"] == "application/json"  # from the file's name
    assert headers["Content-Length"] == "16"


def test_large_file_body_over_http2(http2bin_tls: Http2binServer, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    result = run_cli(
        "--cacert", http2bin_tls.ca_cert_path, "PUT", http2bin_tls.url("/anything"), f"@{path}"
    )
    echoed = echo(result)
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == str(len(data))
    assert isinstance(echoed["data"], str)
    assert echoed["data"].startswith("data:application/octet-stream;base64,")


def test_file_fields(http2bin_plain: Http2binServer, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("line one\nline two\n")
    (tmp_path / "meta.json").write_text('{"tags": ["a", "b"], "n": 2}')
    result = run_cli(
        http2bin_plain.url("/post"),
        f"note=@{tmp_path}/note.txt",
        f"meta:=@{tmp_path}/meta.json",
        "plain=x",
    )
    assert echo(result)["json"] == {
        "note": "line one\nline two\n",
        "meta": {"tags": ["a", "b"], "n": 2},
        "plain": "x",
    }


@pytest.mark.parametrize(
    "item",
    [
        "@{missing}",
        "text=@{missing}",
        "data:=@{missing}",
        "upload@{missing}",
    ],
)
def test_missing_file_fails_before_sending(
    listener: IdleListener, tmp_path: Path, item: str
) -> None:
    missing = tmp_path / "missing.txt"
    form = ["--form"] if item.startswith("upload@") else []
    url = f"127.0.0.1:{listener.port}/post"
    result = run_cli(*form, url, item.format(missing=missing))
    line = assert_one_line_error(result, 2)
    assert line == f"hyper: error: cannot read {str(missing)!r}: No such file or directory"
    listener.assert_nothing_sent()


def test_directory_as_a_file_body(listener: IdleListener, tmp_path: Path) -> None:
    url = f"127.0.0.1:{listener.port}/post"
    line = assert_one_line_error(run_cli(url, f"field=@{tmp_path}"), 2)
    assert str(tmp_path) in line and "Is a directory" in line
    listener.assert_nothing_sent()


def test_invalid_json_and_text_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    bad = run_cli("127.0.0.1:9/post", f"x:=@{tmp_path}/bad.json")
    assert "invalid JSON in" in assert_one_line_error(bad, 2)
    latin = run_cli("127.0.0.1:9/post", f"x=@{tmp_path}/latin1.txt")
    assert "is not UTF-8 text" in assert_one_line_error(latin, 2)


# -- forms ---------------------------------------------------------------------------------------


def test_urlencoded_form(http2bin_plain: Http2binServer, tmp_path: Path) -> None:
    (tmp_path / "bio.txt").write_text("writes & tests")
    result = run_cli(
        "-f",
        http2bin_plain.url("/post"),
        "name=Hyper Client",
        "symbols=a&b=c",
        f"bio=@{tmp_path}/bio.txt",
    )
    echoed = echo(result)
    assert echoed["form"] == {"name": "Hyper Client", "symbols": "a&b=c", "bio": "writes & tests"}
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Accept"] == "*/*"


def test_multipart_form_with_files(http2bin_plain: Http2binServer, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello, world\n")
    (tmp_path / "data.json").write_text('{"a": 1}')
    result = run_cli(
        "--form",
        http2bin_plain.url("/post"),
        "title=two files",
        f"greeting@{tmp_path}/hello.txt",
        f"payload@{tmp_path}/data.json",
    )
    echoed = echo(result)
    assert echoed["form"] == {"title": "two files"}
    assert echoed["files"] == {"greeting": "hello, world\n", "payload": '{"a": 1}'}
    headers = echoed["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=hyper-")


def test_upload_without_form_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = run_cli("127.0.0.1:9/post", f"doc@{tmp_path}/a.txt")
    assert result.returncode == 2
    assert "needs --form" in err_text(result).splitlines()[-1]


def test_json_item_in_a_form_is_a_usage_error() -> None:
    result = run_cli("--form", "127.0.0.1:9/post", "n:=1")
    assert result.returncode == 2
    assert "cannot be sent in a --form body" in err_text(result).splitlines()[-1]


def test_multipart_encoding(tmp_path: Path) -> None:
    (tmp_path / 'we"ird.txt').write_bytes(b"\x00binary\r\n")
    fields = parse_items([f'up@{tmp_path}/we"ird.txt', 'na"me\nx=value'])
    body = bodies.form_body(fields.fields, boundary="BOUNDARY")
    assert body.content_type == "multipart/form-data; boundary=BOUNDARY"
    assert body.data == (
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="up"; filename="we%22ird.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"\x00binary\r\n\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="na%22me%0Ax"\r\n\r\n'
        b"value\r\n"
        b"--BOUNDARY--\r\n"
    )
    assert body.length == len(body.data)


def test_json_body_rejects_uploads() -> None:
    with pytest.raises(UsageError, match="needs --form"):
        bodies.json_body(parse_items(["f@x.bin"]).fields)


def test_file_body_is_rewound_for_each_send(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"0123456789")
    body = bodies.file_body(str(tmp_path / "x.bin"))
    try:
        for _ in range(2):
            payload = body.payload()
            assert not isinstance(payload, bytes)
            assert payload.read() == b"0123456789"
        assert body.length == 10
    finally:
        body.close()


def test_file_body_from_a_pipe_is_read_into_memory(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as writer:
            writer.write(b"through a fifo")

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        body = bodies.file_body(str(fifo))
    finally:
        writer.join(10)
    assert body.data == b"through a fifo"
    assert body.file is None and body.length == 14
