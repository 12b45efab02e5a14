#!/usr/bin/env bash
# One-time set-up for a development or CI machine, run by every Makefile target.
# 1. liburing's development files (apt-get when root on Debian/Ubuntu; otherwise
#    say exactly what to install and stop).
# 2. A virtual environment per Python version (.venv-3.11, .venv-3.13, ...) with the
#    test and benchmark requirements, and ringloop built and installed into it.
# Usage: scripts/bootstrap.sh PYTHON VENV [extra pip install args for ringloop]
set -euo pipefail
# Concurrent runs (several shells, helpers) share build/: take turns.
mkdir -p build
exec 9>build/.bootstrap.lock
flock 9
python=${1:-}
venv=${2:-.venv}
shift 2 || true

if ! pkg-config --exists liburing 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing liburing-dev and pkg-config with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liburing-dev pkg-config >/dev/null
  else
    echo "bootstrap: liburing's development files are missing." >&2
    echo "  Debian/Ubuntu: sudo apt-get install liburing-dev pkg-config" >&2
    echo "  Fedora/RHEL:   sudo dnf install liburing-devel pkgconf" >&2
    echo "  Arch:          sudo pacman -S liburing pkgconf" >&2
    exit 1
  fi
fi

if [ -z "$python" ] || ! command -v "$python" >/dev/null; then
  echo "bootstrap: no Python interpreter found for this version; install Python 3.11 or newer (or pass PY=3.X)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.requirements-installed"
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r requirements-dev.txt
  touch "$stamp"
fi
"$venv/bin/python" -m pip install -q --no-build-isolation "$@" .
