#!/usr/bin/env bash
# test_flinkrl.sh — jobs/flinkrl.yaml (FlinkRL's streaming job, docs/learning.md) on the
# simulator's log, against reference computations (flinkrl_ref.py):
#
#   windows      the job's window output equals "the last 10 clicked items per user per
#                sliding window of 60 s every 20 s" computed from the log, watermark 10 s
#                behind (emit_every 1, so the reference can follow it line by line)
#   top K        every window has a recommendation whose items and scores equal scoring the
#                catalogue offline with the same model version (the model file read in
#                Python, the simple state features of the window's items); the same for an
#                actor (runnel-actor/1) written by Python
#   no model     with an empty store no recommendation is made up: all counted in
#                without_model
#   served       with a serve: section, GET /api/v1/recommendations/{user} answers a row
#                the job wrote, and 404 for a user without one
#   errors       a window without the items field, and context_fields, are refused
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN.  One PASS/FAIL line per check.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
ref="python3 $RUNNEL_SRC/tests/integration/flinkrl_ref.py"
work=$(mktemp -d "${TMPDIR:-/tmp}/runnel-flinkrl.XXXXXX")
job=
trap '[ -n "$job" ] && kill "$job" 2>/dev/null; rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
}

START=1700000000000
# Slates of 10 with a flat examination curve: enough clicks that many windows hold more
# than 10 of a user's, so the cap of collect(item, 10) is exercised.
timeout 120 "$bin/rn_sim" --sessions 400 --users 60 --items 300 --dim 8 --start-ts $START \
  --slate 10 --exam-decay 0.2 --policy random --out "$work/log.jsonl" --embeddings "$work/emb.txt" 2>"$work/sim.err" ||
  { bad "rn_sim: $(head -3 "$work/sim.err")"; finish; }
"$bin/rn_mkmodel" "$work/models" --dim 8 --event-time $START --random 7 2>"$work/mk.err" ||
  { bad "rn_mkmodel: $(cat "$work/mk.err")"; finish; }
mkdir -p "$work/empty"

# flinkrl OUT MODELS [ARGS...]: the shipped job on the log, outputs under $work/OUT.
flinkrl() {
  local out=$1 models=$2
  shift 2
  mkdir -p "$work/$out"
  RUNNEL_LOG=$work/log.jsonl RUNNEL_EMBEDDINGS=$work/emb.txt RUNNEL_MODELS=$models \
    RUNNEL_OUT=$work/$out RUNNEL_VAR=$work/$out/var \
    timeout 120 "$bin/runnel" run jobs/flinkrl.yaml --set watermark.emit_every=1 "$@" \
    >"$work/$out/stdout" 2>"$work/$out/err"
}

if flinkrl run "$work/models"; then
  ok "the job ran"
else
  bad "the job failed: $(head -5 "$work/run/err")"
  finish
fi

$ref windows "$work/log.jsonl" 60000 20000 10000 10 >"$work/windows-ref.jsonl" 2>"$work/cut"
n=$(wc -l <"$work/windows-ref.jsonl")
full=$(grep -c '"items": \[\("[^"]*", \)\{9\}' "$work/windows-ref.jsonl")
more=$(sed -n 's/^cut: //p' "$work/cut")
if [ "$n" -lt 500 ] || [ "${more:-0}" -lt 10 ]; then
  bad "the log is too tame: $n windows, $more with more than 10 clicks"
elif d=$($ref compare "$work/windows-ref.jsonl" "$work/run/flinkrl-windows.jsonl"); then
  ok "windows: $n results ($full with 10 items, $more of them cut from more clicks) equal the reference's"
else
  bad "windows: $d"
fi

if d=$($ref topk "$work/run/flinkrl-windows.jsonl" "$work/run/flinkrl-recommendations.jsonl" \
  "$work/emb.txt" "$(ls "$work"/models/*.safetensors | head -1)" 10 10 1); then
  ok "top K: $d"
else
  bad "top K: $d"
fi

# An actor trained elsewhere (runnel-actor/1 written by Python's standard library) is served
# the same way: its top K equal its own scoring offline.
$ref mkactor "$work/actor" 8 3
if flinkrl actor "$work/actor" && d=$($ref topk "$work/actor/flinkrl-windows.jsonl" \
  "$work/actor/flinkrl-recommendations.jsonl" "$work/emb.txt" "$work/actor/v000000000001.safetensors" 10 10 1); then
  ok "actor: $d"
else
  bad "actor: ${d:-} $(head -3 "$work/actor/err" 2>/dev/null)"
fi

# The same job at parallelism 1 writes the same recommendations (per user; order aside).
if flinkrl p1 "$work/models" --set parallelism=1 &&
  [ "$(sort "$work/p1/flinkrl-recommendations.jsonl" | md5sum)" = \
    "$(sort "$work/run/flinkrl-recommendations.jsonl" | md5sum)" ]; then
  ok "parallelism 1 writes the same recommendations"
else
  bad "parallelism 1 differs or failed: $(head -3 "$work/p1/err")"
fi

if flinkrl empty "$work/empty"; then
  r=$(wc -l <"$work/empty/flinkrl-recommendations.jsonl")
  [ "$r" -eq 0 ] && grep -q 'without_model' "$work/empty/stdout" "$work/empty/err" &&
    ok "without a model version: no recommendation, counted in without_model" ||
    bad "without a model version: $r recommendations"
else
  bad "the job failed with an empty store: $(head -3 "$work/empty/err")"
fi

# Served: with a serve: section, GET /api/v1/recommendations/{user} answers with a row the
# job also wrote to its sink (the user's latest one when asked); an unknown user is a 404.
if command -v curl >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  { cat jobs/flinkrl.yaml; printf 'serve:\n  listen: 127.0.0.1:%s\n  threads: 1\n' "$port"; } >"$work/serve.yaml"
  mkdir -p "$work/serve"
  user=$(sed -n '1s/^{"user":"\([^"]*\)".*/\1/p' "$work/run/flinkrl-recommendations.jsonl")
  RUNNEL_LOG=$work/log.jsonl RUNNEL_FOLLOW=true RUNNEL_EMBEDDINGS=$work/emb.txt \
    RUNNEL_MODELS=$work/models RUNNEL_OUT=$work/serve RUNNEL_VAR=$work/serve/var \
    "$bin/runnel" run "$work/serve.yaml" --quiet 2>"$work/serve/err" &
  job=$!
  answer=
  for _ in $(seq 1 600); do
    answer=$(curl -sf "http://127.0.0.1:$port/api/v1/recommendations/$user" 2>/dev/null) && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  code=$(curl -s -o "$work/404.json" -w '%{http_code}' "http://127.0.0.1:$port/api/v1/recommendations/nobody")
  kill "$job" 2>/dev/null
  wait "$job" 2>/dev/null
  if [ -n "$answer" ] && grep -qxF "$answer" "$work/run/flinkrl-recommendations.jsonl"; then
    ok "GET /api/v1/recommendations/$user answers a row the job wrote: ${answer:0:80}..."
  else
    bad "GET /api/v1/recommendations/$user: '$answer' $(head -3 "$work/serve/err")"
  fi
  [ "$code" = 404 ] && grep -q "no recommendation for user 'nobody'" "$work/404.json" &&
    ok "an unknown user is a 404: $(cat "$work/404.json")" || bad "unknown user: $code $(cat "$work/404.json")"
else
  echo "SKIP serving: curl not found"
fi

# Errors at load time name the place.
cp jobs/flinkrl.yaml "$work/bad.yaml"
sed -i 's/items: items$/items: clicked/' "$work/bad.yaml"
msg=$(RUNNEL_LOG=$work/log.jsonl RUNNEL_EMBEDDINGS=$work/emb.txt RUNNEL_MODELS=$work/models \
  RUNNEL_OUT=$work/bad RUNNEL_VAR=$work/bad/var timeout 60 "$bin/runnel" run "$work/bad.yaml" 2>&1 >/dev/null)
case "$msg" in
*"no list field 'clicked'"*) ok "a missing items field is named: $(printf '%s' "$msg" | tail -1)" ;;
*) bad "a missing items field: got '$msg'" ;;
esac
sed 's/^\(    items: items\)$/\1\n    context_fields: [hour]/' jobs/flinkrl.yaml >"$work/ctx.yaml"
msg=$(RUNNEL_EMBEDDINGS=$work/emb.txt RUNNEL_MODELS=$work/models "$bin/runnel" validate "$work/ctx.yaml" 2>&1 >/dev/null)
case "$msg" in
*"no request context"*) ok "context_fields refused" ;;
*) bad "context_fields: got '$msg'" ;;
esac
finish
