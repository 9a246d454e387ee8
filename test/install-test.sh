#!/bin/sh
# iobound as a project outside this tree meets it:
#  (a) installed into a prefix, then a program built with
#      `pkg-config --cflags --libs iobound` and run;
#      The installed programs must start from the prefix as they are, with
#      no LD_LIBRARY_PATH and no ldconfig (an install rpath).
#  (b) as a Meson subproject: test/subproject-user with this tree in its
#      subprojects/iobound, configured with --wrap-mode=forcefallback and
#      default_library=static: linked statically, and nothing of iobound's
#      installed with the parent.
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
  --buildtype=plain -Dtests=disabled
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

# The programs, run from the prefix as a user would, after nothing but
# the install.
for p in iobound-compare iobound-server iobound-slow-service \
  iobound-starvation; do
  [ -x "$prefix/bin/$p" ] || fail "not installed: bin/$p"
done
out=$(env -u LD_LIBRARY_PATH "$prefix/bin/iobound-compare" --version 2>&1) ||
  fail "the installed iobound-compare does not start: $out"
echo "$out" | grep -q "$version" || fail "installed --version: $out"
env -u LD_LIBRARY_PATH "$prefix/bin/iobound-compare" -q --count 2 \
  --duration 1 --styles loop,loops >"$tmp/log" 2>&1 ||
  { cat "$tmp/log"; fail "the installed iobound-compare cannot run"; }
env -u LD_LIBRARY_PATH "$prefix/bin/iobound-server" --help >/dev/null 2>&1 ||
  fail "the installed iobound-server does not start"
if command -v ldd >/dev/null; then
  env -u LD_LIBRARY_PATH ldd "$prefix/bin/iobound-compare" |
    grep -q "libiobound.so.* => $prefix/lib/" ||
    fail "the installed iobound-compare does not load the prefix's library"
fi
echo "installed programs: $out"
# Their manual pages (built when scdoc is found) and the completion.
[ -f "$prefix/share/bash-completion/completions/iobound-compare" ] ||
  fail "not installed: the bash completion of iobound-compare"
if command -v scdoc >/dev/null; then
  for p in iobound-compare iobound-server iobound-slow-service; do
    [ -f "$prefix/share/man/man1/$p.1" ] || fail "not installed: man page $p.1"
  done
  if command -v man >/dev/null; then
    MANPATH="$prefix/share/man" man iobound-compare 2>/dev/null |
      grep -q -- "--cpu-us" || fail "man iobound-compare: no --cpu-us"
  fi
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

# Under strict ISO C, uv.h (and so iobound.h) needs POSIX's feature
# macros: iobound.h says how, instead of an error deep inside uv.h. The
# define, or gnu11, is enough.
# shellcheck disable=SC2046
"$cc" -std=c11 -fsyntax-only $(pkg-config --cflags iobound) \
  "$src/test/subproject-user/main.c" >"$tmp/log" 2>&1 &&
  fail "-std=c11 without POSIX compiled: uv.h changed, or the check did"
grep -q "compile with -D_POSIX_C_SOURCE=200809L" "$tmp/log" ||
  { cat "$tmp/log"; fail "-std=c11: no clear error from iobound.h"; }
for flags in "-std=c11 -D_POSIX_C_SOURCE=200809L" -std=gnu11; do
  # shellcheck disable=SC2046,SC2086
  "$cc" $flags -fsyntax-only $(pkg-config --cflags iobound) \
    "$src/test/subproject-user/main.c" >"$tmp/log" 2>&1 ||
    { cat "$tmp/log"; fail "$flags: iobound.h does not compile"; }
done

# ---- (b) as a Meson subproject -------------------------------------------
unset PKG_CONFIG_PATH
user="$tmp/user-project"
mkdir -p "$user/subprojects"
cp "$src/test/subproject-user/meson.build" "$src/test/subproject-user/main.c" \
  "$user/"
ln -s "$(cd "$src" && pwd)" "$user/subprojects/iobound"
quietly meson setup "$tmp/user-build" "$user" --wrap-mode=forcefallback \
  --buildtype=plain -Ddefault_library=static --prefix="$tmp/user-prefix"
grep -q "Dependency iobound found: YES $version (overridden)" \
  "$tmp/user-build/meson-logs/meson-log.txt" ||
  fail "dependency('iobound') did not fall back to the subproject"
quietly ninja -C "$tmp/user-build"
out=$("$tmp/user-build/iobound-user") || fail "subproject: $out"
echo "subproject: $out"
echo "$out" | grep -q "^iobound $version: 10 waits of 20 ms took" ||
  fail "subproject: unexpected output"
# default_library=static: the program carries iobound, and needs no
# libiobound.so; the parent's install holds nothing of iobound's.
if command -v ldd >/dev/null; then
  ldd "$tmp/user-build/iobound-user" | grep -q libiobound &&
    fail "subproject, default_library=static: linked the shared library"
fi
quietly meson install -C "$tmp/user-build" --no-rebuild
if [ -d "$tmp/user-prefix" ]; then
  found=$(find "$tmp/user-prefix" -name '*iobound*' | head -3)
  [ -z "$found" ] || fail "the parent's install holds iobound's files: $found"
fi
echo "install and subproject: ok"
