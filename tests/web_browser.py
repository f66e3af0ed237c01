#!/usr/bin/python3
"""The static build of the page (make web, out/web/) in a real browser: the
page of `digitnet serve`, with the library compiled to WebAssembly as its
back-end, served by a plain static file server (Python's http.server on a
free port) and opened from file://.

Served, the checks of tests/serve_browser.py run as they do for the
server (imported, not repeated): an MNIST test digit drawn with the mouse
on a laptop-sized window and with touch on a phone-sized screen, the right
prediction, the ten log-probabilities, the 28x28, every feature map, the
heat-map, `digitnet predict` answering the downloaded drawing the same,
undo, clear, the random test digit, an unsure scribble. Here besides: the
page names the WebAssembly back-end, answers as `digitnet serve` does
(model and explained predictions compared key for key with a server
started with --bin) and asked the static server for no /api/ route; index.html is web/index.html with only its back-end line
changed; and opened from file://, a digit drawn there is read right too.
Screenshots go to --out; the laptop one is copied to --shot.

Run by tests/test_serve_browser.c (make test); by hand:
  /usr/bin/python3 tests/web_browser.py --bin ./digitnet --web out/web
"""
import argparse
import functools
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_browser as sb  # noqa: E402  (the helpers and the checks)

sb.NAME = "web_browser"


class Handler(http.server.SimpleHTTPRequestHandler):
    """A static file server, as any host would be, that remembers what it
    was asked for."""
    asked = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.asked.append(self.path)
        super().do_GET()


def start_server(root):
    Handler.extensions_map = dict(Handler.extensions_map, **{".wasm": "application/wasm"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_index(web):
    """out/web/index.html is web/index.html but for its back-end line."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "index.html")
    with open(src) as f:
        a = f.read().splitlines()
    with open(os.path.join(web, "index.html")) as f:
        b = f.read().splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    check_line = diff == [('<script src="backend-http.js"></script>',
                           '<script src="backend-wasm.js"></script>')]
    sb.check(len(a) == len(b) and check_line,
             "index.html is web/index.html with only the back-end changed (%d lines differ)" %
             len(diff))


def differences(a, b, path="", skip=()):
    """Where two JSON answers differ: numbers by more than the 4
    significant digits the maps are written with, anything else at all."""
    if isinstance(a, dict) and isinstance(b, dict):
        # (in any order: the driver hands the page's objects over sorted)
        if sorted(a) != sorted(b):
            return ["%s keys %s vs %s" % (path, sorted(a), sorted(b))]
        return [x for k in a if k not in skip for x in differences(a[k], b[k], path + "." + k)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s has %d vs %d items" % (path, len(a), len(b))]
        return [x for i, (u, v) in enumerate(zip(a, b)) for x in differences(u, v, "%s[%d]" % (path, i))]
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool):
        return [] if abs(a - b) <= 1e-4 + 1e-3 * max(abs(a), abs(b)) else ["%s: %r vs %r" % (path, a, b)]
    return [] if a == b else ["%s: %r vs %r" % (path, a, b)]


def check_same_as_server(d, args):
    """The WebAssembly back-end answers as `digitnet serve` does: the same
    model description and, for the same test digit, the same explained
    prediction (maps, heat-map and all), key for key."""
    proc, url = sb.start_server(args)
    try:
        want = json.load(urllib.request.urlopen(url + "api/model", timeout=30))
        got = sb.ask(d, "b.model()")
        diff = differences(want, got, skip=("file", "loaded_at", "test"))
        sb.check(not diff, "the model as GET /api/model describes it (%s)" % (diff[:3] or "same"))
        for index in (0, 1, 2):
            px = sb.ask(d, "b.sample(%d)" % index)["pixels"]
            req = urllib.request.Request(url + "api/predict?maps=1&saliency=1",
                                         json.dumps({"pixels": px}).encode(),
                                         {"Content-Type": "application/json"})
            want = json.load(urllib.request.urlopen(req, timeout=30))
            got = sb.ask(d, "b.predict({pixels: %s}, {maps: true, saliency: true})" % json.dumps(px))
            diff = differences(want, got, skip=("timing_us",))
            sb.check(not diff, "test #%d: the answer of POST /api/predict, key for key (%s)" %
                     (index, diff[:3] or "same"))
            print("web_browser: test #%d: the answer with maps and heat-map took %.1f ms in the "
                  "page (%.1f ms for the heat-map)" % (index, got["timing_us"]["total"] / 1000,
                                                       got["timing_us"]["saliency"] / 1000), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def check_backend(args, profiles):
    """The footer names the WebAssembly back-end, the API link is gone,
    and the answers are the server's."""
    url = args.url
    d = sb.browser(os.path.join(profiles, "footer"), False)
    try:
        d.get(url)
        sb.wait_for(d, "return window.digitnetPage && window.digitnetPage.model;", "the model panel")
        name = d.execute_script("return document.getElementById('backend-name').textContent;")
        sb.check("WebAssembly" in name, "the footer names the back-end: %r" % name)
        shown = d.execute_script("return document.getElementById('api-link').offsetParent !== null;")
        sb.check(not shown, "the link to the HTTP API is hidden")
        test = d.execute_script("return window.digitnetPage.model.test;")
        sb.check(test and test["images"] == 1000 and test["accuracy"] > 0.95,
                 "the model panel's accuracy is measured on the 1,000 shipped test images (%s)" % test)
        check_same_as_server(d, args)
    finally:
        d.quit()


def run_file(web, profiles):
    """The page opened from file://: a digit drawn with the mouse is read
    right."""
    d = sb.browser(os.path.join(profiles, "file"), False)
    try:
        d.get("file://" + os.path.join(web, "index.html"))
        sb.wait_for(d, "return window.digitnetPage && window.digitnetPage.model;",
                    "the model panel from file://")
        sample = sb.ask(d, "b.sample(0)")
        before = d.execute_script("return window.digitnetPage.predictions;")
        sb.draw(d, sample["pixels"], "mouse")
        sb.settle(d, before)
        a = d.execute_script("return window.digitnetPage.answer;")
        sb.check(a["prediction"] == sample["label"] and a["maps"] and a["saliency"],
                 "file://: predicted %d for MNIST test #0 (label %d), with maps and heat-map" %
                 (a["prediction"], sample["label"]))
    finally:
        d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./digitnet", help="the native command, for digitnet predict")
    ap.add_argument("--data", default=None, help="MNIST for the server compared with")
    ap.add_argument("--web", default="out/web")
    ap.add_argument("--out", default="out/web-browser")
    ap.add_argument("--shot", default="out/web-page.png")
    ap.add_argument("--only", choices=["mouse", "touch", "file"])
    args = ap.parse_args()
    web = os.path.abspath(args.web)
    if not os.path.isfile(os.path.join(web, "digitnet.wasm")):
        sb.fail("%s has no digitnet.wasm: run make web" % web)
    args.model = os.path.join(web, "model.safetensors")
    os.makedirs(args.out, exist_ok=True)
    check_index(web)
    server = start_server(web)
    args.url = "http://127.0.0.1:%d/" % server.server_address[1]
    profiles = tempfile.mkdtemp(prefix="digitnet-chromium-")
    try:
        if args.only is None:
            check_backend(args, profiles)
        for kind in ["mouse", "touch"]:
            if args.only in (None, kind):
                sb.run(kind, args, args.out, profiles)
        if args.only != "file":
            api = [p for p in Handler.asked if p.startswith("/api")]
            sb.check(Handler.asked and not api, "the static server was asked for %d files, none "
                     "under /api/ (%s)" % (len(Handler.asked), api[:3]))
        if args.only in (None, "file"):
            run_file(web, profiles)
    finally:
        server.shutdown()
        shutil.rmtree(profiles, ignore_errors=True)
    laptop = os.path.join(args.out, "page-laptop.png")
    if os.path.exists(laptop) and args.shot:
        shutil.copy(laptop, args.shot)
        print("web_browser: screenshot " + args.shot, flush=True)
    print("web_browser: all passed", flush=True)


if __name__ == "__main__":
    main()
