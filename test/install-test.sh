#!/bin/sh
# iobound as a project outside this tree meets it:
#  (a) installed into a prefix, then a program built with
#      `pkg-config --cflags --libs iobound` and run;
#  (b) as a Meson subproject: test/subproject-user with this tree in its
#      subprojects/iobound, configured with --wrap-mode=forcefallback.
# Usage: install-test.sh BUILD_DIR SOURCE_DIR
# Everything it writes goes into one mktemp directory, removed at the end.
# Exit 77 (skipped) when pkg-config, meson, ninja or a C compiler is missing.
build=$1
src=$2
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

[ -f "$src/meson.build" ] || fail "usage: install-test.sh BUILD_DIR SOURCE_DIR"
cc=${CC:-cc}
for tool in pkg-config meson ninja "$cc"; do
  command -v "$tool" >/dev/null || skip "$tool is missing"
done

tmp=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
# Meson writes nothing outside its build directory; keep any tool's cache
# out of the home directory too.
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache"
mkdir -p "$HOME"

# Run a command quietly; on failure show its output and fail.
quietly() {
  "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "$*"; }
}

# The version Meson configured this build with, to compare with the
# installed one.
version=$(meson introspect "$build" --projectinfo |
  sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -1)
[ -n "$version" ] || fail "no version from meson introspect $build"

# ---- (a) installed, found with pkg-config --------------------------------
prefix="$tmp/prefix"
quietly meson setup "$tmp/build" "$src" --prefix="$prefix" --libdir=lib \
  --buildtype=plain -Dtests=disabled -Dexamples=disabled
quietly ninja -C "$tmp/build"
quietly meson install -C "$tmp/build" --no-rebuild

for f in include/iobound.h lib/libiobound.so lib/pkgconfig/iobound.pc; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
# iobound-pg, PostgreSQL's kind, is a library of its own, built when libpq
# is found: then it is installed with its header and .pc, else none of it.
pg_files="include/iobound/pg.h lib/libiobound-pg.so lib/pkgconfig/iobound-pg.pc"
if meson introspect "$tmp/build" --targets | grep -q '"name": "iobound-pg"'; then
  with_pg=yes
  for f in $pg_files; do
    [ -e "$prefix/$f" ] || fail "built with libpq, but not installed: $f"
  done
else
  with_pg=no
  for f in $pg_files; do
    [ -e "$prefix/$f" ] && fail "built without libpq, yet installed: $f"
  done
fi
# The .pc files must describe the prefix, not the trees they were built
# from; and only iobound-pg may bring libpq.
for pc in "$prefix"/lib/pkgconfig/*.pc; do
  grep -q -e "$src" -e "$tmp/build" "$pc" &&
    fail "$(basename "$pc") names a build or source directory"
done
grep -qi libpq "$prefix/lib/pkgconfig/iobound.pc" &&
  fail "iobound.pc mentions libpq: every user would link it"
grep -qi libcurl "$prefix/lib/pkgconfig/iobound.pc" &&
  fail "iobound.pc mentions libcurl: every user would link it"
# iobound-http likewise, built when libcurl is found.
http_files="include/iobound/http.h lib/libiobound-http.so lib/pkgconfig/iobound-http.pc"
if meson introspect "$tmp/build" --targets | grep -q '"name": "iobound-http"'; then
  for f in $http_files; do
    [ -e "$prefix/$f" ] || fail "built with libcurl, but not installed: $f"
  done
else
  for f in $http_files; do
    [ -e "$prefix/$f" ] && fail "built without libcurl, yet installed: $f"
  done
fi

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion iobound)" = "$version" ] ||
  fail "pkg-config says $(pkg-config --modversion iobound), not $version"
pkg-config --print-requires iobound | grep -q '^libuv' ||
  fail "iobound.pc does not require libuv"

# shellcheck disable=SC2046
"$cc" -o "$tmp/user" "$src/test/subproject-user/main.c" \
  $(pkg-config --cflags --libs iobound) 2>"$tmp/log" ||
  { cat "$tmp/log"; fail "cannot build against the installed iobound"; }
out=$(LD_LIBRARY_PATH="$prefix/lib" "$tmp/user") || fail "installed: $out"
echo "installed: $out"
echo "$out" | grep -q "^iobound $version: 10 waits of 20 ms took" ||
  fail "installed: unexpected output"
# A program that runs no query does not load libpq.
if command -v ldd >/dev/null; then
  LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/user" | grep -q libpq &&
    fail "a program built with iobound alone loads libpq"
  LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/user" | grep -q libcurl &&
    fail "a program built with iobound alone loads libcurl"
fi

# ---- (a') iobound-pg, installed, found with pkg-config --------------------
if [ "$with_pg" = yes ]; then
  [ "$(pkg-config --modversion iobound-pg)" = "$version" ] ||
    fail "pkg-config says iobound-pg $(pkg-config --modversion iobound-pg)"
  pkg-config --print-requires iobound-pg | grep -q '^iobound' ||
    fail "iobound-pg.pc does not require iobound"
  pkg-config --print-requires-private iobound-pg | grep -q '^libpq' ||
    fail "iobound-pg.pc does not require libpq privately"
  cat >"$tmp/pg-user.c" <<'EOF'
#include <stdio.h>
#include <iobound/pg.h>

int main(void) {
  iob_pg_target *target;
  int err = iob_pg_target_create(&target, "host=/nowhere", "SELECT 1");
  if (err != 0) {
    fprintf(stderr, "iob_pg_target_create: %s\n", iob_strerror(err));
    return 1;
  }
  iob_pg_target_destroy(target);
  printf("iobound-pg: kind %s\n", iob_kind_pg.name);
  return 0;
}
EOF
  # shellcheck disable=SC2046
  "$cc" -o "$tmp/pg-user" "$tmp/pg-user.c" \
    $(pkg-config --cflags --libs iobound-pg) 2>"$tmp/log" ||
    { cat "$tmp/log"; fail "cannot build against the installed iobound-pg"; }
  out=$(LD_LIBRARY_PATH="$prefix/lib" "$tmp/pg-user") ||
    fail "installed iobound-pg: $out"
  echo "installed: $out"
  [ "$out" = "iobound-pg: kind pg" ] || fail "iobound-pg: unexpected output"
else
  echo "installed: built without libpq, so no iobound-pg to try"
fi

# Not a failure, but worth knowing: uv.h, and so iobound.h, needs POSIX
# feature macros under strict ISO C, and neither iobound.pc nor the Meson
# dependency passes the -D_POSIX_C_SOURCE iobound builds itself with.
# shellcheck disable=SC2046
"$cc" -std=c11 -fsyntax-only $(pkg-config --cflags iobound) \
  "$src/test/subproject-user/main.c" >/dev/null 2>&1 ||
  echo "note: with -std=c11, iobound.h needs -D_POSIX_C_SOURCE=200809L"

# ---- (b) as a Meson subproject -------------------------------------------
unset PKG_CONFIG_PATH
user="$tmp/user-project"
mkdir -p "$user/subprojects"
cp "$src/test/subproject-user/meson.build" "$src/test/subproject-user/main.c" \
  "$user/"
ln -s "$(cd "$src" && pwd)" "$user/subprojects/iobound"
quietly meson setup "$tmp/user-build" "$user" --wrap-mode=forcefallback \
  --buildtype=plain
grep -q "Dependency iobound found: YES $version (overridden)" \
  "$tmp/user-build/meson-logs/meson-log.txt" ||
  fail "dependency('iobound') did not fall back to the subproject"
quietly ninja -C "$tmp/user-build"
out=$("$tmp/user-build/iobound-user") || fail "subproject: $out"
echo "subproject: $out"
echo "$out" | grep -q "^iobound $version: 10 waits of 20 ms took" ||
  fail "subproject: unexpected output"
echo "install and subproject: ok"
