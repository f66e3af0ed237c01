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
// and what `digitnet serve` answers, as the same JSON from the same library
// calls (web/backend-wasm.js runs the server's page on these):
//
//   model.loadTest(imagesFileBytes, labelsFileBytes);  // test images shipped with a page
//   model.about();                 // GET /api/model
//   model.sample(index);           // GET /api/sample?index=N
//   model.explain({picture: pngBytes} or {pixels: [784 values 0..255]},
//                 {maps, saliency, naive, raw});       // POST /api/predict
//
// Every call goes to the library (wasm/dn_wasm.c); a failure throws an
// Error with the library's one-line message, and as its status the HTTP
// status the server would answer (422: no digit in the picture).

var DN_PIXELS = 28 * 28;

function dnError(msg, status) {
    var e = new Error(msg);
    e.status = status;
    return e;
}

function dnCheck(ok) {
    if (!ok)
        throw dnError(UTF8ToString(_dnw_error()), _dnw_error_status());
    return ok;
}

// A string for the duration of f(pointer).
function dnWithString(s, f) {
    var len = lengthBytesUTF8(s) + 1, p = _malloc(len);
    if (!p)
        throw new Error('out of memory for a string');
    try {
        stringToUTF8(s, p, len);
        return f(p);
    } finally {
        _free(p);
    }
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

function DigitnetModel(handle, name) {
    this.handle = handle;
    this.name = name;
    this.info = this.about();
    this.classes = _dnw_classes(handle);
}

// The model as GET /api/model describes it (without the server's
// loaded_at and generation); its test accuracy is on the images of
// loadTest, null before.
DigitnetModel.prototype.about = function () {
    var h = this.handle;
    return JSON.parse(UTF8ToString(dnCheck(dnWithString(this.name, function (np) {
        return _dnw_model_json(h, np);
    }))));
};

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
            var n = L.output[0] * L.output[1] * L.output[2];
            return {name: L.name, shape: L.output, data: dnFloats(_dnw_act(h, l), n)};
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

// One prediction explained, the POST /api/predict answer: input is
// {picture: bytes of a PNG, JPEG ...} or {pixels: 784 numbers 0..255};
// opts {maps, saliency, naive, raw} as the query's flags.
DigitnetModel.prototype.explain = function (input, opts) {
    var h = this.handle, o = opts || {};
    var flags = [o.maps ? 1 : 0, o.saliency ? 1 : 0, o.naive ? 1 : 0, o.raw ? 1 : 0];
    var s;
    if (input.picture) {
        s = dnWithBytes(input.picture, function (p) {
            return dnCheck(_dnw_explain.apply(null, [h, p, input.picture.length].concat(flags)));
        });
    } else {
        var px = input.pixels;
        if (!px || px.length !== DN_PIXELS)
            throw dnError('"pixels" must be an array of ' + DN_PIXELS +
                          ' numbers 0..255 (28x28, rows top to bottom)', 400);
        var x = new Float32Array(DN_PIXELS);
        for (var i = 0; i < DN_PIXELS; i++) {
            if (typeof px[i] != 'number' || !(px[i] >= 0 && px[i] <= 255))
                throw dnError('"pixels"[' + i + '] must be a number 0..255', 400);
            x[i] = px[i] / 255;
        }
        HEAPF32.set(x, _dnw_input(h) >> 2);
        s = dnCheck(_dnw_explain.apply(null, [h, 0, 0].concat(flags)));
    }
    return JSON.parse(UTF8ToString(s));
};

// The test images shipped with a page: the bytes of the dataset's two
// test files (IDX, plain or gzip), read by the library and scored (about()
// then gives the accuracy on them). Returns how many images there are.
DigitnetModel.prototype.loadTest = function (images, labels) {
    var h = this.handle;
    return dnCheck(dnWithBytes(images, function (ip) {
        return dnWithBytes(labels, function (lp) {
            return _dnw_load_test(h, ip, images.length, lp, labels.length) + 1;
        });
    })) - 1;
};

// Test image index of loadTest's, as GET /api/sample?index=N answers.
DigitnetModel.prototype.sample = function (index) {
    return JSON.parse(UTF8ToString(dnCheck(_dnw_sample(this.handle, index))));
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
    return new DigitnetModel(dnCheck(dnWithString(name, function (np) {
        return dnWithBytes(bytes, function (p) {
            return _dnw_load(p, bytes.length, np);
        });
    })), name);
};
