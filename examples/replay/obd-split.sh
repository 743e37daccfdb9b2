#!/usr/bin/env bash
# obd-split.sh — the training part of a converted OBD event log, cut where
# `runnel evaluate --train-fraction F` cuts it, so that a model learns only from
# lists that evaluate does not evaluate on.
#
#   examples/replay/obd-split.sh SAMPLES EVENTS F OUT
#
# SAMPLES: the joiner's labelled lists from a replay of the whole of EVENTS (e.g.
# var/out/obd/samples.jsonl); EVENTS: rn_convert obd's output; F: the train fraction.
# `runnel evaluate` sorts the n lists by (ts, request) and evaluates from the
# floor(F·n)-th on (0-based); T is that list's ts (its impression's time). OUT gets every
# event of the requests whose impression (request ts + 1 ms) lies before T: the lists
# before the cut, less any that share T with the first evaluated one. Prints T and the
# number of requests kept on stderr. Exit 1 on a bad argument or an empty result.
set -euo pipefail
if [ $# -ne 4 ]; then
    echo "usage: obd-split.sh SAMPLES EVENTS F OUT" >&2
    exit 2
fi
samples=$1 events=$2 frac=$3 out=$4
n=$(grep -c . "$samples")
cut=$(awk -v n="$n" -v f="$frac" 'BEGIN { c = int(f * n); if (c >= n) c = n - 1; print c }')
if [ "$cut" -le 0 ]; then
    echo "obd-split.sh: train fraction $frac of $n lists leaves nothing to train on" >&2
    exit 1
fi
T=$(grep -o '"ts":[0-9]*' "$samples" | cut -d: -f2 | sort -n | sed -n "$((cut + 1))p")
awk -v T="$T" '
    match($0, /"ts":[0-9]+/) { ts = substr($0, RSTART + 5, RLENGTH - 5) + 0 }
    match($0, /"request":"[^"]*"/) { r = substr($0, RSTART, RLENGTH) }
    /"type":"request"/ { if (ts + 1 < T) { keep[r] = 1; kept++ } }
    (r in keep)
    END { printf "obd-split: lists=%d cut=%d T=%s requests kept=%d\n", '"$n"', '"$cut"', T, kept > "/dev/stderr" }
' "$events" >"$out.tmp"
mv "$out.tmp" "$out"
[ -s "$out" ] || { echo "obd-split.sh: nothing before $T" >&2; exit 1; }
