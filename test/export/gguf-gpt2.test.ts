/**
 * gpt2 GGUF export of the bundled GPT (src/export/gguf/gpt2.ts). Read back with mixq's GGUF reader and
 * checked against the safetensors source; the strongest check is a forward pass written here from the
 * GGUF tensors alone, the way llama.cpp's gpt2 graph uses them (names, ne, Q|K|V split, no output bias),
 * compared with onnxruntime on models/gpt/model.onnx.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blockTypeById, getBlockType } from '../../src/blocks/registry.ts';
import { MixqError } from '../../src/core/errors.ts';
import { exportGptGguf } from '../../src/export/gguf/gpt2.node.ts';
import { gpt2ByteToUnicode, gpt2GgufFromWeights, gpt2TokenText } from '../../src/export/gguf/gpt2.ts';
import { type GgufArray, type GgufFile, parseGguf } from '../../src/io/gguf/read.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { parseSafetensors } from '../../src/io/safetensors/read.ts';
import { int64Tensor, openSession, runFloat } from '../../src/runtime/ort.node.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'models/gpt');
const D = 192;
const L = 4;
const H = 6;
const V = 63;
const FF = 768;
const CTX = 128;

/** Source weights straight from the safetensors file (little-endian f32), by PyTorch name. */
const stBytes = new Uint8Array(readFileSync(join(DIR, 'model.safetensors')));
const st = await parseSafetensors(stBytes);
const src = new Map<string, { data: Float32Array; dims: readonly number[] }>();
for (const t of st.tensors) {
  assert.equal(t.dtype, 'F32');
  const b = stBytes.slice(t.absOffset, t.absOffset + t.nbytes);
  src.set(t.name, { data: new Float32Array(b.buffer), dims: t.shape });
}
const S = (name: string) => src.get(name)!.data;

/** Independent name map, written out by hand from llama.cpp's gpt2 loader. */
function expectedTensors(): { name: string; ne: number[]; source: string; linear: boolean }[] {
  const out = [
    { name: 'token_embd.weight', ne: [D, V], source: 'wte', linear: false },
    { name: 'position_embd.weight', ne: [D, CTX], source: 'wpe', linear: false },
  ];
  for (let i = 0; i < L; i++) {
    const b = `blocks.${i}.`;
    out.push(
      { name: `blk.${i}.attn_norm.weight`, ne: [D], source: `${b}ln1.weight`, linear: false },
      { name: `blk.${i}.attn_norm.bias`, ne: [D], source: `${b}ln1.bias`, linear: false },
      { name: `blk.${i}.attn_qkv.weight`, ne: [D, 3 * D], source: `${b}attn_qkv`, linear: true },
      { name: `blk.${i}.attn_qkv.bias`, ne: [3 * D], source: `${b}attn_qkv_bias`, linear: false },
      { name: `blk.${i}.attn_output.weight`, ne: [D, D], source: `${b}attn_proj`, linear: true },
      { name: `blk.${i}.attn_output.bias`, ne: [D], source: `${b}attn_proj_bias`, linear: false },
      { name: `blk.${i}.ffn_norm.weight`, ne: [D], source: `${b}ln2.weight`, linear: false },
      { name: `blk.${i}.ffn_norm.bias`, ne: [D], source: `${b}ln2.bias`, linear: false },
      { name: `blk.${i}.ffn_up.weight`, ne: [D, FF], source: `${b}mlp_fc`, linear: true },
      { name: `blk.${i}.ffn_up.bias`, ne: [FF], source: `${b}mlp_fc_bias`, linear: false },
      { name: `blk.${i}.ffn_down.weight`, ne: [FF, D], source: `${b}mlp_proj`, linear: true },
      { name: `blk.${i}.ffn_down.bias`, ne: [D], source: `${b}mlp_proj_bias`, linear: false },
    );
  }
  out.push(
    { name: 'output_norm.weight', ne: [D], source: 'ln_f.weight', linear: false },
    { name: 'output_norm.bias', ne: [D], source: 'ln_f.bias', linear: false },
    { name: 'output.weight', ne: [D, V], source: 'head', linear: true },
  );
  return out;
}

async function tensorsOf(f: GgufFile): Promise<Map<string, Float32Array>> {
  const m = new Map<string, Float32Array>();
  for (const t of f.tensors) {
    const codec = blockTypeById(t.typeId);
    assert.ok(codec, `decodable type for ${t.name}`);
    m.set(t.name, codec.decode(await f.readTensorBytes(t), t.nElements));
  }
  return m;
}

function kvGet(f: GgufFile, key: string): unknown {
  return f.get(key);
}

// ---------------------------------------------------------------- reference forward (from GGUF only)

/** erf by its Taylor series (|x| < 4, float64 error ~1e-9) and +-1 beyond (erfc(4) = 1.5e-8). */
function erf(x: number): number {
  if (Math.abs(x) >= 4) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const geluErf = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

function layerNorm(x: Float64Array, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let vr = 0;
  for (const v of x) vr += (v - mean) * (v - mean);
  vr /= x.length;
  const inv = 1 / Math.sqrt(vr + eps);
  return x.map((v, i) => (v - mean) * inv * g[i]! + b[i]!);
}

/** ggml_mul_mat semantics: w has ne [nIn, nOut] (rows of nIn), y[o] = sum_i w[o*nIn+i] x[i] + bias[o]. */
function matvec(w: Float32Array, nIn: number, x: Float64Array, bias?: Float32Array): Float64Array {
  const nOut = w.length / nIn;
  const y = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = bias ? bias[o]! : 0;
    for (let i = 0; i < nIn; i++) s += w[o * nIn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function forward(
  w: Map<string, Float32Array>,
  ids: readonly number[],
  eps: number,
  gelu: (x: number) => number,
): Float64Array {
  const g = (n: string) => {
    const t = w.get(n);
    assert.ok(t, `tensor ${n}`);
    return t;
  };
  const hd = D / H;
  const T = ids.length;
  let xs = ids.map((id, p) => {
    const e = new Float64Array(D);
    for (let i = 0; i < D; i++)
      e[i] = g('token_embd.weight')[id * D + i]! + g('position_embd.weight')[p * D + i]!;
    return e;
  });
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    const qkv = xs.map((x) =>
      matvec(
        g(`${p}attn_qkv.weight`),
        D,
        layerNorm(x, g(`${p}attn_norm.weight`), g(`${p}attn_norm.bias`), eps),
        g(`${p}attn_qkv.bias`),
      ),
    );
    xs = xs.map((x, t) => {
      const att = new Float64Array(D);
      for (let h = 0; h < H; h++) {
        const q = (s: number, i: number) => qkv[s]![h * hd + i]!;
        const k = (s: number, i: number) => qkv[s]![D + h * hd + i]!;
        const v = (s: number, i: number) => qkv[s]![2 * D + h * hd + i]!;
        const sc: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q(t, i) * k(s, i);
          sc.push(dot / Math.sqrt(hd));
        }
        const mx = Math.max(...sc);
        const ex = sc.map((z) => Math.exp(z - mx));
        const sum = ex.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += (ex[s]! / sum) * v(s, i);
          att[h * hd + i] = acc;
        }
      }
      const o = matvec(g(`${p}attn_output.weight`), D, att, g(`${p}attn_output.bias`));
      return x.map((v, i) => v + o[i]!);
    });
    xs = xs.map((x) => {
      const u = matvec(
        g(`${p}ffn_up.weight`),
        D,
        layerNorm(x, g(`${p}ffn_norm.weight`), g(`${p}ffn_norm.bias`), eps),
        g(`${p}ffn_up.bias`),
      );
      const dn = matvec(g(`${p}ffn_down.weight`), FF, u.map(gelu), g(`${p}ffn_down.bias`));
      return x.map((v, i) => v + dn[i]!);
    });
  }
  assert.equal(w.has('output.bias'), false);
  const out = new Float64Array(T * V);
  xs.forEach((x, t) => {
    out.set(
      matvec(g('output.weight'), D, layerNorm(x, g('output_norm.weight'), g('output_norm.bias'), eps)),
      t * V,
    );
  });
  return out;
}

const CHARS = (JSON.parse(readFileSync(join(DIR, 'vocab.json'), 'utf8')) as { chars: string[] }).chars;
const TEXT = 'And God said, L\n'; // 16 tokens
const IDS = [...TEXT].map((c) => CHARS.indexOf(c));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ---------------------------------------------------------------- tests

test('gpt2ByteToUnicode is the GPT-2 byte-level table', () => {
  const t = gpt2ByteToUnicode();
  assert.equal(t.length, 256);
  assert.equal(new Set(t).size, 256);
  assert.equal(t[0x20], '\u0120'); // space -> Ġ
  assert.equal(t[0x0a], '\u010a'); // newline -> Ċ
  assert.equal(t[0x00], '\u0100');
  assert.equal(t[0x7f], '\u0121'); // 33 bytes 0..32 come first
  assert.equal(t[0xad], '\u0143'); // soft hyphen, the last remapped byte
  for (let b = 0x21; b <= 0x7e; b++) assert.equal(t[b], String.fromCharCode(b));
  assert.equal(t[0xa1], '\u00a1');
  assert.equal(t[0xff], '\u00ff');
  assert.equal(gpt2TokenText('é'), '\u00c3\u00a9'); // UTF-8 C3 A9, both printable Latin-1
  assert.equal(gpt2TokenText(' a\n'), '\u0120a\u010a');
});

test('F32 export: names, ne, types, values and metadata read back with the GGUF reader', async () => {
  const r = await exportGptGguf(DIR, 'F32');
  const f = parseGguf(concatBytes(r.chunks));
  const exp = expectedTensors();
  assert.deepEqual(f.tensors.map((t) => t.name).sort(), exp.map((e) => e.name).sort());
  const w = await tensorsOf(f);
  for (const e of exp) {
    const t = f.tensors.find((x) => x.name === e.name)!;
    assert.deepEqual(t.ne, e.ne, e.name);
    assert.equal(t.type.name, 'f32', e.name);
    const s = S(e.source);
    const got = w.get(e.name)!;
    if (e.name === 'output_norm.bias') continue; // carries the folded head bias, checked below
    if (!e.linear) {
      assert.deepEqual(got, s, e.name);
    } else {
      // source [in, out] row-major; GGUF rows are outputs: got[o * in + i] = s[i * out + o]
      const [nIn, nOut] = [e.ne[0]!, e.ne[1]!];
      for (let o = 0; o < nOut; o++) {
        for (let i = 0; i < nIn; i++) assert.equal(got[o * nIn + i], s[i * nOut + o]);
      }
    }
  }
  // one element by hand: blocks.2.attn_qkv[5][300] (input 5 -> output 300, a K column) is row 300, col 5
  const qkv = w.get('blk.2.attn_qkv.weight')!;
  assert.equal(qkv[300 * D + 5], S('blocks.2.attn_qkv')[5 * 576 + 300]);
  assert.notEqual(qkv[300 * D + 5], S('blocks.2.attn_qkv')[300 * D + 5]);

  // folded head bias: (beta' - beta) . head[:, v] = head_bias[v]
  const beta = S('ln_f.bias');
  const beta2 = w.get('output_norm.bias')!;
  const head = S('head');
  const hb = S('head_bias');
  let worst = 0;
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += (beta2[i]! - beta[i]!) * head[i * V + v]!;
    worst = Math.max(worst, Math.abs(s - hb[v]!));
  }
  assert.ok(worst < 1e-6, `fold residual ${worst}`);
  assert.ok(Math.max(...hb.map(Math.abs)) > 0.01, 'head bias is not trivially zero');

  // metadata
  assert.equal(kvGet(f, 'general.architecture'), 'gpt2');
  assert.equal(kvGet(f, 'general.file_type'), 0);
  assert.equal(kvGet(f, 'general.quantization_version'), 2);
  assert.equal(kvGet(f, 'gpt2.context_length'), CTX);
  assert.equal(kvGet(f, 'gpt2.embedding_length'), D);
  assert.equal(kvGet(f, 'gpt2.feed_forward_length'), FF);
  assert.equal(kvGet(f, 'gpt2.block_count'), L);
  assert.equal(kvGet(f, 'gpt2.attention.head_count'), H);
  assert.equal(kvGet(f, 'gpt2.attention.layer_norm_epsilon'), Math.fround(1e-5));
  assert.equal(f.kv.find((k) => k.key === 'gpt2.attention.layer_norm_epsilon')?.type, 'f32');
  assert.equal(kvGet(f, 'tokenizer.ggml.model'), 'gpt2');
  assert.equal(kvGet(f, 'tokenizer.ggml.pre'), 'default');
  const toks = kvGet(f, 'tokenizer.ggml.tokens') as GgufArray;
  const chars = CHARS;
  assert.equal(toks.itemType, 'str');
  assert.equal(toks.items.length, V);
  assert.equal(toks.items[0], 'Ċ');
  assert.equal(toks.items[1], 'Ġ');
  assert.equal(toks.items[12], 'A');
  toks.items.forEach((t, i) => {
    const c = chars[i]!;
    assert.equal(t, c === '\n' ? 'Ċ' : c === ' ' ? 'Ġ' : c);
  });
  const types = kvGet(f, 'tokenizer.ggml.token_type') as GgufArray;
  assert.equal(types.itemType, 'i32');
  assert.deepEqual(types.items, new Array(V).fill(1));
  const merges = kvGet(f, 'tokenizer.ggml.merges') as GgufArray;
  assert.equal(merges.itemType, 'str');
  assert.equal(merges.items.length, 0);
  assert.equal(kvGet(f, 'tokenizer.ggml.bos_token_id'), 0);
  assert.equal(kvGet(f, 'tokenizer.ggml.eos_token_id'), 0);
  assert.equal(kvGet(f, 'tokenizer.ggml.add_bos_token'), false);
});

test('Q8_0 / Q4_0 matrices equal the block codec on the transposed source rows; file size adds up', async () => {
  for (const [ty, ftype] of [
    ['Q8_0', 7],
    ['Q4_0', 2],
  ] as const) {
    const r = await exportGptGguf(DIR, (name) => (name === 'token_embd.weight' ? 'Q8_0' : ty));
    const bytes = concatBytes(r.chunks);
    const f = parseGguf(bytes);
    const w = await tensorsOf(f);
    const codec = getBlockType(ty);
    let sum = 0;
    for (const e of expectedTensors()) {
      const t = f.tensors.find((x) => x.name === e.name)!;
      const want = e.ne.length === 1 ? 'F32' : e.name === 'token_embd.weight' ? 'Q8_0' : ty;
      assert.equal(t.type.name.toUpperCase(), want, e.name);
      // independent size: rows * (ne0 / 32) blocks of 34 (q8_0) or 18 (q4_0) bytes, f32 4 bytes
      const bpb = want === 'F32' ? 4 : want === 'Q8_0' ? 34 : 18;
      const bs = want === 'F32' ? 1 : 32;
      const nbytes = (e.ne[0]! / bs) * bpb * (e.ne[1] ?? 1);
      assert.equal(t.nbytes, nbytes, e.name);
      sum += Math.ceil(nbytes / 32) * 32;
      if (e.ne.length === 1) continue;
      const s = S(e.source);
      const [n0, n1] = [e.ne[0]!, e.ne[1]!];
      let rows = s;
      if (e.linear) {
        rows = new Float32Array(s.length);
        for (let o = 0; o < n1; o++) for (let i = 0; i < n0; i++) rows[o * n0 + i] = s[i * n1 + o]!;
      }
      const c = getBlockType(want);
      // one encode per row (ggml quantizes row by row), then decode
      const expect = new Float32Array(rows.length);
      for (let o = 0; o < n1; o++) {
        const row = rows.subarray(o * n0, (o + 1) * n0);
        expect.set(c.decode(c.encode(row), n0), o * n0);
      }
      assert.deepEqual(w.get(e.name), expect, e.name);
    }
    assert.equal(codec.blockSize, 32);
    assert.equal(bytes.length, f.dataOffset + sum, 'file = header + padding + aligned tensors');
    assert.equal(f.dataOffset % 32, 0);
    assert.equal(f.get('general.file_type'), ftype);
  }
});

test('forward pass from the GGUF tensors matches onnxruntime (F32 within 1e-4)', async () => {
  assert.equal(IDS.length, 16);
  assert.ok(IDS.every((i) => i >= 0));
  const session = await openSession(join(DIR, 'model.onnx'));
  const ort = await runFloat(session, { ids: int64Tensor(IDS, [1, IDS.length]) });
  assert.deepEqual(ort.dims, [1, IDS.length, V]);

  const f32 = parseGguf(concatBytes((await exportGptGguf(DIR, 'F32')).chunks));
  const w = await tensorsOf(f32);
  const eps = f32.get('gpt2.attention.layer_norm_epsilon') as number;
  const ref = forward(w, IDS, eps, geluErf);
  const dF32 = maxDiff(ref, ort.data);
  assert.ok(dF32 < 1e-4, `F32 GGUF forward vs ORT: max |diff| ${dF32}`);

  // what llama.cpp itself computes differs by its tanh GELU; and Q8_0 weights add quantization error
  const dTanh = maxDiff(forward(w, IDS, eps, geluTanh), ort.data);
  const q8 = parseGguf(concatBytes((await exportGptGguf(DIR, 'Q8_0')).chunks));
  const dQ8 = maxDiff(forward(await tensorsOf(q8), IDS, eps, geluErf), ort.data);
  console.log(
    `# logits max |diff| vs ORT: F32 ${dF32.toExponential(2)}, F32+tanh GELU ${dTanh.toExponential(2)}, Q8_0 ${dQ8.toExponential(2)}`,
  );
  assert.ok(dTanh < 0.05 && dQ8 < 0.2, `tanh ${dTanh}, q8_0 ${dQ8}`);

  // the same forward WITHOUT the fold is off by the head bias: the fold is what makes it match
  const unfolded = new Map(w);
  unfolded.set('output_norm.bias', S('ln_f.bias'));
  assert.ok(maxDiff(forward(unfolded, IDS, eps, geluErf), ort.data) > 0.01);
});

test('refusals: K-quants on rows of 192, unknown types, bad shapes; fallback applies llama.cpp rules', async () => {
  await assert.rejects(
    exportGptGguf(DIR, 'Q4_K'),
    (e: unknown) =>
      e instanceof MixqError &&
      /not a multiple of the Q4_K block size 256/.test(e.message) &&
      e.field === 'types.token_embd.weight',
  );
  await assert.rejects(
    exportGptGguf(DIR, 'Q9_9'),
    (e: unknown) => e instanceof MixqError && /unknown type/.test(e.message),
  );
  const r = await exportGptGguf(DIR, 'Q4_K', { fallback: true });
  const by = new Map(r.report.map((x) => [x.name, x]));
  assert.equal(by.get('blk.0.attn_qkv.weight')?.type, 'Q5_0');
  assert.equal(by.get('blk.0.attn_qkv.weight')?.asked, 'Q4_K');
  assert.equal(by.get('blk.0.ffn_down.weight')?.type, 'Q4_K'); // rows of 768 = 3 * 256
  assert.equal(by.get('blk.0.ffn_down.weight')?.asked, undefined);
  const f = parseGguf(concatBytes(r.chunks));
  assert.equal(f.tensors.find((t) => t.name === 'blk.3.ffn_down.weight')?.type.name, 'q4_K');

  const base = {
    config: { nLayer: L, dModel: D, nHead: H, context: CTX, vocabSize: V },
    vocab: Array.from({ length: V }, (_, i) => String.fromCharCode(0x30 + i)),
    get: (n: string) => src.get(n)!,
  };
  assert.throws(
    () =>
      gpt2GgufFromWeights({
        ...base,
        get: (n) => (n === 'blocks.1.mlp_fc' ? { data: S(n), dims: [FF, D] } : src.get(n)!),
      }),
    (e: unknown) => e instanceof MixqError && e.field === 'tensors.blocks.1.mlp_fc.shape',
  );
  assert.throws(
    () => gpt2GgufFromWeights({ ...base, vocab: base.vocab.map((c, i) => (i === 5 ? base.vocab[4]! : c)) }),
    (e: unknown) => e instanceof MixqError && /duplicate token/.test(e.message),
  );
  assert.throws(
    () => gpt2GgufFromWeights({ ...base, headBias: 'error' }),
    (e: unknown) => e instanceof MixqError && e.field === 'head_bias',
  );
  // no '\n' in this vocab: no bos/eos keys unless given
  const noNl = gpt2GgufFromWeights(base);
  assert.equal(
    noNl.kv.some((k) => k.key === 'tokenizer.ggml.eos_token_id'),
    false,
  );
});
