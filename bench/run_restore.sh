#!/usr/bin/env bash
# Restore benchmark: builds KEYS keys of keyed state with VALUE_BYTES-byte
# incompressible values (build/bench_state --fill: every key written once,
# then the drained job's final checkpoint), then starts the job R times from
# its latest checkpoint (--restore) and prints, for each start, the job load,
# the time to the first record processed, and the time to the end of a short
# input of 1,024 keys whose counts must all come back from the restored
# state. The default (1,000,000 x 1,000 bytes, about 1 GB) needs about 2.5 GB
# of free disk in /tmp while it runs; everything is removed at the end.
#   bash bench/run_restore.sh [KEYS=1000000] [VALUE_BYTES=1000] [R=3] [PARALLELISM=1]
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
vbytes=${2:-1000}
R=${3:-3}
par=${4:-1}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-restore.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
args=(--keys "$keys" --value-bytes "$vbytes" --parallelism "$par" --interval 1h
      --cache 64MiB --dir "$tmp/s")
build/bench_state --fill 1 "${args[@]}"
ck=$(ls -d "$tmp"/s/ckpt/*/chk-* | sort -t- -k2 -n | tail -1)
echo "checkpoint: $(du -sm "$ck" | cut -f1) MB in $(find "$ck" -name '*.sst' | wc -l) SST files"
: >"$tmp/first.txt"
for _ in $(seq "$R"); do
  out=$(build/bench_state --restore 1 "${args[@]}")
  echo "$out"
  echo "$out" | sed 's/.*first record processed \([0-9.]*\) s.*/\1/' >>"$tmp/first.txt"
done
echo "restore to first record, median of $R: $(sort -n "$tmp/first.txt" |
  awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}') s"
