#!/usr/bin/env bash
# Reproduces docs/evaluation.md's LAST table: for each seed, the main job's learner in the
# closed loop (scripts/closed-loop.sh, γ = 0.5, as in the table above it), LAST's evaluator
# learnt from the same log (jobs/last-evaluator.yaml), then the same model (the version that
# ranked the loop's last page, pinned) serving the same sessions of the same seed without and
# with LAST (rn_sim's model: policy with --model-lag 0, i.e. the store's current version, and
# --model-last; reproducible: no time budget), the evaluator's own greedy ranking (its tensors
# ranked as a model: the lists it would pick alone), and the latency LAST adds over HTTP
# (jobs/last-serve.yaml, GET /api/v1/inference).
#
#   bash scripts/eval-last.sh [OUT_DIR]          (default var/eval-last)
#
# Environment: LAST_SEEDS (default "7 8 21"), LAST_TRAIN (closed-loop sessions, default 50000),
# LAST_SESSIONS (sessions served by the final model, default 50000), LAST_HTTP_SESSIONS
# (sessions over HTTP for the latency, default 2000), LAST_ARMS (extra LAST settings, one
# per line as NAME=rn_sim options; default the shipped one and two smaller searches).
# Writes OUT_DIR/results.md and the runs under OUT_DIR/runs/. Needs build/ and python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/eval-last}
seeds=${LAST_SEEDS:-7 8 21}
train=${LAST_TRAIN:-50000}
sessions=${LAST_SESSIONS:-50000}
http_sessions=${LAST_HTTP_SESSIONS:-2000}
arms=${LAST_ARMS:-"last=
last-small=--model-last-step 0.02
last-c2=--model-last-candidates 2 --model-last-step 0.05"}
mkdir -p "$out/runs"
job=
trap '[ -n "$job" ] && kill -TERM $job 2>/dev/null || true' EXIT INT TERM
for seed in $seeds; do
  T="$out/runs/train-$seed"
  echo "seed $seed: closed loop ($train sessions, γ = 0.5): $(RUNNEL_GAMMA=0.5 \
    bash scripts/closed-loop.sh "$T" "$seed" "$train")"
  # The model: the version that ranked the loop's last page (the same in every run of the
  # seed; the versions published after it depend on when the job was stopped), pinned.
  v=$(tail -n 2000 "$T/log.jsonl" | grep -o '"model_version":[0-9]*' | tail -1 | cut -d: -f2)
  build/runnel models pin "$T/models" "$v" >/dev/null
  echo "seed $seed: model v$v (pinned)"
  rm -rf "$T/evaluator" "$T/var-ev"
  RUNNEL_LOG="$T/log.jsonl" RUNNEL_VAR="$T/var-ev" RUNNEL_OUT="$T/out-ev" \
    RUNNEL_EVALUATOR="$T/evaluator" RUNNEL_EMBEDDINGS="$T/embeddings.txt" \
    build/runnel run jobs/last-evaluator.yaml --fresh 2>"$T/evaluator.txt"
  echo "seed $seed: evaluator $(build/runnel models list "$T/evaluator" | grep current | awk '{print "v" $2 ", loss " $7}')"
  d="$out/runs/model-$seed"
  mkdir -p "$d"
  build/rn_sim --policy "model:$T/models" --model-lag 0 --sessions "$sessions" --seed "$seed" \
    --out /dev/null --embeddings "$d/embeddings.txt" --returns "$d/returns.txt" 2>"$d/sim.txt"
  echo "seed $seed model: $(grep -o 'mean_session_return=[^ ]* ci95=\[[^]]*\]' "$d/sim.txt")"
  d="$out/runs/evaluator-$seed"
  mkdir -p "$d"
  build/rn_sim --policy "model:$T/evaluator" --model-lag 0 --sessions "$sessions" --seed "$seed" \
    --out /dev/null --embeddings "$d/embeddings.txt" --returns "$d/returns.txt" 2>"$d/sim.txt"
  echo "seed $seed evaluator alone: $(grep -o 'mean_session_return=[^ ]* ci95=\[[^]]*\]' "$d/sim.txt")"
  while IFS='=' read -r name opts; do
    [ -n "$name" ] || continue
    d="$out/runs/$name-$seed"
    mkdir -p "$d"
    # shellcheck disable=SC2086
    build/rn_sim --policy "model:$T/models" --model-lag 0 --sessions "$sessions" --seed "$seed" \
      --out /dev/null --embeddings "$d/embeddings.txt" --returns "$d/returns.txt" \
      --model-last "$T/evaluator" $opts 2>"$d/sim.txt"
    echo "seed $seed $name: $(grep -o 'mean_session_return=[^ ]* ci95=\[[^]]*\]' "$d/sim.txt")"
    echo "    $(grep -o 'last: .*' "$d/sim.txt")"
  done <<<"$arms"
  # Latency over HTTP: the same model served by jobs/last-serve.yaml without and with LAST.
  for arm in model last; do
    d="$out/runs/http-$arm-$seed"
    rm -rf "$d"
    mkdir -p "$d"
    : >"$d/log.jsonl"
    set=()
    [ $arm = last ] && set=(--set "operators.rank.last_evaluator=$T/evaluator")
    RUNNEL_LOG="$d/log.jsonl" RUNNEL_MODELS="$T/models" RUNNEL_EMBEDDINGS="$T/embeddings.txt" \
      RUNNEL_OUT="$d" build/runnel run jobs/last-serve.yaml "${set[@]}" 2>"$d/job.txt" &
    job=$!
    serve=
    for _ in $(seq 300); do
      serve=$(grep -o 'serving at http://[^/]*' "$d/job.txt" | sed 's|serving at http://||' || true)
      [ -n "$serve" ] && curl -sf "http://$serve/api/v1/inference" >/dev/null 2>&1 && break
      kill -0 $job 2>/dev/null || { cat "$d/job.txt" >&2; exit 1; }
      sleep 0.1
    done
    build/rn_sim --policy "http://$serve" --sessions "$http_sessions" --seed "$seed" \
      --out "$d/log.jsonl" --embeddings "$d/embeddings.txt" 2>"$d/sim.txt"
    curl -sf "http://$serve/api/v1/inference" >"$d/inference.json"
    kill -TERM $job
    wait $job || true
    job=
    echo "seed $seed http $arm: $(cat "$d/inference.json")"
  done
done
# shellcheck disable=SC2086 # one argument per seed
python3 scripts/eval_last_report.py "$out" "$sessions" $seeds
echo "table: $out/results.md"
