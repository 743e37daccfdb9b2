// The cluster page: workers with their health, jobs with their tasks and buttons, and a
// submit form that has the coordinator check the YAML as it is typed. Polls the REST API
// (docs/cluster.md) every 2 s; the token, when one is needed, goes in an Authorization
// header and stays in this tab's sessionStorage.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  function headers() {
    var t = $("token").value.trim();
    return t ? { Authorization: "Bearer " + t } : {};
  }
  function call(method, url, body) {
    return fetch(url, { method: method, headers: headers(), body: body, cache: "no-store" })
      .then(function (r) {
        return r.text().then(function (t) {
          var j = null;
          try { j = JSON.parse(t); } catch (e) { j = { error: t.trim() }; }
          return { status: r.status, body: j };
        });
      });
  }
  function say(text, bad) {
    $("action").innerHTML = bad ? '<span class="bad">' + RN.esc(text) + "</span>" : RN.esc(text);
  }
  function link(page) { return page ? '<a href="http://' + RN.esc(page) + '/">' + RN.esc(page) + "</a>" : "–"; }

  function drawWorkers(ws) {
    var alive = ws.filter(function (w) { return w.alive; }).length;
    $("workers").innerHTML = '<tr><th>id</th><th>slot</th><th>pid</th><th class="l">health</th><th class="l">tasks (job/partition)</th>' +
      "<th>records</th><th>rate</th><th>lag</th><th>last checkpoint</th><th class=\"l\">page</th></tr>" +
      ws.map(function (w) {
        var h = w.alive ? '<span class="ok">alive</span>, heartbeat ' + RN.dur(w.last_heartbeat_ms_ago / 1000) + " ago"
                        : '<span class="bad">dead</span> (no heartbeat for ' + RN.dur(w.last_heartbeat_ms_ago / 1000) + ")";
        return '<tr data-worker="' + w.id + '" data-alive="' + w.alive + '"><td>' + w.id + "</td><td>" + w.slot + "</td><td>" + w.pid +
          '</td><td class="l">' + h + '</td><td class="l">' + (RN.esc(w.tasks.join(", ")) || "–") + "</td><td>" + RN.num(w.records) +
          "</td><td>" + RN.num(w.rate) + "/s</td><td>" + RN.num(w.lag) + "</td><td>" + (w.last_checkpoint ? "#" + w.last_checkpoint : "–") +
          '</td><td class="l">' + link(w.page) + "</td></tr>";
      }).join("");
    return alive;
  }

  var taskHtml = {}; // per job: its task table as last drawn, kept across redraws
  function drawJobs(jobs) {
    var box = $("jobs");
    if (!jobs.length) { box.innerHTML = "<p>No job yet.</p>"; return; }
    box.innerHTML = jobs.map(function (j) {
      // a savepoint needs every task running and no other operation under way
      var spOk = j.state === "running" && !j.operation && j.tasks_running === j.tasks_total;
      return '<div class="job" data-job="' + RN.esc(j.id) + '" data-state="' + RN.esc(j.state) + '"><h3>' + RN.esc(j.id) +
        " <small>(" + RN.esc(j.file) + ")</small></h3>" +
        '<div class="kpis">' + [["state", j.state + (j.operation ? " (" + j.operation + ")" : "")],
          ["tasks running", j.tasks_running + " of " + j.tasks_total], ["workers", j.workers],
          ["records", RN.num(j.records)], ["rate", RN.num(j.rate) + "/s"], ["lag", RN.num(j.lag)],
          ["cluster checkpoint", j.cluster_checkpoint ? "#" + j.cluster_checkpoint : "none yet"],
          ["submitted", RN.time(j.submitted_ms)]].map(function (k) {
            return '<div class="kpi"><span>' + k[0] + "</span><b>" + RN.esc(k[1]) + "</b></div>"; }).join("") + "</div>" +
        '<p><button type="button" data-op="savepoint" data-id="' + RN.esc(j.id) + '"' + (spOk ? "" : " disabled") +
        '>Savepoint</button> <button type="button" data-op="cancel" data-id="' + RN.esc(j.id) + '"' +
        (j.state === "running" ? "" : " disabled") + ">Cancel</button></p>" +
        '<table class="data" id="tasks-' + RN.esc(j.id) + '">' + (taskHtml[j.id] || "") + "</table></div>";
    }).join("");
    jobs.forEach(function (j) {
      RN.getJSON("/api/v1/jobs/" + encodeURIComponent(j.id)).then(function (d) {
        var t = document.getElementById("tasks-" + j.id);
        if (!t) return;
        t.innerHTML = taskHtml[j.id] = '<tr><th class="l">task</th><th>partition</th><th>worker</th><th class="l">state</th><th>records</th>' +
          '<th>rate</th><th>lag</th><th>checkpoint</th><th>restarts</th><th class="l">page</th><th class="l">error</th></tr>' +
          d.tasks.map(function (k) {
            return '<tr data-task="' + RN.esc(k.task) + '" data-state="' + RN.esc(k.state) + '"><td class="l">' + RN.esc(k.task) + "</td><td>" + k.partition + "</td><td>" + k.worker + '</td><td class="l">' +
              RN.esc(k.state) + "</td><td>" + RN.num(k.records) + "</td><td>" + RN.num(k.rate) + "/s</td><td>" + RN.num(k.lag) +
              "</td><td>" + (k.checkpoint ? "#" + k.checkpoint : "–") + "</td><td>" + k.restarts + '</td><td class="l">' + link(k.page) +
              '</td><td class="l bad">' + RN.esc(k.error) + "</td></tr>";
          }).join("") +
          (d.savepoints.length ? '<tr><td class="l" colspan="11">savepoints: ' + d.savepoints.map(function (s) {
            return "#" + s.id + " " + RN.esc(s.status) + (s.path ? " " + RN.esc(s.path) : ""); }).join("; ") + "</td></tr>" : "");
      }).catch(function () {});
    });
  }

  function poll() {
    return Promise.all([RN.getJSON("/api/v1/workers"), RN.getJSON("/api/v1/jobs")]).then(function (r) {
      var alive = drawWorkers(r[0].workers);
      drawJobs(r[1].jobs);
      $("summary").textContent = alive + " of " + r[0].workers.length + " workers alive · " + r[1].jobs.length + " jobs";
    }, function (e) { $("summary").textContent = "cannot reach the coordinator: " + e.message; });
  }

  // ---- the submit form ----
  var seq = 0, timer = null, lastProblems = [];
  function drawListing(text, problems) {
    var bad = {};
    problems.forEach(function (p) { if (p.line) bad[p.line] = p.column || 1; });
    $("listing").innerHTML = text.split("\n").map(function (l, i) {
      var c = bad[i + 1];
      if (!c) return "<span><i>" + (i + 1) + "</i>" + RN.esc(l) + "</span>";
      // the column itself marked (a space when it is past the end of the line)
      var at = Math.min(c - 1, l.length);
      return '<span class="errline" data-line="' + (i + 1) + '"><i>' + (i + 1) + "</i>" + RN.esc(l.slice(0, at)) +
        '<mark title="column ' + c + '">' + RN.esc(l.charAt(at) || " ") + "</mark>" + RN.esc(l.slice(at + 1)) + "</span>";
    }).join("");
  }
  function validate() {
    var text = $("yaml").value, my = ++seq;
    if (!text.trim()) { $("problems").innerHTML = ""; drawListing("", []); return Promise.resolve(); }
    return call("POST", "/api/v1/validate?file=" + encodeURIComponent($("file").value || "job.yaml"), text).then(function (r) {
      if (my !== seq) return;
      var box = $("problems");
      if (r.status !== 200) { box.innerHTML = '<p class="bad">cannot check: ' + RN.esc(r.body.error || r.status) + "</p>"; return; }
      lastProblems = r.body.problems || [];
      box.setAttribute("data-ok", String(!!r.body.ok));
      box.innerHTML = r.body.ok ? '<p class="valid">valid: job ' + RN.esc(r.body.job) + "</p>"
        : '<ul class="problems">' + lastProblems.map(function (p) {
            return '<li data-line="' + p.line + '" data-column="' + p.column + '">' +
              (p.line ? "line " + p.line + ", column " + p.column + ": " : "") + RN.esc(p.message) + "</li>"; }).join("") + "</ul>";
      drawListing(text, lastProblems);
    });
  }
  function later() { clearTimeout(timer); timer = setTimeout(validate, 300); }

  function submit() {
    return validate().then(function () {
      if ($("problems").getAttribute("data-ok") !== "true") { say("not submitted: the job has problems (listed below the text)", true); return; }
      return call("POST", "/api/v1/jobs?file=" + encodeURIComponent($("file").value || "job.yaml"), $("yaml").value).then(function (r) {
        if (r.status >= 200 && r.status < 300) say("submitted: " + (r.body.id || "") + " " + JSON.stringify(r.body));
        else say("submit failed (" + r.status + "): " + (r.body.error || ""), true);
        return poll();
      });
    });
  }
  function jobOp(op, id) {
    if (op === "cancel" && !window.confirm("Cancel job " + id + "?")) return;
    var p = op === "cancel" ? call("DELETE", "/api/v1/jobs/" + encodeURIComponent(id))
                            : call("POST", "/api/v1/jobs/" + encodeURIComponent(id) + "/savepoints");
    p.then(function (r) {
      if (r.status >= 200 && r.status < 300) say(op + " of " + id + " accepted" + (r.body.savepoint ? ": savepoint #" + r.body.savepoint : ""));
      else say(op + " of " + id + " refused (" + r.status + "): " + (r.body.error || ""), true);
      return poll();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("token").value = sessionStorage.getItem("runnel-token") || "";
    $("token").addEventListener("change", function () { sessionStorage.setItem("runnel-token", $("token").value); });
    $("yaml").addEventListener("input", later);
    $("file").addEventListener("input", later);
    $("submit").addEventListener("click", submit);
    $("jobs").addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-op]");
      if (b) jobOp(b.getAttribute("data-op"), b.getAttribute("data-id"));
    });
    window.rnValidate = validate; // for scripts and tests: check now rather than after typing stops
    RN.every(2000, poll);
  });
})();
