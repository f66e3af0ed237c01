// pre.js - runs first inside the module factory that emcc writes
// (digitnet.js), before the WebAssembly is fetched.
//
// In node the .wasm is read from the file beside this script: emscripten
// 3.1.6 would fetch() it by path, which node's fetch refuses. In a browser
// on a file:// page fetch() refuses too; there the page may load
// digitnet-wasm.js first, which holds the same bytes as base64.
if (!Module['wasmBinary']) {
    if (typeof process == 'object' && process.versions && process.versions.node) {
        Module['wasmBinary'] = require('fs').readFileSync(
            require('path').join(__dirname, 'digitnet.wasm'));
    } else if (typeof DIGITNET_WASM_BASE64 == 'string') {
        var bin = atob(DIGITNET_WASM_BASE64), bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++)
            bytes[i] = bin.charCodeAt(i);
        Module['wasmBinary'] = bytes;
    }
}
