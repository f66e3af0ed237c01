#!/usr/bin/python3
"""serve_flask.py - what a PyTorch user would deploy instead of `digitnet
serve`: a Flask app that answers POST /api/predict with the lecture's
CNN_MNIST in PyTorch, for the side-by-side serving benchmark (scripts/bench).

The same model file (read with tools/torch_safetensors.py), the same
MNIST-style preprocessing as digitnet's dn_image_preprocess written with
PIL and numpy (grey, background from the border's median, inverted when
light, contrast stretched, faint pixels dropped, cropped to the solid
ink's box, area-averaged into a 20x20 box with a 2-pixel halo, thin
strokes thickened, centred by mass on pixel (14, 14)); specks are not
removed (that needs a labelling library), which canvas drawings do not
have. The answer has the core fields of digitnet's (prediction,
probability, unsure, probabilities, log_probabilities, input).

  /usr/bin/python3 tools/serve_flask.py --model M [--host 127.0.0.1] [--port 8081]
  /usr/bin/python3 tools/serve_flask.py --model M --check picture.png   # one answer, no server

Flask's own threaded server, as its quick start runs it. Needs Debian's
python3-flask, python3-torch, python3-numpy and python3-pil.
"""
import argparse
import io
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_safetensors import load_cnn  # noqa: E402

BOX, SIDE, HALO = 20, 28, 2
NOISE, MIN_CONTRAST, BOX_INK, THIN = 0.2, 0.1, 0.4, 0.8
SURE = 0.99


class NoDigit(ValueError):
    pass


def preprocess(data):
    """Encoded picture bytes -> (28, 28) float32 in 0..1, ink 1."""
    img = Image.open(io.BytesIO(data))
    img.load()
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255
        grey = (0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2])
        alpha = rgba[..., 3]
        if (alpha < 1).any():
            seen = (alpha * grey).sum() / max(alpha.sum(), 1e-9)
            fill = 1.0 if alpha.sum() > 0 and seen < 0.5 else 0.0
            grey = grey * alpha + fill * (1 - alpha)
    else:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
        grey = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    h, w = grey.shape
    t = 1 + min(w, h) // 64
    frame = np.concatenate([grey[:t].ravel(), grey[h - t:].ravel(),
                            grey[t:h - t, :t].ravel(), grey[t:h - t, w - t:].ravel()])
    background = float(np.median(frame))
    ink = background - grey if background > 0.5 else grey - background
    ink = np.clip(ink, 0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoDigit("no digit found")
    ink = ink / peak
    ink[ink < NOISE] = 0
    solid = ink >= BOX_INK
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        raise NoDigit("no digit found")
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    s = BOX / max(bw, bh)
    pw = max(1, round(bw * s)) + 2 * HALO
    ph = max(1, round(bh * s)) + 2 * HALO
    # Area averaging of the box and its halo; zeros beyond the picture.
    pad = int(np.ceil(HALO / s)) + 2
    padded = np.pad(ink, pad)
    left, top = x0 - HALO / s + pad, y0 - HALO / s + pad
    patch = Image.fromarray(padded.astype(np.float32), mode="F").resize(
        (pw, ph), Image.BOX, box=(left, top, left + pw / s, top + ph / s))
    patch = np.asarray(patch, dtype=np.float32).copy()
    # Stroke width 2 area / outline of the solid ink, in network pixels.
    edges = (np.diff(np.pad(solid, ((0, 0), (1, 1))).astype(np.int8), axis=1) != 0).sum() + \
            (np.diff(np.pad(solid, ((1, 1), (0, 0))).astype(np.int8), axis=0) != 0).sum()
    if 2.0 * solid.sum() / max(edges, 1) * s < THIN and patch.max() > 0:
        p = patch / patch.max()
        q = p.copy()
        q[:, 1:] = np.maximum(q[:, 1:], p[:, :-1])
        q[1:, :] = np.maximum(q[1:, :], p[:-1, :])
        q[1:, 1:] = np.maximum(q[1:, 1:], p[:-1, :-1])
        patch = q
    m = patch.sum()
    if not m > 0:
        raise NoDigit("no digit found")
    yy, xx = np.mgrid[0:ph, 0:pw]
    ox = int(round(SIDE / 2 - (patch * xx).sum() / m))
    oy = int(round(SIDE / 2 - (patch * yy).sum() / m))
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    for y in range(ph):
        ty = y + oy
        if 0 <= ty < SIDE:
            a, b = max(0, -ox), min(pw, SIDE - ox)
            if a < b:
                out[ty, a + ox:b + ox] = patch[y, a:b]
    return np.clip(out, 0, 1)


def make_answer(model, mean, std, x):
    with torch.no_grad():
        t = torch.from_numpy(((x - mean) / std).astype(np.float32)).view(1, 1, SIDE, SIDE)
        lp = model(t)[0].numpy().astype(float)
    best = int(lp.argmax())
    p = float(np.exp(lp[best]))
    return {"prediction": best, "probability": p, "unsure": p < SURE,
            "probabilities": np.exp(lp).tolist(), "log_probabilities": lp.tolist(),
            "input": np.rint(x * 255).astype(int).ravel().tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--check", help="answer for this picture on stdout, no server")
    a = ap.parse_args()
    model, meta, _ = load_cnn(a.model)
    mean, std = float(meta.get("mean", 0.1307)), float(meta.get("std", 0.3081))
    if a.check:
        with open(a.check, "rb") as f:
            print(json.dumps(make_answer(model, mean, std, preprocess(f.read()))))
        return

    from flask import Flask, jsonify, request
    app = Flask("digitnet-flask")

    @app.post("/api/predict")
    def predict():
        try:
            x = preprocess(request.get_data())
        except NoDigit as e:
            return jsonify(error=str(e)), 422
        except Exception as e:  # not a picture PIL reads
            return jsonify(error="not an image: %s" % e), 400
        return jsonify(make_answer(model, mean, std, x))

    @app.get("/healthz")
    def health():
        return jsonify(status="ok")

    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host=a.host, port=a.port, threaded=True)


if __name__ == "__main__":
    main()
