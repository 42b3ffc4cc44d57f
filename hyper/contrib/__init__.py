"""
Integrations of hyper with other software: the requests transport adapter
(:class:`HTTP20Adapter`) and the HTTPie transport plugin (:mod:`hyper.contrib.httpie`).
"""

from .adapter import HTTP20Adapter, HyperRawResponse

__all__ = ["HTTP20Adapter", "HyperRawResponse"]
