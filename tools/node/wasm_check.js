// wasm_check.js - what the tests do with digitnet's WebAssembly build, the
// same in node (tools/node/wasm_run.js) and in a browser
// (tools/wasm_browser.py injects this file into the page).
//
// wasmCheck(model, pixels, n, repeat, now): each of the n images of pixels
// (n * 784 bytes, 0..255, ink 255) goes through model.predict(pixels / 255),
// the call a page makes; then one image at a time is predicted repeat times,
// timed with now() (milliseconds). Returns {out: Float32Array (n, classes)
// log-probabilities, median, p99: microseconds of one call}.
(function (root) {
    'use strict';

    function wasmCheck(model, pixels, n, repeat, now) {
        const k = model.classes, out = new Float32Array(n * k), images = [];
        for (let i = 0; i < n; i++)
            images.push(Float32Array.from(pixels.subarray(i * 784, (i + 1) * 784),
                                          (v) => v / 255));
        for (let i = 0; i < n; i++)
            out.set(model.predict(images[i]).log_probabilities, i * k);
        const times = [];
        for (let r = 0; r < repeat; r++) {
            const t0 = now();
            model.predict(images[r % n]);
            times.push((now() - t0) * 1000);
        }
        times.sort((a, b) => a - b);
        return {out, median: times[Math.floor(repeat / 2)],
                p99: times[Math.min(repeat - 1, Math.floor(0.99 * repeat))]};
    }

    if (typeof module === 'object' && module.exports)
        module.exports = wasmCheck;
    else
        root.wasmCheck = wasmCheck;
})(typeof globalThis !== 'undefined' ? globalThis : this);
