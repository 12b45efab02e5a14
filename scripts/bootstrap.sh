#!/usr/bin/env bash
# One-time set-up for a development or CI machine, run by every Makefile target.
# 1. System packages: liburing's development files, and for the peer tests and the
#    benchmarks redis-server, PostgreSQL and wrk (apt-get when root on Debian/Ubuntu;
#    otherwise say exactly what to install, and stop if ringloop cannot be built).
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

# System packages, each only when missing: liburing's development files (needed to
# build), the servers the peer tests run (tests/peers/: redis-server, PostgreSQL)
# and wrk (HTTP load generator for the benchmarks). One apt-get update + install
# for all of them, and nothing at all when everything is there.
need_build=()    # without these ringloop cannot be built: fatal when not installable
need_tools=()    # without these some tests/benchmarks fail (with a message saying so)
pkg-config --exists liburing 2>/dev/null || need_build+=(liburing-dev pkg-config)
command -v redis-server >/dev/null || need_tools+=(redis-server)
if ! command -v pg_ctl >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  need_tools+=(postgresql)
fi
command -v wrk >/dev/null || need_tools+=(wrk)
missing=("${need_build[@]}" "${need_tools[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  elif [ ${#need_build[@]} -gt 0 ]; then
    echo "bootstrap: liburing's development files are missing." >&2
    echo "  Debian/Ubuntu: sudo apt-get install liburing-dev pkg-config ${need_tools[*]}" >&2
    echo "  Fedora/RHEL:   sudo dnf install liburing-devel pkgconf" >&2
    echo "  Arch:          sudo pacman -S liburing pkgconf" >&2
    exit 1
  else
    echo "bootstrap: warning: ${need_tools[*]} not installed; the tests that need them" >&2
    echo "  (tests/test_peer_*.py: redis-server, postgresql) and the wrk benchmarks" >&2
    echo "  will fail. Debian/Ubuntu: sudo apt-get install ${need_tools[*]}" >&2
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
