#!/usr/bin/env bash
# The learner learns, and its discount matters where the reward does not price the
# future. Small runs of docs/evaluation.md's protocol (seed 7, 20,000 sessions, the last
# 10,000 compared, 95% confidence intervals that must not overlap):
#   1. the simulator's defaults (clicks 1, pays 5): the main job's learned policy in the
#      closed loop (scripts/closed-loop.sh) > popularity > random, learned >= 1.2 x
#      popularity;
#   2. clicks only (pays worth 0 to the simulator and to the job): learned with
#      gamma 0.9 > learned with gamma 0 > popularity > random, learned >= 1.2 x
#      popularity (a clickbait click ends sessions; only a discounted future sees it);
#   3. the loop is deterministic: two short runs give the same bytes.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

sessions=20000 tail_n=10000 seed=7
# loop NAME GAMMA [SIM_ARGS [runnel --set ...]]: a closed-loop run into $tmp/NAME
loop() {
  local name=$1 gamma=$2 sim=${3:-}
  shift 3 2>/dev/null || shift $#
  if SIM_ARGS=$sim RUNNEL_GAMMA=$gamma RUNNEL_BIN=$bin bash scripts/closed-loop.sh "$tmp/$name" $seed \
    $sessions "$@" >"$tmp/$name.txt" 2>&1; then
    ok "$name: $(cat "$tmp/$name.txt")"
  else
    bad "$name: the closed loop failed:"; cat "$tmp/$name.txt"; tail -5 "$tmp/$name/job.txt"
  fi
  local n used
  n=$(ls "$tmp/$name/models" 2>/dev/null | grep -c '\.json$')
  used=$(grep -c '"model_version":[1-9]' "$tmp/$name/log.jsonl" 2>/dev/null)
  [ "$n" -ge 20 ] && [ "${used:-0}" -gt 1000 ] && ok "$name: $n versions, $used impressions ranked by them" ||
    bad "$name: $n versions, ${used:-0} impressions ranked by them"
}
# baseline NAME POLICY [SIM_ARGS]
baseline() {
  # shellcheck disable=SC2086
  "$bin/rn_sim" --policy "$2" --sessions $sessions --seed $seed ${3:-} --out /dev/null \
    --returns "$tmp/$1.txt" 2>/dev/null || bad "rn_sim --policy $2 failed"
}
# mean and 95% CI over the last tail_n sessions: "mean lo hi"
ci() { tail -n "$tail_n" "$1" | awk '{ n++; s += $3; q += $3 * $3 }
  END { m = s / n; v = (q - n * m * m) / (n - 1); h = 1.96 * sqrt(v / n); printf "%.4f %.4f %.4f\n", m, m - h, m + h }'; }
# above A B: A's interval lies above B's (files of returns)
above() {
  local am al ah bm bl bh
  read -r am al ah < <(ci "$1"); read -r bm bl bh < <(ci "$2")
  awk -v a="$al" -v b="$bh" 'BEGIN { exit !(a > b) }' && ok "$3: $am [$al, $ah] > $bm [$bl, $bh]" ||
    bad "$3: $am [$al, $ah] does not clear $bm [$bl, $bh]"
}
ratio() {
  local am al ah bm bl bh
  read -r am al ah < <(ci "$1"); read -r bm bl bh < <(ci "$2")
  awk -v a="$am" -v b="$bm" 'BEGIN { exit !(a >= 1.2 * b) }' && ok "$3 >= 1.2 x popularity" ||
    bad "$3 < 1.2 x popularity ($am vs $bm)"
}

echo "== the simulator's defaults (clicks 1, pays 5)"
loop learned 0.5
baseline random random
baseline popularity popularity
above "$tmp/learned/returns.txt" "$tmp/popularity.txt" "learned > popularity"
above "$tmp/popularity.txt" "$tmp/random.txt" "popularity > random"
ratio "$tmp/learned/returns.txt" "$tmp/popularity.txt" "learned"

echo "== clicks only (pays worth 0 to the simulator and to the job)"
clicks="--w-pay 0"
loop far 0.9 "$clicks" --set operators.join.rewards.pay=0
loop myopic0 0 "$clicks" --set operators.join.rewards.pay=0
baseline c_random random "$clicks"
baseline c_popularity popularity "$clicks"
above "$tmp/far/returns.txt" "$tmp/myopic0/returns.txt" "learned (gamma 0.9) > learned (gamma 0)"
above "$tmp/myopic0/returns.txt" "$tmp/c_popularity.txt" "learned (gamma 0) > popularity"
above "$tmp/c_popularity.txt" "$tmp/c_random.txt" "popularity > random"
ratio "$tmp/far/returns.txt" "$tmp/c_popularity.txt" "learned (gamma 0.9)"

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
