#!/usr/bin/env bash
# Install hyper with its demo server into .venv, start a local HTTP/2 server over TLS, run
# the quickstart against it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$PYTHON" -m pip install --quiet -e '.[demo]'
exec "$PYTHON" demo/quickstart.py
