#!/usr/bin/env node
// ort_run.js - runs an ONNX model in ONNX Runtime (npm onnxruntime-node,
// CPU) on raw float32 inputs and writes its raw float32 outputs, so that
// tests compare them with digitnet's.
//
//   node tools/node/ort_run.js MODEL.onnx INPUT.f32 NxCxHxW OUTPUT.f32
//
// INPUT.f32 holds N samples of shape (C, H, W), already normalised;
// OUTPUT.f32 gets the first output, (N, classes). The N samples go through
// as one batch. Prints one JSON line: the input and
// output names and shapes, and the run's wall time in ms. Exit status 0 on
// success, 1 with a one-line message on stderr otherwise; 3 when
// onnxruntime-node is not installed (scripts/install-node-deps installs
// it), so that a test can tell that apart from a failure.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg, code = 1) {
    process.stderr.write(`ort_run: ${msg}\n`);
    process.exit(code);
}

const [modelPath, inputPath, shapeText, outputPath] = process.argv.slice(2);
if (!outputPath)
    fail('usage: node tools/node/ort_run.js MODEL.onnx INPUT.f32 NxCxHxW OUTPUT.f32', 2);
const shape = shapeText.split('x').map(Number);
if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1))
    fail(`the shape must be NxCxHxW with positive integers, not '${shapeText}'`, 2);

let ort;
try {
    ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
} catch (e) {
    fail(`onnxruntime-node is not installed in ${__dirname}/node_modules ` +
         `(run scripts/install-node-deps): ${e.message.split('\n')[0]}`, 3);
}

async function main() {
    // One thread and no graph rewrites: the plain operators, as written.
    const session = await ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'disabled',
    });
    const bytes = fs.readFileSync(inputPath);
    const count = shape.reduce((a, b) => a * b, 1);
    if (bytes.length !== 4 * count)
        fail(`${inputPath}: ${bytes.length} bytes, expected ${4 * count} (float32 ${shapeText})`);
    // A copy, so that the floats are 4-byte aligned whatever Buffer did.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes);
    const input = new ort.Tensor('float32', data, shape);
    const t0 = process.hrtime.bigint();
    const results = await session.run({ [session.inputNames[0]]: input });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const out = results[session.outputNames[0]];
    const buf = Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength);
    fs.writeFileSync(outputPath, buf);
    console.log(JSON.stringify({
        input: session.inputNames[0], output: session.outputNames[0],
        dims: out.dims, ms: Number(ms.toFixed(3)),
    }));
}

main().catch((e) => fail(`${modelPath}: ${e.message.split('\n')[0]}`));
