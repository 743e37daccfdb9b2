// The job graph drawn as SVG. Operators fused into one chain share a box (a chain runs in
// one thread per subtask); boxes stand in columns by their distance from the sources, and
// each edge between chains is drawn with its partitioning mode (forward, hash, gather,
// rebalance, broadcast) and, for a side output, its port. Every operator row carries its
// rates, its chain's busy and back-pressure fractions, and its watermark lag as text; the
// fill colour repeats the busy fraction (blue idle to red busy) for a glance.
"use strict";
var RnGraph = (function () {
  var NS = "http://www.w3.org/2000/svg";
  var ROW = 58, BOXW = 230, COLW = 330, HEAD = 20, GAP = 26, PAD = 16;

  function svg(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Busy 0..1 as a fill: hue 210 (blue, idle) to 0 (red, busy), always light enough for
  // dark text (contrast above 7:1).
  function busyFill(b) {
    if (b === null || b === undefined || !isFinite(b)) return "#eef0f4";
    b = Math.max(0, Math.min(1, b));
    return "hsl(" + Math.round(210 * (1 - b)) + ",70%," + Math.round(93 - 13 * b) + "%)";
  }

  // job: /api/v1/job; fig(id) -> {in, out, busy, bp, lag} latest figures of a node;
  // onSelect(id): called when an operator is chosen (click or Enter).
  function draw(container, job, fig, onSelect, selected) {
    var ops = job.operators, byId = {}, chains = {}, order = [];
    ops.forEach(function (o) {
      byId[o.id] = o;
      if (!chains[o.chain]) { chains[o.chain] = { id: o.chain, nodes: [], level: 0 }; order.push(o.chain); }
      chains[o.chain].nodes.push(o);
    });
    var edges = job.edges || [];
    // a chain's column: the longest path of cross-chain edges from a source
    for (var pass = 0; pass < order.length; pass++) {
      var moved = false;
      edges.forEach(function (e) {
        var a = chains[byId[e.from].chain], b = chains[byId[e.to].chain];
        if (a !== b && b.level < a.level + 1) { b.level = a.level + 1; moved = true; }
      });
      if (!moved) break;
    }
    var cols = {}, pos = {}, maxY = 0, maxL = 0;
    order.forEach(function (cid) {
      var c = chains[cid];
      var y = cols[c.level] || PAD;
      c.x = PAD + c.level * COLW; c.y = y; c.h = HEAD + c.nodes.length * ROW;
      c.nodes.forEach(function (o, i) { pos[o.id] = { x: c.x, y: y + HEAD + i * ROW }; });
      cols[c.level] = y + c.h + GAP;
      maxY = Math.max(maxY, cols[c.level]); maxL = Math.max(maxL, c.level);
    });
    var W = PAD * 2 + maxL * COLW + BOXW + 40, H = maxY + PAD;
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "group",
                         id: "graph-svg", "data-operators": String(ops.length),
                         "aria-label": "job graph: " + ops.length + " operators in " + order.length + " chains" });
    var defs = svg("defs", {});
    var mk = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                             markerHeight: 7, orient: "auto-start-reverse" });
    mk.appendChild(svg("path", { d: "M0 0L10 5L0 10z", fill: "#5c6070" }));
    defs.appendChild(mk);
    s.appendChild(defs);
    // edges first, under the boxes
    edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      var same = byId[e.from].chain === byId[e.to].chain;
      var side = e.port !== "out";
      var d, lx, ly;
      if (!same) {
        var x1 = a.x + BOXW, y1 = a.y + ROW / 2, x2 = b.x - 2, y2 = b.y + ROW / 2, mx = (x1 + x2) / 2;
        d = "M" + x1 + " " + y1 + "C" + mx + " " + y1 + " " + mx + " " + y2 + " " + x2 + " " + y2;
        lx = x2 - 6; ly = y2 - 4; // beside the target: labels of edges that fan out stay apart
      } else {
        var xa = a.x, ya = a.y + ROW / 2, yb = b.y + ROW / 2;
        d = "M" + xa + " " + ya + "C" + (xa - 14) + " " + ya + " " + (xa - 14) + " " + yb + " " + (xa - 1) + " " + yb;
        lx = null;
      }
      var p = svg("path", { d: d, "class": "edge" + (side ? " side" : ""), "marker-end": "url(#arrow)" });
      p.appendChild(svg("title", {}, e.from + (side ? "." + e.port : "") + " → " + e.to + " (" + e.mode + (same ? ", fused" : "") + ")"));
      s.appendChild(p);
      if (lx !== null) {
        var t = svg("text", { x: lx, y: ly, "text-anchor": "end", "class": "elabel" },
                    (side ? e.port + " · " : "") + e.mode);
        s.appendChild(t);
      }
    });
    order.forEach(function (cid) {
      var c = chains[cid], f0 = fig(c.nodes[0].id);
      var bp = f0.bp !== null && f0.bp > 0.1;
      s.appendChild(svg("rect", { x: c.x - 4, y: c.y, width: BOXW + 8, height: c.h, rx: 6,
                                  "class": "chainbox" + (bp ? " bp" : "") }));
      s.appendChild(svg("text", { x: c.x, y: c.y + 14, "font-weight": "bold" },
                        "chain " + c.id + " · ×" + c.nodes[0].parallelism + " · busy " + RN.pct(f0.busy) +
                        (f0.bp !== null ? " · back-pressured " + RN.pct(f0.bp) : "")));
      c.nodes.forEach(function (o) {
        var p = pos[o.id], f = fig(o.id);
        var rate = o.kind === "source" ? f.out : f.in;
        var g = svg("g", { "class": "op" + (o.id === selected ? " sel" : ""), tabindex: 0, role: "button",
                           "data-id": o.id, "data-rate": rate === null ? "" : String(rate),
                           "data-records-in": String(o.records_in), "data-records-out": String(o.records_out),
                           "aria-label": o.id + " (" + o.type + "): in " + RN.num(f.in) + "/s, out " +
                                         RN.num(f.out) + "/s, busy " + RN.pct(f.busy) });
        g.appendChild(svg("rect", { x: p.x, y: p.y + 2, width: BOXW, height: ROW - 6, rx: 4,
                                    fill: busyFill(f.busy), stroke: "#8a8e9c", "class": "row" }));
        g.appendChild(svg("text", { x: p.x + 6, y: p.y + 16, "font-weight": "bold" },
                          o.id + "  ·  " + o.type + (o.parallelism > 1 ? "  ×" + o.parallelism : "")));
        g.appendChild(svg("text", { x: p.x + 6, y: p.y + 31 },
                          (o.kind === "source" ? "" : "in " + RN.num(f.in) + "/s  ") +
                          (o.kind === "sink" ? "" : "out " + RN.num(f.out) + "/s  ") +
                          "total " + RN.num(o.kind === "source" ? o.records_out : o.records_in)));
        var extra = [];
        if (o.watermark === "+inf") extra.push("input drained");
        else if (f.lag !== null) extra.push("wm lag " + RN.dur(f.lag));
        var side = 0;
        for (var k in o.outputs) side += o.outputs[k];
        if (side) extra.push("side " + RN.num(side));
        if (o.late) extra.push("late " + RN.num(o.late));
        g.appendChild(svg("text", { x: p.x + 6, y: p.y + 46 }, extra.join("  ·  ") || " "));
        g.addEventListener("click", function () { onSelect(o.id); });
        g.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onSelect(o.id); } });
        s.appendChild(g);
      });
    });
    container.innerHTML = "";
    container.appendChild(s);
  }

  return { draw: draw, busyFill: busyFill };
})();
