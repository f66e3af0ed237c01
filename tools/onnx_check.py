#!/usr/bin/python3
"""onnx_check.py - runs the ONNX checker of Debian's python3-onnx on files
written by `digitnet export --onnx`.

    /usr/bin/python3 tools/onnx_check.py FILE.onnx...

For each file: onnx.checker.check_model with full_check=True (which also
runs strict shape inference, so every shape the file declares must be the
one the operators imply), then the metadata digitnet promises (the spec,
the input normalisation and the preprocessing). Prints one line per file;
exits 1 at the first file that fails, naming it and the problem.
"""
import sys

import onnx

REQUIRED_METADATA = ("digitnet.arch", "digitnet.input", "digitnet.version", "dataset",
                     "normalization.mean", "normalization.std", "normalization",
                     "preprocessing", "output")


def check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError("metadata lacks " + ", ".join(missing))
    float(meta["normalization.mean"])
    if not float(meta["normalization.std"]) > 0:
        raise ValueError("normalization.std is not positive")
    opsets = {o.domain: o.version for o in model.opset_import}
    out = model.graph.output[0]
    dims = [d.dim_param or str(d.dim_value) for d in out.type.tensor_type.shape.dim]
    ops = " ".join(n.op_type for n in model.graph.node)
    return (f"{path}: checker ok (full_check), IR {model.ir_version}, opset {opsets['']}, "
            f"{len(model.graph.node)} nodes ({ops}), {out.name} [{', '.join(dims)}]")


def main(paths):
    if not paths:
        print("usage: /usr/bin/python3 tools/onnx_check.py FILE.onnx...", file=sys.stderr)
        return 2
    for path in paths:
        try:
            print(check(path))
        except Exception as e:  # one line naming the file, whatever failed
            print(f"{path}: {type(e).__name__}: {str(e).strip().splitlines()[0]}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
