"""lecture_model.py - what the PyTorch tools share: the lecture's CNN_MNIST,
MNIST's normalisation constants and an IDX reader.

Imported by tools/make_fixtures.py, tools/torch_safetensors.py and
tools/bench_torch.py (run as `/usr/bin/python3 tools/X.py`, so this
directory is on sys.path). Importing it imports torch.
"""
import gzip
import os
import struct

import numpy as np
import torch.nn as nn
import torch.nn.functional as F

# The normalisation of the lecture's data pipeline, torchvision's
# Normalize((MEAN,), (STD,)) after ToTensor().
MEAN, STD = 0.1307, 0.3081

# IDX magic numbers: unsigned bytes, 3 dimensions (images) or 1 (labels).
IDX_IMAGES, IDX_LABELS = 0x803, 0x801

# ---- The lecture's model (seed text) -------------------------------------
in_channels, cnn1_channels, cnn2_channels = 1, 8, 16
fc_hidden, num_classes = 64, 10


class CNN_MNIST(nn.Module):
    def __init__(self):
        super(CNN_MNIST, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, cnn1_channels,
                                kernel_size=3, padding=1, stride=1)
        self.conv2 = nn.Conv2d(cnn1_channels, cnn2_channels,
                                kernel_size=5, padding=2, stride=1)
        self.dropout = nn.Dropout2d(p=.5)
        self.fc1 = nn.Linear(cnn2_channels*7*7, fc_hidden)
        self.fc2 = nn.Linear(fc_hidden, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x)) #8*28*28
        x = F.max_pool2d(x, kernel_size=2, stride=2, padding=0) #8*14*14
        x = self.dropout(x)
        x = F.relu(self.conv2(x)) #16*14*14
        x = F.max_pool2d(x, kernel_size=2, stride=2, padding=0) #16*7*7
        x = self.dropout(x)
        x = F.relu(self.fc1(x.view(-1, cnn2_channels*7*7)))
        y = F.log_softmax(self.fc2(x), dim=1)
        return y
# --------------------------------------------------------------------------


def read_idx(path, magic=None):
    """An IDX file of unsigned bytes as a uint8 array of the shape its header
    gives: (N, rows, cols) after the 16-byte header of an image file, (N,)
    after the 8-byte header of a label file. Reads path, or path + ".gz" if
    only that exists. With magic (IDX_IMAGES or IDX_LABELS) the file must
    have it; a wrong magic or a size that does not match the header raises
    ValueError."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    what = {IDX_IMAGES: "an IDX image file",
            IDX_LABELS: "an IDX label file"}.get(magic, "an IDX file")
    got = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    ndim = got & 0xFF if got is not None else 0
    if (got is None or (got >> 8) != 0x08 or (magic is not None and got != magic)
            or len(data) < 4 + 4 * ndim):
        raise ValueError("%s: not %s of the size its header gives" % (path, what))
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims, dtype=np.int64)):
        raise ValueError("%s: not %s of the size its header gives" % (path, what))
    return arr.reshape(dims)


def mnist_images(data_dir, split):
    """(N, 28, 28) uint8 images of <data_dir>/<split>-images-idx3-ubyte[.gz];
    split is "train" or "t10k"."""
    return read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte" % split), IDX_IMAGES)


def mnist_labels(data_dir, split):
    """(N,) uint8 labels of <data_dir>/<split>-labels-idx1-ubyte[.gz]."""
    return read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte" % split), IDX_LABELS)
