# Sourced by the shell tests (and ./run demo): start iobound-slow-service
# in the background and learn where it listens; stop it again.
#   slow_start EXE LOG [OPTIONS...]   sets slow_pid and slow_addr (IP:PORT);
#                                     returns 1 if it did not start in 5 s
#   slow_stop                         ends it, if it runs
# Safe under set -eu (./run's).
slow_pid=
slow_addr=

slow_start() {
  _exe=$1 _log=$2
  shift 2
  "$_exe" "$@" >"$_log" 2>&1 &
  slow_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$_log" && break
    sleep 0.05
  done
  slow_addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$_log")
  [ -n "$slow_addr" ]
}

slow_stop() {
  [ -n "$slow_pid" ] || return 0
  kill "$slow_pid" 2>/dev/null || true
  wait "$slow_pid" 2>/dev/null || true
  slow_pid=
  return 0
}
