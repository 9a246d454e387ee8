#!/bin/sh
# A throwaway PostgreSQL server for the tests, on a Unix socket only.
#   pg-server.sh start DIR          initdb into DIR/data (once), then start
#   pg-server.sh stop DIR [MODE]    pg_ctl stop -m MODE (fast; or immediate)
# The socket is DIR/.s.PGSQL.5432: connect with "host=DIR user=postgres".
# initdb refuses to run as root: as root, the server runs as the postgres
# user (Debian's postgresql package makes it) and DIR is given to it.
# Exits 77 (Meson's "skipped") when no server can run here.
set -u
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -d "$dir" ] || { echo "usage: $0 start|stop DIR [MODE]" >&2; exit 64; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "pg-server: no PostgreSQL server (apt-get install postgresql)" >&2
  exit 77
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case $cmd in
  start)
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 ||
        { echo "pg-server: running as root, and no postgres user" >&2; exit 77; }
      chown postgres "$dir" || exit 1
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
        --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -c listen_addresses='' -c fsync=off" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] || exit 0
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m "${3:-fast}" -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop DIR [MODE]" >&2
    exit 64
    ;;
esac
