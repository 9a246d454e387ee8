#!/bin/sh
# fuzz.sh HARNESS SEEDS DICT MAX_LEN: run one libFuzzer harness for
# $FUZZ_SECONDS (default 30) from the seed corpus in the repository. New
# inputs go to a working corpus beside the harness (kept between runs),
# a crash to crash-* there too; the run ends with one summary line.
harness=$1 seeds=$2 dict=$3 max_len=$4
seconds=${FUZZ_SECONDS:-30}
name=$(basename "$harness")
dir=$(dirname "$harness")
summary=$dir/$name.summary
mkdir -p "$dir/$name-corpus" || exit 1
rm -f "$summary"

# -timeout: one input may take 10 s at most; timeout(1) is the last resort.
timeout -k 10 $((seconds + 120)) "$harness" \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
  -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 \
  -artifact_prefix="$dir/$name-" \
  "$dir/$name-corpus" "$seeds" >"$dir/$name.log" 2>&1
status=$?
if [ "$status" -ne 0 ]; then
  tail -n 80 "$dir/$name.log"
  echo "$name: FAILED (exit $status); the log is $dir/$name.log" |
    tee "$summary"
  exit 1
fi
# The last status line ("#123456 NEW cov: 310 ft: 1210 corp: 150/3Kb
# ...") and the final stats.
last=$(grep '^#[0-9].* cov: ' "$dir/$name.log" | tail -n 1)
stat() { sed -n "s/^stat::$1: *//p" "$dir/$name.log"; }
runs=$(stat number_of_executed_units)
speed=$(stat average_exec_per_sec)
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
echo "$name: $runs runs in $seconds s ($speed/s), coverage $cov edges," \
  "$ft features, corpus $corp inputs" | tee "$summary"
