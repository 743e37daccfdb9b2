#!/usr/bin/env bash
# The learner learns: on the simulator, the main job's learned policy in the closed loop
# (scripts/closed-loop.sh: users ranked by the versions the job learns from their own
# log) beats popularity, which beats random, over the same sessions. A small run of
# docs/evaluation.md's protocol: seed 7, 20,000 sessions, the last 10,000 compared, with
# 95% confidence intervals that must not overlap, and learned >= 1.2 x popularity. The
# loop is deterministic: two short runs must give the same bytes.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

sessions=20000 tail_n=10000 seed=7
if RUNNEL_BIN=$bin bash scripts/closed-loop.sh "$tmp/learned" $seed $sessions >"$tmp/loop.txt" 2>&1; then
  ok "closed loop ran: $(cat "$tmp/loop.txt")"
else
  bad "closed loop failed:"; cat "$tmp/loop.txt"; tail -5 "$tmp/learned/job.txt"
fi
for p in random popularity; do
  "$bin/rn_sim" --policy $p --sessions $sessions --seed $seed --out /dev/null \
    --returns "$tmp/$p.txt" 2>/dev/null || bad "rn_sim --policy $p failed"
done
# Versions were published and used.
n=$(ls "$tmp/learned/models" 2>/dev/null | grep -c '\.json$')
[ "$n" -ge 20 ] && ok "$n model versions published" || bad "only $n model versions published"
used=$(grep -c '"model_version":[1-9]' "$tmp/learned/log.jsonl" 2>/dev/null)
[ "${used:-0}" -gt 1000 ] && ok "$used impressions ranked by a learned version" ||
  bad "only ${used:-0} impressions ranked by a learned version"

# mean and 95% CI over the last tail_n sessions: "mean lo hi"
ci() { tail -n "$tail_n" "$1" | awk '{ n++; s += $3; q += $3 * $3 }
  END { m = s / n; v = (q - n * m * m) / (n - 1); h = 1.96 * sqrt(v / n); printf "%.4f %.4f %.4f\n", m, m - h, m + h }'; }
read -r lm ll lh < <(ci "$tmp/learned/returns.txt")
read -r pm pl ph < <(ci "$tmp/popularity.txt")
read -r rm rl rh < <(ci "$tmp/random.txt")
echo "last $tail_n sessions: learned $lm [$ll, $lh]  popularity $pm [$pl, $ph]  random $rm [$rl, $rh]"
awk -v a="$ll" -v b="$ph" 'BEGIN { exit !(a > b) }' && ok "learned > popularity, intervals apart" ||
  bad "learned's interval does not clear popularity's"
awk -v a="$pl" -v b="$rh" 'BEGIN { exit !(a > b) }' && ok "popularity > random, intervals apart" ||
  bad "popularity's interval does not clear random's"
awk -v a="$lm" -v b="$pm" 'BEGIN { exit !(a >= 1.2 * b) }' && ok "learned >= 1.2 x popularity" ||
  bad "learned < 1.2 x popularity"

# Same seed, same bytes: two short runs of the loop.
RUNNEL_BIN=$bin bash scripts/closed-loop.sh "$tmp/a" 3 3000 >/dev/null 2>&1
RUNNEL_BIN=$bin bash scripts/closed-loop.sh "$tmp/b" 3 3000 >/dev/null 2>&1
if [ -s "$tmp/a/log.jsonl" ] && cmp -s "$tmp/a/log.jsonl" "$tmp/b/log.jsonl" &&
  cmp -s "$tmp/a/returns.txt" "$tmp/b/returns.txt"; then
  ok "two runs of the loop give the same log"
else
  bad "two runs of the loop differ"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
