#!/bin/sh
# The manual pages and the bash completion say what the programs do:
# every option --help lists is in the program's page, and every option the
# page lists is in --help; iobound-compare's completion offers every one.
# scdoc, when found, must accept each page.
# Usage: man-pages.sh SOURCE_DIR BUILD_DIR
src=$1
build=$2
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# The long options a text names: "--word" at the start of a line of --help,
# or "*--word*" in a page's OPTIONS; -q and -h by their long names.
help_options() {
  "$1" --help | sed -n 's/^  \(-[a-z], \)\{0,1\}\(--[a-z-]*\).*/\2/p' | sort -u
}
page_options() {
  sed -n '/^# OPTIONS/,/^# /p' "$1" |
    sed -n 's/^\*\(-[a-z]\*, \*\)\{0,1\}\(--[a-z-]*\)\*.*/\2/p' | sort -u
}

for prog in iobound-compare iobound-server iobound-slow-service; do
  exe="$build/examples/$prog"
  page="$src/docs/man/$prog.1.scd"
  [ -x "$exe" ] || fail "no $exe"
  [ -f "$page" ] || fail "no manual page $page"
  help_options "$exe" >"$tmp/help"
  page_options "$page" >"$tmp/page"
  [ -s "$tmp/help" ] || fail "$prog --help lists no option"
  diff -u "$tmp/help" "$tmp/page" >"$tmp/diff" ||
    { cat "$tmp/diff"; fail "$prog: --help and its page list other options"; }
  if command -v scdoc >/dev/null; then
    scdoc <"$page" >"$tmp/$prog.1" 2>"$tmp/err" ||
      { cat "$tmp/err"; fail "scdoc refuses $page"; }
  fi
  echo "$prog: $(wc -l <"$tmp/help") options, the same in --help and the page"
done

completion="$src/docs/completion/iobound-compare.bash"
help_options "$build/examples/iobound-compare" | while read -r opt; do
  grep -q -- "$opt\b" "$completion" || { echo "$opt"; exit 1; }
done >"$tmp/missing" || fail "the completion lacks $(cat "$tmp/missing")"
if command -v bash >/dev/null; then
  # It loads, and completes "--wo" to --work and "--work m" to mixed.
  out=$(bash -c '. "$1"; COMP_WORDS=(iobound-compare --wo); COMP_CWORD=1;
    _iobound_compare; echo "${COMPREPLY[*]}"' sh "$completion") ||
    fail "the completion does not load"
  [ "$out" = "--work" ] || fail "'--wo' completes to '$out'"
  out=$(bash -c '. "$1"; COMP_WORDS=(iobound-compare --styles loop,po);
    COMP_CWORD=2; _iobound_compare; echo "${COMPREPLY[*]}"' sh "$completion")
  [ "$out" = "loop,pool" ] || fail "'--styles loop,po' completes to '$out'"
fi
echo "man pages and completion: ok"
