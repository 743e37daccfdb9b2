#!/usr/bin/env bash
# test_evaluate.sh — `runnel evaluate` on real logged data: the Open Bandit Dataset
# converted with rn_convert and run through jobs/obd-replay.yaml (source, sinks and
# state moved into a temporary folder with --set), then evaluated for the logging and
# the random policy.
#
# Checks: --help prints the usage on stdout and exits 0; usage errors exit 2, a missing
# data file exits 1; for each data set the table has its header and one row per policy
# in the format "policy n matched IPS [lo, hi] SNIPS [lo, hi] DR [lo, hi] ESS"; the
# logging policy's n is the number of labelled items, its IPS equals the on-policy mean
# click rate computed here with awk, and its 95% interval contains that mean — on all
# the data and on the last 20% by time (--train-fraction 0.8); the JSON output carries
# the same figure; the same seed prints the same table twice.
# Data: examples/replay/sample-obd.csv (always) and, when a shared data folder is found
# ($RUNNEL_SHARED_DATA, or shared/data next to the repository or one level up), OBD
# random/men and bts/men.
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN. Needs bash, awk, sed, sort, grep.
# Prints one PASS/FAIL line per check, ends with "N passed, M failed", exits 1 on failure.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
CONVERT=$BIN/rn_convert
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-evaluate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export LC_ALL=C

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

for b in "$RUNNEL" "$CONVERT"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        echo "$passed passed, $failed failed"
        exit 1
    fi
done

# ---- the command line ------------------------------------------------------------

rc=0
"$RUNNEL" evaluate --help >"$TMP/help.out" 2>"$TMP/help.err" || rc=$?
if [ "$rc" -eq 0 ] && grep -q "^usage: runnel evaluate" "$TMP/help.out" && [ ! -s "$TMP/help.err" ]; then
    pass "evaluate --help: usage on stdout, exit 0"
else
    fail "evaluate --help: exit $rc"
fi
for args in "" "--data" "--data x --bootstrap -3" "--data x --nope" "--data x extra"; do
    rc=0
    # shellcheck disable=SC2086
    "$RUNNEL" evaluate $args >/dev/null 2>"$TMP/usage.err" || rc=$?
    if [ "$rc" -eq 2 ] && grep -q "^usage: runnel evaluate" "$TMP/usage.err"; then
        pass "evaluate $args: usage error, exit 2"
    else
        fail "evaluate $args: want exit 2 and the usage on stderr, got exit $rc"
    fi
done
rc=0
"$RUNNEL" evaluate --data "$TMP/none.jsonl" >/dev/null 2>"$TMP/none.err" || rc=$?
if [ "$rc" -eq 1 ] && grep -q "none.jsonl" "$TMP/none.err"; then
    pass "evaluate on a missing file: exit 1, names the file"
else
    fail "evaluate on a missing file: exit $rc"
fi

# ---- OBD through the replay job ---------------------------------------------------

# samples NAME CSV: converts and replays CSV; leaves DIR=$TMP/NAME with samples.jsonl.
samples() {
    local name=$1 csv=$2 rc=0
    DIR=$TMP/$name
    mkdir -p "$DIR"
    if ! timeout 60 "$CONVERT" obd "$csv" --out "$DIR/events.jsonl" 2>"$DIR/convert.err"; then
        fail "$name: rn_convert"
        return 1
    fi
    timeout 120 "$RUNNEL" run jobs/obd-replay.yaml --set http.listen=127.0.0.1:0 \
        --set "sources.logs.path=$DIR/events.jsonl" --set "state.dir=$DIR/state" \
        --set "sinks.samples.path=$DIR/samples.jsonl" \
        --set "sinks.experiences.path=$DIR/experiences.jsonl" \
        --set "sinks.late.path=$DIR/late.jsonl" \
        --set "sinks.rejected.path=$DIR/rejected.jsonl" >"$DIR/run.out" 2>"$DIR/run.err" || rc=$?
    if [ "$rc" -ne 0 ] || [ ! -s "$DIR/samples.jsonl" ]; then
        fail "$name: runnel run jobs/obd-replay.yaml (exit $rc)"
        return 1
    fi
}

# on_policy FILE FRACTION: "items mean" of the labelled items of the lists after the
# first floor(FRACTION * lists) in (ts, request) order, as runnel evaluate orders them.
on_policy() {
    awk '{
        match($0, /"request":"[^"]*"/); r = substr($0, RSTART + 11, RLENGTH - 12)
        match($0, /"ts":[0-9]+/); t = substr($0, RSTART + 5, RLENGTH - 5)
        s = $0; n = 0; sum = 0
        while (match(s, /"position":[0-9]+/)) {
            s = substr(s, RSTART + RLENGTH); n++
            match(s, /"reward":[-0-9.e]+/); sum += substr(s, RSTART + 9, RLENGTH - 9)
        }
        print t, r, n, sum
    }' "$1" | sort -k1,1n -k2,2 | awk -v f="$2" '{ t[NR] = $3; s[NR] = $4 }
        END { cut = int(f * NR); for (i = cut + 1; i <= NR; i++) { n += t[i]; sum += s[i] }
              printf "%d %.5f\n", n, sum / n }'
}

# evaluate NAME FRACTION: runs runnel evaluate on $DIR/samples.jsonl and checks it.
evaluate() {
    local name=$1 f=$2 rc=0 out=$DIR/eval-$2.out want n mean row
    timeout 60 "$RUNNEL" evaluate --data "$DIR/samples.jsonl" --policy logging --policy random \
        --train-fraction "$f" --bootstrap 1000 --seed 1 >"$out" 2>"$DIR/eval.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name f=$f: runnel evaluate exits 0 (exit $rc)"
        head -c 600 "$DIR/eval.err"
        return 1
    fi
    want=$(on_policy "$DIR/samples.jsonl" "$f")
    n=${want% *}
    mean=${want#* }
    if grep -Eq '^policy +n +matched +IPS \[95% CI\] +SNIPS \[95% CI\] +DR \[95% CI\] +ESS$' "$out"; then
        pass "$name f=$f: table header"
    else
        fail "$name f=$f: table header"
        cat "$out"
    fi
    local num='-?[0-9]+\.[0-9]{5}' ci
    ci="$num \[$num, $num\]"
    for p in logging random; do
        if grep -Eq "^$p +[0-9]+ +[0-9]+  $ci  ($ci|undefined \(no match\)) +$ci +[0-9]+\.[0-9]$" "$out"; then
            pass "$name f=$f: $p row in the table's format"
        else
            fail "$name f=$f: $p row in the table's format"
            cat "$out"
        fi
    done
    row=$(grep "^logging " "$out")
    # logging n ips [lo, hi] ...: fields 2, 4, 5, 6 once brackets and commas are gone.
    read -r _ got_n _ ips lo hi _ <<<"$(tr -d '[],' <<<"$row")"
    if [ "$got_n" = "$n" ]; then pass "$name f=$f: logging n = labelled items ($n)"; else fail "$name f=$f: logging n $got_n, want $n"; fi
    if [ "$ips" = "$mean" ]; then
        pass "$name f=$f: logging IPS = on-policy mean ($mean)"
    else
        fail "$name f=$f: logging IPS $ips, on-policy mean $mean"
    fi
    if awk -v m="$mean" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(lo <= m && m <= hi) }'; then
        pass "$name f=$f: logging IPS interval [$lo, $hi] contains the on-policy mean $mean"
    else
        fail "$name f=$f: logging IPS interval [$lo, $hi] misses the on-policy mean $mean"
    fi
    echo "--- $name, train fraction $f:"
    sed -n '1,2p;5,$p' "$out"
}

SHARED=${RUNNEL_SHARED_DATA:-}
for d in "$SRC/../shared/data" "$SRC/../../shared/data"; do
    [ -z "$SHARED" ] && [ -d "$d/obd" ] && SHARED=$d
done

sets="sample:examples/replay/sample-obd.csv"
if [ -n "$SHARED" ]; then
    sets="$sets random-men:$SHARED/obd/random/men/men.csv bts-men:$SHARED/obd/bts/men/men.csv"
else
    echo "(no shared data folder: only the shipped OBD excerpt)"
fi
for s in $sets; do
    name=${s%%:*}
    csv=${s#*:}
    samples "$name" "$csv" || continue
    evaluate "$name" 0
    evaluate "$name" 0.8
done

# JSON output and reproducibility, on the last data set.
"$RUNNEL" evaluate --data "$DIR/samples.jsonl" --policy logging --json >"$TMP/eval.json" 2>&1
if grep -q '^{"data":.*"policies":\[{"policy":"logging","n":[0-9]*,.*"ips":{"estimate":[0-9.e-]*,"lo":' "$TMP/eval.json"; then
    pass "evaluate --json: one object with the policies"
else
    fail "evaluate --json"
    head -c 600 "$TMP/eval.json"
fi
"$RUNNEL" evaluate --data "$DIR/samples.jsonl" --train-fraction 0.8 >"$TMP/again.out" 2>&1
if cmp -s "$TMP/again.out" "$DIR/eval-0.8.out"; then
    pass "the same seed prints the same table"
else
    fail "the same seed prints the same table"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
