#!/usr/bin/env bash
# test_pretrain.sh — `runnel pretrain` end to end:
#
#   data        rn_sim writes a small log (few users, so histories build up); the main job
#               (jobs/guess-you-like.yaml) turns it into the joiner's hourly training output
#   training    pretrain 2 epochs on it: exit 0, one progress line per epoch, and the held-out
#               hit-rate@1 of the last epoch beats the uniform-random hit-rate printed next to it
#   the file    `runnel pretrain --check` loads it as a state network (history, dim, context,
#               out as asked); rn_st_dump lists the tensors and metadata
#   determinism the same data and seed give a byte-identical file
#   usage       --help prints usage to stdout and exits 0; a bad option or a missing --data
#               exits 2; a missing embeddings file exits 1 naming it
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Prints PASS/FAIL lines and "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
for b in "$BIN/rn_sim" "$RUNNEL" "$BIN/rn_st_dump"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        finish
    fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-pretrain.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

# ---- data -------------------------------------------------------------------------------
timeout 60 "$BIN/rn_sim" --sessions 3000 --users 200 --items 300 --dim 8 --seed 3 \
    --out "$TMP/log.jsonl" --embeddings "$TMP/emb.txt" 2>"$TMP/sim.err"
RUNNEL_LOG=$TMP/log.jsonl RUNNEL_EMBEDDINGS=$TMP/emb.txt RUNNEL_OUT=$TMP/out \
    RUNNEL_HTTP=127.0.0.1:0 timeout 120 "$RUNNEL" run "$SRC/jobs/guess-you-like.yaml" --fresh \
    >"$TMP/run.out" 2>&1
rc=$?
lines=$(cat "$TMP"/out/training/*/*/*.jsonl 2>/dev/null | wc -l)
if [ "$rc" -eq 0 ] && [ "$lines" -gt 1000 ]; then
    pass "the main job wrote $lines training lines"
else
    fail "the main job wrote training lines (exit $rc, $lines lines): $(tail -c 600 "$TMP/run.out")"
    finish
fi

# ---- training ----------------------------------------------------------------------------
pretrain() { # OUT: 2 epochs, output in $TMP/OUT.txt
    timeout 60 "$RUNNEL" pretrain --data "$TMP/out/training" --embeddings "$TMP/emb.txt" \
        --out "$TMP/$1.safetensors" --history 10 --filters 8 --out-dim 16 --epochs 2 \
        --seed 1 >"$TMP/$1.txt" 2>&1
}
pretrain net
rc=$?
cat "$TMP/net.txt"
epochs=$(grep -c '^epoch [12]/2: loss' "$TMP/net.txt")
if [ "$rc" -eq 0 ] && [ "$epochs" -eq 2 ]; then
    pass "pretrain exits 0 with a progress line per epoch"
else
    fail "pretrain exits 0 with a progress line per epoch (exit $rc, $epochs lines)"
fi
last=$(grep '^epoch 2/2:' "$TMP/net.txt")
hit=$(echo "$last" | sed -n 's/.*held-out hit@1 \([0-9.]*\).*/\1/p')
rnd=$(echo "$last" | sed -n 's/.*(random \([0-9.]*\)).*/\1/p')
if awk -v h="$hit" -v r="$rnd" 'BEGIN { exit !(h != "" && r != "" && h > r + 0.05) }'; then
    pass "held-out hit@1 $hit beats random $rnd"
else
    fail "held-out hit@1 beats random by 0.05 (got '$hit' vs '$rnd')"
fi

# ---- the file ----------------------------------------------------------------------------
if "$RUNNEL" pretrain --check "$TMP/net.safetensors" >"$TMP/check.txt" 2>&1 &&
    grep -q "state network ok: history 10, dim 8, context 3, out 16" "$TMP/check.txt"; then
    pass "--check loads it: $(cat "$TMP/check.txt")"
else
    fail "--check loads it: $(cat "$TMP/check.txt")"
fi
"$BIN/rn_st_dump" "$TMP/net.safetensors" >"$TMP/dump.txt" 2>&1
if grep -q '^tensor conv1.weight \[8,2,8\]' "$TMP/dump.txt" &&
    grep -q '^tensor conv2.weight \[8,3,8\]' "$TMP/dump.txt" &&
    grep -q '^tensor dense.weight \[16,27\]' "$TMP/dump.txt" &&
    grep -q '^tensor proj.weight \[16,8\]' "$TMP/dump.txt" &&
    grep -q '^meta history 10$' "$TMP/dump.txt"; then
    pass "tensors and metadata as documented"
else
    fail "tensors and metadata as documented: $(cut -c 1-80 "$TMP/dump.txt")"
fi
printf 'garbage' >"$TMP/bad.safetensors"
if ! "$RUNNEL" pretrain --check "$TMP/bad.safetensors" >/dev/null 2>"$TMP/bad.txt"; then
    pass "--check rejects a corrupt file: $(cat "$TMP/bad.txt")"
else
    fail "--check rejects a corrupt file"
fi

# ---- determinism ---------------------------------------------------------------------------
pretrain again
if cmp -s "$TMP/net.safetensors" "$TMP/again.safetensors"; then
    pass "same data and seed: byte-identical file"
else
    fail "same data and seed: byte-identical file"
fi

# ---- usage ------------------------------------------------------------------------------------
"$RUNNEL" pretrain --help >"$TMP/help.txt" 2>/dev/null
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^usage: runnel pretrain' "$TMP/help.txt"; then
    pass "--help: usage on stdout, exit 0"
else
    fail "--help: usage on stdout, exit 0 (exit $rc)"
fi
"$RUNNEL" pretrain --frobnicate 1 >/dev/null 2>&1
rc1=$?
"$RUNNEL" pretrain --embeddings "$TMP/emb.txt" --out x.safetensors >/dev/null 2>&1
rc2=$?
"$RUNNEL" pretrain --data "$TMP/out/training" --embeddings "$TMP/epochs" --out x.safetensors \
    --epochs many >/dev/null 2>&1
rc3=$?
if [ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ] && [ "$rc3" -eq 2 ]; then
    pass "usage errors exit 2"
else
    fail "usage errors exit 2 (unknown option $rc1, no --data $rc2, bad --epochs $rc3)"
fi
"$RUNNEL" pretrain --data "$TMP/out/training" --embeddings "$TMP/nope.txt" \
    --out "$TMP/x.safetensors" >/dev/null 2>"$TMP/nope.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "nope.txt" "$TMP/nope.err"; then
    pass "a missing embeddings file: exit 1, $(cat "$TMP/nope.err")"
else
    fail "a missing embeddings file: exit 1 naming it (exit $rc: $(cat "$TMP/nope.err"))"
fi

finish
