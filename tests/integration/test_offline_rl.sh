#!/usr/bin/env bash
# test_offline_rl.sh — runnel train-offline end to end: the simulator's popularity
# policy writes a log, the main job turns it into the joiner's training output, each
# algorithm trains an actor into a model store (twice: the same tensors), and the actor
# is served
#   * by the simulator's model: policy and by runnel evaluate, and
#   * by the inference operator over HTTP (POST /api/v1/recommend answers with the
#     actor's version);
# an actor written by an independent writer (python3's standard library, F64 tensors in
# another order, as a trainer elsewhere would write the documented layout) from the same
# values is served identically: the simulator's log is byte-identical. Bad input: usage
# errors exit 2, a bad data line exits 1 naming FILE:LINE.
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN. Prints PASS/FAIL lines and
# "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
cd "$SRC" || exit 1
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-offline.XXXXXX")
job=
trap '[ -n "$job" ] && kill "$job" 2>/dev/null; rm -rf "$TMP"' EXIT

SMALL=(--users 400 --items 300 --candidates 30)
"$BIN/rn_sim" --policy popularity --sessions 1500 --seed 3 "${SMALL[@]}" --out "$TMP/log.jsonl" \
    --embeddings "$TMP/emb.txt" 2>"$TMP/pop.sim"
RUNNEL_LOG="$TMP/log.jsonl" RUNNEL_FOLLOW=false RUNNEL_VAR="$TMP/var" RUNNEL_OUT="$TMP/out" \
    RUNNEL_MODELS="$TMP/dq" RUNNEL_EMBEDDINGS="$TMP/emb.txt" RUNNEL_HTTP=127.0.0.1:0 \
    RUNNEL_SERVE=127.0.0.1:0 timeout 120 "$BIN/runnel" run jobs/guess-you-like.yaml --fresh \
    2>"$TMP/job.txt"
if [ -d "$TMP/out/training" ]; then
    pass "the joiner's training output of a popularity log"
else
    fail "no training output: $(tail -3 "$TMP/job.txt")"
    finish
fi

# The independent writer: reads a runnel actor file and writes the same values as F64,
# data in reverse order, with its own manifest.
rewrite() {
    python3 - "$1" "$2" <<'PY'
import json, os, struct, sys
src, store = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(n))
    data = f.read()
meta = head.pop("__metadata__")
vals = {}
for name, t in head.items():
    b, e = t["data_offsets"]
    vals[name] = (t["shape"], struct.unpack("<%df" % ((e - b) // 4), data[b:e]))
names = list(vals)
blobs, offs, at = {}, {}, 0
for name in reversed(names):
    blobs[name] = struct.pack("<%dd" % len(vals[name][1]), *vals[name][1])
    offs[name] = [at, at + len(blobs[name])]
    at += len(blobs[name])
out = {name: {"dtype": "F64", "shape": vals[name][0], "data_offsets": offs[name]} for name in names}
out["__metadata__"] = {k: meta[k] for k in ("format", "activation", "scale", "perturb_scale")
                       if k in meta}
out["__metadata__"]["trainer"] = "elsewhere"
text = json.dumps(out).encode()
text += b" " * ((8 - len(text) % 8) % 8)
os.makedirs(store, exist_ok=True)
with open(os.path.join(store, "v000000000001.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for name in reversed(names):
        f.write(blobs[name])
with open(os.path.join(store, "v000000000001.json"), "w") as f:
    f.write('{"id":1,"created_ms":0,"event_time":0,"updates":0,"transitions":0}\n')
PY
}

for algo in reinforce-topk ddpg bcq; do
    for run in 1 2; do
        "$BIN/runnel" train-offline --algo "$algo" --data "$TMP/out/training" \
            --embeddings "$TMP/emb.txt" --out "$TMP/$algo-$run" --epochs 2 \
            >"$TMP/$algo-$run.out" 2>"$TMP/$algo-$run.err"
        rc=$?
    done
    f1=$TMP/$algo-1/v000000000001.safetensors
    if [ "$rc" -eq 0 ] && [ -f "$f1" ] && grep -q "algo=$algo" "$TMP/$algo-1.out"; then
        pass "$algo: trained and published as version 1"
    else
        fail "$algo: exit $rc: $(tail -3 "$TMP/$algo-1.err")"
        continue
    fi
    if diff <("$BIN/rn_st_dump" "$f1" | grep -v created_ms) \
        <("$BIN/rn_st_dump" "$TMP/$algo-2/v000000000001.safetensors" | grep -v created_ms) \
        >/dev/null; then
        pass "$algo: the same data and seed give the same tensors"
    else
        fail "$algo: two runs differ"
    fi
    if "$BIN/rn_st_dump" "$f1" | grep -q "meta format runnel-actor/1"; then
        pass "$algo: format runnel-actor/1"
    else
        fail "$algo: format: $("$BIN/rn_st_dump" "$f1" | grep meta | head -3)"
    fi
    rewrite "$f1" "$TMP/$algo-py"
    for s in 1 py; do
        "$BIN/rn_sim" --policy "model:$TMP/$algo-$s" --model-lag 0 --sessions 300 --seed 3 \
            "${SMALL[@]}" --out "$TMP/$algo-$s.log" --embeddings "$TMP/$algo-$s.emb" \
            2>"$TMP/$algo-$s.sim"
    done
    if cmp -s "$TMP/$algo-1.log" "$TMP/$algo-py.log" &&
        grep -q '"model_version":1' "$TMP/$algo-1.log"; then
        pass "$algo: served by rn_sim; the independent writer's file serves the same log"
    else
        fail "$algo: logs differ or no version 1: $(tail -2 "$TMP/$algo-py.sim")"
    fi
    "$BIN/runnel" evaluate --data "$TMP/out/training" --embeddings "$TMP/emb.txt" \
        --policy "model:$TMP/$algo-1" --bootstrap 0 --json >"$TMP/$algo.ope" 2>"$TMP/$algo.ope.err"
    if grep -q '"snips":{"estimate":[0-9]' "$TMP/$algo.ope"; then
        pass "$algo: runnel evaluate estimates it"
    else
        fail "$algo: evaluate: $(head -c 300 "$TMP/$algo.ope.err")"
    fi
done

# The inference operator serves the REINFORCE actor over HTTP.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$TMP/live.jsonl"
RUNNEL_LOG="$TMP/live.jsonl" RUNNEL_FOLLOW=true RUNNEL_VAR="$TMP/var2" RUNNEL_OUT="$TMP/out2" \
    RUNNEL_MODELS="$TMP/dq2" RUNNEL_EMBEDDINGS="$TMP/emb.txt" RUNNEL_HTTP=127.0.0.1:0 \
    RUNNEL_SERVE="127.0.0.1:$port" "$BIN/runnel" run jobs/guess-you-like.yaml --fresh \
    --set "operators.rank.model_store=$TMP/reinforce-topk-1" 2>"$TMP/job2.txt" &
job=$!
answer=
for _ in $(seq 1 600); do
    answer=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/recommend" \
        -d '{"user":"u1","request":"q1","candidates":["i1","i2","i3","i4","i5","i6"],"k":3}' \
        2>/dev/null) && echo "$answer" | grep -q '"model_version":1' && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
done
if echo "$answer" | grep -q '"model_version":1' && echo "$answer" | grep -q '"items":\['; then
    pass "inference serves the actor over HTTP: $answer"
else
    fail "inference over HTTP: '$answer' $(tail -3 "$TMP/job2.txt")"
fi
kill "$job" 2>/dev/null
wait "$job" 2>/dev/null
job=

# Bad input.
"$BIN/runnel" train-offline --help >"$TMP/help.txt"
rc=$?
[ "$rc" -eq 0 ] && grep -q "^usage: runnel train-offline" "$TMP/help.txt" &&
    pass "--help: usage on stdout, exit 0" || fail "--help: exit $rc"
"$BIN/runnel" train-offline --algo ddpg --embeddings "$TMP/emb.txt" --out "$TMP/x" 2>"$TMP/u.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "are required" "$TMP/u.err" && pass "missing --data: exit 2" ||
    fail "missing --data: exit $rc $(head -1 "$TMP/u.err")"
head -3 "$(find "$TMP/out/training" -name '*.jsonl' | head -1)" >"$TMP/bad.jsonl"
echo '{"user":"u1","request":"r","ts":1,"items":[{"item":"i1","position":1,"propensity":2}]}' \
    >>"$TMP/bad.jsonl"
"$BIN/runnel" train-offline --algo ddpg --data "$TMP/bad.jsonl" --embeddings "$TMP/emb.txt" \
    --out "$TMP/x" 2>"$TMP/b.err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "bad.jsonl:4:" "$TMP/b.err" && [ ! -e "$TMP/x" ] &&
    pass "a bad line: exit 1 naming it ($(head -1 "$TMP/b.err"))" ||
    fail "a bad line: exit $rc $(head -1 "$TMP/b.err")"
finish
