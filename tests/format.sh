#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Every C file is formatted by the repository's .clang-format.
set -eu
command -v clang-format >/dev/null || { echo "no clang-format: skipped"; exit 77; }
cd "$top_srcdir"
bad=0
for f in include/*.h src/*.c src/*.h tests/*.c tests/*.h bench/*.c \
  fuzz/*.c fuzz/*.h tools/*.c tools/*.h \
  examples/billgen/*.c examples/billgen/*.h; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "ok: all C files formatted"
exit $bad
