#!/usr/bin/env python3
"""fake_recommend.py — a stand-in for a runnel job's serving endpoint, for rn_sim's http
policy tests (tests/integration/test_sim_http.sh).

    fake_recommend.py --port-file PATH --stats PATH [--log PATH] [--mode MODE]
                      [--close-every N] [--version V]

Listens on 127.0.0.1 (a free port, written to --port-file once listening) for
POST /api/v1/recommend and answers with the request's first k candidates, propensity 1 each,
and model_version V (default 7), over HTTP/1.1 keep-alive; every N-th answer (--close-every)
closes the connection.  It checks each request's JSON (user, request, candidates, context with
hour and page, k, ts) and, with --log, that the simulator's log file already holds that
request's line (the log is flushed before each call): 400 when not.  MODE changes the answer:
first (the default), dup (one candidate k times), slow (waits 3 s), error (503).  After each
request it writes "requests N connections M" to --stats.
"""
import argparse
import http.server
import json
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--stats", required=True)
ap.add_argument("--log")
ap.add_argument("--mode", default="first")
ap.add_argument("--close-every", type=int, default=0)
ap.add_argument("--version", type=int, default=7)
o = ap.parse_args()

state = {"requests": 0, "connections": 0, "log_pos": 0, "log_seen": set(), "log_rest": b""}


def log_has(request):
    """Whether the simulator's log already holds the request line of `request`."""
    with open(o.log, "rb") as f:
        f.seek(state["log_pos"])
        data = state["log_rest"] + f.read()
        state["log_pos"] = f.tell()
    lines = data.split(b"\n")
    state["log_rest"] = lines.pop()
    for line in lines:
        ev = json.loads(line)
        if ev["type"] == "request":
            state["log_seen"].add(ev["request"])
    return request in state["log_seen"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def setup(self):
        super().setup()
        state["connections"] += 1

    def log_message(self, *args):
        pass

    def answer(self, code, obj, close=False):
        body = (json.dumps(obj) if not isinstance(obj, str) else obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        state["requests"] += 1
        with open(o.stats + ".tmp", "w") as f:
            f.write("requests %d connections %d\n" % (state["requests"], state["connections"]))
        os.replace(o.stats + ".tmp", o.stats)
        close = o.close_every > 0 and state["requests"] % o.close_every == 0
        if self.path != "/api/v1/recommend":
            return self.answer(404, {"error": "no such path " + self.path}, close)
        try:
            q = json.loads(raw)
            cands, k = q["candidates"], q["k"]
            ok = (isinstance(q["user"], str) and isinstance(q["request"], str) and
                  isinstance(q["ts"], int) and isinstance(q["context"]["hour"], int) and
                  isinstance(q["context"]["page"], int) and 0 < k <= len(cands))
        except (ValueError, KeyError, TypeError) as e:
            return self.answer(400, {"error": "bad request: %r" % e}, close)
        if not ok:
            return self.answer(400, {"error": "bad request fields"}, close)
        if o.log and not log_has(q["request"]):
            return self.answer(400, {"error": "request %s not in the log yet" % q["request"]},
                               close)
        if o.mode == "slow":
            time.sleep(3)
        if o.mode == "error":
            return self.answer(503, "overloaded", close)
        items = cands[:k] if o.mode != "dup" else [cands[0]] * k
        self.answer(200, {"items": items, "propensities": [1.0] * k,
                          "model_version": o.version, "request": q["request"]}, close)


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(o.port_file + ".tmp", "w") as f:
    f.write("%d\n" % server.server_address[1])
os.replace(o.port_file + ".tmp", o.port_file)
server.serve_forever()
