#!/usr/bin/env bash
# Runs a command (pytest) against an ASan/UBSan build of ringloop._core.
# The sanitizer runtime must be loaded before libc's malloc is bound, so it
# is preloaded; PYTHONMALLOC=malloc lets ASan see every Python allocation.
# Leak detection is off: CPython itself keeps memory until exit. Reports go
# to build/sanitizer.* (pytest captures stderr) and are printed at the end;
# any report fails the run.
set -uo pipefail
logdir="$(pwd)/build/sanitizer"
rm -rf "$logdir" && mkdir -p "$logdir"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$logdir/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logdir/ubsan"
export PYTHONMALLOC=malloc
"$@"
rc=$?
if compgen -G "$logdir/*" >/dev/null; then
  echo "=== sanitizer reports ==="
  cat "$logdir"/*
  exit 1
fi
exit $rc
