#!/usr/bin/env bash
# The `partitioned_file` sink over many hour buckets at once: events spread
# over 40 hours, hours interleaved at their edges, with some records far back
# in buckets left long before, and each bucket holding more than the sink's
# 1 MiB write buffer. Each bucket's committed parts, read in order, must hold
# exactly that hour's records in input order: without checkpoints, and with
# checkpoints every 100 ms (many parts per bucket, some closed early by
# max_open). In a build without sanitizers, the sink's peak RSS must stay
# within 16 MiB of the same input written to one plain `file` sink: the
# buffers of buckets left behind are written out and freed, not kept until the
# next checkpoint (before they were: about 1 MiB per open bucket).
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-ps.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# 40 hours x 1,400 requests of 100 candidates (~1.2 MiB of output per hour);
# each event's time is jittered by up to 20 minutes around its place, and one
# in 200 goes back 5-30 hours.
python3 - "$work/in.jsonl" <<'EOF'
import random, sys
rnd = random.Random(11)
base = 1700000000000 - 1700000000000 % 3600000
hours, per = 40, 1400
with open(sys.argv[1], "w") as f:
    for i in range(hours * per):
        ts = base + i * 3600000 // per + rnd.randint(-1200000, 1200000)
        if rnd.random() < 0.005:
            ts -= rnd.randint(5, 30) * 3600000
        ts = max(ts, base)
        cands = ",".join('"i%d"' % rnd.randint(0, 99999) for _ in range(100))
        f.write('{"type":"request","ts":%d,"request":"r%d","user":"u%d","candidates":[%s]}\n'
                % (ts, i, rnd.randint(0, 999), cands))
EOF

job() { # NAME SINK-YAML [EXTRA]
  cat <<YAML
job: $1
parallelism: 1
${3:-}
sources:
  in: { type: file, path: $work/in.jsonl }
operators:
  - { id: collect, op: log_collector, from: in }
sinks:
  out: $2
YAML
}

# check NAME DIR: every bucket's committed parts against the input's hours.
check() {
  local why
  if why=$(python3 - "$work/in.jsonl" "$2" <<'EOF'
import json, os, re, sys
from datetime import datetime, timezone
want = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    h = datetime.fromtimestamp(e["ts"] / 1000, timezone.utc).strftime("%Y-%m-%d/%H")
    want.setdefault(h, []).append(e["request"])
got, hidden = {}, 0
for root, _, files in os.walk(sys.argv[2]):
    parts = []
    for name in files:
        m = re.fullmatch(r"part-0-(\d+)(?:-(\d+))?\.jsonl", name)
        if m:
            parts.append((int(m.group(1)), int(m.group(2) or 0), name))
        else:
            hidden += 1
    if not parts:
        continue
    h = os.path.relpath(root, sys.argv[2])
    for _, _, name in sorted(parts):
        for line in open(os.path.join(root, name)):
            got.setdefault(h, []).append(json.loads(line)["request"])
if hidden:
    sys.exit("%d files other than committed parts" % hidden)
if sorted(got) != sorted(want):
    sys.exit("buckets %s, want %s" % (sorted(got)[:5], sorted(want)[:5]))
for h in want:
    if got[h] != want[h]:
        n = next((i for i, (a, b) in enumerate(zip(got[h], want[h])) if a != b),
                 min(len(got[h]), len(want[h])))
        sys.exit("bucket %s: %d records, want %d; first difference at %d" %
                 (h, len(got[h]), len(want[h]), n))
print("%d buckets, %d records" % (len(want), sum(len(v) for v in want.values())))
EOF
  2>&1); then ok "$1: $why, each bucket's parts in order hold its hour's records in input order"
  else bad "$1: $why"; fi
}

# run NAME: the job $work/NAME.yaml to its end; prints its peak RSS (KiB).
run() {
  "$bin/runnel" run "$work/$1.yaml" 2>"$work/$1.err" >/dev/null ||
    { bad "$1: run failed: $(grep -v '^  ' "$work/$1.err" | head -3)"; return 1; }
  sed -n 's/^  process .*peak_rss_kib=\([0-9]*\)$/\1/p' "$work/$1.err"
}

job plain "{ type: partitioned_file, dir: $work/plain, from: collect }" >"$work/plain.yaml"
plain_rss=$(run plain) && check "no checkpoints" "$work/plain"

job ckpt "{ type: partitioned_file, dir: $work/ckpt, from: collect, max_open: 8 }" \
  "checkpoint: { dir: $work/ckpt-state, interval: 100ms }" >"$work/ckpt.yaml"
if run ckpt >/dev/null; then
  n=$(find "$work/ckpt" -name 'part-*.jsonl' | wc -l)
  [ "$n" -gt 40 ] && ok "checkpoints: $n parts" || bad "checkpoints: only $n parts (want > 40)"
  check "checkpoints every 100 ms, max_open 8" "$work/ckpt"
fi

if ldd "$bin/runnel" | grep -q 'lib[at]san'; then
  echo "SKIP peak RSS: a sanitizer build keeps freed memory"
elif [ -z "${plain_rss:-}" ]; then
  bad "peak RSS: no 'process ... peak_rss_kib=' line at the end of the run"
else
  job file "{ type: file, path: $work/all.jsonl, from: collect }" >"$work/file.yaml"
  file_rss=$(run file)
  if [ -n "$file_rss" ] && [ "$plain_rss" -lt $((file_rss + 16384)) ]; then
    ok "peak RSS: partitioned_file $((plain_rss / 1024)) MiB, one file $((file_rss / 1024)) MiB"
  else
    bad "peak RSS: partitioned_file ${plain_rss:-?} KiB, one file ${file_rss:-?} KiB (want < +16 MiB)"
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
