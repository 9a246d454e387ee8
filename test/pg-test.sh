#!/bin/sh
# Run a PostgreSQL test program against a throwaway server of its own,
# stopped and removed at the end. Exits 77 (skipped) when no server can run.
#   pg-test.sh PROGRAM
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/iobound-pg.XXXXXX") || exit 1
trap '"$here/pg-server.sh" stop "$dir" immediate >/dev/null 2>&1; rm -rf "$dir"' EXIT
"$here/pg-server.sh" start "$dir" || exit $?
IOB_PG_DIR=$dir IOB_PG_SERVER=$here/pg-server.sh "$@"
