"""What HTTP30Connection does when the server resets a request, rejects it, goes away with
GOAWAY or ends the connection with an error (RFC 9114 sections 4.1.1, 5.2 and 8), against
the scripted server of :mod:`tests.support.h3peer`: each test says what each request gets.
"""

from __future__ import annotations

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

from hyper import HTTP30Connection
from hyper.common.exceptions import IncompleteRead, InvalidResponse
from hyper.http30.errors import H3ErrorCode
from hyper.http30.exceptions import ConnectionError, StreamResetError
from tests.support.certs import TLSMaterial
from tests.support.h3peer import Exchange, H3Peer, run_h3_peer

TIMEOUT = 10.0


def _connect(peer: H3Peer, tls_material: TLSMaterial) -> HTTP30Connection:
    return HTTP30Connection(
        peer.host, peer.port, cert_path=tls_material.ca_cert_path, timeout=TIMEOUT
    )


def test_a_reset_stream_fails_that_request_only(tls_material: TLSMaterial) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.index == 0:
            exchange.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
        else:
            exchange.respond(body=b"second")

    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        first = conn.request("GET", "/first")
        second = conn.request("GET", "/second")
        with pytest.raises(StreamResetError) as caught:
            conn.get_response(first)
        assert caught.value.error_code == H3ErrorCode.H3_REQUEST_CANCELLED
        assert "H3_REQUEST_CANCELLED" in str(caught.value)
        assert conn.get_response(second).read() == b"second"
        assert len(peer.seen) == 2  # a reset request is not sent again
        assert conn.connections_opened == 1


def test_a_rejected_request_is_sent_again(tls_material: TLSMaterial) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.index == 0:
            exchange.reset(H3ErrorCode.H3_REQUEST_REJECTED)  # not processed (4.1.1)
        else:
            exchange.respond(body=b"answered")

    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        request = conn.request("POST", "/upload", body=b"data")
        response = conn.get_response(request)
        assert response.read() == b"answered"
        assert [index for _, index, _ in peer.seen] == [0, 1]


def test_requests_above_a_goaway_go_out_again_on_a_new_connection(
    tls_material: TLSMaterial,
) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.connection == 0:
            if exchange.index == 0:
                # Only the first request was processed: GOAWAY names the next stream.
                exchange.goaway(exchange.stream_id + 4)
                exchange.respond(body=b"first")
            return  # the requests above the GOAWAY are never answered here
        exchange.respond(body=f"again {exchange.index}".encode())

    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        first = conn.request("GET", "/a")
        second = conn.request("GET", "/b")
        third = conn.request("POST", "/c", body=b"posted")  # not processed: any method
        assert conn.get_response(first).read() == b"first"
        bodies = {conn.get_response(second).read(), conn.get_response(third).read()}
        assert bodies == {b"again 0", b"again 1"}
        assert conn.connections_opened == 2
        assert sorted((connection, index) for connection, index, _ in peer.seen) == [
            (0, 0),
            (0, 1),
            (0, 2),
            (1, 0),
            (1, 1),
        ]


def test_a_connection_ended_with_an_error(tls_material: TLSMaterial) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.connection == 0:
            exchange.close(H3ErrorCode.H3_EXCESSIVE_LOAD, "too busy")
        else:
            exchange.respond(body=b"later")

    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        # An idempotent request goes out again once on a new connection ...
        assert conn.get_response(conn.request("GET", "/")).read() == b"later"
        assert conn.connections_opened == 2
    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        # ... one whose fate is unknown fails, saying so.
        with pytest.raises(ConnectionError) as caught:
            conn.get_response(conn.request("POST", "/", body=b"x"))
        assert caught.value.error_code == H3ErrorCode.H3_EXCESSIVE_LOAD
        assert "too busy" in str(caught.value)
        assert not caught.value.safe_to_retry
        assert len(peer.seen) == 1


@pytest.mark.parametrize(
    ("fields", "body", "error", "message"),
    [
        ([(b"content-length", b"2")], b"too long", InvalidResponse, "content-length"),
        ([(b"content-length", b"20")], b"short", IncompleteRead, "5 of 20"),
        ([(b"connection", b"close")], b"x", InvalidResponse, "connection-specific"),
        ([(b"x-bad", b" padded")], b"x", InvalidResponse, "whitespace"),
    ],
)
def test_a_malformed_response_fails_its_request_only(
    tls_material: TLSMaterial,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    error: type[Exception],
    message: str,
) -> None:
    def script(exchange: Exchange) -> None:
        if exchange.index == 0:
            exchange.respond(body=body, fields=fields)
        else:
            exchange.respond(body=b"fine")

    with run_h3_peer(tls_material.server, script) as peer, _connect(peer, tls_material) as conn:
        bad = conn.request("GET", "/bad")
        good = conn.request("GET", "/good")
        with pytest.raises(error, match=message):
            conn.get_response(bad).read()
        assert conn.get_response(good).read() == b"fine"
        assert conn.connections_opened == 1
