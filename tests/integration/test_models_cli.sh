#!/usr/bin/env bash
# test_models_cli.sh — `runnel models` (docs/operations.md, "Models") on a store that
# build/rn_mkmodel fills with hand-made versions 1..3:
#
#   list            a table with every version, the newest marked current; --json gives the
#                   fields (id, created_ms, event_time, updates, transitions, loss, mean_q),
#                   current and pinned; an empty store says so
#   pin / unpin     pin writes PINNED (current becomes it, marked pinned); unpin removes it
#   rollback        pins the version before the current one, step by step, then fails (exit 1)
#                   with a message once the oldest is current
#   exit codes      --help: usage on stdout, 0; usage errors (no action, unknown action,
#                   missing or bad arguments): 2 with the usage on stderr; failures (no such
#                   store, no such version, a corrupt PINNED): 1 with a message
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN. One PASS/FAIL line per check, then
# "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
R=$BIN/runnel
MK=$BIN/rn_mkmodel
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-models.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# run NAME WANT_RC CMD...: runs CMD with stdout in $TMP/out, stderr in $TMP/err, checks rc.
run() {
    local name=$1 want=$2
    shift 2
    timeout 30 "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name: exit $rc"; else
        fail "$name: exit $rc, want $want"; sed 's/^/  | /' "$TMP/err"; fi
}
has() { # has NAME FILE TEXT: FILE contains TEXT
    if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1: no '$3' in:"; sed 's/^/  | /' "$2"; fi
}
hasnt() {
    if grep -qF -- "$3" "$2"; then fail "$1: '$3' in:"; sed 's/^/  | /' "$2"; else pass "$1"; fi
}

S=$TMP/store
"$MK" "$S" --dim 4 --event-time 60000 --count 3 --every 60000 >/dev/null || fail "rn_mkmodel"

# ---- list ---------------------------------------------------------------------------------
run "list" 0 "$R" models list "$S"
has "list: header" "$TMP/out" "ID"
has "list: header names the manifest fields" "$TMP/out" "EVENT_TIME"
[ "$(grep -cE '^[ *] [0-9]' "$TMP/out")" -eq 3 ] && pass "list: three versions" ||
    fail "list: want three version rows"
grep -qE '^\* 3 .*current$' "$TMP/out" && pass "list: the newest is current" ||
    fail "list: version 3 not marked current"
hasnt "list: nothing pinned" "$TMP/out" "pinned"

run "list --json" 0 "$R" models list "$S" --json
has "json: current" "$TMP/out" '"current":3,"pinned":null'
has "json: a version's fields" "$TMP/out" \
    '{"id":2,"created_ms":120000,"event_time":120000,"updates":0,"transitions":0,"loss":0,"mean_q":0}'
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [v["id"] for v in d["versions"]]==[1,2,3]' \
        "$TMP/out" && pass "json: parses, versions ascending" || fail "json: not valid or out of order"
fi

mkdir "$TMP/empty"
run "list an empty store" 0 "$R" models list "$TMP/empty"
has "list: empty store says so" "$TMP/out" "holds no version yet"
run "list --json an empty store" 0 "$R" models list "$TMP/empty" --json
has "json: empty store" "$TMP/out" '"current":null,"pinned":null,"versions":[]'

# ---- pin / unpin ----------------------------------------------------------------------------
run "pin 1" 0 "$R" models pin "$S" 1
has "pin: message" "$TMP/out" "pinned '$S' to version 1"
[ "$(cat "$S/PINNED")" = "1" ] && pass "pin: PINNED holds 1" || fail "pin: PINNED is '$(cat "$S/PINNED" 2>&1)'"
run "list after pin" 0 "$R" models list "$S"
grep -qE '^\* 1 .*current \(pinned\)$' "$TMP/out" && pass "list: pinned version marked" ||
    fail "list: version 1 not marked current (pinned)"
run "list --json after pin" 0 "$R" models list "$S" --json
has "json: pinned" "$TMP/out" '"current":1,"pinned":1'

run "pin a missing version" 1 "$R" models pin "$S" 9
has "pin 9: message" "$TMP/err" "has no version 9"
[ "$(cat "$S/PINNED")" = "1" ] && pass "pin 9: PINNED unchanged" || fail "pin 9: PINNED changed"

run "unpin" 0 "$R" models unpin "$S"
has "unpin: message" "$TMP/out" "serving the newest version, 3"
[ ! -e "$S/PINNED" ] && pass "unpin: PINNED removed" || fail "unpin: PINNED still there"
run "unpin again" 0 "$R" models unpin "$S"

# ---- rollback -------------------------------------------------------------------------------
run "rollback from 3" 0 "$R" models rollback "$S"
has "rollback: 3 to 2" "$TMP/out" "from version 3 to 2"
run "rollback from 2" 0 "$R" models rollback "$S"
has "rollback: 2 to 1" "$TMP/out" "from version 2 to 1"
run "rollback past the oldest" 1 "$R" models rollback "$S"
has "rollback: nothing before 1" "$TMP/err" "has no version before 1 to roll back to"
[ "$(cat "$S/PINNED")" = "1" ] && pass "rollback: PINNED stays 1" || fail "rollback: PINNED changed"
run "rollback an empty store" 1 "$R" models rollback "$TMP/empty"
has "rollback empty: message" "$TMP/err" "holds no version"

# ---- failures and usage ---------------------------------------------------------------------
run "list a missing store" 1 "$R" models list "$TMP/nope"
has "missing store: message" "$TMP/err" "'$TMP/nope': No such file or directory"
run "pin in a missing store" 1 "$R" models pin "$TMP/nope" 1
echo "garbage" >"$S/PINNED"
run "list with a corrupt PINNED" 1 "$R" models list "$S"
has "corrupt PINNED: message" "$TMP/err" "PINNED: not a version number"
rm -f "$S/PINNED"

run "--help" 0 "$R" models --help
has "--help: usage on stdout" "$TMP/out" "usage: runnel models list DIR"
[ ! -s "$TMP/err" ] && pass "--help: nothing on stderr" || fail "--help: wrote to stderr"
run "pin --help" 0 "$R" models pin --help
run "no action" 2 "$R" models
has "no action: usage on stderr" "$TMP/err" "usage: runnel models"
run "unknown action" 2 "$R" models frob "$S"
has "unknown action: message" "$TMP/err" "unknown action 'frob'"
run "pin without an id" 2 "$R" models pin "$S"
run "pin a bad id" 2 "$R" models pin "$S" x1
has "bad id: message" "$TMP/err" "'x1' is not a version id"
run "pin a negative id" 2 "$R" models pin "$S" -3
run "list with an extra argument" 2 "$R" models list "$S" --yaml
run "rollback with an extra argument" 2 "$R" models rollback "$S" 2
run "top-level usage names models" 0 "$R" --help
has "runnel --help mentions models" "$TMP/out" "runnel models"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
