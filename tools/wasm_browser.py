#!/usr/bin/python3
"""wasm_browser.py - runs digitnet's WebAssembly build (out/web, from `make
web`) in headless Chromium, driven by Debian's chromedriver through
python3-selenium, on MNIST-style images; writes the log-probabilities for a
test to compare with the native library's, and times one-image predictions.

    /usr/bin/python3 tools/wasm_browser.py WEB_DIR MODEL PIXELS.u8 N OUTPUT.f32
        [--repeat 1000] [--file]

The build is served from WEB_DIR by a static file server on 127.0.0.1 (a
free port), as any static host would serve it; with --file the page is
opened from file:// instead, where the browser will not fetch() the .wasm
or the model, so digitnet-wasm.js supplies the WebAssembly and the model
bytes are handed in. PIXELS.u8 holds N images of 28x28 bytes; each goes
through model.predict(pixels / 255), the call a page makes. OUTPUT.f32 gets
(N, classes) float32. Then one image is predicted --repeat times and one
JSON line gives the median and 99th percentile of one call (performance.now
in the page, whose steps are 5 us when served, with the cross-origin
isolation headers the server sends, and 100 us from file://), the browser's
version and how the page was loaded.
Exit status 0 on success, 1 with a one-line message otherwise, 3 when
Chromium, chromedriver or selenium is missing.
"""
import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import struct
import sys
import tempfile
import threading

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")

# Runs in the page after tools/node/wasm_check.js: loads the build and the
# model, then wasmCheck predicts every image one call at a time and times
# one-image predictions. The last argument is selenium's callback.
PAGE_SCRIPT = r"""
const [fromFile, modelB64, pixelsB64, n, repeat, done] = arguments;
function bytes(b64) {
    const s = atob(b64), a = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
}
function script(src) {
    return new Promise((ok, bad) => {
        const el = document.createElement('script');
        el.src = src; el.onload = ok;
        el.onerror = () => bad(new Error('cannot load ' + src));
        document.head.appendChild(el);
    });
}
(async () => {
    if (fromFile) await script('digitnet-wasm.js');
    await script('digitnet.js');
    const dn = await createDigitnet();
    const model = dn.loadModel(fromFile ? bytes(modelB64)
        : new Uint8Array(await (await fetch('model.safetensors')).arrayBuffer()));
    const r = wasmCheck(model, bytes(pixelsB64), n, repeat, () => performance.now());
    let s = '';
    const u8 = new Uint8Array(r.out.buffer);
    for (let i = 0; i < u8.length; i += 8192)
        s += String.fromCharCode.apply(null, u8.subarray(i, i + 8192));
    done({ok: true, classes: model.classes, out: btoa(s),
          isolated: !!self.crossOriginIsolated, median: r.median, p99: r.p99});
})().catch((e) => done({ok: false, error: String(e && e.message || e)}));
"""


def fail(msg, code=1):
    print(f"wasm_browser: {msg}", file=sys.stderr)
    sys.exit(code)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def end_headers(self):
        # Cross-origin isolation: without it the page's clock ticks in
        # 100 us steps, too coarse to time one prediction.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


def start_server(root):
    handler = functools.partial(QuietHandler, directory=root)
    QuietHandler.extensions_map = dict(QuietHandler.extensions_map,
                                       **{".wasm": "application/wasm"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser(profile):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        fail("python3-selenium is missing (scripts/install-deps installs it)", 3)
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            fail(f"{tool} is missing (scripts/install-deps installs chromium and "
                 "chromium-driver)", 3)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--allow-file-access-from-files")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("web_dir")
    ap.add_argument("model")
    ap.add_argument("pixels")
    ap.add_argument("n", type=int)
    ap.add_argument("output")
    ap.add_argument("--repeat", type=int, default=1000)
    ap.add_argument("--file", action="store_true", help="open the page from file://")
    a = ap.parse_args()
    web = os.path.abspath(a.web_dir)
    if not os.path.isfile(os.path.join(web, "digitnet.js")):
        fail(f"{web}/digitnet.js is missing (run make web)", 3)
    with open(a.pixels, "rb") as f:
        pixels = f.read()
    if len(pixels) != a.n * 784:
        fail(f"{a.pixels}: {len(pixels)} bytes, expected {a.n * 784}")
    with open(a.model, "rb") as f:
        model = f.read()

    profile = tempfile.mkdtemp(prefix="dn-chromium-")
    server = None
    driver = None
    try:
        driver = browser(profile)
        driver.set_script_timeout(300)
        if a.file:
            # A page of the build's own directory, so that its scripts load
            # by relative name from file://.
            driver.get("file://" + web + "/")
        else:
            server = start_server(web)
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "node",
                               "wasm_check.js")) as f:
            driver.execute_script(f.read())
        r = driver.execute_async_script(
            PAGE_SCRIPT, a.file, base64.b64encode(model).decode() if a.file else "",
            base64.b64encode(pixels).decode(), a.n, a.repeat)
        version = driver.capabilities.get("browserVersion", "?")
    except Exception as e:  # the driver's errors are long; one line is enough
        fail(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
    finally:
        if driver:
            driver.quit()
        if server:
            server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    if not r.get("ok"):
        fail(f"in the page: {r.get('error')}")
    out = base64.b64decode(r["out"])
    if len(out) != a.n * r["classes"] * 4:
        fail(f"the page gave {len(out)} bytes of results")
    with open(a.output, "wb") as f:
        f.write(out)
    print(json.dumps({"browser": f"Chromium {version}", "loaded_from": "file" if a.file else "http",
                      "images": a.n, "repeat": a.repeat,
                      "predict_us_median": round(r["median"], 1),
                      "predict_us_p99": round(r["p99"], 1),
                      # the page's clock: 5 us steps when cross-origin isolated, else 100
                      "clock_us": 5 if r["isolated"] else 100}))


if __name__ == "__main__":
    main()
