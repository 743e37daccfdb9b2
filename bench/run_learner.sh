#!/usr/bin/env bash
# Learner benchmark, side by side with PyTorch on the same machine in the same run:
#   1. build/bench_learner gen writes synthetic transitions (D = 64, F = 130, 10 items each)
#      to one raw file that both sides read;
#   2. agreement: runnel (rn_learner_update) and bench/learner_torch.py take the same
#      updates from the same zero model; their loss curves and final parameters are compared;
#   3. throughput: R rounds of runnel, PyTorch on one thread (torch.set_num_threads(1) and
#      OPENBLAS_NUM_THREADS=1) and PyTorch with its default threads, interleaved; medians of
#      transitions per CPU-second (getrusage user + sys of the update loop) and the ratio.
#   bash bench/run_learner.sh [UPDATES=5000] [R=5]
# Needs Debian's python3-torch (installed here with apt-get when missing: about 1 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
U=${1:-5000}
R=${2:-5}
PY=/usr/bin/python3
bash scripts/build.sh build >/dev/null
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "python3-torch missing: installing it with apt-get (large download)"
  apt-get install -y python3-torch >/dev/null
fi
tmp=$(mktemp -d /tmp/runnel-bench-learner.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "torch $("$PY" -c 'import torch; print(torch.__version__)'), $(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null || true)"
build/bench_learner gen --out "$tmp/data.bin" --transitions 8192 --seed 7
echo "== agreement (2000 updates from a zero model)"
OPENBLAS_NUM_THREADS=1 build/bench_learner run --data "$tmp/data.bin" --updates 2000 \
  --curve "$tmp/curve.txt" --params "$tmp/params.bin" >/dev/null
OPENBLAS_NUM_THREADS=1 "$PY" bench/learner_torch.py "$tmp/data.bin" --updates 2000 \
  --check-curve "$tmp/curve.txt" --check-params "$tmp/params.bin" | grep '^agreement'
echo "== throughput: $U updates of 32 per run, $R rounds"
rate() { sed 's/.* \([0-9]*\) transitions per CPU-second.*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
: >"$tmp/runnel" && : >"$tmp/torch1" && : >"$tmp/torchN"
for i in $(seq "$R"); do
  OPENBLAS_NUM_THREADS=1 build/bench_learner run --data "$tmp/data.bin" --updates "$U" | tee -a "$tmp/runnel.log" | rate >>"$tmp/runnel"
  OPENBLAS_NUM_THREADS=1 "$PY" bench/learner_torch.py "$tmp/data.bin" --updates "$U" --threads 1 | tee -a "$tmp/torch1.log" | rate >>"$tmp/torch1"
  "$PY" bench/learner_torch.py "$tmp/data.bin" --updates "$U" --threads 0 | tee -a "$tmp/torchN.log" | rate >>"$tmp/torchN"
  echo "round $i: runnel $(tail -1 "$tmp/runnel"), torch 1 thread $(tail -1 "$tmp/torch1"), torch default $(tail -1 "$tmp/torchN") transitions per CPU-second"
done
r=$(median <"$tmp/runnel") t1=$(median <"$tmp/torch1") tn=$(median <"$tmp/torchN")
wn=$(sed 's/.* \([0-9]*\) per wall-second.*/\1/' "$tmp/torchN.log" | median)
echo "median of $R: runnel $r, torch (1 thread) $t1, torch (default threads) $tn transitions per CPU-second ($wn per wall-second)"
awk -v r="$r" -v a="$t1" -v b="$tn" 'BEGIN {printf "runnel / torch: %.2fx (1 thread), %.2fx (default threads)\n", r / a, r / b}'
