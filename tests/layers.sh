#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The modules form a stack (docs/architecture.md, section 2): no file in
# src/ includes a header of a layer above its own. A file's layer is its
# module's (x.c and x.h alike); a file missing from the table fails, so
# a new module must be placed in it.
set -eu
src="$top_srcdir/src"
[ -d "$src" ] || { echo "FAIL: no $src"; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

layer_of() {
  case "$1" in
  internal | alloc | clock | rand | forkgen | hash | log | value | codec | \
    compress | key | options | url | status | topo) echo 0 ;;
  l1 | conn | sentinel | cluster | l2) echo 1 ;;
  handle | l2ops | replay | coherence | flight | lease | renew) echo 2 ;;
  cache | fetch | group | stats | warm | fork) echo 3 ;;
  tiercache) echo 0 ;; # the public header, which everything may see
  *) echo "" ;;
  esac
}

bad=0 n=0
for f in "$src"/*.c "$src"/*.h; do
  name=${f##*/}
  mine=$(layer_of "${name%.*}")
  if [ -z "$mine" ]; then
    echo "FAIL: src/$name is in no layer (place it in tests/layers.sh)"
    bad=1
    continue
  fi
  # Only '#include "x.h"': <...> are the system's and the dependencies'.
  grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
    sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1 \2/' > "$tmp" || :
  while read -r line hdr; do
    n=$((n + 1))
    theirs=$(layer_of "${hdr%.h}")
    if [ -z "$theirs" ]; then
      echo "FAIL: src/$name:$line includes \"$hdr\", which is in no layer"
      bad=1
    elif [ "$theirs" -gt "$mine" ]; then
      echo "FAIL: src/$name:$line (layer $mine) includes \"$hdr\" (layer $theirs)"
      bad=1
    fi
  done < "$tmp"
done
# ... nor goes round the table by declaring another module's function
# itself: a module's functions are declared in its header, and only
# there (a file-scope prototype in a .c file is such a declaration).
grep -nE '^[a-z][^(=]*[ *]tc__[a-z0-9_]+\([^)]*\);' "$src"/*.c |
  grep -v '^[^:]*:[0-9]*:static ' > "$tmp" || :
while IFS= read -r hit; do
  echo "FAIL: ${hit#"$top_srcdir"/}: a prototype in a .c file (put it in a header)"
  bad=1
done < "$tmp"
[ "$bad" = 0 ] || exit 1
echo "ok: $n includes in src/, none reaching up a layer; no prototype in a .c file"
