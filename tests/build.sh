#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Build nits, checked:
# - `pkg-config --cflags tiercache` gives consumers no dependency's Cflags
#   (hiredis' include path, -D_FILE_OFFSET_BITS): tiercache.h needs none;
# - without CUnit, configure warns, the library builds, installs and can
#   be linked through pkg-config (with an rpath, as the README says), and
#   `make check` fails saying why.
set -eu
# The inner `make check` below must not run this script again.
[ -z "${TC_BUILD_SH_NESTED:-}" ] || { echo "nested: skipped"; exit 77; }
export TC_BUILD_SH_NESTED=1
# Nor inherit the outer make's command line (TESTS=..., -j).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
command -v pkg-config >/dev/null || { echo "no pkg-config: skipped"; exit 77; }
: "${CC:=cc}"
srcdir=$(cd "$top_srcdir" && pwd)
builddir=$(cd "$top_builddir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The .pc file of this build.
flags=$(PKG_CONFIG_PATH="$builddir" pkg-config --cflags tiercache)
case "$flags" in
*hiredis* | *_FILE_OFFSET_BITS* | *msgpack*)
  echo "FAIL: pkg-config --cflags tiercache leaks: $flags"; exit 1 ;;
esac
libs=$(PKG_CONFIG_PATH="$builddir" pkg-config --static --libs tiercache)
case "$libs" in
*-lhiredis*) ;;
*) echo "FAIL: a static link would miss hiredis: $libs"; exit 1 ;;
esac
grep -q "SPDX-License-Identifier: BSD-3-Clause" "$builddir/tiercache.pc" ||
  { echo "FAIL: tiercache.pc does not name the license"; exit 1; }
echo "ok: pkg-config --cflags tiercache is '$flags'"

# 2. A build without CUnit: the dependencies' .pc files, and not CUnit's.
if [ -f "$srcdir/config.status" ]; then
  echo "the source tree is configured in place: skipping the CUnit-less build"
  exit 0
fi
mkdir "$tmp/pc" "$tmp/build"
for m in hiredis msgpack-c msgpack libxxhash libzstd liblz4; do
  d=$(pkg-config --variable=pcfiledir "$m" 2>/dev/null) || continue
  ln -s "$d/$m.pc" "$tmp/pc/$m.pc"
done
cd "$tmp/build"
if ! PKG_CONFIG_LIBDIR="$tmp/pc" PKG_CONFIG_PATH= "$srcdir/configure" \
     --prefix="$tmp/inst" >configure.out 2>&1; then
  tail -n 20 configure.out; echo "FAIL: configure without CUnit failed"; exit 1
fi
grep -q "WARNING: CUnit not found" configure.out ||
  { echo "FAIL: configure did not warn about CUnit"; exit 1; }
make -j2 >make.out 2>&1 || { tail -n 20 make.out; echo "FAIL: make"; exit 1; }
make install >install.out 2>&1 ||
  { tail -n 20 install.out; echo "FAIL: make install"; exit 1; }
cat > app.c <<'APP'
#include <stdio.h>
#include <tiercache.h>
int main(void) { printf("%s\n", tc_version_string()); return 0; }
APP
pc="$tmp/inst/lib/pkgconfig"
# shellcheck disable=SC2046
$CC -o app app.c $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs tiercache) \
    -Wl,-rpath,"$tmp/inst/lib" || { echo "FAIL: linking a consumer"; exit 1; }
./app >app.out || { echo "FAIL: the consumer did not run"; exit 1; }
if make check >check.out 2>&1; then
  echo "FAIL: make check passed without CUnit"; exit 1
fi
grep -q "CUnit was not found" check.out tests/no_cunit.log 2>/dev/null ||
  { tail -n 20 check.out; echo "FAIL: make check did not say why"; exit 1; }
echo "ok: without CUnit: configure warns, make and make install work, a"
echo "    consumer links through pkg-config, make check fails saying why"
