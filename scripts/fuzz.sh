#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang-14, ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 60), one after the other.
#
#   scripts/fuzz.sh [SECONDS]          every harness
#   FUZZ_ONLY="http model" scripts/fuzz.sh 600
#
# Each harness starts from its seeds in tests/fuzz/corpus/<name>/ plus what
# earlier runs found (kept in build-fuzz/corpus/<name>/, outside the source
# tree). A crash, leak, timeout or sanitizer report stops that harness; its
# input is saved as build-fuzz/artifacts/<name>/crash-* (or leak-, timeout-,
# oom-) and the script exits 1 after the others have run. Fix the cause, then
# add the input to tests/fuzz/corpus/<name>/ as crash-<what> so it stays a
# regression test. tests/fuzz/<name>.dict, where there is one, is passed as the
# harness's dictionary. CPU seconds per run are appended to build-fuzz/cpu.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
case $seconds in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac
cc=${FUZZ_CC:-clang-14}
command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" -DRUNNEL_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  h=${name#fuzz_}
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $h "* ]]; then continue; fi
  corpus=build-fuzz/corpus/$h art=build-fuzz/artifacts/$h scratch=build-fuzz/tmp/$h
  mkdir -p "$corpus" "$art" "$scratch" "tests/fuzz/corpus/$h"
  extra=()
  [ "$h" = http ] && extra=(-max_len=20480) # past the 16 KiB head limit
  [ -f "tests/fuzz/$h.dict" ] && extra+=(-dict="tests/fuzz/$h.dict")
  echo "== fuzz $h (${seconds}s)"
  TIMEFORMAT='%U %S'
  rc=0
  { time TMPDIR=$PWD/$scratch "build-fuzz/$name" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$art/" "${extra[@]}" \
      "$corpus" "tests/fuzz/corpus/$h" >"build-fuzz/$h.log" 2>&1 || rc=$?; } 2>"build-fuzz/$h.time"
  read -r user sys < <(tail -n1 "build-fuzz/$h.time") # a crash message may come first
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$h.log")
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "$seconds" "$cpu" "${runs:-0}" \
    >>build-fuzz/cpu.tsv
  if [ $rc -ne 0 ]; then
    echo "   FAILED (exit $rc): see build-fuzz/$h.log"
    grep -E 'ERROR|runtime error|fuzz_[a-z_]+: ' "build-fuzz/$h.log" | head -5 | sed 's/^/   /'
    ls "$art" | sed 's/^/   artifact: /'
    failed+=("$h")
  else
    echo "   ok: ${runs:-?} inputs, ${cpu}s CPU"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "== fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "== fuzzing: no crash, leak or hang"
