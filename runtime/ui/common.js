// Helpers every runnel page shares: formatting figures for people, and fetching JSON.
"use strict";
var RN = (function () {
  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    var a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(1) + " G";
    if (a >= 1e6) return (x / 1e6).toFixed(1) + " M";
    if (a >= 1e4) return (x / 1e3).toFixed(1) + " k";
    if (a >= 100 || Number.isInteger(x)) return Math.round(x).toString();
    return x.toFixed(digits === undefined ? 2 : digits);
  }
  function bytes(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    var u = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (Math.abs(x) >= 1000 && i < u.length - 1) { x /= 1000; i++; }
    return (i ? x.toFixed(1) : Math.round(x)) + " " + u[i];
  }
  // A duration in seconds as a person says it: 850 ms, 12.3 s, 4 min 5 s, 3 h 10 min, 2 d 4 h,
  // 3.0 years.
  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    var neg = s < 0 ? "−" : ""; s = Math.abs(s);
    var r;
    if (s < 1) r = Math.round(s * 1000) + " ms";
    else if (s < 60) r = s.toFixed(1) + " s";
    else if (s < 3600) r = Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    else if (s < 86400) r = Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    else if (s < 365 * 86400) r = Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
    else r = (s / (365.25 * 86400)).toFixed(1) + " years";
    return neg + r;
  }
  // A time in ms since the epoch as UTC date and time.
  function time(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms === "+inf") return "end of input";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  function pct(x) { return x === null || x === undefined || !isFinite(x) ? "–" : Math.round(100 * x) + "%"; }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function getJSON(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }
  // Calls fn now and then every ms milliseconds, one call at a time.
  function every(ms, fn) {
    function tick() { Promise.resolve().then(fn).catch(function (e) { console.error(e); })
      .then(function () { setTimeout(tick, ms); }); }
    tick();
  }
  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (html !== undefined) e.innerHTML = html;
    return e;
  }
  return { num: num, bytes: bytes, dur: dur, time: time, pct: pct, esc: esc, getJSON: getJSON,
           every: every, el: el };
})();
