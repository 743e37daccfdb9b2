#!/usr/bin/env bash
# Nexmark: the generator's stream (proportions, ids, hot auctions, event time;
# the same for the same seed, another for another) and the shipped queries
# (bench/nexmark/q0, q1, q2, q5, q11), run at parallelism 2 on 40,000 events,
# against a straightforward reference computation over the same events
# (nexmark_ref.py): the same results, record for record.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
ref="python3 $RUNNEL_SRC/tests/integration/nexmark_ref.py"
work=$(mktemp -d /tmp/runnel-nexmark.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# 40,000 events at 1,000 per second of event time: 40 s of auctions.
small=(--set sources.events.events=40000 --set sources.events.rate=1000 --set parallelism=2)
dump() { # seed output
  "$bin/runnel" run bench/nexmark/q0.yaml --quiet "${small[@]}" --set sources.events.seed="$1" \
    --set sinks.out.type=file --set sinks.out.path="$2" --set sinks.out.from=events
}
dump 1 "$work/events.jsonl" || bad "the generator's run failed"
dump 1 "$work/again.jsonl" && cmp -s "$work/events.jsonl" "$work/again.jsonl" &&
  ok "the same seed gives the same $(wc -l <"$work/events.jsonl") events" || bad "seed 1 twice differs"
dump 2 "$work/other.jsonl" && ! cmp -s "$work/events.jsonl" "$work/other.jsonl" &&
  ok "another seed gives another stream" || bad "seeds 1 and 2 give the same stream"
msg=$($ref check "$work/events.jsonl")
case "$msg" in ok:*) ok "generator: $msg" ;; *) bad "generator: $msg" ;; esac

for q in q0 q1 q2 q5 q11; do
  "$bin/runnel" run "bench/nexmark/$q.yaml" --quiet "${small[@]}" \
    --set sinks.out.type=file --set sinks.out.path="$work/$q.jsonl" 2>"$work/$q.err" ||
    { bad "$q: run failed: $(head -3 "$work/$q.err")"; continue; }
  $ref "$q" "$work/events.jsonl" >"$work/$q-ref.jsonl"
  n=$(wc -l <"$work/$q-ref.jsonl")
  [ "$n" -gt 5 ] || bad "$q: the reference has only $n results"
  if diff=$($ref compare "$work/$q-ref.jsonl" "$work/$q.jsonl"); then
    ok "$q: $n results equal the reference's"
  else
    bad "$q: $diff"
  fi
done

# map's errors: at load time naming the place, at run time naming the field.
mapjob() { # where-or-set
  cat <<YAML
job: nexmark_map
sources:
  events: { type: nexmark, events: 100 }
operators:
  - { id: m, op: map, from: events, $1 }
sinks:
  out: { type: discard, from: m }
YAML
}
maperr() { # label keys expected
  mapjob "$2" >"$work/map.yaml"
  local msg
  msg=$("$bin/runnel" run "$work/map.yaml" --quiet 2>&1 >/dev/null)
  case "$msg" in *"$3"*) ok "map error: $1" ;; *) bad "map error: $1: got '$msg'" ;; esac
}
maperr "syntax" 'where: "kind = bid"' "map.yaml:5:44: cannot read condition 'kind = bid'"
maperr "unknown field" 'where: "colour == 1"' "record type 'nexmark' has no field 'colour'"
maperr "unknown value" 'where: "kind == bids"' "'bids' is not a value of field 'kind' of 'nexmark'"
maperr "text in arithmetic" 'set: { price: "channel * 2" }' "field 'channel' of 'nexmark' is text"
maperr "set on text" 'set: { url: "price" }' "'set': 'url' is not a numeric field of 'nexmark'"
mapjob 'where: ["kind == bid", "channel == '"'"'Apple'"'"'"]' >"$work/map.yaml"
"$bin/runnel" run "$work/map.yaml" --quiet --set sinks.out.type=file --set sinks.out.path="$work/apple.jsonl" &&
  [ -s "$work/apple.jsonl" ] && ! grep -qv '"channel":"Apple"' "$work/apple.jsonl" &&
  ok "map: a text condition keeps exactly the matching records" || bad "map: text condition"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
