#!/bin/sh
# The ABI of each library against the last release's, kept in test/abi/
# as abidw's XML (LIBRARY-VERSION.abi, made with --drop-private-types
# --headers-dir include): a change to what programs built against the
# release use (a public type, a function's signature, a symbol gone) must
# come with a new soname, and a new soname only with such a change
# (NEWS.md says what changed). Symbols added are no break.
#   abi-diff.sh SOURCE_ROOT BUILD_ROOT
# Skipped (77) without abidiff (Debian: abigail-tools).
set -u
src=$1 build=$2
for tool in abidiff objcopy readelf; do
  command -v $tool >/dev/null || {
    echo "SKIP: no $tool (apt-get install abigail-tools binutils)"
    exit 77
  }
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0 checked=0
for old in "$src"/test/abi/*.abi; do
  [ -e "$old" ] || continue
  name=$(basename "$old" .abi) # libiobound-0.4.0
  lib=${name%-*}               # libiobound
  new=$build/lib/$lib.so
  if [ ! -e "$new" ]; then
    echo "$lib: not built, not checked"
    continue
  fi
  old_soname=$(sed -n "s/.*<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$old" | head -n 1)
  new_soname=$(readelf -d "$new" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  if [ -z "$old_soname" ] || [ -z "$new_soname" ]; then
    echo "FAIL: no soname read from $old ('$old_soname') or $new ('$new_soname')"
    status=1
    continue
  fi
  # abidiff (2.2) silently leaves out a symbol whose version changed
  # (0.4 had none, 0.5 has IOBOUND_0.5): compare a copy without versions,
  # as the baselines are made (CONTRIBUTING.md); abi.py checks versions.
  objcopy -R .gnu.version -R .gnu.version_d "$new" "$tmp/$lib.so" || {
    echo "FAIL: objcopy could not copy $new"
    exit 1
  }
  # The soname is compared here, not by abidiff, to which it is a break.
  abidiff --ignore-soname --no-added-syms --drop-private-types \
    --headers-dir2 "$src/include" "$old" "$tmp/$lib.so" >"$tmp/report" 2>&1
  rc=$?
  checked=$((checked + 1))
  # abidiff's status is a bit field: 1 an error, 2 a usage error, 4 a
  # change of the ABI, 8 one it knows breaks it. Any change it reports
  # (harmless ones are filtered) counts: a public struct that grows is
  # only a 4, and breaks programs all the same.
  if [ $((rc & 3)) -ne 0 ]; then
    echo "FAIL: abidiff could not compare $old and $new:"
    cat "$tmp/report"
    status=1
    continue
  fi
  [ $((rc & 12)) -ne 0 ] && broke=yes || broke=no
  if [ $broke = yes ] && [ "$old_soname" = "$new_soname" ]; then
    echo "FAIL: $lib changes the ABI of ${name#"$lib"-} but keeps its soname $new_soname:"
    cat "$tmp/report"
    status=1
  elif [ $broke = no ] && [ "$old_soname" != "$new_soname" ]; then
    echo "FAIL: $lib keeps the ABI of ${name#"$lib"-} but its soname went from $old_soname to $new_soname"
    status=1
  else
    echo "$lib: against ${name#"$lib"-} ($old_soname): soname $new_soname," \
      "$([ $broke = yes ] && echo "the ABI changed" || echo "the ABI kept")"
    head -n 2 "$tmp/report" | sed 's/^/  /'
    [ "$old_soname" != "$new_soname" ] &&
      echo "  (a new soname: further changes go unchecked until test/abi/ holds a release of it)"
  fi
done
if [ "$checked" -eq 0 ]; then
  echo "FAIL: nothing compared: no test/abi/*.abi with a library built"
  exit 1
fi
exit "$status"
