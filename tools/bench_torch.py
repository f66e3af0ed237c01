#!/usr/bin/python3
"""bench_torch.py - a digitnet network in PyTorch, timed like digitnet.

The network is the lecture's CNN_MNIST as the seed writes it, or with
--arch SPEC any digitnet layer spec ("conv 16 k3 p1, relu, maxpool 2, ...",
the language of `digitnet shapes`) built as an nn.Sequential of the same
layers; scripts/bench passes the specs that bench/bench times.

Measures, for each thread count (torch.set_num_threads), in a fresh process
each so that peak RSS belongs to that run alone:

  - one training epoch over the training set: batch 64, Adadelta(lr=1.0) +
    StepLR(step_size=1, gamma=0.7), the default recipe, with the images
    preloaded as one normalised float tensor (no DataLoader cost);
  - evaluation throughput on the 10k test images (batch 1000, no_grad);
  - one-image latency: median and 99th percentile over --latency-runs
    forward passes of a single image (batch 1, no_grad);
  - peak RSS of the process while training (ru_maxrss), and the RSS before
    training (PyTorch itself plus the data) for comparison.

Usage:
  /usr/bin/python3 tools/bench_torch.py [--data data/mnist] [--threads 1,2]
        [--arch SPEC] [--name NAME] [--train-limit N] [--latency-runs 1000]
        [--time-limit 40] [--format json|kv]

A training run that takes longer than --time-limit seconds (a crowded
machine) stops there and its per-epoch time is extrapolated from the
images it did ("train_extrapolated": true).

Output: JSON on stdout (one object with a "runs" list and the "best" value
of each metric over the thread counts), or with --format kv one
"key value" line per metric (torch_1t_train_img_s 8950 ..., torch_best_...)
for scripts/bench; with --name NAME the keys read torch_NAME_1t_... .
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def load_split(data_dir, prefix, torch):
    """Images as a normalised (n, 1, 28, 28) float tensor, labels as int64."""
    from lecture_model import MEAN, STD, mnist_images, mnist_labels
    images = mnist_images(data_dir, prefix)
    labels = mnist_labels(data_dir, prefix)
    x = torch.from_numpy(images.copy()).float().div_(255.0)
    x = x.sub_(MEAN).div_(STD).unsqueeze(1).contiguous()
    y = torch.from_numpy(labels.astype("int64"))
    return x, y


def spec_model(spec, torch):
    """An nn.Sequential of the layers of a digitnet spec, for 1x28x28
    inputs: conv O [kK] [pP] [sS], relu, maxpool N or maxpool kK [sS] [pP],
    dropout2d [P], flatten, fc N, logsoftmax (src/spec.c's defaults)."""
    nn = torch.nn
    c, h, w, flat = 1, 28, 28, None
    layers = []
    for item in spec.split(","):
        words = item.split()
        kind, args = words[0], words[1:]
        opt = {a[0]: int(a[1:]) for a in args if a[0] in "kps" and a[1:].isdigit()}
        plain = [a for a in args if a[0].isdigit() or a[0] == "."]
        if kind == "conv":
            k, p, st = opt.get("k", 3), opt.get("p", 0), opt.get("s", 1)
            layers.append(nn.Conv2d(c, int(plain[0]), k, stride=st, padding=p))
            c, h, w = int(plain[0]), (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
        elif kind == "maxpool":
            k = int(plain[0]) if plain else opt["k"]
            st = int(plain[0]) if plain else opt.get("s", k)
            p = opt.get("p", 0)
            layers.append(nn.MaxPool2d(k, stride=st, padding=p))
            h, w = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "dropout2d":
            layers.append(nn.Dropout2d(float(plain[0]) if plain else 0.5))
        elif kind == "flatten":
            layers.append(nn.Flatten())
            flat = c * h * w
        elif kind == "fc":
            layers.append(nn.Linear(flat, int(plain[0])))
            flat = int(plain[0])
        elif kind == "logsoftmax":
            layers.append(nn.LogSoftmax(dim=1))
        else:
            raise ValueError("unknown layer '%s' in --arch" % item.strip())
    return nn.Sequential(*layers)


def rss_mb():
    """Current resident set size in MB (from /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_one(args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.one)
    torch.manual_seed(1)

    # The seed's model, as the lecture writes it (imported here, after the
    # thread setup, like torch itself).
    from lecture_model import CNN_MNIST

    xtr, ytr = load_split(args.data, "train", torch)
    xte, yte = load_split(args.data, "t10k", torch)
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    n = xtr.shape[0]

    model = spec_model(args.arch, torch) if args.arch else CNN_MNIST()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    bs = 64

    def step(idx):
        data, target = xtr.index_select(0, idx), ytr.index_select(0, idx)
        opt.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        opt.step()
        return loss

    # Warm-up (first-call allocations, oneDNN primitive creation), then
    # back to the initial state so the timed epoch is a normal first epoch.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for _ in range(5):
        step(torch.randint(0, n, (bs,)))
    model.load_state_dict(state)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    rss_before = rss_mb()

    perm = torch.randperm(n)
    t0 = time.perf_counter()
    done = 0
    for i in range(0, n, bs):
        loss = step(perm[i:i + bs])
        done = min(n, i + bs)
        # On a crowded machine a run can crawl: stop and extrapolate.
        if args.time_limit and time.perf_counter() - t0 > args.time_limit:
            break
    sched.step()
    train_s = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3

    model.eval()
    correct = 0
    with torch.no_grad():
        model(xte[:1000])
        t0 = time.perf_counter()
        for i in range(0, xte.shape[0], 1000):
            out = model(xte[i:i + 1000])
            correct += int((out.argmax(1) == yte[i:i + 1000]).sum())
        eval_s = time.perf_counter() - t0

    lat = []
    with torch.no_grad():
        one = xte[:1].clone()
        for _ in range(50):
            model(one)
        for r in range(args.latency_runs):
            one = xte[r % xte.shape[0]:r % xte.shape[0] + 1]
            t0 = time.perf_counter_ns()
            model(one)
            lat.append((time.perf_counter_ns() - t0) / 1e3)
    lat.sort()
    med = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]

    return {
        "threads": args.one,
        "torch": torch.__version__,
        "train_images": done,
        "train_extrapolated": done < n,
        "train_s_per_epoch": train_s * 60000.0 / done,
        "train_img_s": done / train_s,
        "train_last_loss": float(loss),
        "eval_img_s": xte.shape[0] / eval_s,
        "eval_accuracy": correct / xte.shape[0],
        "latency_us_median": med,
        "latency_us_p99": p99,
        "peak_rss_mb": peak_rss,
        "rss_before_train_mb": rss_before,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--train-limit", type=int, default=0,
                    help="train on the first N images only (default: all)")
    ap.add_argument("--latency-runs", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=40.0,
                    help="stop a training run after this many seconds and "
                         "extrapolate (0: never)")
    ap.add_argument("--format", choices=("json", "kv"), default="json")
    ap.add_argument("--arch", default="",
                    help="a digitnet layer spec (default: the seed's CNN_MNIST)")
    ap.add_argument("--name", default="",
                    help="with --format kv: keys torch_NAME_... instead of torch_...")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_one(args)))
        return 0

    runs = []
    for t in [int(s) for s in args.threads.split(",") if s]:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", str(t),
               "--data", args.data, "--train-limit", str(args.train_limit),
               "--latency-runs", str(args.latency_runs),
               "--time-limit", str(args.time_limit), "--arch", args.arch]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))

    higher = ("train_img_s", "eval_img_s")
    lower = ("train_s_per_epoch", "latency_us_median", "latency_us_p99",
             "peak_rss_mb")
    best = {}
    for k in higher:
        r = max(runs, key=lambda r: r[k])
        best[k], best[k + "_threads"] = r[k], r["threads"]
    for k in lower:
        r = min(runs, key=lambda r: r[k])
        best[k], best[k + "_threads"] = r[k], r["threads"]

    if args.format == "json":
        print(json.dumps({"runs": runs, "best": best}, indent=2))
    else:
        pre = "torch_" + (args.name + "_" if args.name else "")
        for r in runs:
            for k, v in r.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) \
                        and k != "threads":
                    print("%s%dt_%s %s" % (pre, r["threads"], k, v))
        for k, v in best.items():
            print("%sbest_%s %s" % (pre, k, v))
        print("torch_version %s" % runs[0]["torch"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
