#!/usr/bin/env bash
# Crash test of the recommendation dataflow: log_collector -> online_joiner
# -> experience_collector over 200,000 generated events (out-of-order times,
# late feedback), checkpoints every 0.5 s, killed with SIGKILL at 6 random
# points and restarted; the committed samples, experiences, late feedback and
# dead letters must be identical (after sorting) to a run without crashes.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-crash-rl.XXXXXX)
trap 'rm -rf "$work"' EXIT
JOBNAME=crash-rl OUTPUTS="samples offline experiences late rejected" HEAD=join
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"

"$bin/rn_loggen" --events 200000 --users 20000 --rate 10 --out-of-order 1000 --late-fraction 0.005 \
  --bad-fraction 0.001 --seed 12 --out "$work/in.jsonl" 2>/dev/null || { bad "loggen"; exit 1; }
cat >"$work/job.yaml" <<YAML
job: crash-rl
parallelism: 2
max_parallelism: 64
state: { dir: $work/var/state, cache_size: 2MiB }
checkpoint: { dir: $work/var/ckpt, interval: 500ms, retain: 2 }
watermark: { out_of_orderness: 2s, idle_timeout: 0 }
sources:
  logs: { type: file, path: $work/in.jsonl, max_rate: "\${RATE:-0}" }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: join, op: online_joiner, from: collect, window: 1m, late: late,
      rewards: { click: 1.0, pay: 5.0 } }
  - { id: experience, op: experience_collector, from: join, history: 5, session_gap: 5m,
      label_delay: 1m }
sinks:
  samples: { type: file, path: $work/var/out/samples.jsonl, from: join }
  offline: { type: partitioned_file, dir: $work/var/out/offline, from: join }
  experiences: { type: file, path: $work/var/out/experiences.jsonl, from: experience }
  late: { type: file, path: $work/var/out/late.jsonl }
  rejected: { type: file, path: $work/var/out/rejected.jsonl }
YAML

make_reference
n_s=$(wc -l <"$work/ref-samples.txt")
n_x=$(wc -l <"$work/ref-experiences.txt")
n_l=$(wc -l <"$work/ref-late.txt")
n_o=$(wc -l <"$work/ref-offline.txt")
n_h=$(find "$work/var/out/offline" -mindepth 2 -maxdepth 2 -type d | wc -l)
[ "$n_o" -eq "$n_s" ] && [ "$n_h" -gt 1 ] && ok "offline samples: $n_o lines in $n_h hourly buckets" ||
  bad "offline samples: $n_o lines in $n_h buckets (samples: $n_s)"
[ "$n_s" -gt 50000 ] && [ "$n_x" -eq "$n_s" ] && [ "$n_l" -gt 10 ] &&
  ok "reference: $n_s samples, $n_x experiences, $n_l late" ||
  bad "reference output is off ($n_s samples, $n_x experiences, $n_l late)"

crash_run "kill -9 at 6 random points" 2 6
# Two kills at a slower replay, so the job cannot finish before the restart at 3
# (each run makes at most about 1.5 s of progress: a checkpoint, then up to 0.5 s).
CRASH_RATE=40000 crash_run "kills at parallelism 2, restart at 3" 3 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
