#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# TC_I64, TC_U64, TC_F64, TC_STR and TC_BIN catch arguments of the wrong
# kind at compile time: each snippet below must fail to compile, and the
# right ones must compile.
set -eu
: "${CC:=cc}"
command -v "${CC%% *}" >/dev/null || { echo "no compiler: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
try() { # expected (ok|fail), C expression statement
  printf '#include <tiercache.h>\nint f(const char *p, int i, double d, int *ip);\n' > "$tmp/t.c"
  printf 'int f(const char *p, int i, double d, int *ip)\n{\n    char k[TC_KEY_MAX];\n    (void)p; (void)i; (void)d; (void)ip;\n    return %s;\n}\n' "$2" >> "$tmp/t.c"
  if $CC -std=c11 -Wall -Werror -c -I"$top_srcdir/include" -o "$tmp/t.o" "$tmp/t.c" 2>"$tmp/err"; then
    got=ok
  else
    got=fail
  fi
  if [ "$got" != "$1" ]; then
    echo "FAIL: expected $1, got $got: $2"; cat "$tmp/err"; exit 1
  fi
}
try ok   'tc_key(k, sizeof k, "f", "iudsb", TC_I64(i), TC_U64(i), TC_F64(d), TC_STR(p), TC_BIN(p, i))'
try ok   'tc_key(k, sizeof k, "f", "i", TC_I64((short)1))'
try fail 'tc_key(k, sizeof k, "f", "i", TC_I64(p))'
try fail 'tc_key(k, sizeof k, "f", "i", TC_I64(d))'
try fail 'tc_key(k, sizeof k, "f", "u", TC_U64(ip))'
try fail 'tc_key(k, sizeof k, "f", "d", TC_F64(p))'
try fail 'tc_key(k, sizeof k, "f", "s", TC_STR(i))'
try fail 'tc_key(k, sizeof k, "f", "s", TC_STR(ip))'
try fail 'tc_key(k, sizeof k, "f", "b", TC_BIN(p, d))'
echo "ok: argument helpers refuse the wrong kinds at compile time"
