#!/usr/bin/env bash
# Shared by the cluster tests: a local cluster from `runnel cluster start`
# and the CLI against it. The caller sets bin and work, sources crash_lib.sh
# (ok/bad) and kafka_lib.sh first.
#
#   start_cluster N [opts]   starts a coordinator and N workers; sets ADDR, CPID
#   rn ARGS...               the CLI against that coordinator
#   wait_job ID STATE S      waits up to S seconds for the job's state
#   worker_pid SLOT          the pid of the live worker in SLOT
#   recs_job NAME [RATE] [STOP]  writes $work/NAME.yaml: job recs-NAME, the
#                            recommendation pipeline from topic `events`
#   committed NAME SINK      the committed lines of that job's file sink, sorted

CPID=""
stop_cluster() { [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null; CPID=""; }

# Stops the cluster (workers stop their tasks, then the coordinator ends) and
# checks that no process of it reported a sanitizer error or failed to stop.
finish_cluster() {
  stop_cluster
  if grep -q "Sanitizer" "$work/cluster.err"; then
    bad "a sanitizer report in the cluster's log"
    grep -A20 "Sanitizer" "$work/cluster.err" | head -40
  else
    ok "the cluster stopped cleanly"
  fi
}

start_cluster() { # workers [more options]
  local n=$1
  shift
  "$bin/runnel" cluster start --workers "$n" --listen 127.0.0.1:0 --dir "$work/cluster" \
    --heartbeat 200ms --heartbeat-timeout 3s "$@" >"$work/cluster.out" 2>>"$work/cluster.err" &
  CPID=$!
  local i
  for i in $(seq 100); do [ -s "$work/cluster.out" ] && break; sleep 0.05; done
  ADDR=$(sed -n 's|^coordinator http://\(.*\)/$|\1|p' "$work/cluster.out")
  [ -n "$ADDR" ] || { echo "the cluster did not start: $(tail -3 "$work/cluster.err")" >&2; exit 1; }
  for i in $(seq 100); do
    [ "$("$bin/runnel" workers --coordinator "$ADDR" | awk '$4 == "yes"' | wc -l)" -ge "$n" ] && break
    sleep 0.1
  done
}

rn() { "$bin/runnel" "$@" --coordinator "$ADDR"; }

job_field() { # id field
  rn status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

wait_job() { # id state seconds
  local i
  for i in $(seq $(($3 * 10))); do
    [ "$(job_field "$1" state 2>/dev/null)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

worker_pid() { # slot
  rn workers | awk -v s="$1" '$2 == s && $4 == "yes" { print $3 }'
}

# Produces a JSON-lines file to TOPIC keyed by its "user" field, as a
# recommender's log is keyed (every event of a user in one partition).
produce_by_user() { # file topic
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line: continue
    try: user = json.loads(line).get("user") or "-"
    except ValueError: user = "-"
    print(user + "\t" + line)' "$1" | kcat -P -q -b "$BOOT" -t "$2" -K '\t' -l /dev/stdin
}

# The recommendation pipeline (log_collector -> online_joiner) as job
# recs-NAME, reading topic `events` at RATE messages/s per task (default 300),
# to the end when STOP is true (the default); its state, checkpoints and file
# sinks under $work/NAME.
recs_job() { # name [rate] [stop_at_end]
  cat >"$work/$1.yaml" <<YAML
job: recs-$1
state: { dir: $work/$1/state }
checkpoint: { dir: $work/$1/ckpt, interval: 300ms }
watermark: { out_of_orderness: 5s }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: events, stop_at_end: ${3:-true}, max_rate: ${2:-300},
          properties: { fetch.wait.max.ms: 10 } }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: join, op: online_joiner, from: collect, window: 30m, rewards: { click: 1.0, pay: 5.0 } }
sinks:
  events: { type: file, path: $work/$1/out/events.jsonl, from: collect }
  samples: { type: file, path: $work/$1/out/samples.jsonl, from: join }
  rejected: { type: file, path: $work/$1/out/rejected.jsonl }
YAML
}

committed() { cat "$work/$1"/out/$2.p*.jsonl 2>/dev/null | sort; } # name sink
