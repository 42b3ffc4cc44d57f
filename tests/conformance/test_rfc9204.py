"""
RFC 9204 (QPACK), the rules of the conformance table (docs/conformance/rfc9204.csv): what
hyper's QPACK encoder (qh3's, behind :class:`hyper.HTTP30Connection`) puts in request
field sections and on its encoder stream, and what its decoder does with the field
sections, encoder instructions and decoder instructions a server sends, valid or not.

The server is the raw one of :mod:`tests.support.h3conformance`; QPACK instructions and
field lines are written byte by byte (:func:`~tests.support.h3conformance.insert_literal`
and the rest), and what the client encodes is decoded with ``pylsqpack``, an independent
decoder, limited to what the server advertised.
"""

from __future__ import annotations

import pytest

from tests.support.processes import in_ci

if not in_ci():  # in CI a missing QUIC stack is a failure, not a skip
    pytest.importorskip("qh3", reason="HTTP/3 needs the http3 extra (qh3)")

import pylsqpack

from hyper import HTTP30Connection
from hyper.http30.errors import H3ErrorCode
from hyper.http30.exceptions import FieldSectionTooLarge, ProtocolError, QPACKError
from tests.support.certs import TLSMaterial
from tests.support.h3conformance import (
    DECODER_STREAM,
    ENCODER_STREAM,
    QPACK_BLOCKED_STREAMS,
    QPACK_MAX_TABLE_CAPACITY,
    STATUS_200,
    RawConnection,
    Script,
    connect_client,
    duplicate,
    indexed_dynamic,
    indexed_post_base,
    indexed_static,
    insert_literal,
    insert_static_name,
    prefixed,
    run_raw_h3,
    section_prefix,
    set_capacity,
    settings_payload,
)
from tests.support.h3peer import HEADERS, SETTINGS, frame, varint

E = H3ErrorCode
#: The dynamic table capacity hyper's decoder (qh3's) accepts, and so its maximum entries.
CLIENT_CAPACITY = 65536
MAX_ENTRIES = CLIENT_CAPACITY // 32


#: Two insertions into a 100-byte table: the second evicts the first (absolute index 0).
EVICTING = set_capacity(100) + insert_literal(b"a", b"x" * 30) + insert_literal(b"b", b"y" * 30)


def _ric(insert_count: int) -> int:
    """The encoded Required Insert Count for ``insert_count`` (section 4.5.1.1)."""
    return insert_count % (2 * MAX_ENTRIES) + 1 if insert_count else 0


def _answer(
    instructions: bytes = b"", section: bytes | None = None, first: str = "encoder"
) -> Script:
    """A script that answers each request with encoder ``instructions`` (on a new encoder
    stream, once) and a response whose field section is ``section``, in the ``first``
    order."""
    sent: list[int] = []

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if not ended:
            return
        if first == "encoder" and instructions and not sent:
            sent.append(connection.open_uni(varint(ENCODER_STREAM) + instructions))
        if section is not None:
            connection.send(stream_id, frame(HEADERS, section), end=True)
        if first != "encoder" and instructions and not sent:
            sent.append(connection.open_uni(varint(ENCODER_STREAM) + instructions))

    return script


def _decoder_stream(instructions: bytes) -> Script:
    """A script that answers the first request with decoder ``instructions``."""

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if ended:
            connection.open_uni(varint(DECODER_STREAM) + instructions)

    return script


def _fails_with(tls: TLSMaterial, script: Script, code: int) -> None:
    with run_raw_h3(tls.server, script) as server, connect_client(server, tls) as conn:
        with pytest.raises(ProtocolError) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert caught.value.error_code == code, caught.value
        if code >= E.QPACK_DECOMPRESSION_FAILED:
            assert isinstance(caught.value, QPACKError)
        assert server.closed_with() == code


def _status_200() -> bytes:
    return section_prefix(0) + indexed_static(STATUS_200)


# -- 2.1 and 2.2: order of field lines ----------------------------------------------------------


def test_rfc9204_2_1_request_fields_are_encoded_in_their_order(tls_material: TLSMaterial) -> None:
    fields = [("x-b", "1"), ("x-a", "2"), ("x-b", "3"), ("cookie", "c=1"), ("x-a", "4")]
    with run_raw_h3(tls_material.server) as server, connect_client(server, tls_material) as conn:
        conn.get_response(conn.request("GET", "/", headers=fields)).read()
        sent = server.connection().request_headers(0)
    assert [
        (n.decode(), v.decode()) for n, v in sent if n.startswith(b"x-") or n == b"cookie"
    ] == fields


def test_rfc9204_2_2_response_fields_come_out_in_their_order(tls_material: TLSMaterial) -> None:
    fields = [(b"x-b", b"1"), (b"set-cookie", b"a=1"), (b"x-b", b"2"), (b"set-cookie", b"b=2")]

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if ended:
            connection.respond(stream_id, fields=[*fields, (b"content-length", b"2")])

    with (
        run_raw_h3(tls_material.server, script) as server,
        connect_client(server, tls_material) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        received = [(n, v) for n, v in response.headers.iter_raw() if n != b"content-length"]
    assert received == fields


# -- 2.1.1, 2.1.2, 3.2.3: the encoder stays within the server's limits --------------------------


def _requests_with_varied_fields(conn: HTTP30Connection, count: int) -> None:
    for n in range(count):
        headers = {"x-repeated": "same value", "x-varied": f"value {n}", "x-big": "b" * (40 + n)}
        assert conn.get_response(conn.request("GET", f"/{n}", headers=headers)).status == 200


@pytest.mark.parametrize("capacity", [0, 256])
def test_rfc9204_3_2_3_the_encoder_never_exceeds_the_servers_table_capacity(
    tls_material: TLSMaterial, capacity: int
) -> None:
    # The server never acknowledges anything and allows no blocked stream: no entry ever
    # becomes evictable, and no field section may refer to one.
    preface = frame(
        SETTINGS, settings_payload({QPACK_MAX_TABLE_CAPACITY: capacity, QPACK_BLOCKED_STREAMS: 0})
    )
    with (
        run_raw_h3(tls_material.server, preface=preface) as server,
        connect_client(server, tls_material) as conn,
    ):
        _requests_with_varied_fields(conn, 20)
        connection = server.connection()
        encoder = connection.client_stream_of_type(ENCODER_STREAM)
        requests = [sid for sid in connection.ended if sid % 4 == 0]
        sections = [
            payload
            for sid in requests
            for kind, payload in connection.request_frames(sid)
            if kind == HEADERS
        ]
    if capacity == 0:
        assert encoder == b""  # no instruction at all on the encoder stream
    decoder = pylsqpack.Decoder(capacity, 0)
    decoder.feed_encoder(encoder)  # an independent decoder of that capacity accepts them all
    for stream_id, section in zip(requests, sections, strict=True):
        assert section[0] == 0  # Required Insert Count 0: nothing that could block
        _, headers = decoder.feed_header(stream_id, section)
        assert (b"x-repeated", b"same value") in headers


def test_rfc9204_2_1_2_with_blocked_streams_allowed_every_section_decodes(
    tls_material: TLSMaterial,
) -> None:
    preface = frame(
        SETTINGS, settings_payload({QPACK_MAX_TABLE_CAPACITY: 4096, QPACK_BLOCKED_STREAMS: 16})
    )
    decoder = pylsqpack.Decoder(4096, 16)
    decoded: list[list[tuple[bytes, bytes]]] = []
    fed = [0]  # how much of the client's encoder stream the decoder has had
    acks: list[int] = []

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if not ended:
            return
        # Decode as a server would, acknowledging on its decoder stream, so that the
        # encoder may refer to the entries it inserted.
        instructions = connection.client_stream_of_type(ENCODER_STREAM)
        decoder.feed_encoder(instructions[fed[0] :])
        fed[0] = len(instructions)
        (section,) = [p for kind, p in connection.request_frames(stream_id) if kind == HEADERS]
        ack, headers = decoder.feed_header(stream_id, section)
        decoded.append(list(headers))
        if ack and not acks:
            acks.append(connection.open_uni(varint(DECODER_STREAM) + ack))
        elif ack:
            connection.send(acks[0], ack)
        connection.respond(stream_id)

    with (
        run_raw_h3(tls_material.server, script, preface=preface) as server,
        connect_client(server, tls_material) as conn,
    ):
        _requests_with_varied_fields(conn, 20)
        connection = server.connection()
        sections = [
            p
            for sid in connection.ended
            if sid % 4 == 0
            for k, p in connection.request_frames(sid)
            if k == HEADERS
        ]
    assert len(decoded) == 20
    assert all((b"x-repeated", b"same value") in headers for headers in decoded)
    assert any(section[0] != 0 for section in sections)  # the dynamic table was used


# -- 2.2: the decoder ---------------------------------------------------------------------------


def test_rfc9204_2_2_1_a_blocked_section_is_decoded_once_its_entries_arrive(
    tls_material: TLSMaterial,
) -> None:
    section = section_prefix(_ric(1)) + indexed_static(STATUS_200) + indexed_dynamic(0)
    instructions = set_capacity(4096) + insert_literal(b"x-late", b"1")
    with (
        run_raw_h3(tls_material.server, _answer(instructions, section, first="section")) as server,
        connect_client(server, tls_material) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.headers[b"x-late"] == [b"1"]
        connection = server.connection()
        # 2.2.2.1: a section that used the dynamic table is acknowledged (Section
        # Acknowledgment of stream 0) on the client's decoder stream.
        acknowledgment = prefixed(0, 7, 0x80)
        assert server.wait_for(
            lambda: any(
                data[:1] == varint(DECODER_STREAM) and acknowledgment in data[1:]
                for data in connection.client_uni_streams().values()
            )
        )


def test_rfc9204_2_1_2_more_blocked_streams_than_allowed_is_an_error(
    tls_material: TLSMaterial,
) -> None:
    # hyper's decoder allows 100 blocked streams; 101 responses refer to an entry that never
    # comes.
    blocked = section_prefix(_ric(1)) + indexed_static(STATUS_200) + indexed_dynamic(0)
    capacity_sent: list[int] = []

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if ended:
            if not capacity_sent:
                capacity_sent.append(
                    connection.open_uni(varint(ENCODER_STREAM) + set_capacity(4096))
                )
            connection.send(stream_id, frame(HEADERS, blocked), end=True)

    with (
        run_raw_h3(tls_material.server, script) as server,
        connect_client(server, tls_material) as conn,
    ):
        ids = [conn.request("GET", "/") for _ in range(101)]
        with pytest.raises(QPACKError) as caught:
            for request in ids:
                conn.get_response(request)
        assert caught.value.error_code == E.QPACK_DECOMPRESSION_FAILED
        assert server.closed_with() == E.QPACK_DECOMPRESSION_FAILED


@pytest.mark.parametrize(
    ("script", "code"),
    [
        pytest.param(
            _answer(
                set_capacity(4096) + insert_literal(b"x-a", b"1") + insert_literal(b"x-b", b"2"),
                section_prefix(_ric(1)) + indexed_static(STATUS_200) + indexed_post_base(0),
            ),
            E.QPACK_DECOMPRESSION_FAILED,
            id="reference-at-or-over-the-required-insert-count",
        ),
        pytest.param(
            _answer(
                EVICTING,
                section_prefix(_ric(2)) + indexed_static(STATUS_200) + indexed_dynamic(1),
            ),
            E.QPACK_DECOMPRESSION_FAILED,
            id="reference-to-an-evicted-entry",
        ),
        pytest.param(
            _answer(EVICTING + duplicate(1)),
            E.QPACK_ENCODER_STREAM_ERROR,
            id="encoder-instruction-referring-to-an-evicted-entry",
        ),
        pytest.param(
            _answer(section=section_prefix(0) + indexed_static(99)),
            E.QPACK_DECOMPRESSION_FAILED,
            id="static-index-out-of-range",
        ),
        pytest.param(
            _answer(insert_static_name(99, b"v")),
            E.QPACK_ENCODER_STREAM_ERROR,
            id="static-index-out-of-range-on-the-encoder-stream",
        ),
        pytest.param(
            _answer(set_capacity(64) + insert_literal(b"n", b"v" * 100)),
            E.QPACK_ENCODER_STREAM_ERROR,
            id="entry-larger-than-the-capacity",
        ),
        pytest.param(
            _answer(set_capacity(CLIENT_CAPACITY + 1)),
            E.QPACK_ENCODER_STREAM_ERROR,
            id="capacity-over-the-clients-maximum",
        ),
        pytest.param(
            _answer(section=section_prefix(2 * MAX_ENTRIES + 1) + indexed_static(STATUS_200)),
            E.QPACK_DECOMPRESSION_FAILED,
            id="impossible-encoded-insert-count",
        ),
        pytest.param(
            _answer(
                set_capacity(4096) + insert_literal(b"x-a", b"1"),
                section_prefix(_ric(1), 1, sign=True) + indexed_static(STATUS_200),
            ),
            E.QPACK_DECOMPRESSION_FAILED,
            id="negative-base",
        ),
        pytest.param(
            _decoder_stream(b"\x00"), E.QPACK_DECODER_STREAM_ERROR, id="increment-of-zero"
        ),
        pytest.param(
            _decoder_stream(prefixed(2**61, 6, 0x00)),
            E.QPACK_DECODER_STREAM_ERROR,
            id="increment-beyond-what-was-sent",
        ),
        pytest.param(
            _decoder_stream(prefixed(0, 7, 0x80)),
            E.QPACK_DECODER_STREAM_ERROR,
            id="acknowledgment-of-nothing",
        ),
    ],
)
def test_rfc9204_6_qpack_errors_end_the_connection_with_their_code(
    tls_material: TLSMaterial, script: Script, code: int
) -> None:
    _fails_with(tls_material, script, code)


def test_rfc9204_3_2_duplicate_entries_are_not_an_error(tls_material: TLSMaterial) -> None:
    instructions = set_capacity(CLIENT_CAPACITY) + insert_literal(b"x-dup", b"a") * 2
    section = (
        section_prefix(_ric(2))
        + indexed_static(STATUS_200)
        + indexed_dynamic(0)
        + indexed_dynamic(1)
    )
    with (
        run_raw_h3(tls_material.server, _answer(instructions, section)) as server,
        connect_client(server, tls_material) as conn,
    ):
        response = conn.get_response(conn.request("GET", "/"))
        assert response.headers[b"x-dup"] == [b"a", b"a"]
        assert server.connection().terminated is None


def test_rfc9204_7_4_a_a_header_block_over_the_decoders_limit_fails_its_stream(
    tls_material: TLSMaterial,
) -> None:
    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if ended and stream_id == 0:  # far over the 256 KiB hyper's decoder takes
            connection.respond(stream_id, fields=[(b"x-big", b"v" * (1024 * 1024 + 1))])
        elif ended:
            connection.respond(stream_id)

    with (
        run_raw_h3(tls_material.server, script) as server,
        connect_client(server, tls_material) as conn,
    ):
        with pytest.raises(FieldSectionTooLarge):
            conn.get_response(conn.request("GET", "/")).read()
        assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        connection = server.connection()
        assert server.wait_for(lambda: 0 in connection.stops)
        assert connection.stops[0] == E.QPACK_DECOMPRESSION_FAILED
        assert connection.terminated is None


# -- 4.2: encoder and decoder streams -----------------------------------------------------------


def test_rfc9204_4_2_the_server_may_open_its_qpack_streams_unused(
    tls_material: TLSMaterial,
) -> None:
    def opened(connection: RawConnection) -> None:
        connection.open_uni(varint(ENCODER_STREAM))
        connection.open_uni(varint(DECODER_STREAM))

    with (
        run_raw_h3(tls_material.server, on_open=opened) as server,
        connect_client(server, tls_material) as conn,
    ):
        assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        assert conn.get_response(conn.request("GET", "/")).read() == b"ok"
        assert server.connection().terminated is None


@pytest.mark.parametrize("kind", [ENCODER_STREAM, DECODER_STREAM], ids=["encoder", "decoder"])
@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_rfc9204_4_2_a_qpack_stream_that_ends_is_a_closed_critical_stream(
    tls_material: TLSMaterial, kind: int, reset: bool
) -> None:
    streams: dict[int, int] = {}

    def opened(connection: RawConnection) -> None:
        streams[ENCODER_STREAM] = connection.open_uni(varint(ENCODER_STREAM))
        streams[DECODER_STREAM] = connection.open_uni(varint(DECODER_STREAM))

    def script(connection: RawConnection, stream_id: int, ended: bool) -> None:
        if ended and reset:
            connection.quic.reset_stream(streams[kind], E.H3_NO_ERROR)
        elif ended:
            connection.send(streams[kind], b"", end=True)

    with (
        run_raw_h3(tls_material.server, script, on_open=opened) as server,
        connect_client(server, tls_material) as conn,
    ):
        with pytest.raises(ProtocolError) as caught:
            conn.get_response(conn.request("GET", "/")).read()
        assert caught.value.error_code == E.H3_CLOSED_CRITICAL_STREAM
        assert server.closed_with() == E.H3_CLOSED_CRITICAL_STREAM
