#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# What `make install` puts down is enough to use the library: installed
# into a DESTDIR from this build tree, a small consumer builds with
# nothing but `pkg-config --cflags --libs tiercache` and runs against the
# installed shared library, then links the installed static archive with
# `pkg-config --static` (so Libs.private must name every library that
# libtiercache.a needs) and runs again.
set -eu
# tests/build.sh's inner `make check` has its own install step.
[ -z "${TC_BUILD_SH_NESTED:-}" ] || { echo "nested: skipped"; exit 77; }
command -v pkg-config >/dev/null || { echo "no pkg-config: skipped"; exit 77; }
: "${CC:=cc}"
: "${MAKE:=make}"
builddir=$(cd "$top_builddir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/dest"

# The outer make's command line (TESTS=..., -j, its jobserver) is not ours.
(unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
 $MAKE -C "$builddir" install DESTDIR="$dest") >"$tmp/install.out" 2>&1 ||
  { tail -n 20 "$tmp/install.out"; echo "FAIL: make install"; exit 1; }

pc=$(find "$dest" -name tiercache.pc)
[ -n "$pc" ] || { echo "FAIL: no tiercache.pc installed"; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir") # pkgconfigdir is $(libdir)/pkgconfig
hdr=$(find "$dest" -name tiercache.h)
[ "$(find "$dest" -name '*.h' | wc -l)" -eq 1 ] && [ -n "$hdr" ] ||
  { find "$dest" -name '*.h'; echo "FAIL: not exactly tiercache.h installed"; exit 1; }
for f in libtiercache.so libtiercache.a; do
  [ -e "$libdir/$f" ] || { echo "FAIL: no $f in $libdir"; exit 1; }
done

# The .pc file names the configured prefix; the sysroot maps its -I and
# -L onto the DESTDIR copy. Only that .pc file is searched.
pkgc() {
  PKG_CONFIG_LIBDIR="$pcdir" PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR="$dest" \
    pkg-config "$@" tiercache
}
version=$(pkgc --modversion)

cat >"$tmp/app.c" <<'APP'
#include <stdio.h>
#include <tiercache.h>

int main(void)
{
    tc_options o;
    tc_cache *c;
    tc_value *v;
    int rc;

    tc_options_init(&o);
    if (tc_options_from_url(&o, "none") != TC_OK || tc_open(&c, &o) != TC_OK)
        return 1;
    printf("set %s\n", tc_err_name(tc_set(c, "greeting", "hello", 5, 60000)));
    rc = tc_get(c, "greeting", &v);
    printf("get %s", tc_err_name(rc));
    if (rc == TC_OK)
        printf(" %.*s", (int)tc_value_len(v), (const char *)tc_value_data(v));
    printf("\n");
    tc_value_release(v);
    printf("get %s\n", tc_err_name(tc_get(c, "nothing", &v)));
    printf("version %s\n", tc_version_string());
    tc_close(c);
    return 0;
}
APP
printf 'set TC_OK\nget TC_OK hello\nget TC_MISS\nversion %s\n' "$version" \
  >"$tmp/expected"

# run <name>: runs $tmp/<name>, compares its output with the expected one.
run() {
  rc=0
  "$tmp/$1" >"$tmp/$1.out" || rc=$?
  [ $rc -eq 0 ] ||
    { cat "$tmp/$1.out"; echo "FAIL: the $1 consumer exited $rc"; exit 1; }
  diff -u "$tmp/expected" "$tmp/$1.out" ||
    { echo "FAIL: the $1 consumer's output (- expected, + got)"; exit 1; }
}
# Which libraries a program loads by name.
needed() {
  command -v readelf >/dev/null || return 0
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

# 1. Shared. TC_SAN_LDFLAGS: a sanitizer build's library needs its runtime.
# shellcheck disable=SC2046,SC2086
$CC ${TC_SAN_LDFLAGS:-} -o "$tmp/shared" "$tmp/app.c" $(pkgc --cflags --libs) ||
  { echo "FAIL: linking with pkg-config --cflags --libs"; exit 1; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" run shared
echo "ok: shared: $(pkgc --cflags --libs)"

# 2. Static: with the shared library gone, -ltiercache is the archive.
# Without a sanitizer the whole program is static, so a library missing
# from Libs.private (or one of its own dependencies) fails the link;
# a sanitizer's runtime cannot be linked so, and libc stays shared.
rm -f "$libdir"/libtiercache.so*
static=-static
[ -z "${TC_SAN_LDFLAGS:-}" ] || static=
# shellcheck disable=SC2046,SC2086
$CC ${TC_SAN_LDFLAGS:-} $static -o "$tmp/static" "$tmp/app.c" \
    $(pkgc --static --cflags --libs) 2>"$tmp/static.err" ||
  { cat "$tmp/static.err"; echo "FAIL: linking with pkg-config --static"; exit 1; }
if needed "$tmp/static" | grep -q tiercache; then
  echo "FAIL: the static consumer loads a shared libtiercache"; exit 1
fi
run static
echo "ok: static${static:+ (-static)}: $(pkgc --static --libs)"
