"""Pieces shared by both protocols: sockets, headers, decoding, exceptions, helpers."""
