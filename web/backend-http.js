/*
 * backend-http.js - the page's back-end when `digitnet serve` serves it:
 * every answer comes from the HTTP API.
 *
 * The page (app.js) talks to exactly one object, window.digitnetBackend,
 * and draws whatever it answers. Another back-end (the library compiled to
 * WebAssembly, for a static copy of the page: backend-wasm.js) provides
 * the same members with the same answers:
 *
 *   name                  a short label shown in the footer
 *   api                   where the HTTP API is described (only here)
 *   model()               -> Promise of the GET /api/model object
 *   sample(index)         -> Promise of the GET /api/sample object
 *                            (index: a number, or undefined for any digit)
 *   predict(input, opts)  -> Promise of the POST /api/predict object
 *       input: {png: Blob} (an encoded picture, preprocessed as MNIST was)
 *              or {pixels: [784 numbers 0..255]} (already the 28x28)
 *       opts:  {maps, saliency, naive, raw}, each true or false
 *
 * A failure rejects with an Error whose message is the API's "error" and
 * whose status is the HTTP status it would have (422: no digit found).
 */
(function () {
  'use strict';

  async function answer(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const err = new Error(body && body.error ? body.error : 'HTTP ' + response.status);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  function query(opts) {
    const keys = ['maps', 'saliency', 'naive', 'raw'].filter((k) => opts && opts[k]);
    return keys.length ? '?' + keys.map((k) => k + '=1').join('&') : '';
  }

  window.digitnetBackend = {
    name: 'answers from the HTTP API',
    api: 'api/openapi.json',

    model() {
      return fetch('api/model', {cache: 'no-store'}).then(answer);
    },

    sample(index) {
      const q = index === undefined || index === null ? '' : '?index=' + encodeURIComponent(index);
      return fetch('api/sample' + q, {cache: 'no-store'}).then(answer);
    },

    predict(input, opts) {
      const init = {method: 'POST'};
      if (input.png) {
        init.headers = {'Content-Type': 'image/png'};
        init.body = input.png;
      } else {
        init.headers = {'Content-Type': 'application/json'};
        init.body = JSON.stringify({pixels: input.pixels});
      }
      return fetch('api/predict' + query(opts), init).then(answer);
    },
  };
})();
