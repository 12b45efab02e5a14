#!/usr/bin/env bash
# Prints the path of a working Python interpreter for version $1 (e.g. 3.13):
# pyenv's install first (its shims may exist without the version being
# active), then pythonX.Y on PATH. Prints nothing if none runs.
v=${1:-3.11}
for cand in $(ls -d "$HOME"/.pyenv/versions/"$v"*/bin/python3 2>/dev/null | sort -V | tail -1) \
            "python$v" "/usr/bin/python$v"; do
  if "$cand" -c 'import sys' >/dev/null 2>&1; then
    command -v "$cand" 2>/dev/null || echo "$cand"
    exit 0
  fi
done
exit 1
