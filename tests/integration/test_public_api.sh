#!/usr/bin/env bash
# include/runnel/ is the public API: every header there compiles on its own
# with nothing but include/runnel/ on the include path, and no operator,
# example or benchmark includes a header of runtime/ (the engine's internals).
# CMake already builds operators/ without runtime/ on its path; this check
# also covers examples/ and bench/, and includes written as relative paths.
set -u
cd "${RUNNEL_SRC:?}"
cc=${CC:-cc}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for h in include/runnel/*.h; do
  name=$(basename "$h")
  printf '#include "%s"\n#include "%s"\n' "$name" "$name" >"$tmp/one.c"
  if "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -Iinclude/runnel \
      "$tmp/one.c" 2>"$tmp/err"; then
    pass=$((pass + 1))
  else
    echo "FAIL $h does not compile on its own (with only include/runnel/ on the path):"
    head -5 "$tmp/err"
    fail=$((fail + 1))
  fi
done

# Headers that exist only in runtime/ (internal), by file name.
internal=$(cd runtime && for f in *.h; do [ -e "../include/runnel/$f" ] || echo "$f"; done)
for f in $(find operators examples bench -name '*.c' -o -name '*.h' | sort); do
  bad=""
  while IFS= read -r inc; do
    base=$(basename "$inc")
    case "$inc" in */runtime/*|runtime/*) bad="$bad $inc"; continue ;; esac
    # A header of the same directory may share a name with nothing in runtime/.
    [ -e "$(dirname "$f")/$inc" ] && continue
    for i in $internal; do [ "$base" = "$i" ] && bad="$bad $inc"; done
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
  if [ -n "$bad" ]; then
    echo "FAIL $f includes engine internals:$bad"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
