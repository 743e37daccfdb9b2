#!/usr/bin/env python3
"""cdp.py - drives headless Chromium over the DevTools protocol, python3 stdlib only.

    cdp.py --chromium PATH --profile DIR --url URL [--js FILE] [--screenshot PNG]
           [--size 1400x1800] [--clip SELECTOR=PNG ...] [--scale 0.7] [--timeout 60]

Opens URL in a headless Chromium started with --remote-debugging-pipe (the protocol's
JSON messages, each ended by a NUL byte, on file descriptors 3 and 4), waits until the
page has loaded, then evaluates the JavaScript expression in FILE (it may be a promise;
its value must be JSON) and prints that value as JSON on stdout, then takes a full-page
screenshot, and one of each --clip element alone (scaled by --scale). Everything runs under one deadline (--timeout, seconds); on expiry, or a
JavaScript exception, it prints the reason on stderr and exits 1.

The web UI's browser tests (tests/integration/test_webui*.sh) use it where the page must
be typed into, which --dump-dom cannot do.
"""
import argparse, base64, json, os, subprocess, sys, time


class Browser:
    def __init__(self, chromium, profile, deadline):
        self.deadline = deadline
        r_ours, w_theirs = os.pipe()  # Chromium writes fd 4 -> we read
        r_theirs, w_ours = os.pipe()  # we write -> Chromium reads fd 3

        def fds():  # in the child: our pipe ends as its fds 3 and 4, whatever they were
            import fcntl
            hi_r = fcntl.fcntl(r_theirs, fcntl.F_DUPFD, 100)
            hi_w = fcntl.fcntl(w_theirs, fcntl.F_DUPFD, 100)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--mute-audio",
             "--hide-scrollbars", "--remote-debugging-pipe", "--user-data-dir=" + profile,
             "about:blank"],
            close_fds=False, preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "..", "chromium.err"), "ab"))
        os.close(r_theirs)
        os.close(w_theirs)
        self.r, self.w = r_ours, w_ours
        self.buf = b""
        self.next_id = 0

    def left(self):
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise TimeoutError("the deadline passed")
        return t

    def _read_message(self):
        import select
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.r], [], [], self.left())
            if not ready:
                continue
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.w, json.dumps(m).encode() + b"\0")
        while True:
            r = self._read_message()
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--profile", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--js")
    ap.add_argument("--screenshot")
    ap.add_argument("--size", default="1400x1800")
    ap.add_argument("--clip", action="append", default=[],
                    help="SELECTOR=FILE.png: also a screenshot of that element alone")
    ap.add_argument("--scale", type=float, default=1.0, help="of the --clip screenshots")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    width, height = (int(x) for x in a.size.split("x"))
    os.makedirs(a.profile, exist_ok=True)
    b = Browser(a.chromium, a.profile, time.monotonic() + a.timeout)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, s)
        b.call("Page.enable", {}, s)
        b.call("Page.navigate", {"url": a.url}, s)

        def evaluate(expr):
            r = b.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                            "returnByValue": True}, s)
            if "exceptionDetails" in r:
                raise RuntimeError("javascript: " + json.dumps(r["exceptionDetails"])[:600])
            return r["result"].get("value")

        while evaluate("document.readyState") != "complete":
            time.sleep(0.1)
            b.left()
        if a.js:
            with open(a.js) as f:
                print(json.dumps(evaluate(f.read())))
        if a.screenshot:
            shot = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, s)
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        for c in a.clip:
            sel, out = c.rsplit("=", 1)
            r = evaluate("(() => { const e = document.querySelector(%s); if (!e) return null;"
                         " const r = e.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY,"
                         " r.width, r.height]; })()" % json.dumps(sel))
            if not r:
                raise RuntimeError("no element " + sel)
            shot = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                     "clip": {"x": r[0], "y": r[1], "width": r[2],
                                                              "height": r[3], "scale": a.scale}}, s)
            with open(out, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
    except Exception as e:  # one line for the test's log
        print("cdp.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
