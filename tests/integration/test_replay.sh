#!/usr/bin/env bash
# test_replay.sh — rn_convert turns real logs into runnel events that a job takes whole.
#
# For every data set: convert it, check the summary and that ts never decreases, run the
# events through `runnel run`, and check by counting what came out of the sinks:
#   OBD             requests == impressions == CSV rows, clicks == sum of the click column,
#                   0 dead letters
#   MovieTweetings  requests == impressions == distinct (user, ts), items shown == ratings,
#                   clicks == ratings >= 7, 0 dead letters
# Data: the shipped samples in examples/replay/ (always, through the shipped jobs), and the
# real sets under $RUNNEL_SRC/../shared/data when that folder exists (OBD random and bts,
# MovieTweetings 10K and 100K, through a temporary job: file -> log_collector -> file).
# Then malformed input: reported as FILE:LINE, skipped, counted; exit 1 when nothing is left.
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Prints one PASS/FAIL line per check, ends with "N passed, M failed", exits 1 on failure.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
CONVERT=$BIN/rn_convert
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-replay.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# check NAME HAVE WANT: passes when the two counts are equal.
check() {
    if [ "$2" = "$3" ]; then pass "$1 ($2)"; else fail "$1: got $2, want $3"; fi
}

for b in "$RUNNEL" "$CONVERT"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        echo "$passed passed, $failed failed"
        exit 1
    fi
done

# ---- helpers ------------------------------------------------------------------------

# convert NAME FORMAT INPUT OUT: runs rn_convert; leaves its stderr in $TMP/convert.err
# and the summary line ("obd: rows=..." / "movietweetings: ratings=...") in $summary.
convert() {
    local name=$1 format=$2 input=$3 out=$4 rc=0 t0
    t0=$(date +%s%N)
    timeout 60 "$CONVERT" "$format" "$input" --out "$out" 2>"$TMP/convert.err" || rc=$?
    convert_ms=$((($(date +%s%N) - t0) / 1000000))
    summary=$(grep "^$format: " "$TMP/convert.err" | tail -n 1)
    if [ "$rc" -ne 0 ] || [ ! -s "$out" ]; then
        fail "$name: rn_convert exits 0 and writes events (exit $rc)"
        head -c 600 "$TMP/convert.err"
        return 1
    fi
    if grep -q "(skipped)" "$TMP/convert.err"; then
        fail "$name: rn_convert reports no malformed rows"
        head -c 600 "$TMP/convert.err"
    else
        pass "$name: rn_convert converts every row"
    fi
    # ts never decreases (awk keeps 13-digit integers exactly in doubles).
    local back
    back=$(awk 'match($0, /"ts":[0-9]+/) { t = substr($0, RSTART + 5, RLENGTH - 5) + 0
                if (NR > 1 && t < p) n++; p = t } END { print n + 0 }' "$out")
    check "$name: ts never decreases in the converted log" "$back" 0
}

# field KEY: the value of KEY=... in $summary.
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$summary"; }

# run_job NAME JOB EVENTS OUTDIR [--set ...]: runs JOB over EVENTS into OUTDIR/events.jsonl
# and OUTDIR/rejected.jsonl; the sinks and source are set with --set, so shipped jobs run
# unchanged.
run_job() {
    local name=$1 job=$2 events=$3 outdir=$4 rc=0
    mkdir -p "$outdir"
    timeout 120 "$RUNNEL" run "$job" --set http.listen=127.0.0.1:0 \
        --set "sources.logs.path=$events" --set "sinks.events.path=$outdir/events.jsonl" \
        --set "sinks.rejected.path=$outdir/rejected.jsonl" >"$outdir/run.out" 2>"$outdir/run.err" ||
        rc=$?
    if [ "$rc" -ne 0 ] || [ ! -f "$outdir/events.jsonl" ]; then
        fail "$name: runnel run exits 0 (exit $rc)"
        head -c 800 "$outdir/run.err"
        return 1
    fi
    pass "$name: runnel run exits 0"
    local dead=0
    [ -f "$outdir/rejected.jsonl" ] && dead=$(wc -l <"$outdir/rejected.jsonl")
    check "$name: dead letters" "$dead" 0
}

# count TYPE FILE: events of that type in a sink's output.
count() { grep -c "\"type\":\"$1\"" "$2"; }

# A job of our own for the real data: file -> log_collector (dead letters) -> file.
TEST_JOB=$TMP/replay-test.yaml
cat >"$TEST_JOB" <<'EOF'
job: replay-test
parallelism: 2
http: { listen: 127.0.0.1:0 }
sources:
  logs: { type: file, path: set-by-the-test.jsonl, follow: false }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  events: { type: file, path: set-by-the-test.jsonl, from: collect }
  rejected: { type: file, path: set-by-the-test.jsonl }
EOF

# check_obd NAME CSV JOB
check_obd() {
    local name=$1 csv=$2 job=$3 dir=$TMP/$1
    mkdir -p "$dir"
    # Expected counts, from the CSV itself: rows, and the sum of the click column.
    local want
    want=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "click") c = i; next }
                    NF { rows++; clicks += $c } END { print rows + 0, clicks + 0 }' "$csv")
    local rows=${want% *} clicks=${want#* }
    convert "$name" obd "$csv" "$dir/in.jsonl" || return
    check "$name: rn_convert reports rows=CSV rows" "$(field rows)" "$rows"
    check "$name: rn_convert reports clicks=sum of the click column" "$(field clicks)" "$clicks"
    run_job "$name" "$job" "$dir/in.jsonl" "$dir" || return
    check "$name: requests == CSV rows" "$(count request "$dir/events.jsonl")" "$rows"
    check "$name: impressions == CSV rows" "$(count impression "$dir/events.jsonl")" "$rows"
    check "$name: clicks == sum of the CSV click column" "$(count click "$dir/events.jsonl")" \
        "$clicks"
}

# check_mt NAME RATINGS JOB
check_mt() {
    local name=$1 dat=$2 job=$3 dir=$TMP/$1
    mkdir -p "$dir"
    local want
    want=$(awk -F'::' 'NF { n++; if ($3 >= 7) c++; g[$1 " " $4] = 1 }
                       END { print n + 0, c + 0, length(g) }' "$dat")
    local ratings groups clicks
    read -r ratings clicks groups <<<"$want"
    convert "$name" movietweetings "$dat" "$dir/in.jsonl" || return
    echo "     ($name: $ratings ratings converted in $convert_ms ms)"
    check "$name: rn_convert reports ratings=lines" "$(field ratings)" "$ratings"
    check "$name: rn_convert reports clicks=ratings >= 7" "$(field clicks)" "$clicks"
    run_job "$name" "$job" "$dir/in.jsonl" "$dir" || return
    check "$name: requests == distinct (user, ts)" "$(count request "$dir/events.jsonl")" "$groups"
    check "$name: impressions == distinct (user, ts)" "$(count impression "$dir/events.jsonl")" \
        "$groups"
    # Items shown, summed over impressions: the quoted strings in each "items" list.
    local shown
    shown=$(awk '/"type":"impression"/ && match($0, /"items":\[[^]]*\]/) {
                     s = substr($0, RSTART, RLENGTH); n += gsub(/"/, "", s) / 2 - 1 }
                 END { print n + 0 }' "$dir/events.jsonl")
    check "$name: items shown == ratings" "$shown" "$ratings"
    check "$name: clicks == ratings >= 7" "$(count click "$dir/events.jsonl")" "$clicks"
}

# ---- the shipped samples, through the shipped jobs -------------------------------------

check_obd sample-obd examples/replay/sample-obd.csv jobs/obd-replay.yaml
check_mt sample-ratings examples/replay/sample-ratings.dat jobs/movietweetings-replay.yaml

# Order does not depend on the file's order: the rows reversed give the same bytes.
{
    head -n 1 examples/replay/sample-obd.csv
    tail -n +2 examples/replay/sample-obd.csv | tac
} >"$TMP/reversed.csv"
if "$CONVERT" obd "$TMP/reversed.csv" --out "$TMP/reversed.jsonl" 2>/dev/null &&
    cmp -s "$TMP/reversed.jsonl" "$TMP/sample-obd/in.jsonl"; then
    pass "sample-obd: rows in reverse order convert to the same bytes"
else
    fail "sample-obd: rows in reverse order convert to the same bytes"
fi
tac examples/replay/sample-ratings.dat >"$TMP/reversed.dat"
if "$CONVERT" movietweetings "$TMP/reversed.dat" --out "$TMP/reversed-mt.jsonl" 2>/dev/null &&
    cmp -s "$TMP/reversed-mt.jsonl" "$TMP/sample-ratings/in.jsonl"; then
    pass "sample-ratings: lines in reverse order convert to the same bytes"
else
    fail "sample-ratings: lines in reverse order convert to the same bytes"
fi

# ---- the real data sets ---------------------------------------------------------------

DATA=$SRC/../shared/data
if [ -d "$DATA" ]; then
    n_obd=0
    for policy in random bts; do
        [ -d "$DATA/obd/$policy" ] || continue
        while IFS= read -r csv; do
            n_obd=$((n_obd + 1))
            check_obd "obd-$policy-$(basename "$csv" .csv)" "$csv" "$TEST_JOB"
        done < <(find "$DATA/obd/$policy" -name '*.csv' ! -name item_context.csv | sort)
    done
    [ "$n_obd" -gt 0 ] || fail "no OBD CSV found under $DATA/obd"
    n_mt=0
    for snap in 10K 100K; do
        dat=$DATA/movietweetings/snapshots/$snap/ratings.dat
        [ -f "$dat" ] || continue
        n_mt=$((n_mt + 1))
        check_mt "movietweetings-$snap" "$dat" "$TEST_JOB"
    done
    [ "$n_mt" -gt 0 ] || fail "no MovieTweetings ratings.dat found under $DATA/movietweetings"
else
    echo "NOTICE $DATA not found: the checks on the real data sets are skipped"
fi

# ---- malformed input ----------------------------------------------------------------

# bad_check NAME FILE FORMAT WANT_RC WANT_SUMMARY LINES...: rn_convert must exit WANT_RC,
# name each listed line as FILE:LINE on stderr, and (if WANT_SUMMARY) print it.
bad_check() {
    local name=$1 file=$2 format=$3 want_rc=$4 want_summary=$5 rc=0
    shift 5
    rm -f "$TMP/bad.jsonl"
    timeout 60 "$CONVERT" "$format" "$file" --out "$TMP/bad.jsonl" 2>"$TMP/bad.err" || rc=$?
    check "$name: exit status" "$rc" "$want_rc"
    local missing=""
    for l in "$@"; do
        grep -q "^$file:$l: .*(skipped)$" "$TMP/bad.err" || missing="$missing $l"
    done
    if [ "$#" -eq 0 ]; then
        :
    elif [ -z "$missing" ]; then
        pass "$name: every bad line reported as FILE:LINE"
    else
        fail "$name: lines not reported:$missing"
        head -c 800 "$TMP/bad.err"
    fi
    if [ -n "$want_summary" ]; then
        if grep -qF "$want_summary" "$TMP/bad.err"; then pass "$name: summary $want_summary"; else
            fail "$name: summary lacks '$want_summary'"
            head -c 800 "$TMP/bad.err"
        fi
    fi
}

S=examples/replay/sample-obd.csv
# variant COL=VALUE...: the first sample row with those columns (0: row index, 1: timestamp,
# 2: item_id, 3: position, 4: click, 5: propensity_score) replaced.
IFS=, read -r -a first_row <<<"$(sed -n 2p "$S")"
variant() {
    local r=("${first_row[@]}") kv
    for kv in "$@"; do r[${kv%%=*}]=${kv#*=}; done
    local IFS=,
    echo "${r[*]}"
}
{
    head -n 4 "$S"                                     # lines 1-4: header, 3 good rows
    echo                                               # 5: empty
    echo "1,2,3"                                       # 6: too few fields
    variant 0=900 "1=2019-13-01 00:00:00+00:00"        # 7: month 13
    variant 0=901 2=x                                  # 8: item_id not a number
    variant 0=902 4=2                                  # 9: click 2
    variant 0=903 5=0                                  # 10: propensity 0
    variant                                            # 11: duplicate row index
    variant 0=904                                      # 12: good
} >"$TMP/bad.csv"
bad_check "obd malformed rows" "$TMP/bad.csv" obd 0 "rows=4 clicks=0" 5 6 7 8 9 10 11
if grep -qF "malformed=7" "$TMP/bad.err"; then pass "obd malformed rows: counted (7)"; else
    fail "obd malformed rows: counted"
    head -c 800 "$TMP/bad.err"
fi
printf '%s\n' "junk" "1,2" >"$TMP/allbad.csv"
bad_check "obd, no header" "$TMP/allbad.csv" obd 1 "allbad.csv:1: not an Open Bandit Dataset CSV"
{ head -n 1 "$S"; echo "1,2,3"; } >"$TMP/allbad2.csv"
bad_check "obd, no good row" "$TMP/allbad2.csv" obd 1 "no rows converted" 2
if [ -e "$TMP/bad.jsonl" ]; then fail "obd, no good row: no output file"; else
    pass "obd, no good row: no output file"
fi

{
    head -n 2 examples/replay/sample-ratings.dat # lines 1-2 good
    echo ""                                      # 3: empty
    echo "7::0120735::9"                         # 4: three fields
    echo "7::tt0120735::9::1363245118"           # 5: movie id not a number
    echo "7::0120735::11::1363245118"            # 6: rating 11
    echo "7::0120735::9::-5"                     # 7: timestamp
    printf '7::0120735::8::1363245118\r\n'       # 8: good, CRLF
} >"$TMP/bad.dat"
bad_check "movietweetings malformed lines" "$TMP/bad.dat" movietweetings 0 \
    "ratings=3 requests=3" 3 4 5 6 7
if grep -qF "malformed=5" "$TMP/bad.err"; then pass "movietweetings malformed lines: counted (5)"
else
    fail "movietweetings malformed lines: counted"
    head -c 800 "$TMP/bad.err"
fi
printf '%s\n' "a::b" >"$TMP/allbad.dat"
bad_check "movietweetings, no good line" "$TMP/allbad.dat" movietweetings 1 \
    "no ratings converted" 1

rc=0
"$CONVERT" nosuchformat x >/dev/null 2>&1 || rc=$?
check "usage error: exit status" "$rc" 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
