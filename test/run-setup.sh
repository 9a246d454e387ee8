#!/bin/sh
# ./run's set-up as a newcomer meets it (README: ./run demo, then
# ./run test): a build directory set up while an optional dependency was
# missing (here libcurl, hidden from pkg-config) is set up again once it
# is there, and then builds what needs it; set up again only when what is
# there changed.
#   run-setup.sh SOURCE_DIR
# Exit 77 (skipped) without libcurl's .pc, or without meson or pkg-config.
src=$1
fail() { echo "FAIL: $*"; exit 1; }
for tool in meson pkg-config; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
pkg-config --exists libcurl || { echo "SKIP: no libcurl to hide"; exit 77; }
tmp=$(mktemp -d) || fail mktemp
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache"

# Every .pc that pkg-config finds, but libcurl's.
mkdir "$tmp/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' ') \
         $(echo "${PKG_CONFIG_PATH:-}" | tr ':' ' '); do
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    n=$(basename "$f")
    [ "$n" = libcurl.pc ] || [ -e "$tmp/pc/$n" ] || ln -s "$f" "$tmp/pc/$n"
  done
done

has_http() {
  meson introspect "$tmp/b" --targets | grep -q '"name": "iobound-http"'
}
quick="-Dtests=disabled -Dexamples=disabled -Dman=disabled -Dfuzzers=disabled"

# shellcheck disable=SC2086
PKG_CONFIG_LIBDIR=$tmp/pc "$src/run" setup "$tmp/b" $quick \
  >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "the first set-up"; }
has_http && fail "libcurl hidden, yet iobound-http is built"

"$src/run" setup "$tmp/b" >"$tmp/out" 2>&1 ||
  { cat "$tmp/out"; fail "the second set-up"; }
grep -q "setting it up again" "$tmp/out" || fail "not set up again: $(cat "$tmp/out")"
has_http || fail "libcurl is here, and iobound-http is still not built"

"$src/run" setup "$tmp/b" >"$tmp/out" 2>&1 || fail "the third set-up"
grep -q "setting it up again" "$tmp/out" && fail "set up again for nothing"
echo "run setup: set up again once libcurl appeared, and only then"
