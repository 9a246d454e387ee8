#!/usr/bin/env python3
"""The page of iobound-server --http, in a real browser: headless Chromium
loads it, fills its form and presses Run, and the test reads the page's
DOM while the operations run and once they are done, then keeps a
screenshot. It drives Chromium over the DevTools protocol on a pair of
pipes (--remote-debugging-pipe: JSON messages, each ended by a NUL).

live-page.py SERVER COMPARE SCREENSHOT. Exit 77 (skipped) when Chromium
is missing or cannot start."""
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Browser:
    """Chromium with its DevTools protocol on fds 3 (to it) and 4 (from
    it), and one page attached."""

    def __init__(self, binary, profile):
        to_child, self.to_browser = os.pipe()
        self.from_browser, from_child = os.pipe()

        def fds():  # in the child: the pipes at 3 and 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions",
             "--hide-scrollbars", "--mute-audio", "--window-size=1280,1000",
             "--remote-debugging-pipe", "--user-data-dir=" + profile,
             "about:blank"],
            # kept by number: the child closes the rest after fds() ran
            preexec_fn=fds, pass_fds=(3, 4),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [],
                                              left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.from_browser, 65536)
            if not chunk:
                raise EOFError("Chromium closed its pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, timeout=30, session=True, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self.receive(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_event(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for k, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(k)
            self.events.append(self.receive(deadline))

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            fail(f"the page's script threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=5, session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(server):
    env = dict(os.environ, UV_THREADPOOL_SIZE="4")
    proc = subprocess.Popen([server, "--port", "0", "--http", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        found = re.match(r"page on (http://\S+)", line)
        if found:
            return proc, found.group(1)
    fail("iobound-server printed no 'page on' line")


# The panel of each style: its state, the operations drawn, its numbers.
PANELS = """[...document.querySelectorAll('.panel')].map(p => ({
  style: p.dataset.style, state: p.dataset.state,
  text: p.querySelector('.state').textContent,
  ops: p.querySelectorAll('rect.op').length,
  drawn: [...p.querySelectorAll('rect.op')].map(r => Number(r.dataset.at))
      .sort((a, b) => a - b),
  reportAt: Number(p.dataset.reportAt),
  numbers: Object.fromEntries([...p.querySelectorAll('td[data-field]')]
      .map(td => [td.dataset.field, td.textContent])),
  command: p.querySelector('code').textContent}))"""


def press_run(browser, fields):
    """Fill the form as a person would, and press Run."""
    sets = "".join(
        f"f.{name}.value = {json.dumps(value)};"
        f"f.{name}.dispatchEvent(new Event('change'));"
        for name, value in fields.items())
    browser.js(f"(() => {{ const f = document.getElementById('form'); {sets}"
               "document.getElementById('run').click(); })()")


def wait_done(browser, runs, seconds, watch=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if watch is not None:
            watch(browser.js(PANELS))
        if browser.js("document.body.dataset.done") == str(runs):
            return browser.js(PANELS)
        time.sleep(0.05)
    fail(f"run {runs} did not end within {seconds} s: {browser.js(PANELS)}")


def ms(text):
    found = re.fullmatch(r"([0-9.]+) ms", text)
    if not found:
        fail(f"not a time in ms: {text!r}")
    return float(found.group(1))


def check_side_by_side(browser):
    """Loop beside pool, 8 waits of 300 ms at once: libuv's pool (4
    threads) runs them in two rounds, and the page draws the first round's
    rows while the second still runs (each row says when it was drawn)."""
    press_run(browser, {"work": "wait", "style": "loop", "beside": "pool",
                        "arrive": "once", "count": "8", "duration": "300",
                        "limit": "0"})
    panels = wait_done(browser, 1, 30)
    if [p["style"] for p in panels] != ["loop", "pool"]:
        fail(f"two panels, loop and pool, were drawn: {panels}")
    for p in panels:
        if p["state"] != "done" or p["ops"] != 8:
            fail(f"{p['style']}: 8 rows and a report were drawn: {p}")
        if not p["text"].startswith("8 of 8 settled in"):
            fail(f"{p['style']}: its state says all settled: {p['text']!r}")
        for field in ("elapsed", "p99 running", "p99 in all", "overlap"):
            if field not in p["numbers"]:
                fail(f"{p['style']}: the number {field!r} is shown: {p}")
    loop, pool = (ms(p["numbers"]["elapsed"]) for p in panels)
    drawn = panels[1]["drawn"]
    ahead = panels[1]["reportAt"] - drawn[3]
    print(f"loop {loop:.1f} ms, pool {pool:.1f} ms; the pool's first round "
          f"drawn {ahead:.0f} ms before its report (rows at {drawn} ms)")
    if loop < 295:
        fail(f"the loop ran 8 waits of 300 ms in {loop} ms")
    if pool < 590:
        fail(f"4 threads ran 8 waits of 300 ms in {pool} ms, not 2 rounds")
    # The second round takes 300 ms: its first round's rows were drawn
    # while it ran, not all at the end.
    if not ahead >= 100:
        fail(f"the pool's first round was drawn {ahead} ms before its "
             "report: the timeline is not live")
    return panels


def check_same_as_cli(panels, compare):
    """The command the page shows runs, and reports what the page did."""
    for p in panels:
        words = p["command"].split()
        if words[0] != "iobound-compare":
            fail(f"the page shows an iobound-compare command: {p['command']}")
        out = subprocess.run([compare] + words[1:] + ["--format", "json"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            fail(f"{p['command']} failed: {out.stderr}")
        (report,) = json.loads(out.stdout)["styles"]
        if report["style"] != p["style"] or report["count"] != 8 or \
                report["duration_ms"] != 300:
            fail(f"{p['command']} ran something else: {out.stdout}")


def stats(url):
    with urllib.request.urlopen(url + "stats", timeout=10) as answer:
        return json.loads(answer.read())


def check_rate(browser, url):
    """Run is pressed while a run of 10 s waits goes on: that run is
    stopped. Then 20 a second for 1 s, waits of 100 ms, in the loop: 20
    rows."""
    press_run(browser, {"style": "loop", "beside": "", "arrive": "once",
                        "count": "4", "duration": "10000"})
    time.sleep(0.3)
    press_run(browser, {"style": "loop", "beside": "", "arrive": "rate",
                        "rate": "20", "seconds": "1", "duration": "100"})
    (panel,) = wait_done(browser, 3, 30)
    if panel["state"] != "done" or panel["ops"] != 20:
        fail(f"20 arrivals were drawn: {panel}")
    if "--arrival-rate 20 --for 1" not in panel["command"]:
        fail(f"the command says the rate: {panel['command']}")
    deadline = time.monotonic() + 10
    while (s := stats(url))["batches_running"] != 0 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    if s["batches_running"] != 0 or s["batches_cancelled"] != 1:
        fail(f"the run left behind was not stopped: {s}")


def check_refusal(browser):
    """2000 operations are past what a page's run streams: the page shows
    the server's refusal, in the line protocol's words."""
    press_run(browser, {"arrive": "rate", "rate": "2000", "seconds": "1"})
    (panel,) = wait_done(browser, 4, 30)
    if panel["state"] != "error" or \
            panel["text"] != "error stream=1 takes at most 1000 operations":
        fail(f"the refusal is shown: {panel}")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: live-page.py SERVER COMPARE SCREENSHOT")
    server, compare, screenshot = sys.argv[1:]
    binary = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if binary is None:
        print("SKIP: no chromium (apt-get install chromium)")
        return SKIP
    proc, url = start_server(server)
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(binary, profile)
        try:
            try:
                target = browser.call("Target.createTarget", url="about:blank",
                                      session=False)
            except (EOFError, TimeoutError) as e:
                print(f"SKIP: Chromium did not start: {e}")
                return SKIP
            browser.session = browser.call(
                "Target.attachToTarget", targetId=target["targetId"],
                flatten=True, session=False)["sessionId"]
            browser.call("Page.enable")
            browser.call("Runtime.enable")
            browser.call("Log.enable")
            browser.call("Page.navigate", url=url)
            browser.wait_event("Page.loadEventFired")
            panels = check_side_by_side(browser)
            shot = browser.call("Page.captureScreenshot", format="png")
            data = base64.b64decode(shot["data"])
            if not data.startswith(b"\x89PNG") or len(data) < 10000:
                fail(f"a screenshot of {len(data)} bytes")
            with open(screenshot, "wb") as f:
                f.write(data)
            print(f"screenshot: {screenshot} ({len(data)} bytes)")
            check_same_as_cli(panels, compare)
            check_rate(browser, url)
            check_refusal(browser)
            # Nothing the page did was blocked or failed in its console,
            # but the refusal's own answer (400).
            errors = [e["params"] for e in browser.events
                      if e.get("method") == "Runtime.exceptionThrown" or
                      (e.get("method") == "Log.entryAdded" and
                       e["params"]["entry"]["level"] == "error" and
                       "400" not in e["params"]["entry"].get("text", ""))]
            if errors:
                fail(f"the page's console has errors: {errors}")
        finally:
            browser.close()
            proc.terminate()
            proc.wait(timeout=30)
    if proc.returncode != 0:
        fail(f"iobound-server exited {proc.returncode}")
    print("ok: the page ran loop beside pool, a rate, and a refusal")
    return 0


sys.exit(main())
