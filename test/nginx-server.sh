#!/bin/sh
# A throwaway nginx for the tests, on a loopback port, with the echo module
# (Debian: nginx-light + libnginx-mod-http-echo).
#   nginx-server.sh start DIR    write DIR/nginx.conf, start nginx, print PORT
#   nginx-server.sh stop DIR     stop it (SIGTERM, then SIGKILL after 5 s)
# Everything it writes stays in DIR: conf, pid, error log, temp paths.
# GET /wait/MS answers "done MS\n" after MS ms (echo_sleep), like the slow
# service; /echo answers "method=M x=HEADER" and the request's body, /conn
# the connection's number, /status nginx's counts (stub_status: "Active
# connections: N"), /big 20,000 bytes, /answer "ok" with an
# X-Answer header, /redirect a 302 to /wait/0 and /redirect-loop one to
# itself; /site/... the files under DIR/site (a test's own pages); other
# paths get 404. PORT + 1, when openssl can make a
# certificate (DIR/cert.pem, for 127.0.0.1), serves the same over TLS,
# with HTTP/2. As root, nginx runs as the nobody user
# (DIR is given to it); otherwise as the caller, with no "user" directive.
# Exits 77 (Meson's "skipped") when nginx cannot run here.
set -u
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -d "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 64; }

# NGINX and NGINX_ECHO_MODULE name others (or, in a test of the skip,
# none).
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
echo_module=${NGINX_ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
if [ ! -x "$nginx" ]; then
  echo "nginx-server: no nginx (apt-get install nginx-light)" >&2
  exit 77
fi
if [ ! -f "$echo_module" ]; then
  echo "nginx-server: no echo module $echo_module (apt-get install libnginx-mod-http-echo)" >&2
  exit 77
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

# The configuration for PORT. echo_sleep takes seconds, with up to three
# decimals, and may be a variable: the map writes MS as seconds
# (5 -> 0.005, 1500 -> 01.500). The location's capture is named: a map's
# regular expression overwrites $1. The listen backlog is as long as the
# kernel allows (net.core.somaxconn): ten thousand clients connecting at
# once would otherwise overflow nginx's 511, and the SYNs dropped cost
# their clients a second each.
write_conf() {
  cat >"$dir/nginx.conf" <<CONF
daemon on;
worker_processes 1;
worker_rlimit_nofile $files;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
load_module $echo_module;
events { worker_connections $((files - 64)); }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type text/plain;
  keepalive_requests 100000;
  map \$ms \$wait_s {
    "~^(\d)\$" "0.00\$1";
    "~^(\d\d)\$" "0.0\$1";
    "~^(\d*)(\d\d\d)\$" "0\$1.\$2";
  }
  server {
    listen 127.0.0.1:$1 backlog=65535;
    include $dir/locations.conf;
  }
$tls_server
}
CONF
  cat >"$dir/locations.conf" <<CONF
location ~ "^/wait/(?<ms>\d{1,9})\$" {
  echo_sleep \$wait_s;
  echo "done \$ms";
}
location = /echo {
  echo_read_request_body;
  echo "method=\$request_method x=\$http_x_test";
  echo_request_body;
}
location = /conn {
  return 200 "\$connection\n";
}
location = /big {
  echo_duplicate 2000 "0123456789";
}
location = /status {
  stub_status;
}
location = /answer {
  add_header X-Answer 42;
  return 200 "ok\n";
}
location = /redirect {
  return 302 /wait/0;
}
location = /redirect-loop {
  return 302 /redirect-loop;
}
location /site/ {
  root $dir;
}
location / {
  return 404 "not found: try GET /wait/MS\n";
}
CONF
}

# A certificate for 127.0.0.1, if openssl is here: then PORT + 1 speaks
# TLS (and HTTP/2 through ALPN).
make_cert() {
  have_cert=
  command -v openssl >/dev/null 2>&1 || return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" \
    -out "$dir/cert.pem" >/dev/null 2>&1 || return 0
  chmod 644 "$dir/key.pem" "$dir/cert.pem"
  have_cert=yes
}

tls_conf() {
  [ -n "$have_cert" ] || return 0
  cat <<CONF
  server {
    listen 127.0.0.1:$(($1 + 1)) ssl http2 backlog=65535;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    include $dir/locations.conf;
  }
CONF
}

case $cmd in
  start)
    if [ "$(id -u)" -eq 0 ]; then
      id nobody >/dev/null 2>&1 ||
        { echo "nginx-server: running as root, and no nobody user" >&2; exit 77; }
      chown nobody "$dir" || exit 1
    fi
    as_owner mkdir -p "$dir/tmp" || exit 1
    make_cert
    # Connections: as many as the hard limit on open files allows (a
    # descriptor each, nothing is proxied; 64 left for the listeners and
    # logs), at most 65536.
    files=$(ulimit -Hn)
    case $files in
      unlimited) files=65536 ;;
      *[!0-9]*|'') files=1024 ;;
    esac
    [ "$files" -gt 65536 ] && files=65536
    # A free port: nginx cannot listen on port 0 and say which it got, so
    # try ports below the kernel's ephemeral range (32768-60999 on Linux)
    # until one is free.
    tries=0
    while :; do
      port=$(shuf -i 20000-32000 -n 1)
      tls_server=$(tls_conf "$port")
      write_conf "$port"
      rm -f "$dir/error.log"
      if as_owner "$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
          >"$dir/start.log" 2>&1; then
        break
      fi
      tries=$((tries + 1))
      if ! grep -q "Address already in use" "$dir/start.log" "$dir/error.log" \
          2>/dev/null || [ "$tries" -ge 20 ]; then
        echo "nginx-server: nginx did not start:" >&2
        cat "$dir/start.log" "$dir/error.log" >&2 2>/dev/null
        exit 77
      fi
    done
    # The daemon writes its pid file after the starting process returns.
    n=0
    while [ ! -s "$dir/nginx.pid" ] && [ $n -lt 100 ]; do
      sleep 0.05
      n=$((n + 1))
    done
    [ -s "$dir/nginx.pid" ] ||
      { echo "nginx-server: no pid file" >&2; cat "$dir/error.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "$port"
    ;;
  stop)
    [ -s "$dir/nginx.pid" ] || exit 0
    pid=$(cat "$dir/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || exit 0
    n=0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do
      sleep 0.05
      n=$((n + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      pkill -KILL -P "$pid" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$dir/nginx.pid"
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 64
    ;;
esac
