#!/usr/bin/env bash
# Serving-latency benchmark:
#   (a) in-process: build/bench_serve inproc — the inference operator's scoring path
#       (rn_phi_simple, rn_embed_rows, rn_model_advantages, rn_slate_pick through a model
#       feed) for requests of 100 candidates out of 10,000 64-d items; R rounds of S seconds
#       without swaps and S seconds with a new model version every 100 ms (feed poll 10 ms),
#       interleaved; p50/p99/p99.9 and requests per CPU-second of the scoring thread;
#   (b) over loopback HTTP: `runnel run bench/jobs/serve.yaml` (an `inference` operator,
#       serve: threads 1, a followed log so that it stays up, no learner) while
#       `bench_serve publish` writes a version every 100 ms into its store; bench_serve http
#       POSTs /api/v1/recommend with 100 candidates on one keep-alive connection, R runs of
#       S seconds, then with no publisher for comparison; wrk (when installed:
#       apt-get install wrk) as a second opinion on requests/s.
#   bash bench/run_serve.sh [S=3] [R=5]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-3}
R=${2:-5}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-serve.XXXXXX)
jpid= ppid=
cleanup() {
  [ -n "$ppid" ] && kill "$ppid" 2>/dev/null && wait "$ppid" 2>/dev/null
  [ -n "$jpid" ] && kill "$jpid" 2>/dev/null && wait "$jpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== (a) in-process, $R rounds of ${S} s quiet + ${S} s with a version every 100 ms"
build/bench_serve inproc --seconds "$S" --rounds "$R" --candidates 100 --items 10000 \
  --publish-every-ms 100 --poll-ms 10

echo "== (b) loopback HTTP, inference operator on 1 serving thread"
export BENCH_DIR=$tmp BENCH_PORT=$((20000 + RANDOM % 20000))
build/bench_serve setup --dir "$tmp" --items 10000 --users 1000
build/runnel run bench/jobs/serve.yaml --quiet >"$tmp/job.out" 2>&1 &
jpid=$!
url=http://127.0.0.1:$BENCH_PORT
for _ in $(seq 1 500); do
  curl -sf "$url/api/v1/inference" >/dev/null 2>&1 && break
  kill -0 "$jpid" 2>/dev/null || { echo "the job exited:"; cat "$tmp/job.out"; exit 1; }
  sleep 0.02
done
# let the log's clicks (the users' histories) reach the operator
sleep 1
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.* $1 \+\([0-9][0-9.]*\) .*/\1/p"; }
for mode in swaps quiet; do
  : >"$tmp/$mode.txt"
  for i in $(seq "$R"); do
    if [ "$mode" = swaps ]; then
      build/bench_serve publish --store "$tmp/store" --every-ms 100 --seconds "$((S + 2))" >/dev/null &
      ppid=$!
    fi
    build/bench_serve http --url "$url" --seconds "$S" --candidates 100 --items 10000 \
      --users 1000 >"$tmp/run.out"
    [ -n "$ppid" ] && { wait "$ppid"; ppid=; }
    grep -E '^(loopback|first)' "$tmp/run.out" | sed "s/^/  $mode run $i: /"
    l=$(grep '^loopback' "$tmp/run.out")
    echo "$(echo "$l" | field 'req') $(echo "$l" | sed 's/.* \([0-9]*\) req\/s.*/\1/') $(echo "$l" | field p50) $(echo "$l" | field p99) $(echo "$l" | field p99.9)" >>"$tmp/$mode.txt"
  done
  echo "loopback HTTP, $mode: median of $R runs: $(cut -d' ' -f2 "$tmp/$mode.txt" | median) req/s," \
    "p50 $(cut -d' ' -f3 "$tmp/$mode.txt" | median) us, p99 $(cut -d' ' -f4 "$tmp/$mode.txt" | median) us," \
    "p99.9 $(cut -d' ' -f5 "$tmp/$mode.txt" | median) us"
done
curl -s "$url/api/v1/inference"
if command -v wrk >/dev/null; then
  build/bench_serve http --body-file "$tmp/body.json" --candidates 100 --items 10000 --users 1000
  cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/body.json"); wrk.body = f:read("*a"); f:close()
LUA
  echo "== wrk, 1 connection, 1 thread, ${S} s (one fixed body), no publisher"
  wrk -t1 -c1 -d"${S}s" --latency -s "$tmp/post.lua" "$url/api/v1/recommend" |
    grep -E 'Latency|50%|99%|Requests/sec'
fi
