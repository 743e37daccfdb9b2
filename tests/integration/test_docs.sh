#!/usr/bin/env bash
# The YAML reference in docs/jobs.md is generated from the key tables by
# `runnel schema`; this test fails when the two drift apart.
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
# Every registered operator type has a section in docs/operators.md.
for t in $("$bin" schema | sed -n 's/^### \(Source\|Operator\|Sink\) `\(.*\)`$/\2/p' | sort -u); do
  if grep -q "\`$t\`" docs/operators.md; then pass=$((pass + 1)); else
    echo "FAIL docs/operators.md does not mention \`$t\`"; fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
