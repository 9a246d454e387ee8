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
# The .pc must describe the prefix, not the trees it was built from.
grep -q -e "$src" -e "$tmp/build" "$prefix/lib/pkgconfig/iobound.pc" &&
  fail "iobound.pc names a build or source directory"

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
