#!/usr/bin/env bash
# test_validate.sh — `runnel validate` on broken and good job files.
#
#   tests/jobs/broken/*.yaml  each must fail with exit 1 and print, on stderr,
#                             the substring given on its first line:
#                             `# expect: file:line:col: message`
#   jobs/, examples/          every *.yaml there must validate (exit 0, "ok")
#   tests/jobs/good/          jobs for the --set and ${VAR} checks below
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build
# directory); paths are passed relative to RUNNEL_SRC, as the expectations
# spell them. Ends with "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-validate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# run_validate ARGS... : runs `runnel validate ARGS`, leaving the exit code in
# $rc and the output in $TMP/out and $TMP/err.
run_validate() {
    timeout 60 "$RUNNEL" validate "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

# describe: a short reason for a failed check.
show() {
    echo "     exit $rc; stderr: $(head -c 600 "$TMP/err")"
    if [ -s "$TMP/out" ]; then echo "     stdout: $(head -c 600 "$TMP/out")"; fi
}

# crashed: exit codes of signals (>= 128) and of the timeout (124).
crashed() { [ "$rc" -ge 128 ] || [ "$rc" -eq 124 ]; }

if [ ! -x "$RUNNEL" ]; then
    fail "runnel binary not found at $RUNNEL"
    echo "$passed passed, $failed failed"
    exit 1
fi

# Nothing here may depend on the caller's environment.
unset RUNNEL_TEST_UNSET_VAR RUNNEL_TEST_LOG

# ---- broken jobs ---------------------------------------------------------------
n_broken=0
for f in tests/jobs/broken/*; do
    [ -f "$f" ] || continue
    n_broken=$((n_broken + 1))
    first=$(head -n 1 "$f")
    case $first in
    "# expect: "?*) expect=${first#"# expect: "} ;;
    *)
        fail "$f: first line is not '# expect: <substring>'"
        continue
        ;;
    esac
    case $expect in
    "$f":[0-9]*:[0-9]*:*) ;;
    *)
        fail "$f: the expectation must start with '$f:LINE:COL:'"
        continue
        ;;
    esac
    run_validate "$f"
    if crashed; then
        fail "$f: crashed"
        show
    elif [ "$rc" -ne 1 ]; then
        fail "$f: expected exit 1"
        show
    elif ! grep -qF -- "$expect" "$TMP/err"; then
        fail "$f: stderr lacks: $expect"
        show
    else
        pass "$f"
    fi
done
if [ "$n_broken" -eq 0 ]; then
    fail "no broken jobs in tests/jobs/broken"
fi

# ---- jobs and examples that must validate --------------------------------------
mapfile -t shipped < <(find jobs examples -name '*.yaml' -type f 2>/dev/null | sort)
if [ "${#shipped[@]}" -eq 0 ]; then
    echo "SKIP no *.yaml under jobs/ or examples/ yet"
fi
for f in "${shipped[@]}"; do
    run_validate "$f"
    if crashed; then
        fail "$f: crashed"
        show
    elif [ "$rc" -ne 0 ] || ! grep -qx ok "$TMP/out"; then
        fail "$f: does not validate"
        show
    else
        pass "$f validates"
    fi
done

# ---- --set ------------------------------------------------------------------------
GOOD=tests/jobs/good/smoke.yaml

# check_ok NAME ARGS... : validate must succeed and print "ok".
check_ok() {
    local name=$1
    shift
    run_validate "$@"
    if [ "$rc" -eq 0 ] && grep -qx ok "$TMP/out"; then
        pass "$name"
        return 0
    fi
    fail "$name"
    show
    return 1
}

# check_err NAME SUBSTRING ARGS... : validate must fail (exit 1) with SUBSTRING on stderr.
check_err() {
    local name=$1 want=$2
    shift 2
    run_validate "$@"
    if crashed; then
        fail "$name: crashed"
        show
    elif [ "$rc" -eq 1 ] && grep -qF -- "$want" "$TMP/err"; then
        pass "$name"
    else
        fail "$name: wanted exit 1 and stderr containing: $want"
        show
    fi
}

check_ok "$GOOD validates" "$GOOD"

run_validate "$GOOD" --set parallelism=4
if [ "$rc" -eq 0 ] && grep -qx ok "$TMP/out" && grep -q "parallelism 4," "$TMP/out" &&
    grep -Eq '^  operator +by_user +key_by +x4' "$TMP/out"; then
    pass "--set parallelism=4 shows parallelism 4"
else
    fail "--set parallelism=4 shows parallelism 4"
    show
fi

run_validate "$GOOD" --set=parallelism=3
if [ "$rc" -eq 0 ] && grep -q "parallelism 3," "$TMP/out"; then
    pass "--set=parallelism=3 (one argument)"
else
    fail "--set=parallelism=3 (one argument)"
    show
fi

check_err "--set parallelism=zero fails naming --set" "--set" "$GOOD" --set parallelism=zero
if ! grep -qF "'parallelism' must be an integer, got 'zero'" "$TMP/err"; then
    fail "--set parallelism=zero names the key and the value"
    show
else
    pass "--set parallelism=zero names the key and the value"
fi

check_ok "--set operators.collect.max_items=5 (element by id)" "$GOOD" \
    --set operators.collect.max_items=5
# The override must reach that element: an out-of-range value there is an error.
check_err "--set operators.collect.max_items=0 reaches the element" \
    "'max_items' must be between 1 and 1000000, got '0'" "$GOOD" --set operators.collect.max_items=0
check_err "--set operators.0.max_items=0 (element by index)" \
    "'max_items' must be between 1 and 1000000, got '0'" "$GOOD" --set operators.0.max_items=0
check_ok "--set operators.1.key=request (element by index)" "$GOOD" --set operators.1.key=request
if grep -q "keyed by request" "$TMP/out"; then
    pass "--set operators.1.key=request shows in the graph"
else
    fail "--set operators.1.key=request shows in the graph"
    show
fi
check_err "--set operators.nope.max_items=5: unknown element" \
    "--set operators.nope.max_items=5: no element 'nope' in the list at $GOOD:8:3" \
    "$GOOD" --set operators.nope.max_items=5
check_err "--set without '='" "--set parallelism: expected key=value" "$GOOD" --set parallelism
check_err "--set sources.logs=x: cannot replace a map" \
    "--set sources.logs=x: cannot replace a map ($GOOD:6:9) with a scalar" "$GOOD" --set sources.logs=x
check_err "--set of an unknown top-level key" "unknown key 'paralelism' in this section" \
    "$GOOD" --set paralelism=4
check_ok "--set sources.logs.path=/tmp/x.jsonl" "$GOOD" --set sources.logs.path=/tmp/x.jsonl

# ---- ${VAR} ------------------------------------------------------------------------
ENVJOB=tests/jobs/good/env-var.yaml
DEFJOB=tests/jobs/good/env-default.yaml

run_validate "$ENVJOB"
if [ "$rc" -eq 1 ] &&
    grep -qF "$ENVJOB:4:29: environment variable 'RUNNEL_TEST_LOG' is not set" "$TMP/err"; then
    pass "\${RUNNEL_TEST_LOG} unset fails at its scalar"
else
    fail "\${RUNNEL_TEST_LOG} unset fails at its scalar"
    show
fi

rc=0
RUNNEL_TEST_LOG=examples/data/logs.jsonl timeout 60 "$RUNNEL" validate "$ENVJOB" \
    >"$TMP/out" 2>"$TMP/err" || rc=$?
if [ "$rc" -eq 0 ] && grep -qx ok "$TMP/out"; then
    pass "\${RUNNEL_TEST_LOG} set validates"
else
    fail "\${RUNNEL_TEST_LOG} set validates"
    show
fi

check_ok "\${RUNNEL_TEST_LOG:-default.jsonl} unset uses the default" "$DEFJOB"

rc=0
RUNNEL_TEST_LOG=/tmp/other.jsonl timeout 60 "$RUNNEL" validate "$DEFJOB" \
    >"$TMP/out" 2>"$TMP/err" || rc=$?
if [ "$rc" -eq 0 ] && grep -qx ok "$TMP/out"; then
    pass "\${RUNNEL_TEST_LOG:-default.jsonl} set validates"
else
    fail "\${RUNNEL_TEST_LOG:-default.jsonl} set validates"
    show
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
