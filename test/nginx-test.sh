#!/bin/sh
# Run an HTTP test program against a throwaway nginx of its own
# (nginx-server.sh), stopped and removed at the end. Exits 77 (skipped)
# when nginx cannot run. The program finds it in its environment:
#   IOB_TEST_NGINX_URL=http://127.0.0.1:PORT   GET /wait/MS: "done MS\n"
#   IOB_TEST_NGINX_TLS_URL=https://127.0.0.1:PORT+1, IOB_TEST_NGINX_CA=FILE
#     the same over TLS, when openssl made a certificate (else unset)
#   IOB_TEST_NGINX_DIR, IOB_TEST_NGINX_SERVER  to stop it mid-test:
#     "$IOB_TEST_NGINX_SERVER" stop "$IOB_TEST_NGINX_DIR"
#   nginx-test.sh PROGRAM [ARGS...]
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/iobound-nginx.XXXXXX") || exit 1
trap '"$here/nginx-server.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
port=$("$here/nginx-server.sh" start "$dir") || exit $?
echo "nginx-test: nginx on http://127.0.0.1:$port" >&2
if [ -f "$dir/cert.pem" ]; then
  export IOB_TEST_NGINX_TLS_URL=https://127.0.0.1:$((port + 1))
  export IOB_TEST_NGINX_CA=$dir/cert.pem
fi
IOB_TEST_NGINX_URL=http://127.0.0.1:$port IOB_TEST_NGINX_DIR=$dir \
  IOB_TEST_NGINX_SERVER=$here/nginx-server.sh "$@"
