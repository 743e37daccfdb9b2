#!/usr/bin/env bash
# The `window` operator against a reference computation (window_ref.py) on the
# same events: tumbling and sliding windows with six aggregates, allowed
# lateness (late records update and re-emit a fired window; records past it go
# to `late`), session windows; and load-time errors that name the place.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
ref="python3 $RUNNEL_SRC/tests/integration/window_ref.py"
work=$(mktemp -d /tmp/runnel-window.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

AGGS='{ n: count, total: sum(amount), lo: min(amount), hi: max(amount), mean: avg(amount), last: "collect(amount, 3)" }'
# job NAME INPUT WINDOW-KEYS: the input's pay events per user, windowed.
job() {
  cat <<YAML
job: $1
parallelism: 2
watermark: { out_of_orderness: 200ms, idle_timeout: 0, emit_every: 1 }
sources:
  in: { type: file, path: $work/$2 }
operators:
  - { id: collect, op: log_collector, from: in }
  - { id: w, op: window, from: collect, key: user, $3, aggregates: $AGGS, late: late }
sinks:
  out: { type: file, path: $work/$1.jsonl, from: w }
  late: { type: file, path: $work/$1-late.jsonl }
YAML
}

# run NAME INPUT WINDOW-KEYS REF-ARGS...: the job's output against the reference's.
run() {
  local name=$1 input=$2 keys=$3
  shift 3
  job "$name" "$input" "$keys" >"$work/$name.yaml"
  $ref "$@" >"$work/$name-ref.jsonl" || { bad "$name: reference failed"; return; }
  "$bin/runnel" run "$work/$name.yaml" --quiet 2>"$work/$name.err" ||
    { bad "$name: run failed: $(head -3 "$work/$name.err")"; return; }
  local diff n updates
  n=$(grep -vc '"late"' "$work/$name-ref.jsonl")
  updates=$(grep -c '"update": true' "$work/$name-ref.jsonl")
  if diff=$($ref compare "$work/$name-ref.jsonl" "$work/$name.jsonl"); then
    ok "$name: $n results ($updates of them updates) equal the reference's"
  else
    bad "$name: $diff"
  fi
  local want_late
  want_late=$(sed -n 's/^{"late": \([0-9]*\)}$/\1/p' "$work/$name-ref.jsonl")
  if [ -n "$want_late" ]; then
    [ "$(wc -l <"$work/$name-late.jsonl")" = "$want_late" ] &&
      ok "$name: $want_late late records on the late output, as the reference" ||
      bad "$name: $(wc -l <"$work/$name-late.jsonl") late records, reference $want_late"
  fi
}

$ref gen 6000 1 150 0 >"$work/mild.jsonl"    # disorder within out_of_orderness
$ref gen 6000 2 1500 0 >"$work/wild.jsonl"   # much more: late records
$ref gen 6000 3 0 1 >"$work/sorted.jsonl"

run tumbling mild.jsonl "size: 1s" fixed "$work/mild.jsonl" 1000 1000 0 200
run sliding mild.jsonl "size: 1s, slide: 250ms" fixed "$work/mild.jsonl" 1000 250 0 200
run late_dropped wild.jsonl "size: 1s" fixed "$work/wild.jsonl" 1000 1000 0 200
run late_updates wild.jsonl "size: 1s, slide: 500ms, allowed_lateness: 700ms" \
  fixed "$work/wild.jsonl" 1000 500 700 200
grep -q '"update":true' "$work/late_updates.jsonl" && ok "late_updates: updates were emitted" ||
  bad "late_updates: no update emitted"
[ -s "$work/late_dropped-late.jsonl" ] && ok "late_dropped: some records were late" ||
  bad "late_dropped: nothing was late (the test input is too tame)"
AGGS='{ n: count, total: sum(amount), lo: min(amount), hi: max(amount), mean: avg(amount) }' \
  run session sorted.jsonl "session: 40ms" session "$work/sorted.jsonl" 40

# Errors at load time name the place.
err() { # label yaml-keys expected-message
  job bad mild.jsonl "$2" >"$work/bad.yaml"
  local msg
  msg=$("$bin/runnel" validate "$work/bad.yaml" 2>&1 >/dev/null)
  case "$msg" in *"$3"*) ok "error: $1" ;; *) bad "error: $1: got '$msg'" ;; esac
}
err "no size" "slide: 1s" "'window' needs 'size' (tumbling or sliding windows) or 'session'"
err "both" "size: 1s, session: 1s" "give either 'size' (tumbling, sliding) or 'session', not both"
err "slide" "size: 1s, slide: 300ms" "'slide' (300 ms) must divide 'size' (1000 ms)"
AGGS='{ n: cnt }' err "function" "size: 1s" \
  "bad.yaml:8:79: unknown aggregate function 'cnt' (count, sum, min, max, avg, collect)"
AGGS='{ n: coutn }' err "suggestion" "size: 1s" "unknown aggregate function 'coutn' (did you mean 'count'?)"
AGGS='{ n: "sum()" }' err "arguments" "size: 1s" "'sum()': sum takes one field"
AGGS='{ end: count }' err "reserved" "size: 1s" "'end' names a field of every window result"
AGGS='{ n: "collect(amount)" }' err "collect" "session: 1s" \
  "collect is not available with session windows"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
