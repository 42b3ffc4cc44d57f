# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run: make the project's virtual
# environment (.venv, ignored by git) once, and set PYTHON to its interpreter. Nothing is
# installed into the system Python, which may be externally managed (PEP 668).
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="$repo_root/.venv"
if [ ! -x "$venv_dir/bin/python" ]; then
  if ! python3 -m venv "$venv_dir" >/dev/null 2>&1; then
    # Debian and Ubuntu ship the venv module (and ensurepip) as a separate package.
    rm -rf "$venv_dir"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      python3-venv >/dev/null
    python3 -m venv "$venv_dir"
  fi
fi
PYTHON="$venv_dir/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
