#!/usr/bin/env bash
# test_webui.sh — the job page of the web UI (docs/status.md) in headless Chromium, on the
# main job (jobs/guess-you-like.yaml) while simulated users are served by it, as
# scripts/run-example.sh runs it:
#
#   assets      /, /ui/*.js and /ui/runnel.css come from the binary with their types; an
#               unknown asset is 404; /plain (the page without scripts) still answers
#   history     /api/v1/history holds the series the charts draw, one sample a second,
#               and ?since= returns only newer samples
#   metrics     /metrics has the busy seconds and the operators' ratios the page shows, and
#               the serving latency histogram (runnel_operator_latency_seconds)
#   page        after the page has polled: the graph has every operator of /api/v1/job
#               with live figures (a rate and its counts), every cross-chain edge mode is
#               drawn, the records chart has >= 2 points, the learner panel shows the
#               model version the job reports, the serving latency chart has >= 2 points,
#               the checkpoints table has a completed one;
#               selecting an operator shows its details with a row per subtask
#   screenshot  a PNG of the page and of each view, kept as test artefacts
#               (build/test-artifacts/webui/)
#
# RUNNEL_WEBUI_SESSIONS: how many sessions the simulated users play (default 8000; more keep
# traffic flowing longer, for scripts/ui-screenshots.sh). Skips (exit 77) when chromium is
# not installed. Run by ctest with RUNNEL_SRC and
# RUNNEL_BIN. One PASS/FAIL line per check, then "N passed, M failed".
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
cd "$SRC" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-webui.XXXXXX")
. "$SRC/tests/integration/webui_lib.sh"
need_chromium
jpid=
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; [ -n "$jpid" ] && kill -TERM "$jpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT

# The main job on free ports, following a log the simulated users write.
"$BIN/rn_sim" --sessions 0 --seed 7 --embeddings "$TMP/emb.txt" --out /dev/null 2>/dev/null
: >"$TMP/log.jsonl"
RUNNEL_LOG=$TMP/log.jsonl RUNNEL_FOLLOW=true RUNNEL_VAR=$TMP/var RUNNEL_MODELS=$TMP/models \
    RUNNEL_OUT=$TMP/out RUNNEL_EMBEDDINGS=$TMP/emb.txt RUNNEL_HTTP=127.0.0.1:0 \
    RUNNEL_SERVE=127.0.0.1:0 "$BIN/runnel" run jobs/guess-you-like.yaml --fresh \
    --set checkpoint.interval=1s 2>"$TMP/job.err" &
jpid=$!
addr_of() { sed -n "s|^runnel: $1 at http://\([0-9.:]*\)/.*|\1|p" "$TMP/job.err" | head -1; }
have_addrs() { [ -n "$(addr_of 'status page')" ] && [ -n "$(addr_of serving)" ]; }
if ! wait_for 30 have_addrs; then
    fail "the job did not start: $(cat "$TMP/job.err")"
    finish
fi
HTTP=$(addr_of 'status page')
SERVE=$(addr_of serving)
"$BIN/rn_sim" --policy "http://$SERVE" --sessions "${RUNNEL_WEBUI_SESSIONS:-8000}" --seed 7 --out "$TMP/log.jsonl" \
    --embeddings "$TMP/emb.txt" 2>"$TMP/sim.err" &
spid=$!

# jq-free JSON checks: py 'python expression over d' URL
py() { curl -sf "http://$HTTP$2" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
learned() { py "[o for o in d['operators'] if o['id']=='learn'][0]['metrics']['model_version'] >= 1" /api/v1/job; }
checkpointed() { py "d['completed'] >= 1" /api/v1/checkpoints; }
if wait_for 60 learned && wait_for 30 checkpointed; then
    pass "the job learned a model version and completed a checkpoint"
else
    fail "no model version or checkpoint within 90 s: $(tail -3 "$TMP/job.err")"
fi

# ---- assets ------------------------------------------------------------------------
ctype() { curl -s -o /dev/null -w '%{http_code} %{content_type}' "http://$HTTP$1"; }
ok=1
for a in "/ text/html" "/ui/job.js text/javascript" "/ui/chart.js text/javascript" \
    "/ui/graph.js text/javascript" "/ui/common.js text/javascript" "/ui/runnel.css text/css"; do
    set -- $a
    got=$(ctype "$1")
    case "$got" in "200 $2"*) ;; *) ok=0; echo "  $1: $got" ;; esac
done
[ "$(ctype /ui/nope.js)" = "404 text/plain; charset=utf-8" ] || { ok=0; echo "  /ui/nope.js: $(ctype /ui/nope.js)"; }
curl -sf "http://$HTTP/plain" | grep -q "<h2>Queues</h2>" || { ok=0; echo "  /plain has no queue table"; }
[ $ok = 1 ] && pass "assets served from the binary with their types; 404 for others; /plain" \
    || fail "assets"

# ---- history -----------------------------------------------------------------------
if py "len(d['t']) >= 2 and d['capacity'] == 600 and d['interval_ms'] == 1000 and all(len(v) == len(d['t']) for v in d['series'].values()) and {'collect.in','learn.r.reward_per_session','learn.m.model_version','chain.0.busy','job.dead_letters','state.bytes','rank.lat.request.p50','rank.lat.request.p99','rank.lat.last_added.p50'} <= set(d['series']) and any(x is not None and x > 0 for x in d['series']['rank.lat.request.p99']) and all(b - a >= 500 for a, b in zip(d['t'], d['t'][1:]))" /api/v1/history; then
    pass "history: every charted series, aligned, one sample a second"
else
    fail "history: $(curl -s "http://$HTTP/api/v1/history" | head -c 400)"
fi
last=$(curl -sf "http://$HTTP/api/v1/history" | python3 -c "import json,sys; print(json.load(sys.stdin)['t'][-1])")
if py "all(t > $last for t in d['t'])" "/api/v1/history?since=$last"; then
    pass "history?since= returns only newer samples"
else
    fail "history?since=$last"
fi

# ---- metrics -----------------------------------------------------------------------
# reward_per_session exists once a session has ended: slow trees (sanitizers) get
# there later, so poll for up to 30 s.
metrics_ok() {
  grep -q '^runnel_busy_seconds_total{job="guess-you-like",operator="logs",chain="0"} ' <<<"$m" &&
    grep -q '^runnel_operator_ratio{job="guess-you-like",operator="learn",name="reward_per_session"} ' <<<"$m"
}
for _ in $(seq 60); do
  m=$(curl -sf "http://$HTTP/metrics")
  metrics_ok && break
  sleep 0.5
done
if metrics_ok; then
    pass "metrics: busy seconds and operator ratios"
else
    fail "metrics: $(grep -E 'busy|ratio' <<<"$m" | head -5)"
fi

# the serving latency histogram: cumulative buckets ending in +Inf = _count > 0
printf '%s\n' "$m" >"$TMP/metrics.txt"
if python3 - "$TMP/metrics.txt" <<'PYEOF'
import sys
m = open(sys.argv[1]).read()
lab = 'job="guess-you-like",operator="rank",name="request"'
b = [(l.split('le="')[1].split('"')[0], int(l.rsplit(' ', 1)[1])) for l in m.splitlines()
     if l.startswith('runnel_operator_latency_seconds_bucket{' + lab)]
cnt = [int(l.rsplit(' ', 1)[1]) for l in m.splitlines()
       if l.startswith('runnel_operator_latency_seconds_count{' + lab)]
ok = (len(b) >= 2 and b[-1][0] == '+Inf' and cnt and b[-1][1] == cnt[0] > 0
      and all(x[1] <= y[1] for x, y in zip(b, b[1:]))
      and all(float(x[0]) < float(y[0]) for x, y in zip(b[:-1], b[1:-1])))
sys.exit(0 if ok else 1)
PYEOF
then
    pass "metrics: the serving latency histogram (cumulative buckets, +Inf = count > 0)"
else
    fail "metrics: latency histogram: $(grep latency <<<"$m" | head -5)"
fi

# every metric the Grafana dashboard queries is one runnel exports (a histogram's
# _bucket, _sum and _count series are declared under its own name)
missing=$(grep -o 'runnel_[a-z_]*' examples/grafana/runnel-dashboard.json | sed -E 's/_(bucket|sum|count)$//' | sort -u | while read -r n; do
    grep -q "^# TYPE $n " <<<"$m" || echo "$n"
done)
if [ -z "$missing" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' examples/grafana/runnel-dashboard.json; then
    pass "grafana dashboard: valid JSON; every metric it queries is in /metrics"
else
    fail "grafana dashboard queries metrics runnel does not export: $missing"
fi

# ---- the page in Chromium ----------------------------------------------------------
curl -sf "http://$HTTP/api/v1/job" >"$TMP/job.json"
browse "http://$HTTP/" 7000 >"$TMP/dom.html"
cp "$TMP/dom.html" "$ART/job-dom.html"
python3 - "$TMP/job.json" "$TMP/dom.html" <<'PYEOF'
import html.parser, json, sys
job = json.load(open(sys.argv[1]))
dom = open(sys.argv[2]).read()

class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.ops = {}; s.charts = {}; s.version = None; s.svg = None
        s.texts = []; s.in_elabel = False; s.ckpt_ok = 0; s.polls = 0
    def handle_starttag(s, tag, a):
        a = dict(a)
        if tag == "body": s.polls = int(a.get("data-polls", "0"))
        if tag == "svg" and a.get("id") == "graph-svg": s.svg = a
        if tag == "g" and "op" in (a.get("class") or "").split(): s.ops[a["data-id"]] = a
        if tag == "figure" and a.get("id", "").startswith("chart-"):
            s.charts[a["id"][6:]] = int(a.get("data-points", "0"))
        if tag == "b" and a.get("id") == "model-version": s.version = int(a["data-version"])
        s.in_elabel = tag == "text" and a.get("class") == "elabel"
        if tag == "td" and "ok" in (a.get("class") or "").split(): s.ckpt_ok += 1
    def handle_data(s, d):
        if s.in_elabel: s.texts.append(d)
p = P(); p.feed(dom)
bad = []
def check(cond, what):
    print(("  ok: " if cond else "  NOT: ") + what)
    if not cond: bad.append(what)
check(p.polls >= 2, "page: polled the API at least twice without a reload (%d)" % p.polls)
ids = [o["id"] for o in job["operators"]]
check(p.svg is not None and int(p.svg["data-operators"]) == len(ids) and sorted(p.ops) == sorted(ids),
      "graph: every operator of /api/v1/job is drawn (%d of %d)" % (len(p.ops), len(ids)))
live = [i for i in ids if p.ops.get(i, {}).get("data-rate", "") != ""]
src = p.ops.get("logs", {})
check(len(live) == len(ids) and int(src.get("data-records-out", "0")) > 0,
      "graph: every operator shows a live rate and its counts (%d with a rate)" % len(live))
modes = {e["mode"] for e in job["edges"]
         if [o["chain"] for o in job["operators"] if o["id"] == e["from"]] !=
            [o["chain"] for o in job["operators"] if o["id"] == e["to"]]}
drawn = {t.split(" · ")[-1] for t in p.texts}
check(modes <= drawn, "graph: edge modes drawn %s (job has %s)" % (sorted(drawn), sorted(modes)))
check(p.charts.get("records-in", 0) >= 2, "charts: records per second has %d points" % p.charts.get("records-in", 0))
check(p.charts.get("latency-rank", 0) >= 2, "learner panel: serving latency chart has %d points" % p.charts.get("latency-rank", 0))
check("version-rank" in p.charts and "td-rank" not in p.charts and "td-learn" in p.charts,
      "learner panel: the inference operator is charted as a server, not as a learner")
lv = [o for o in job["operators"] if o["id"] == "learn"][0]["metrics"]["model_version"]
check(p.version is not None and p.version >= 1 and p.version >= lv,
      "learner panel: model version %s (the job reported %d before)" % (p.version, lv))
check(p.ckpt_ok >= 1, "checkpoints view: %d completed checkpoints listed" % p.ckpt_ok)
sys.exit(1 if bad else 0)
PYEOF
if [ $? -eq 0 ]; then pass "the job page in Chromium"; else fail "the job page in Chromium (DOM kept in $ART/job-dom.html)"; fi

# The whole page, and each view alone and smaller (docs/img/ takes those: scripts/ui-screenshots.sh).
# Selecting an operator (join, two subtasks) opens its details, with a row per subtask.
cat >"$TMP/wait.js" <<'JSEOF'
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 100 && +(document.body.dataset.polls || 0) < 3; i++) await sleep(200);
  document.querySelector('g.op[data-id="join"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
  await sleep(100);
  const h = document.querySelector("#detail h3");
  const sub = [...document.querySelectorAll("#detail h3")].find((e) => e.textContent === "Subtasks");
  return { polls: +(document.body.dataset.polls || 0), detail: h ? h.textContent : null,
           subtasks: sub ? sub.nextElementSibling.querySelectorAll("tr").length - 1 : 0,
           selected: !!document.querySelector('g.op.sel[data-id="join"]') };
})()
JSEOF
timeout 100 python3 "$SRC/tests/tools/cdp.py" --chromium "$CHROMIUM" --profile "$TMP/profile" \
    --url "http://$HTTP/" --js "$TMP/wait.js" --screenshot "$ART/job.png" --size 1400x1000 \
    --scale 0.6 --clip "#graph-sec=$ART/view-graph.png" --clip "#charts-sec=$ART/view-charts.png" \
    --clip "#checkpoints-sec=$ART/view-checkpoints.png" --clip "#learner-sec=$ART/view-learner.png" \
    --timeout 90 >"$TMP/shot.out" 2>&1
if python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); sys.exit(0 if r["detail"] == "join" and r["subtasks"] == 2 and r["selected"] else 1)' "$TMP/shot.out" 2>/dev/null; then
    pass "selecting an operator shows its details, one row per subtask"
else
    fail "operator details: $(cat "$TMP/shot.out")"
fi
if [ "$(head -c 8 "$ART/job.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] &&
    [ -s "$ART/view-graph.png" ] && [ -s "$ART/view-learner.png" ]; then
    pass "screenshots kept: $ART/job.png and view-*.png"
else
    fail "no screenshot: $(cat "$TMP/shot.out")"
fi
finish
