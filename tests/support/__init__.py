"""Test-support helpers: certificates, server processes and scripted HTTP/2 servers."""
