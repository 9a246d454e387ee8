#!/bin/sh
# iobound-compare as a user meets it: bad arguments exit 64 with a message
# and a usage hint on stderr and nothing on stdout; results go to stdout in
# each format; progress goes to stderr, and only when asked or on a terminal.
exe=$1
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for args in "--count 0" "--duration -5" "--styles nope" "--frobnicate" \
            "--count" "--work user" "--format yaml" "--progress maybe" \
            "--pool-size 2000" "--limit x" "--work tcp --target nohost:80" \
            "--work tcp --target 127.0.0.1" "--target 127.0.0.1:80" \
            "--work pg" "--pg dbname=x" "--work tcp --pg dbname=x" \
            "--count 100000000 --styles threads"; do
  # shellcheck disable=SC2086
  "$exe" $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 64 ] || fail "'$args' exited $rc, not 64"
  [ -s "$tmp/out" ] && fail "'$args' printed on stdout"
  grep -q "^iobound-compare: " "$tmp/err" || fail "'$args': no message"
  grep -q -- "--help" "$tmp/err" || fail "'$args': no usage hint"
done
grep -q -- "--limit" "$tmp/err" || fail "too many threads: no --limit hint"

# What is echoed of an argument never reaches the terminal raw: an escape
# sequence is shown as text, not obeyed.
esc=$(printf '12\033[31mX')
"$exe" --count "$esc" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 64 ] || fail "a control byte in --count: not a usage error"
grep -q "$(printf '\033')" "$tmp/err" && fail "an escape byte echoed raw"
grep -q '12\\x1b\[31mX' "$tmp/err" || fail "the argument not shown escaped"

"$exe" --help | grep -q "^Usage: iobound-compare" || fail "--help"
"$exe" --version | grep -q "^iobound-compare [0-9]" || fail "--version"

# A table with a row per style, and the sentence that explains it.
"$exe" --count 3 --duration 10 >"$tmp/out" 2>"$tmp/err" || fail "table run"
for style in sequential loop pool threads workers; do
  grep -q "^$style " "$tmp/out" || fail "no row for $style"
done
grep -q "style was fastest" "$tmp/out" || fail "no verdict sentence"
# stderr is a file here, not a terminal: no progress line.
[ -s "$tmp/err" ] && fail "progress shown on a non-terminal"

"$exe" --count 3 --duration 300 --styles loop --progress always \
  >"$tmp/out" 2>"$tmp/err" || fail "progress run"
grep -q "of 3 done" "$tmp/err" || fail "--progress always showed nothing"
grep -q "done" "$tmp/out" && fail "progress leaked onto stdout"

"$exe" -q --count 2 --duration 1 --styles loop,pool >"$tmp/out" || fail "-q"
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "-q printed more than the table"

"$exe" --format csv --count 2 --duration 1 --work cpu >"$tmp/out" || fail csv
head -1 "$tmp/out" | grep -q "^style,elapsed_ms,speedup" || fail "csv header"
[ "$(wc -l <"$tmp/out")" -eq 7 ] || fail "csv rows"

"$exe" --format json --count 4 --duration 5 --limit 2 --pool-size 3 \
  >"$tmp/out" || fail "json run"
if command -v python3 >/dev/null; then
  python3 - "$tmp/out" <<'PY' || fail "json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == 4 and d["limit"] == 2 and d["pool_size"] == 3, d
assert d["work"] == "wait", d
assert [s["style"] for s in d["styles"]] == ["sequential", "loop", "pool", "threads",
                                         "workers", "loops"]
for s in d["styles"]:
    # The keys of cli_json_report(), which iobound-server writes too.
    for k in ("style", "work", "count", "duration_ms", "limit", "timeout_ms",
              "elapsed_ms", "speedup", "peak_in_flight", "threads",
              "workers_used", "cpu_ms", "failed", "status", "max_rss_kib"):
        assert k in s, k
    assert s["work"] == "wait" and s["status"] == "OK", s
    assert s["peak_in_flight"] <= 2, s
PY
  # The kind's own name, whatever it is.
  "$exe" --format json -q --work tcp --count 2 --duration 5 --styles loop \
    >"$tmp/out" || fail "json tcp run"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1]));
assert d["work"] == "tcp" and d["styles"][0]["work"] == "tcp", d' \
    "$tmp/out" || fail "json tcp: work is not tcp"
fi
# Timelines: a chart under the table, an SVG and a trace that parse.
"$exe" --count 3 --duration 5 --styles loop,pool --timeline \
  --svg "$tmp/t.svg" --trace "$tmp/t.json" >"$tmp/out" || fail "timelines"
grep -q "time (ms)" "$tmp/out" || fail "--timeline printed no chart"
grep -q "<svg" "$tmp/t.svg" || fail "--svg wrote no SVG"
if command -v xmllint >/dev/null; then
  xmllint --noout "$tmp/t.svg" || fail "the SVG is not valid XML"
fi
if command -v python3 >/dev/null; then
  python3 -m json.tool "$tmp/t.json" >/dev/null || fail "the trace is not JSON"
fi
# An output that cannot be written is found before anything runs: 73.
start=$(date +%s)
"$exe" --count 2 --duration 3000 --svg /nonexistent/dir/t.svg \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 73 ] || fail "unwritable --svg exited $rc, not 73"
grep -q "cannot write '/nonexistent/dir/t.svg'" "$tmp/err" || fail "no message"
[ $(( $(date +%s) - start )) -lt 3 ] || fail "it ran before finding the bad path"
"$exe" --trace= >"$tmp/out" 2>"$tmp/err"
[ $? -eq 64 ] || fail "an empty --trace is not a usage error"

# Real I/O: the bundled slow service, started for the run and stopped.
"$exe" --work tcp --count 5 --duration 50 >"$tmp/out" 2>"$tmp/err" ||
  fail "--work tcp exited $?: $(cat "$tmp/err")"
grep -q "^loop " "$tmp/out" || fail "--work tcp: no row for loop"
grep -q "requests over TCP" "$tmp/out" || fail "--work tcp: no title"
# Nothing listens: every operation fails, the run says why and exits 1.
"$exe" --work tcp --target 127.0.0.1:1 --count 2 --styles loop,threads \
  >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "a refused target did not exit 1"
grep -q "2 of 2 operations failed.*ECONNREFUSED" "$tmp/err" ||
  fail "no word on refused connections: $(cat "$tmp/err")"
# Out of descriptors: a clear message naming the limit.
(ulimit -n 40 && "$exe" --work tcp --count 100 --duration 100 \
  --styles loop >"$tmp/out" 2>"$tmp/err")
[ $? -eq 1 ] || fail "out of descriptors did not exit 1"
grep -q "out of file descriptors: the limit is 40 (ulimit -n).*--limit" \
  "$tmp/err" || fail "no word on the descriptor limit: $(cat "$tmp/err")"
# A connection string libpq cannot parse is a bad argument too (or, built
# without iobound-pg, a run that cannot be made).
"$exe" --work pg --pg bogus >"$tmp/out" 2>"$tmp/err"
rc=$?
if grep -q "built without PostgreSQL support" "$tmp/err"; then
  [ $rc -eq 1 ] || fail "--work pg without iobound-pg exited $rc"
else
  [ $rc -eq 64 ] || fail "--pg bogus exited $rc, not 64"
  grep -q -- "--help" "$tmp/err" || fail "--pg bogus: no usage hint"
fi
echo "cli exit codes: ok"
