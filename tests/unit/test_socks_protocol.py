"""The SOCKS client handshake without I/O (:mod:`hyper.common.socks_protocol`): the bytes it
sends for SOCKS5 (RFC 1928, RFC 1929 credentials) and SOCKS4/4a, how much of each reply it
asks for (never a byte past the last one), and the errors for refusals and broken replies.
"""

from __future__ import annotations

import struct

import pytest

from hyper.common.exceptions import InvalidRequest, ProxyError
from hyper.common.socks_protocol import Handshake

PORT = 8443
PORT_BYTES = struct.pack("!H", PORT)
#: A SOCKS5 success reply binding 10.0.0.1:1080 (IPv4).
GRANTED_V4 = bytes([5, 0, 0, 1, 10, 0, 0, 1]) + struct.pack("!H", 1080)


def feed(shake: Handshake, reply: bytes) -> bytes:
    """Give ``reply`` to the handshake as a socket would, as much as it asks for at a time;
    return what is left over (what the handshake never asked for)."""
    while reply and shake.wanted:
        piece, reply = reply[: shake.wanted], reply[shake.wanted :]
        shake.receive(piece)
    return reply


# -- SOCKS5 ------------------------------------------------------------------------------------


def test_socks5_without_credentials_offers_no_authentication_only() -> None:
    shake = Handshake(5, "example.com", PORT)
    assert shake.data_to_send() == b"\x05\x01\x00"
    assert shake.data_to_send() == b""  # nothing more until the proxy answers
    assert shake.wanted == 2
    feed(shake, b"\x05\x00")
    assert shake.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com" + PORT_BYTES
    assert not shake.done
    assert feed(shake, GRANTED_V4 + b"origin data") == b"origin data"
    assert shake.done
    assert shake.wanted == 0


@pytest.mark.parametrize("credentials", [(None, None), ("user", "secret")])
def test_socks5_destination_can_come_after_the_proxy_accepted_the_client(
    credentials: tuple[str | None, str | None],
) -> None:
    shake = Handshake(5, None, PORT, *credentials)
    assert shake.data_to_send()[:2] in (b"\x05\x01", b"\x05\x02")  # the greeting goes first
    assert not shake.needs_destination
    if credentials[0] is None:
        feed(shake, b"\x05\x00")
    else:
        feed(shake, b"\x05\x02")
        assert shake.data_to_send() == b"\x01\x04user\x06secret"
        assert not shake.needs_destination
        feed(shake, b"\x01\x00")
    assert shake.needs_destination and shake.wanted == 0
    assert shake.data_to_send() == b""
    shake.set_destination("192.0.2.7")
    assert not shake.needs_destination
    assert shake.data_to_send() == b"\x05\x01\x00\x01\xc0\x00\x02\x07" + PORT_BYTES
    feed(shake, GRANTED_V4)
    assert shake.done
    with pytest.raises(InvalidRequest, match="already"):
        shake.set_destination("192.0.2.8")


def test_socks4_needs_its_destination_from_the_start() -> None:
    with pytest.raises(InvalidRequest, match="SOCKS4"):
        Handshake(4, None, PORT)


def test_socks5_with_credentials_authenticates_when_the_proxy_asks() -> None:
    shake = Handshake(5, "192.0.2.7", PORT, "alice", "s3cret")
    assert shake.data_to_send() == b"\x05\x02\x00\x02"
    feed(shake, b"\x05\x02")
    assert shake.data_to_send() == b"\x01\x05alice\x06s3cret"
    feed(shake, b"\x01\x00")
    assert shake.data_to_send() == b"\x05\x01\x00\x01\xc0\x00\x02\x07" + PORT_BYTES
    feed(shake, GRANTED_V4)
    assert shake.done


def test_socks5_credentials_are_not_sent_when_the_proxy_wants_none() -> None:
    shake = Handshake(5, "example.com", PORT, "alice", "s3cret")
    shake.data_to_send()
    feed(shake, b"\x05\x00")
    assert b"alice" not in shake.data_to_send()


def test_socks5_names_an_ipv6_destination_by_its_address() -> None:
    shake = Handshake(5, "2001:db8::1", PORT)
    shake.data_to_send()
    feed(shake, b"\x05\x00")
    address = bytes.fromhex("20010db8000000000000000000000001")
    assert shake.data_to_send() == b"\x05\x01\x00\x04" + address + PORT_BYTES


@pytest.mark.parametrize(
    "bound",
    [
        pytest.param(bytes([1, 10, 0, 0, 1]), id="ipv4"),
        pytest.param(bytes([4]) + bytes(16), id="ipv6"),
        pytest.param(bytes([3, 9]) + b"proxy.lan", id="name"),
    ],
)
def test_socks5_reads_exactly_the_bound_address_of_each_type(bound: bytes) -> None:
    shake = Handshake(5, "example.com", PORT)
    shake.data_to_send()
    feed(shake, b"\x05\x00")
    shake.data_to_send()
    reply = bytes([5, 0, 0]) + bound + struct.pack("!H", 1080)
    # Fed one byte at a time, the handshake never asks past the reply's last byte.
    for byte in reply:
        assert shake.wanted > 0
        shake.receive(bytes([byte]))
    assert shake.done
    assert shake.wanted == 0


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (0x02, "connection not allowed by ruleset"),
        (0x04, "Host unreachable"),
        (0x05, "Connection refused"),
        (0x42, "unknown reply code"),
    ],
)
def test_socks5_refusal_carries_the_reply_code(code: int, reason: str) -> None:
    shake = Handshake(5, "example.com", PORT, proxy="socks5h://proxy:1080")
    shake.data_to_send()
    feed(shake, b"\x05\x00")
    with pytest.raises(ProxyError) as info:
        feed(shake, bytes([5, code, 0, 1]))
    assert (info.value.status, info.value.reason) == (code, reason)
    message = str(info.value)
    assert "socks5h://proxy:1080 refused the connection to example.com:8443" in message
    assert f"(reply code {code:#04x})" in message


def test_socks5_proxy_accepting_no_method() -> None:
    shake = Handshake(5, "example.com", PORT)
    shake.data_to_send()
    with pytest.raises(ProxyError, match="accepted no authentication method") as info:
        feed(shake, b"\x05\xff")
    assert info.value.status is None
    assert "give credentials in the proxy URL" in str(info.value)


def test_socks5_refused_credentials() -> None:
    shake = Handshake(5, "example.com", PORT, "alice", "wrong")
    shake.data_to_send()
    feed(shake, b"\x05\x02")
    shake.data_to_send()
    with pytest.raises(ProxyError, match="authentication failure") as info:
        feed(shake, b"\x01\x01")
    assert info.value.status is None
    assert "wrong" not in str(info.value)


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        pytest.param([b"HT"], "SOCKS version 72 in its reply, not 5", id="http-answer"),
        pytest.param([b"\x05\x02"], "method 0x02, never offered", id="unoffered-method"),
        pytest.param([b"\x05\x00", b"\x04\x00\x00\x01"], "SOCKS version 4", id="reply-version"),
        pytest.param([b"\x05\x00", b"\x05\x00\x00\x07"], "address type 0x07", id="address-type"),
    ],
)
def test_socks5_broken_replies_are_proxy_errors(replies: list[bytes], message: str) -> None:
    shake = Handshake(5, "example.com", PORT)
    with pytest.raises(ProxyError, match=message) as info:
        for reply in replies:
            shake.data_to_send()
            feed(shake, reply)
    assert info.value.status is None


# -- SOCKS4 and 4a -----------------------------------------------------------------------------


def test_socks4_sends_the_address_and_user_id() -> None:
    shake = Handshake(4, "192.0.2.7", PORT, "alice")
    assert shake.data_to_send() == b"\x04\x01" + PORT_BYTES + b"\xc0\x00\x02\x07alice\x00"
    assert shake.wanted == 8
    assert feed(shake, b"\x00\x5a" + bytes(6) + b"origin data") == b"origin data"
    assert shake.done


def test_socks4a_sends_the_name_after_the_user_id() -> None:
    shake = Handshake(4, "example.com", PORT)
    expected = b"\x04\x01" + PORT_BYTES + b"\x00\x00\x00\x01" + b"\x00" + b"example.com\x00"
    assert shake.data_to_send() == expected


@pytest.mark.parametrize("code", [0x5B, 0x5C, 0x5D])
def test_socks4_refusal_carries_the_reply_code(code: int) -> None:
    shake = Handshake(4, "192.0.2.7", PORT)
    shake.data_to_send()
    with pytest.raises(ProxyError, match="rejected") as info:
        feed(shake, bytes([0, code]) + bytes(6))
    assert info.value.status == code


@pytest.mark.parametrize(
    ("reply", "message"),
    [(b"\x04\x5a" + bytes(6), "SOCKS version 4"), (b"\x00\x01" + bytes(6), "reply code 0x01")],
)
def test_socks4_broken_replies_are_proxy_errors(reply: bytes, message: str) -> None:
    shake = Handshake(4, "192.0.2.7", PORT)
    shake.data_to_send()
    with pytest.raises(ProxyError, match=message) as info:
        feed(shake, reply)
    assert info.value.status is None


# -- what cannot be asked ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "host", "message"),
    [
        (4, "2001:db8::1", "SOCKS4 cannot name the IPv6 address"),
        (5, "a" * 256, "too long"),
        (5, "bücher.example", "ASCII"),
        (6, "example.com", "no SOCKS version"),
    ],
)
def test_destinations_the_protocol_cannot_name(version: int, host: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Handshake(version, host, PORT)


def test_more_bytes_than_wanted_are_refused() -> None:
    shake = Handshake(5, "example.com", PORT)
    with pytest.raises(ValueError, match="3 bytes given, 2 wanted"):
        shake.receive(b"\x05\x00\x00")
