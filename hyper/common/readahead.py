"""
OpenSSL's read-ahead, for the TLS contexts hyper makes itself.

Without read-ahead, OpenSSL reads each TLS record from the socket in two system calls: its
5-byte header, then the rest. A 100 MiB download is then some 13,000 ``recv`` calls where one
per several records would do, and the kernel's share of the work grows accordingly. OpenSSL
can instead read as much as has arrived and keep the surplus for the next records
(``SSL_CTX_set_read_ahead``), but Python's :mod:`ssl` has no switch for it.

:func:`enable` turns it on through :mod:`ctypes`, calling the OpenSSL that the ``_ssl``
module itself is linked against, for a context hyper created (never one a caller passed in).
It finds the context's ``SSL_CTX`` where CPython keeps it (the first field of the object, in
every CPython from 3.10 to 3.14) and proceeds only after checking that what it found is that
context: OpenSSL must report the options Python reports, before and after Python changes one.
Anything unexpected (another interpreter or version, an ``_ssl`` built with OpenSSL linked in
statically, a failed check) leaves the context as it was, and hyper works as without.

With read-ahead, OpenSSL may hold whole records that the socket no longer shows as readable,
and ``SSLSocket.pending()`` does not count them. A reader must therefore try a read, not wait
for the socket, until a read has reported that it needs more data:
:class:`~hyper.common.bufsocket.BufferedSocket` does so for contexts :func:`is_enabled` names.

``hyper.common.readahead.ALLOWED = False`` turns the feature off for contexts made afterwards.
"""

from __future__ import annotations

import ssl
import sys
import threading
import weakref
from typing import Any

#: Whether :func:`enable` may turn read-ahead on (set to False to keep OpenSSL's default).
ALLOWED = True

#: OpenSSL's SSL_CTX_ctrl commands for read-ahead (ssl.h).
_SSL_CTRL_GET_READ_AHEAD = 40
_SSL_CTRL_SET_READ_AHEAD = 41
#: An option flag Python lets callers set and OpenSSL stores as given, used to check that
#: the SSL_CTX found is the context's own (SSL_OP_NO_TICKET).
_PROBE_OPTION = ssl.OP_NO_TICKET
#: The CPython versions whose SSLContext object starts with the SSL_CTX pointer.
_KNOWN_VERSIONS = ((3, 10), (3, 14))

_contexts: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()
_lock = threading.Lock()
#: (SSL_CTX_ctrl, SSL_CTX_get_options) once loaded; False when they cannot be.
_functions: tuple[Any, Any] | bool | None = None


def _load() -> tuple[Any, Any] | None:
    """The two OpenSSL functions, from the library ``_ssl`` uses; None if unavailable."""
    global _functions
    with _lock:
        if _functions is None:
            _functions = False
            low, high = _KNOWN_VERSIONS
            if sys.implementation.name == "cpython" and low <= sys.version_info[:2] <= high:
                try:
                    import _ssl
                    import ctypes

                    library = ctypes.CDLL(_ssl.__file__)
                    ctrl = library.SSL_CTX_ctrl
                    get_options = library.SSL_CTX_get_options
                except (ImportError, OSError, AttributeError):
                    pass
                else:
                    ctrl.restype = ctypes.c_long
                    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
                    get_options.restype = ctypes.c_uint64
                    get_options.argtypes = [ctypes.c_void_p]
                    _functions = (ctrl, get_options)
        return _functions if isinstance(_functions, tuple) else None


def _ssl_ctx(context: ssl.SSLContext) -> int | None:
    """The address of ``context``'s SSL_CTX, or None."""
    import ctypes

    address = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    return address or None


def enable(context: ssl.SSLContext) -> bool:
    """
    Turn on OpenSSL's read-ahead for the connections ``context`` makes from now on.

    :param context: a context hyper created (its owner's code never sees the change).
    :returns: whether read-ahead is now on; False leaves the context unchanged.
    """
    if not ALLOWED or type(context) is not ssl.SSLContext:
        return False
    functions = _load()
    if functions is None:
        return False
    ctrl, get_options = functions
    address = _ssl_ctx(context)
    if address is None:
        return False
    # Two readings must agree with Python's view of the options, one of them after Python
    # changed a bit of them: only the context's own SSL_CTX can do that.
    original = context.options
    if get_options(address) != int(original):
        return False
    context.options = original ^ _PROBE_OPTION
    try:
        if get_options(address) != int(context.options):
            return False
    finally:
        context.options = original
    ctrl(address, _SSL_CTRL_SET_READ_AHEAD, 1, None)
    if ctrl(address, _SSL_CTRL_GET_READ_AHEAD, 0, None) != 1:
        return False
    _contexts.add(context)
    return True


def is_enabled(context: ssl.SSLContext | None) -> bool:
    """Whether :func:`enable` turned read-ahead on for ``context``."""
    return context is not None and context in _contexts
