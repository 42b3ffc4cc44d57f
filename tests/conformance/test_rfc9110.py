"""RFC 9110 (HTTP semantics): the requirements that bind a client, over HTTP/1.1 and HTTP/2.

Each test drives hyper against a scripted server: for HTTP/1.1 a raw socket answering from
a route table (``tests/support/http11.py``), for HTTP/2 a :class:`RawH2Peer` sending
byte-exact frames (``tests/support/rawframes.py``). Where a rule binds both protocols the
test is parametrized over ``h11`` and ``h2``. The rows of ``docs/conformance/rfc9110.csv``
name these tests; a test marked ``xfail(strict=True)`` documents a gap in hyper.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hyper import HTTP11Connection, HTTP20Connection
from hyper.common.exceptions import (
    CertificateError,
    HyperError,
    IncompleteRead,
    InvalidRequest,
    InvalidResponse,
)
from hyper.common.sockets import open_tunnel
from hyper.http20.errors import ErrorCodes as Codes
from hyper.http20.exceptions import ProtocolError
from hyper.tls import init_context
from tests.support.certs import CertPaths, TLSMaterial
from tests.support.h11_peer import recv_head
from tests.support.helpers import quickly
from tests.support.hostile import HEADERS, ClientRequest, PeerGone, RawH2Peer
from tests.support.http11 import HTTP11Responder, RawReply, Reply, Request, http11_responder
from tests.support.rawframes import (
    INITIAL_WINDOW_SIZE,
    RawFactory,
    data_frame,
    headers_frames,
    hpack_literal,
    scripted,
)

PROTOCOLS = ["h11", "h2"]
#: Read timeout of the client: nothing here should make hyper wait that long.
TIMEOUT = 5
OK = b"HTTP/1.1 200 OK\r\n"

Answer = Callable[[RawH2Peer, int, int], None]


# -- HTTP/1.1 side ------------------------------------------------------------------------------


@contextlib.contextmanager
def h11_server(
    factory: RawFactory, routes: dict[str, Any], **kwargs: Any
) -> Iterator[tuple[Any, HTTP11Responder, Any]]:
    """An HTTP/1.1 route-table server and an HTTP11Connection to it."""
    responder = http11_responder(routes, **kwargs)
    with (
        factory(responder) as server,
        HTTP11Connection(*server.address, timeout=TIMEOUT) as conn,
    ):
        yield conn, responder, server


def h11_get(conn: Any, path: str, method: str = "GET", **kwargs: Any) -> Any:
    conn.request(method, path, **kwargs)
    return conn.get_response()


# -- HTTP/2 side --------------------------------------------------------------------------------


def status_field(status: bytes) -> bytes:
    """``:status`` as a literal field without indexing (static name index 8)."""
    return b"\x08" + bytes([len(status)]) + status


def block(status: bytes | None, *fields: tuple[bytes, bytes]) -> bytes:
    """A header block of literals that leave the HPACK tables alone."""
    out = status_field(status) if status is not None else b""
    return out + b"".join(hpack_literal(name, value) for name, value in fields)


def serving(answer: Answer) -> Callable[[RawH2Peer, int], None]:
    """A RawH2Peer script answering every complete request with ``answer(peer, stream, n)``
    (``n`` counts the requests of the connection) until the client goes away."""

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake()
        n = 0
        while True:
            try:
                stream_id = peer.next_request()
            except (PeerGone, TimeoutError):
                return
            request = peer.requests[stream_id]
            if not peer.wait_for(_ended(request)):
                return
            answer(peer, stream_id, n)
            n += 1

    return script


def _ended(request: ClientRequest) -> Callable[[], bool]:
    return lambda: request.ended


def plain_ok(peer: RawH2Peer, stream_id: int, _: int) -> None:
    """A normal response: the request's path as its body."""
    request = peer.requests[stream_id]
    path = request.path.lstrip(b"/")
    size = str(len(path)).encode()
    if (b":method", b"HEAD") in request.headers:
        peer.send(headers_frames(stream_id, block(b"200", (b"content-length", size)), end=True))
        return
    peer.send(
        headers_frames(stream_id, block(b"200", (b"content-length", size)))
        + data_frame(stream_id, path, end=True)
    )


def by_path(answers: dict[bytes, Answer], default: Answer = plain_ok) -> Answer:
    """Dispatch on the request's ``:path``."""

    def answer(peer: RawH2Peer, stream_id: int, n: int) -> None:
        answers.get(peer.requests[stream_id].path, default)(peer, stream_id, n)

    return answer


def raw(frames: Callable[[int], bytes]) -> Answer:
    """An answer sending ``frames(stream_id)`` verbatim."""
    return lambda peer, stream_id, _: peer.send(frames(stream_id))


@contextlib.contextmanager
def h2_server(
    factory: RawFactory, answer: Answer, **kwargs: Any
) -> Iterator[tuple[Any, list[RawH2Peer], Any]]:
    """A scripted HTTP/2 server and an HTTP20Connection (plaintext, prior knowledge)."""
    with scripted(factory, serving(answer), read_timeout=TIMEOUT, **kwargs) as running:
        yield running


def h2_get(conn: Any, path: str, method: str = "GET", **kwargs: Any) -> Any:
    return conn.get_response(conn.request(method, path, **kwargs))


def _h2_malformed_then_ok(
    factory: RawFactory, path: str, head: bytes, body: bytes | None = None
) -> None:
    """``path`` answered with the header block ``head`` and, if given, ``body`` (then
    END_STREAM) is a malformed response: getting it (and reading ``body``) fails with a stream
    error of type PROTOCOL_ERROR, only that stream is reset, and a request for "/ok" on the
    same connection still works."""

    def frames(stream_id: int) -> bytes:
        if body is None:
            return headers_frames(stream_id, head, end=True)
        return headers_frames(stream_id, head) + data_frame(stream_id, body, end=True)

    answer = by_path({path.encode(): raw(frames)})
    with h2_server(factory, answer) as (conn, peers, server):
        with quickly(3), pytest.raises(ProtocolError) as caught:
            response = h2_get(conn, path)
            if body is not None:
                response.read()
        assert caught.value.error_code == Codes.PROTOCOL_ERROR
        assert h2_get(conn, "/ok").read() == b"ok"
        assert server.connection_count == 1
    assert peers[0].rst_codes == {1: Codes.PROTOCOL_ERROR}


def request_headers(peer: RawH2Peer) -> list[list[tuple[bytes, bytes]]]:
    """The header lists of the requests the client sent, in stream order."""
    return [peer.requests[sid].headers for sid in sorted(peer.requests)]


def field(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for n, value in headers if n.lower() == name]


# -- 2.2 / 5.5: field values --------------------------------------------------------------------


@pytest.mark.parametrize("char", [b"\r", b"\n", b"\0"], ids=["cr", "lf", "nul"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_5_5_request_field_value_with_cr_lf_or_nul_is_refused_before_the_wire(
    scripted_raw_server: RawFactory, protocol: str, char: bytes
) -> None:
    """A caller's field value holding CR, LF or NUL is never sent (it would be an invalid
    protocol element, section 2.2, and a header injection): InvalidRequest, nothing on the
    wire, and the connection still works."""
    value = b"a" + char + b"Injected: yes"
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/ok": b"ok"}) as (conn, responder, _):
            with pytest.raises(InvalidRequest):
                conn.request("GET", "/bad", headers={"X-Value": value})
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.path for r in responder.requests] == ["/ok"]
        assert all(r.header("injected") is None for r in responder.requests)
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            with pytest.raises(InvalidRequest):
                conn.request("GET", "/bad", headers={"X-Value": value})
            assert h2_get(conn, "/ok").read() == b"ok"
        assert [r.path for r in peers[0].requests.values()] == [b"/ok"]


@pytest.mark.parametrize(
    ("protocol", "char"),
    [("h11", b"\r"), ("h11", b"\0"), ("h2", b"\r"), ("h2", b"\n"), ("h2", b"\0")],
    ids=["h11-cr", "h11-nul", "h2-cr", "h2-lf", "h2-nul"],
)
def test_rfc9110_5_5_response_field_value_with_cr_lf_or_nul_is_rejected(
    scripted_raw_server: RawFactory, protocol: str, char: bytes
) -> None:
    """A response field value holding CR, LF or NUL: hyper rejects the message (it never
    hands the value to the caller), then the next request works. In HTTP/1.1 a bare LF ends
    the field line, so only CR and NUL can sit inside a value there."""
    if protocol == "h11":
        bad = RawReply(OK + b"X-Value: a" + char + b"b\r\nContent-Length: 0\r\n\r\n", close=False)
        with h11_server(scripted_raw_server, {"/bad": bad, "/ok": b"ok"}) as (conn, _, _srv):
            with quickly(3), pytest.raises(InvalidResponse):
                h11_get(conn, "/bad")
            assert h11_get(conn, "/ok").read() == b"ok"
    else:
        bad_block = block(b"200", (b"x-value", b"a" + char + b"b"))
        _h2_malformed_then_ok(scripted_raw_server, "/bad", bad_block)


# -- 4.2.2 / 4.2.4: https and userinfo ----------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_4_2_2_https_request_is_never_sent_over_a_plaintext_connection(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """A request for an https resource goes only over a secured connection: asked to send
    one on a plaintext connection, the client must refuse before anything is sent."""
    if protocol == "h11":
        with (
            h11_server(scripted_raw_server, {"/ok": b"ok"}) as (conn, responder, srv),
            pytest.raises(HyperError),
        ):
            conn.request("GET", f"https://{srv.host}:{srv.port}/secret")
            conn.get_response().read()
        assert responder.requests == []
    else:
        with (
            h2_server(scripted_raw_server, plain_ok) as (conn, peers, srv),
            pytest.raises(HyperError),
        ):
            h2_get(conn, f"https://{srv.host}:{srv.port}/secret").read()
        assert all(not peer.requests for peer in peers)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_4_2_4_userinfo_of_an_absolute_url_never_goes_on_the_wire(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """An absolute URL with ``user:secret@``: neither the target, Host nor :authority carry
    the userinfo."""
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, srv):
            url = f"http://user:secret@{srv.host}:{srv.port}/x"
            assert h11_get(conn, url).read() == b"x"
        (request,) = responder.requests
        assert b"secret" not in request.raw_head and b"user" not in request.raw_head.lower()
        assert request.header("host") == f"{srv.host}:{srv.port}".encode()
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, srv):
            url = f"http://user:secret@{srv.host}:{srv.port}/x"
            assert h2_get(conn, url).read() == b"x"
        (headers,) = request_headers(peers[0])
        assert all(b"secret" not in value and b"user" not in value for _, value in headers)
        assert field(headers, b":authority") == [f"{srv.host}:{srv.port}".encode()]


# -- 4.3.4: server identity ---------------------------------------------------------------------


def _issue_raw(
    tls_material: TLSMaterial,
    directory: Path,
    common_name: str,
    alt_names: list[x509.GeneralName],
) -> CertPaths:
    """A leaf from the trusted test CA with exactly this subject CN and these
    subjectAltName entries (none: no subjectAltName extension at all). trustme always adds
    the extension, so the certificate is built with cryptography and the CA's key."""
    ca = tls_material.ca
    ca_cert: x509.Certificate = ca._certificate  # trustme has no public API for these
    ca_key: Any = ca._private_key
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths = CertPaths(
        directory / "leaf.pem", directory / "leaf.key", directory / "leaf.combined.pem", ()
    )
    paths.cert_path.write_bytes(cert_pem)
    paths.key_path.write_bytes(key_pem)
    paths.combined_path.write_bytes(key_pem + cert_pem)
    return paths


def _drain(sock: socket.socket, received: bytearray) -> None:
    """Server handler: keep whatever the client sends until it goes away."""
    sock.settimeout(TIMEOUT)
    with contextlib.suppress(OSError):
        while data := sock.recv(65536):
            received += data


def _assert_certificate_refused(
    scripted_raw_server: RawFactory,
    tls_material: TLSMaterial,
    cert: CertPaths,
    protocol: str,
    host: str,
) -> None:
    """Connecting to ``host`` with ``cert`` fails with CertificateError; nothing is sent."""
    received = bytearray()
    context = init_context(cert_path=str(tls_material.ca_cert_path))
    cls: Any = HTTP11Connection if protocol == "h11" else HTTP20Connection
    with scripted_raw_server(
        lambda sock: _drain(sock, received), tls=True, cert=cert, alpn=("h2", "http/1.1")
    ) as server:
        conn = cls(host, server.port, secure=True, ssl_context=context, timeout=TIMEOUT)
        try:
            with quickly(TIMEOUT), pytest.raises(CertificateError):
                conn.request("GET", "/")
        finally:
            conn.close()
    assert received == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_4_3_4_common_name_is_never_used_as_the_reference_identity(
    scripted_raw_server: RawFactory,
    tls_material: TLSMaterial,
    tmp_path: Path,
    protocol: str,
) -> None:
    """A certificate from a trusted CA whose only name is its subject CN ``localhost`` (no
    subjectAltName): a client must not use a CN-ID, so it is not valid for localhost."""
    cert = _issue_raw(tls_material, tmp_path, "localhost", [])
    _assert_certificate_refused(scripted_raw_server, tls_material, cert, protocol, "localhost")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_4_3_4_ip_literal_is_matched_against_ip_addresses_only(
    scripted_raw_server: RawFactory,
    tls_material: TLSMaterial,
    tmp_path: Path,
    protocol: str,
) -> None:
    """For the IP literal 127.0.0.1 the reference identity is an IP-ID: a certificate whose
    subjectAltName has ``127.0.0.1`` only as a DNS name does not match it."""
    cert = _issue_raw(tls_material, tmp_path, "hyper test", [x509.DNSName("127.0.0.1")])
    _assert_certificate_refused(scripted_raw_server, tls_material, cert, protocol, "127.0.0.1")


# -- 5.1 / 5.3 / 5.6.1.1: fields ----------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_5_1_unrecognized_header_and_trailer_fields_are_ignored(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Unknown header and trailer fields change nothing: the response reads normally, the
    fields are merely reported, and the connection is reused."""
    if protocol == "h11":
        odd = Reply(
            200,
            headers=[(b"X-Unknown-Thing", b"1"), (b"Frobnicate", b"yes")],
            body=[b"body"],
            chunked=True,
            trailers=[(b"X-Unknown-Trailer", b"2")],
        )
        with h11_server(scripted_raw_server, {"/odd": odd, "/ok": b"ok"}) as (conn, resp, _):
            response = h11_get(conn, "/odd")
            assert response.read() == b"body"
            assert response.headers[b"frobnicate"] == [b"yes"]
            assert response.trailers[b"x-unknown-trailer"] == [b"2"]
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.connection_id for r in resp.requests] == [0, 0]
    else:
        head = block(b"200", (b"x-unknown-thing", b"1"), (b"frobnicate", b"yes"))
        tail = block(None, (b"x-unknown-trailer", b"2"))
        answer = by_path(
            {
                b"/odd": raw(
                    lambda sid: (
                        headers_frames(sid, head)
                        + data_frame(sid, b"body")
                        + headers_frames(sid, tail, end=True)
                    )
                )
            }
        )
        with h2_server(scripted_raw_server, answer) as (conn, peers, server):
            response = h2_get(conn, "/odd")
            assert response.read() == b"body"
            assert response.headers[b"frobnicate"] == [b"yes"]
            assert response.trailers[b"x-unknown-trailer"] == [b"2"]
            assert h2_get(conn, "/ok").read() == b"ok"
            assert server.connection_count == 1
        assert not peers[0].rst_codes


#: The fields hyper adds to a request by itself.
OWN_FIELDS = (b"host", b":authority", b"accept-encoding", b"content-length")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_5_3_hyper_never_repeats_a_field_it_adds(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Fields hyper adds (Host or :authority, Accept-Encoding, Content-Length) appear once
    each, also when the caller set some of them already; and hyper's own list-based values
    have no empty elements (section 5.6.1.1)."""
    calls: list[dict[str, Any]] = [
        {},
        {"body": b"data"},
        {"body": b"data", "headers": {"Content-Length": "4", "Accept-Encoding": "gzip"}},
        {"headers": {"Host": "example.test"}},
    ]
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
            for kwargs in calls:
                assert h11_get(conn, "/x", "POST", **kwargs).read() == b"x"
        lists = [[(n.lower(), v) for n, v in r.headers] for r in responder.requests]
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            for kwargs in calls:
                assert h2_get(conn, "/x", "POST", **kwargs).read() == b"x"
        lists = request_headers(peers[0])
    assert len(lists) == len(calls)
    for headers in lists:
        for name in OWN_FIELDS:
            assert len(field(headers, name)) <= 1, (name, headers)
        for value in field(headers, b"accept-encoding"):
            assert all(element.strip() for element in value.split(b",")), value


# -- 5.6.3: bad whitespace ----------------------------------------------------------------------


def test_rfc9110_5_6_3_bad_whitespace_is_removed_before_interpreting(
    scripted_raw_server: RawFactory,
) -> None:
    """BWS around ``;`` and ``=`` in chunk extensions and around a Content-Length value is
    parsed and dropped (HTTP/1.1 only: HTTP/2 has neither)."""
    chunked = (
        OK + b'Transfer-Encoding: chunked\r\n\r\n3 ;\tname = value\r\nabc\r\n0 ; x = "y"\r\n\r\n'
    )
    length = OK + b"Content-Length: \t 2 \t\r\n\r\nhi"
    routes = {"/chunked": RawReply(chunked, close=False), "/length": RawReply(length, close=False)}
    with h11_server(scripted_raw_server, routes) as (conn, responder, _):
        assert h11_get(conn, "/chunked").read() == b"abc"
        assert h11_get(conn, "/length").read() == b"hi"
    assert [r.connection_id for r in responder.requests] == [0, 0]


# -- 6 / 9.3.2 / 15.3.5 / 15.4.5: responses without content -------------------------------------


def _h2_head_only(status: bytes, length: bytes) -> Answer:
    """Answer a request with a header block only (END_STREAM on HEADERS), whatever it was."""

    def answer(peer: RawH2Peer, stream_id: int, _: int) -> None:
        if peer.requests[stream_id].path == b"/next":
            plain_ok(peer, stream_id, 0)
            return
        peer.send(headers_frames(stream_id, block(status, (b"content-length", length)), end=True))

    return answer


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_9_3_2_head_response_has_no_content_whatever_its_content_length(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """A response to HEAD announcing ``Content-Length: 100`` ends with its header section:
    hyper remembers the request was HEAD (section 6), reads no body, and the next response
    on the same connection is read correctly."""
    if protocol == "h11":
        head = RawReply(OK + b"Content-Length: 100\r\n\r\n", close=False)
        routes = {"HEAD /h": head, "/next": b"next"}
        with h11_server(scripted_raw_server, routes) as (conn, responder, _), quickly(3):
            response = h11_get(conn, "/h", "HEAD")
            assert response.headers[b"content-length"] == [b"100"]
            assert response.read() == b""
            assert h11_get(conn, "/next").read() == b"next"
        assert [r.connection_id for r in responder.requests] == [0, 0]
    else:
        with h2_server(scripted_raw_server, _h2_head_only(b"200", b"100")) as running:
            conn, peers, server = running
            with quickly(3):
                response = h2_get(conn, "/h", "HEAD")
                assert response.headers[b"content-length"] == [b"100"]
                assert response.read() == b""
                assert h2_get(conn, "/next").read() == b"next"
            assert server.connection_count == 1
        assert not peers[0].rst_codes


@pytest.mark.parametrize("status", [b"204", b"304"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_15_3_5_204_and_304_responses_end_with_their_header_section(
    scripted_raw_server: RawFactory, protocol: str, status: bytes
) -> None:
    """A 204 or a 304 (to a conditional GET) with ``Content-Length: 7`` has no content and
    no trailers: the body is empty and the next response on the connection is read right."""
    headers = {"If-None-Match": '"v1"'}
    if protocol == "h11":
        line = b"HTTP/1.1 " + status + b" Whatever\r\nContent-Length: 7\r\n\r\n"
        routes = {"/empty": RawReply(line, close=False), "/next": b"next"}
        with h11_server(scripted_raw_server, routes) as (conn, responder, _), quickly(3):
            response = h11_get(conn, "/empty", headers=headers)
            assert response.status == int(status)
            assert response.read() == b""
            assert response.trailers is None
            assert h11_get(conn, "/next").read() == b"next"
        assert [r.connection_id for r in responder.requests] == [0, 0]
    else:
        with h2_server(scripted_raw_server, _h2_head_only(status, b"7")) as running:
            conn, peers, server = running
            with quickly(3):
                response = h2_get(conn, "/empty", headers=headers)
                assert response.status == int(status)
                assert response.read() == b""
                assert response.trailers is None
                assert h2_get(conn, "/next").read() == b"next"
            assert server.connection_count == 1
        assert not peers[0].rst_codes


# -- 6.2: versions ------------------------------------------------------------------------------


def test_rfc9110_6_2_request_version_is_http_1_1(scripted_raw_server: RawFactory) -> None:
    """HTTP11Connection sends HTTP/1.1, the highest HTTP/1 version it conforms to."""
    with h11_server(scripted_raw_server, {"/": b"ok"}) as (conn, responder, _):
        assert h11_get(conn, "/").read() == b"ok"
    (request,) = responder.requests
    assert request.version == "HTTP/1.1"
    assert request.raw_head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1")


def test_rfc9110_6_2_higher_minor_version_is_processed_as_http_1_1(
    scripted_raw_server: RawFactory,
) -> None:
    """A response in HTTP/1.2 is processed as if it were HTTP/1.1 (same major version)."""
    reply = RawReply(b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", close=False)
    with h11_server(scripted_raw_server, {"/": reply}) as (conn, _, _srv):
        response = h11_get(conn, "/")
        assert (response.status, response.read()) == (200, b"ok")


# -- 6.5.1: trailers ----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_6_5_1_trailers_are_kept_apart_from_the_header_section(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Trailer fields, including a Content-Length (a framing field that may not be a
    trailer), are never merged into the headers and never change the framing: the headers
    stay as sent, the body is whole and the connection goes on."""
    trailers = [(b"x-checksum", b"abc123"), (b"content-length", b"999")]
    if protocol == "h11":
        reply = Reply(
            200,
            headers=[(b"Trailer", b"x-checksum")],
            body=[b"hel", b"lo"],
            chunked=True,
            trailers=trailers,
        )
        with h11_server(scripted_raw_server, {"/t": reply, "/ok": b"ok"}) as (conn, resp, _):
            response = h11_get(conn, "/t")
            assert response.read() == b"hello"
            headers = list(response.headers.iter_raw())
            got = list(response.trailers.iter_raw())
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.connection_id for r in resp.requests] == [0, 0]
        assert [(n.lower(), v) for n, v in headers] == [
            (b"trailer", b"x-checksum"),
            (b"transfer-encoding", b"chunked"),
        ]
    else:
        head = block(b"200", (b"trailer", b"x-checksum"))
        answer = by_path(
            {
                b"/t": raw(
                    lambda sid: (
                        headers_frames(sid, head)
                        + data_frame(sid, b"hel")
                        + data_frame(sid, b"lo")
                        + headers_frames(sid, block(None, *trailers), end=True)
                    )
                )
            }
        )
        with h2_server(scripted_raw_server, answer) as (conn, peers, server):
            response = h2_get(conn, "/t")
            assert response.read() == b"hello"
            headers = list(response.headers.iter_raw())
            got = list(response.trailers.iter_raw())
            assert h2_get(conn, "/ok").read() == b"ok"
            assert server.connection_count == 1
        assert not peers[0].rst_codes
        assert headers == [(b"trailer", b"x-checksum")]
    assert [(n.lower(), v) for n, v in got] == trailers


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_6_5_1_hyper_sends_no_request_trailers(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """hyper generates no trailer fields: a streamed upload ends with an empty trailer
    section (HTTP/1.1) or with the END_STREAM of its last DATA frame (HTTP/2)."""
    body = iter([b"ab", b"cd"])
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/up": b"ok"}) as (conn, responder, _):
            assert h11_get(conn, "/up", "POST", body=body).read() == b"ok"
        (request,) = responder.requests
        assert request.chunked and request.body == b"abcd"
        assert request.trailers is None
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            assert h2_get(conn, "/up", "POST", body=body).read() == b"up"
        assert bytes(peers[0].requests[1].body) == b"abcd"
        assert peers[0].counts[HEADERS] == 1


# -- 7.2: Host and :authority -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_7_2_authority_is_sent_in_host_or_authority(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """HTTP/1.1 requests carry one Host with host:port; HTTP/2 requests carry
    :authority and no Host field, also when the caller gave a Host (it becomes the
    :authority)."""
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, srv):
            assert h11_get(conn, "/x").read() == b"x"
            assert h11_get(conn, "/x", headers={"X-A": "1"}).read() == b"x"
        for request in responder.requests:
            assert request.header_values("host") == [f"{srv.host}:{srv.port}".encode()]
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, srv):
            assert h2_get(conn, "/x").read() == b"x"
            assert h2_get(conn, "/x", headers={"Host": "example.test"}).read() == b"x"
        first, second = request_headers(peers[0])
        assert field(first, b":authority") == [f"{srv.host}:{srv.port}".encode()]
        assert field(second, b":authority") == [b"example.test"]
        assert field(first, b"host") == field(second, b"host") == []


def test_rfc9110_7_2_host_is_the_first_header_field(scripted_raw_server: RawFactory) -> None:
    """HTTP/1.1: the Host hyper adds comes right after the request line, before the
    caller's fields, for requests with and without a body."""
    calls: list[dict[str, Any]] = [
        {},
        {"headers": [("X-First", "1"), ("Accept", "*/*")]},
        {"headers": {"X-First": "1"}, "body": b"data"},
    ]
    with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
        for kwargs in calls:
            assert h11_get(conn, "/x", "POST", **kwargs).read() == b"x"
    assert [r.headers[0][0].lower() for r in responder.requests] == [b"host"] * len(calls)


def test_rfc9110_7_2_caller_supplied_host_is_sent_first(scripted_raw_server: RawFactory) -> None:
    """HTTP/1.1: a Host given by the caller after other fields still goes out first."""
    headers = [("X-First", "1"), ("Host", "example.test")]
    with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
        assert h11_get(conn, "/x", headers=headers).read() == b"x"
    (request,) = responder.requests
    assert request.headers[0] == (b"Host", b"example.test")


# -- 7.5: a response while the request is still going out --------------------------------------


def test_rfc9110_7_5_a_stalled_upload_ends_cleanly_after_a_complete_early_response(
    scripted_raw_server: RawFactory,
) -> None:
    """HTTP/2: the upload is held back by a 1000-byte window and the server sends a complete
    response (END_STREAM, no RST_STREAM) instead of opening it. The client does not wait for a
    window the server has no reason to open: it ends its side with RST_STREAM(NO_ERROR)
    (RFC 9113 section 8.1), and the response is delivered whole."""
    upload = b"u" * 20_000
    outcome: dict[str, Any] = {}
    recorded = threading.Event()

    def script(peer: RawH2Peer, _: int) -> None:
        peer.handshake({INITIAL_WINDOW_SIZE: 1000})
        first = peer.next_request()
        peer.send(headers_frames(first, block(b"200")) + data_frame(first, b"ok", end=True))
        stream_id = peer.next_request()
        request = peer.requests[stream_id]
        assert peer.wait_for(lambda: len(request.body) >= 1000)
        final = block(b"413", (b"content-length", b"4"))
        peer.send(headers_frames(stream_id, final) + data_frame(stream_id, b"big!", end=True))
        outcome["reset"] = peer.wait_for(lambda: stream_id in peer.rst_codes, timeout=3)
        outcome["codes"] = dict(peer.rst_codes)
        outcome["body"] = len(request.body)
        recorded.set()
        peer.wait_for(peer.eof.is_set, timeout=5)

    with scripted(scripted_raw_server, script, read_timeout=TIMEOUT) as (conn, _, _):
        # The first exchange makes sure the 1000-byte window applies to the upload.
        assert h2_get(conn, "/").read() == b"ok"
        response = h2_get(conn, "/upload", "POST", body=upload)
        assert (response.status, response.read()) == (413, b"big!")
        assert recorded.wait(5)
    assert outcome == {"reset": True, "codes": {3: Codes.NO_ERROR}, "body": 1000}


# -- 7.6.1: Connection --------------------------------------------------------------------------

#: Fields whose names may be connection options: they only concern one connection.
HOP_BY_HOP = {b"close", b"keep-alive", b"upgrade", b"http2-settings", b"te"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_7_6_1_hyper_names_no_end_to_end_field_as_a_connection_option(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """hyper's own requests name no end-to-end field in Connection (HTTP11Connection sends
    no Connection field at all; the upgrade case is in test_abstract_connection.py). Over
    HTTP/2, where Connection is forbidden, a caller's Connection field and the fields it
    names are dropped."""
    hop = {"Connection": "x-hop", "X-Hop": "1", "X-End": "2"}
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
            assert h11_get(conn, "/x").read() == b"x"
            assert h11_get(conn, "/x", "POST", body=b"data").read() == b"x"
        for request in responder.requests:
            assert set(request.tokens("connection")) <= HOP_BY_HOP
            assert request.header("te") is None
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            assert h2_get(conn, "/x").read() == b"x"
            assert h2_get(conn, "/x", headers=hop).read() == b"x"
        for headers in request_headers(peers[0]):
            assert field(headers, b"connection") == []
            assert field(headers, b"x-hop") == []
        assert field(request_headers(peers[0])[1], b"x-end") == [b"2"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_10_1_4_te_is_only_sent_with_the_te_connection_option(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """hyper adds no TE of its own; over HTTP/1.1 no request carries TE without the TE
    connection option, and over HTTP/2 (no Connection field) TE may only be ``trailers``:
    hyper drops any other TE value a caller gives."""
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
            assert h11_get(conn, "/x").read() == b"x"
            assert h11_get(conn, "/x", "POST", body=b"d").read() == b"x"
        for request in responder.requests:
            assert request.header("te") is None or b"te" in request.tokens("connection")
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            assert h2_get(conn, "/x").read() == b"x"
            assert h2_get(conn, "/x", headers={"TE": "gzip"}).read() == b"x"
            assert h2_get(conn, "/x", headers={"TE": "trailers"}).read() == b"x"
        tes = [field(headers, b"te") for headers in request_headers(peers[0])]
        assert tes == [[], [], [b"trailers"]]


# -- 8.6: Content-Length ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol",
    [
        "h11",
        "h2",
    ],
)
def test_rfc9110_8_6_content_length_is_sent_for_methods_that_define_content(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """POST and PUT carry Content-Length, 0 included, and a body of known length carries
    its exact length."""
    calls = [("POST", None), ("PUT", b""), ("POST", b"12345")]
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
            for method, body in calls:
                assert h11_get(conn, "/x", method, body=body).read() == b"x"
        lengths = [r.header_values("content-length") for r in responder.requests]
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            for method, body in calls:
                assert h2_get(conn, "/x", method, body=body).read() == b"x"
        lengths = [field(headers, b"content-length") for headers in request_headers(peers[0])]
    assert lengths == [[b"0"], [b"0"], [b"5"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_no_content_length_and_no_content_for_get_head_and_delete(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """GET, HEAD and DELETE without a body go out with no Content-Length and no content
    (sections 8.6, 9.3.1, 9.3.2): no Transfer-Encoding or body bytes over HTTP/1.1, END_STREAM
    on the HEADERS over HTTP/2."""
    methods = ["GET", "HEAD", "DELETE"]
    if protocol == "h11":
        with h11_server(scripted_raw_server, {"/x": b"x"}) as (conn, responder, _):
            for method in methods:
                h11_get(conn, "/x", method).read()
        for request in responder.requests:
            assert request.header("content-length") is None
            assert request.header("transfer-encoding") is None
            assert request.body == b""
        assert [r.connection_id for r in responder.requests] == [0, 0, 0]
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _):
            for method in methods:
                h2_get(conn, "/x", method).read()
        peer = peers[0]
        for stream_id in sorted(peer.requests):
            assert field(peer.requests[stream_id].headers, b"content-length") == []
            assert peer.requests[stream_id].body == b""
        assert peer.counts[0x0] == 0  # no DATA frame at all


#: 2**40: large, but a real length.
BIG = b"1099511627776"
#: 30 digits: more than any integer type of fixed width holds.
HUGE = b"9" * 30


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_large_content_length_values_are_parsed_without_overflow(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """A Content-Length of 2**40 is taken as it is (the body then ends short: an incomplete
    response, not a wrapped-around length); one of 30 digits is refused as an invalid
    response, never an overflow or a wrong length."""
    if protocol == "h11":
        big = RawReply(OK + b"Content-Length: " + BIG + b"\r\n\r\nhello", close=True)
        huge = RawReply(OK + b"Content-Length: " + HUGE + b"\r\n\r\nhello", close=False)
        routes = {"/big": big, "/huge": huge, "/ok": b"ok"}
        with h11_server(scripted_raw_server, routes) as (conn, _, _srv), quickly(4):
            response = h11_get(conn, "/big")
            assert response.read(5) == b"hello"
            with pytest.raises(IncompleteRead) as caught:
                response.read()
            assert caught.value.expected == int(BIG)
            with pytest.raises(InvalidResponse):
                h11_get(conn, "/huge")
            assert h11_get(conn, "/ok").read() == b"ok"
    else:

        def sized(length: bytes) -> Answer:
            return raw(
                lambda sid: (
                    headers_frames(sid, block(b"200", (b"content-length", length)))
                    + data_frame(sid, b"hello", end=True)
                )
            )

        answer = by_path({b"/big": sized(BIG), b"/huge": sized(HUGE)})
        with h2_server(scripted_raw_server, answer) as (conn, _, server), quickly(4):
            response = h2_get(conn, "/big")
            assert response.headers[b"content-length"] == [BIG]
            with pytest.raises(ProtocolError):
                response.read()
            with pytest.raises(ProtocolError):
                h2_get(conn, "/huge").read()
            assert h2_get(conn, "/ok").read() == b"ok"
            assert server.connection_count == 1


@pytest.mark.parametrize(
    "lengths",
    [[b"5, 5"], [b"5", b"5"]],
    ids=["list", "repeated-field"],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_the_same_length_repeated_is_one_length_or_rejected(
    scripted_raw_server: RawFactory, protocol: str, lengths: list[bytes]
) -> None:
    """``Content-Length: 5, 5``, or the field twice with 5: section 8.6 lets a recipient
    reject the list as invalid or take it as one length of 5, nothing else. HTTP/1.1 takes
    both forms as 5 and reuses the connection; HTTP/2 takes two equal fields as 5 and
    rejects the comma list as malformed (a stream error of type PROTOCOL_ERROR)."""
    rejected = protocol == "h2" and len(lengths) == 1
    if protocol == "h11":
        fields = b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
        reply = RawReply(OK + fields + b"\r\nhello", close=False)
        with h11_server(scripted_raw_server, {"/r": reply, "/ok": b"ok"}) as (conn, resp, _):
            assert h11_get(conn, "/r").read() == b"hello"
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.connection_id for r in resp.requests] == [0, 0]
    else:
        head = block(b"200", *((b"content-length", value) for value in lengths))
        answer = by_path(
            {
                b"/r": raw(
                    lambda sid: headers_frames(sid, head) + data_frame(sid, b"hello", end=True)
                )
            }
        )
        with h2_server(scripted_raw_server, answer) as (conn, peers, server):
            if rejected:
                with pytest.raises(ProtocolError) as caught:
                    h2_get(conn, "/r").read()
                assert caught.value.error_code == Codes.PROTOCOL_ERROR
            else:
                assert h2_get(conn, "/r").read() == b"hello"
            assert h2_get(conn, "/ok").read() == b"ok"
            assert server.connection_count == 1
        assert peers[0].rst_codes == ({1: Codes.PROTOCOL_ERROR} if rejected else {})


BAD_LENGTHS = {
    "conflicting-fields": [b"5", b"6"],
    "conflicting-list": [b"5, 6"],
    "not-a-number": [b"five"],
    "negative": [b"-5"],
    "plus-sign": [b"+5"],
    "hex": [b"0x5"],
    "empty": [b""],
}


@pytest.mark.parametrize("case", BAD_LENGTHS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_invalid_or_conflicting_content_length_is_not_used_for_framing(
    scripted_raw_server: RawFactory, protocol: str, case: str
) -> None:
    """A Content-Length that is not one non-negative decimal number cannot delimit the
    content: HTTP/1.1 refuses the response (InvalidResponse) and does not reuse the
    connection; HTTP/2 treats it as malformed (a stream error of type PROTOCOL_ERROR)."""
    lengths = BAD_LENGTHS[case]
    if protocol == "h11":
        fields = b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
        reply = RawReply(OK + fields + b"\r\nhello", close=False)
        with h11_server(scripted_raw_server, {"/bad": reply, "/ok": b"ok"}) as (conn, resp, _):
            with quickly(3), pytest.raises(InvalidResponse):
                h11_get(conn, "/bad").read()
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.connection_id for r in resp.requests] == [0, 1]
    else:
        head = block(b"200", *((b"content-length", value) for value in lengths))
        _h2_malformed_then_ok(scripted_raw_server, "/bad", head, b"hello")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_body_shorter_than_content_length_is_incomplete(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Content-Length 10 and 5 bytes, then the end (connection close; END_STREAM): the
    response is not complete and reading it fails; it is never handed out as whole."""
    if protocol == "h11":
        reply = RawReply(OK + b"Content-Length: 10\r\n\r\nhello", close=True)
        with h11_server(scripted_raw_server, {"/short": reply, "/ok": b"ok"}) as (conn, _, _s):
            with quickly(3), pytest.raises(IncompleteRead) as caught:
                h11_get(conn, "/short").read()
            assert (caught.value.received, caught.value.expected) == (5, 10)
            assert h11_get(conn, "/ok").read() == b"ok"
    else:
        head = block(b"200", (b"content-length", b"10"))
        _h2_malformed_then_ok(scripted_raw_server, "/short", head, b"hello")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_8_6_body_longer_than_content_length_is_not_taken_as_content(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Content-Length 5 and 10 bytes: HTTP/1.1 reads exactly 5 bytes as the body and never
    takes the excess for the next response (the connection is not reused); in HTTP/2 the
    response is malformed, a stream error of type PROTOCOL_ERROR."""
    if protocol == "h11":
        reply = RawReply(OK + b"Content-Length: 5\r\n\r\nhelloHTTP/", close=False)
        with (
            h11_server(scripted_raw_server, {"/long": reply, "/ok": b"ok"}) as (conn, resp, _),
            quickly(3),
        ):
            assert h11_get(conn, "/long").read() == b"hello"
            response = h11_get(conn, "/ok")
            assert (response.status, response.read()) == (200, b"ok")
        assert [(r.path, r.connection_id) for r in resp.requests] == [("/long", 0), ("/ok", 1)]
    else:
        head = block(b"200", (b"content-length", b"5"))
        _h2_malformed_then_ok(scripted_raw_server, "/long", head, b"helloworld")


# -- 9.2.2: automatic retries -------------------------------------------------------------------


def _h11_hang_up(request: Request) -> RawReply:
    """Read the request, answer nothing, close the connection."""
    return RawReply(b"", close=True)


def _h2_hang_up(peer: RawH2Peer, stream_id: int, _: int) -> None:
    """Take the whole request, answer nothing, close the connection."""
    peer.sock.shutdown(socket.SHUT_RDWR)
    raise PeerGone("hung up on purpose")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_9_2_2_non_idempotent_request_is_not_retried_automatically(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """A POST reaches the server, which closes the connection without any answer: the POST
    might have been applied, so hyper reports the failure and never sends it again."""
    if protocol == "h11":
        with (
            h11_server(scripted_raw_server, {"/post": _h11_hang_up}) as (conn, resp, srv),
            quickly(3),
            pytest.raises(HyperError),
        ):
            h11_get(conn, "/post", "POST", body=b"order one").read()
        assert [(r.method, r.body) for r in resp.requests] == [("POST", b"order one")]
        assert srv.connection_count == 1
    else:
        with (
            h2_server(scripted_raw_server, _h2_hang_up) as (conn, peers, _),
            quickly(3),
            pytest.raises(HyperError),
        ):
            h2_get(conn, "/post", "POST", body=b"order one").read()
        posts = [r for peer in peers for r in peer.requests.values()]
        assert len(posts) == 1
        assert bytes(posts[0].body) == b"order one"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_9_2_2_a_failed_automatic_retry_is_not_retried(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """Every connection closes right after the request, unanswered. HTTP/1.1 never retries
    (one GET); HTTP/2 retries a safe GET once on a new connection, and when that retry
    fails too the error is reported: two GETs, never a third."""
    if protocol == "h11":
        with (
            h11_server(scripted_raw_server, {"/get": _h11_hang_up}) as (conn, resp, _),
            quickly(3),
            pytest.raises(HyperError),
        ):
            h11_get(conn, "/get").read()
        assert [r.method for r in resp.requests] == ["GET"]
    else:
        with (
            h2_server(scripted_raw_server, _h2_hang_up) as (conn, peers, _),
            quickly(4),
            pytest.raises(HyperError),
        ):
            h2_get(conn, "/get").read()
        gets = [r for peer in peers for r in peer.requests.values()]
        assert len(gets) == 2
        assert len(peers) == 2


# -- 10.1.1: Expect -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_10_1_1_hyper_sends_no_expectation_and_never_waits_for_100_continue(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """hyper generates no ``Expect: 100-continue`` (with or without content) and sends a
    body at once: a server that never sends 100 (Continue) gets the whole body promptly."""
    body = b"x" * 50_000
    if protocol == "h11":
        routes = {"/x": lambda r: Reply(200, body=str(len(r.body)).encode())}
        with (
            h11_server(scripted_raw_server, routes, send_continue=False) as (conn, resp, _),
            quickly(3),
        ):
            assert h11_get(conn, "/x", "POST", body=body).read() == b"50000"
            assert h11_get(conn, "/x").read() == b"0"
        assert all(r.header("expect") is None for r in resp.requests)
    else:
        with h2_server(scripted_raw_server, plain_ok) as (conn, peers, _), quickly(3):
            assert h2_get(conn, "/x", "POST", body=body).read() == b"x"
            assert h2_get(conn, "/x").read() == b"x"
        assert all(field(h, b"expect") == [] for h in request_headers(peers[0]))
        assert len(peers[0].requests[1].body) == len(body)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_15_2_100_continue_before_the_final_response_is_skipped(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """A caller's own ``Expect: 100-continue`` with a body: the server's 100 (Continue) is
    parsed and skipped, and the final response is returned."""
    headers = {"Expect": "100-continue"}
    if protocol == "h11":
        routes = {"/x": lambda r: Reply(201, body=r.body)}
        with h11_server(scripted_raw_server, routes, send_continue=True) as (conn, resp, _):
            response = h11_get(conn, "/x", "PUT", body=b"payload", headers=headers)
            assert (response.status, response.read()) == (201, b"payload")
        assert resp.requests[0].expects_continue
    else:

        def answer(peer: RawH2Peer, stream_id: int, _: int) -> None:
            peer.send(
                headers_frames(stream_id, block(b"100"))
                + headers_frames(stream_id, block(b"201", (b"content-length", b"2")))
                + data_frame(stream_id, b"ok", end=True)
            )

        with h2_server(scripted_raw_server, answer) as (conn, _, _srv):
            response = h2_get(conn, "/x", "PUT", body=b"payload", headers=headers)
            assert (response.status, response.read()) == (201, b"ok")


# -- 10.1.5: User-Agent -------------------------------------------------------------------------


# -- 15.2: informational responses --------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rfc9110_15_2_unexpected_1xx_responses_are_parsed_and_ignored(
    scripted_raw_server: RawFactory, protocol: str
) -> None:
    """100, 102 and 103 (with fields), none asked for, before the final response: all are
    parsed and skipped, their fields are not merged into the final response, and the
    connection is reused."""
    if protocol == "h11":
        interim = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\nX-Progress: 50\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        )
        final = OK + b"X-Final: yes\r\nContent-Length: 4\r\n\r\ndone"
        routes = {"/x": RawReply(interim + final, close=False), "/ok": b"ok"}
        with h11_server(scripted_raw_server, routes) as (conn, resp, _), quickly(3):
            response = h11_get(conn, "/x")
            assert (response.status, response.read()) == (200, b"done")
            assert list(response.headers.iter_raw()) == [
                (b"X-Final", b"yes"),
                (b"Content-Length", b"4"),
            ]
            assert h11_get(conn, "/ok").read() == b"ok"
        assert [r.connection_id for r in resp.requests] == [0, 0]
    else:

        def answer(sid: int) -> bytes:
            return (
                headers_frames(sid, block(b"100"))
                + headers_frames(sid, block(b"102", (b"x-progress", b"50")))
                + headers_frames(sid, block(b"103", (b"link", b"</s.css>; rel=preload")))
                + headers_frames(sid, block(b"200", (b"x-final", b"yes")))
                + data_frame(sid, b"done", end=True)
            )

        with h2_server(scripted_raw_server, by_path({b"/x": raw(answer)})) as running:
            conn, peers, server = running
            with quickly(3):
                response = h2_get(conn, "/x")
                assert (response.status, response.read()) == (200, b"done")
                assert list(response.headers.iter_raw()) == [(b"x-final", b"yes")]
                assert h2_get(conn, "/ok").read() == b"ok"
            assert server.connection_count == 1
        assert not peers[0].rst_codes


# -- 9.3.6: CONNECT -----------------------------------------------------------------------------


def test_rfc9110_9_3_6_framing_fields_of_a_2xx_connect_response_are_ignored(
    scripted_raw_server: RawFactory,
) -> None:
    """The proxy's 200 to CONNECT carries Content-Length and Transfer-Encoding: they are
    ignored, and what follows the response head is the tunnel (no body is read)."""
    connect_heads: list[bytes] = []

    def proxy(sock: socket.socket) -> None:
        head = recv_head(sock, TIMEOUT)
        if head is None:
            return
        connect_heads.append(head)
        sock.sendall(
            b"HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            while data := sock.recv(4096):
                sock.sendall(data)

    with scripted_raw_server(proxy) as server:
        done = threading.Event()
        with quickly(3):
            tunnel = open_tunnel(server.host, server.port, "origin.test", 443, timeout=TIMEOUT)
            with tunnel:
                tunnel.sendall(b"ping")
                tunnel.settimeout(TIMEOUT)
                assert tunnel.recv(4) == b"ping"
                done.set()
    assert done.is_set()
    assert connect_heads[0].startswith(b"CONNECT origin.test:443 HTTP/1.1\r\n")


# -- 10.2.2 / 15.4: redirects (hyper's requests adapter; hyper itself never redirects) ---------


@contextlib.contextmanager
def adapter_session() -> Iterator[Any]:
    """A requests session sending http:// URLs through hyper's HTTP20Adapter."""
    import requests

    from hyper.contrib import HTTP20Adapter

    with requests.Session() as session:
        session.mount("http://", HTTP20Adapter())
        yield session


def test_rfc9110_15_4_requests_adapter_stops_a_redirect_loop(
    scripted_raw_server: RawFactory,
) -> None:
    """A resource that redirects to itself: the adapter's session gives up after its
    redirect limit (TooManyRedirects) instead of looping."""
    import requests

    loop = Reply(302, headers=[(b"Location", b"/loop")])
    responder = http11_responder({"/loop": loop})
    with scripted_raw_server(responder) as server, adapter_session() as session, quickly(5):
        session.max_redirects = 5
        with pytest.raises(requests.exceptions.TooManyRedirects):
            session.get(f"http://{server.host}:{server.port}/loop", timeout=TIMEOUT)
    assert [r.path for r in responder.requests] == ["/loop"] * 6


def test_rfc9110_10_2_2_requests_adapter_keeps_the_fragment_across_a_redirect(
    scripted_raw_server: RawFactory,
) -> None:
    """A redirect whose Location has no fragment: the final URL keeps the original one
    (``#part``); no fragment is ever sent to the server."""
    routes: dict[str, Any] = {"/a": Reply(302, headers=[(b"Location", b"/b")]), "/b": b"b"}
    responder = http11_responder(routes)
    with scripted_raw_server(responder) as server, adapter_session() as session, quickly(5):
        base = f"http://{server.host}:{server.port}"
        response = session.get(base + "/a#part", timeout=TIMEOUT)
        assert (response.status_code, response.content) == (200, b"b")
        assert response.url == base + "/b#part"
    assert [r.target for r in responder.requests] == ["/a", "/b"]
