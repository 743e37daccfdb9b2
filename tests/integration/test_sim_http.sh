#!/usr/bin/env bash
# test_sim_http.sh — rn_sim's remote policy (--policy http://HOST:PORT, docs/simulator.md)
# against tests/tools/fake_recommend.py, a python3 stand-in for a job's serving endpoint that
# answers with each request's first k candidates.
#
#   slates          every impression shows the first L candidates of its request, with the
#                   server's propensities (1) and model_version (7); the server saw each
#                   request line in the log before the call (the log is flushed)
#   keep-alive      one connection, and a new one after each answer that closes it
#   determinism     two runs give byte-identical logs
#   bad answers     a repeated item, a 503, a slow server (--http-timeout) and a refused
#                   connection each end the run with exit 1 and the reason
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN.  One PASS/FAIL line per check, then
# "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
SIM=$BIN/rn_sim
STUB=$SRC/tests/tools/fake_recommend.py
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-simhttp.XXXXXX")
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$TMP"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

if [ ! -x "$SIM" ]; then
    fail "binary not found: $SIM"
    finish
fi
if ! command -v python3 >/dev/null; then
    fail "python3 not found (scripts/install-deps.sh installs it)"
    finish
fi

SMALL=(--sessions 200 --users 300 --items 300 --dim 8 --candidates 30 --slate 4)

# server NAME ARGS... : starts the stub (pid in $spid, port in $port), waiting for its port.
server() {
    local name=$1
    shift
    stop_server
    rm -f "$TMP/$name.port"
    python3 "$STUB" --port-file "$TMP/$name.port" --stats "$TMP/$name.stats" "$@" \
        2>"$TMP/$name.server.err" &
    spid=$!
    port=
    for _ in $(seq 1 1000); do
        [ -s "$TMP/$name.port" ] && port=$(cat "$TMP/$name.port") && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.01
    done
    [ -n "$port" ] || echo "     stub did not start: $(head -c 400 "$TMP/$name.server.err")"
}
stop_server() {
    if [ -n "$spid" ]; then
        kill "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        spid=
    fi
}
# sim NAME ARGS... : rn_sim with the http policy on $port; rc in $rc.
sim() {
    local name=$1
    shift
    timeout 120 "$SIM" "${SMALL[@]}" --policy "http://127.0.0.1:$port" --out "$TMP/$name.jsonl" \
        --summary-json "$TMP/$name.json" "$@" 2>"$TMP/$name.err"
    rc=$?
}

# ---- slates as the server said, keep-alive, reconnect -----------------------------------
server ok --log "$TMP/h1.jsonl" --close-every 50
sim h1
check=$(python3 - "$TMP/h1.jsonl" <<'PY'
import json, sys
cands, bad, n = {}, 0, 0
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev["type"] == "request":
        cands[ev["request"]] = ev["candidates"]
    elif ev["type"] == "impression":
        n += 1
        if (ev["items"] != cands[ev["request"]][:4] or ev["propensities"] != [1] * 4
                or ev["model_version"] != 7):
            bad += 1
print(n, bad)
PY
)
if [ "$rc" -eq 0 ] && [ "${check#* }" = "0" ] && [ "${check% *}" -gt 0 ]; then
    pass "every impression is the server's slate (${check% *} impressions)"
else
    fail "every impression is the server's slate (exit $rc, impressions and mismatches: $check): $(head -c 600 "$TMP/h1.err")"
fi
requests=$(grep -c '"type":"request"' "$TMP/h1.jsonl")
stats=$(cat "$TMP/ok.stats" 2>/dev/null)
want="requests $requests connections $(((requests + 49) / 50))"
if [ "$stats" = "$want" ]; then
    pass "keep-alive: $stats (a new connection after every 50th answer closes one)"
else
    fail "keep-alive: server saw '$stats', want '$want'"
fi
if grep -q '"policy":"http://127.0.0.1:' "$TMP/h1.json"; then
    pass "summary names the policy http://HOST:PORT"
else
    fail "summary names the policy http://HOST:PORT ($(cat "$TMP/h1.json"))"
fi
server ok2 --log "$TMP/h2.jsonl"
sim h2
if [ "$rc" -eq 0 ] && cmp -s "$TMP/h1.jsonl" "$TMP/h2.jsonl"; then
    pass "same seed, same server: byte-identical logs"
else
    fail "same seed, same server: byte-identical logs (exit $rc)"
fi

# ---- bad answers ----------------------------------------------------------------------------
# bad NAME MODE WANT [SIM ARGS...]: the run must end with exit 1 and WANT in its message.
bad() {
    local name=$1 mode=$2 want=$3
    shift 3
    server "$name" --mode "$mode"
    sim "$name" "$@"
    if [ "$rc" -eq 1 ] && grep -qF -- "$want" "$TMP/$name.err"; then
        pass "$mode: exit 1, $(grep -o 'failed on request.*' "$TMP/$name.err" | cut -c 1-150)"
    else
        fail "$mode: exit 1 with '$want' (exit $rc: $(head -c 400 "$TMP/$name.err"))"
    fi
}
bad dup dup "are both"
bad error error "answered 503: overloaded"
bad slow slow "no response within 500 ms" --http-timeout 0.5
stop_server
# A port nobody listens on: the stub's, now that it is gone.
sim refused
if [ "$rc" -eq 1 ] && grep -q "cannot connect" "$TMP/refused.err"; then
    pass "no server: exit 1, $(grep -o 'cannot connect.*' "$TMP/refused.err")"
else
    fail "no server: exit 1 with 'cannot connect' (exit $rc: $(head -c 400 "$TMP/refused.err"))"
fi

finish
