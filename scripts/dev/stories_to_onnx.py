#!/usr/bin/python3
"""Dev-only: export stories260K (the Hugging Face folder made by scripts/dev/stories-to-hf.ts) as a
transformers.js-style decoder ONNX with past_key_values, via torch.onnx.export (Debian torch 1.13).

    /usr/bin/python3 scripts/dev/stories_to_onnx.py [hf-dir] [out-dir]
        (defaults test/fixtures/stories-hf and test/fixtures/stories-onnx, the committed fixture)

Writes <out-dir>/onnx/model.onnx plus config.json / tokenizer.json / tokenizer_config.json copied from the
HF folder: the layout transformers.js loads (onnx/model.onnx with past inputs, as current optimum exports
write it; older exports called it decoder_model_merged.onnx and added a use_cache_branch input).

  inputs   input_ids int64 [batch, seq], attention_mask int64 [batch, past + seq],
           position_ids int64 [batch, seq], past_key_values.{i}.key / .value float32 [batch, kv_heads, past, head_dim]
  outputs  logits float32 [batch, seq, vocab], present.{i}.key / .value [batch, kv_heads, past + seq, head_dim]

The forward pass is transformers' LlamaForCausalLM written out (RMSNorm, rotate_half RoPE on position_ids,
GQA by repeating each KV head n_heads / n_kv_heads times, causal + padding mask, SwiGLU), with modules
named as in transformers so the exported node names carry the parameter names
('/model/layers.0/self_attn/q_proj/MatMul'). Weights are the HF folder's (rotate_half layout), so this
also checks that layout independently of mixq's TypeScript: its logits must match llama.cpp's on the
original GGUF (scripts/dev/check-onnx-lm.ts).
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from torch import nn

HF = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/stories-hf"
OUT = sys.argv[2] if len(sys.argv) > 2 else "test/fixtures/stories-onnx"


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e["dtype"]
        b, end = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + b : 8 + n + end], dtype="<f4").reshape(e["shape"]).copy())
    return out


cfg = json.load(open(os.path.join(HF, "config.json")))
W = read_safetensors(os.path.join(HF, "model.safetensors"))
H, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
NH, NKV, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
HD = H // NH
EPS, THETA = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(H))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate_half(x):
    return torch.cat((-x[..., HD // 2 :], x[..., : HD // 2]), dim=-1)


def repeat_kv(x):
    # transformers' repeat_kv: KV head j serves query heads j*rep .. (j+1)*rep-1
    b, h, t, d = x.shape
    rep = NH // NKV
    return x[:, :, None, :, :].expand(b, h, rep, t, d).reshape(b, h * rep, t, d)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(H, NH * HD, bias=False)
        self.k_proj = nn.Linear(H, NKV * HD, bias=False)
        self.v_proj = nn.Linear(H, NKV * HD, bias=False)
        self.o_proj = nn.Linear(NH * HD, H, bias=False)

    def forward(self, x, cos, sin, mask, past_k, past_v):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, NH, HD).transpose(1, 2)
        k = self.k_proj(x).view(b, s, NKV, HD).transpose(1, 2)
        v = self.v_proj(x).view(b, s, NKV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        kk = repeat_kv(k)
        vv = repeat_kv(v)
        att = torch.matmul(q, kk.transpose(2, 3)) / (HD**0.5) + mask
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, vv).transpose(1, 2).reshape(b, s, NH * HD)
        return self.o_proj(y), k, v


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(H, F, bias=False)
        self.up_proj = nn.Linear(H, F, bias=False)
        self.down_proj = nn.Linear(F, H, bias=False)

    def forward(self, x):
        g = self.gate_proj(x)
        return self.down_proj(g * torch.sigmoid(g) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm()
        self.self_attn = Attention()
        self.post_attention_layernorm = RMSNorm()
        self.mlp = MLP()

    def forward(self, x, cos, sin, mask, pk, pv):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, mask, pk, pv)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, H)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.norm = RMSNorm()
        inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, input_ids, attention_mask, position_ids, past):
        b, s = input_ids.shape
        past_len = past[0].shape[2]
        x = self.embed_tokens(input_ids)
        freqs = position_ids.to(torch.float32)[..., None] * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        total = past_len + s
        qpos = torch.arange(s)[:, None] + past_len
        kpos = torch.arange(total)[None, :]
        causal = (kpos <= qpos)[None, None]
        keep = causal & (attention_mask[:, None, None, :] > 0)
        mask = torch.where(keep, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        presents = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, cos, sin, mask, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        return self.norm(x), presents


class LlamaForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = Model()
        self.lm_head = nn.Linear(H, V, bias=False)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        x, presents = self.model(input_ids, attention_mask, position_ids, past)
        return (self.lm_head(x), *presents)


m = LlamaForCausalLM().eval()
state = dict(W)
if "lm_head.weight" not in state:
    state["lm_head.weight"] = W["model.embed_tokens.weight"]
missing, unexpected = m.load_state_dict(state, strict=False)
assert not unexpected and set(missing) <= set(), (missing, unexpected)

os.makedirs(os.path.join(OUT, "onnx"), exist_ok=True)
for f in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(os.path.join(HF, f), os.path.join(OUT, f))
ids = torch.tensor([[1, 300, 301, 302]], dtype=torch.int64)
past = []
for _ in range(L):
    past += [torch.zeros(1, NKV, 2, HD), torch.zeros(1, NKV, 2, HD)]
am = torch.ones(1, 6, dtype=torch.int64)
pos = torch.arange(2, 6)[None]
names_in = ["input_ids", "attention_mask", "position_ids"]
names_out = ["logits"]
axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"}, "logits": {0: "batch_size", 1: "sequence_length"}}
for i in range(L):
    for kv in ("key", "value"):
        names_in.append(f"past_key_values.{i}.{kv}")
        names_out.append(f"present.{i}.{kv}")
        axes[f"past_key_values.{i}.{kv}"] = {0: "batch_size", 2: "past_sequence_length"}
        axes[f"present.{i}.{kv}"] = {0: "batch_size", 2: "total_sequence_length"}
path = os.path.join(OUT, "onnx", "model.onnx")
with torch.no_grad():
    torch.onnx.export(m, (ids, am, pos, *past), path, input_names=names_in, output_names=names_out,
                      dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    ref = m(ids, am, pos, *past)[0]
print(f"wrote {path} ({os.path.getsize(path)} bytes); torch logits[0,0,:4] = {ref[0, 0, :4].tolist()}")
