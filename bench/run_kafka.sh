#!/usr/bin/env bash
# Kafka benchmark, one worker: Kafka -> log_collector -> online_joiner -> Kafka
# against the same messages moved by kcat alone and written by a bare
# transactional producer. Starts `runnel dev-kafka` (librdkafka's mock
# cluster: 3 brokers in one process), generates N event lines with
# build/rn_loggen, produces them with kcat to topic `in` (64 partitions, spread evenly, so
# that no partition passes the mock's 5 MiB), then runs, R rounds of:
#   (1) kcat: consume `in` to the end and produce every message to `kout`
#       (two kcat processes in a pipe; plain producer);
#   (2) build/bench_kafka_producer: the same lines, read from memory, to `bout`
#       through transactions committed every CKPT (default 1s) like the sink's;
#   (3) runnel run bench/jobs/kafka.yaml, kafka sink mode exactly_once,
#       checkpoints every CKPT;
#   (4) the same, mode at_least_once;
#   (5) bench/jobs/kafka_collect.yaml: the same without the joiner (Kafka ->
#       log_collector -> Kafka, exactly_once): runnel's Kafka path alone.
# Every case is timed from its own process(es): wall seconds and CPU seconds
# (user + sys of the process and its children); the mock cluster's own CPU
# during each case is printed beside it. Prints medians over the R rounds and
# the ratios of runnel to the baselines. With BASE set to another build
# directory of runnel (say main's, built in a worktree), cases (3)-(5) also run
# with that build's runnel in every round, right after this build's, and the
# table gains their rows and the ratios of this build to that one.
#   bash bench/run_kafka.sh [N=300000] [R=3] [CKPT=1s]
#   BASE=/path/to/other/build bash bench/run_kafka.sh 300000 3
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
R=${2:-3}
CKPT=${3:-1s}
BASE=${BASE:-}
[ -z "$BASE" ] || [ -x "$BASE/runnel" ] || { echo "BASE=$BASE: no runnel there" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is not installed (apt-get install kcat)" >&2; exit 1; }
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-kafka.XXXXXX)
KPID=""
trap '[ -n "$KPID" ] && kill "$KPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

build/runnel dev-kafka --topics in:64,kout:64,bout:64,out:64 >"$tmp/boot" 2>"$tmp/dev-kafka.err" &
KPID=$!
for _ in $(seq 200); do [ -s "$tmp/boot" ] && break; sleep 0.05; done
BOOT=$(head -1 "$tmp/boot")
[ -n "$BOOT" ] || { echo "dev-kafka did not start: $(cat "$tmp/dev-kafka.err")" >&2; exit 1; }

build/rn_loggen --events "$N" --seed 1 --out "$tmp/log.jsonl" 2>/dev/null
kcat -P -q -b "$BOOT" -t in -p -1 -l "$tmp/log.jsonl" # spread evenly
got=$(kcat -C -q -b "$BOOT" -t in -e -X fetch.wait.max.ms=10 -f 'x\n' | wc -l)
[ "$got" -eq "$N" ] || { echo "topic 'in' holds $got messages, not $N (mock limits?)" >&2; exit 1; }
echo "input: $N messages of $(($(stat -c %s "$tmp/log.jsonl") / N)) bytes on average in 64 partitions;" \
  "checkpoints / transactions every $CKPT"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$KPID/stat"; } # the mock cluster's CPU, in clock ticks
hz=$(getconf CLK_TCK)
ms=$(awk -v d="$CKPT" 'BEGIN {v = d + 0; if (d ~ /ms$/) print v; else print v * 1000}')

# timed NAME CMD...: runs CMD under /usr/bin/time and appends "wall cpu kafka_cpu" to NAME.txt.
timed() {
  local name=$1; shift
  local k0; k0=$(ticks)
  /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@" >"$tmp/$name.last" 2>&1 ||
    { echo "($name) failed:" >&2; tail -5 "$tmp/$name.last" >&2; exit 1; }
  local k1; k1=$(ticks)
  awk -v k=$((k1 - k0)) -v hz="$hz" '{printf "%s %.3f %.3f\n", $1, $2 + $3, k / hz}' "$tmp/time" \
    >>"$tmp/$name.txt"
}
runnel_case() { # NAME MODE JOB [BUILD]
  rm -rf "$tmp/o-$1"
  BENCH_BOOT=$BOOT BENCH_IN=in BENCH_TOPIC=out BENCH_MODE=$2 BENCH_OUT=$tmp/o-$1 \
    BENCH_INTERVAL=$CKPT timed "$1" "${4:-build}/runnel" run "$3"
  grep -E '^  (logs|join|out) ' "$tmp/$1.last" >"$tmp/$1.ops"
  grep ' thread chain=' "$tmp/$1.last" | sed 's/.* head=\([a-z]*\) .* cpu_s=\([0-9.]*\) .*/\1 \2/' \
    >>"$tmp/$1.threads"
  local consumed; consumed=$(awk '$1 == "logs" {print $5}' "$tmp/$1.ops")
  [ "$consumed" -eq "$N" ] || { echo "($1) consumed $consumed of $N messages" >&2; exit 1; }
  # The sink acknowledged every record it was given (its `messages` metric is
  # counted after a successful produce; the final flush checks delivery).
  awk '$1 == "out" { for (i = 1; i < NF; i++) if ($i == "messages") m = $(i + 1); in_ = $3 }
       END { exit !(m == in_ && m > 0) }' "$tmp/$1.ops" ||
    { echo "($1) the sink did not write every record: $(grep '^  out' "$tmp/$1.ops")" >&2; exit 1; }
}

for r in $(seq "$R"); do
  timed kcat bash -c "kcat -C -q -b '$BOOT' -t in -e -X fetch.wait.max.ms=10 -D '\n' |
    kcat -P -q -b '$BOOT' -t kout -X linger.ms=5"
  timed producer build/bench_kafka_producer --brokers "$BOOT" --topic bout --in "$tmp/log.jsonl" \
    --key-field user --txn-messages 1000000000 --txn-ms "$ms"
  runnel_case eos exactly_once bench/jobs/kafka.yaml
  [ -z "$BASE" ] || runnel_case base_eos exactly_once bench/jobs/kafka.yaml "$BASE"
  runnel_case alo at_least_once bench/jobs/kafka.yaml
  [ -z "$BASE" ] || runnel_case base_alo at_least_once bench/jobs/kafka.yaml "$BASE"
  runnel_case col exactly_once bench/jobs/kafka_collect.yaml
  [ -z "$BASE" ] || runnel_case base_col exactly_once bench/jobs/kafka_collect.yaml "$BASE"
  echo "round $r/$R done" >&2
done

sed -n 's/.*txns=\([0-9]*\).*/\1/p' "$tmp/producer.last" >"$tmp/producer.txns"
echo "runnel's output: $(awk '$1 == "join" {print $5}' "$tmp/eos.ops") samples (one per impression)" \
  "for $N input messages; transactions in the last exactly_once run:" \
  "$(awk '$1 == "out" {for (i = 1; i < NF; i++) if ($i == "transactions") print $(i + 1)}' "$tmp/eos.ops");" \
  "bare producer: $(cat "$tmp/producer.txns")"
printf '%-44s %12s %12s %14s %14s\n' "case (median of $R)" "wall s" "cpu s" "msgs/s" "msgs/cpu-s"
declare -A rate cpurate
cases="kcat producer eos alo col"
[ -z "$BASE" ] || cases="$cases base_eos base_alo base_col"
for c in $cases; do
  wall=$(awk '{print $1}' "$tmp/$c.txt" | median)
  cpu=$(awk '{print $2}' "$tmp/$c.txt" | median)
  kc=$(awk '{print $3}' "$tmp/$c.txt" | median)
  rate[$c]=$(awk -v n="$N" -v w="$wall" 'BEGIN {printf "%.0f", n / w}')
  cpurate[$c]=$(awk -v n="$N" -v w="$cpu" 'BEGIN {printf "%.0f", n / w}')
  case $c in
    kcat) label="(1) kcat -C | kcat -P" ;;
    producer) label="(2) bare transactional producer" ;;
    eos) label="(3) runnel, kafka sink exactly_once" ;;
    alo) label="(4) runnel, kafka sink at_least_once" ;;
    col) label="(5) runnel without the joiner, exactly_once" ;;
    base_eos) label="(3) with BASE's runnel" ;;
    base_alo) label="(4) with BASE's runnel" ;;
    base_col) label="(5) with BASE's runnel" ;;
  esac
  printf '%-44s %12s %12s %14s %14s   (mock cluster: %s cpu-s)\n' "$label" "$wall" "$cpu" \
    "${rate[$c]}" "${cpurate[$c]}" "$kc"
  echo "    all runs (wall cpu mock-cpu): $(tr '\n' ';' <"$tmp/$c.txt")"
  if [ -s "$tmp/$c.threads" ]; then
    for head in $(awk '{print $1}' "$tmp/$c.threads" | sort -u); do
      echo "    thread headed by '$head': median $(awk -v h="$head" '$1 == h {print $2}' \
        "$tmp/$c.threads" | median) cpu-s"
    done
  fi
done
for c in eos alo col; do
  awk -v c="$c" -v a="${rate[$c]}" -v b="${rate[producer]}" -v k="${rate[kcat]}" \
    -v ca="${cpurate[$c]}" -v cb="${cpurate[producer]}" -v ck="${cpurate[kcat]}" 'BEGIN {
    printf "%s: %.2f of the bare transactional producer (%.2f per cpu-s), %.2f of kcat (%.2f per cpu-s)\n",
      c, a / b, ca / cb, a / k, ca / ck }'
done
if [ -n "$BASE" ]; then
  echo "BASE: $BASE"
  for c in eos alo col; do
    awk -v c="$c" -v a="${rate[$c]}" -v b="${rate[base_$c]}" -v ca="${cpurate[$c]}" \
      -v cb="${cpurate[base_$c]}" 'BEGIN {
      printf "%s: this build / BASE: %.2f per wall second, %.2f per cpu-s\n", c, a / b, ca / cb }'
  done
fi
