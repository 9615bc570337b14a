#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The log events the library emits and the "Log events" table of
# docs/operations.md agree: every tc__log call in src/ names a literal
# level and a literal event, each event has one level, and the table
# lists exactly those events with those levels.
set -eu
src="$top_srcdir/src"
doc="$top_srcdir/docs/operations.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One call per line: a call may span several lines of source.
cat "$src"/*.c | tr '\n\t' '  ' | sed 's/tc__log(/\ntc__log(/g' |
  grep '^tc__log(' | grep -v '^tc__log(const tc__logger' > "$tmp/calls" || :
sed -n 's/^tc__log([^,]*, *TC_LOG_\([A-Z]*\), *"\([^"]*\)".*/\2 \1/p' \
  "$tmp/calls" | tr 'A-Z' 'a-z' | sort -u > "$tmp/code"
fail=0
if [ ! -s "$tmp/calls" ]; then
  echo "FAIL: no tc__log call found in $src"
  exit 1
fi
bad=$(grep -cv '^tc__log([^,]*, *TC_LOG_[A-Z]*, *"[a-z][a-z.]*[a-z]",' \
  "$tmp/calls" || :)
if [ "$bad" -ne 0 ]; then
  echo "FAIL: tc__log calls without a literal level and event name:"
  grep -v '^tc__log([^,]*, *TC_LOG_[A-Z]*, *"[a-z][a-z.]*[a-z]",' \
    "$tmp/calls" | cut -c1-120
  fail=1
fi
dup=$(cut -d' ' -f1 "$tmp/code" | uniq -d)
if [ -n "$dup" ]; then
  echo "FAIL: events logged at more than one level:" $dup
  fail=1
fi

# The table's rows: | `event` | level | ...
awk '/^## /{on = ($0 == "## Log events")} on' "$doc" |
  sed -n 's/^| `\([^`]*\)` | \([a-z]*\) |.*/\1 \2/p' | sort > "$tmp/doc"
if [ ! -s "$tmp/doc" ]; then
  echo "FAIL: no \"## Log events\" table in $doc"
  exit 1
fi
if ! diff -u "$tmp/doc" "$tmp/code"; then
  echo "FAIL: log events differ (- docs/operations.md, + src/)"
  fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "ok: $(wc -l < "$tmp/code") log events, documented with their levels"
