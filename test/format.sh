#!/bin/sh
# Every C file of the tree is as clang-format writes it (.clang-format);
# ./run format rewrites them so. clang-format 14 is the one that decides
# (Debian 12's): another version formats some lines otherwise, and the
# test is then skipped, as it is without clang-format (exit 77).
#   format.sh SOURCE_ROOT
set -u
cd "$1" || exit 1
command -v clang-format >/dev/null || {
  echo "SKIP: no clang-format (apt-get install clang-format)"
  exit 77
}
version=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$version" != 14 ]; then
  echo "SKIP: clang-format $version; the tree is formatted by clang-format 14"
  exit 77
fi
files=$(find lib include examples test -name '*.[ch]' | sort)
# shellcheck disable=SC2086
out=$(clang-format --dry-run --Werror $files 2>&1)
rc=$?
bad=$(echo "$out" |
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
  sort -u)
if [ -n "$bad" ]; then
  echo "FAIL: these files are not formatted (./run format formats them):"
  echo "$bad"
  exit 1
fi
if [ $rc -ne 0 ]; then # its own error: a key it does not know, a crash
  echo "FAIL: clang-format failed:"
  echo "$out"
  exit 1
fi
echo "$(echo "$files" | wc -l) files, all formatted"
