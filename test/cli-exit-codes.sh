#!/bin/sh
# iobound-compare as a user meets it: bad arguments exit 64 with a message
# and a usage hint on stderr and nothing on stdout; help and version exit 0.
exe=$1
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for args in "--count 0" "--duration -5" "--styles nope" "--frobnicate" "--count"; do
  # shellcheck disable=SC2086
  "$exe" $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 64 ] || fail "'$args' exited $rc, not 64"
  [ -s "$tmp/out" ] && fail "'$args' printed on stdout"
  grep -q "^iobound-compare: " "$tmp/err" || fail "'$args': no message"
  grep -q -- "--help" "$tmp/err" || fail "'$args': no usage hint"
done
"$exe" --help | grep -q "^Usage: iobound-compare" || fail "--help"
"$exe" --version | grep -q "^iobound-compare [0-9]" || fail "--version"
"$exe" --count 3 --duration 10 >"$tmp/out" || fail "a small run failed"
for style in sequential loop pool; do
  grep -q "^$style " "$tmp/out" || fail "no row for $style"
done
echo "cli exit codes: ok"
