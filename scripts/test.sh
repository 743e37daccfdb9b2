#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds the
# normal tree and the sanitizer trees, and runs ctest in each.
#   build/        every test
#   build-asan/   every test but four long ones under AddressSanitizer + UBSan
#   build-tsan/   the threaded runtime tests under ThreadSanitizer (of the
#                 fault suite: full disks and signals)
#   build-fuzz/   each libFuzzer harness for a short smoke run (scripts/fuzz.sh)
#   cppcheck      static analysis of runtime/ and operators/, zero findings
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
status=0

echo "== cppcheck (static analysis)"
bash scripts/cppcheck.sh || status=1

echo "== build (RelWithDebInfo, -Werror)"
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j"$jobs") || status=1

echo "== build-asan (ASan + UBSan)"
bash scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DRUNNEL_ASAN=ON
# Every test but four long ones whose code paths the others already take under
# ASan (the learner's crash loop repeats test_crash_rl's restores; test_learning
# repeats test_model's learner; the two browser tests spend their time in
# Chromium): they run in the normal tree, and keep the suite near 15 minutes.
(cd build-asan && RUNNEL_BIG_KEYS=200000 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs" \
   -E '^test_(crash_learner|learning|webui|webui_cluster)$') || status=1

echo "== build-tsan (ThreadSanitizer: threaded runtime tests)"
bash scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=Debug -DRUNNEL_TSAN=ON
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/tsan.supp" \
   RUNNEL_BIG_KEYS=100000 RUNNEL_FAULTS="disks signals" ctest --output-on-failure -j"$jobs" \
   -R 'test_(parallel|status|http|http_abuse|channel|dead_letter|time|state_big|state_api|state_timers|state_errors|state_evict|close_restored|crash|crash_rl|joiner|serve|ptimer|inference|last|last_serving|model|slate|multi_input|job_types|cluster_local|faults|flinkrl)$') || status=1

echo "== build-fuzz (libFuzzer smoke: each harness ${RUNNEL_FUZZ_SECONDS:-10} s)"
bash scripts/fuzz.sh "${RUNNEL_FUZZ_SECONDS:-10}" || status=1

if [ $status -eq 0 ]; then echo "== all test suites passed"; else echo "== FAILED"; fi
exit $status
