#!/usr/bin/env bash
# A running job rescaled from 2 workers to 3 and back to 2 (`runnel rescale`:
# a savepoint, every task stopped, the tasks spread over the new number of
# workers, each restored from its checkpoint): the committed output — every
# event, and per-user window counts kept in keyed state — equals a run that
# was never rescaled: nothing doubled, nothing lost.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clrescale.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; stop_kafka; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

start_kafka "events:6"
"$bin/rn_loggen" --events 12000 --users 600 --seed 4 --out "$work/raw.jsonl" 2>/dev/null
produce_by_user "$work/raw.jsonl" events
produced=$(kcat_count events)

job() { # run
  cat >"$work/$1.yaml" <<YAML
job: counts-$1
state: { dir: $work/$1/state }
checkpoint: { dir: $work/$1/ckpt, interval: 300ms }
sources:
  # max_rate keeps the job running about 13 s, so both rescales come mid-run on a loaded machine
  logs: { type: kafka, brokers: "$BOOT", topics: events, stop_at_end: true, max_rate: 150,
          properties: { fetch.wait.max.ms: 10 } }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 10s }
sinks:
  events: { type: file, path: $work/$1/out/events.jsonl, from: collect }
  wcounts: { type: file, path: $work/$1/out/counts.jsonl, from: counts }
  rejected: { type: file, path: $work/$1/out/rejected.jsonl }
YAML
}
committed() { cat "$work/$1"/out/$2.p*.jsonl 2>/dev/null | sort; }
on_workers() { # id: distinct workers running its tasks
  rn status "$1" | python3 -c 'import json,sys; print(len({t["worker"] for t in json.load(sys.stdin)["tasks"] if t["state"] == "running"}))'
}

# rescale JOB N: `runnel rescale`. A rescale whose savepoint failed moves
# nothing (the job runs on as it was): a task that is still restoring its
# state cannot take a savepoint yet, and says so. It is tried again, visibly,
# up to three times; the counts below stay exact.
rescale() {
  local try
  for try in 1 2 3; do
    rn rescale "$1" "$2" >"$work/o" 2>"$work/e" && return 0
    grep -q "savepoint failed" "$work/e" || return 1
    echo "NOTE rescale of $1 to $2: the savepoint failed; trying again ($(tr '\n' ' ' <"$work/e"))"
    sleep 2
  done
  return 1
}

start_cluster 2
job ref
rn submit "$work/ref.yaml" >/dev/null || bad "submit ref"
wait_job counts-ref finished 60 || { bad "reference run: $(job_field counts-ref state)"; exit 1; }

job re
rn submit "$work/re.yaml" >/dev/null || bad "submit"
sleep 1
rescale counts-re 3 && [ "$(on_workers counts-re)" = 3 ] &&
  ok "rescaled 2 -> 3: $(cat "$work/o"), tasks on 3 workers" || bad "rescale to 3: $(cat "$work/o" "$work/e")"
mid=$(committed re events | wc -l)
[ "$mid" -gt 0 ] && [ "$mid" -lt "$produced" ] && [ "$(job_field counts-re state)" = running ] &&
  ok "the rescale came mid-run ($mid of $produced events committed)" || bad "not mid-run: $mid of $produced"
sleep 1
rescale counts-re 2 && [ "$(on_workers counts-re)" = 2 ] &&
  ok "rescaled 3 -> 2: $(cat "$work/o")" || bad "rescale to 2: $(cat "$work/o" "$work/e")"
[ "$(job_field counts-re state)" = running ] && ok "still mid-run after the second rescale" ||
  bad "the job ended before the second rescale"
[ "$(ls "$work/re/ckpt/counts-re"/savepoint-*.json | wc -l)" -eq 2 ] && ok "each rescale took a savepoint" ||
  bad "savepoints: $(ls "$work/re/ckpt/counts-re")"
wait_job counts-re finished 60 && ok "the rescaled run finished" || bad "rescaled run: $(job_field counts-re state)"

for f in events counts; do
  if cmp -s <(committed ref $f) <(committed re $f); then
    ok "$f: identical to the run without rescales ($(committed re $f | wc -l) lines)"
  else
    bad "$f: $(committed re $f | wc -l) lines, without rescales $(committed ref $f | wc -l)"
  fi
done
n=$(committed re events | wc -l)
r=$(committed re rejected | wc -l)
[ $((n + r)) -eq "$produced" ] && [ "$(committed re events | uniq -d | wc -l)" -eq 0 ] &&
  ok "nothing doubled or lost: $n events + $r dead letters = $produced" || bad "$n + $r of $produced"
# One instance of a task at a time: in the workers' log every "started" of a
# task follows the end of its previous instance (stopped, finished, failed).
overlap=$(grep -E '^worker [0-9]+: task counts-re/p[0-9]+ (started|stopped|finished|failed)' "$work/cluster.err" |
  awk '{ split($4, a, "/"); t = a[2]
         if ($5 == "started") { if (run[t]) { print t; exit } run[t] = 1 } else run[t] = 0 }')
[ -z "$overlap" ] && ok "no task ran twice at once (each start came after the previous instance ended)" ||
  bad "task $overlap was started again while its previous instance still ran"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
