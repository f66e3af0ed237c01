#!/usr/bin/python3
"""Writes tests/fixtures/optim.json: what PyTorch's optimizers and
learning-rate schedulers do, for tests/test_optim.c to compare against.

For each optimizer configuration: a parameter vector, a few successive
gradient vectors, the learning rate of each step (some configurations change
it between steps, as a schedule would) and PyTorch's parameters after each
step. For each schedule: the learning rate it gives at each epoch (StepLR,
CosineAnnealingLR, stepped per epoch) or each batch (OneCycleLR).

Run with the system Python that has torch (Debian's python3-torch):
    /usr/bin/python3 tools/optim_fixtures.py [tests/fixtures/optim.json]
"""
import json
import sys

import torch

N = 12      # parameters
STEPS = 5   # successive gradients


def vectors(seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(N, generator=g, dtype=torch.float32)
    grads = []
    for s in range(STEPS):
        v = torch.randn(N, generator=g, dtype=torch.float32) * (0.1 * (s + 1))
        # A zero gradient and a tiny one: the eps terms and the first-step
        # buffers must handle them as PyTorch does.
        v[3] = 0.0
        v[7] = v[7] * 1e-4
        grads.append(v)
    return p, grads


OPTIMS = [
    ("adadelta", dict(lr=1.0, rho=0.9, eps=1e-6), False),
    ("adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01), True),
    ("sgd", dict(lr=0.1), False),
    ("sgd", dict(lr=0.05, momentum=0.9), True),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3), False),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-2), True),
    ("adam", dict(lr=1e-3), False),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True), True),
    ("adamw", dict(lr=1e-3), False),
    ("adamw", dict(lr=1e-2, weight_decay=0.1, amsgrad=True), True),
]

CLASSES = {"adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD,
           "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def optim_case(i, name, kw, vary_lr):
    p0, grads = vectors(100 + i)
    p = p0.clone().requires_grad_(True)
    # foreach=False: the single-tensor code path is the documented definition.
    opt = CLASSES[name]([p], foreach=False, **kw)
    lrs, after = [], []
    for s, g in enumerate(grads):
        lr = kw["lr"] * (0.7 ** s if vary_lr else 1.0)
        for group in opt.param_groups:
            group["lr"] = lr
        lrs.append(lr)
        p.grad = g.clone()
        opt.step()
        after.append([float(x) for x in p.detach()])
    cfg = dict(kw)
    if "betas" in cfg:
        cfg["beta1"], cfg["beta2"] = cfg.pop("betas")
    cfg["optim"] = name
    return {"config": cfg, "params": [float(x) for x in p0], "grads":
            [[float(x) for x in g] for g in grads], "lrs": lrs, "after": after}


def epoch_schedule(make, epochs, base_lr):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def onecycle(base_lr, epochs, batches, **kw):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=base_lr, epochs=epochs, steps_per_epoch=batches,
        cycle_momentum=False, **kw)
    out = []
    for _ in range(epochs * batches):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim.json"
    S = torch.optim.lr_scheduler
    schedules = [
        {"schedule": "step", "lr": 1.0, "epochs": 14, "batches": 1,
         "step_size": 1, "gamma": 0.7,
         "lrs": epoch_schedule(lambda o: S.StepLR(o, step_size=1, gamma=0.7), 14, 1.0)},
        {"schedule": "step", "lr": 0.1, "epochs": 10, "batches": 1,
         "step_size": 3, "gamma": 0.5,
         "lrs": epoch_schedule(lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10, 0.1)},
        {"schedule": "cosine", "lr": 1.0, "epochs": 10, "batches": 1, "eta_min": 0.0,
         "lrs": epoch_schedule(lambda o: S.CosineAnnealingLR(o, T_max=10), 10, 1.0)},
        {"schedule": "cosine", "lr": 0.05, "epochs": 7, "batches": 1, "eta_min": 0.001,
         "lrs": epoch_schedule(lambda o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
                               7, 0.05)},
        {"schedule": "onecycle", "lr": 0.1, "epochs": 3, "batches": 7,
         "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4,
         "lrs": onecycle(0.1, 3, 7)},
        {"schedule": "onecycle", "lr": 2.0, "epochs": 2, "batches": 10,
         "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0,
         "lrs": onecycle(2.0, 2, 10, pct_start=0.25, div_factor=10.0,
                         final_div_factor=100.0)},
    ]
    data = {"torch": torch.__version__,
            "optimizers": [optim_case(i, *c) for i, c in enumerate(OPTIMS)],
            "schedules": schedules}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
