#!/bin/sh
# The manual pages and the bash completion say what the programs do:
# every option --help lists is in the program's page, and every option the
# page lists is in --help; iobound-compare's completion offers every one.
# Every style and kind the program lists (iobound-compare --list-styles,
# --list-kinds: the library's registry) is in its page and its completion,
# and every kind iobound-server takes is in its page: they are the only
# places that name them by hand. scdoc, when found, must accept each page.
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
# The styles and kinds, from the registry, against the text written by
# hand: the page's paragraph on the styles and its --work, the
# completion's words after --styles and --work (offered by bash itself
# where it is found, else read from the file).
compare="$build/examples/iobound-compare"
page="$src/docs/man/iobound-compare.1.scd"
"$compare" --list-styles >"$tmp/styles" && [ -s "$tmp/styles" ] ||
  fail "iobound-compare --list-styles lists nothing"
"$compare" --list-kinds >"$tmp/kinds" && [ -s "$tmp/kinds" ] ||
  fail "iobound-compare --list-kinds lists nothing"
sed -n '/^The styles are/,/^$/p' "$page" >"$tmp/page-styles"
sed -n '/^\*--work\*/,/^$/p' "$page" >"$tmp/page-kinds"
offered() { # the completion's words for "iobound-compare OPTION "
  if command -v bash >/dev/null; then
    bash -c '. "$1"; COMP_WORDS=(iobound-compare "$2" ""); COMP_CWORD=2;
      _iobound_compare; printf "%s\n" "${COMPREPLY[@]}"' sh "$completion" "$1"
  else
    tr -c 'a-z\n' ' ' <"$completion" | tr ' ' '\n'
  fi
}
offered --styles >"$tmp/offer-styles"
offered --work >"$tmp/offer-kinds"
# Each name of $tmp/WHAT (a NOUN) in the page's PART on them and in what
# the completion offers after OPTION.
check_names() { # WHAT NOUN OPTION PART
  while read -r name; do
    grep -q "\*$name\*" "$tmp/page-$1" ||
      fail "iobound-compare.1.scd does not name the $2 '$name' in $4"
    grep -qx "$name" "$tmp/offer-$1" ||
      fail "the completion does not offer the $2 '$name' after $3"
  done <"$tmp/$1"
  echo "iobound-compare: $(wc -l <"$tmp/$1") $1, each in the page and" \
    "the completion"
}
check_names styles style --styles "the paragraph on the styles"
check_names kinds kind --work "*--work*"
# iobound-server's kinds, as its --help lists them: "[work=wait|cpu]".
"$build/examples/iobound-server" --help |
  sed -n 's/.*\[work=\([^]]*\)\].*/\1/p' | tr '|' '\n' >"$tmp/server-kinds"
[ -s "$tmp/server-kinds" ] || fail "iobound-server --help names no work="
grep '^\*run\*' "$src/docs/man/iobound-server.1.scd" >"$tmp/server-run"
while read -r name; do
  grep -Eq "(\*|=)$name\*" "$tmp/server-run" ||
    fail "iobound-server.1.scd's run request lacks work=$name"
done <"$tmp/server-kinds"
echo "man pages and completion: ok"
