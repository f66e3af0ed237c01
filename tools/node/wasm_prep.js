#!/usr/bin/env node
// wasm_prep.js - pictures through the WebAssembly build's preprocessing
// (out/web/digitnet.js, make web), as a page hands it a drawing, so that
// tests compare the 28x28 with the native library's.
//
//   node tools/node/wasm_prep.js WEB_DIR MODEL OUTPUT.f32 PICTURE...
//
// Each PICTURE (PNG, JPEG, BMP ...) goes through model.preprocess(bytes):
// decoding and MNIST-style preprocessing in the library. OUTPUT.f32 gets
// the 784 values (0..1, ink 1) of each, one after the other. Exit status 0
// on success, 1 with a one-line message naming the picture otherwise, 3
// when the build is missing.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg, code = 1) {
    process.stderr.write(`wasm_prep: ${msg}\n`);
    process.exit(code);
}

const [webDir, modelPath, outputPath, ...pictures] = process.argv.slice(2);
if (!pictures.length)
    fail('usage: node tools/node/wasm_prep.js WEB_DIR MODEL OUTPUT.f32 PICTURE...', 2);
const script = path.resolve(webDir, 'digitnet.js');
if (!fs.existsSync(script))
    fail(`${script} is missing (run make web)`, 3);

require(script)().then((dn) => {
    const model = dn.loadModel(fs.readFileSync(modelPath), path.basename(modelPath));
    const out = new Float32Array(pictures.length * 784);
    pictures.forEach((p, i) => {
        try {
            out.set(model.preprocess(fs.readFileSync(p)).input, i * 784);
        } catch (e) {
            fail(`${p}: ${e.message}`);
        }
    });
    fs.writeFileSync(outputPath, Buffer.from(out.buffer));
    model.free();
}).catch((e) => fail(e.message.split('\n')[0]));
