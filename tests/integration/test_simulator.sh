#!/usr/bin/env bash
# test_simulator.sh — the closed-loop user simulator (build/rn_sim, docs/simulator.md).
#
#   determinism     the same seed and options give byte-identical events, embeddings and
#                   summary; another seed gives other events
#   event order     timestamps never go down, for every policy
#   accepted        `runnel run` of a small job (written here, in a temp dir) reads every
#                   line through log_collector with 0 dead letters
#   embeddings      one line per item: "i<n>" then --dim floats, ids i1..iN once each
#   summary         --summary-json holds the session count and a 95% interval around the
#                   mean; oracle-longterm beats myopic (a fixed seed, so not flaky)
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Prints one PASS/FAIL line per check and ends with "N passed, M failed"; exits 1 if
# anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
SIM=$BIN/rn_sim
RUNNEL=$BIN/runnel
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-sim.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for b in "$SIM" "$RUNNEL"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        finish
    fi
done

# sim NAME ARGS... : runs rn_sim with a small world, output under $TMP/NAME.*; rc in $rc.
SMALL=(--sessions 300 --users 400 --items 300 --dim 8 --candidates 30 --slate 4)
sim() {
    local name=$1
    shift
    timeout 120 "$SIM" "${SMALL[@]}" --out "$TMP/$name.jsonl" --embeddings "$TMP/$name.emb" \
        --summary-json "$TMP/$name.json" "$@" 2>"$TMP/$name.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "     rn_sim $* exited $rc: $(head -c 600 "$TMP/$name.err")"
    fi
}

# ---- determinism -------------------------------------------------------------------
sim a --policy popularity --seed 7
rc_a=$rc
sim b --policy popularity --seed 7
if [ "$rc_a" -eq 0 ] && [ "$rc" -eq 0 ] && [ -s "$TMP/a.jsonl" ] &&
    cmp -s "$TMP/a.jsonl" "$TMP/b.jsonl" && cmp -s "$TMP/a.emb" "$TMP/b.emb" &&
    cmp -s "$TMP/a.json" "$TMP/b.json"; then
    pass "same seed, same options: identical events, embeddings and summary"
else
    fail "same seed, same options: identical events, embeddings and summary"
fi
sim c --policy popularity --seed 8
if [ "$rc" -eq 0 ] && ! cmp -s "$TMP/a.jsonl" "$TMP/c.jsonl"; then
    pass "another seed gives other events"
else
    fail "another seed gives other events"
fi

# ---- event order, for every policy -----------------------------------------------------
for p in random popularity myopic oracle-longterm; do
    sim "p-$p" --policy "$p"
    if [ "$rc" -ne 0 ]; then
        fail "$p: rn_sim failed"
        continue
    fi
    bad=$(sed -n 's/^{"type":"[a-z]*","ts":\([0-9]*\),.*/\1/p' "$TMP/p-$p.jsonl" |
        awk 'NR > 1 && $1 < prev { n++ } { prev = $1; lines++ }
             END { if (lines == 0) print "empty"; else print n + 0 }')
    total=$(wc -l <"$TMP/p-$p.jsonl")
    parsed=$(grep -c '^{"type":"[a-z]*","ts":[0-9]*,' "$TMP/p-$p.jsonl")
    if [ "$bad" = "0" ] && [ "$parsed" -eq "$total" ]; then
        pass "$p: $total events, timestamps non-decreasing"
    else
        fail "$p: timestamps non-decreasing (decreases: $bad; lines with a ts: $parsed of $total)"
    fi
done

# ---- every line accepted by the pipeline ---------------------------------------------
# accepted NAME: runs a log_collector job over $TMP/NAME.jsonl; every line must come out as an
# event and none as a dead letter.
accepted() {
    local name=$1 log=$TMP/$1.jsonl out=$TMP/out-$1
    mkdir -p "$out"
    cat >"$TMP/job-$name.yaml" <<EOF
job: simulator-check
parallelism: 2
http:
  listen: 127.0.0.1:0
sources:
  logs:
    type: file
    path: $log
    follow: false
operators:
  - id: collect
    op: log_collector
    from: logs
    dead_letter: rejected
sinks:
  events:
    type: file
    path: $out/events.jsonl
    from: collect
  rejected:
    type: file
    path: $out/rejected.jsonl
EOF
    local want got rejected dead
    want=$(wc -l <"$log")
    timeout 120 "$RUNNEL" run "$TMP/job-$name.yaml" >"$out/run.out" 2>"$out/run.err"
    rc=$?
    got=$(cat "$out/events.jsonl" 2>/dev/null | wc -l)
    rejected=$(cat "$out/rejected.jsonl" 2>/dev/null | wc -l)
    dead=$(sed -n 's/^ *collect .* dead_letter \([0-9]*\).*/\1/p' "$out/run.err" "$out/run.out" |
        head -n 1)
    if [ "$rc" -eq 0 ] && [ "$want" -gt 0 ] && [ "$got" -eq "$want" ] && [ "$rejected" -eq 0 ] &&
        [ "${dead:-0}" = "0" ]; then
        pass "$name: runnel run accepts all $want lines, 0 dead letters"
    else
        fail "$name: runnel run accepts all $want lines (exit $rc, events out $got, dead letters ${dead:-?}, rejected file $rejected lines)"
        head -c 600 "$out/run.err"
        head -n 3 "$out/rejected.jsonl" 2>/dev/null
    fi
}
for p in random popularity myopic oracle-longterm; do
    [ -s "$TMP/p-$p.jsonl" ] && accepted "p-$p"
done

# ---- the embedding table ---------------------------------------------------------------
emb="$TMP/a.emb"
if awk -v items=300 -v dim=8 '
    { if (NF != dim + 1 || $1 !~ /^i[1-9][0-9]*$/ || seen[$1]++) bad++
      for (i = 2; i <= NF; i++) if ($i !~ /^-?[0-9]+\.[0-9]+$/) bad++ }
    END { for (i = 1; i <= items; i++) if (!(("i" i) in seen)) bad++
          exit !(NR == items && bad == 0) }' "$emb"; then
    pass "embeddings: 300 lines, i1..i300 once each, 8 floats per line"
else
    fail "embeddings: 300 lines, i1..i300 once each, 8 floats per line (got $(wc -l <"$emb") lines; first: $(head -n 1 "$emb" | cut -c 1-120))"
fi

# ---- the summary ------------------------------------------------------------------------
# field FILE NAME: a number from the one-line summary JSON.
field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1"; }
s=$TMP/p-random.json
if [ "$(field "$s" sessions)" = "300" ] &&
    awk -v lo="$(field "$s" ci95_low)" -v m="$(field "$s" mean_session_return)" \
        -v hi="$(field "$s" ci95_high)" 'BEGIN { exit !(lo != "" && lo <= m && m <= hi) }'; then
    pass "summary JSON: 300 sessions, ci95_low <= mean <= ci95_high"
else
    fail "summary JSON: 300 sessions, ci95_low <= mean <= ci95_high ($(cat "$s"))"
fi
my=$(field "$TMP/p-myopic.json" mean_session_return)
or=$(field "$TMP/p-oracle-longterm.json" mean_session_return)
if awk -v a="$or" -v b="$my" 'BEGIN { exit !(a != "" && b != "" && a > b) }'; then
    pass "oracle-longterm beats myopic ($or > $my per session)"
else
    fail "oracle-longterm beats myopic ($or vs $my per session)"
fi

finish
