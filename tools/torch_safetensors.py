#!/usr/bin/python3
"""torch_safetensors.py - digitnet model files on the PyTorch side.

Reads and writes safetensors with nothing but json, numpy and torch (Debian
has no package for the safetensors library), and runs the lecture's
CNN_MNIST on them, so that a model can go from PyTorch to digitnet and back
and both sides can be compared on the same MNIST test images.

    # a PyTorch model for digitnet (random init with a seed, optionally a
    # few hundred training steps, or a state_dict saved with torch.save)
    tools/torch_safetensors.py export model.safetensors --seed 0 --train-steps 300
    tools/torch_safetensors.py export model.safetensors --from state_dict.pt

    # PyTorch's eval-mode log-probabilities of the first N test images
    tools/torch_safetensors.py logprobs model.safetensors 100 --out lp.bin

    # a digitnet-written model, loaded strictly into CNN_MNIST, against
    # digitnet's own log-probabilities (raw float32 (N, 10), little-endian;
    # tests/test_modelfile.c writes such a file), or without --logprobs by
    # running `./digitnet eval --limit N --logprobs-out FILE` if it has them
    tools/torch_safetensors.py check model.safetensors --logprobs digitnet_lp.bin

Run it with Debian's interpreter (/usr/bin/python3), which has
python3-torch and python3-numpy. Log-probability files are raw
little-endian float32 of shape (N, 10), no header.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from lecture_model import CNN_MNIST, MEAN, STD, mnist_images, mnist_labels

DEFAULT_SPEC = ("conv 8 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, "
                "conv 16 k5 p2 s1, relu, maxpool 2, dropout2d 0.5, "
                "flatten, fc 64, relu, fc 10, logsoftmax")
MAX_HEADER = 100 << 20
# What `check` asks of `digitnet eval` to get per-image log-probabilities
# without --logprobs: `--limit N` and this option writing raw float32 (N, 10).
DIGITNET_LOGPROBS_FLAG = "--logprobs-out"

# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------

def save(state_dict, path, metadata=None):
    """Writes float32 tensors to path as safetensors, atomically.

    Tensors are laid out in name order (as the safetensors library does),
    the header is padded with spaces to a multiple of 8 and metadata must
    map strings to strings."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError("metadata must map strings to strings: %r" % (k,))
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu()
        if t.dtype != torch.float32:
            raise ValueError("tensor %r is %s; only float32 is written" % (name, t.dtype))
        raw = t.contiguous().numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """Reads a safetensors file of float32 tensors.

    Returns (tensors, metadata): a dict name -> torch.Tensor in header order
    and the "__metadata__" dict (empty if absent). Raises ValueError naming
    the file and the problem for anything malformed."""
    def bad(msg):
        raise ValueError("%s: %s" % (path, msg))

    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        bad("file has %d bytes, expected at least 8" % len(blob))
    (n,) = struct.unpack("<Q", blob[:8])
    if n < 2 or n > MAX_HEADER or n > len(blob) - 8:
        bad("header length %d does not fit the file (%d bytes)" % (n, len(blob)))
    raw_header = blob[8:8 + n]
    if raw_header[:1] != b"{":
        bad("header does not start with '{'")

    def no_duplicates(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                bad("duplicate key %r in the header" % k)
            d[k] = v
        return d
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        bad("header is not valid JSON: %s" % e)
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        bad("__metadata__ must map strings to strings")
    tensors, ranges = {}, []
    for name, e in header.items():
        if not isinstance(e, dict) or not all(k in e for k in ("dtype", "shape", "data_offsets")):
            bad("tensor %r: expected an object with dtype, shape and data_offsets" % name)
        if e["dtype"] != "F32":
            bad("tensor %r: dtype %r, expected 'F32'" % (name, e["dtype"]))
        shape, offs = e["shape"], e["data_offsets"]
        if (not isinstance(shape, list) or
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            bad("tensor %r: bad shape %r" % (name, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            bad("tensor %r: bad data_offsets %r" % (name, offs))
        begin, end = offs
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != 4 * count:
            bad("tensor %r: data_offsets %r do not fit shape %r and %d data bytes"
                % (name, offs, shape, len(data)))
        ranges.append((begin, end, name))
        arr = np.frombuffer(data[begin:end], dtype="<f4").astype(np.float32).reshape(shape)
        tensors[name] = torch.from_numpy(arr.copy())
    pos = 0
    for begin, end, name in sorted(ranges):
        if begin != pos:
            bad("tensor %r: data at byte %d, expected %d (overlap or hole)" % (name, begin, pos))
        pos = end
    if pos != len(data):
        bad("%d data bytes after the last tensor" % (len(data) - pos))
    return tensors, metadata


# --------------------------------------------------------------------------
# MNIST and the model
# --------------------------------------------------------------------------

def normalise(pixels, mean=MEAN, std=STD):
    """(x/255 - mean) / std in float32, as dn_dataset_image does; (N,1,28,28)."""
    x = pixels.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(x[:, None, :, :].copy())


def load_cnn(path):
    """CNN_MNIST with the parameters of a safetensors file (strict)."""
    tensors, meta = load(path)
    arch = meta.get("arch", DEFAULT_SPEC)
    if arch != DEFAULT_SPEC:
        raise ValueError("%s: architecture %r is not the lecture's CNN_MNIST" % (path, arch))
    model = CNN_MNIST()
    wanted = set(model.state_dict())
    params = {k: v for k, v in tensors.items() if k in wanted}
    extras = sorted(set(tensors) - wanted)
    model.load_state_dict(params, strict=True)
    model.eval()
    return model, meta, extras


def logprobs_of(model, meta, data_dir, n):
    images = mnist_images(data_dir, "t10k")[:n]
    mean = float(meta.get("mean", MEAN))
    std = float(meta.get("std", STD))
    with torch.no_grad():
        return model(normalise(images, mean, std)).numpy().astype(np.float32)


def train_steps(model, data_dir, steps, seed):
    """A short deterministic Adam run so that a fixture's log-probabilities
    are spread out like a trained model's rather than near-uniform."""
    images = mnist_images(data_dir, "train")
    labels = mnist_labels(data_dir, "train")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(labels), (64,), generator=g).numpy()
        x = normalise(images[idx])
        y = torch.from_numpy(labels[idx].astype(np.int64))
        opt.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print("step %d loss %.4f" % (step + 1, loss.item()), file=sys.stderr)
    model.eval()


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def cmd_export(a):
    torch.manual_seed(a.seed)
    model = CNN_MNIST()
    if a.from_pt:
        model.load_state_dict(torch.load(a.from_pt, map_location="cpu"), strict=True)
    if a.train_steps:
        train_steps(model, a.data, a.train_steps, a.seed)
    # The metadata of a file written by PyTorch's safetensors library: no
    # arch, mean or std, so digitnet's defaults are what a load exercises.
    save(model.state_dict(), a.out, {"format": "pt"})
    print("wrote %s" % a.out)


def cmd_logprobs(a):
    model, meta, _ = load_cnn(a.model)
    lp = logprobs_of(model, meta, a.data, a.n)
    if a.out:
        lp.astype("<f4").tofile(a.out)
        print("wrote %s: (%d, 10) float32" % (a.out, lp.shape[0]))
    else:
        np.savetxt(sys.stdout, lp, fmt="%.6f")


def digitnet_logprobs(a, n):
    """digitnet's log-probabilities of the first n test images: from the
    file given with --logprobs, else by running the digitnet command."""
    if a.logprobs:
        lp = np.fromfile(a.logprobs, dtype="<f4")
        if lp.size != n * 10:
            raise ValueError("%s: %d floats, expected %d (N=%d, 10 classes)"
                             % (a.logprobs, lp.size, n * 10, n))
        return lp.reshape(n, 10).astype(np.float32)
    exe = a.digitnet or ("./digitnet" if os.path.exists("./digitnet") else shutil.which("digitnet"))
    if not exe:
        raise ValueError("no digitnet command found; pass --logprobs FILE")
    # The command writes per-image log-probabilities only if its eval has
    # DIGITNET_LOGPROBS_FLAG; ask its help rather than guess.
    helptext = subprocess.run([exe, "eval", "--help"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True).stdout
    if DIGITNET_LOGPROBS_FLAG not in helptext:
        raise ValueError("%s eval has no %s option to write per-image log-probabilities; "
                         "pass --logprobs FILE (raw float32 (N, 10))"
                         % (exe, DIGITNET_LOGPROBS_FLAG))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "lp.bin")
        cmd = [exe, "eval", "--model", a.model, "--data", a.data, "--limit", str(n),
               DIGITNET_LOGPROBS_FLAG, out]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0 or not os.path.exists(out):
            raise ValueError("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode,
                                                          r.stdout.strip()))
        a.logprobs = out
        return digitnet_logprobs(a, n)


def cmd_check(a):
    model, meta, extras = load_cnn(a.model)
    if meta.get("format") != "digitnet":
        print("note: %s has format %r, not 'digitnet'" % (a.model, meta.get("format")))
    if extras:
        print("note: ignoring %d non-parameter tensors: %s" % (len(extras), ", ".join(extras)))
    ours = logprobs_of(model, meta, a.data, a.n)
    theirs = digitnet_logprobs(a, a.n)
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    agree = int(np.sum(ours.argmax(1) == theirs.argmax(1)))
    ok = diff < a.tol
    print("check %s: strict load_state_dict ok; max abs diff %.3g over %d images x 10 "
          "classes (tolerance %g); argmax agrees on %d/%d; %s"
          % (a.model, diff, a.n, a.tol, agree, a.n, "OK" if ok else "FAIL"))
    return 0 if ok else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("DIGITNET_DATA", "data/mnist"),
                   help="MNIST directory (IDX files); default data/mnist")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write CNN_MNIST's parameters as safetensors")
    e.add_argument("out")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--from", dest="from_pt", help="a state_dict saved with torch.save")
    e.add_argument("--train-steps", type=int, default=0)
    lp = sub.add_parser("logprobs", help="eval-mode log-probs of the first N test images")
    lp.add_argument("model")
    lp.add_argument("n", type=int)
    lp.add_argument("--out", help="write raw little-endian float32 (N, 10) here")
    c = sub.add_parser("check", help="compare a digitnet model file with PyTorch")
    c.add_argument("model")
    c.add_argument("--n", type=int, default=100)
    c.add_argument("--logprobs", help="digitnet's log-probs, raw float32 (N, 10)")
    c.add_argument("--digitnet", help="the digitnet command (default ./digitnet)")
    c.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        return {"export": cmd_export, "logprobs": cmd_logprobs, "check": cmd_check}[a.cmd](a) or 0
    except (ValueError, RuntimeError, OSError) as err:
        print("torch_safetensors: %s" % err, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
