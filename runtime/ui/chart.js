// Small time-series line charts drawn as SVG (no library): a figure with a caption, the
// chart, and a legend that carries each line's latest value as text, so a screen reader
// (and a test) can read what the lines show. Colours are the Okabe–Ito palette, which
// stays distinguishable with the common colour-vision deficiencies, and every line also
// has its own dash pattern.
"use strict";
var RnChart = (function () {
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                "#F0E442"];
  var DASH = ["", "6 3", "2 2", "8 3 2 3", "", "6 3", "2 2", "8 3 2 3"];
  var W = 460, H = 170, L = 66, R = 8, T = 8, B = 22;

  function svg(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // opts: {id, title, fmt(value) -> text, step (draw steps, for versions), ymin (default 0)}
  function Chart(parent, opts) {
    this.opts = opts;
    this.fig = document.createElement("figure");
    this.fig.className = "chart";
    this.fig.id = "chart-" + opts.id;
    this.fig.setAttribute("data-points", "0");
    var cap = document.createElement("figcaption");
    cap.textContent = opts.title;
    this.fig.appendChild(cap);
    this.svg = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    this.title = svg("title", {});
    this.svg.appendChild(this.title);
    this.fig.appendChild(this.svg);
    this.legend = document.createElement("ul");
    this.fig.appendChild(this.legend);
    parent.appendChild(this.fig);
  }

  // lines: [{label, xs: [ms], ys: [number|null]}]; span: the longest window shown, ms (the
  // axis fits the points, up to span back from the newest; 0: no limit).
  Chart.prototype.update = function (lines, span) {
    var fmt = this.opts.fmt || RN.num, s = this.svg;
    while (s.lastChild !== this.title) s.removeChild(s.lastChild);
    var xmin = Infinity, xmax = -Infinity, ymin = this.opts.ymin === undefined ? 0 : Infinity,
        ymax = -Infinity, most = 0;
    lines.forEach(function (ln) {
      var n = 0;
      for (var i = 0; i < ln.xs.length; i++) {
        var y = ln.ys[i];
        if (y === null || y === undefined || !isFinite(y)) continue;
        n++;
        if (ln.xs[i] < xmin) xmin = ln.xs[i];
        if (ln.xs[i] > xmax) xmax = ln.xs[i];
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
      }
      ln.n = n;
      if (n > most) most = n;
    });
    this.fig.setAttribute("data-points", String(most));
    if (span && xmax > -Infinity) xmin = Math.max(xmin, xmax - span);
    // one point (or none): a minute's axis ending there
    if (!(xmax > xmin)) { xmax = (xmax > -Infinity ? xmax : Date.now()); xmin = xmax - 60000; }
    if (!(ymax > -Infinity)) { ymin = 0; ymax = 1; }
    if (ymax === ymin) ymax = ymin + (Math.abs(ymin) || 1);
    ymax += (ymax - ymin) * 0.05;
    var sx = function (x) { return L + (W - L - R) * (x - xmin) / (xmax - xmin); };
    var sy = function (y) { return H - B - (H - T - B) * (y - ymin) / (ymax - ymin); };
    for (var k = 0; k <= 3; k++) {
      var yv = ymin + (ymax - ymin) * k / 3, yy = sy(yv);
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, "class": "gridline" }));
      var t = svg("text", { x: L - 4, y: yy + 3, "text-anchor": "end", "class": "axis" });
      t.textContent = fmt(yv);
      s.appendChild(t);
    }
    for (k = 0; k <= 4; k++) {
      var xv = xmin + (xmax - xmin) * k / 4;
      var tx = svg("text", { x: sx(xv), y: H - 6, "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle",
                             "class": "axis" });
      // HH:MM:SS, with tenths when the axis spans less than 10 s
      tx.textContent = new Date(xv).toISOString().substr(11, xmax - xmin < 10000 ? 10 : 8);
      s.appendChild(tx);
    }
    var step = this.opts.step, summary = [];
    this.legend.innerHTML = "";
    var self = this;
    lines.forEach(function (ln, li) {
      var d = "", pen = false, last = null, px = 0;
      for (var i = 0; i < ln.xs.length; i++) {
        var y = ln.ys[i];
        if (y === null || y === undefined || !isFinite(y)) { pen = false; continue; }
        var x = sx(ln.xs[i]), yy = sy(y);
        if (!pen) d += "M" + x.toFixed(1) + " " + yy.toFixed(1);
        else if (step) d += "H" + x.toFixed(1) + "V" + yy.toFixed(1);
        else d += "L" + x.toFixed(1) + " " + yy.toFixed(1);
        pen = true; last = y; px = x;
      }
      var c = COLORS[li % COLORS.length];
      if (d) s.appendChild(svg("path", { d: d, fill: "none", stroke: c, "stroke-width": 1.8,
                                          "stroke-dasharray": DASH[li % DASH.length] }));
      if (ln.n === 1) s.appendChild(svg("circle", { cx: px, cy: sy(last), r: 2.5, fill: c }));
      var li_ = document.createElement("li");
      li_.innerHTML = '<span class="swatch" style="border-top-color:' + c + ";border-top-style:" +
        (DASH[li % DASH.length] ? "dashed" : "solid") + '"></span>' + RN.esc(ln.label) + ": <b>" +
        RN.esc(last === null ? "–" : fmt(last)) + "</b>";
      self.legend.appendChild(li_);
      summary.push(ln.label + " " + (last === null ? "none" : fmt(last)));
    });
    this.title.textContent = this.opts.title + " — latest: " + (summary.join("; ") || "no data yet");
  };

  return { Chart: Chart };
})();
