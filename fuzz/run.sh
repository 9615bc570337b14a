#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# make fuzz: runs each libFuzzer target for a time on its seed corpus and
# prints one line per target, like automake's:
#   PASS: fuzz_envelope (1234567 executions in 60 s)
#   FAIL: fuzz_url (crash; input in fuzz/artifacts/, log in fuzz/fuzz_url.log)
# Usage: run.sh <top_srcdir> <seconds> <target>...
# The seeds are read only: new inputs go to a temporary directory, so the
# source tree stays as it was. A crash, leak, timeout or out-of-memory
# leaves its input in fuzz/artifacts/ of the build directory (reproduce:
# fuzz/fuzz_<name> <that file>). Exits 1 if any target failed.
set -u
srcdir=$1
seconds=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tc-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p fuzz/artifacts
failed=0
for t in "$@"; do
  prog=fuzz/fuzz_$t
  log=fuzz/fuzz_$t.log
  mkdir "$tmp/$t"
  # The first directory gets what the fuzzer finds; the seeds only feed it.
  "$prog" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 \
    -rss_limit_mb=2048 -artifact_prefix="fuzz/artifacts/$t-" \
    "$tmp/$t" "$srcdir/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
    echo "PASS: fuzz_$t ($execs executions in $seconds s)"
  else
    echo "FAIL: fuzz_$t (exit $rc; input in fuzz/artifacts/, log in $log)"
    tail -n 40 "$log"
    failed=1
  fi
done
exit $failed
