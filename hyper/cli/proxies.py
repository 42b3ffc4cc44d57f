"""
Which proxy (HTTP, or SOCKS with the ``socks`` extra) the ``hyper`` command goes through:
``--proxy``, or the environment variables curl and most HTTP clients read, and the hosts
``NO_PROXY`` (or ``--noproxy``) exempts.

* ``--proxy URL`` applies to every request; ``--proxy ''`` turns proxies off.
* Otherwise ``https_proxy`` / ``HTTPS_PROXY`` for ``https`` URLs, ``http_proxy`` /
  ``HTTP_PROXY`` for ``http`` URLs, then ``all_proxy`` / ``ALL_PROXY``; the lower-case name
  wins. ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set: under CGI it comes from a
  request's ``Proxy:`` header ("httpoxy").
* ``--noproxy LIST``, or else ``no_proxy`` / ``NO_PROXY``: a comma-separated list of hosts
  that are reached directly. ``*`` matches every host; ``example.com`` and ``.example.com``
  match that domain and every name under it; an IP address or a network in CIDR notation
  (``10.0.0.0/8``) matches the addresses in it; ``:port`` after an entry limits it to that
  port.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..common.socks import SOCKS_SCHEMES
from .errors import UsageError
from .request import Target

#: The proxy port when a proxy URL names none (curl's).
DEFAULT_PROXY_PORT = 1080


@dataclass(frozen=True)
class Proxy:
    """A proxy: where it is, the headers an HTTP proxy is sent (``Proxy-Authorization``),
    and for a SOCKS proxy its whole URL (``socks5h://user:password@host:port``), which the
    connection reads itself."""

    host: str
    port: int
    headers: tuple[tuple[str, str], ...] = ()
    socks_url: str | None = None

    @property
    def scheme(self) -> str:
        """``http``, or the SOCKS scheme (``socks5h``...)."""
        return "http" if self.socks_url is None else self.socks_url.partition("://")[0].lower()

    @property
    def url(self) -> str:
        """``scheme://host:port``, without the credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(text: str, source: str = "--proxy") -> Proxy:
    """
    Parse a proxy URL: ``http://[user:password@]host[:port]`` (or without ``http://``), or a
    SOCKS one (``socks5h://``, ``socks5://``, ``socks4a://``, ``socks4://``). The port
    defaults to :data:`DEFAULT_PROXY_PORT`; for an HTTP proxy, percent-encoded credentials
    become a Basic ``Proxy-Authorization`` header.

    :param source: where the URL comes from (the option or variable), for error messages.
    :raises UsageError: for another scheme, no host or a bad port.
    """
    url = text.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "http" and scheme not in SOCKS_SCHEMES:
        raise UsageError(
            f"{source}: unsupported proxy scheme {parts.scheme!r} (use http://, socks5h://, "
            "socks5://, socks4a:// or socks4://)"
        )
    try:
        port = parts.port or DEFAULT_PROXY_PORT
    except ValueError:
        raise UsageError(f"{source}: invalid port in proxy URL {text!r}") from None
    if not parts.hostname:
        raise UsageError(f"{source}: no host in proxy URL {text!r}")
    if scheme in SOCKS_SCHEMES:
        return Proxy(parts.hostname, port, socks_url=url)
    headers: tuple[tuple[str, str], ...] = ()
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
        headers = (("Proxy-Authorization", f"Basic {token}"),)
    return Proxy(parts.hostname, port, headers)


def bypasses_proxy(target: Target, no_proxy: str) -> bool:
    """Whether ``target`` is one of the hosts in the ``NO_PROXY``-style list ``no_proxy``
    (see :mod:`hyper.cli.proxies` for the syntax)."""
    host = target.host.lower().rstrip(".")
    address = _address(host)
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, port = _split_port(entry)
        if port is not None and port != target.port:
            continue
        if _host_matches(host, address, name):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """An entry's host and port: ``[::1]:8080``, ``host:8080``, or a bare IPv6 address."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    return host, int(port_text) if port_text.isdigit() else None


def _host_matches(
    host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, entry: str
) -> bool:
    if address is not None:
        try:
            return address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False  # a name: it never matches an address
    domain = entry.lstrip("*").lstrip(".").rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def proxy_for(
    target: Target,
    environ: Mapping[str, str],
    option: str | None = None,
    noproxy: str | None = None,
) -> Proxy | None:
    """
    The proxy for a request to ``target``, or ``None`` to connect directly.

    :param environ: the environment (``os.environ``).
    :param option: ``--proxy``'s value: it replaces the environment's proxies; empty means
        none.
    :param noproxy: ``--noproxy``'s value: it replaces ``NO_PROXY``.
    :raises UsageError: naming the option or variable, if the proxy URL is invalid.
    """
    if option is not None:
        source, url = "--proxy", option
    else:
        source, url = _from_environment(target.scheme, environ)
    if not url.strip():
        return None
    exempt = noproxy if noproxy is not None else _variable(environ, "no_proxy")[1]
    if bypasses_proxy(target, exempt):
        return None
    return parse_proxy_url(url, source)


def _from_environment(scheme: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The variable naming the proxy for ``scheme`` and its value (empty: none)."""
    for name in (f"{scheme}_proxy", "all_proxy"):
        if name == "http_proxy" and "REQUEST_METHOD" in environ:
            if environ.get(name):
                return name, environ[name]  # only the upper-case one comes from a request
            continue
        source, value = _variable(environ, name)
        if value:
            return source, value
    return "", ""


def _variable(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    """The lower-case variable ``name`` if set and not empty, else its upper-case form."""
    for spelling in (name, name.upper()):
        value = environ.get(spelling, "")
        if value.strip():
            return spelling, value
    return name, ""
