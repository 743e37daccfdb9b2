#!/usr/bin/env bash
# test_safetensors_py.sh — runnel reads a safetensors file written by an independent
# writer: a few lines of python3 (stdlib only: struct + json, following the published
# layout) write an F32, an F64 and an I64 tensor plus metadata, in an order of
# offsets unlike the header's; build/rn_st_dump prints what runnel read, and python
# compares it with what it wrote (tests/unit/test_safetensors.c covers writing).
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Prints PASS/FAIL lines and "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
DUMP=$BIN/rn_st_dump
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
if ! command -v python3 >/dev/null; then
    fail "python3 not found (scripts/install-deps.sh installs it)"
    finish
fi
if [ ! -x "$DUMP" ]; then
    fail "binary not found: $DUMP"
    finish
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-stpy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The independent writer: the header's keys in one order, the data in another.
python3 - "$TMP/py.safetensors" "$TMP/expected.txt" <<'PY'
import json, struct, sys
path, expected = sys.argv[1], sys.argv[2]
tensors = [  # name, dtype, struct code, shape, values
    ("weights", "F32", "f", [2, 3], [0.5, -1.25, 3.0, 1e-3, -7.5, 2.0]),
    ("bias.f64", "F64", "d", [3], [0.1, -2.718281828, 12345.678]),
    ("counts", "I64", "q", [2, 2], [1, -2, 300000, -4]),
]
blobs, offsets, at = {}, {}, 0
for name, dt, code, shape, vals in reversed(tensors):  # data in reverse order
    blobs[name] = struct.pack("<%d%s" % (len(vals), code), *vals)
    offsets[name] = [at, at + len(blobs[name])]
    at += len(blobs[name])
header = {name: {"dtype": dt, "shape": shape, "data_offsets": offsets[name]}
          for name, dt, code, shape, vals in tensors}
header["__metadata__"] = {"format": "pt", "note": "written by \"python\""}
text = json.dumps(header).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for name, dt, code, shape, vals in reversed(tensors):
        f.write(blobs[name])
with open(expected, "w") as f:
    for k, v in header["__metadata__"].items():
        f.write("meta %s %s\n" % (k, v))
    for name, dt, code, shape, vals in tensors:
        f.write("tensor %s [%s] %s\n" % (name, ",".join(map(str, shape)),
                                         " ".join(repr(float(v)) for v in vals)))
PY
if [ $? -ne 0 ]; then
    fail "python writer"
    finish
fi

if "$DUMP" "$TMP/py.safetensors" >"$TMP/got.txt" 2>"$TMP/err.txt"; then
    pass "rn_st_dump reads the python-written file"
else
    fail "rn_st_dump reads the python-written file: $(cat "$TMP/err.txt")"
    finish
fi

# Compare: same lines, names and shapes exactly, values within float precision.
if python3 - "$TMP/expected.txt" "$TMP/got.txt" <<'PY'; then
import sys
want = open(sys.argv[1]).read().splitlines()
got = open(sys.argv[2]).read().splitlines()
ok = len(want) == len(got)
for w, g in zip(want, got):
    wf, gf = w.split(" "), g.split(" ")
    if w.startswith("meta "):
        ok &= w == g
        continue
    ok &= wf[:3] == gf[:3] and len(wf) == len(gf)
    for a, b in zip(wf[3:], gf[3:]):
        a, b = float(a), float(b)
        ok &= abs(a - b) <= 1e-6 * max(1.0, abs(a))
if not ok:
    print("expected:\n" + "\n".join(want) + "\ngot:\n" + "\n".join(got))
sys.exit(0 if ok else 1)
PY
    pass "names, shapes, F32/F64/I64 values and metadata match what python wrote"
else
    fail "names, shapes, F32/F64/I64 values and metadata match what python wrote"
fi

# A header cut short is rejected with a message naming the file.
head -c 40 "$TMP/py.safetensors" >"$TMP/cut.safetensors"
if ! "$DUMP" "$TMP/cut.safetensors" >/dev/null 2>"$TMP/err.txt" &&
    grep -q "cut.safetensors" "$TMP/err.txt"; then
    pass "a truncated file is rejected: $(cat "$TMP/err.txt")"
else
    fail "a truncated file is rejected ($(cat "$TMP/err.txt"))"
fi

finish
