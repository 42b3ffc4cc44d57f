"""HTTP30Connection against hostile HTTP/3 servers (:mod:`tests.support.h3hostile`): a server
that stops answering mid-body, one that resets a stream mid-body, one that sends a header
section larger than hyper accepts, and frames a server must not send. Each ends in a
documented hyper exception, within a bounded time, and fails only the request it concerns
when the connection can go on.
"""

from __future__ import annotations

import time

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper import HTTP30Connection
from hyper.common.exceptions import ConnectionClosed, InvalidResponse, ReadTimeout
from hyper.http30.engine import MAX_FIELD_SECTION_SIZE, MAX_HEAD_BYTES
from hyper.http30.errors import H3ErrorCode, code_name
from hyper.http30.exceptions import ConnectionError as HTTP3ConnectionError
from hyper.http30.exceptions import (
    FieldSectionTooLarge,
    ProtocolError,
    QPACKError,
    StreamResetError,
)
from tests.support.certs import TLSMaterial
from tests.support.h3hostile import (
    MAX_FIELD_SECTION_SIZE_SETTING,
    RESERVED_FRAME,
    UNKNOWN_FRAME,
    HostileExchange,
    HostilePeer,
    HostileScript,
    data_frame,
    headers_frame,
    indexed_line,
    qpack_block,
    run_hostile_peer,
    trailers_frame,
)
from tests.support.h3peer import HEADERS, frame, varint

#: The connect timeout, and the read timeout where a test does not set its own.
TIMEOUT = 10.0
#: The read timeout of the tests that wait for one to pass.
READ_TIMEOUT = 0.5
#: The idle timeout of the tests that wait for QUIC's to pass.
IDLE_TIMEOUT = 1.0
#: How long past a timeout a test allows for its error to arrive, on a busy machine.
SLACK = 3.0
#: What a partial response announces, and what it sends of it.
ANNOUNCED = 1000
PARTIAL = b"x" * 100


def _connect(
    peer: HostilePeer,
    tls_material: TLSMaterial,
    timeout: float | tuple[float, float | None] | None = TIMEOUT,
    idle_timeout: float = 30.0,
) -> HTTP30Connection:
    return HTTP30Connection(
        peer.host,
        peer.port,
        cert_path=tls_material.ca_cert_path,
        timeout=timeout,
        idle_timeout=idle_timeout,
    )


def _partial_response(exchange: HostileExchange) -> None:
    """Headers announcing :data:`ANNOUNCED` bytes, and :data:`PARTIAL` of them."""
    fields = [(b"content-length", str(ANNOUNCED).encode())]
    exchange.send(headers_frame(200, fields) + data_frame(PARTIAL))


def _first_only(bad: HostileScript) -> HostileScript:
    """``bad`` for each connection's first request, a plain answer for the others."""

    def script(exchange: HostileExchange) -> None:
        if exchange.index == 0:
            bad(exchange)
        else:
            exchange.respond(body=b"fine")

    return script


def _connection_failure(
    tls_material: TLSMaterial, script: HostileScript, error: type[HTTP3ConnectionError]
) -> tuple[HTTP3ConnectionError, int, int]:
    """A GET of ``/`` against ``script`` fails with ``error`` within :data:`SLACK` seconds:
    the error, how many requests the server saw, how many connections hyper opened."""
    with (
        run_hostile_peer(tls_material.server, script) as peer,
        _connect(peer, tls_material) as conn,
    ):
        started = time.monotonic()
        with pytest.raises(error) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert time.monotonic() - started < SLACK
        return caught.value, len(peer.seen), conn.connections_opened


# -- a server that stops answering ------------------------------------------------------------


def test_a_server_gone_silent_mid_body_is_a_read_timeout(tls_material: TLSMaterial) -> None:
    def script(exchange: HostileExchange) -> None:
        _partial_response(exchange)
        exchange.go_silent()

    with (
        run_hostile_peer(tls_material.server, script) as peer,
        _connect(peer, tls_material, timeout=(TIMEOUT, READ_TIMEOUT)) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.read(len(PARTIAL)) == PARTIAL
        started = time.monotonic()
        with pytest.raises(ReadTimeout, match="timed out"):
            response.read()
        assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + SLACK


def test_a_server_gone_silent_ends_at_the_idle_timeout_without_a_read_timeout(
    tls_material: TLSMaterial,
) -> None:
    def script(exchange: HostileExchange) -> None:
        _partial_response(exchange)
        exchange.go_silent()

    with (
        run_hostile_peer(tls_material.server, script) as peer,
        _connect(peer, tls_material, timeout=None, idle_timeout=IDLE_TIMEOUT) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        started = time.monotonic()
        with pytest.raises(ConnectionClosed, match="timed out while idle"):
            response.read()
        assert time.monotonic() - started < IDLE_TIMEOUT + SLACK
        assert len(peer.seen) == 1  # a response that had begun is not asked for again


def test_a_server_that_keeps_the_connection_alive_but_sends_nothing_times_out_each_read(
    tls_material: TLSMaterial,
) -> None:
    def stall(exchange: HostileExchange) -> None:
        _partial_response(exchange)
        exchange.keep_alive(0.1)

    with (
        run_hostile_peer(tls_material.server, _first_only(stall)) as peer,
        _connect(
            peer, tls_material, timeout=(TIMEOUT, READ_TIMEOUT), idle_timeout=IDLE_TIMEOUT
        ) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/stalls"))
        started = time.monotonic()
        for _ in range(3):  # each read waits its read timeout, however many there are
            with pytest.raises(ReadTimeout):
                response.read(len(PARTIAL) + 1)
        assert time.monotonic() - started > IDLE_TIMEOUT  # the PINGs kept QUIC alive ...
        # ... and the connection still serves other requests; the partial data is kept.
        assert conn.get_response(conn.request("GET", "/other")).read() == b"fine"
        assert response.read(len(PARTIAL)) == PARTIAL
        assert conn.connections_opened == 1


# -- a stream reset -----------------------------------------------------------------------------


@pytest.mark.parametrize("read_the_data_first", [True, False], ids=["read-amt", "read-all"])
def test_a_reset_mid_body_fails_the_read_after_the_data_before_it(
    tls_material: TLSMaterial, read_the_data_first: bool
) -> None:
    def reset_mid_body(exchange: HostileExchange) -> None:
        _partial_response(exchange)
        exchange.when_acknowledged(lambda: exchange.reset(H3ErrorCode.H3_INTERNAL_ERROR))

    with (
        run_hostile_peer(tls_material.server, _first_only(reset_mid_body)) as peer,
        _connect(peer, tls_material) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/reset"))
        assert response.status == 200
        if read_the_data_first:
            assert response.read(len(PARTIAL)) == PARTIAL  # what came before the reset
        with pytest.raises(StreamResetError) as caught:
            response.read()
        assert caught.value.error_code == H3ErrorCode.H3_INTERNAL_ERROR
        assert "reset by the server (H3_INTERNAL_ERROR)" in str(caught.value)
        assert conn.get_response(conn.request("GET", "/other")).read() == b"fine"
        assert conn.connections_opened == 1
        assert len(peer.seen) == 2  # the reset request is not sent again


# -- header sections larger than hyper accepts -----------------------------------------------


def test_hyper_advertises_a_limit_on_header_sections(tls_material: TLSMaterial) -> None:
    with (
        run_hostile_peer(tls_material.server, lambda exchange: exchange.respond()) as peer,
        _connect(peer, tls_material) as conn,
    ):
        assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        # The QUIC stack's, which hyper's own limit is below (docs/http3.rst).
        advertised = peer.client_settings()[MAX_FIELD_SECTION_SIZE_SETTING]
        assert advertised == 1024 * 1024
        assert advertised > MAX_FIELD_SECTION_SIZE


def _big_fields(size: int) -> list[tuple[bytes, bytes]]:
    """Fields of more than ``size`` bytes, decoded, in 4 KiB values."""
    return [(f"x-big-{n}".encode(), b"v" * 4096) for n in range(size // 4096 + 1)]


def _literals_of(size: int) -> bytes:
    """A QPACK field section of literals of more than ``size`` bytes."""
    fields = headers_frame(200, _big_fields(size))
    return fields[len(varint(HEADERS)) + len(varint(len(fields))) :]


_TOO_LARGE = _big_fields(MAX_FIELD_SECTION_SIZE)


@pytest.mark.parametrize(
    ("where", "wire"),
    [
        ("header section", headers_frame(200, _TOO_LARGE)),
        ("trailers", headers_frame(200) + data_frame(b"body") + trailers_frame(_TOO_LARGE)),
    ],
)
def test_a_header_section_over_hyper_s_limit_fails_its_request_only(
    tls_material: TLSMaterial, where: str, wire: bytes
) -> None:
    def too_large(exchange: HostileExchange) -> None:
        exchange.send(wire, end_stream=True)

    with (
        run_hostile_peer(tls_material.server, _first_only(too_large)) as peer,
        _connect(peer, tls_material) as conn,
    ):
        bad = conn.request("GET", "/big")
        good = conn.request("GET", "/other")
        with pytest.raises(FieldSectionTooLarge) as caught:
            conn.get_response(bad).read()
        error = caught.value
        assert isinstance(error, InvalidResponse)
        assert error.limit == MAX_FIELD_SECTION_SIZE
        assert error.size > MAX_FIELD_SECTION_SIZE
        assert f"{where} of {error.size} bytes" in str(error)
        assert conn.get_response(good).read() == b"fine"
        assert conn.connections_opened == 1
        assert len(peer.seen) == 2  # not asked for again


def test_a_header_block_larger_than_hyper_buffers_is_refused_before_its_end(
    tls_material: TLSMaterial,
) -> None:
    # A header block declared at 1 MiB (under the QUIC stack's limit): hyper stops it once
    # MAX_HEAD_BYTES have arrived, whether or not the rest ever does.
    declared = 1024 * 1024
    block = _literals_of(declared)

    def too_large(exchange: HostileExchange) -> None:
        exchange.send(varint(HEADERS) + varint(declared) + block[: MAX_HEAD_BYTES + 4096])
        exchange.keep_alive(0.1)

    with (
        run_hostile_peer(tls_material.server, _first_only(too_large)) as peer,
        _connect(peer, tls_material) as conn,
    ):
        started = time.monotonic()
        with pytest.raises(FieldSectionTooLarge) as caught:
            conn.get_response(conn.request("GET", "/big"))
        assert time.monotonic() - started < SLACK
        assert caught.value.limit == MAX_HEAD_BYTES
        assert MAX_HEAD_BYTES < caught.value.size <= MAX_HEAD_BYTES + 8192
        assert "before the response's header section was whole" in str(caught.value)
        assert conn.get_response(conn.request("GET", "/other")).read() == b"fine"
        assert conn.connections_opened == 1


@pytest.mark.parametrize(
    "head",
    [
        # A HEADERS frame whose declared length never all arrives.
        pytest.param(
            varint(HEADERS) + varint(60_000) + b"\x00\x00" + b"\x20" * 100, id="unfinished"
        ),
        # A whole block with Required Insert Count 1 (encoded as 2): it waits for a table
        # entry the server never inserts (it opens no encoder stream), as a blocked stream
        # may (RFC 9204 section 2.1.2).
        pytest.param(
            frame(HEADERS, qpack_block(2, indexed_line(0, static=False))),
            id="waiting-for-table-entries",
        ),
    ],
)
def test_a_header_block_that_never_completes_is_a_read_timeout(
    tls_material: TLSMaterial, head: bytes
) -> None:
    def never_complete(exchange: HostileExchange) -> None:
        exchange.send(head)
        exchange.keep_alive(0.1)

    with (
        run_hostile_peer(tls_material.server, _first_only(never_complete)) as peer,
        _connect(peer, tls_material, timeout=(TIMEOUT, READ_TIMEOUT)) as conn,
    ):
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            conn.get_response(conn.request("GET", "/"))
        assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + SLACK
        assert conn.get_response(conn.request("GET", "/other")).read() == b"fine"


def test_a_header_block_declared_over_the_stack_s_limit_ends_the_connection(
    tls_material: TLSMaterial,
) -> None:
    # The QUIC stack refuses a header block declared over four times the limit it
    # advertises at once, as a connection error, before any of it is buffered.
    def huge(exchange: HostileExchange) -> None:
        exchange.send(varint(HEADERS) + varint(1 << 30) + b"\x00\x00")
        exchange.keep_alive(0.1)

    error, requests, connections = _connection_failure(tls_material, huge, HTTP3ConnectionError)
    assert error.error_code == H3ErrorCode.H3_EXCESSIVE_LOAD
    assert "field section" in str(error)
    # The end of a connection does not say who ended it: an idempotent request is sent
    # again once, as when a busy server closes with H3_EXCESSIVE_LOAD, and no more.
    assert (requests, connections) == (2, 2)


# -- frames out of place --------------------------------------------------------------------


_TRAILERS = trailers_frame([(b"x-t", b"1")])


@pytest.mark.parametrize(
    ("wire", "later", "code", "reason"),
    [
        pytest.param(
            data_frame(b"early") + headers_frame(200),
            b"",
            H3ErrorCode.H3_FRAME_UNEXPECTED,
            "DATA frame is not allowed",
            id="data-before-headers",
        ),
        pytest.param(
            headers_frame(200) + _TRAILERS,
            data_frame(b"late"),
            H3ErrorCode.H3_FRAME_UNEXPECTED,
            "DATA frame is not allowed",
            id="data-after-trailers",
        ),
        pytest.param(
            headers_frame(200) + _TRAILERS,
            trailers_frame([]),
            H3ErrorCode.H3_FRAME_UNEXPECTED,
            "HEADERS frame is not allowed",
            id="headers-after-trailers",
        ),
        pytest.param(
            headers_frame(200) + data_frame(b"x") + trailers_frame([(b":status", b"200")]),
            b"",
            H3ErrorCode.H3_MESSAGE_ERROR,
            "Pseudo-header",
            id="pseudo-header-in-trailers",
        ),
    ],
)
def test_frames_out_of_place_are_a_protocol_error(
    tls_material: TLSMaterial, wire: bytes, later: bytes, code: int, reason: str
) -> None:
    # The QUIC stack makes each of these a connection error (RFC 9114 sections 4.1 and
    # 4.1.2 allow a malformed message to be one). Frames after the trailers come once the
    # trailers have arrived: the stack ignores any that arrive with them and the stream's end.
    def out_of_place(exchange: HostileExchange) -> None:
        if not later:
            exchange.send(wire, end_stream=True)
            return
        exchange.send(wire)
        exchange.when_acknowledged(lambda: exchange.send(later, end_stream=True))

    error, requests, _ = _connection_failure(tls_material, out_of_place, ProtocolError)
    assert error.error_code == code
    assert code_name(code) in str(error) and reason in str(error)
    assert requests == 1  # a broken server is not asked again


def test_unknown_frames_are_ignored(tls_material: TLSMaterial) -> None:
    def with_unknown_frames(exchange: HostileExchange) -> None:
        exchange.send(
            frame(RESERVED_FRAME, b"grease")
            + headers_frame(200, [(b"content-length", b"10")])
            + frame(UNKNOWN_FRAME, b"?" * 300)
            + data_frame(b"hello")
            + frame(RESERVED_FRAME, b"")
            + data_frame(b"world")
            + frame(UNKNOWN_FRAME, b"after the body"),
            end_stream=True,
        )

    with (
        run_hostile_peer(tls_material.server, with_unknown_frames) as peer,
        _connect(peer, tls_material) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.status == 200
        assert response.read() == b"helloworld"
        assert response.trailers is None


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(qpack_block(0, indexed_line(0, static=False)), id="dynamic-with-no-table"),
        pytest.param(qpack_block(0, indexed_line(200, static=True)), id="static-out-of-range"),
    ],
)
def test_a_bad_qpack_reference_is_a_qpack_error(tls_material: TLSMaterial, block: bytes) -> None:
    def bad_reference(exchange: HostileExchange) -> None:
        exchange.send(frame(HEADERS, block), end_stream=True)

    error, requests, _ = _connection_failure(tls_material, bad_reference, QPACKError)
    assert error.error_code == H3ErrorCode.QPACK_DECOMPRESSION_FAILED
    assert requests == 1
