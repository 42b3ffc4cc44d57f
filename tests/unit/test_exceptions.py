"""Tests for the exception hierarchy: hyper.common.exceptions and hyper.http20.exceptions."""

from __future__ import annotations

import builtins

import h2.errors
import pytest

from hyper.common import exceptions as common
from hyper.http20 import exceptions as http20

# Every public exception class, each with arguments that construct it.
_ALL_CLASSES: list[tuple[type[BaseException], tuple[object, ...]]] = [
    (common.InvalidRequest, ("bad",)),
    (common.SocketError, ("bad",)),
    (common.ConnectionClosed, ("bad",)),
    (common.SocketTimeout, ("bad",)),
    (common.ConnectTimeout, ("bad",)),
    (common.ReadTimeout, ("bad",)),
    (common.TLSError, ("bad",)),
    (common.CertificateError, ("bad",)),
    (common.ProxyError, ("bad",)),
    (common.InvalidResponse, ("bad",)),
    (common.LineTooLongError, ("bad",)),
    (common.ChunkedDecodeError, ("bad",)),
    (common.IncompleteRead, (3,)),
    (common.ContentDecodingError, ("bad",)),
    (http20.HTTP20Error, ("bad",)),
    (http20.HPACKEncodingError, ("bad",)),
    (http20.ConnectionError, ("bad",)),
    (http20.ProtocolError, ("bad",)),
    (http20.HPACKDecodingError, ("bad",)),
    (http20.StreamResetError, ("bad", 1, 8)),
]


@pytest.mark.parametrize(
    ("cls", "args"), _ALL_CLASSES, ids=[cls.__name__ for cls, _ in _ALL_CLASSES]
)
def test_every_exception_is_a_hyper_error(
    cls: type[BaseException], args: tuple[object, ...]
) -> None:
    assert issubclass(cls, common.HyperError)
    with pytest.raises(common.HyperError):
        raise cls(*args)


def test_hyper_error_is_exported_from_the_package() -> None:
    import hyper

    assert hyper.HyperError is common.HyperError
    assert issubclass(common.HyperError, Exception)


def test_invalid_request_is_a_value_error() -> None:
    assert issubclass(common.InvalidRequest, ValueError)
    with pytest.raises(ValueError, match="bad header"):
        raise common.InvalidRequest("bad header")


@pytest.mark.parametrize(
    "cls",
    [
        common.SocketError,
        common.ConnectionClosed,
        common.SocketTimeout,
        common.ConnectTimeout,
        common.ReadTimeout,
        common.TLSError,
        common.CertificateError,
    ],
)
def test_socket_errors_are_os_errors(cls: type[BaseException]) -> None:
    assert issubclass(cls, common.SocketError)
    assert issubclass(cls, OSError)


@pytest.mark.parametrize("cls", [common.SocketTimeout, common.ConnectTimeout, common.ReadTimeout])
def test_timeouts_are_builtin_timeout_errors(cls: type[BaseException]) -> None:
    assert issubclass(cls, builtins.TimeoutError)
    assert issubclass(cls, OSError)
    assert issubclass(cls, common.SocketTimeout)
    # Code written against the standard library catches them.
    with pytest.raises(TimeoutError):
        raise cls("timed out")


def test_certificate_error_is_a_tls_error() -> None:
    assert issubclass(common.CertificateError, common.TLSError)
    assert not issubclass(common.TLSError, common.SocketTimeout)


def test_connection_closed_is_not_a_timeout() -> None:
    assert not issubclass(common.ConnectionClosed, TimeoutError)
    assert not issubclass(common.SocketError, TimeoutError)


@pytest.mark.parametrize(
    "cls",
    [
        common.LineTooLongError,
        common.ChunkedDecodeError,
        common.IncompleteRead,
        common.ContentDecodingError,
    ],
)
def test_response_errors_are_invalid_response(cls: type[BaseException]) -> None:
    assert issubclass(cls, common.InvalidResponse)
    assert not issubclass(cls, OSError)


def test_proxy_error_attributes() -> None:
    exc = common.ProxyError("refused", 407, "Proxy Authentication Required")
    assert str(exc) == "refused"
    assert exc.status == 407
    assert exc.reason == "Proxy Authentication Required"
    assert not isinstance(exc, OSError)


def test_proxy_error_defaults() -> None:
    exc = common.ProxyError("nonsense")
    assert exc.status is None
    assert exc.reason == ""
    assert str(exc) == "nonsense"


def test_incomplete_read_with_expected_length() -> None:
    exc = common.IncompleteRead(10, 100)
    assert exc.received == 10
    assert exc.expected == 100
    assert "10" in str(exc)
    assert "100" in str(exc)
    assert str(exc) == "response body ended after 10 of 100 announced bytes"


def test_incomplete_read_without_expected_length() -> None:
    exc = common.IncompleteRead(7)
    assert exc.received == 7
    assert exc.expected is None
    assert str(exc) == "response body ended early after 7 bytes"


def test_incomplete_read_zero_received() -> None:
    exc = common.IncompleteRead(0, 5)
    assert exc.received == 0
    assert "0 of 5" in str(exc)


# -- HTTP/2 ------------------------------------------------------------------------------------


def test_http20_connection_error_is_not_the_builtin() -> None:
    assert http20.ConnectionError is not builtins.ConnectionError
    assert not issubclass(http20.ConnectionError, builtins.ConnectionError)
    assert not issubclass(http20.ConnectionError, OSError)
    assert issubclass(http20.ConnectionError, http20.HTTP20Error)


def test_http20_hierarchy() -> None:
    assert issubclass(http20.HTTP20Error, common.HyperError)
    assert issubclass(http20.HPACKEncodingError, http20.HTTP20Error)
    assert issubclass(http20.ProtocolError, http20.ConnectionError)
    assert issubclass(http20.HPACKDecodingError, http20.ProtocolError)
    assert issubclass(http20.HPACKDecodingError, http20.ConnectionError)
    assert issubclass(http20.StreamResetError, http20.HTTP20Error)
    # A stream reset concerns one stream only: it is not a connection failure.
    assert not issubclass(http20.StreamResetError, http20.ConnectionError)
    assert not issubclass(http20.HPACKEncodingError, http20.ConnectionError)


@pytest.mark.parametrize(
    "cls", [http20.ConnectionError, http20.ProtocolError, http20.HPACKDecodingError]
)
def test_connection_errors_carry_an_error_code(cls: type[http20.ConnectionError]) -> None:
    exc = cls("goaway", h2.errors.ErrorCodes.PROTOCOL_ERROR)
    assert exc.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert exc.error_code == 1
    assert str(exc) == "goaway"
    assert cls("no code").error_code is None
    assert cls("unknown code", 0xFA).error_code == 0xFA


def test_protocol_error_is_caught_as_connection_error() -> None:
    with pytest.raises(http20.ConnectionError) as info:
        raise http20.ProtocolError("bad frame", 1)
    assert info.value.error_code == 1
    assert isinstance(info.value, common.HyperError)


def test_stream_reset_error_attributes() -> None:
    exc = http20.StreamResetError("reset", 5, h2.errors.ErrorCodes.CANCEL)
    assert exc.stream_id == 5
    assert exc.error_code == h2.errors.ErrorCodes.CANCEL
    assert exc.error_code == 8
    assert str(exc) == "reset"


def test_stream_reset_error_requires_its_attributes() -> None:
    with pytest.raises(TypeError):
        http20.StreamResetError("reset")  # type: ignore[call-arg]
