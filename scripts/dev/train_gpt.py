#!/usr/bin/python3
"""Dev-only: train mixq's bundled character-level GPT on the King James Bible and export it.

Never run in CI. Needs Debian's python3 with python3-torch, python3-onnx, python3-numpy and bible-kjv
(`/usr/bin/python3 scripts/dev/train_gpt.py train` then `... export`). Install libopenblas0-serial too:
Debian's torch otherwise runs on the reference BLAS (measured 1.8 vs 43 GFLOP/s, 31 s vs 1.05 s per step).
The committed model: 1000 steps of 32 x 128 characters (~1 epoch), about 55 minutes on one shared core.

Data: `bible -f "Gen1:1-Rev22:21"` prints one verse per line prefixed with a reference ("Ge1:1 In the ...");
the reference is stripped so the model learns plain text, verses are joined with "\n". The last ~5% of the
characters (cut at a verse boundary) are the held-out split (models/gpt/heldout.txt), never trained on.

Model: pre-LayerNorm GPT (GPT-2 style) with learned absolute positions, untied input embedding and output
head, exact-erf GELU MLP, no dropout. Every linear weight is an explicit [in, out] parameter used as
`x @ W`, so the ONNX MatMul initializers carry the same names and layouts as the PyTorch parameters and the
safetensors file.

Training is deterministic: fixed seeds, one CPU thread (the machine is shared), batches drawn from a
generator seeded by the step index, so a run resumed from a checkpoint gives the same result as an
uninterrupted one. AdamW with linear warmup and cosine decay.

Export (size budget: models/gpt/ <= 8 MB): the fp32 weights are stored ONCE, in model.safetensors.
model.onnx (ids -> logits) and model_kv.onnx (explicit past/present key-value tensors) keep their weights
as ONNX initializers whose data is "external": they point at byte ranges inside model.safetensors
(ONNX external-data convention: location/offset/length relative to the .onnx file's folder).
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "models", "gpt")
CKPT_DIR = os.environ.get("MIXQ_GPT_CKPT", "/tmp/mixq_gpt_ckpt")

CFG = dict(n_layer=4, d_model=192, n_head=6, context=128)
TRAIN = dict(
    seed=1234,
    batch=32,
    steps=int(os.environ.get("MIXQ_GPT_STEPS", "1000")),
    lr=2e-3,
    min_lr=1e-4,
    warmup=100,
    weight_decay=0.1,
    betas=(0.9, 0.99),
    grad_clip=1.0,
    heldout_fraction=0.05,
)


# ---------------------------------------------------------------- data


def load_text():
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    lines = []
    for line in raw.split("\n"):
        if not line.strip():
            continue
        ref, sep, rest = line.partition(" ")
        # References look like "Ge1:1", "1Co13:4", "Rev22:21": letters/digits with one colon.
        if not sep or ":" not in ref:
            raise SystemExit(f"unexpected bible line format: {line[:60]!r}")
        lines.append(rest.strip())
    text = "\n".join(lines) + "\n"
    cut = text.index("\n", int(len(text) * (1 - TRAIN["heldout_fraction"]))) + 1
    return text[:cut], text[cut:]


def build_vocab(text):
    chars = sorted(set(text))
    return {c: i for i, c in enumerate(chars)}


# ---------------------------------------------------------------- model


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.n_head = h
        self.ln1 = nn.LayerNorm(d)
        self.attn_qkv = nn.Parameter(torch.empty(d, 3 * d))
        self.attn_qkv_bias = nn.Parameter(torch.zeros(3 * d))
        self.attn_proj = nn.Parameter(torch.empty(d, d))
        self.attn_proj_bias = nn.Parameter(torch.zeros(d))
        self.ln2 = nn.LayerNorm(d)
        self.mlp_fc = nn.Parameter(torch.empty(d, 4 * d))
        self.mlp_fc_bias = nn.Parameter(torch.zeros(4 * d))
        self.mlp_proj = nn.Parameter(torch.empty(4 * d, d))
        self.mlp_proj_bias = nn.Parameter(torch.zeros(d))

    def attend(self, x, mask, past_k=None, past_v=None):
        b, s, d = x.shape
        h = self.n_head
        hd = d // h
        qkv = x @ self.attn_qkv + self.attn_qkv_bias
        q, k, v = qkv.split(d, dim=2)
        q = q.view(b, s, h, hd).transpose(1, 2)
        k = k.view(b, s, h, hd).transpose(1, 2)
        v = v.view(b, s, h, hd).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(2, 3)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        return y @ self.attn_proj + self.attn_proj_bias, k, v

    def forward(self, x, mask, past_k=None, past_v=None):
        a, k, v = self.attend(self.ln1(x), mask, past_k, past_v)
        x = x + a
        m = F.gelu(self.ln2(x) @ self.mlp_fc + self.mlp_fc_bias)
        x = x + (m @ self.mlp_proj + self.mlp_proj_bias)
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab, n_layer, d_model, n_head, context):
        super().__init__()
        self.context = context
        self.wte = nn.Parameter(torch.empty(vocab, d_model))
        self.wpe = nn.Parameter(torch.empty(context, d_model))
        self.blocks = nn.ModuleList([Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Parameter(torch.empty(d_model, vocab))
        self.head_bias = nn.Parameter(torch.zeros(vocab))
        # True above the diagonal = masked (future position).
        self.register_buffer("future", torch.triu(torch.ones(context, context, dtype=torch.bool), 1), persistent=False)
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # GPT-2: residual output projections scaled down by sqrt(2 * n_layer).
                s = std / math.sqrt(2 * n_layer) if name.endswith("_proj") else std
                nn.init.normal_(p, 0.0, s)

    def forward(self, ids):
        s = ids.shape[1]
        x = self.wte[ids] + self.wpe[:s]
        mask = self.future[:s, :s]
        for blk in self.blocks:
            x, _, _ = blk(x, mask)
        return self.ln_f(x) @ self.head + self.head_bias


class GPTWithCache(GPT):
    """Same parameters (and names) as GPT; explicit per-layer past key/value inputs [B, H, P, hd] and
    present outputs [B, H, P+S, hd]."""

    def forward(self, ids, *past):
        g = self
        s = ids.shape[1]
        p = past[0].shape[2]
        x = g.wte[ids] + g.wpe[p : p + s]
        mask = g.future[p : p + s, : p + s]
        presents = []
        for i, blk in enumerate(g.blocks):
            x, k, v = blk(x, mask, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        return (g.ln_f(x) @ g.head + g.head_bias, *presents)


# ---------------------------------------------------------------- training


def lr_at(step):
    t = TRAIN
    if step < t["warmup"]:
        return t["lr"] * (step + 1) / t["warmup"]
    prog = (step - t["warmup"]) / max(1, t["steps"] - t["warmup"])
    return t["min_lr"] + 0.5 * (t["lr"] - t["min_lr"]) * (1 + math.cos(math.pi * min(1.0, prog)))


def batch_at(data, step, batch, ctx):
    g = torch.Generator().manual_seed(TRAIN["seed"] * 1_000_003 + step)
    starts = torch.randint(0, len(data) - ctx - 1, (batch,), generator=g)
    x = torch.stack([data[i : i + ctx] for i in starts.tolist()])
    y = torch.stack([data[i + 1 : i + ctx + 1] for i in starts.tolist()])
    return x, y


@torch.no_grad()
def eval_loss(model, data, ctx, max_windows=None):
    """Mean next-char loss over non-overlapping windows of length ctx (first char of each window has
    no context: a quick monitor, not the harness metric)."""
    model.eval()
    n = (len(data) - 1) // ctx
    if max_windows:
        n = min(n, max_windows)
    tot, cnt = 0.0, 0
    for i in range(0, n, 64):
        idx = range(i, min(n, i + 64))
        x = torch.stack([data[j * ctx : j * ctx + ctx] for j in idx])
        y = torch.stack([data[j * ctx + 1 : j * ctx + ctx + 1] for j in idx])
        loss = F.cross_entropy(model(x).reshape(-1, model.head.shape[1]), y.reshape(-1), reduction="sum")
        tot += loss.item()
        cnt += y.numel()
    model.train()
    return tot / cnt


def make_model(vocab_size):
    torch.manual_seed(TRAIN["seed"])
    return GPT(vocab_size, **CFG)


def param_groups(model):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": TRAIN["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]


def train(args):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_text, held_text = load_text()
    vocab = build_vocab(train_text + held_text)
    enc = lambda s: torch.tensor([vocab[c] for c in s], dtype=torch.long)
    tr, he = enc(train_text), enc(held_text)
    model = make_model(len(vocab))
    opt = torch.optim.AdamW(param_groups(model), lr=TRAIN["lr"], betas=TRAIN["betas"])
    os.makedirs(CKPT_DIR, exist_ok=True)
    ck = os.path.join(CKPT_DIR, "last.pt")
    step = 0
    log = []
    if os.path.exists(ck) and not args.fresh:
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, log = st["step"], st["log"]
        print(f"resumed at step {step}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params}, vocab {len(vocab)}, train chars {len(tr)}, heldout chars {len(he)}", flush=True)
    steps = args.steps if args.steps else TRAIN["steps"]
    t0 = time.time()
    ema = None
    while step < steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = batch_at(tr, step, TRAIN["batch"], CFG["context"])
        loss = F.cross_entropy(model(x).reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step} loss {ema:.4f} lr {lr_at(step):.2e} {(time.time() - t0) / 50:.3f}s/step", flush=True)
            t0 = time.time()
        if step % 250 == 0 or step == steps:
            hl = eval_loss(model, he, CFG["context"], max_windows=128)
            log.append({"step": step, "train_loss_ema": round(ema, 4), "heldout_loss_subset": round(hl, 4)})
            print(f"== step {step} heldout(subset) {hl:.4f}", flush=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "log": log}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)


# ---------------------------------------------------------------- export


def write_safetensors(path, tensors):
    """safetensors layout: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, raw data.
    Returns {name: absolute byte offset of the tensor's data in the file}."""
    header, offs, cur = {}, {}, 0
    for name, arr in tensors.items():
        n = arr.nbytes
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [cur, cur + n]}
        offs[name] = cur
        cur += n
    header["__metadata__"] = {"format": "pt", "producer": "mixq scripts/dev/train_gpt.py"}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)  # keep tensor data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for arr in tensors.values():
            f.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())
    return {k: 8 + len(hb) + v for k, v in offs.items()}


def externalize(onnx_path, st_offsets, st_arrays):
    """Point every initializer that is a model parameter at its bytes inside model.safetensors."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(onnx_path)
    for init in m.graph.initializer:
        if init.name not in st_offsets:
            continue
        arr = numpy_helper.to_array(init)
        ref = st_arrays[init.name]
        assert arr.shape == ref.shape and np.array_equal(arr, ref), init.name
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", "model.safetensors"), ("offset", str(st_offsets[init.name])), ("length", str(ref.nbytes))):
            e = init.external_data.add()
            e.key, e.value = k, v
    onnx.save(m, onnx_path)
    left = [i.name for i in m.graph.initializer if i.data_location != onnx.TensorProto.EXTERNAL]
    return left


def export(args):
    import onnx

    torch.set_num_threads(1)
    train_text, held_text = load_text()
    vocab = build_vocab(train_text + held_text)
    st = torch.load(os.path.join(CKPT_DIR, "last.pt"))
    model = make_model(len(vocab))
    model.load_state_dict(st["model"])
    model.eval()
    os.makedirs(OUT, exist_ok=True)

    enc = lambda s: torch.tensor([vocab[c] for c in s], dtype=torch.long)
    he, tr = enc(held_text), enc(train_text)
    quick = 64 if args.quick else None  # --quick: a smoke test of the export path, not a final number
    held_loss = eval_loss(model, he, CFG["context"], max_windows=quick)
    train_loss = eval_loss(model, tr, CFG["context"], max_windows=quick or 2048)
    print(f"final heldout loss {held_loss:.4f} nats/char (non-overlapping windows), train subset {train_loss:.4f}")

    arrays = {n: p.detach().numpy().astype(np.float32) for n, p in model.named_parameters()}
    offsets = write_safetensors(os.path.join(OUT, "model.safetensors"), arrays)

    ids = torch.randint(0, len(vocab), (2, 16), generator=torch.Generator().manual_seed(0))
    p1 = os.path.join(OUT, "model.onnx")
    torch.onnx.export(
        model, (ids,), p1, opset_version=17, do_constant_folding=True, export_params=True,
        input_names=["ids"], output_names=["logits"],
        dynamic_axes={"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
    )
    kv = GPTWithCache(len(vocab), **CFG)
    kv.load_state_dict(model.state_dict())
    kv.eval()
    L, H, D = CFG["n_layer"], CFG["n_head"], CFG["d_model"]
    past = []
    past_names, present_names = [], []
    for i in range(L):
        for t in ("key", "value"):
            past.append(torch.randn(2, H, 5, D // H))
            past_names.append(f"past_{t}_{i}")
            present_names.append(f"present_{t}_{i}")
    dyn = {"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    for n in past_names:
        dyn[n] = {0: "batch", 2: "past"}
    for n in present_names:
        dyn[n] = {0: "batch", 2: "total"}
    p2 = os.path.join(OUT, "model_kv.onnx")
    torch.onnx.export(
        kv, (ids, *past), p2, opset_version=17, do_constant_folding=True, export_params=True,
        input_names=["ids", *past_names], output_names=["logits", *present_names], dynamic_axes=dyn,
    )
    for p in (p1, p2):
        left = externalize(p, offsets, arrays)
        print(os.path.basename(p), "inline initializers:", left)

    with open(os.path.join(OUT, "vocab.json"), "w") as f:
        json.dump({"chars": sorted(vocab, key=vocab.get)}, f, ensure_ascii=False, indent=1)
    with open(os.path.join(OUT, "heldout.txt"), "w") as f:
        f.write(held_text)
    n_params = sum(p.numel() for p in model.parameters())
    config = {
        "name": "mixq-kjv-char-gpt",
        "architecture": {
            "type": "pre-LayerNorm GPT, learned absolute positions, GELU(erf) MLP 4x, untied embedding/head",
            **CFG,
            "vocab_size": len(vocab),
            "n_params": n_params,
            "weight_layout": "linear weights are [in, out], used as x @ W (ONNX MatMul B operand)",
        },
        "files": {
            "model.onnx": "inputs ids int64 [batch, seq<=context]; output logits float32 [batch, seq, vocab]",
            "model_kv.onnx": "inputs ids [batch, seq] + past_key_i/past_value_i float32 [batch, n_head, past, head_dim]; "
            "outputs logits + present_key_i/present_value_i [batch, n_head, past+seq, head_dim]; past+seq<=context",
            "model.safetensors": "all fp32 weights, PyTorch parameter names; the ONNX initializers reference it as external data",
            "vocab.json": "chars[i] is token id i",
            "heldout.txt": "last ~5% of the text (verse boundary), never trained on",
        },
        "onnx": {"opset": 17, "exporter": f"torch.onnx (TorchScript) {torch.__version__}", "do_constant_folding": True},
        "data": {
            "source": "Debian bible-kjv: bible -f 'Gen1:1-Rev22:21', verse references stripped, one verse per line",
            "train_chars": len(tr),
            "heldout_chars": len(he),
        },
        "training": {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in TRAIN.items()},
            "optimizer": "AdamW (decay on 2-D weights only), linear warmup + cosine decay, grad-norm clip",
            "threads": 1,
            "steps_done": st["step"],
            "log": st["log"],
        },
        "results": {
            "heldout_loss_nats_per_char": round(held_loss, 4),
            "heldout_bpc": round(held_loss / math.log(2), 4),
            "train_loss_nats_per_char_subset": round(train_loss, 4),
            "note": "script's quick metric: non-overlapping windows of 128 (early positions have little context); "
            "the harness's strided metric (src/runtime) is the reference number",
        },
    }
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    onnx.checker.check_model(p1)
    onnx.checker.check_model(p2)
    print("exported to", OUT)


def bench(args):
    torch.set_num_threads(1)
    model = make_model(63)
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3)
    x = torch.randint(0, 63, (TRAIN["batch"], CFG["context"]))
    for i in range(6):
        t = time.time()
        loss = F.cross_entropy(model(x).reshape(-1, 63), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"{time.time() - t:.3f}s/step")
    print(sum(p.numel() for p in model.parameters()), "params")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "export", "bench"])
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    {"train": train, "export": export, "bench": bench}[a.mode](a)
