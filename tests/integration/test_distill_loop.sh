#!/usr/bin/env bash
# Distillation in the closed loop (docs/learning.md, "Distillation"), small runs of
# scripts/evaluate-distill.sh's protocol (seed 7, 6,000 sessions):
#   1. a learner with a student publishes the teacher's versions byte for byte as the
#      plain learner does, and the student's beside them (same ids, d = 4 tensors);
#   2. the student served (rn_sim --model-embeddings) ranks the pages once its first
#      version is due and beats random ranking of the same sessions; the inference
#      operator serves the student's store with its table, unchanged;
#   3. a job with a student stopped midway (SIGTERM) and restored from its checkpoint
#      publishes the same teacher and student versions as one run straight through;
#   4. runnel embed-reduce keeps the items and refuses a bad --dim; a student store
#      without a student table is refused at load, naming the place.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
seed=7 sessions=6000

"$bin/rn_sim" --policy random --sessions 1 --seed $seed --out /dev/null \
  --embeddings "$tmp/world.txt" 2>/dev/null || bad "rn_sim wrote no table"
if "$bin/runnel" embed-reduce "$tmp/world.txt" "$tmp/d4.txt" --dim 4 >"$tmp/reduce.txt"; then
  same=$(diff <(grep -v '^#' "$tmp/world.txt" | cut -d' ' -f1 | sort) \
    <(grep -v '^#' "$tmp/d4.txt" | cut -d' ' -f1 | sort) >/dev/null && echo yes)
  cols=$(grep -v '^#' "$tmp/d4.txt" | awk '{ print NF }' | sort -u)
  [ "$same" = yes ] && [ "$cols" = 5 ] && ok "embed-reduce: same items, 4 dimensions ($(cat "$tmp/reduce.txt"))" ||
    bad "embed-reduce: items kept: $same, columns: $cols"
else
  bad "embed-reduce failed"
fi
"$bin/runnel" embed-reduce "$tmp/world.txt" "$tmp/x.txt" --dim 17 2>"$tmp/err.txt"
rc=$?
[ $rc = 1 ] && grep -q "world.txt: cannot reduce 2000 items of dimension 16 to 17" "$tmp/err.txt" &&
  ok "embed-reduce --dim 17 refused: $(cat "$tmp/err.txt")" || bad "embed-reduce --dim 17: rc $rc $(cat "$tmp/err.txt")"

student=(--set "operators.learn.student_embeddings=$tmp/d4.txt")
loop() { # NAME [closed-loop args]
  local name=$1
  shift
  if RUNNEL_BIN=$bin bash scripts/closed-loop.sh "$tmp/$name" $seed $sessions "$@" >"$tmp/$name.txt" 2>&1; then
    ok "$name: $(cat "$tmp/$name.txt")"
  else
    bad "$name: the closed loop failed:"; cat "$tmp/$name.txt"; tail -5 "$tmp/$name/job.txt"
  fi
}
loop plain
loop teacher "${student[@]}" --set "operators.learn.student_model_store=$tmp/teacher/student-models"

# 1. the teacher is the plain learner; the student's versions sit beside its versions.
# The loop stops the job when the simulator is done, so the last versions may be cut off:
# compare the versions both runs published.
common=0 differ=0
for f in "$tmp"/plain/models/v*.safetensors; do
  g="$tmp/teacher/models/$(basename "$f")"
  [ -f "$g" ] || continue
  common=$((common + 1))
  cmp -s "$f" "$g" || differ=$((differ + 1))
done
[ $common -ge 8 ] && [ $differ = 0 ] && ok "teacher's $common versions are the plain learner's, byte for byte" ||
  bad "teacher vs plain learner: $differ of $common versions differ"
tv=$(cd "$tmp/teacher/models" && ls v*.json | sort | tr '\n' ' ')
sv=$(cd "$tmp/teacher/student-models" 2>/dev/null && ls v*.json | sort | tr '\n' ' ')
[ -n "$sv" ] && [ "$tv" = "$sv" ] && ok "student versions beside the teacher's: $(echo "$sv" | wc -w)" ||
  bad "student versions '$sv' vs teacher's '$tv'"
last=$(cd "$tmp/teacher/student-models" && ls v*.safetensors | sort | tail -1)
grep -aq '"W":{"dtype":"F32","shape":\[4,10\]' "$tmp/teacher/student-models/$last" &&
  ok "the student's W is 4 x 10 (d = 4, f = 2d + 2)" || bad "the student's $last has no 4 x 10 W"
grep -q 'distill_updates [1-9]' "$tmp/teacher/job.txt" && ok "the job counted distillation steps" ||
  bad "no distill_updates in the job's metrics"

# 2. the student served
# (the job's inference operator serves the student too: the same model kind, its table)
SIM_MODELS="$tmp/student/student-models" SIM_ARGS="--model-embeddings $tmp/d4.txt" \
  loop student "${student[@]}" --set "operators.learn.student_model_store=$tmp/student/student-models" \
  --set "operators.rank.model_store=$tmp/student/student-models" --set "operators.rank.embeddings=$tmp/d4.txt"
served=$(grep -c '"model_version":[1-9]' "$tmp/student/out/recommendations.jsonl" 2>/dev/null)
[ "${served:-0}" -gt 1000 ] && ok "inference served $served impressions from student versions" ||
  bad "inference served ${served:-0} impressions from student versions"
used=$(grep -c '"model_version":[1-9]' "$tmp/student/log.jsonl" 2>/dev/null)
[ "${used:-0}" -gt 1000 ] && ok "$used impressions ranked by student versions" ||
  bad "${used:-0} impressions ranked by student versions"
"$bin/rn_sim" --policy random --sessions $sessions --seed $seed --out /dev/null \
  --returns "$tmp/random.txt" 2>/dev/null
mean() { tail -n 3000 "$1" | awk '{ s += $3 } END { printf "%.3f", s / NR }'; }
ms=$(mean "$tmp/student/returns.txt") mr=$(mean "$tmp/random.txt")
awk -v a="$ms" -v b="$mr" 'BEGIN { exit !(a > 1.5 * b) }' &&
  ok "student served: $ms per session over the last 3,000 vs random's $mr" ||
  bad "student served: $ms per session vs random's $mr"

# 3. a student survives a stop and restore: the job over the plain loop's log, bounded,
# once straight and once stopped with SIGTERM midway (paced so that it is midway) and
# restarted from its checkpoint, publishes the same teacher and student versions
bounded() { # NAME [runnel options]; call it in a subshell: it becomes the job (exec), so
  # that $! of a backgrounded one is the job's pid
  local name=$1
  shift
  RUNNEL_LOG="$tmp/plain/log.jsonl" RUNNEL_FOLLOW=false RUNNEL_VAR="$tmp/$name/var" \
    RUNNEL_OUT="$tmp/$name/out" RUNNEL_MODELS="$tmp/$name/models" \
    RUNNEL_EMBEDDINGS="$tmp/plain/embeddings.txt" RUNNEL_HTTP=127.0.0.1:0 RUNNEL_SERVE=127.0.0.1:0 \
    exec "$bin/runnel" run jobs/guess-you-like.yaml "${student[@]}" \
    --set "operators.learn.student_model_store=$tmp/$name/student-models" \
    --set checkpoint.interval=300ms "$@"
}
(bounded straight --fresh) >"$tmp/straight.txt" 2>&1 || bad "the bounded job failed: $(tail -3 "$tmp/straight.txt")"
(bounded stopped --fresh --set sources.logs.max_rate=8000) >"$tmp/stopped1.txt" 2>&1 &
pid=$!
for _ in $(seq 200); do # until a few versions are out
  [ "$(ls "$tmp/stopped/student-models" 2>/dev/null | grep -c json)" -ge 4 ] && break
  sleep 0.05
done
kill -TERM $pid
wait $pid
before=$(ls "$tmp/stopped/student-models" | grep -c json)
(bounded stopped) >"$tmp/stopped2.txt" 2>&1 || bad "the restarted job failed: $(tail -3 "$tmp/stopped2.txt")"
if grep -q "restoring from" "$tmp/stopped2.txt" && diff -r "$tmp/straight/student-models" "$tmp/stopped/student-models" >/dev/null &&
  diff -r "$tmp/straight/models" "$tmp/stopped/models" >/dev/null; then
  ok "stopped after $before versions and restored: teacher and student stores identical to a straight run"
else
  bad "stop and restore with a student: $(grep restoring "$tmp/stopped2.txt"; diff -rq "$tmp/straight" "$tmp/stopped" | grep -v '/var\|/out' | head -5)"
fi

# 4. configuration errors name the place
"$bin/runnel" validate jobs/guess-you-like.yaml --set operators.learn.student_model_store=/x \
  >/dev/null 2>"$tmp/err.txt"
grep -q "student_model_store=/x:1:[0-9]*: student_model_store and student_embeddings go together" \
  "$tmp/err.txt" && ok "a student store alone is refused: $(cat "$tmp/err.txt")" ||
  bad "a student store alone: $(cat "$tmp/err.txt")"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
