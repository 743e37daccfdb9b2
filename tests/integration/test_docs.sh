#!/usr/bin/env bash
# The YAML reference in docs/jobs.md is generated from the key tables by
# `runnel schema`; this test fails when the two drift apart, and when a registered
# source, operator or sink lacks its section or its summary-table row in docs/operators.md.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}/runnel
doc=docs/jobs.md
pass=0 fail=0
if [ ! -f "$doc" ]; then
  echo "FAIL $doc is missing"; echo "0 passed, 1 failed"; exit 1
fi
want=$(mktemp); have=$(mktemp)
trap 'rm -f "$want" "$have"' EXIT
"$bin" schema >"$want"
awk '/^<!-- END GENERATED: runnel schema -->$/{on=0} on{print} /^<!-- BEGIN GENERATED: runnel schema -->$/{on=1}' "$doc" >"$have"
if cmp -s "$want" "$have"; then
  echo "PASS docs/jobs.md holds the output of 'runnel schema'"; pass=$((pass + 1))
else
  echo "FAIL docs/jobs.md differs from 'runnel schema' (regenerate the block between the markers):"
  diff "$have" "$want" | head -20
  fail=$((fail + 1))
fi
# Every registered source, operator and sink type has its own section in docs/operators.md
# ("## Operator `t`") and a row in the summary table at its top ("| operator | [`t`](#...)").
types=$("$bin" schema | sed -n 's/^### \(Source\|Operator\|Sink\) `\(.*\)`$/\1 \2/p')
if [ "$(printf '%s\n' "$types" | grep -c .)" -ge 3 ]; then pass=$((pass + 1)); else
  echo "FAIL 'runnel schema' lists too few types to check:"; printf '%s\n' "$types"; fail=$((fail + 1)); fi
while read -r kind t; do
  [ -n "$t" ] || continue
  lower=$(printf '%s' "$kind" | tr 'A-Z' 'a-z')
  if grep -qxF "## $kind \`$t\`" docs/operators.md; then pass=$((pass + 1)); else
    echo "FAIL docs/operators.md has no section '## $kind \`$t\`'"; fail=$((fail + 1)); fi
  if grep -qF "| $lower | [\`$t\`](#$lower-$t) |" docs/operators.md; then pass=$((pass + 1)); else
    echo "FAIL the summary table of docs/operators.md has no row '| $lower | [\`$t\`](#$lower-$t) |'"
    fail=$((fail + 1))
  fi
done <<<"$types"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
