#!/usr/bin/env bash
# Install hyper with its demo server, start a local HTTP/2 server over TLS, run the quickstart.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[demo]'
exec python3 demo/quickstart.py
