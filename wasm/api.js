// api.js - the JavaScript face of digitnet.wasm, appended by emcc
// (--post-js) inside the module factory of digitnet.js.
//
//   const dn = await createDigitnet();                 // node: require('./digitnet.js')()
//   const model = dn.loadModel(bytesOfSafetensors, 'model.safetensors');
//   const seen = model.preprocess(pngBytes);           // {input, info}: the 28x28 it sees
//   const out = model.predict(seen.input, {maps: true});
//   // out.log_probabilities, out.probabilities, out.prediction, out.maps
//   model.free();
//
// Every call goes to the library (wasm/dn_wasm.c); a failure throws an
// Error with the library's one-line message.

var DN_PIXELS = 28 * 28;

function dnCheck(ok) {
    if (!ok)
        throw new Error(UTF8ToString(_dnw_error()));
    return ok;
}

// Copies bytes into the module's memory for the duration of f(pointer).
function dnWithBytes(bytes, f) {
    var p = _malloc(Math.max(1, bytes.length));
    if (!p)
        throw new Error('out of memory for ' + bytes.length + ' bytes');
    try {
        HEAPU8.set(bytes, p);
        return f(p);
    } finally {
        _free(p);
    }
}

function dnFloats(ptr, n) {
    return new Float32Array(HEAPF32.buffer, ptr, n).slice();
}

function DigitnetModel(handle) {
    this.handle = handle;
    this.info = JSON.parse(UTF8ToString(_dnw_model_json(handle)));
    this.classes = _dnw_classes(handle);
}

// pixels: 784 values in 0..1, ink 1 (what preprocess returns, or an MNIST
// image / 255). opts.maps: also every layer's output, for pictures.
DigitnetModel.prototype.predict = function (pixels, opts) {
    var h = this.handle, maps = !!(opts && opts.maps);
    if (pixels.length !== DN_PIXELS)
        throw new Error('predict wants ' + DN_PIXELS + ' pixels, not ' + pixels.length);
    HEAPF32.set(pixels, _dnw_input(h) >> 2);
    var lp = dnFloats(dnCheck(_dnw_forward(h, maps ? 1 : 0)), this.classes);
    var out = {log_probabilities: Array.from(lp)};
    var best = 0;
    for (var c = 1; c < lp.length; c++)
        if (lp[c] > lp[best])
            best = c;
    out.prediction = best;
    out.probabilities = out.log_probabilities.map(Math.exp);
    if (maps) {
        out.maps = this.info.layers.map(function (L, l) {
            var n = L.shape[0] * L.shape[1] * L.shape[2];
            return {name: L.name, kind: L.kind, shape: L.shape,
                    data: dnFloats(_dnw_act(h, l), n)};
        });
    }
    return out;
};

// The log-probabilities of n normalised images x (n * 784 floats) run as
// one batch: a Float32Array of n * classes.
DigitnetModel.prototype.forwardBatch = function (x, n) {
    var p = dnCheck(_dnw_batch_input(this.handle, n));
    HEAPF32.set(x.subarray(0, n * DN_PIXELS), p >> 2);
    return dnFloats(dnCheck(_dnw_forward_batch(this.handle, n)), n * this.classes);
};

// A picture file's bytes (PNG, JPEG, ...) as the network sees it: MNIST-
// style preprocessing, or with opts.raw only a resize to 28x28.
DigitnetModel.prototype.preprocess = function (bytes, opts) {
    var h = this.handle, raw = !!(opts && opts.raw);
    dnWithBytes(bytes, function (p) {
        dnCheck(_dnw_preprocess(h, p, bytes.length, raw ? 1 : 0) === 0);
    });
    return {input: dnFloats(_dnw_input(h), DN_PIXELS),
            info: raw ? null : JSON.parse(UTF8ToString(_dnw_prep_json(h)))};
};

DigitnetModel.prototype.free = function () {
    if (this.handle)
        _dnw_free(this.handle);
    this.handle = 0;
};

// bytes: a model file (safetensors, as digitnet train writes); name is
// used in messages.
Module['loadModel'] = function (bytes, name) {
    name = name || 'model.safetensors';
    var len = lengthBytesUTF8(name) + 1, np = _malloc(len);
    stringToUTF8(name, np, len);
    try {
        return new DigitnetModel(dnCheck(dnWithBytes(bytes, function (p) {
            return _dnw_load(p, bytes.length, np);
        })));
    } finally {
        _free(np);
    }
};
