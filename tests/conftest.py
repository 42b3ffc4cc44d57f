"""Shared fixtures: TLS material, real servers (nghttpd, hypercorn+httpbin) and scripted servers.

Server fixtures are session-scoped, start on free ports of 127.0.0.1, wait
for readiness with a deadline and are stopped (SIGTERM, then SIGKILL) at
session end, also when tests fail.  Their logs live under pytest's temporary
directory.  A missing server binary/package skips the tests that need it,
unless ``CI`` is set, in which case those tests fail.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Make ``tests.support`` importable however pytest is invoked (``pytest`` alone only
# puts ``tests/`` on sys.path while there is no ``tests/__init__.py``).
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.support.certs import CertPaths, TLSMaterial, make_tls_material  # noqa: E402
from tests.support.conformance import keywords_by_test  # noqa: E402
from tests.support.http2bin import Http2binServer, run_http2bin  # noqa: E402
from tests.support.nghttpd import Docroot, NghttpdServer, make_docroot, run_nghttpd  # noqa: E402
from tests.support.scripted import ScriptedRawServer, ScriptedServer, ThreadedServer  # noqa: E402

# Fixture name -> marker name applied automatically to the tests using it, so that
# e.g. ``-m "not nghttpd"`` deselects everything that needs the binary.
_SERVER_MARKERS = {
    "nghttpd_tls": "nghttpd",
    "nghttpd_h2c": "nghttpd",
    "http2bin_tls": "http2bin",
    "http2bin_plain": "http2bin",
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers used by the suite."""
    config.addinivalue_line("markers", "nghttpd: needs the nghttpd binary (auto-applied)")
    config.addinivalue_line("markers", "http2bin: needs hypercorn + httpbin (auto-applied)")


@pytest.hookimpl(tryfirst=True)  # before ``-k`` selects by keyword
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the external servers they use, and give the tests the conformance
    table names the keyword of their RFC section (``pytest -k rfc9113_6_6``)."""
    sections = keywords_by_test()
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            marker = _SERVER_MARKERS.get(name)
            if marker is not None:
                item.add_marker(marker)
        node = item.nodeid
        keywords = sections.get(node) or sections.get(node.split("[", 1)[0])
        if keywords:
            item.extra_keyword_matches.update(keywords)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """CA plus server, wrong-host, expired and untrusted certificates ; see TLSMaterial."""
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def ca_cert_path(tls_material: TLSMaterial) -> Path:
    """PEM file of the CA that issued the test server certificates."""
    return tls_material.ca_cert_path


@pytest.fixture(scope="session")
def server_cert(tls_material: TLSMaterial) -> CertPaths:
    """Certificate valid for localhost, 127.0.0.1 and ::1."""
    return tls_material.server


@pytest.fixture(scope="session")
def server_cert_path(server_cert: CertPaths) -> Path:
    """PEM chain (leaf first) of :func:`server_cert`."""
    return server_cert.cert_path


@pytest.fixture(scope="session")
def server_key_path(server_cert: CertPaths) -> Path:
    """PEM private key of :func:`server_cert`."""
    return server_cert.key_path


@pytest.fixture(scope="session")
def wrong_host_cert(tls_material: TLSMaterial) -> CertPaths:
    """Certificate from the trusted CA, valid only for ``wrong.example``."""
    return tls_material.wrong_host


@pytest.fixture(scope="session")
def expired_cert(tls_material: TLSMaterial) -> CertPaths:
    """Certificate from the trusted CA for the right names, expired yesterday."""
    return tls_material.expired


@pytest.fixture(scope="session")
def untrusted_cert(tls_material: TLSMaterial) -> CertPaths:
    """Certificate for the right names from a CA the client does not trust."""
    return tls_material.untrusted


# -- nghttpd -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nghttpd_docroot(tmp_path_factory: pytest.TempPathFactory) -> Docroot:
    """Document root shared by the nghttpd servers (1k/64k/1m/10m/empty .bin, index.html)."""
    return make_docroot(tmp_path_factory.mktemp("docroot"))


@pytest.fixture(scope="session")
def nghttpd_tls(
    nghttpd_docroot: Docroot,
    tls_material: TLSMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NghttpdServer]:
    """nghttpd speaking HTTP/2 over TLS (ALPN h2) with the test server certificate."""
    with run_nghttpd(
        nghttpd_docroot,
        tmp_path_factory.mktemp("nghttpd-tls-logs"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_h2c(
    nghttpd_docroot: Docroot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NghttpdServer]:
    """nghttpd speaking plaintext HTTP/2 (prior knowledge; ``--no-tls``)."""
    with run_nghttpd(nghttpd_docroot, tmp_path_factory.mktemp("nghttpd-h2c-logs")) as server:
        yield server


# -- hypercorn + httpbin -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def http2bin_tls(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Http2binServer]:
    """httpbin behind hypercorn over TLS, HTTP/2 via ALPN (HTTP/1.1 also offered)."""
    with run_http2bin(
        tmp_path_factory.mktemp("http2bin-tls-logs"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def http2bin_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http2binServer]:
    """httpbin behind hypercorn in plaintext: HTTP/1.1, h2c upgrade and h2 prior knowledge."""
    with run_http2bin(tmp_path_factory.mktemp("http2bin-plain-logs")) as server:
        yield server


# -- scripted servers --------------------------------------------------------------------------


def _server_factory(
    cls: Callable[..., ThreadedServer], default_cert: CertPaths
) -> tuple[Callable[..., Any], list[ThreadedServer]]:
    """Return a server factory (for test use) and the list of servers it created."""
    created: list[ThreadedServer] = []

    def make(
        handler: Callable[[Any], None],
        *,
        tls: bool = False,
        cert: CertPaths | None = None,
        **kwargs: Any,
    ) -> ThreadedServer:
        chosen = cert or default_cert
        server = cls(
            handler,
            tls=tls,
            certfile=chosen.cert_path if tls else None,
            keyfile=chosen.key_path if tls else None,
            **kwargs,
        )
        created.append(server)
        return server

    return make, created


def _close_all(created: list[ThreadedServer]) -> None:
    """Close servers a test left open; report handler errors nobody checked."""
    for server in created:
        server.close()
    for server in created:
        server.check()


@pytest.fixture
def scripted_server(server_cert: CertPaths) -> Iterator[Callable[..., ScriptedServer]]:
    """Factory: ``with scripted_server(handler, tls=False, cert=None, **kw) as srv:``.

    ``handler(ctx: ServerConnection)`` runs per connection; TLS uses
    ``cert`` (default: the localhost server certificate) and ALPN ``h2``.
    Extra keyword arguments go to :class:`ScriptedServer`.
    """
    make, created = _server_factory(ScriptedServer, server_cert)
    yield make
    _close_all(created)


@pytest.fixture
def scripted_raw_server(server_cert: CertPaths) -> Iterator[Callable[..., ScriptedRawServer]]:
    """Factory like :func:`scripted_server`, but ``handler(sock)`` gets the bare socket."""
    make, created = _server_factory(ScriptedRawServer, server_cert)
    yield make
    _close_all(created)


# -- nginx (HTTP/1.1 + HTTP/2 over TLS) and tinyproxy ------------------------------------------
# Imports and marker registration for this section live here so that the section stays
# self-contained; the base ``pytest_configure`` above is wrapped, not edited.

from tests.support.nginx import NginxInstance, NginxServer, make_nginx_docroot, run_nginx  # noqa: E402
from tests.support.tinyproxy import DEFAULT_AUTH, TinyproxyServer, run_tinyproxy  # noqa: E402

_SERVER_MARKERS.update(
    {
        "nginx": "nginx",
        "nginx_h2_tls": "nginx",
        "nginx_h11_tls": "nginx",
        "nginx_plain": "nginx",
        "tinyproxy": "tinyproxy",
        "tinyproxy_refusing": "tinyproxy",
        "tinyproxy_auth": "tinyproxy",
    }
)
_base_pytest_configure = pytest_configure


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of the suite, including the nginx/tinyproxy ones."""
    _base_pytest_configure(config)
    config.addinivalue_line("markers", "nginx: needs the nginx binary (auto-applied)")
    config.addinivalue_line("markers", "tinyproxy: needs the tinyproxy binary (auto-applied)")


@pytest.fixture(scope="session")
def nginx_docroot(tmp_path_factory: pytest.TempPathFactory) -> Docroot:
    """Document root of the nginx servers: the nghttpd files plus ``text.txt`` (64 KiB text)."""
    return make_nginx_docroot(tmp_path_factory.mktemp("nginx-docroot"))


@pytest.fixture(scope="session")
def nginx(
    nginx_docroot: Docroot,
    tls_material: TLSMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NginxInstance]:
    """One nginx master serving the ``h2_tls``, ``h11_tls`` and ``plain`` server blocks.

    Prefer the per-block fixtures below; this one gives the master pid, config and
    worker pids.  Locations: see :data:`tests.support.nginx.LOCATIONS_DOC`.
    """
    with run_nginx(
        nginx_docroot,
        tmp_path_factory.mktemp("nginx"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as instance:
        yield instance


@pytest.fixture(scope="session")
def nginx_h2_tls(nginx: NginxInstance) -> NginxServer:
    """nginx over TLS with HTTP/2: ALPN offers ``h2`` and ``http/1.1`` (h2 preferred)."""
    return nginx.servers["h2_tls"]


@pytest.fixture(scope="session")
def nginx_h11_tls(nginx: NginxInstance) -> NginxServer:
    """nginx over TLS, HTTP/1.1 only: ALPN selects ``http/1.1``."""
    return nginx.servers["h11_tls"]


@pytest.fixture(scope="session")
def nginx_plain(nginx: NginxInstance) -> NginxServer:
    """nginx in plaintext, HTTP/1.1 only (no ``h2c`` upgrade)."""
    return nginx.servers["plain"]


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyproxyServer]:
    """tinyproxy forwarding absolute-form requests and tunnelling CONNECT to any port."""
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyproxyServer]:
    """tinyproxy refusing every request and CONNECT with ``403 Filtered``."""
    with run_tinyproxy(
        tmp_path_factory.mktemp("tinyproxy-refusing"), name="tinyproxy-refusing", refusing=True
    ) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyproxyServer]:
    """tinyproxy requiring Basic ``Proxy-Authorization`` for ``.auth`` (407 without it,
    401 with wrong credentials)."""
    with run_tinyproxy(
        tmp_path_factory.mktemp("tinyproxy-auth"), name="tinyproxy-auth", auth=DEFAULT_AUTH
    ) as proxy:
        yield proxy


# -- server push, GOAWAY and stream limits (nghttpd, hypercorn + tests/support/hypercorn_apps) --
# Self-contained like the nginx section: the previous ``pytest_configure`` is wrapped.

import contextlib  # noqa: E402

from tests.support.push_app import (  # noqa: E402
    HypercornAppServer,
    NghttpdLimitedServer,
    NghttpdPushServer,
    make_push_docroot,
    run_hypercorn_app,
    run_nghttpd_limited,
    run_nghttpd_push,
)

_SERVER_MARKERS.update(
    {
        "nghttpd_push": "nghttpd",
        "nghttpd_limited": "nghttpd",
        "hypercorn_push": "hypercorn",
        "hypercorn_short_keepalive": "hypercorn",
        "hypercorn_limited": "hypercorn",
        "hypercorn_max_requests": "hypercorn",
        "hypercorn_request_limit": "hypercorn",
    }
)
_pytest_configure_before_push = pytest_configure


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of the suite, including the hypercorn-app one."""
    _pytest_configure_before_push(config)
    config.addinivalue_line(
        "markers", "hypercorn: needs hypercorn (push/limits test app; auto-applied)"
    )


@pytest.fixture(scope="session")
def nghttpd_push_docroot(tmp_path_factory: pytest.TempPathFactory) -> Docroot:
    """The nghttpd docroot plus ``page.html``, ``style.css``, ``script.js`` and ``big.html``."""
    return make_push_docroot(tmp_path_factory.mktemp("push-docroot"))


@pytest.fixture(scope="session")
def nghttpd_push(
    nghttpd_push_docroot: Docroot,
    tls_material: TLSMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NghttpdPushServer]:
    """nghttpd over TLS pushing per ``.pushes``: GET /page.html pushes /style.css and
    /script.js, GET /big.html pushes /1m.bin (unless the client sets ENABLE_PUSH=0)."""
    with run_nghttpd_push(
        nghttpd_push_docroot,
        tmp_path_factory.mktemp("nghttpd-push-logs"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_limited(
    nghttpd_docroot: Docroot,
    tls_material: TLSMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NghttpdLimitedServer]:
    """nghttpd over TLS advertising SETTINGS_MAX_CONCURRENT_STREAMS=``.max_concurrent_streams``
    (4), serving the normal docroot and echoing uploads."""
    with run_nghttpd_limited(
        nghttpd_docroot,
        tmp_path_factory.mktemp("nghttpd-limited-logs"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


def _hypercorn_app(
    tmp_path_factory: pytest.TempPathFactory, tls_material: TLSMaterial, name: str, **kw: Any
) -> contextlib.AbstractContextManager[HypercornAppServer]:
    return run_hypercorn_app(
        tmp_path_factory.mktemp(f"{name}-logs"),
        name=name,
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
        **kw,
    )


@pytest.fixture(scope="session")
def hypercorn_push(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornAppServer]:
    """hypercorn over TLS (h2) serving ``tests/support/hypercorn_apps.py``: GET /pushing
    pushes /pushed/a and /pushed/b; /echo, /bytes/<n>, /slow/<ms>.  Never idles out."""
    with _hypercorn_app(tmp_path_factory, tls_material, "hypercorn-push") as server:
        yield server


@pytest.fixture(scope="session")
def hypercorn_short_keepalive(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornAppServer]:
    """The hypercorn app with a 1 s keep-alive timeout: an HTTP/2 connection without open
    streams for 1 s is closed (the client reads EOF) *without* a GOAWAY."""
    with _hypercorn_app(
        tmp_path_factory, tls_material, "hypercorn-short-keepalive", keep_alive_timeout=1.0
    ) as server:
        yield server


@pytest.fixture(scope="session")
def hypercorn_limited(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornAppServer]:
    """The hypercorn app advertising SETTINGS_MAX_CONCURRENT_STREAMS=4; a 5th concurrent
    stream gets GOAWAY(PROTOCOL_ERROR) and the connection is closed."""
    with _hypercorn_app(
        tmp_path_factory, tls_material, "hypercorn-limited", max_concurrent_streams=4
    ) as server:
        yield server


@pytest.fixture(scope="session")
def hypercorn_max_requests(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornAppServer]:
    """The hypercorn app allowing 2 requests per connection: the 3rd gets
    GOAWAY(NO_ERROR, last_stream_id=<its stream>) and no response; the socket is closed
    when the 2 s keep-alive timeout expires."""
    with _hypercorn_app(
        tmp_path_factory,
        tls_material,
        "hypercorn-max-requests",
        max_requests=2,
        keep_alive_timeout=2.0,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def hypercorn_request_limit(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornAppServer]:
    """The hypercorn app with its default limit of 1,000 requests per connection, which it
    enforces without waiting for the streams in flight (some are never answered); a 1 s
    keep-alive timeout closes such a connection soon after."""
    with _hypercorn_app(
        tmp_path_factory,
        tls_material,
        "hypercorn-request-limit",
        max_requests=1000,
        keep_alive_timeout=1.0,
    ) as server:
        yield server


# -- interop matrix (tests/test_interop_matrix.py): nghttpd, nginx, h2o, Apache, hypercorn -----
# Self-contained like the sections above: the previous ``pytest_configure`` is wrapped.  The
# matrix servers are separate instances configured for it (see tests/support/interop*.py).

from tests.support.apache import run_apache  # noqa: E402
from tests.support.h2o import run_h2o  # noqa: E402
from tests.support.interop import (  # noqa: E402
    InteropDocroot,
    InteropTarget,
    make_interop_docroot,
    public_tempdir,
)
from tests.support.interop_matrix import InteropMatrixPlugin, record_version  # noqa: E402
from tests.support.interop_servers import (  # noqa: E402
    run_interop_hypercorn,
    run_interop_nghttpd,
    run_interop_nginx,
)

_pytest_configure_before_interop = pytest_configure


def pytest_configure(config: pytest.Config) -> None:
    """Register the interop marker and the plugin printing the interop matrix."""
    _pytest_configure_before_interop(config)
    config.addinivalue_line(
        "markers", "interop(server, mode, check): one cell of the interop matrix"
    )
    if not config.pluginmanager.has_plugin(InteropMatrixPlugin.NAME):
        config.pluginmanager.register(InteropMatrixPlugin(), InteropMatrixPlugin.NAME)


@pytest.fixture(scope="session")
def interop_docroot() -> Iterator[InteropDocroot]:
    """The interop document root (index.html, data.bin, text.txt, m/NN.txt, 100m.bin, push/),
    in a world-readable temporary directory removed at the end of the session."""
    with public_tempdir("hyper-interop-docroot-") as path:
        yield make_interop_docroot(path)


def _interop_target(
    request: pytest.FixtureRequest, manager: contextlib.AbstractContextManager[InteropTarget]
) -> Iterator[InteropTarget]:
    with manager as target:
        record_version(request.config, target.name, target.version)
        yield target


def _interop_fixture(slug: str, runner: Callable[..., Any], doc: str) -> Any:
    """A session fixture ``interop_<slug>``: ``runner`` started on the shared docroot and
    certificate, its version recorded for the matrix."""

    @pytest.fixture(scope="session", name=f"interop_{slug}")
    def fixture(
        request: pytest.FixtureRequest,
        interop_docroot: InteropDocroot,
        tls_material: TLSMaterial,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[InteropTarget]:
        yield from _interop_target(
            request,
            runner(
                interop_docroot,
                tmp_path_factory.mktemp(f"interop-{slug}"),
                cert=tls_material.server,
                ca_cert_path=tls_material.ca_cert_path,
            ),
        )

    fixture.__doc__ = doc
    return fixture


interop_nghttpd = _interop_fixture(
    "nghttpd",
    run_interop_nghttpd,
    "nghttpd over TLS and h2c for the interop matrix (echo, trailer, push, gzipped 404).",
)
interop_nginx = _interop_fixture(
    "nginx",
    run_interop_nginx,
    "nginx for the interop matrix: h2 and HTTP/1.1-only over TLS, HTTP/1.1 and h2c plain.",
)
interop_h2o = _interop_fixture(
    "h2o", run_h2o, "h2o over TLS and in plaintext for the interop matrix (tests/support/h2o.py)."
)
interop_apache = _interop_fixture(
    "apache",
    run_apache,
    "Apache httpd + mod_http2 for the interop matrix (tests/support/apache.py).",
)
interop_hypercorn = _interop_fixture(
    "hypercorn",
    run_interop_hypercorn,
    "hypercorn serving tests/support/interop_app.py, over TLS and in plaintext.",
)


# -- SOCKS proxies (Dante) ---------------------------------------------------------------------
# Self-contained like the sections above: the previous ``pytest_configure`` is wrapped.

from tests.support.dante import DanteServer, run_dante  # noqa: E402

_SERVER_MARKERS["dante"] = "dante"
_pytest_configure_before_dante = pytest_configure


def pytest_configure(config: pytest.Config) -> None:
    """Register the dante marker."""
    _pytest_configure_before_dante(config)
    config.addinivalue_line("markers", "dante: needs Dante's danted binary (auto-applied)")


@pytest.fixture(scope="session")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DanteServer]:
    """Dante as a SOCKS4 and SOCKS5 proxy without authentication on 127.0.0.1, refusing
    connections to its ``blocked_port`` (see :mod:`tests.support.dante`)."""
    with run_dante(tmp_path_factory.mktemp("dante")) as proxy:
        yield proxy


# -- HTTP/3 servers ----------------------------------------------------------------------------

from tests.support.h3servers import (  # noqa: E402
    CaddyServer,
    H3Server,
    make_caddy_docroot,
    run_caddy,
    run_hypercorn_h3,
)

_SERVER_MARKERS["hypercorn_h3"] = "http3"
_SERVER_MARKERS["caddy_h3"] = "http3"
_pytest_configure_before_http3 = pytest_configure


def pytest_configure(config: pytest.Config) -> None:
    """Register the http3 marker."""
    _pytest_configure_before_http3(config)
    config.addinivalue_line(
        "markers", "http3: needs an HTTP/3 server, hypercorn[h3] or caddy (auto-applied)"
    )


@pytest.fixture(scope="session")
def hypercorn_h3(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[H3Server]:
    """hypercorn serving HTTP/3 on a free UDP port of 127.0.0.1 (``--quic-bind``): httpbin
    plus ``/echo``, ``/bytes/<n>`` and ``/slow/<ms>`` (:mod:`tests.support.h3_app`)."""
    with run_hypercorn_h3(
        tmp_path_factory.mktemp("hypercorn-h3"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def caddy_h3(
    tls_material: TLSMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CaddyServer]:
    """Caddy serving files over HTTP/3 (and HTTP/1.1 and HTTP/2 on the same TCP port):
    ``/hello.txt`` and a 100 MiB ``/big.bin`` (see :mod:`tests.support.h3servers`)."""
    docroot = tmp_path_factory.mktemp("caddy-docroot")
    digest = make_caddy_docroot(docroot)
    with run_caddy(
        docroot,
        digest,
        tmp_path_factory.mktemp("caddy-logs"),
        cert=tls_material.server,
        ca_cert_path=tls_material.ca_cert_path,
    ) as server:
        yield server


@pytest.fixture
def fresh_alt_svc_record() -> Iterator[None]:
    """The process-wide ``Alt-Svc`` record starts empty, and is emptied again after the
    test: what one test learned must not send another's connections to HTTP/3."""
    from hyper.common.altsvc import ALT_SVC_CACHE

    ALT_SVC_CACHE.clear()
    yield
    ALT_SVC_CACHE.clear()


@pytest.fixture
def hypercorn_h3_conn(hypercorn_h3: H3Server) -> Iterator[Any]:
    """An :class:`~hyper.HTTP30Connection` to :func:`hypercorn_h3` (20 s timeouts), closed
    after the test."""
    from hyper import HTTP30Connection

    with HTTP30Connection(
        hypercorn_h3.host, hypercorn_h3.port, cert_path=hypercorn_h3.ca_cert_path, timeout=20.0
    ) as connection:
        yield connection
