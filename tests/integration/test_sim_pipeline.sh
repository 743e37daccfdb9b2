#!/usr/bin/env bash
# The simulator's random and popularity policies end to end through the main
# job (log_collector -> online_joiner -> experience_collector): every session
# ends exactly once in the pipeline, and the per-session return the pipeline
# computes from its labelled lists equals the one the simulator measured.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-sim.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
for policy in random popularity; do
  "$bin/rn_sim" --policy "$policy" --sessions 600 --seed 5 --out "$work/$policy.jsonl" \
    --embeddings "$work/emb.txt" 2>"$work/$policy.txt" || { bad "$policy: rn_sim failed"; continue; }
  sim=$(sed -n 's/.*mean_session_return=\([0-9.]*\).*/\1/p' "$work/$policy.txt")
  (cd "$work" && RUNNEL_LOG="$work/$policy.jsonl" RUNNEL_OUT="$work/out-$policy" \
    RUNNEL_EMBEDDINGS="$work/emb.txt" RUNNEL_HTTP=127.0.0.1:0 \
    "$bin/runnel" run "$RUNNEL_SRC/jobs/guess-you-like.yaml" --fresh \
    --set state.dir="$work/state" --set checkpoint.dir="$work/ckpt" 2>"$work/$policy-run.txt") ||
    { bad "$policy: the job failed"; tail -3 "$work/$policy-run.txt"; continue; }
  read -r sessions pipe < <(awk '
    / join / { for (i = 1; i <= NF; i++) if ($i == "reward_sum_milli") r = $(i + 1) }
    / experience / { for (i = 1; i <= NF; i++) if ($i == "sessions_ended") s = $(i + 1) }
    / collect / { for (i = 1; i <= NF; i++) if ($i == "rejected") d = $(i + 1) }
    END { printf "%d %.4f\n", s, (s ? r / 1000 / s : -1) }' "$work/$policy-run.txt")
  [ "$sessions" = 600 ] && ok "$policy: 600 sessions ended in the pipeline" ||
    bad "$policy: $sessions sessions ended, expected 600"
  [ "$pipe" = "$(printf '%.4f' "$sim")" ] && ok "$policy: per-session return $pipe = simulator's $sim" ||
    bad "$policy: pipeline return $pipe, simulator $sim"
  n=$(wc -l <"$work/out-$policy/experiences.jsonl")
  l=$(grep -c '"type":"impression"' "$work/$policy.jsonl")
  [ "$n" = "$l" ] && ok "$policy: one experience per impression ($n)" || bad "$policy: $n experiences, $l impressions"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
