#!/usr/bin/env bash
# test_webui_cluster.sh — the cluster page of the web UI (docs/cluster.md, docs/status.md)
# in headless Chromium, driven over the DevTools protocol (tests/tools/cdp.py), against a
# local cluster of two workers listening beyond loopback (so calls need the token):
#
#   validate    POST /api/v1/validate answers each problem with its line and column; it
#               needs the token
#   token       the page's calls are refused (401, said on the page) until the token is given
#   page        both workers are listed alive; a valid job typed into the submit form is
#               accepted and submitted, and shows up running with its task; the Savepoint
#               button takes one; a job with a misspelt operator shows its error at the
#               right line and column and that line is marked; Cancel cancels the job
#   screenshot  kept as a test artefact (build/test-artifacts/webui/cluster.png)
#
# Skips (exit 77) when chromium is not installed. Run by ctest with RUNNEL_SRC and
# RUNNEL_BIN. One PASS/FAIL line per check, then "N passed, M failed".
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
cd "$SRC" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-webuicl.XXXXXX")
. "$SRC/tests/integration/webui_lib.sh"
need_chromium
bin=$BIN
work=$TMP
ok() { pass "$@"; }
bad() { fail "$@"; }
. "$SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; rm -rf "$TMP"' EXIT

"$BIN/rn_loggen" --events 4000 --users 100 --seed 1 --out "$TMP/in.jsonl" 2>/dev/null
cat >"$TMP/good.yaml" <<YAML
job: webui
checkpoint: { dir: $TMP/ckpt, interval: 500ms }
state: { dir: $TMP/state }
sources:
  logs: { type: file, path: $TMP/in.jsonl, follow: true }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $TMP/out/out.jsonl, from: collect }
  rejected: { type: file, path: $TMP/out/rejected.jsonl }
YAML
# line 7, column 24: the operator's type is misspelt
sed 's/op: log_collector/op: log_colector/' "$TMP/good.yaml" >"$TMP/bad.yaml"
# Beyond loopback, so that every call that changes something needs the token
start_cluster 2 --listen 0.0.0.0:0
TOKEN=$(tr -d '\n' <"$TMP/cluster/token")
AUTH=(-H "Authorization: Bearer $TOKEN")

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$TMP/good.yaml" "http://$ADDR/api/v1/validate")
[ "$code" = 401 ] && pass "validate without the token: 401" || fail "validate without the token: $code"
r=$(curl -s "${AUTH[@]}" -X POST --data-binary @"$TMP/bad.yaml" "http://$ADDR/api/v1/validate?file=bad.yaml")
if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p=d["problems"][0]
sys.exit(0 if not d["ok"] and (p["line"], p["column"]) == (7, 24) and "log_collector" in p["message"] and d["error"].startswith("bad.yaml:7:24: ") else 1)' "$r"; then
    pass "validate: the misspelt operator at bad.yaml:7:24"
else
    fail "validate: $r"
fi
r=$(curl -s "${AUTH[@]}" -X POST --data-binary @"$TMP/good.yaml" "http://$ADDR/api/v1/validate")
[ "$r" = '{"ok":true,"job":"webui","problems":[]}' ] && pass "validate: a good job" || fail "validate good: $r"

python3 - "$TMP/good.yaml" "$TMP/bad.yaml" "$TOKEN" >"$TMP/steps.js" <<'PYEOF'
import json, sys
good, bad, token = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
print("""(async () => {
  const GOOD = %s, BAD = %s, TOKEN = %s;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (f, ms) => { const end = Date.now() + ms;
    for (;;) { const v = f(); if (v || Date.now() > end) return v; await sleep(100); } };
  const $ = (q) => document.querySelector(q), all = (q) => [...document.querySelectorAll(q)];
  const out = {};
  window.confirm = () => true;
  await until(() => all("#workers tr[data-worker][data-alive=true]").length >= 2, 30000);
  out.workers = all("#workers tr[data-worker]").map((r) => r.dataset.alive);
  const ta = $("#yaml");
  ta.value = GOOD; ta.dispatchEvent(new Event("input"));
  await window.rnValidate();
  out.noToken = $("#problems").textContent;
  $("#token").value = TOKEN; $("#token").dispatchEvent(new Event("change"));
  await window.rnValidate();
  out.valid = ($("#problems .valid") || {}).textContent || null;
  $("#submit").click();
  const job = await until(() => $('.job[data-job="webui"][data-state="running"]'), 30000);
  out.running = !!job;
  out.action = $("#action").textContent;
  out.tasks = await until(() => all('#tasks-webui tr[data-state="running"]').length, 30000);
  const sp = await until(() => $('button[data-op="savepoint"][data-id="webui"]:not([disabled])'), 30000);
  if (sp) sp.click();
  await until(() => /savepoint/.test($("#action").textContent), 30000);
  out.savepoint = $("#action").textContent;
  ta.value = BAD; ta.dispatchEvent(new Event("input"));
  $("#file").value = "bad.yaml";
  await window.rnValidate();
  out.problems = all("#problems li").map((li) => ({ line: +li.dataset.line, column: +li.dataset.column, text: li.textContent }));
  out.marked = all("#listing .errline").map((e) => +e.dataset.line);
  $("#submit").click();
  await until(() => /not submitted/.test($("#action").textContent), 10000);
  out.refused = $("#action").textContent;
  // the savepoint's operation over (its button is back), cancel
  await until(() => $('button[data-op="savepoint"][data-id="webui"]:not([disabled])'), 30000);
  const c = $('button[data-op="cancel"][data-id="webui"]');
  if (c) c.click();
  await until(() => /cancel of webui/.test($("#action").textContent), 30000);
  out.cancel = $("#action").textContent;
  await until(() => $('.job[data-job="webui"][data-state="canceled"]'), 60000);
  out.state = ($('.job[data-job="webui"]') || { dataset: {} }).dataset.state || null;
  return out;
})()""" % (json.dumps(good), json.dumps(bad), json.dumps(token)))
PYEOF
timeout 180 python3 "$SRC/tests/tools/cdp.py" --chromium "$CHROMIUM" --profile "$TMP/profile" \
    --url "http://$ADDR/" --js "$TMP/steps.js" --screenshot "$ART/cluster.png" --size 1400x1600 \
    --scale 0.6 --clip "main=$ART/view-cluster.png" \
    --timeout 170 >"$TMP/result.json" 2>"$TMP/cdp.err"
echo "  page said: $(cat "$TMP/result.json" "$TMP/cdp.err")" | cut -c1-1500
check() { # label python-expression over r
    if python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$TMP/result.json" 2>/dev/null; then
        pass "$1"
    else
        fail "$1"
    fi
}
check "page: both workers listed alive" "r['workers'] == ['true', 'true']"
check "page: without the token the check is refused (401), with it the page goes on" "'401' in r['noToken'] and 'token' in r['noToken']"
check "page: a good job is valid, submitted, running with its task" \
    "r['valid'] == 'valid: job webui' and r['running'] and r['action'].startswith('submitted: webui') and r['tasks'] == 1"
check "page: the Savepoint button takes a savepoint" "'savepoint of webui accepted: savepoint #' in r['savepoint']"
check "page: the misspelt operator is shown at line 7, column 24, and line 7 is marked" \
    "r['problems'][0]['line'] == 7 and r['problems'][0]['column'] == 24 and 'line 7, column 24: unknown operator type' in r['problems'][0]['text'] and r['marked'] == [7]"
check "page: a job with problems is not submitted" "r['refused'].startswith('not submitted')"
check "page: the Cancel button cancels the job" "r['state'] == 'canceled'"
if [ -s "$ART/cluster.png" ]; then pass "screenshot kept: $ART/cluster.png"; else fail "no screenshot"; fi
finish
