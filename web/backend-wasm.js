/*
 * backend-wasm.js - the page's back-end in the static build (`make web`,
 * out/web/): every answer comes from the library compiled to WebAssembly
 * (digitnet.js + digitnet.wasm) and run in this browser, no server.
 *
 * The same members as backend-http.js (read its contract), with the same
 * answers: the library writes the same JSON for both (dn_explanation_json,
 * dn_model_json through wasm/dn_wasm.c and wasm/api.js). What only a
 * server has is filled in here: the model's loaded_at and generation (when
 * this page loaded it), and the test set, which is the 1,000 MNIST test
 * images shipped beside the page.
 *
 * Served over HTTP the files are fetched. Opened from file://, where
 * browsers fetch nothing, the same bytes come from two scripts instead:
 * digitnet-wasm.js (the WebAssembly) and digitnet-files.js (the model and
 * the test images, as base64).
 */
(function () {
  'use strict';

  const MODEL = 'model.safetensors';
  const TEST = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
  const fromFile = location.protocol === 'file:';

  function script(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = src;
      el.onload = resolve;
      el.onerror = () => reject(new Error('cannot load ' + src));
      document.head.appendChild(el);
    });
  }

  function base64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function bytes(name) {
    if (fromFile) {
      const s = window.DIGITNET_FILES && window.DIGITNET_FILES[name];
      if (!s) throw new Error(name + ' is not in digitnet-files.js');
      return base64(s);
    }
    const r = await fetch(name);
    if (!r.ok) throw new Error(name + ': HTTP ' + r.status);
    return new Uint8Array(await r.arrayBuffer());
  }

  /* The module, the model and (when they load) the test images, once. */
  const ready = (async () => {
    if (fromFile) await Promise.all([script('digitnet-wasm.js'), script('digitnet-files.js')]);
    await script('digitnet.js');
    const dn = await createDigitnet();
    const model = dn.loadModel(await bytes(MODEL), MODEL);
    let testNote = null;
    try {
      const [images, labels] = await Promise.all(TEST.map(bytes));
      model.loadTest(images, labels);
    } catch (e) {
      testNote = 'no test images: ' + e.message;
    }
    const about = Object.assign({loaded_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
                                 generation: 1}, model.about());
    return {model, about, testNote};
  })();

  /* The library throws synchronously; the contract is promises. */
  async function call(f) {
    const s = await ready;
    return f(s);
  }

  window.digitnetBackend = {
    name: 'answers from the library compiled to WebAssembly, in this browser',

    model() {
      return call((s) => s.about);
    },

    sample(index) {
      return call((s) => {
        if (s.testNote) {
          const err = new Error(s.testNote);
          err.status = 404;
          throw err;
        }
        const n = s.about.test.images;
        return s.model.sample(index === undefined || index === null ? Math.floor(Math.random() * n) : index);
      });
    },

    async predict(input, opts) {
      const picture = input.png ? new Uint8Array(await input.png.arrayBuffer()) : null;
      return call((s) => s.model.explain(picture ? {picture} : {pixels: input.pixels}, opts));
    },
  };
})();
