#!/bin/sh
# Run a PostgreSQL test program against a throwaway server of its own,
# stopped and removed at the end. With no server to start here, the
# program runs without one (no IOB_PG_DIR): test-pg then runs the tests
# that need none and exits 77 (skipped) if they pass, 1 if they fail.
#   pg-test.sh PROGRAM
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/iobound-pg.XXXXXX") || exit 1
trap '"$here/pg-server.sh" stop "$dir" immediate >/dev/null 2>&1; rm -rf "$dir"' EXIT
"$here/pg-server.sh" start "$dir"
started=$?
if [ "$started" -eq 77 ]; then
  "$@"
  exit $?
fi
[ "$started" -eq 0 ] || exit "$started"
IOB_PG_DIR=$dir IOB_PG_SERVER=$here/pg-server.sh "$@"
