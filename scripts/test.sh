#!/usr/bin/env bash
# Install everything the tests need (Debian servers; Python packages into .venv), then run
# the suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

debian_packages=(nghttp2-server nghttp2-client nginx tinyproxy curl h2o apache2 dante-server caddy)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$PYTHON" -m pip install --quiet -e '.[test]'
exec "$PYTHON" -m pytest "$@"
