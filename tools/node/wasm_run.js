#!/usr/bin/env node
// wasm_run.js - runs digitnet's WebAssembly build (out/web/digitnet.js, from
// `make web`) in node on MNIST-style images, one image per call as a page
// does, and writes the log-probabilities, so that tests compare them with
// the native library's; then times one-image predictions.
//
//   node tools/node/wasm_run.js WEB_DIR MODEL PIXELS.u8 N OUTPUT.f32 [REPEAT]
//
// PIXELS.u8 holds N images of 28x28 bytes (0..255, ink 255), as in MNIST's
// IDX files; each goes through model.predict(pixels / 255), the call the
// page makes. OUTPUT.f32 gets (N, classes) float32. Then the first image is
// predicted REPEAT times (default 1000) and the median and 99th-percentile
// wall time of one call are printed, in one JSON line with the build's
// details. Exit status 0 on success, 1 with a one-line message otherwise,
// 3 when the build is missing.
'use strict';
const fs = require('fs');
const path = require('path');
const wasmCheck = require('./wasm_check.js');

function fail(msg, code = 1) {
    process.stderr.write(`wasm_run: ${msg}\n`);
    process.exit(code);
}

const [webDir, modelPath, pixelsPath, nText, outputPath, repeatText] = process.argv.slice(2);
if (!outputPath)
    fail('usage: node tools/node/wasm_run.js WEB_DIR MODEL PIXELS.u8 N OUTPUT.f32 [REPEAT]', 2);
const n = Number(nText), repeat = Number(repeatText || 1000);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(repeat) || repeat < 1)
    fail('N and REPEAT must be positive integers', 2);
const script = path.resolve(webDir, 'digitnet.js');
if (!fs.existsSync(script))
    fail(`${script} is missing (run make web)`, 3);

async function main() {
    const dn = await require(script)();
    const model = dn.loadModel(fs.readFileSync(modelPath), path.basename(modelPath));
    const pixels = fs.readFileSync(pixelsPath);
    if (pixels.length !== n * 784)
        fail(`${pixelsPath}: ${pixels.length} bytes, expected ${n * 784} (${n} images of 28x28)`);
    const r = wasmCheck(model, pixels, n, repeat,
                        () => Number(process.hrtime.bigint()) / 1e6);
    fs.writeFileSync(outputPath, Buffer.from(r.out.buffer));
    console.log(JSON.stringify({
        images: n, classes: model.classes, spec: model.info.spec, node: process.version,
        predict_us_median: Number(r.median.toFixed(2)),
        predict_us_p99: Number(r.p99.toFixed(2)), repeat,
    }));
    model.free();
}

main().catch((e) => fail(e.message.split('\n')[0]));
