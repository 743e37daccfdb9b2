#!/usr/bin/env bash
# Shared by the Kafka tests: a local Kafka from `runnel dev-kafka` and kcat
# (Debian's kcat, a Kafka client independent of runnel) to feed and read it.
# The caller sets bin and work, and sources crash_lib.sh first (ok/bad).
#
#   start_kafka "events:4,out:4"   starts dev-kafka; sets BOOT and KPID
#   kcat_count TOPIC               messages in TOPIC (all partitions)
#   kcat_dump TOPIC [FMT]          every message, one per line, with kcat's -f FMT

if ! command -v kcat >/dev/null; then
  echo "kcat is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

KPID=""
stop_kafka() { [ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null; KPID=""; }

start_kafka() { # topics
  "$bin/runnel" dev-kafka --topics "$1" >"$work/boot.txt" 2>"$work/dev-kafka.err" &
  KPID=$!
  local i
  for i in $(seq 100); do [ -s "$work/boot.txt" ] && break; sleep 0.05; done
  BOOT=$(head -1 "$work/boot.txt")
  [ -n "$BOOT" ] || { echo "dev-kafka did not start: $(cat "$work/dev-kafka.err")" >&2; exit 1; }
}

kcat_dump() { # topic [format]
  kcat -C -q -b "$BOOT" -t "$1" -e -f "${2:-%s\n}" 2>/dev/null
}

kcat_count() { # topic
  kcat_dump "$1" 'x\n' | wc -l
}
