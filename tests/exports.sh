#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The shared library exports exactly the functions tiercache.h declares
# with TC_EXTERN: no tc__ internals, no dependency's symbols, none missing.
set -eu
lib="$top_builddir/.libs/libtiercache.so"
hdr="$top_srcdir/include/tiercache.h"
[ -f "$lib" ] || { echo "no $lib (static-only build?)"; exit 77; }
command -v nm >/dev/null || { echo "no nm"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
  sed 's/@.*//' | sort -u > "$tmp/exported"
# TC_EXTERN <type> [*]name(  -- possibly with the name on the same line
grep -v '^#' "$hdr" | tr '\n' ' ' | grep -o 'TC_EXTERN[^;(]*(' |
  sed 's/($//; s/.*[ *]//' | sort -u > "$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported"; then
  echo "FAIL: exported symbols differ from the header (- header, + library)"
  exit 1
fi
echo "ok: $(wc -l < "$tmp/exported") symbols exported, all declared"
