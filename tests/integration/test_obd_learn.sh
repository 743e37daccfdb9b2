#!/usr/bin/env bash
# test_obd_learn.sh — the OBD learning pipeline (docs/evaluation.md, "OBD: learned
# policy") on the shipped excerpt examples/replay/sample-obd.csv (200 rows, 4 clicks) and
# its campaign's items (sample-obd-items.csv, OBD's random/men item_context.csv):
#
#   rn_convert obd-items   34 items, dim 28 (1 z-scored numeric + one-hot 7 + 16 + 4),
#                          one row each, one-hot blocks with exactly one 1; the same bytes
#                          twice; a file without item_id exits 1; with ../shared/data,
#                          random/'s and bts/'s differently hashed tables agree
#   replay + split         jobs/obd-replay.yaml on the whole sample, then obd-split.sh
#                          keeps the requests before the first of the last 20 % of lists
#   learn                  jobs/obd-learn.yaml on that part: every transition learnt,
#                          versions published (manifests in the store = the summary's
#                          count), the last one byte-identical at parallelism 1 and 2
#   evaluate               --train-fraction 0.8 with logging, model:STORE and random:
#                          logging's IPS, SNIPS and DR equal its on-policy mean (the
#                          evaluated reward sum / slots); the model row has finite
#                          estimates with lo <= hi and is not uniform (it matches fewer
#                          slots than it is evaluated on: the advantage learnt from
#                          one-item lists); ε-greedy matches every slot
#
# Mechanics only: with 1 click in the 40 evaluated slots nothing here says whether the
# model is better. Run by ctest with RUNNEL_SRC and RUNNEL_BIN. One PASS/FAIL line per
# check, then "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
CONVERT=$BIN/rn_convert
SPLIT=$SRC/examples/replay/obd-split.sh
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-obdlearn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
for b in "$RUNNEL" "$CONVERT"; do
    [ -x "$b" ] || { fail "binary not found: $b"; finish; }
done
command -v python3 >/dev/null || { fail "python3 not found (scripts/install-deps.sh)"; finish; }

# ---- item embeddings ---------------------------------------------------------------------
EMB=$TMP/items.emb
if "$CONVERT" obd-items examples/replay/sample-obd-items.csv --out "$EMB" 2>"$TMP/items.err" &&
    "$CONVERT" obd-items examples/replay/sample-obd-items.csv --out "$TMP/items2.emb" 2>/dev/null &&
    cmp -s "$EMB" "$TMP/items2.emb"; then
    pass "obd-items converts (twice the same bytes): $(cat "$TMP/items.err")"
else
    fail "obd-items: $(cat "$TMP/items.err")"
    finish
fi
if awk '!/^#/ { n++; if (NF != 29 || $1 !~ /^i[0-9]+$/) bad = 1
                s1 = 0; for (i = 3; i <= 9; i++) s1 += $i
                s2 = 0; for (i = 10; i <= 25; i++) s2 += $i
                s3 = 0; for (i = 26; i <= 29; i++) s3 += $i
                if (s1 != 1 || s2 != 1 || s3 != 1) bad = 1; z += $2; zz += $2 * $2 }
     END { exit !(n == 34 && !bad && z * z < 1e-12 && (zz / n - 1) ^ 2 < 1e-9) }' "$EMB"; then
    pass "34 items, dim 28: a z-score (mean 0, sd 1) and one-hot blocks of 7, 16 and 4"
else
    fail "the table is not 34 rows of a z-score and three one-hot blocks: $(sed -n 1,3p "$EMB")"
fi
printf 'id,item_feature_0\n1,0.5\n' >"$TMP/noid.csv"
"$CONVERT" obd-items "$TMP/noid.csv" --out "$TMP/noid.emb" 2>"$TMP/noid.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "no 'item_id' column" "$TMP/noid.err" && [ ! -e "$TMP/noid.emb" ]; then
    pass "a file without item_id: exit 1, a message, no table"
else
    fail "a file without item_id: rc $rc, $(cat "$TMP/noid.err")"
fi
OBD=$SRC/../shared/data/obd
if [ -f "$OBD/random/men/item_context.csv" ] && [ -f "$OBD/bts/men/item_context.csv" ]; then
    "$CONVERT" obd-items "$OBD/random/men/item_context.csv" --out "$TMP/r.emb" 2>/dev/null
    "$CONVERT" obd-items "$OBD/bts/men/item_context.csv" --out "$TMP/b.emb" 2>/dev/null
    if cmp -s <(grep -v '^#' "$TMP/r.emb") <(grep -v '^#' "$TMP/b.emb"); then
        pass "random/ and bts/ item_context.csv (hashed differently) give the same vectors"
    else
        fail "random/ and bts/ item tables differ"
    fi
fi

# ---- replay the whole sample, cut the first 80 % -----------------------------------------
"$CONVERT" obd examples/replay/sample-obd.csv --out "$TMP/obd.jsonl" 2>/dev/null ||
    { fail "rn_convert obd"; finish; }
timeout 60 "$RUNNEL" run jobs/obd-replay.yaml --set http.listen=127.0.0.1:0 \
    --set state.dir="$TMP/state-replay" --set sources.logs.path="$TMP/obd.jsonl" \
    --set sinks.samples.path="$TMP/replay/samples.jsonl" \
    --set sinks.experiences.path="$TMP/replay/experiences.jsonl" \
    --set sinks.late.path="$TMP/replay/late.jsonl" \
    --set sinks.rejected.path="$TMP/replay/rejected.jsonl" >/dev/null 2>"$TMP/replay.err" ||
    { fail "replay: $(tail -3 "$TMP/replay.err")"; finish; }
SAMPLES=$TMP/replay/samples.jsonl
"$SPLIT" "$SAMPLES" "$TMP/obd.jsonl" 0.8 "$TMP/train.jsonl" 2>"$TMP/split.err" ||
    { fail "obd-split.sh: $(cat "$TMP/split.err")"; finish; }
kept=$(grep -c '"type":"request"' "$TMP/train.jsonl")
if [ "$kept" -gt 0 ] && [ "$kept" -le 160 ]; then
    pass "split: $kept of 200 requests before the cut (at most floor(0.8 * 200) = 160)"
else
    fail "split kept $kept requests: $(cat "$TMP/split.err")"
fi

# ---- learn --------------------------------------------------------------------------------
# learn NAME PARALLELISM: jobs/obd-learn.yaml on the training part into $TMP/NAME.store
learn() {
    RUNNEL_PARALLELISM=$2 timeout 60 "$RUNNEL" run jobs/obd-learn.yaml \
        --set http.listen=127.0.0.1:0 --set state.dir="$TMP/state-$1" \
        --set sources.logs.path="$TMP/train.jsonl" \
        --set sinks.samples.path="$TMP/$1/samples.jsonl" \
        --set sinks.experiences.path="$TMP/$1/experiences.jsonl" \
        --set sinks.late.path="$TMP/$1/late.jsonl" \
        --set sinks.rejected.path="$TMP/$1/rejected.jsonl" \
        --set operators.learn.embeddings="$EMB" \
        --set operators.learn.model_store="$TMP/$1.store" >/dev/null 2>"$TMP/$1.err"
}
learn p2 2 || { fail "learn: $(tail -3 "$TMP/p2.err")"; finish; }
line=$(grep '^  learn ' "$TMP/p2.err")
transitions=$(sed -n 's/.* transitions \([0-9]*\) .*/\1/p' <<<"$line")
versions=$(sed -n 's/.* versions \([0-9]*\) .*/\1/p' <<<"$line")
manifests=$(ls "$TMP/p2.store" | grep -c '^v[0-9]*\.json$')
if [ "$transitions" = "$kept" ] && [ "${versions:-0}" -ge 1 ] && [ "$manifests" = "$versions" ]; then
    pass "learnt all $transitions transitions; $versions versions published, as many manifests"
else
    fail "learn: transitions '$transitions' (want $kept), versions '$versions', manifests $manifests"
fi
last=$(ls "$TMP/p2.store" | grep '^v[0-9]*\.safetensors$' | sort | tail -1)
if learn p1 1 && [ -n "$last" ] && cmp -s "$TMP/p1.store/$last" "$TMP/p2.store/$last"; then
    pass "deterministic: the last version ($last) is the same bytes at parallelism 1 and 2"
else
    fail "the last version differs between parallelism 1 and 2 ($last)"
fi

# ---- evaluate -----------------------------------------------------------------------------
for eps in 0 0.1; do
    if ! timeout 60 "$RUNNEL" evaluate --data "$SAMPLES" --train-fraction 0.8 --policy logging \
        --policy "model:$TMP/p2.store" --policy random --embeddings "$EMB" --epsilon $eps \
        --bootstrap 200 --json >"$TMP/eval$eps.json" 2>"$TMP/eval$eps.err"; then
        fail "evaluate (epsilon $eps): $(cat "$TMP/eval$eps.err")"
        continue
    fi
    if out=$(python3 - "$TMP/eval$eps.json" "$eps" <<'EOF'
import json, math, sys
d = json.load(open(sys.argv[1]))
eps = float(sys.argv[2])
pol = {p["policy"].split(" ")[0].split(":")[0]: p for p in d["policies"]}
errs = []
lg, md = pol["logging"], pol["model"]
mean = d["eval_reward_sum"] / d["eval_slots"]
for k in ("ips", "snips", "dr"):
    if abs(lg[k]["estimate"] - mean) > 1e-12 or abs(lg["mean_reward"] - mean) > 1e-12:
        errs.append("logging %s %r != on-policy mean %r" % (k, lg[k]["estimate"], mean))
    c = md[k]
    if not all(isinstance(c[x], float) or isinstance(c[x], int) for x in ("estimate", "lo", "hi")):
        errs.append("model %s not numbers: %r" % (k, c))
    elif not all(math.isfinite(c[x]) for x in ("estimate", "lo", "hi")) or c["lo"] > c["hi"]:
        errs.append("model %s not a finite interval: %r" % (k, c))
if "(version " not in md["policy"]:
    errs.append("model row names no version: %r" % md["policy"])
if eps == 0 and not 0 < md["matched"] < md["n"]:
    errs.append("greedy model matched %d of %d slots (all: it ranks items alike)" % (md["matched"], md["n"]))
if eps > 0 and md["matched"] != md["n"]:
    errs.append("epsilon-greedy model matched %d of %d" % (md["matched"], md["n"]))
print("; ".join(errs) if errs else "model: n %d matched %d IPS %.5f [%.5f, %.5f]; logging %.5f"
      % (md["n"], md["matched"], md["ips"]["estimate"],
         md["ips"]["lo"], md["ips"]["hi"], lg["ips"]["estimate"]))
sys.exit(1 if errs else 0)
EOF
    ); then
        pass "evaluate (epsilon $eps): $out"
    else
        fail "evaluate (epsilon $eps): $out"
    fi
done
finish
