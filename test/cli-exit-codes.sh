#!/bin/sh
# iobound-compare as a user meets it: bad arguments exit 64 with a message
# and a usage hint on stderr and nothing on stdout; results go to stdout in
# each format; progress goes to stderr, and only when asked or on a terminal.
# Then iobound-slow-service's bad arguments (its fault options).
#   cli-exit-codes.sh IOBOUND-COMPARE IOBOUND-SLOW-SERVICE
exe=$1
slow=$2
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d) || exit 1
. "$(dirname "$0")/slow-service.sh"
trap 'slow_stop; rm -rf "$tmp"' EXIT

for args in "--count 0" "--duration -5" "--styles nope" "--frobnicate" \
            "--count" "--work user" "--format yaml" "--progress maybe" \
            "--pool-size 2000" "--limit x" "--work tcp --target nohost:80" \
            "--work tcp --target 127.0.0.1" "--target 127.0.0.1:80" \
            "--work pg" "--pg dbname=x" "--work tcp --pg dbname=x" \
            "--timeline --format json" "--timeline --format csv" \
            "--svg --count 3" "--trace -q" "--work file --dir --count" \
            "--work file --duration 5" "--cpu-us 5" "--work cpu --cpu-us 5" \
            "--loops 2 --styles loop" "--loops 0" "--loops 257" \
            "--work mixed --cpu-us 60000001" \
            "--styles loop," "--styles ,loop" "--styles loop,,pool" \
            "--styles loop,pool,loop" "--styles=" "--styles ," \
            "--svg $tmp/same --trace $tmp/same" \
            "--svg $tmp/same --trace $tmp/./same" \
            "--rate 0" "--rate x" "--rate 1e10" "--rate nan" "--burst 3" \
            "--rate 5 --burst 0" \
            "--retries 100" "--retries x" "--retries -1" "--backoff 10:100" \
            "--retries 2 --backoff 100:10" "--retries 2 --backoff 10" \
            "--retries 2 --backoff :5" "--retries 2 --backoff x:5" \
            "--hedge 0" "--hedge p0" "--hedge p100" "--hedge x" "--hedge p" \
            "--hedge 50 --timeout 50" \
            "--arrival-rate 0" "--arrival-rate 2e9" "--arrival-rate x" \
            "--for 2" "--arrivals poisson" "--arrival-rate 5 --seed 2" \
            "--arrival-rate 5 --count 10 --for 3" "--arrival-rate 0.1 --for 1" \
            "--arrival-rate 5,10 --trace $tmp/t.json" \
            "--count 100000000 --styles threads"; do
  # (the last, too many threads, is checked for its hint below)
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

# A list says what is wrong with it: an empty item, a style twice.
"$exe" --styles loop,pool, 2>&1 >/dev/null | grep -q "no trailing comma" ||
  fail "--styles loop,pool,: no reason"
"$exe" --styles loop,pool,loop 2>&1 >/dev/null |
  grep -q "each style once.*(loop twice)" || fail "--styles twice: no reason"
# One file by two names is one file: a hard link, as for the same path.
: >"$tmp/one"
ln "$tmp/one" "$tmp/other"
"$exe" --svg "$tmp/one" --trace "$tmp/other" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 64 ] || fail "--svg and --trace on one file by two names: not 64"
grep -q "are one file" "$tmp/err" || fail "one file twice: no reason"
grep -q -- "--help" "$tmp/err" || fail "one file twice: no usage hint"

# Nor does what is echoed of --url, of a --dir that does not exist, or of
# an operation's message that quotes --dir; and a URL the library would
# refuse is a usage error like any other, with its hint.
esc_url=$(printf 'http://127.0.0.1:1/\033[2J')
"$exe" --work http --url "$esc_url" --count 1 >"$tmp/out" 2>"$tmp/err"
[ $? -eq 64 ] || fail "a control byte in --url: not a usage error"
grep -q "$(printf '\033')" "$tmp/err" && fail "--url echoed raw"
grep -q '1/\\x1b\[2J' "$tmp/err" || fail "--url not shown escaped"
grep -q -- "--help" "$tmp/err" || fail "--url: no usage hint"
"$exe" --work file --dir "$tmp/$(printf 'no\033[2J')" --count 1 \
  --styles loop >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "a --dir that does not exist: not exit 1"
grep -q "$(printf '\033')" "$tmp/err" && fail "--dir echoed raw"
grep -q 'no\\x1b\[2J' "$tmp/err" || fail "--dir not shown escaped"
# /proc takes no new file: the operation fails, its message naming --dir.
if [ -d /proc/self ]; then
  ln -s /proc "$tmp/$(printf 'proc\033[2J')"
  "$exe" --work file --dir "$tmp/$(printf 'proc\033[2J')" --count 1 \
    --styles loop >"$tmp/out" 2>"$tmp/err"
  [ $? -eq 1 ] || fail "files that cannot be made: not exit 1"
  grep -q 'operations failed.*proc\\x1b\[2J' "$tmp/err" ||
    fail "the operation's message not shown escaped: $(cat -v "$tmp/err")"
  grep -q "$(printf '\033')" "$tmp/err" && fail "an operation's message raw"
fi

"$exe" --help | grep -q "^Usage: iobound-compare" || fail "--help"
"$exe" --version | grep -q "^iobound-compare [0-9]" || fail "--version"

# The library's styles, as the program lists them, one a line.
"$exe" --list-styles >"$tmp/styles" 2>"$tmp/err" || fail "--list-styles"
[ -s "$tmp/err" ] && fail "--list-styles wrote to stderr"
grep -qx loop "$tmp/styles" || fail "--list-styles lacks loop"
"$exe" --list-kinds >"$tmp/kinds" || fail "--list-kinds"
grep -qx wait "$tmp/kinds" || fail "--list-kinds lacks wait"
nstyles=$(wc -l <"$tmp/styles")

# A table with a row per style, and the sentence that explains it.
"$exe" --count 3 --duration 10 >"$tmp/out" 2>"$tmp/err" || fail "table run"
while read -r style; do
  grep -q "^$style " "$tmp/out" || fail "no row for $style"
done <"$tmp/styles"
grep -q "style was fastest" "$tmp/out" || fail "no verdict sentence"
# stderr is a file here, not a terminal: no progress line.
[ -s "$tmp/err" ] && fail "progress shown on a non-terminal"

# A progress line asked for by name is shown even with -q (which means
# "no progress" only unless asked); each rewrite covers the one before it
# with spaces, so a shorter line leaves nothing of a longer one behind.
"$exe" -q --progress always --count 4 --duration 300 \
  --styles sequential,loop >"$tmp/out" 2>"$tmp/err" || fail "-q --progress always"
grep -q "done" "$tmp/err" || fail "-q hid an explicit --progress always"
python3 - "$tmp/err" <<'PY' || fail "the progress line left stale characters"
import sys
parts = open(sys.argv[1]).read().split("\r")
for a, b in zip(parts, parts[1:]):
    if a.strip() and len(b) < len(a):
        sys.exit(f"{b!r} written over the longer {a!r}")
PY

# The chart takes the terminal's width (COLUMNS when stdout is no
# terminal), not always 80 columns.
COLUMNS=150 "$exe" --timeline --count 4 --duration 20 --styles loop \
  >"$tmp/out" || fail "--timeline"
awk 'length > 80 { wide = 1 } length > 150 { exit 1 } END { exit !wide }' \
  "$tmp/out" || fail "the chart did not take COLUMNS=150"

# Every operation failed (a port nothing listens on): the table is there,
# but no style is called fastest.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exe" --work tcp --target "127.0.0.1:$port" --count 2 --duration 1 \
  --styles loop,threads >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "every operation failed, yet not exit 1"
grep -q "^loop " "$tmp/out" || fail "all failed: the table is missing"
grep -q "fastest" "$tmp/out" && ! grep -q "none is called fastest" "$tmp/out" &&
  fail "all failed, yet a style was called fastest"
grep -q "ECONNREFUSED" "$tmp/err" || fail "all failed: no reason on stderr"

# A style that cannot run (64 loops whose 8 MiB stacks do not fit in the
# address space allowed) does not hide the others' results: they are
# printed, then why it could not run, and the exit status is 1.
# (A sanitizer's build cannot even start under such a limit: its shadow
# memory needs far more address space. Then this check is left out.)
if command -v prlimit >/dev/null &&
  prlimit --as=400000000 "$exe" --version >/dev/null 2>&1; then
  prlimit --as=400000000 "$exe" --count 64 --duration 1 --loops 64 \
    --styles loop,loops >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ $rc -eq 1 ] || fail "a style that could not run: exit $rc, not 1"
  grep -q "^loop " "$tmp/out" || fail "the loop style's results were lost"
  grep -q "the loops style could not run" "$tmp/err" ||
    fail "no word of the loops style ($(cat "$tmp/err"))"
fi

# A workers pool of 64 threads, for a user held to fewer, is refused before
# anything runs, with a smaller --limit to try. Needs root, to become
# nobody under a low RLIMIT_NPROC.
as_nobody() {
  setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"
}
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
  command -v prlimit >/dev/null && id nobody >/dev/null 2>&1 &&
  as_nobody "$exe" --version >/dev/null 2>&1; then
  # iob_threads_available() errs low: it counts every thread the system
  # runs against the limit. Twenty more than those, then. The tests
  # beside this one start and end threads meanwhile: when more than 44
  # ended between the count and the run, there was room; count again.
  for try in 1 2 3 4 5; do
    nproc=$(($(cut -d' ' -f4 /proc/loadavg | cut -d/ -f2) + 20))
    as_nobody prlimit --nproc=$nproc "$exe" --count 64 --duration 1 \
      --limit 64 --styles loop,workers >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 0 ] || break
    echo "try $try: the system's threads fell below $nproc - 64; again"
  done
  [ $rc -eq 64 ] || fail "64 workers for a user held to fewer: exit $rc"
  grep -q "the workers style would start 64 threads" "$tmp/err" &&
    grep -q -- "--limit" "$tmp/err" ||
    fail "64 workers, too few threads: no reason or hint ($(cat "$tmp/err"))"
fi

"$exe" --count 3 --duration 300 --styles loop --progress always \
  >"$tmp/out" 2>"$tmp/err" || fail "progress run"
grep -q "of 3 done" "$tmp/err" || fail "--progress always showed nothing"
grep -q "done" "$tmp/out" && fail "progress leaked onto stdout"

"$exe" -q --count 2 --duration 1 --styles loop,pool >"$tmp/out" || fail "-q"
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "-q printed more than the table"

"$exe" --format csv --count 2 --duration 1 --work cpu >"$tmp/out" || fail csv
head -1 "$tmp/out" | grep -q "^style,elapsed_ms,vs_sequential,overlap," ||
  fail "csv header"
[ "$(wc -l <"$tmp/out")" -eq $((nstyles + 1)) ] || fail "csv rows"

"$exe" --format json --count 4 --duration 5 --limit 2 --pool-size 3 \
  >"$tmp/out" || fail "json run"
if command -v python3 >/dev/null; then
  python3 - "$tmp/out" "$tmp/styles" <<'PY' || fail "json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == 4 and d["limit"] == 2 and d["pool_size"] == 3, d
assert d["work"] == "wait", d
assert [s["style"] for s in d["styles"]] == open(sys.argv[2]).read().split()
for s in d["styles"]:
    # The keys of cli_json_report(), which iobound-server writes too.
    for k in ("style", "work", "count", "duration_ms", "limit", "timeout_ms",
              "elapsed_ms", "overlap", "vs_sequential", "peak_in_flight",
              "threads", "workers_used", "cpu_ms", "failed", "rate_waits",
              "attempts", "retries", "breaker_refused", "hedges",
              "hedges_won", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
              "max_ms", "queued_p50_ms", "queued_p99_ms", "queued_max_ms",
              "total_p50_ms", "total_p99_ms", "total_max_ms", "status"):
        assert k in s, k
    assert s["work"] == "wait" and s["status"] == "OK", s
    assert s["peak_in_flight"] <= 2, s
PY
  # Only results on stdout: without -q too, what the tool says of the
  # slow service it started goes to stderr, so the JSON still parses.
  "$exe" --format json --work tcp --count 2 --duration 5 --styles loop \
    >"$tmp/out" 2>"$tmp/err" || fail "json tcp run without -q"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/out" ||
    fail "json with --work tcp, without -q: stdout is not JSON alone"
  grep -q "slow service runs on" "$tmp/err" ||
    fail "the slow service's address was not said on stderr"
  # One name per quantity: without the sequential style there is no
  # speed-up over it (null), only how much the operations overlapped.
  "$exe" --format json -q --work cpu --count 4 --duration 20 \
    --styles threads,pool >"$tmp/out" || fail "json cpu run"
  python3 - "$tmp/out" <<'PY' || fail "vs_sequential without sequential"
import json, sys
for s in json.load(open(sys.argv[1]))["styles"]:
    assert s["vs_sequential"] is None and s["overlap"] > 0, s
PY
  "$exe" --format json -q --work cpu --count 4 --duration 20 \
    --styles sequential,threads >"$tmp/out" || fail "json cpu run"
  python3 - "$tmp/out" <<'PY' || fail "vs_sequential with sequential"
import json, sys
seq, threads = json.load(open(sys.argv[1]))["styles"]
assert seq["vs_sequential"] == 1.0, seq
assert threads["vs_sequential"] > 0, threads  # a number (how much: timing)
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

# Results that cannot be written (a full disk: /dev/full) are a failure,
# in every format, and so is a timeline cut short: exit 1, and why.
if [ -w /dev/full ]; then
  for args in "--format table" "--format csv" "--format json" "-q" \
              "--timeline" "--help" "--version" "--list-styles" \
              "--list-kinds"; do
    # shellcheck disable=SC2086
    "$exe" $args --count 2 --duration 1 --styles loop,pool \
      >/dev/full 2>"$tmp/err"
    [ $? -eq 1 ] || fail "'$args' on a full stdout did not exit 1"
    grep -q "^iobound-compare: cannot write to stdout: " \
      "$tmp/err" || fail "'$args' on a full stdout: no message"
  done
  for opt in --svg --trace; do
    "$exe" $opt /dev/full -q --count 2 --duration 1 --styles loop \
      >"$tmp/out" 2>"$tmp/err"
    [ $? -eq 1 ] || fail "$opt on a full disk did not exit 1"
    grep -q "cannot write '/dev/full'" "$tmp/err" || fail "$opt: no message"
    grep -q "^loop " "$tmp/out" || fail "$opt on a full disk: no table"
  done
fi

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

# --rate spaces the starts in every style it runs: 6 operations at 20 a
# second, 2 at once, take 200 ms (four more tokens, 50 ms apart) or more.
"$exe" --count 6 --duration 1 --rate 20 --burst 2 --styles loop,threads,pool \
  --format csv >"$tmp/out" 2>"$tmp/err" || fail "--rate: $(cat "$tmp/err")"
awk -F, 'NR > 1 && ($2 < 195 || $2 > 2000) { bad = 1; print }
         END { exit bad }' "$tmp/out" ||
  fail "--rate 20 --burst 2: not spaced: $(cat "$tmp/out")"

# iobound-slow-service: each fault option refuses what it cannot mean,
# saying what it takes; nothing starts listening.
for args in "--fail 1.5" "--fail -0.1" "--fail 101%" "--fail x" "--fail nan" \
            "--fail-status 502" "--fail-status 200" "--retry-after 0" \
            "--retry-after 86401" "--slow 0.1" "--slow 0.1:1" \
            "--slow 2:10" "--slow 0.1:1001" "--slow :10" "--seed 0" \
            "--seed x" "--fail"; do
  # shellcheck disable=SC2086
  timeout 5 "$slow" $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 64 ] || fail "slow service '$args' exited $rc, not 64"
  [ -s "$tmp/out" ] && fail "slow service '$args' printed on stdout"
  grep -q "^iobound-slow-service: .*-" "$tmp/err" ||
    fail "slow service '$args': no message: $(cat "$tmp/err")"
  grep -q -- "--help" "$tmp/err" || fail "slow service '$args': no hint"
done
# --retries against a service that fails 30% of its answers: every
# operation succeeds in the end, and the CSV and JSON count the retries.
slow_start "$slow" "$tmp/slow" --fail 0.3 --seed 11 ||
  fail "the failing slow service did not start"
addr=$slow_addr
"$exe" --work tcp --target "$addr" --count 40 --duration 2 --retries 8 \
  --backoff 1:5 --styles loop,threads --format csv >"$tmp/out" \
  2>"$tmp/err" || fail "--retries: $(cat "$tmp/err")"
awk -F, 'NR == 1 && $10 != "attempts" { bad = 1 }
         NR > 1 && ($9 != 0 || $11 < 3 || $10 != 40 + $11) { bad = 1 }
         END { exit bad }' "$tmp/out" ||
  fail "--retries 8 against 30% failures: $(cat "$tmp/out")"
"$exe" --work tcp --target "$addr" --count 20 --duration 2 --retries 8 \
  --backoff 1:5 --styles loop --format json -q >"$tmp/out" 2>"$tmp/err" ||
  fail "--retries, json: $(cat "$tmp/err")"
python3 - "$tmp/out" <<'PY' || fail "--retries, json: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["styles"][0]
assert d["retries_max"] == 8 and s["failed"] == 0, d
assert s["retries"] > 0 and s["attempts"] == 20 + s["retries"], s
PY
slow_stop

# --hedge against a service that answers 2% of its requests ten times
# late: the p99 of the loop styles falls from about 200 ms to about 50,
# for a few percent more requests.
slow_start "$slow" "$tmp/slow" --slow 0.02:10 --seed 5 ||
  fail "the late slow service did not start"
addr=$slow_addr
for hedge in "" "--hedge p95"; do
  # shellcheck disable=SC2086
  "$exe" --work tcp --target "$addr" --count 1000 --duration 20 --limit 100 \
    --styles loop,loops,threads $hedge --format json -q \
    >"$tmp/hedge${hedge:+d}" 2>"$tmp/err" || fail "--hedge: $(cat "$tmp/err")"
done
# Beside other tests the p95 itself is slow, and the cut smaller (1.16x
# in CI, 2026-12-07; about 4x on a quiet machine, as ./run demo shows):
# it must cut. Under a sanitizer every request costs CPU enough that the
# hedges' own requests can make the p99 worse (206 -> 298 ms beside other
# tests under AddressSanitizer, CI 2026-12-07): there the hedges must only
# be made, and few.
cut=1.1
grep -q '__tsan_init\|__asan_init' "$exe" && cut=0
python3 - "$tmp/hedge" "$tmp/hedged" "$cut" <<'PY' || fail "--hedge p95 did not cut the p99"
import json, sys
plain = {s["style"]: s for s in json.load(open(sys.argv[1]))["styles"]}
hedged = {s["style"]: s for s in json.load(open(sys.argv[2]))["styles"]}
for style in ("loop", "loops"):
    a, b = plain[style], hedged[style]
    print(style, "p99", a["p99_ms"], "->", b["p99_ms"], "hedges", b["hedges"])
    assert a["hedges"] == 0 and b["failed"] == 0, b
    cut = float(sys.argv[3])
    assert cut == 0 or b["p99_ms"] * cut < a["p99_ms"], (a, b)
    # About 5% of the requests pass a steady p95; beside other tests the
    # latencies drift and more pass it (158 of 1000 under ASan, CI
    # 2026-12-08), but never most of them.
    assert 0 < b["hedges"] <= 250, b  # at most a quarter more requests
assert hedged["threads"]["hedges"] == 0  # one attempt a thread
PY
slow_stop

# --breaker in front of a service that is gone: 20 calls are refused by
# the system, the breaker opens, and the other 30 fail at once.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$exe" --work tcp --target "127.0.0.1:$port" --count 50 --duration 1 \
  --limit 1 --breaker --styles loop --format csv >"$tmp/out" 2>"$tmp/err"
awk -F, 'NR == 1 && $12 != "breaker_refused" { bad = 1 }
         NR == 2 && ($9 != 50 || $12 != 30) { bad = 1 }
         END { exit bad }' "$tmp/out" ||
  fail "--breaker against a closed port: $(cat "$tmp/out")"

# --arrival-rate: operations arrive while others run, in every style and
# on a real service, Poisson-spaced, and each is counted.
slow_start "$slow" "$tmp/slow" || fail "the slow service did not start"
addr=$slow_addr
"$exe" --work tcp --target "$addr" --duration 20 --arrival-rate 100 \
  --count 20 --arrivals poisson --seed 3 --format json >"$tmp/out" \
  2>"$tmp/err" || fail "--arrival-rate on tcp: $(cat "$tmp/err")"
python3 - "$tmp/out" <<'PY' || fail "--arrival-rate on tcp: $(cat "$tmp/out")"
import json, sys
run = json.load(open(sys.argv[1]))
assert run["arrivals"] == {"rates": [100], "law": "poisson", "seed": 3,
                           "for_s": 0}, run["arrivals"]
styles = {b["style"] for b in run["styles"]}
assert len(styles) == len(run["styles"]) >= 6, styles
for b in run["styles"]:
    assert b["arrival_rate"] == 100 and b["count"] == 20, b
    assert b["failed"] == 0 and b["status"] == "OK", b
    assert b["total_p50_ms"] >= 19, b  # counted from arrival
PY
slow_stop

# Two threads in libuv's pool finish at most 20 waits of 100 ms a second:
# at 10 a second the pool keeps up, at 40 its queue grows; the loop keeps
# up at both. Latency counts from when each operation was due.
"$exe" --pool-size 2 --duration 100 --arrival-rate 10,40 --for 1 \
  --styles loop,pool --format csv >"$tmp/out" 2>"$tmp/err" ||
  fail "a sweep: $(cat "$tmp/err")"
python3 - "$tmp/out" <<'PY' || fail "a sweep: $(cat "$tmp/out")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
# Keeping up is judged on the median: of 10 or 40 operations the p99 is
# the slowest, and beside other tests one loop stall of 100 ms made the
# loop's 211 ms (CI, 2026-12-07). Falling behind shows in the p99.
p50 = {(r["arrival_rate"], r["style"]): float(r["total_p50_ms"]) for r in rows}
p99 = {(r["arrival_rate"], r["style"]): float(r["total_p99_ms"]) for r in rows}
assert len(rows) == 4, rows
assert p50[("10", "loop")] < 150 and p50[("40", "loop")] < 150, p50
assert p50[("10", "pool")] < 150, p50
assert p99[("40", "pool")] > 400, p99  # 40 arrived, 20 a second left
PY
"$exe" --pool-size 2 --duration 100 --arrival-rate 10,40 --for 1 \
  --styles loop,pool --svg "$tmp/p99.svg" >"$tmp/out" 2>"$tmp/err" ||
  fail "a sweep's table: $(cat "$tmp/err")"
# (Under the sanitizers a loaded machine may not keep even 10 a second
# within the lesson's bound: the sentence is checked, not its rate.)
tr '\n' ' ' <"$tmp/out" | grep -q "The pool *style .*fell *behind at" ||
  fail "a sweep: no lesson: $(cat "$tmp/out")"
# The lesson is folded to the terminal's width: a line may end between
# "Little's" and "law" (it did in CI, 2026-12-08, when the loop's longer
# sentence moved the break).
tr '\n' ' ' <"$tmp/out" | grep -q "Little's *law" ||
  fail "a sweep: no Little's law: $(cat "$tmp/out")"
[ "$(grep -c '<polyline' "$tmp/p99.svg")" -eq 2 ] ||
  fail "a sweep's picture: not a line a style"
xmllint --noout "$tmp/p99.svg" 2>/dev/null ||
  { command -v xmllint >/dev/null && fail "a sweep's picture is not XML"; }

echo "cli exit codes: ok"
