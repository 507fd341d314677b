#!/usr/bin/env python3
"""Dev-only timing of a BLAS-backed (PyTorch CPU) GPTQ for comparison with mixq's bench/quant.bench.ts.

Not part of CI. Needs torch (Debian: apt install python3-torch). The loop follows the published GPTQ
algorithm (IST-DASLab/gptq fasterquant: damping, Cholesky-based upper factor of H^-1, lazy blocks of 128,
act-order, groups of 128 from the outer W) with a uint4 asymmetric min-max quantizer, float32, on random
data of the same shapes as the mixq bench (W [N, N], 512 calibration rows).

Usage: /usr/bin/python3 scripts/dev/gptq_torch_time.py [N ...] [--threads T]
"""
import sys
import time

import torch


def quant_params(w, maxq):
    xmin = torch.minimum(w.min(1).values, torch.zeros(1))
    xmax = torch.maximum(w.max(1).values, torch.zeros(1))
    both0 = (xmin == 0) & (xmax == 0)
    xmin[both0] = -1
    xmax[both0] = 1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    return scale, zero


def gptq(W, H, bits=4, groupsize=128, blocksize=128, percdamp=0.01, actorder=True):
    W = W.clone()
    H = H.clone()
    rows, cols = W.shape
    maxq = 2**bits - 1
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
    H[range(cols), range(cols)] += percdamp * torch.mean(torch.diag(H))
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    Q = torch.zeros_like(W)
    scale = zero = None
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if (i1 + i) % groupsize == 0:
                scale, zero = quant_params(W[:, i1 + i : i1 + i + groupsize], maxq)
            w = W1[:, i]
            d = Hinv1[i, i]
            q = scale * (torch.clamp(torch.round(w / scale) + zero, 0, maxq) - zero)
            Q[:, i1 + i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return Q


def main():
    args = sys.argv[1:]
    threads = 1
    if "--threads" in args:
        k = args.index("--threads")
        threads = int(args[k + 1])
        del args[k : k + 2]
    sizes = [int(a) for a in args] or [1024]
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    for n in sizes:
        W = 0.05 * torch.randn(n, n, generator=g)
        X = torch.randn(512, n, generator=g)
        t0 = time.perf_counter()
        H = (2 / 512) * X.t().matmul(X)
        t1 = time.perf_counter()
        gptq(W, H)
        t2 = time.perf_counter()
        print(f"torch {torch.__version__} threads={threads} N={n}: H {1e3*(t1-t0):.0f} ms, GPTQ {1e3*(t2-t1):.0f} ms")


if __name__ == "__main__":
    main()
