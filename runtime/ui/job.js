// The job page: polls /api/v1/job every 2 s and /api/v1/history for the samples it has not
// seen (the server keeps the last ten minutes, so a fresh page starts full), then redraws
// the graph, the charts, the checkpoints and the learner panel. No reload.
"use strict";
(function () {
  var SPAN = 10 * 60 * 1000;
  var H = { t: [], series: {} }, job = null, models = null, selected = null, charts = {};

  function last(name) {
    var a = H.series[name];
    if (!a) return null;
    for (var i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i];
    return null;
  }
  function fig(id) {
    var o = job.operators.find(function (x) { return x.id === id; });
    return { "in": last(id + ".in"), out: last(id + ".out"), lag: last(id + ".wm_lag_s"),
             busy: last("chain." + o.chain + ".busy"), bp: last("chain." + o.chain + ".backpressure") };
  }
  function line(label, name) { return { label: label, xs: H.t, ys: H.series[name] || [] }; }
  // per-second rate of a counter series
  function deriv(name) {
    var a = H.series[name] || [], out = [];
    for (var i = 0; i < a.length; i++) {
      var dt = i ? (H.t[i] - H.t[i - 1]) / 1000 : 0;
      out.push(i && a[i] !== null && a[i - 1] !== null && dt > 0 ? Math.max(0, (a[i] - a[i - 1]) / dt) : null);
    }
    return out;
  }
  // a latency in µs: 850 µs, 12.3 ms, 1.2 s
  function us(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return x < 1000 ? Math.round(x) + " µs" : x < 1e6 ? (x / 1000).toFixed(1) + " ms" : RN.dur(x / 1e6);
  }
  // scale * Δnum / Δden over the last `win` ms of two counter series: a ratio over a moving
  // window rather than since the start (null while the window saw no Δden)
  function windowed(num, den, scale, win) {
    var a = H.series[num] || [], d = H.series[den] || [], out = [], j = 0;
    for (var i = 0; i < a.length; i++) {
      while (H.t[i] - H.t[j] > win) j++;
      var dd = d[i] !== null && d[j] !== null ? d[i] - d[j] : 0;
      out.push(i > j && dd > 0 && a[i] !== null && a[j] !== null ? scale * (a[i] - a[j]) / dd : null);
    }
    return out;
  }
  function merge(h) {
    if (!h.t.length) return;
    var n0 = H.t.length;
    H.t = H.t.concat(h.t);
    for (var k in h.series) {
      var old = H.series[k] || new Array(n0).fill(null);
      H.series[k] = old.concat(h.series[k]);
    }
    var drop = H.t.length - h.capacity;
    if (drop > 0) {
      H.t = H.t.slice(drop);
      for (k in H.series) H.series[k] = H.series[k].slice(drop);
    }
  }
  function chainLabel(c) {
    var names = job.operators.filter(function (o) { return o.chain === c; }).map(function (o) { return o.id; });
    return "chain " + c + " (" + names.slice(0, 3).join(", ") + (names.length > 3 ? ", …" : "") + ")";
  }
  function chainIds() {
    var seen = [];
    job.operators.forEach(function (o) { if (seen.indexOf(o.chain) < 0) seen.push(o.chain); });
    return seen;
  }
  function chart(parent, id, title, fmt, extra) {
    if (!charts[id]) charts[id] = new RnChart.Chart(parent, Object.assign({ id: id, title: title, fmt: fmt }, extra || {}));
    return charts[id];
  }

  function drawCharts() {
    var box = document.getElementById("charts");
    var ops = job.operators;
    chart(box, "records-in", "Records per second (sources: out; others: in)", RN.num).update(
      ops.map(function (o) { return line(o.id, o.id + (o.kind === "source" ? ".out" : ".in")); }), SPAN);
    chart(box, "busy", "Busy: share of each chain's thread time spent processing", RN.pct).update(
      chainIds().map(function (c) { return line(chainLabel(c), "chain." + c + ".busy"); }), SPAN);
    chart(box, "backpressure", "Back-pressure: share of thread time blocked on a full queue", RN.pct).update(
      chainIds().map(function (c) { return line(chainLabel(c), "chain." + c + ".backpressure"); }), SPAN);
    var qs = Object.keys(H.series).filter(function (k) { return /^queue\./.test(k); });
    chart(box, "queue-fill", "Queue fill (batches waiting / capacity)", RN.pct).update(
      qs.map(function (k) { return line(k.slice(6, -5).replace(">", " → "), k); }), SPAN);
    chart(box, "wm-lag", "Watermark lag (wall clock − watermark)", RN.dur).update(
      ops.filter(function (o) { return o.kind !== "sink"; })
         .map(function (o) { return line(o.id, o.id + ".wm_lag_s"); }), SPAN);
    var late = H.t.map(function (_, i) {
      var s = 0, any = false;
      ops.forEach(function (o) { var a = H.series[o.id + ".late"]; if (a && a[i] !== null) { s += a[i]; any = true; } });
      return any ? s : null;
    });
    chart(box, "dead-late", "Dead letters and late records (totals)", RN.num).update(
      [line("dead letters", "job.dead_letters"), { label: "late records", xs: H.t, ys: late }], SPAN);
    if (job.keyed_state && job.keyed_state.length) {
      chart(box, "state-size", "Keyed state size (cache + memtable + SST)", RN.bytes).update(
        [line("all worker threads", "state.bytes")], SPAN);
      chart(box, "cache-hit", "State cache hit rate (per interval)", RN.pct).update(
        [line("hits / lookups", "state.cache_hit")], SPAN);
    }
  }

  function select(id) {
    selected = id;
    drawGraph();
    var o = job.operators.find(function (x) { return x.id === id; }), f = fig(id);
    var rows = [["kind, type", o.kind + ", " + o.type], ["parallelism (subtasks)", o.parallelism],
                ["chain", chainLabel(o.chain)], ["inputs", o.inputs.join(", ") || "–"],
                ["records in / out", RN.num(o.records_in) + " / " + RN.num(o.records_out)],
                ["rate in / out", RN.num(f["in"]) + "/s / " + RN.num(f.out) + "/s"],
                ["busy / back-pressured", RN.pct(f.busy) + " / " + RN.pct(f.bp)],
                ["watermark", RN.time(o.watermark) + (f.lag !== null ? " (lag " + RN.dur(f.lag) + ")" : "")],
                ["late records", o.late], ["timers pending", o.timers], ["unrouted", o.unrouted]];
    for (var k in o.outputs) rows.push(["side output " + k, RN.num(o.outputs[k])]);
    for (k in o.metrics) rows.push(["counter " + k, RN.num(o.metrics[k])]);
    for (k in o.ratios || {}) rows.push(["ratio " + k, RN.num(o.ratios[k], 4)]);
    var h = "<h3>" + RN.esc(o.id) + "</h3><table><tbody>" + rows.map(function (r) {
      return '<tr><th class="l" scope="row">' + RN.esc(r[0]) + '</th><td class="l">' + RN.esc(r[1]) + "</td></tr>";
    }).join("") + "</tbody></table>";
    if (o.subtasks && o.subtasks.length) h += '<h3>Subtasks</h3><table><tr><th>subtask</th><th>records in</th><th>records out</th><th>busy time (total)</th><th class="l">watermark</th><th>late</th></tr>' +
      o.subtasks.map(function (t) { return "<tr><td>" + t.subtask + "</td><td>" + RN.num(t.records_in) + "</td><td>" + RN.num(t.records_out) +
        "</td><td>" + RN.dur(t.busy_s) + '</td><td class="l">' + RN.time(t.watermark) + "</td><td>" + RN.num(t.late) + "</td></tr>"; }).join("") + "</table>";
    var qs = job.queues.filter(function (q) { return q.to === id || q.from === id; });
    if (qs.length) h += '<h3>Subtask queues</h3><table><tr><th class="l">from</th><th class="l">to</th><th>fill</th><th>batches</th><th>blocked</th></tr>' +
      qs.map(function (q) { return '<tr><td class="l">' + RN.esc(q.from + "[" + q.from_subtask + "]") + '</td><td class="l">' +
        RN.esc(q.to + "[" + q.to_subtask + "]") + "</td><td>" + q.fill + "/" + q.capacity + "</td><td>" + RN.num(q.batches) +
        "</td><td>" + RN.dur(q.blocked_s) + "</td></tr>"; }).join("") + "</table>";
    var head = job.operators.find(function (x) { return x.chain === o.chain; }).id;
    var st = (job.keyed_state || []).filter(function (r) { return r.chain === head; });
    if (st.length) h += '<h3>Keyed state of its chain, per subtask</h3><table><tr><th>subtask</th><th>key groups</th><th>keys (est.)</th><th>cache</th><th>hit rate</th><th>RocksDB reads</th><th>SST</th></tr>' +
      st.map(function (r) { var l = r.cache_hits + r.cache_misses; return "<tr><td>" + r.subtask + "</td><td>" + r.key_groups[0] + "–" + (r.key_groups[1] - 1) +
        "</td><td>" + RN.num(r.keys_estimate) + "</td><td>" + RN.bytes(r.cache_bytes) + "</td><td>" + (l ? RN.pct(r.cache_hits / l) : "–") +
        "</td><td>" + RN.num(r.db_reads) + "</td><td>" + RN.bytes(r.sst_bytes) + "</td></tr>"; }).join("") + "</table>";
    document.getElementById("detail").innerHTML = h;
  }
  function drawGraph() {
    RnGraph.draw(document.getElementById("graph"), job, fig, select, selected);
  }

  function drawCheckpoints() {
    var c = job.checkpoints, box = document.getElementById("ckpt");
    if (!c || !c.enabled) { box.innerHTML = "<p>Off: the job has no <code>checkpoint:</code> section.</p>"; return; }
    if (!box.querySelector(".kpis")) {
      box.innerHTML = '<div class="kpis" id="ckpt-kpis"></div><div class="grid" id="ckpt-charts"></div>' +
        '<h3>History (newest first)</h3><table class="data" id="ckpt-table"></table>';
    }
    var hist = c.history || [], lastOk = hist.find(function (r) { return r.status === "completed"; });
    var lastFail = hist.find(function (r) { return r.status === "failed"; });
    var k = [["completed", c.completed], ["failed", c.failed], ["in progress", c.in_progress.length],
             ["interval", RN.dur(c.interval_ms / 1000)],
             ["latest completed", lastOk ? "#" + lastOk.id + " at " + RN.time(lastOk.trigger_time_ms).substr(11) : "none yet"],
             ["restored from", c.restored_from || "nothing (fresh start)"]];
    document.getElementById("ckpt-kpis").innerHTML = k.map(function (x) {
      return '<div class="kpi"><span>' + RN.esc(x[0]) + "</span><b>" + RN.esc(x[1]) + "</b></div>"; }).join("") +
      (lastFail ? '<div class="kpi"><span>last failure (#' + lastFail.id + ')</span><b class="bad">' + RN.esc(lastFail.error) + "</b></div>" : "");
    var asc = hist.slice().reverse(), xs = asc.map(function (r) { return r.trigger_time_ms; });
    var ms = function (v) { return RN.dur(v / 1000); };
    var cb = document.getElementById("ckpt-charts");
    chart(cb, "ckpt-duration", "Checkpoint duration, stall and alignment", ms).update([
      { label: "duration (trigger → manifest)", xs: xs, ys: asc.map(function (r) { return r.duration_ms; }) },
      { label: "longest stall of a task", xs: xs, ys: asc.map(function (r) { return r.max_sync_ms; }) },
      { label: "longest alignment", xs: xs, ys: asc.map(function (r) { return r.max_alignment_ms; }) }], 0);
    chart(cb, "ckpt-size", "Checkpoint size", RN.bytes).update([
      { label: "size", xs: xs, ys: asc.map(function (r) { return r.size_bytes; }) }], 0);
    var rows = c.in_progress.concat(hist);
    document.getElementById("ckpt-table").innerHTML =
      '<tr><th>id</th><th class="l">kind</th><th class="l">status</th><th class="l">triggered</th><th>duration</th><th>stall</th><th>alignment</th><th>size</th><th>acks</th><th class="l">path or error</th></tr>' +
      rows.map(function (r) {
        return "<tr><td>" + r.id + '</td><td class="l">' + r.kind + '</td><td class="l ' + (r.status === "failed" ? "bad" : r.status === "completed" ? "ok" : "") + '">' +
          r.status + '</td><td class="l">' + RN.time(r.trigger_time_ms) + "</td><td>" + ms(r.duration_ms) + "</td><td>" + ms(r.max_sync_ms) +
          "</td><td>" + ms(r.max_alignment_ms) + "</td><td>" + RN.bytes(r.size_bytes) + "</td><td>" + r.acks + "/" + r.tasks +
          '</td><td class="l">' + RN.esc(r.error || r.path) + "</td></tr>";
      }).join("");
  }

  function drawLearner() {
    // inference counts the model_version it serves too: it is a server, not a learner
    var learners = job.operators.filter(function (o) { return o.metrics && "model_version" in o.metrics && o.type !== "inference"; });
    var servers = job.operators.filter(function (o) { return o.type === "inference"; });
    if (!learners.length && !servers.length) return;
    var box = document.getElementById("learner");
    if (!box.querySelector(".kpis")) {
      box.innerHTML = '<div class="kpis" id="learn-kpis"></div><div class="grid" id="learn-charts"></div>' +
        '<h3>Model versions</h3><div id="learn-models"></div>';
    }
    var k = [];
    learners.forEach(function (o) {
      var v = o.metrics.model_version;
      k.push('<div class="kpi"><span>' + RN.esc(o.id) + ': model version</span><b id="model-version" data-version="' + v + '">' +
             (v ? v : "none yet") + "</b></div>");
      [["versions published", RN.num(o.metrics.versions)], ["TD updates", RN.num(o.metrics.updates)],
       ["transitions", RN.num(o.metrics.transitions)], ["sessions ended", RN.num(o.metrics.sessions_ended)],
       ["reward per session", RN.num(o.ratios && o.ratios.reward_per_session, 3)],
       ["mean TD loss", RN.num(o.ratios && o.ratios.mean_td_loss, 4)]].forEach(function (x) {
        k.push('<div class="kpi"><span>' + x[0] + "</span><b>" + x[1] + "</b></div>");
      });
    });
    servers.forEach(function (o) {
      k.push('<div class="kpi"><span>' + RN.esc(o.id) + ": requests ranked</span><b>" + RN.num(o.metrics.requests) + "</b></div>");
      k.push('<div class="kpi"><span>' + RN.esc(o.id) + ": without a model</span><b>" + RN.num(o.metrics.without_model) + "</b></div>");
      var rq = o.latency_us && o.latency_us.request;
      if (rq && rq.count) k.push('<div class="kpi"><span>' + RN.esc(o.id) + ": request p50 / p99 (since the start)</span><b>" + us(rq.p50) + " / " + us(rq.p99) + "</b></div>");
    });
    if (job.serve) k.push('<div class="kpi"><span>serving requests (HTTP)</span><b>' + RN.num(job.serve.requests) + "</b></div>");
    document.getElementById("learn-kpis").innerHTML = k.join("");
    var cb = document.getElementById("learn-charts");
    learners.forEach(function (o) {
      chart(cb, "reward-" + o.id, o.id + ": reward per session (since the start; over the last minute)", function (x) { return RN.num(x, 3); }).update(
        [line("per session, since the start", o.id + ".r.reward_per_session"),
         { label: "per session, last minute", xs: H.t, ys: windowed(o.id + ".m.reward_milli_sum", o.id + ".m.sessions_ended", 1e-3, 60000) },
         line("per list, since the start", o.id + ".r.reward_per_list")], SPAN);
      chart(cb, "td-" + o.id, o.id + ": mean TD loss (since the start)", function (x) { return RN.num(x, 4); }).update(
        [line("mean TD loss", o.id + ".r.mean_td_loss")], SPAN);
      chart(cb, "updates-" + o.id, o.id + ": TD updates and transitions per second", RN.num).update(
        [{ label: "updates/s", xs: H.t, ys: deriv(o.id + ".m.updates") },
         { label: "transitions/s", xs: H.t, ys: deriv(o.id + ".m.transitions") }], SPAN);
      chart(cb, "version-" + o.id, o.id + ": model version served", RN.num, { step: true }).update(
        [line("version", o.id + ".m.model_version")], SPAN);
    });
    servers.forEach(function (o) {
      chart(cb, "version-" + o.id, o.id + ": model version served", RN.num, { step: true }).update(
        [line("version", o.id + ".m.model_version")], SPAN);
      chart(cb, "serve-" + o.id, o.id + ": requests ranked per second", RN.num).update(
        [{ label: "requests/s", xs: H.t, ys: deriv(o.id + ".m.requests") },
         { label: "explored slots/s", xs: H.t, ys: deriv(o.id + ".m.explored_slots") }], SPAN);
      // the operator's latency histograms, p50 and p99 of each sampling interval (µs);
      // LAST's added latency only when the job searches with it
      var lat = [line("request p50", o.id + ".lat.request.p50"), line("request p99", o.id + ".lat.request.p99")];
      if ((H.series[o.id + ".lat.last_added.p50"] || []).some(function (y) { return y !== null; }))
        lat.push(line("LAST added p50", o.id + ".lat.last_added.p50"), line("LAST added p99", o.id + ".lat.last_added.p99"));
      chart(cb, "latency-" + o.id, o.id + ": serving latency (POST /api/v1/recommend), per second", us).update(lat, SPAN);
    });
    if (models && models.stores) {
      var mb = document.getElementById("learn-models"), h = "";
      models.stores.forEach(function (s) {
        if (s.error) { h += '<p class="bad">' + RN.esc(s.store) + ": " + RN.esc(s.error) + "</p>"; return; }
        var vs = s.versions || [];
        h += "<p>Store <code>" + RN.esc(s.store) + "</code> (" + RN.esc((s.operators || []).join(", ")) + "): serving " +
             (s.current === null ? "none" : "version " + s.current) + (s.pinned !== null ? " (pinned)" : "") + ", " + vs.length + " versions.</p>";
        if (vs.length) {
          // versions are published by event time (the learner's clock), so they stand on it
          var xs = vs.map(function (v) { return v.event_time; });
          chart(cb, "mq-" + s.store, "Mean Q and TD loss of each model version (x: event time)", function (x) { return RN.num(x, 3); }).update(
            [{ label: "mean Q", xs: xs, ys: vs.map(function (v) { return v.mean_q; }) },
             { label: "loss", xs: xs, ys: vs.map(function (v) { return v.loss; }) }], 0);
        }
        var wall = vs.some(function (v) { return v.created_ms > 0; });
        h += '<table class="data"><tr><th>version</th>' + (wall ? '<th class="l">published</th>' : "") + '<th class="l">event time</th><th>updates</th><th>transitions</th><th>loss</th><th>mean Q</th></tr>' +
          vs.slice(-8).reverse().map(function (v) {
            return "<tr><td>" + v.id + (v.id === s.current ? " ◀ served" : "") + "</td>" + (wall ? '<td class="l">' + RN.time(v.created_ms) + "</td>" : "") + '<td class="l">' +
              RN.time(v.event_time) + "</td><td>" + RN.num(v.updates) + "</td><td>" + RN.num(v.transitions) + "</td><td>" + RN.num(v.loss, 4) +
              "</td><td>" + RN.num(v.mean_q, 3) + "</td></tr>"; }).join("") + "</table>";
      });
      var tbl = mb.querySelector(".tables") || mb.appendChild(RN.el("div", { "class": "tables" }));
      tbl.innerHTML = h;
    }
  }

  function drawSummary() {
    document.title = job.job + " · runnel";
    document.getElementById("title").textContent = "runnel · " + job.job;
    var st = job.state === "failed" ? '<b class="bad">failed</b>' : "<b>" + RN.esc(job.state) + "</b>";
    document.getElementById("summary").innerHTML = st + " · up " + RN.dur(job.uptime_s) + " · parallelism " +
      job.parallelism + " (max " + job.max_parallelism + ") · " + job.operators.length + " operators · dead letters " +
      RN.num(job.dead_letters) + (job.process ? " · memory " + RN.bytes(job.process.rss_bytes) +
      " (peak " + RN.bytes(job.process.peak_rss_bytes) + ")" : "");
    var e = document.getElementById("error");
    e.hidden = !job.error;
    e.textContent = job.error || "";
  }

  var lastModels = 0;
  function poll() {
    var since = H.t.length ? H.t[H.t.length - 1] : 0;
    return Promise.all([RN.getJSON("/api/v1/job"), RN.getJSON("/api/v1/history?since=" + since)])
      .then(function (r) {
        job = r[0];
        merge(r[1]);
        if (!job.operators) { document.getElementById("summary").textContent = job.state; return; }
        var want = job.operators.some(function (o) { return o.metrics && "model_version" in o.metrics; });
        var p = want && Date.now() - lastModels > 5000
          ? RN.getJSON("/api/v1/models").then(function (m) { models = m; lastModels = Date.now(); }, function () {})
          : Promise.resolve();
        return p.then(function () {
          drawSummary();
          drawGraph();
          if (selected) select(selected);
          drawCharts();
          drawCheckpoints();
          drawLearner();
          document.body.setAttribute("data-polls", String(+(document.body.getAttribute("data-polls") || 0) + 1));
        });
      }, function (err) {
        document.getElementById("summary").textContent = "cannot reach the job: " + err.message;
      });
  }
  document.addEventListener("DOMContentLoaded", function () { RN.every(2000, poll); });
})();
