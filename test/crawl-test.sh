#!/bin/sh
# iobound-crawl against nginx (nginx-test.sh starts it and serves
# $IOB_TEST_NGINX_DIR/site) and the slow service told to fail: every page
# of a small site once, links absolute, relative, with dots, a query and
# a fragment followed, other hosts and schemes not; a 404 fails the crawl
# (exit 1); --max, --rate and --limit hold; --retries turns a service
# failing half its answers into a page fetched; bad arguments exit 64.
#   crawl-test.sh CRAWL SLOW-SERVICE
crawl=$1 slow=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -n "$IOB_TEST_NGINX_URL" ] || { echo "no nginx: skipped" >&2; exit 77; }
tmp=$(mktemp -d) || exit 1
. "$(dirname "$0")/slow-service.sh"
trap 'slow_stop; rm -rf "$tmp"' EXIT
site=$IOB_TEST_NGINX_DIR/site
base=$IOB_TEST_NGINX_URL/site
mkdir -p "$site/c" || exit 1
cat >"$site/index.html" <<HTML
<a href="a.html">a</a> <a HREF='/site/b.html'>b</a>
<a href="$base/c/d.html#part">d</a> <a href="c/../a.html">a again</a>
<a href="#top">top</a> <a href="mailto:x@example.com">mail</a>
<a href="http://example.invalid/x">elsewhere</a> <a href=unquoted.html>no</a>
HTML
echo '<a href="index.html">home</a> <a href="chain/0.html">chain</a>' \
  >"$site/a.html"
echo '<a href="./c/d.html?q=1">d, asked</a>' >"$site/b.html"
echo '<a href="../e.html">e</a> <a href="./f.html">f</a>' >"$site/c/d.html"
echo 'the end' >"$site/e.html"
echo 'f' >"$site/c/f.html"
mkdir -p "$site/chain"
for i in $(seq 0 29); do
  echo "<a href=\"$((i + 1)).html\">next</a>" >"$site/chain/$i.html"
done
chmod -R a+rX "$site"

# The whole site: 8 pages and the chain of 30 (the 31st is a 404).
"$crawl" --start "$base/index.html" --limit 4 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "a site with a 404 exited $rc: $(cat "$tmp/err")"
tail -n 1 "$tmp/out" | grep -Eq '^pages 38, failed 1, retries 0, ms [0-9]+$' ||
  fail "the last line: $(tail -n 1 "$tmp/out")"
for page in index.html a.html b.html c/d.html "c/d.html?q=1" e.html \
  c/f.html chain/0.html chain/29.html; do
  grep -qx "200 [0-9]* 1 $base/$page" "$tmp/out" || fail "no $page: $(cat "$tmp/out")"
done
grep -qx "404 [0-9]* 1 $base/chain/30.html" "$tmp/out" || fail "no 404 line"
[ "$(grep -c " $base/a.html\$" "$tmp/out")" -eq 1 ] || fail "a.html twice"
grep -Eq "example|mailto|unquoted|#" "$tmp/out" && fail "a link not to follow"

# --max: the first N pages only, all fetched: exit 0.
"$crawl" --start "$base/index.html" --max 5 >"$tmp/out" 2>&1 ||
  fail "--max 5: $(cat "$tmp/out")"
[ "$(grep -c '^200 ' "$tmp/out")" -eq 5 ] || fail "--max 5: $(cat "$tmp/out")"

# --rate 40: 9 pages take at least 8 gaps of 25 ms.
"$crawl" --start "$base/chain/0.html" --max 9 --rate 40 >"$tmp/out" 2>&1 ||
  fail "--rate: $(cat "$tmp/out")"
ms=$(sed -n 's/^pages 9, failed 0, retries 0, ms \([0-9]*\)$/\1/p' "$tmp/out")
[ -n "$ms" ] && [ "$ms" -ge 190 ] || fail "--rate 40: $(tail -n 1 "$tmp/out")"

# --retries against a service failing half its answers: fetched in the
# end (a page of the slow service has no links).
slow_start "$slow" "$tmp/slow" --fail 0.5 --seed 3 ||
  fail "the slow service did not start"
addr=$slow_addr
ok=0
for i in $(seq 10); do
  "$crawl" --start "http://$addr/wait/$i" --retries 20 --hedge 500 \
    >"$tmp/out" 2>&1 && ok=$((ok + 1))
  grep -Eq "^200 [0-9]+ [0-9]+ http://$addr/wait/$i\$" "$tmp/out" ||
    fail "--retries: $(cat "$tmp/out")"
done
[ "$ok" -eq 10 ] || fail "--retries 20: $ok of 10 fetched"
"$crawl" --start "http://$addr/wait/1" >"$tmp/out" 2>&1
grep -q "retries 0" "$tmp/out" || fail "no --retries, yet retries"

# Bad arguments: exit 64, a message and a hint, nothing on stdout.
for args in "" "--start ftp://x/" "--start http://h/ --max 0" \
  "--start http://h/ --limit x" "--start http://h/ --rate 0" \
  "--start http://h/ --retries 100" "--start http://h/ --hedge 0" \
  "--start http://h/ --bogus" "--start"; do
  # shellcheck disable=SC2086
  "$crawl" $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 64 ] || fail "'$args' exited $rc, not 64"
  [ -s "$tmp/out" ] && fail "'$args' printed on stdout"
  grep -q "^iobound-crawl: " "$tmp/err" || fail "'$args': no message"
  grep -q -- "--help" "$tmp/err" || fail "'$args': no hint"
done
"$crawl" --help | grep -q -- "--start URL" || fail "--help"
echo "crawl: ok"
