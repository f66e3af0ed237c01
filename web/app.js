/*
 * app.js - the page: a canvas to draw on, and everything the network
 * answers drawn live. It knows nothing of HTTP: every number comes from
 * window.digitnetBackend (see backend-http.js for the contract), so the
 * same page runs on `digitnet serve` or on the library compiled to
 * WebAssembly.
 *
 * window.digitnetPage exposes the state for tests: the last answer, how
 * many predictions were drawn, and idle() (nothing pending).
 */
(function () {
  'use strict';

  const backend = window.digitnetBackend;
  const $ = (id) => document.getElementById(id);
  const SIDE = 28;
  const PREDICT_EVERY_MS = 50;
  const OPTS = {maps: true, saliency: true, naive: true};

  const page = (window.digitnetPage = {
    model: null,
    answer: null,
    predictions: 0,
    errors: 0,
    lastError: null,
    idle: () => !inflight && !dirty && !timer,
  });

  /* ---------------------------------------------------------------------- */
  /* Colour maps, as src/picture.c draws them for `digitnet show`           */
  /* ---------------------------------------------------------------------- */

  const VIRIDIS = [0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21908c, 0x27ad81, 0x5dc863, 0xaadc32, 0xfde725];
  const RDBU = [0x2166ac, 0x67a9cf, 0xd1e5f0, 0xf7f7f7, 0xfddbc7, 0xef8a62, 0xb2182b];

  function lerpTable(tab, t) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const u = t * (tab.length - 1);
    const i = Math.min(Math.floor(u), tab.length - 2);
    const f = u - i;
    const a = tab[i], b = tab[i + 1];
    const out = [0, 0, 0];
    for (let k = 0; k < 3; k++) {
      const sh = 16 - 8 * k;
      const ca = (a >> sh) & 255, cb = (b >> sh) & 255;
      out[k] = Math.round(ca + (cb - ca) * f);
    }
    return out;
  }

  /* Sequential from 0 when nothing is negative (ReLU outputs), otherwise
   * diverging and symmetric about 0, as `digitnet show` picks. */
  function pickScale(lo, hi) {
    if (!(lo <= hi)) lo = hi = 0;
    if (lo >= 0) return {lo: 0, hi: hi > 0 ? hi : 1, table: VIRIDIS};
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    return {lo: -m, hi: m, table: RDBU};
  }

  function gradientCss(table) {
    const stops = [];
    for (let i = 0; i <= 8; i++) {
      const c = lerpTable(table, i / 8);
      stops.push('rgb(' + c.join(',') + ')');
    }
    return 'linear-gradient(to right,' + stops.join(',') + ')';
  }

  function fmt(v, digits) {
    if (!isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 10000)) return v.toExponential(1);
    return v.toFixed(digits);
  }

  /* ---------------------------------------------------------------------- */
  /* Drawing                                                                */
  /* ---------------------------------------------------------------------- */

  const pad = $('pad');
  const ctx = pad.getContext('2d');
  const brush = $('brush');
  let strokes = []; /* {kind: 'line', size, pts: [[x, y], ...]} or {kind: 'image', src} */
  let current = null;
  let sampleInfo = null; /* the test digit on the canvas, while it is alone there */

  function paper() {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, pad.width, pad.height);
  }

  function lineStyle(size) {
    ctx.strokeStyle = '#111';
    ctx.fillStyle = '#111';
    ctx.lineWidth = size;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
  }

  function dot(p, size) {
    lineStyle(size);
    ctx.beginPath();
    ctx.arc(p[0], p[1], size / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function segment(a, b, size) {
    lineStyle(size);
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  }

  function drawStroke(s) {
    if (s.kind === 'image') {
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(s.src, 0, 0, pad.width, pad.height);
      return;
    }
    dot(s.pts[0], s.size);
    for (let i = 1; i < s.pts.length; i++) segment(s.pts[i - 1], s.pts[i], s.size);
  }

  function redraw() {
    paper();
    strokes.forEach(drawStroke);
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    const x = (e.clientX - r.left - pad.clientLeft) * (pad.width / pad.clientWidth);
    const y = (e.clientY - r.top - pad.clientTop) * (pad.height / pad.clientHeight);
    return [x, y];
  }

  function changed() {
    const empty = strokes.length === 0;
    $('undo').disabled = empty;
    $('clear').disabled = empty;
    $('download').disabled = empty;
    $('pad-hint').classList.toggle('hidden', !empty);
    if (!(strokes.length === 1 && strokes[0].kind === 'image')) {
      sampleInfo = null;
      $('sample-note').innerHTML = '&nbsp;';
    }
    schedule();
  }

  pad.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    current = {kind: 'line', size: Number(brush.value), pts: [point(e)], id: e.pointerId};
    strokes.push(current);
    dot(current.pts[0], current.size);
    changed();
  });

  pad.addEventListener('pointermove', (e) => {
    if (!current || e.pointerId !== current.id) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      const last = current.pts[current.pts.length - 1];
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) < 0.5) continue;
      current.pts.push(p);
      segment(last, p, current.size);
    }
    schedule();
  });

  function endStroke(e) {
    if (!current || e.pointerId !== current.id) return;
    current = null;
    /* At least one prediction per stroke, with the stroke complete. */
    schedule();
  }
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  /* A long press must not open a menu over the drawing. */
  pad.addEventListener('contextmenu', (e) => e.preventDefault());

  brush.addEventListener('input', () => {
    $('brush-out').textContent = brush.value;
  });

  function undo() {
    if (!strokes.length) return;
    strokes.pop();
    current = null;
    redraw();
    changed();
  }
  $('undo').addEventListener('click', undo);
  $('clear').addEventListener('click', () => {
    strokes = [];
    current = null;
    redraw();
    changed();
  });
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'z') {
      e.preventDefault();
      undo();
    }
  });

  $('download').addEventListener('click', () => {
    pad.toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'digit.png';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }, 'image/png');
  });

  /* A test digit from the dataset, drawn into the canvas as dark ink on
   * white like a drawing, so it goes through the same preprocessing. */
  $('sample').addEventListener('click', () => {
    backend.sample().then((s) => {
      const c = document.createElement('canvas');
      c.width = c.height = SIDE;
      const cc = c.getContext('2d');
      const img = cc.createImageData(SIDE, SIDE);
      for (let i = 0; i < SIDE * SIDE; i++) {
        const v = 255 - s.pixels[i];
        img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
        img.data[4 * i + 3] = 255;
      }
      cc.putImageData(img, 0, 0);
      strokes = [{kind: 'image', src: c}];
      current = null;
      redraw();
      changed();
      sampleInfo = s;
      noteSample();
    }, (err) => {
      $('sample-note').textContent = err.message;
    });
  });

  function noteSample() {
    if (!sampleInfo) return;
    let t = 'MNIST test #' + sampleInfo.index + ', true label ' + sampleInfo.label;
    const a = page.answer;
    if (a && page.answerFor === strokesVersion) t += a.prediction === sampleInfo.label ? ': right' : ': wrong';
    $('sample-note').textContent = t;
  }

  /* ---------------------------------------------------------------------- */
  /* Asking the back-end, at most every PREDICT_EVERY_MS, one at a time     */
  /* ---------------------------------------------------------------------- */

  let dirty = false, inflight = false, timer = null, lastStart = 0, strokesVersion = 0;

  function schedule() {
    dirty = true;
    strokesVersion++;
    if (inflight || timer) return;
    const wait = Math.max(0, PREDICT_EVERY_MS - (performance.now() - lastStart));
    timer = setTimeout(run, wait);
  }

  function toBlob() {
    return new Promise((resolve) => pad.toBlob(resolve, 'image/png'));
  }

  async function run() {
    timer = null;
    if (!dirty || inflight) return;
    dirty = false;
    const version = strokesVersion;
    if (!strokes.length) {
      showEmpty();
      return;
    }
    inflight = true;
    lastStart = performance.now();
    try {
      const blob = await toBlob();
      const a = await backend.predict({png: blob}, OPTS);
      page.answer = a;
      page.answerFor = version;
      page.predictions++;
      page.lastError = null;
      if (strokes.length) render(a);
    } catch (err) {
      page.errors++;
      page.lastError = err.message;
      showError(err);
    } finally {
      inflight = false;
      if (dirty) schedule();
    }
  }

  /* ---------------------------------------------------------------------- */
  /* Rendering an answer                                                    */
  /* ---------------------------------------------------------------------- */

  const barRows = [];
  function buildBars(names) {
    const bars = $('bars');
    bars.innerHTML = '';
    barRows.length = 0;
    names.forEach((name, c) => {
      const row = {};
      row.lbl = document.createElement('div');
      row.lbl.className = 'lbl';
      row.lbl.textContent = c;
      row.lbl.title = name;
      row.track = document.createElement('div');
      row.track.className = 'track';
      row.fill = document.createElement('div');
      row.fill.className = 'fill';
      row.track.appendChild(row.fill);
      row.pct = document.createElement('div');
      row.pct.className = 'pct';
      row.pct.textContent = '';
      bars.append(row.lbl, row.track, row.pct);
      barRows.push(row);
    });
  }

  const logpCells = [];
  function buildLogp(k) {
    const body = $('logp').tBodies[0];
    body.innerHTML = '';
    logpCells.length = 0;
    const rows = Math.ceil(k / 2);
    for (let r = 0; r < rows; r++) {
      const tr = document.createElement('tr');
      for (let col = 0; col < 2; col++) {
        const c = r + col * rows;
        const td = document.createElement('td');
        if (c < k) logpCells[c] = td;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    fillLogp(null);
  }

  /* "%.4f" and right-aligned as `digitnet predict` prints: "3:   0.0000". */
  function fillLogp(lp, best) {
    const k = logpCells.length;
    const vals = [];
    for (let c = 0; c < k; c++) {
      let v = lp ? lp[c].toFixed(4) : '-';
      if (v === '-0.0000') v = '0.0000';
      vals.push(v);
    }
    const width = Math.max(...vals.map((v) => v.length), 8);
    for (let c = 0; c < k; c++) {
      logpCells[c].textContent = c + ': ' + vals[c].padStart(width);
      logpCells[c].className = lp && c === best ? 'best' : '';
    }
  }

  function put28(canvas, values, color) {
    const cc = canvas.getContext('2d');
    const img = cc.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const rgb = color(values ? values[i] : 0, i);
      img.data[4 * i] = rgb[0];
      img.data[4 * i + 1] = rgb[1];
      img.data[4 * i + 2] = rgb[2];
      img.data[4 * i + 3] = 255;
    }
    cc.putImageData(img, 0, 0);
  }
  const grey = (v) => [v, v, v];

  function render(a) {
    const best = a.prediction;
    const digit = $('digit');
    digit.textContent = a.unsure ? '?' : String(best);
    digit.className = 'digit' + (a.unsure ? ' unsure' : '');
    $('prob').textContent = a.unsure
      ? 'best guess ' + best + ' (' + (100 * a.probability).toFixed(1) + ' %)'
      : (100 * a.probability).toFixed(1) + ' % sure';
    const status = $('status');
    status.textContent = a.unsure ? 'unsure: ' + a.unsure_reason : 'a confident answer';
    status.className = 'status ' + (a.unsure ? 'unsure' : 'sure');

    a.probabilities.forEach((p, c) => {
      const row = barRows[c];
      if (!row) return;
      row.fill.style.width = (100 * p).toFixed(2) + '%';
      row.pct.textContent = (100 * p).toFixed(1) + ' %';
    });
    fillBarsBest(best, a.unsure);
    fillLogp(a.log_probabilities, best);

    put28($('seen'), a.input, grey);
    const p = a.preprocess;
    $('seen-note').textContent = p
      ? 'ink ' + p.box[2] + '×' + p.box[3] + ' px, ×' + fmt(p.scale, 3) + (p.inverted ? ', inverted' : '')
      : 'taken as it is';
    if (a.naive) {
      put28($('naive'), a.naive.input, grey);
      const same = a.naive.prediction === best;
      $('naive-note').textContent = 'would be read as ' + a.naive.prediction + ' (' +
        (100 * a.naive.probability).toFixed(0) + ' %)' + (same ? '' : ', not ' + best);
    } else {
      put28($('naive'), null, grey);
      $('naive-note').textContent = 'only for pictures';
    }
    renderHeat(a);
    renderMaps(a);
    noteSample();
  }

  function fillBarsBest(best, unsure) {
    barRows.forEach((row, c) => {
      const on = c === best;
      for (const el of [row.lbl, row.track, row.pct]) {
        el.classList.toggle('best', on);
        el.classList.toggle('unsure', on && unsure);
      }
    });
  }

  function renderHeat(a) {
    const s = a.saliency;
    if (!s) {
      put28($('heat'), null, grey);
      return;
    }
    const m = Math.max(Math.abs(s.min), Math.abs(s.max)) || 1;
    put28($('heat'), s.values, (v, i) => {
      const base = 0.35 * a.input[i];
      const t = Math.pow(Math.min(1, Math.abs(v) / m), 0.7);
      const tint = v > 0 ? [214, 39, 40] : [33, 102, 172];
      return [0, 1, 2].map((k) => Math.round(base * (1 - t) + tint[k] * t));
    });
    $('heat-note').textContent = 'for ' + s.class + '; strongest ' + fmt(m, 2) + ' nats';
  }

  function showEmpty() {
    page.answer = null;
    const digit = $('digit');
    digit.textContent = '–';
    digit.className = 'digit empty';
    $('prob').textContent = ' ';
    $('status').textContent = 'draw a digit to start';
    $('status').className = 'status muted';
    barRows.forEach((row) => {
      row.fill.style.width = '0';
      row.pct.textContent = '';
    });
    fillBarsBest(-1, false);
    fillLogp(null);
    for (const id of ['seen', 'naive', 'heat']) put28($(id), null, grey);
    for (const id of ['seen-note', 'naive-note', 'heat-note']) $(id).textContent = ' ';
    renderMaps(null);
  }

  function showError(err) {
    const status = $('status');
    status.className = 'status error';
    status.textContent = err.status === 422 ? 'no digit found: ' + err.message.replace(/^body: /, '')
      : 'the back-end failed: ' + err.message;
    const digit = $('digit');
    digit.textContent = '–';
    digit.className = 'digit empty';
    $('prob').textContent = ' ';
  }

  /* ---------------------------------------------------------------------- */
  /* Inside the network: every stage's maps, laid out once per model        */
  /* ---------------------------------------------------------------------- */

  let stageUI = [];

  function shapeText(s) {
    return s[1] === 1 && s[2] === 1 ? String(s[0]) : s.join('x');
  }

  function buildStages(model) {
    const box = $('stages');
    box.innerHTML = '';
    $('flow').textContent = 'dimensionality throughout: ' + model.stages.map((s) => shapeText(s.shape)).join(' → ');
    stageUI = model.stages.map((st) => {
      const [c, h, w] = st.shape;
      const el = document.createElement('div');
      el.className = 'stage';
      const title = document.createElement('h3');
      title.textContent = st.name;
      const shape = document.createElement('p');
      shape.className = 'shape';
      shape.textContent = shapeText(st.shape);
      const maps = document.createElement('div');
      maps.className = 'maps';
      const ui = {stage: st, canvases: [], el};
      if (h > 1 || w > 1) {
        /* A grid of c maps, each about 56 px across. */
        const scale = Math.max(1, Math.round(56 / Math.max(h, w)));
        const cols = Math.min(c, 8);
        /* Up to 8 to a row, fewer where the screen is narrow. */
        maps.style.gridTemplateColumns = 'repeat(auto-fill, ' + w * scale + 'px)';
        maps.style.width = cols * w * scale + (cols - 1) * 4 + 'px';
        maps.style.maxWidth = '100%';
        ui.kind = 'maps';
        for (let k = 0; k < c; k++) {
          const cell = document.createElement('div');
          cell.className = 'map';
          const cv = document.createElement('canvas');
          cv.width = w;
          cv.height = h;
          cv.style.width = w * scale + 'px';
          cv.style.height = h * scale + 'px';
          const idx = document.createElement('span');
          idx.textContent = k;
          cell.append(cv, idx);
          maps.appendChild(cell);
          ui.canvases.push(cv);
        }
        ui.h = h;
        ui.w = w;
      } else {
        /* A vector: flatten as one row per map it came from, the others
         * as one strip. */
        const layer = st.layer !== null ? model.layers[st.layer] : null;
        let rows = 1, cols = c;
        if (st.name === 'flatten' && layer && layer.input[1] * layer.input[2] > 1) {
          rows = layer.input[0];
          cols = layer.input[1] * layer.input[2];
        }
        const scale = Math.max(2, Math.min(8, Math.floor(256 / cols)));
        const cv = document.createElement('canvas');
        cv.width = cols;
        cv.height = rows;
        cv.style.width = cols * scale + 'px';
        cv.style.height = rows * scale * (rows === 1 ? 3 : 1) + 'px';
        const cell = document.createElement('div');
        cell.className = 'map';
        cell.appendChild(cv);
        maps.appendChild(cell);
        ui.kind = 'vector';
        ui.canvases.push(cv);
        ui.h = rows;
        ui.w = cols;
      }
      const scale = document.createElement('div');
      scale.className = 'scale';
      ui.lo = document.createElement('b');
      ui.bar = document.createElement('i');
      ui.hi = document.createElement('b');
      scale.append(ui.lo, ui.bar, ui.hi);
      el.append(title, shape, maps, scale);
      box.appendChild(el);
      return ui;
    });
    renderMaps(null);
  }

  function renderMaps(a) {
    stageUI.forEach((ui, s) => {
      const m = a && a.maps ? a.maps[s] : null;
      const sc = pickScale(m ? m.min : 0, m ? m.max : 0);
      const n = ui.h * ui.w;
      ui.canvases.forEach((cv, k) => {
        const cc = cv.getContext('2d');
        const img = cc.createImageData(ui.w, ui.h);
        for (let i = 0; i < n; i++) {
          const rgb = m ? lerpTable(sc.table, (m.values[k * n + i] - sc.lo) / (sc.hi - sc.lo)) : [238, 240, 244];
          img.data[4 * i] = rgb[0];
          img.data[4 * i + 1] = rgb[1];
          img.data[4 * i + 2] = rgb[2];
          img.data[4 * i + 3] = 255;
        }
        cc.putImageData(img, 0, 0);
      });
      ui.lo.textContent = m ? fmt(sc.lo, 2) : '';
      ui.hi.textContent = m ? fmt(sc.hi, 2) : '';
      ui.bar.style.background = m ? gradientCss(sc.table) : '#eef0f4';
    });
  }

  /* ---------------------------------------------------------------------- */
  /* The model panel                                                        */
  /* ---------------------------------------------------------------------- */

  function num(n) {
    return Number(n).toLocaleString('en-US');
  }

  function showModel(m) {
    page.model = m;
    const acc = m.test
      ? (100 * m.test.accuracy).toFixed(2) + ' ± ' + (100 * m.test.standard_error).toFixed(2) + ' % on ' +
        num(m.test.images) + ' ' + m.dataset + ' test images'
      : 'unknown (no test set where the server looked)';
    $('model-line').textContent = m.file + ' · ' + num(m.parameters) + ' parameters · test accuracy ' +
      (m.test ? (100 * m.test.accuracy).toFixed(2) + ' %' : 'unknown');
    const facts = [
      ['file', m.file],
      ['spec', m.spec],
      ['parameters', num(m.parameters) + ' (' + num(m.macs) + ' multiply-adds per image)'],
      ['input', shapeText(m.input) + ', normalised (x/255 − ' + fmt(m.mean, 4) + ') / ' + fmt(m.std, 4)],
      ['test accuracy', acc],
      ['trained', m.provenance || 'the file does not say'],
      ['loaded', m.loaded_at + ' (generation ' + m.generation + ')'],
    ];
    const dl = $('model-facts');
    dl.innerHTML = '';
    for (const [k, v] of facts) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      if (k === 'spec') {
        const code = document.createElement('code');
        code.textContent = v;
        dd.appendChild(code);
      } else {
        dd.textContent = v;
      }
      dl.append(dt, dd);
    }
    const body = $('layers').tBodies[0];
    body.innerHTML = '';
    const input = document.createElement('tr');
    input.innerHTML = '<td></td><td>input</td><td class="spec"></td><td></td><td class="num"></td><td class="num"></td>';
    input.children[3].textContent = shapeText(m.input);
    body.appendChild(input);
    m.layers.forEach((L, i) => {
      const tr = document.createElement('tr');
      const cells = [i + 1, L.name, L.spec, shapeText(L.output), num(L.parameters), num(L.macs)];
      cells.forEach((v, j) => {
        const td = document.createElement('td');
        td.textContent = v;
        if (j === 2) td.className = 'spec';
        if (j >= 4) td.className = 'num';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    buildBars(m.class_names);
    buildLogp(m.classes);
    buildStages(m);
    showEmpty();
  }

  $('backend-name').textContent = backend.name;
  $('api-link').hidden = !backend.api;
  paper();
  showEmpty();
  backend.model().then(showModel, (err) => {
    $('model-line').textContent = 'no model: ' + err.message;
  });
})();
