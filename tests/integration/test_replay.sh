#!/usr/bin/env bash
# test_replay.sh — rn_convert turns real logs into runnel events, and the replay jobs
# (log_collector -> online_joiner -> experience_collector) join them whole.
#
# For every data set: convert it, check the summary and that ts never decreases, run the
# events through the shipped job (jobs/obd-replay.yaml, jobs/movietweetings-replay.yaml,
# with its source, sinks and state directory moved into a temporary folder by --set), and
# check by counting what came out:
#   OBD             requests == impressions == samples == CSV rows; labelled items (summed
#                   over the samples' "items") == CSV rows, and they are the CSV's rows
#                   (request, item, click); clicks summed over the items == the CSV's click
#                   column
#   MovieTweetings  requests == impressions == samples == distinct (user, ts); labelled
#                   items == ratings, and they are the ratings (request, movie, click);
#                   clicks == ratings >= 7
#   both            no late feedback, no unmatched feedback (the joiner's counters in the
#                   end-of-run summary, and an empty `late` sink), 0 dead letters; one
#                   experience per sample (the same requests), and as many with done = 1 as
#                   there are sessions in the samples (per user, a gap > the job's
#                   session_gap starts a new one)
# Data: the shipped samples in examples/replay/ (always), and the real sets under
# $RUNNEL_SRC/../shared/data when that folder exists (OBD random and bts, MovieTweetings
# 10K and 100K).
# Then malformed input: reported as FILE:LINE, skipped, counted; exit 1 when nothing is left.
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Needs bash, awk (mawk will do), sed, sort, grep: no python.
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
export LC_ALL=C

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

OBD_JOB=jobs/obd-replay.yaml
MT_JOB=jobs/movietweetings-replay.yaml

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

# duration_ms D: a job-file duration (500ms, 30s, 30m, 2h, 1d) in milliseconds.
duration_ms() {
    case $1 in
    *ms) echo "${1%ms}" ;;
    *s) echo $((${1%s} * 1000)) ;;
    *m) echo $((${1%m} * 60000)) ;;
    *h) echo $((${1%h} * 3600000)) ;;
    *d) echo $((${1%d} * 86400000)) ;;
    *) echo "$1" ;;
    esac
}

# run_job NAME JOB EVENTS DIR: runs the shipped JOB over EVENTS, with its sinks in DIR
# (samples.jsonl, experiences.jsonl, late.jsonl, rejected.jsonl), its keyed state in
# DIR/state and its status page on a free port; stdout and stderr in DIR/run.out, run.err.
run_job() {
    local name=$1 job=$2 events=$3 dir=$4 rc=0 t0
    t0=$(date +%s%N)
    timeout 120 "$RUNNEL" run "$job" --set http.listen=127.0.0.1:0 \
        --set "sources.logs.path=$events" --set "state.dir=$dir/state" \
        --set "sinks.samples.path=$dir/samples.jsonl" \
        --set "sinks.experiences.path=$dir/experiences.jsonl" \
        --set "sinks.late.path=$dir/late.jsonl" \
        --set "sinks.rejected.path=$dir/rejected.jsonl" >"$dir/run.out" 2>"$dir/run.err" || rc=$?
    run_ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$rc" -ne 0 ] || [ ! -f "$dir/samples.jsonl" ] || [ ! -f "$dir/experiences.jsonl" ]; then
        fail "$name: runnel run exits 0 and writes samples and experiences (exit $rc)"
        head -c 800 "$dir/run.err"
        return 1
    fi
    pass "$name: runnel run $job exits 0 ($run_ms ms)"
}

# counter DIR OP NAME: counter NAME of operator OP in the end-of-run summary
# ("  join  in N  out N  late 0  impressions N ... late_feedback N ..."); empty if absent.
counter() {
    awk -v op="$2" -v name="$3" '$1 == op { for (i = 2; i < NF; i++) if ($i == name) {
                                     print $(i + 1); exit } }' "$1/run.err"
}

# lines FILE: its number of lines (0 if it does not exist).
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# check_joined NAME DIR JOB WANT_REQUESTS WANT_ITEMS WANT_CLICKS UNIT: the checks on the
# output of run_job that both data sets share. DIR/want.txt holds the labelled items
# expected, one "request item clicks" line each, sorted; UNIT names what each stands for
# (rows, ratings).
check_joined() {
    local name=$1 dir=$2 job=$3 requests=$4 items=$5 clicks=$6 unit=$7
    # The collector's counters: every request, impression and click was accepted.
    check "$name: requests accepted by log_collector" "$(counter "$dir" collect requests)" \
        "$requests"
    check "$name: impressions accepted by log_collector" \
        "$(counter "$dir" collect impressions)" "$requests"
    check "$name: clicks accepted by log_collector" "$(counter "$dir" collect clicks)" "$clicks"
    local dead_c dead_f
    dead_c=$(counter "$dir" collect dead_letter)
    dead_f=$(lines "$dir/rejected.jsonl")
    if [ "$dead_c" = 0 ] && [ "$dead_f" = 0 ]; then pass "$name: 0 dead letters"; else
        fail "$name: dead letters: collector counted '$dead_c', rejected sink has $dead_f lines"
        head -c 600 "$dir/rejected.jsonl"
    fi

    # The samples: one per request; per sample, its labelled items ("items":[{"item":..,
    # "click":N,..},..]) as "request item clicks" lines, and their number and click sum.
    local n_samples n_items n_clicks
    awk -v counts="$dir/counts.txt" '{
            if (!match($0, /"request":"[^"]*"/)) { bad++; next }
            req = substr($0, RSTART + 11, RLENGTH - 12)
            i = index($0, "\"items\":[")
            if (!i) { bad++; next }
            samples++
            n = split(substr($0, i), parts, /\{"item":"/)
            for (k = 2; k <= n; k++) {
                item = parts[k]; sub(/".*/, "", item)
                c = -1
                if (match(parts[k], /"click":[0-9]+/))
                    c = substr(parts[k], RSTART + 8, RLENGTH - 8) + 0
                print req, item, c
                items++; clicks += c
            }
         }
         END { printf "%d %d %d %d\n", samples, items, clicks, bad > counts }' \
        "$dir/samples.jsonl" | sort >"$dir/got.txt"
    local bad
    read -r n_samples n_items n_clicks bad <"$dir/counts.txt"
    check "$name: samples == requests" "$n_samples" "$requests"
    check "$name: sample lines without request or items" "$bad" 0
    if [ "$n_items" = "$items" ] && [ "$n_clicks" = "$clicks" ]; then
        pass "$name: $items $unit = $n_items labelled items; clicks $clicks = $n_clicks"
    else
        fail "$name: $items $unit, $n_items labelled items; clicks: want $clicks, got $n_clicks"
    fi
    if cmp -s "$dir/got.txt" "$dir/want.txt"; then
        pass "$name: the labelled items are the $unit (request, item, clicks)"
    else
        fail "$name: the labelled items differ from the $unit (< $unit, > samples):"
        diff "$dir/want.txt" "$dir/got.txt" | grep '^[<>]' | head -n 10
    fi

    # The joiner: everything joined in time, nothing late or unmatched.
    check "$name: joiner samples" "$(counter "$dir" join samples)" "$requests"
    check "$name: joiner feedback_joined == clicks" "$(counter "$dir" join feedback_joined)" \
        "$clicks"
    check "$name: joiner late_feedback" "$(counter "$dir" join late_feedback)" 0
    check "$name: joiner unmatched_feedback" "$(counter "$dir" join unmatched_feedback)" 0
    check "$name: lines in the late sink" "$(lines "$dir/late.jsonl")" 0

    # The experiences: one per sample, for the same requests.
    local reqs='s/^{"user":"[^"]*","request":"\([^"]*\)".*/\1/p'
    check "$name: experiences == samples" "$(lines "$dir/experiences.jsonl")" "$n_samples"
    sed -n "$reqs" "$dir/samples.jsonl" | sort >"$dir/sample-requests.txt"
    sed -n "$reqs" "$dir/experiences.jsonl" | sort >"$dir/experience-requests.txt"
    if cmp -s "$dir/sample-requests.txt" "$dir/experience-requests.txt"; then
        pass "$name: one experience per sample (same requests)"
    else
        fail "$name: the experiences' requests differ from the samples' (< samples, > experiences):"
        diff "$dir/sample-requests.txt" "$dir/experience-requests.txt" | grep '^[<>]' | head -n 10
    fi
    # done = 1 ends a session: once per user, plus once per gap > session_gap between a
    # user's consecutive samples (ties in ts do not change the number).
    local gap sessions
    gap=$(duration_ms "$(sed -n 's/^ *session_gap: *\([0-9a-z]*\).*/\1/p' "$job" | head -n 1)")
    sessions=$(sed -n 's/^{"user":"\([^"]*\)","request":"[^"]*","ts":\([0-9]*\),.*/\1 \2/p' \
        "$dir/samples.jsonl" | sort -k1,1 -k2,2n |
        awk -v gap="$gap" '$1 != u || $2 - t > gap { n++ } { u = $1; t = $2 } END { print n + 0 }')
    check "$name: experiences with done = 1 == sessions (gap > $gap ms)" \
        "$(grep -c '"done":1' "$dir/experiences.jsonl")" "$sessions"
    check "$name: collector sessions_ended == sessions" \
        "$(counter "$dir" experience sessions_ended)" "$sessions"
}

# check_obd NAME CSV
check_obd() {
    local name=$1 csv=$2 dir=$TMP/$1
    mkdir -p "$dir"
    # Expected, from the CSV itself: rows, the sum of the click column, and each row as
    # "obd-<row index> i<item_id> <click>" (the request and item rn_convert names).
    local want
    want=$(awk -F, -v want="$dir/want.txt" '
            NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "click") c = i
                                                  if ($i == "item_id") it = i }
                      next }
            NF { rows++; clicks += $c; print "obd-" $1, "i" $it, $c + 0 > want }
            END { print rows + 0, clicks + 0 }' "$csv")
    local rows=${want% *} clicks=${want#* }
    sort -o "$dir/want.txt" "$dir/want.txt"
    convert "$name" obd "$csv" "$dir/in.jsonl" || return
    check "$name: rn_convert reports rows=CSV rows" "$(field rows)" "$rows"
    check "$name: rn_convert reports clicks=sum of the click column" "$(field clicks)" "$clicks"
    run_job "$name" "$OBD_JOB" "$dir/in.jsonl" "$dir" || return
    check_joined "$name" "$dir" "$OBD_JOB" "$rows" "$rows" "$clicks" rows
}

# check_mt NAME RATINGS
check_mt() {
    local name=$1 dat=$2 dir=$TMP/$1
    mkdir -p "$dir"
    # Expected: ratings, ratings >= 7, distinct (user, second) = requests, and each rating
    # as "mt-<user>-<ts> m<movie> <click>".
    local want
    want=$(awk -F'::' -v want="$dir/want.txt" '
            { sub(/\r$/, "") }
            NF { n++; k = ($3 >= 7); c += k; g[$1 " " $4] = 1
                 print "mt-" $1 "-" $4, "m" $2, k > want }
            END { print n + 0, c + 0, length(g) }' "$dat")
    local ratings groups clicks
    read -r ratings clicks groups <<<"$want"
    sort -o "$dir/want.txt" "$dir/want.txt"
    convert "$name" movietweetings "$dat" "$dir/in.jsonl" || return
    echo "     ($name: $ratings ratings converted in $convert_ms ms)"
    check "$name: rn_convert reports ratings=lines" "$(field ratings)" "$ratings"
    check "$name: rn_convert reports clicks=ratings >= 7" "$(field clicks)" "$clicks"
    run_job "$name" "$MT_JOB" "$dir/in.jsonl" "$dir" || return
    check_joined "$name" "$dir" "$MT_JOB" "$groups" "$ratings" "$clicks" ratings
}

# ---- the shipped samples ---------------------------------------------------------------

check_obd sample-obd examples/replay/sample-obd.csv
check_mt sample-ratings examples/replay/sample-ratings.dat

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
            check_obd "obd-$policy-$(basename "$csv" .csv)" "$csv"
        done < <(find "$DATA/obd/$policy" -name '*.csv' ! -name item_context.csv | sort)
    done
    [ "$n_obd" -gt 0 ] || fail "no OBD CSV found under $DATA/obd"
    n_mt=0
    for snap in 10K 100K; do
        dat=$DATA/movietweetings/snapshots/$snap/ratings.dat
        [ -f "$dat" ] || continue
        n_mt=$((n_mt + 1))
        check_mt "movietweetings-$snap" "$dat"
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
