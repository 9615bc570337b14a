#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The license is stated once in COPYING and named, by its SPDX identifier,
# near the top of every source file, so a file copied out of the tree
# still says under which terms.
set -eu
cd "$top_srcdir"
id="SPDX-License-Identifier: BSD-3-Clause"
bad=0
grep -q "BSD 3-Clause License" COPYING || { echo "COPYING: not BSD-3-Clause"; bad=1; }
grep -q "The tiercache authors" COPYING || { echo "COPYING: no copyright line"; bad=1; }
for f in include/*.h src/*.c src/*.h tests/*.c tests/*.h tests/*.sh \
         examples/billgen/*.c examples/billgen/*.h \
         bench/*.c bench/*.h bench/*.gp fuzz/*.c fuzz/*.h fuzz/*.sh \
         tools/*.c tools/*.h docs/tiercache.1 \
         scripts/* autogen.sh bootstrap \
         .ci/run tiercache.pc.in configure.ac Makefile.am; do
  [ -f "$f" ] || continue
  if ! head -n 3 "$f" | grep -q "$id"; then
    echo "no \"$id\" in the first lines of $f"
    bad=1
  fi
done
grep -q "^## License" README.md || { echo "README.md: no License section"; bad=1; }
[ $bad -eq 0 ] && echo "ok: every source file carries the SPDX line"
exit $bad
