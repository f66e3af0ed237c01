#!/usr/bin/python3
"""The page of `digitnet serve` in a real browser: Debian's chromium driven
through chromedriver by python3-selenium.

Starts the server on a free port, then twice (a laptop window with the
mouse, a phone-sized screen with touch) draws an MNIST test digit on the
canvas as pointer strokes and checks what the page shows against the API's
answer: the predicted digit (the right one), the ten log-probabilities as
the lecture prints them, the 28x28 the network saw, every feature map, the
heat-map; that drawing neither scrolls nor zooms the phone's page; that
the downloaded drawing gets the same answer from `digitnet predict`; undo,
clear and the random test digit. Screenshots go to --out.

Run by tests/test_serve_browser.c (make test); by hand:
  /usr/bin/python3 tests/serve_browser.py --bin ./digitnet --out out/browser
tests/web_browser.py runs the same checks on the static build (make web),
whose page asks the library compiled to WebAssembly instead of the API:
every question the checks ask goes through the page's own back-end.
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput

# MNIST test digits drawn: one per run, chosen so that both the raster
# trace below and the page's preprocessing keep them recognisable.
DIGITS = {"mouse": 0, "touch": 1}

# What the lines start with (tests/web_browser.py sets its own).
NAME = "serve_browser"


def fail(msg):
    print(NAME + ": FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(NAME + ": ok: " + msg, flush=True)


def start_server(args):
    cmd = [args.bin, "serve", "--port", "0", "--access-log", "none", "--threads", "2"]
    if args.model:
        cmd += ["--model", args.model]
    if args.data:
        cmd += ["--data", args.data]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"open (http://[^/ ]+/)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    fail("the server did not print its address: " + proc.stderr.read())


def ask(d, call):
    """The page's back-end's answer to call (JavaScript on `b`, the
    window.digitnetBackend): what the page itself would get."""
    r = d.execute_async_script(
        "const done = arguments[arguments.length - 1], b = window.digitnetBackend;"
        "Promise.resolve().then(() => " + call + ")"
        ".then((a) => done({answer: a}), (e) => done({error: e.message}));")
    if "error" in r:
        fail("the back-end refused %s: %s" % (call, r["error"]))
    return r["answer"]


def strokes_of(pixels):
    """A 28x28 digit as horizontal strokes: each run of ink in a row is one
    press, move and release, the way a brush would fill it."""
    out = []
    for y in range(28):
        x = 0
        while x < 28:
            while x < 28 and pixels[y * 28 + x] < 128:
                x += 1
            if x >= 28:
                break
            x0 = x
            while x < 28 and pixels[y * 28 + x] >= 128:
                x += 1
            out.append(((x0 + 0.5, y + 0.5), (x - 0.5, y + 0.5)))
    return out


def browser(profile, mobile):
    o = webdriver.ChromeOptions()
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--user-data-dir=" + profile]:
        o.add_argument(a)
    if mobile:
        o.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True},
            "userAgent": "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 "
                         "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"})
    else:
        o.add_argument("--window-size=1280,1000")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=o)


def wait_for(d, script, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = d.execute_script(script)
        if v:
            return v
        time.sleep(0.05)
    fail("timed out waiting for " + what + "; page error: " +
         str(d.execute_script("return window.digitnetPage && window.digitnetPage.lastError")))


def settle(d, before):
    """Waits until the page has drawn an answer newer than `before` and has
    nothing pending."""
    wait_for(d, "const p = window.digitnetPage; return p.predictions > %d && p.idle();" % before,
             "a prediction")
    time.sleep(0.2)
    wait_for(d, "return window.digitnetPage.idle();", "the page to settle")


def draw(d, pixels, kind):
    """Draws the digit on the canvas with the mouse or a finger."""
    rect = d.execute_script(
        "const c = document.getElementById('pad'); c.scrollIntoView({block: 'center'});"
        "const r = c.getBoundingClientRect();"
        "return [r.left + c.clientLeft, r.top + c.clientTop, c.clientWidth, c.clientHeight];")
    left, top, w, h = rect
    # The digit's 28 pixels over 80 % of the canvas, as a person fills it.
    scale = 0.8 * w / 28
    ox, oy = left + 0.1 * w, top + 0.1 * h
    d.execute_script("document.getElementById('brush').value = %d;"
                     "document.getElementById('brush').dispatchEvent(new Event('input'));" %
                     max(6, round(2.2 * scale * 280 / w)))
    pointer = PointerInput(interaction.POINTER_TOUCH if kind == "touch" else interaction.POINTER_MOUSE,
                           kind)
    ab = ActionBuilder(d, mouse=pointer, duration=10)
    for (x0, y0), (x1, y1) in strokes_of(pixels):
        ax, ay = round(ox + x0 * scale), round(oy + y0 * scale)
        bx, by = round(ox + x1 * scale), round(oy + y1 * scale)
        ab.pointer_action.move_to_location(ax, ay)
        ab.pointer_action.pointer_down()
        steps = max(1, round(abs(bx - ax) / 6))
        for s in range(1, steps + 1):
            ab.pointer_action.move_to_location(round(ax + (bx - ax) * s / steps), ay)
        ab.pointer_action.pointer_up()
    ab.perform()


def scribble(d, kind):
    """A zigzag over the whole canvas in one stroke."""
    left, top, w, h = d.execute_script(
        "const c = document.getElementById('pad'); const r = c.getBoundingClientRect();"
        "return [r.left + c.clientLeft, r.top + c.clientTop, c.clientWidth, c.clientHeight];")
    pointer = PointerInput(interaction.POINTER_TOUCH if kind == "touch" else interaction.POINTER_MOUSE,
                           kind)
    ab = ActionBuilder(d, mouse=pointer, duration=10)
    pts = [(0.12, 0.15), (0.88, 0.3), (0.15, 0.45), (0.85, 0.6), (0.2, 0.75), (0.9, 0.88),
           (0.5, 0.1), (0.3, 0.9)]
    ab.pointer_action.move_to_location(round(left + pts[0][0] * w), round(top + pts[0][1] * h))
    ab.pointer_action.pointer_down()
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        for s in range(1, 9):
            ab.pointer_action.move_to_location(round(left + (x0 + (x1 - x0) * s / 8) * w),
                                               round(top + (y0 + (y1 - y0) * s / 8) * h))
    ab.pointer_action.pointer_up()
    ab.perform()


def check_page(d, sample, kind, args, outdir):
    """Everything the page shows for the digit just drawn."""
    a = d.execute_script("return window.digitnetPage.answer;")
    label = sample["label"]
    check(a is not None, "%s: the page has an answer" % kind)
    check(a["prediction"] == label, "%s: predicted %d for MNIST test #%d (label %d, p %.3f)" %
          (kind, a["prediction"], sample["index"], label, a["probability"]))
    shown = d.execute_script("return document.getElementById('digit').textContent;")
    check(shown == str(label) or (a["unsure"] and shown == "?"),
          "%s: the big digit shows %r" % (kind, shown))
    cells = d.execute_script(
        "return Array.from(document.querySelectorAll('#logp td')).map(td => td.textContent);")
    values = {}
    for t in cells:
        m = re.match(r"^(\d+):\s+(-?\d+\.\d{4})$", t)
        check(m is not None, "%s: log-probability cell %r reads 'c: -x.xxxx'" % (kind, t))
        values[int(m.group(1))] = float(m.group(2))
    check(sorted(values) == list(range(10)), "%s: ten log-probabilities shown" % kind)
    worst = max(abs(values[c] - a["log_probabilities"][c]) for c in range(10))
    check(worst <= 0.00005 + 1e-9, "%s: they are the answer's, to 4 decimals (max diff %.2g)" % (kind, worst))
    best_cell = d.execute_script("return document.querySelector('#logp td.best').textContent;")
    check(best_cell.startswith("%d:" % a["prediction"]), "%s: the predicted class is marked" % kind)
    widths = d.execute_script(
        "return Array.from(document.querySelectorAll('#bars .fill')).map(f => f.style.width);")
    check(len(widths) == 10 and abs(float(widths[label].rstrip('%')) - 100 * a["probabilities"][label]) < 0.01,
          "%s: ten probability bars, the predicted one %s long" % (kind, widths[label] if widths else "?"))
    seen = d.execute_script(
        "const c = document.getElementById('seen'); const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;"
        "const v = []; for (let i = 0; i < 784; i++) v.push(d[4 * i]); return v;")
    check(seen == a["input"], "%s: the 28x28 preview is the input the network saw" % kind)
    ink = sum(1 for v in seen if v > 128)
    check(40 <= ink <= 400, "%s: the preview holds a digit (%d ink pixels)" % (kind, ink))
    maps = d.execute_script(
        "return Array.from(document.querySelectorAll('#stages canvas')).map(c => {"
        "  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "  let diff = 0; for (let i = 4; i < d.length; i += 4) if (d[i] != d[0] || d[i+1] != d[1]) diff++;"
        "  return [c.width, c.height, diff]; });")
    names = d.execute_script(
        "return Array.from(document.querySelectorAll('#stages .stage h3')).map(h => h.textContent);")
    check(names == [m["name"] for m in a["maps"]],
          "%s: every stage in data-flow order: %s" % (kind, ", ".join(names)))
    want = sum(m["shape"][0] if m["shape"][1] * m["shape"][2] > 1 else 1 for m in a["maps"])
    check(len(maps) == want, "%s: %d map pictures" % (kind, len(maps)))
    lively = sum(1 for w, h, diff in maps if diff > 0)
    check(lively >= 0.8 * len(maps), "%s: %d of %d maps show structure" % (kind, lively, len(maps)))
    heat = d.execute_script(
        "const d = document.getElementById('heat').getContext('2d').getImageData(0, 0, 28, 28).data;"
        "let red = 0; for (let i = 0; i < 784; i++) if (d[4*i] > d[4*i+2] + 60) red++; return red;")
    s = a["saliency"]
    check(s["class"] == a["prediction"] and s["max"] > 0 and heat >= 10,
          "%s: the heat-map is drawn (%d red pixels, max drop %.3g)" % (kind, heat, s["max"]))
    # Blanking the squares the map calls most important hurts the answer
    # more than blanking as many squares it calls least important.
    vals = s["values"]
    inked = [i for i in range(784) if a["input"][i] > 0]
    inked.sort(key=lambda i: vals[i])
    k = max(1, len(inked) // 4)
    def answer_without(idx):
        px = list(a["input"])
        for i in idx:
            px[i] = 0
        lp = ask(d, "b.predict({pixels: %s}, {})" % json.dumps(px))["log_probabilities"]
        c = a["prediction"]
        return lp[c] - max(lp[j] for j in range(10) if j != c)
    hot, cold = answer_without(inked[-k:]), answer_without(inked[:k])
    check(hot < cold, "%s: blanking the hottest quarter of the ink costs more than the coldest "
          "(margin %.2f vs %.2f)" % (kind, hot, cold))

    # The drawing as a PNG, through `digitnet predict`: on the laptop the
    # file "download my drawing" saves, on the phone the canvas itself.
    png = os.path.join(outdir, "drawn-%s.png" % kind)
    if kind == "mouse":
        got = os.path.join(outdir, "downloads", "digit.png")
        if os.path.exists(got):
            os.remove(got)
        d.find_element("id", "download").click()
        deadline = time.time() + 20
        while not os.path.exists(got) and time.time() < deadline:
            time.sleep(0.1)
        check(os.path.exists(got), "mouse: 'download my drawing' saved digit.png")
        shutil.copy(got, png)
    else:
        url = d.execute_script("return document.getElementById('pad').toDataURL('image/png');")
        with open(png, "wb") as f:
            f.write(base64.b64decode(url.split(",", 1)[1]))
    cmd = [args.bin, "predict", "--json", png] + (["--model", args.model] if args.model else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "%s: digitnet predict reads the drawing (%s)" % (kind, out.stderr.strip()))
    p = json.loads(out.stdout)
    diff = max(abs(x - y) for x, y in zip(p["log_probs"], a["log_probabilities"]))
    check(p["predicted"] == a["prediction"] and diff < 1e-4,
          "%s: digitnet predict gives the page's answer for the same PNG (max diff %.2g)" % (kind, diff))


def run(kind, args, outdir, profile_root, url=None):
    """Everything for one kind of pointer, on the page at url (args.url
    when None)."""
    mobile = kind == "touch"
    d = browser(os.path.join(profile_root, kind), mobile)
    try:
        d.set_script_timeout(30)
        downloads = os.path.abspath(os.path.join(outdir, "downloads"))
        os.makedirs(downloads, exist_ok=True)
        d.execute_cdp_cmd("Browser.setDownloadBehavior",
                          {"behavior": "allow", "downloadPath": downloads})
        d.get(url or args.url)
        wait_for(d, "return window.digitnetPage && window.digitnetPage.model;", "the model panel")
        sample = ask(d, "b.sample(%d)" % DIGITS[kind])
        rows = d.execute_script("return document.querySelectorAll('#layers tbody tr').length;")
        check(rows == 14, "%s: the model panel lists the input and 13 layers" % kind)
        d.execute_script(
            "window.__types = new Set();"
            "document.getElementById('pad').addEventListener('pointerdown', e => window.__types.add(e.pointerType));")
        if mobile:
            d.execute_script("window.scrollTo(0, 0);")
        before = d.execute_script("return window.digitnetPage.predictions;")
        draw(d, sample["pixels"], kind)
        y0 = d.execute_script("return window.scrollY;")
        settle(d, before)
        types = d.execute_script("return Array.from(window.__types);")
        check(types == [kind], "%s: the canvas saw %s pointer events" % (kind, types))
        check_page(d, sample, kind, args, outdir)
        if mobile:
            y1 = d.execute_script("return window.scrollY;")
            zoom = d.execute_script("return window.visualViewport ? window.visualViewport.scale : 1;")
            check(y1 == y0 and zoom == 1, "touch: drawing neither scrolled (%s -> %s) nor zoomed (%s)" %
                  (y0, y1, zoom))
            width = d.execute_script("return document.documentElement.scrollWidth;")
            check(width <= 390, "touch: nothing is wider than the phone (%d px)" % width)
        # No button left focused or under the mouse by a click.
        d.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
        if not mobile:
            away = ActionBuilder(d)
            away.pointer_action.move_to_location(2, 2)
            away.perform()
        time.sleep(0.2)
        shot = os.path.join(outdir, "page-%s.png" % ("phone" if mobile else "laptop"))
        if mobile:
            d.save_screenshot(shot)
            # And the whole page at phone width, for a person to look at.
            size = d.execute_script("return [document.documentElement.scrollWidth,"
                                    " document.documentElement.scrollHeight];")
            png = d.execute_cdp_cmd("Page.captureScreenshot", {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}})
            with open(os.path.join(outdir, "page-phone-full.png"), "wb") as f:
                f.write(base64.b64decode(png["data"]))
        else:
            # The whole page, as it lays out in a laptop-wide window.
            height = d.execute_script("return document.documentElement.scrollHeight;")
            d.set_window_size(1280, min(height + 140, 4000))
            time.sleep(0.3)
            d.save_screenshot(shot)
        print(NAME + ": screenshot " + shot, flush=True)

        # Undo takes the last stroke away and the answer follows, and
        # nothing on the page moves for it.
        layout = ("return Array.from(document.querySelectorAll('.card, .stage, #digit, #bars, #logp,"
                  " figure')).map(e => { const r = e.getBoundingClientRect();"
                  " return [Math.round(r.left), Math.round(r.top + window.scrollY),"
                  " Math.round(r.width), Math.round(r.height)]; });")
        before_undo = d.execute_script(layout)
        n = d.execute_script("return window.digitnetPage.predictions;")
        d.find_element("id", "undo").click()
        settle(d, n)
        check(d.execute_script("return window.digitnetPage.answer !== null;"), "%s: undo re-predicts" % kind)
        moved = [i for i, (a, b) in enumerate(zip(before_undo, d.execute_script(layout))) if a != b]
        check(not moved, "%s: no box moved or changed size with the new answer (%d boxes)" %
              (kind, len(before_undo)))
        d.find_element("id", "clear").click()
        wait_for(d, "return window.digitnetPage.idle() && window.digitnetPage.answer === null;", "clear")
        check(d.execute_script("return document.getElementById('digit').textContent;") == "–",
              "%s: clear empties the answer" % kind)
        n = d.execute_script("return window.digitnetPage.predictions;")
        d.find_element("id", "sample").click()
        settle(d, n)
        note = d.execute_script("return document.getElementById('sample-note').textContent;")
        check(re.match(r"MNIST test #\d+, true label \d", note) is not None,
              "%s: a random test digit is drawn and named: %r" % (kind, note))
        moved = [i for i, (a, b) in enumerate(zip(before_undo, d.execute_script(layout))) if a != b]
        check(not moved, "%s: nor with the test digit's" % kind)

        # A scribble is not announced as a confident digit.
        d.find_element("id", "clear").click()
        n = d.execute_script("return window.digitnetPage.predictions;")
        scribble(d, kind)
        settle(d, n)
        a = d.execute_script("return window.digitnetPage.answer;")
        status = d.execute_script("return document.getElementById('status').textContent;")
        check(a["unsure"] and status.startswith("unsure:") and
              d.execute_script("return document.getElementById('digit').textContent;") == "?",
              "%s: a scribble is shown as unsure (%s)" % (kind, status))
        moved = [i for i, (a, b) in enumerate(zip(before_undo, d.execute_script(layout))) if a != b]
        check(not moved, "%s: nor with an unsure answer" % kind)
        errors = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        check(not errors, "%s: the console shows no error%s" % (kind, ": " + errors[0] if errors else ""))
    finally:
        d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./digitnet")
    ap.add_argument("--model", default="tests/fixtures/mnist-model.safetensors")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="out/serve-browser")
    ap.add_argument("--only", choices=["mouse", "touch"])
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    proc, args.url = start_server(args)
    profiles = tempfile.mkdtemp(prefix="digitnet-chromium-")
    try:
        for kind in ["mouse", "touch"]:
            if args.only in (None, kind):
                run(kind, args, args.out, profiles)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profiles, ignore_errors=True)
    check(proc.returncode == 0, "the server stopped cleanly on SIGTERM (exit %s)" % proc.returncode)
    print("serve_browser: all passed", flush=True)


if __name__ == "__main__":
    main()
