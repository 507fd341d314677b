#!/usr/bin/env python3
"""Dev-only timing of the original GPTQ (IST-DASLab/gptq 2d65066, PyTorch CPU) as the peer of mixq's
bench/quant.bench.ts. Not part of CI; users never need it. Needs Debian's /usr/bin/python3 with python3-torch.

The GPTQ class below performs the same torch operations, in the same order, as the original gptq.py
(GPTQ.add_batch, GPTQ.fasterquant) and quant.py (Quantizer.find_params per channel, quantize) for a
nn.Linear with a min-max uint quantizer (no mse search): Hessian accumulation, dead inputs, act-order,
damping, cholesky -> cholesky_inverse -> cholesky(upper), blocks of 128 with per-column updates, groups from
the outer W, losses, and the final un-permutation. It was written for timing (it does not print or
synchronize a GPU) and returns Q so that a caller can check it.

Which BLAS runs is decided by the dynamic linker: Debian's libblas.so.3 alternative is the reference BLAS
unless OpenBLAS is installed and selected. To time against OpenBLAS without installing it system-wide,
unpack Debian's libopenblas0-pthread package into a folder and put its
usr/lib/x86_64-linux-gnu/openblas-pthread directory first on LD_LIBRARY_PATH. The script reports the BLAS
it found loaded ("blas" in the output).

Usage:
  /usr/bin/python3 scripts/dev/gptq_torch_time.py square N [N ...] [--threads T] [--rows 512] [--repeat R]
  /usr/bin/python3 scripts/dev/gptq_torch_time.py layer [--threads T]      # one Llama-2-7B decoder layer
Prints one JSON object per measurement on stdout (wall seconds, and process CPU seconds of all threads). Set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to T as well
(before Python starts) so that OpenBLAS' own pool matches.
"""
import json
import math
import sys
import time

import torch


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


class Quantizer:
    """quant.py Quantizer: per-channel min-max parameters of a weight (configure(bits, perchannel=True))."""

    def __init__(self, bits, sym):
        self.maxq = torch.tensor(2**bits - 1)
        self.sym = sym
        self.scale = torch.zeros(1)
        self.zero = torch.zeros(1)

    def find_params(self, x):
        x = x.flatten(1)
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
        self.scale = self.scale.reshape([-1, 1])
        self.zero = self.zero.reshape([-1, 1])


class GPTQ:
    def __init__(self, W):
        self.W = W
        self.rows, self.columns = W.shape
        self.H = torch.zeros((self.columns, self.columns))
        self.nsamples = 0

    def add_batch(self, inp):
        # a Linear's input [tokens, in] arrives as one sample of shape [1, tokens, in]
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, quantizer, blocksize=128, percdamp=0.01, groupsize=-1, actorder=False):
        W = self.W.clone().float()
        quantizer.find_params(W)
        H = self.H
        del self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        if actorder:
            perm = torch.argsort(torch.diag(H), descending=True)
            W = W[:, perm]
            H = H[perm][:, perm]
            invperm = torch.argsort(perm)
        Losses = torch.zeros_like(W)
        Q = torch.zeros_like(W)
        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H
        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Losses1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]
                if groupsize != -1 and (i1 + i) % groupsize == 0:
                    quantizer.find_params(W[:, (i1 + i) : (i1 + i + groupsize)])
                q = quantize(w.unsqueeze(1), quantizer.scale, quantizer.zero, quantizer.maxq).flatten()
                Q1[:, i] = q
                Losses1[:, i] = (w - q) ** 2 / d**2
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            Q[:, i1:i2] = Q1
            Losses[:, i1:i2] = Losses1 / 2
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        torch.sum(Losses).item()
        if actorder:
            Q = Q[:, invperm]
        return Q


def loaded_blas():
    with open("/proc/self/maps") as f:
        maps = f.read()
    if "openblas" in maps:
        return "openblas"
    if "mkl" in maps:
        return "mkl"
    if "libblas.so" in maps:
        return "reference"
    return "unknown"


def quant_matrix(W, H, bits=4, groupsize=128):
    g = GPTQ(W)
    g.H = H
    return g.fasterquant(Quantizer(bits, sym=False), groupsize=groupsize, actorder=True)


def hessian(X):
    g = GPTQ(torch.zeros(1, X.shape[1]))
    g.add_batch(X)
    return g.H


def emit(**kw):
    kw.update(torch=torch.__version__, blas=loaded_blas(), threads=torch.get_num_threads())
    print(json.dumps(kw), flush=True)


def square(sizes, rows, repeat):
    gen = torch.Generator().manual_seed(1)
    for n in sizes:
        W = 0.05 * torch.randn(n, n, generator=gen)
        X = torch.randn(rows, n, generator=gen)
        for r in range(repeat + 1):  # the first run warms up (allocator, BLAS buffers)
            t0, c0 = time.perf_counter(), time.process_time()
            H = hessian(X)
            t1, c1 = time.perf_counter(), time.process_time()
            quant_matrix(W, H)
            t2, c2 = time.perf_counter(), time.process_time()
            if r > 0:
                emit(kind="square", rows=n, cols=n, samples=rows, hessian_s=t1 - t0, gptq_s=t2 - t1,
                     hessian_cpu_s=c1 - c0, gptq_cpu_s=c2 - c1)


def layer():
    """One Llama-2-7B decoder layer: q, k, v share the attention input, gate and up the MLP input; o and
    down have their own. One Hessian per distinct input (the original accumulates one per matrix)."""
    gen = torch.Generator().manual_seed(2)
    d, f, tokens = 4096, 11008, 512
    inputs = {"attn": d, "o": d, "mlp": d, "down": f}
    mats = [("q", "attn", d), ("k", "attn", d), ("v", "attn", d), ("o", "o", d), ("gate", "mlp", f), ("up", "mlp", f), ("down", "down", d)]
    X = {k: torch.randn(tokens, c, generator=gen) for k, c in inputs.items()}
    W = {name: 0.02 * torch.randn(rows, inputs[inp], generator=gen) for name, inp, rows in mats}
    t0 = time.perf_counter()
    H = {k: hessian(x) for k, x in X.items()}
    t1 = time.perf_counter()
    per = {}
    for name, inp, _ in mats:
        s = time.perf_counter()
        quant_matrix(W[name], H[inp].clone())
        per[name] = time.perf_counter() - s
    t2 = time.perf_counter()
    emit(kind="layer", hessian_s=t1 - t0, gptq_s=t2 - t1, per_matrix_s=per)


def main():
    args = sys.argv[1:]

    def opt(name, default):
        if name in args:
            k = args.index(name)
            v = int(args[k + 1])
            del args[k : k + 2]
            return v
        return default

    threads = opt("--threads", 1)
    rows = opt("--rows", 512)
    repeat = opt("--repeat", 1)
    torch.set_num_threads(threads)
    mode = args[0] if args else "square"
    if mode == "layer":
        layer()
    else:
        square([int(a) for a in args[1:]] or [1024], rows, repeat)


if __name__ == "__main__":
    main()
