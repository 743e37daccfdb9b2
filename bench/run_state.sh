#!/usr/bin/env bash
# Keyed-state benchmark, side by side with RocksDB's own db_bench on the same
# machine in the same run:
#   1. runnel: keyed count over 1,000,000 distinct keys, Zipf(1.0) key
#      distribution, 2 counting threads, checkpoints every 10 s
#      (build/bench_state; per-thread records per CPU-second, checkpoint
#      durations and the longest pipeline stall of each checkpoint);
#   2. db_bench fillrandom and readrandom for the same key and value sizes
#      (22-byte keys: key group, state id, key, namespace; 8-byte values),
#      WAL off, LZ4, one thread.
#   bash bench/run_state.sh [SECONDS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
bash scripts/build.sh build >/dev/null
command -v db_bench >/dev/null || { echo "db_bench missing: apt-get install rocksdb-tools"; exit 1; }
tmp=$(mktemp -d /tmp/runnel-bench-state.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== runnel keyed count"
build/bench_state --keys 1000000 --zipf 1.0 --seconds "$secs" --parallelism 2 --interval 10s \
  --cache 64MiB --dir "$tmp/runnel" 2>&1 | grep -E 'keyed count|head=count|checkpoints|^  [0-9]'
echo "== RocksDB db_bench (same key/value sizes, WAL off, LZ4, 1 thread)"
db_bench --benchmarks=fillrandom,readrandom --num=1000000 --reads=1000000 --key_size=22 \
  --value_size=8 --disable_wal=1 --compression_type=lz4 --cache_size=33554432 --threads=1 \
  --batch_size=100 --db="$tmp/db_bench" 2>&1 | grep -E '^(fillrandom|readrandom)'
