"""
The exceptions hyper raises, whatever the protocol.

Every error that leaves a public hyper call is an instance of :class:`HyperError`. Errors from
the libraries hyper is built on (``h2``, ``hpack``, ``hyperframe``, ``ssl``, ``socket``) are
translated at one boundary and chained, so ``exc.__cause__`` still holds the original.

The HTTP/2-specific classes live in :mod:`hyper.http20.exceptions` and derive from
:class:`HyperError` as well.
"""

from __future__ import annotations

import builtins


class HyperError(Exception):
    """
    The base class of every exception hyper raises.

    :ivar safe_to_retry: whether the request this error ended may be sent again without
        the risk of it taking effect twice. ``True`` when the server cannot have processed
        it (HTTP/2: its stream was above a GOAWAY's last stream id, or refused with
        ``REFUSED_STREAM``; either protocol: it never left hyper) or when its method is
        idempotent (``GET``, ``HEAD``, ``OPTIONS``, ``TRACE``, ``PUT``, ``DELETE``);
        ``False`` when its fate is unknown, and for errors that are not about a request's
        delivery. Set on the errors ``request()`` and ``get_response()`` raise; hyper has
        then already sent such a request again once by itself where it could (see
        :ref:`which requests hyper sends again <retries>`).
    """

    safe_to_retry: bool = False

    def __copy__(self) -> HyperError:
        clone = type(self).__new__(type(self), *self.args)
        clone.__dict__.update(self.__dict__)
        clone.__cause__ = self.__cause__
        clone.__context__ = self.__context__
        clone.__suppress_context__ = self.__suppress_context__
        return clone

    def for_request(self, safe_to_retry: bool) -> HyperError:
        """
        This error as the failure of one request: a copy with :attr:`safe_to_retry` set (the
        same error may end several requests, each with its own verdict). The copy keeps
        every attribute, and ``__cause__``: the original library error stays reachable.

        :param safe_to_retry: whether that request may be sent again.
        :returns: the copy, or this error itself when it already says the same.
        """
        if self.safe_to_retry == safe_to_retry:
            return self
        clone = self.__copy__()
        clone.safe_to_retry = safe_to_retry
        return clone


class InvalidRequest(HyperError, ValueError):
    """
    The caller asked for something that cannot be sent: a header name or value with CR, LF or
    NUL in it, a method or URL that is not valid, a body of an unsupported type.

    Raised before anything reaches the wire.
    """


class SocketError(HyperError, OSError):
    """
    A network operation failed: the connection could not be opened, was reset, or was closed
    by the peer while hyper still expected data.
    """


class ConnectionClosed(SocketError):
    """
    The connection was closed (by the peer, or by the caller's ``close()``) while an operation
    still needed it: the peer hung up in the middle of a response, or a closed connection was
    used.
    """


class IncompleteResponseHead(ConnectionClosed):
    """The connection closed after part of an HTTP/1.1 response head had arrived."""


class SocketTimeout(SocketError, builtins.TimeoutError):
    """An operation on the network did not finish within the configured timeout."""


class ConnectTimeout(SocketTimeout):
    """Opening the connection (TCP, proxy tunnel or TLS handshake) took too long."""


class ReadTimeout(SocketTimeout):
    """The server sent nothing for longer than the read timeout."""


class DeadlineExceeded(ReadTimeout):
    """
    The request's total deadline (:attr:`hyper.Timeout.total`) passed once the connection
    was open: while waiting for room for its stream, sending its body, waiting for its
    response or reading that response's body. (A deadline that passes while connecting
    raises :class:`ConnectTimeout`.) A subclass of :class:`ReadTimeout`, so code that
    catches that catches this too.
    """


class TLSError(SocketError):
    """The TLS handshake or a TLS record failed."""


class CertificateError(TLSError):
    """The server's certificate could not be verified, or does not match the host name."""


class TrustStoreUnavailable(HyperError, ImportError):
    """Verifying with the operating system's trust store (``trust="system"``) needs the
    optional ``truststore`` package, which is not installed: install it with
    ``pip install 'hyper[truststore]'``."""


class ProxyError(HyperError):
    """
    The proxy refused or failed to carry the request.

    :ivar status: the status code the proxy answered with, or ``None`` when it sent none.
    :ivar reason: the proxy's reason phrase (``str``), possibly empty.
    """

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class InvalidResponse(HyperError):
    """The server's response breaks the rules of the protocol it was sent in."""


class HTTP2PriorKnowledgeOnly(InvalidResponse):
    """
    The server answered an HTTP/1.1 request with HTTP/2 frames: it speaks HTTP/2 in
    plaintext with prior knowledge only. :class:`hyper.HTTPConnection` handles this by
    reconnecting with HTTP/2 and sending the request again (the server never read it as a
    request); an :class:`hyper.HTTP11Connection` cannot talk to such a server.
    """


class InvalidResponseHeader(InvalidResponse):
    """
    A header field of an HTTP/1.1 response is malformed, or contradicts another one (two
    different ``Content-Length`` values, say), so the message cannot be delimited safely.
    """


class LineTooLongError(InvalidResponse):
    """A status or header line of an HTTP/1.1 response is longer than hyper allows."""


class ChunkedDecodeError(InvalidResponse):
    """An HTTP/1.1 chunked body is not well formed."""


class IncompleteRead(InvalidResponse):
    """
    The body ended before the length the server announced, or (a body that only the close of
    the connection ends) with a TLS connection closed without its closure alert.

    :ivar received: how many body bytes arrived.
    :ivar expected: how many were announced, or ``None`` when unknown.

    :param detail: why the body is known to be incomplete, when the counts do not say.
    """

    def __init__(self, received: int, expected: int | None = None, detail: str = "") -> None:
        if expected is None:
            message = f"response body ended early after {received} bytes"
        else:
            message = f"response body ended after {received} of {expected} announced bytes"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.received = received
        self.expected = expected


class ContentDecodingError(InvalidResponse):
    """The body could not be decoded with the Content-Encoding the server announced."""
