#!/usr/bin/python3
"""make_fixtures.py - PyTorch reference values for tests/test_parity.c.

Runs the lecture's CNN_MNIST (the seed's code, in tools/lecture_model.py)
on the first 8 images of MNIST's t10k set and writes
tests/fixtures/parity.bin: the initial weights, the input, the eval-mode
log-probabilities, loss and gradients of every parameter, and the same for
one training-mode pass whose Dropout2d masks are fixed and stored.

Usage (Debian's python3 with python3-torch, not a pyenv one):
    /usr/bin/python3 tools/make_fixtures.py [--data data/mnist]
                                            [--out tests/fixtures/parity.bin]

File format (little-endian), chosen so that the C loader is a few lines:
    "dnfixture 1\n"
    then sections, each an ASCII header line "<name> <type> <count>\n"
    followed by count raw elements of <type> (u8, i32, f32 or f64),
    and finally the line "end\n".
Sections:
    norm            f32 2       mean, std used to normalise
    input.u8        u8  B*784   raw pixels of the batch (B, 1, 28, 28)
    input           f32 B*784   (pixels / 255 - mean) / std as torch does it
    labels          u8  B
    param.<key>     f32 ...     the state_dict, e.g. param.conv1.weight
    <case>.logp     f32 B*10    log-probabilities, case = eval or train
    <case>.loss     f64 1       F.nll_loss(logp, labels), mean over the batch
    <case>.grad.<key> f32 ...   d loss / d parameter
    eval.act.<name> f32 ...     eval intermediates: conv2 (before ReLU), fc1
    train.mask.drop1 f32 B*8    Dropout2d scale (0 or 1/(1-p)) of the first
    train.mask.drop2 f32 B*16   and second dropout, per sample and channel
Single layers on odd shapes, each checked against its PyTorch function:
    conv.config     i32 8       B, C, H, W, O, k, pad, stride
    conv.{input,weight,bias,dout}       F.conv2d inputs and upstream grad
    conv.{out,dinp,dweight,dbias}       its output and gradients
    pool<i>.config  i32 7       B, C, H, W, k, pad, stride  (i = 1, 2, 3)
    pool<i>.{input,dout,out,dinp}       F.max_pool2d on small integers, so
                                        that windows hold many ties (and
                                        pool3 a few NaNs): dinp shows where
                                        PyTorch routes each gradient
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lecture_model import (CNN_MNIST, MEAN, STD, cnn1_channels, cnn2_channels,
                           mnist_images, mnist_labels)

SEED = 1
BATCH = 8

class FixedMaskDropout2d(nn.Module):
    """Stands in for the model's one Dropout2d module, which forward() calls
    twice: the k-th call multiplies by the k-th stored scale (B, C), which is
    what Dropout2d does in training (input * bernoulli(1-p) / (1-p) per
    sample and channel), with the random draw replaced by a known one."""

    def __init__(self, scales):
        super().__init__()
        self.scales = scales
        self.calls = 0

    def forward(self, x):
        s = self.scales[self.calls % len(self.scales)]
        self.calls += 1
        return x * s[:, :, None, None]


class Writer:
    def __init__(self, path):
        self.f = open(path, 'wb')
        self.f.write(b'dnfixture 1\n')

    def put(self, name, array, kind):
        dtype = {'u8': '<u1', 'i32': '<i4', 'f32': '<f4', 'f64': '<f8'}[kind]
        a = np.ascontiguousarray(np.asarray(array).astype(dtype)).reshape(-1)
        self.f.write(('%s %s %d\n' % (name, kind, a.size)).encode())
        self.f.write(a.tobytes())

    def close(self):
        self.f.write(b'end\n')
        self.f.close()


def grads_of(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def layer_cases(w):
    gen = torch.Generator().manual_seed(SEED + 2)

    def uniform(*shape):
        return torch.rand(*shape, generator=gen) * 2 - 1

    B, C, H, W, O, k, pad, stride = 2, 3, 7, 9, 5, 5, 2, 2
    x = uniform(B, C, H, W).requires_grad_()
    wt = uniform(O, C, k, k).requires_grad_()
    b = uniform(O).requires_grad_()
    out = F.conv2d(x, wt, b, stride=stride, padding=pad)
    dout = uniform(*out.shape)
    out.backward(dout)
    w.put('conv.config', [B, C, H, W, O, k, pad, stride], 'i32')
    for name, t in (('input', x), ('weight', wt), ('bias', b)):
        w.put('conv.' + name, t.detach().numpy(), 'f32')
    w.put('conv.dout', dout.numpy(), 'f32')
    w.put('conv.out', out.detach().numpy(), 'f32')
    for name, t in (('dinp', x), ('dweight', wt), ('dbias', b)):
        w.put('conv.' + name, t.grad.numpy(), 'f32')

    for i, (k, pad, stride, nans) in enumerate(((2, 0, 2, 0), (3, 1, 2, 0), (3, 1, 1, 3)), 1):
        B, C, H, W = 2, 3, 7, 9
        x = torch.randint(0, 3, (B, C, H, W), generator=gen).float()
        for j in range(nans):
            x.view(-1)[int(torch.randint(0, x.numel(), (1,), generator=gen))] = float('nan')
        x.requires_grad_()
        out = F.max_pool2d(x, kernel_size=k, stride=stride, padding=pad)
        dout = uniform(*out.shape)
        out.backward(dout)
        tag = 'pool%d.' % i
        w.put(tag + 'config', [B, C, H, W, k, pad, stride], 'i32')
        w.put(tag + 'input', x.detach().numpy(), 'f32')
        w.put(tag + 'dout', dout.numpy(), 'f32')
        w.put(tag + 'out', out.detach().numpy(), 'f32')
        w.put(tag + 'dinp', x.grad.numpy(), 'f32')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default='data/mnist')
    ap.add_argument('--out', default='tests/fixtures/parity.bin')
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    model = CNN_MNIST()

    pixels = mnist_images(args.data, 't10k')
    labels = mnist_labels(args.data, 't10k')
    pixels = pixels[:BATCH].reshape(BATCH, 1, 28, 28).copy()
    labels = labels[:BATCH].astype(np.int64)
    # As torchvision's ToTensor() then Normalize((MEAN,), (STD,)).
    x = torch.from_numpy(pixels).float().div(255)
    x = x.sub(torch.as_tensor([MEAN])).div(torch.as_tensor([STD]))
    y = torch.from_numpy(labels)

    w = Writer(args.out)
    w.put('norm', [MEAN, STD], 'f32')
    w.put('input.u8', pixels, 'u8')
    w.put('input', x.numpy(), 'f32')
    w.put('labels', labels, 'u8')
    for k, v in model.state_dict().items():
        w.put('param.' + k, v.numpy(), 'f32')

    # Eval mode: Dropout2d is the identity.
    acts = {}
    hooks = [getattr(model, n).register_forward_hook(
        lambda mod, inp, out, n=n: acts.__setitem__(n, out.detach().clone()))
        for n in ('conv2', 'fc1')]
    model.eval()
    model.zero_grad()
    logp = model(x)
    loss = F.nll_loss(logp, y)
    loss.backward()
    for h in hooks:
        h.remove()
    w.put('eval.logp', logp.detach().numpy(), 'f32')
    w.put('eval.loss', [loss.item()], 'f64')
    eval_loss = loss.item()
    for k, g in grads_of(model).items():
        w.put('eval.grad.' + k, g.numpy(), 'f32')
    for n, a in acts.items():
        w.put('eval.act.' + n, a.numpy(), 'f32')

    # Training mode with known Dropout2d masks.
    p = model.dropout.p
    gen = torch.Generator().manual_seed(SEED + 1)
    scales = [torch.bernoulli(torch.full((BATCH, c), 1 - p), generator=gen) / (1 - p)
              for c in (cnn1_channels, cnn2_channels)]
    model.dropout = FixedMaskDropout2d(scales)
    model.train()
    model.zero_grad()
    logp = model(x)
    assert model.dropout.calls == 2, 'the seed applies dropout twice'
    loss = F.nll_loss(logp, y)
    loss.backward()
    w.put('train.mask.drop1', scales[0].numpy(), 'f32')
    w.put('train.mask.drop2', scales[1].numpy(), 'f32')
    w.put('train.logp', logp.detach().numpy(), 'f32')
    w.put('train.loss', [loss.item()], 'f64')
    for k, g in grads_of(model).items():
        w.put('train.grad.' + k, g.numpy(), 'f32')
    layer_cases(w)
    w.close()
    print('%s: %d bytes; eval loss %.6f, train loss %.6f, torch %s'
          % (args.out, os.path.getsize(args.out), eval_loss, loss.item(),
             torch.__version__), file=sys.stderr)


if __name__ == '__main__':
    main()
