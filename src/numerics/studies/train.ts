/**
 * Study `train`: a small network trained from scratch with weights (W), activations (A) and gradients (G)
 * in low-precision formats, against fp32.
 *
 * Data: the 8 x 8 handwritten digits (1797 images, 10 classes; UCI "Optical Recognition of Handwritten
 * Digits" test set as shipped by scikit-learn; models/digits/), pixels / 16, a seeded 75 / 25 split.
 * Model: 64 -> hidden (ReLU) -> 10, softmax cross-entropy, SGD on minibatches with the learning rate decayed
 * linearly from lr to lr / 20 (late updates are small: where bf16 round-to-nearest loses them), Glorot init.
 * The backward pass is written out (four GEMMs per step) so that every tensor a GEMM reads can be put in its
 * format: quantize-on-load, straight-through estimators (the gradient passes the rounding of W and A as if it
 * were the identity), exact products and fp32 accumulation in every GEMM (withPrecision with an fp32
 * accumulator, as tensor cores), per-tensor scales applied to the fp32 result. Scaled formats use the
 * absmax per-tensor scale (fp8, fp4, int8) or NVFP4's recipe (blocks of 16 along the GEMM's reduction
 * dimension, E4M3 block scales, an fp32 tensor scale; blocks/nvfp4.ts). Gradients may be rounded
 * stochastically. Master weights are fp32 except in the bf16-only configurations, whose weights are
 * stored and updated in bf16 (where round-to-nearest loses small updates and SR keeps them on average).
 * Softmax and the loss are computed in float64 with deterministic exp / log and rounded to fp32.
 *
 * Why not an autograd library: TensorFlow.js's CPU / WASM kernels compute in float32 and offer no hook to
 * round inside a GEMM's accumulation or to choose the accumulation format; the network is small enough
 * that an explicit backward pass is shorter and lets every rounding be seen.
 */
import { MixqError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { nvfp4Decode, nvfp4Encode } from '../../blocks/index.ts';
import { type FormatSpec, formatInfo, getFormat, type Rounding } from '../../formats/index.ts';
import { type Precision, withPrecision } from '../context.ts';
import { expDet, hashNumbers, logDet } from '../det-math.ts';
import { type Cell, NumberLog, type StudyResult } from './study.ts';

/** How a tensor is put in low precision before a GEMM reads it. */
type Scheme =
  | { readonly kind: 'plain'; readonly format: string }
  | { readonly kind: 'scaled'; readonly format: string }
  | { readonly kind: 'nvfp4' };

export interface TrainConfig {
  readonly name: string;
  readonly w: Scheme;
  readonly a: Scheme;
  readonly g: Scheme;
  /** Rounding of gradients. */
  readonly gRounding: Rounding;
  /** Weight storage and update: fp32 master weights, or bf16 weights updated in bf16. */
  readonly master: 'fp32' | 'bf16';
  readonly updateRounding: Rounding;
}

const plain = (format: string): Scheme => ({ kind: 'plain', format });
const scaled = (format: string): Scheme => ({ kind: 'scaled', format });
const NVFP4: Scheme = { kind: 'nvfp4' };

/** The configurations a study can run, by name. */
export const TRAIN_CONFIGS: Readonly<Record<string, TrainConfig>> = {
  fp32: {
    name: 'fp32',
    w: plain('fp32'),
    a: plain('fp32'),
    g: plain('fp32'),
    gRounding: 'nearest-even',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  'bf16-rn': {
    name: 'bf16-rn',
    w: plain('bf16'),
    a: plain('bf16'),
    g: plain('bf16'),
    gRounding: 'nearest-even',
    master: 'bf16',
    updateRounding: 'nearest-even',
  },
  'bf16-sr': {
    name: 'bf16-sr',
    w: plain('bf16'),
    a: plain('bf16'),
    g: plain('bf16'),
    gRounding: 'stochastic',
    master: 'bf16',
    updateRounding: 'stochastic',
  },
  fp8: {
    name: 'fp8',
    w: scaled('fp8_e4m3fn'),
    a: scaled('fp8_e4m3fn'),
    g: scaled('fp8_e5m2'),
    gRounding: 'stochastic',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  'fp8-rn': {
    name: 'fp8-rn',
    w: scaled('fp8_e4m3fn'),
    a: scaled('fp8_e4m3fn'),
    g: scaled('fp8_e5m2'),
    gRounding: 'nearest-even',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  fp4: {
    name: 'fp4',
    w: scaled('fp4_e2m1fn'),
    a: scaled('fp4_e2m1fn'),
    g: scaled('fp4_e2m1fn'),
    gRounding: 'stochastic',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  nvfp4: {
    name: 'nvfp4',
    w: NVFP4,
    a: NVFP4,
    g: NVFP4,
    gRounding: 'stochastic',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  'nvfp4-rn': {
    name: 'nvfp4-rn',
    w: NVFP4,
    a: NVFP4,
    g: NVFP4,
    gRounding: 'nearest-even',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
  int8: {
    name: 'int8',
    w: scaled('int8_narrow'),
    a: scaled('int8_narrow'),
    g: scaled('int8_narrow'),
    gRounding: 'stochastic',
    master: 'fp32',
    updateRounding: 'nearest-even',
  },
};

export const DEFAULT_TRAIN_CONFIGS = [
  'fp32',
  'bf16-rn',
  'bf16-sr',
  'fp8',
  'fp4',
  'nvfp4',
  'nvfp4-rn',
  'int8',
];

export interface TrainOptions {
  /** The digits file's bytes (models/digits/digits.u8.gz, decompressed): 1797 rows of 64 pixels + label. */
  data: Uint8Array;
  epochs?: number;
  hidden?: number;
  batch?: number;
  lr?: number;
  configs?: readonly string[];
  /** Use only this many samples (a reduced run; default all 1797). */
  samples?: number;
  seed?: number;
}

const ROW = 65;

/** An operand ready for a GEMM: fp32-exact values and the per-tensor scale to apply to the result. */
interface Operand {
  readonly v: Float64Array;
  readonly scale: number;
}

const fr = Math.fround;

/** One rounding context per (format, rounding) for a whole training run: its generator advances. */
class Rounders {
  private readonly map = new Map<string, Precision>();
  constructor(private readonly seed: number) {}
  get(format: string, rounding: Rounding): Precision {
    const key = `${format}|${rounding}`;
    let c = this.map.get(key);
    if (!c) {
      c = withPrecision({ format, rounding, seed: this.seed + this.map.size, overflow: 'saturate' });
      this.map.set(key, c);
    }
    return c;
  }
}

/** x (rows x cols, row-major) in a scheme; blocks (NVFP4) run along rows, i.e. the GEMM reduces over cols. */
function quantize(
  x: Float64Array,
  rows: number,
  cols: number,
  s: Scheme,
  rounding: Rounding,
  q: Rounders,
  rng: Rng,
): Operand {
  if (s.kind === 'plain') return { v: q.get(s.format, rounding).roundArray(x), scale: 1 };
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]!));
  if (s.kind === 'scaled') {
    const spec: FormatSpec = getFormat(s.format);
    const top = formatInfo(spec).maxFinite;
    const scale = amax === 0 ? 1 : fr(amax / top);
    const ctx = q.get(s.format, rounding);
    const v = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) v[i] = ctx.round(fr(x[i]! / scale));
    return { v, scale };
  }
  // NVFP4: per row, blocks of 16 (zero padded), E4M3 block scales, fp32 tensor scale amax / (6 * 448)
  const ts = amax === 0 ? 1 : fr(amax / (6 * 448));
  const width = Math.ceil(cols / 16) * 16;
  const row = new Float32Array(width);
  const v = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    row.fill(0);
    for (let c = 0; c < cols; c++) row[c] = x[r * cols + c]!;
    const enc = nvfp4Encode(row, { tensorScale: ts, rounding, seed: rng.nextU32() });
    const dec = nvfp4Decode(enc.bytes, width, 1); // e2m1 * e4m3: exact in fp32
    for (let c = 0; c < cols; c++) v[r * cols + c] = dec[c]!;
  }
  return { v, scale: ts };
}

function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

/**
 * C = A B (A m x k, B k x n) with both operands in their schemes along k: exact products, fp32
 * accumulation, then the two tensor scales applied in fp32.
 */
function gemm(
  g: Precision,
  q: Rounders,
  A: Float64Array,
  sa: Scheme,
  ra: Rounding,
  B: Float64Array,
  sb: Scheme,
  rb: Rounding,
  m: number,
  k: number,
  n: number,
  rng: Rng,
): Float64Array {
  const qa = quantize(A, m, k, sa, ra, q, rng);
  const qbT = quantize(transpose(B, k, n), n, k, sb, rb, q, rng); // B's columns are its reduction rows
  const C = g.matmul(qa.v, transpose(qbT.v, n, k), m, k, n);
  const s = fr(qa.scale * qbT.scale);
  if (s !== 1) for (let i = 0; i < C.length; i++) C[i] = fr(C[i]! * s);
  return C;
}

interface Net {
  w1: Float64Array;
  b1: Float64Array;
  w2: Float64Array;
  b2: Float64Array;
}

function initNet(hidden: number, rng: Rng): Net {
  const glorot = (fanIn: number, fanOut: number) => {
    const lim = Math.sqrt(6 / (fanIn + fanOut));
    return Float64Array.from({ length: fanIn * fanOut }, () => fr((2 * rng.nextFloat() - 1) * lim));
  };
  return {
    w1: glorot(64, hidden),
    b1: new Float64Array(hidden),
    w2: glorot(hidden, 10),
    b2: new Float64Array(10),
  };
}

/** Softmax of each row of z (fp32 values) in float64, probabilities rounded to fp32; and the mean loss. */
function softmax(
  z: Float64Array,
  labels: Uint8Array,
  off: number,
  rows: number,
): { p: Float64Array; loss: number } {
  const p = new Float64Array(z.length);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < 10; c++) mx = Math.max(mx, z[r * 10 + c]!);
    let sum = 0;
    for (let c = 0; c < 10; c++) {
      const e = expDet(z[r * 10 + c]! - mx);
      p[r * 10 + c] = e;
      sum += e;
    }
    for (let c = 0; c < 10; c++) p[r * 10 + c] = fr(p[r * 10 + c]! / sum);
    loss -= logDet(Math.max(p[r * 10 + labels[off + r]!]!, 1e-30));
  }
  return { p, loss: loss / rows };
}

/** Forward pass; returns hidden pre-activations, hidden activations and logits. */
function forward(
  net: Net,
  cfg: TrainConfig,
  g: Precision,
  q: Rounders,
  x: Float64Array,
  rows: number,
  hidden: number,
  rng: Rng,
): { z1: Float64Array; a1: Float64Array; z2: Float64Array } {
  const aR: Rounding = 'nearest-even';
  const z1 = gemm(g, q, x, cfg.a, aR, net.w1, cfg.w, 'nearest-even', rows, 64, hidden, rng);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < hidden; j++) z1[r * hidden + j] = fr(z1[r * hidden + j]! + net.b1[j]!);
  const a1 = z1.map((v) => (v > 0 ? v : 0));
  const z2 = gemm(g, q, a1, cfg.a, aR, net.w2, cfg.w, 'nearest-even', rows, hidden, 10, rng);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < 10; j++) z2[r * 10 + j] = fr(z2[r * 10 + j]! + net.b2[j]!);
  return { z1, a1, z2 };
}

export function trainStudy(opts: TrainOptions): StudyResult {
  const epochs = opts.epochs ?? 15;
  const hidden = opts.hidden ?? 32;
  const batch = opts.batch ?? 32;
  const lr = opts.lr ?? 0.2;
  const seed = opts.seed ?? 1;
  const names = opts.configs ?? DEFAULT_TRAIN_CONFIGS;
  for (const c of names)
    if (!TRAIN_CONFIGS[c])
      throw new MixqError(`unknown configuration '${c}'`, {
        source: 'train study',
        field: 'configs',
        expected: Object.keys(TRAIN_CONFIGS).join(', '),
      });
  const total = Math.floor(opts.data.length / ROW);
  if (total * ROW !== opts.data.length || total < 20)
    throw new MixqError(`${opts.data.length} bytes`, {
      source: 'digits data',
      expected: 'rows of 65 bytes (64 pixels, label)',
    });
  const nUse = Math.min(total, opts.samples ?? total);
  // seeded permutation, 75 / 25 split
  const split = new Rng(seed);
  const perm = Array.from({ length: total }, (_, i) => i);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(split.nextFloat() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const use = perm.slice(0, nUse);
  const nTrain = Math.floor(nUse * 0.75);
  const X = new Float64Array(nUse * 64);
  const Y = new Uint8Array(nUse);
  use.forEach((row, i) => {
    for (let c = 0; c < 64; c++) X[i * 64 + c] = opts.data[row * ROW + c]! / 16;
    Y[i] = opts.data[row * ROW + 64]!;
  });
  const g = withPrecision({ format: 'fp32', accumulator: { format: 'fp32' } });
  const log = new NumberLog();
  const points: { x: number; y: number; series: string; panel: string }[] = [];
  const rows: Cell[][] = [];
  const finals: Record<string, number> = {};
  for (const name of names) {
    const cfg = TRAIN_CONFIGS[name]!;
    const rng = new Rng(seed + 1000);
    const q = new Rounders(seed + 2000);
    const net = initNet(hidden, rng);
    const wctx = withPrecision({ format: cfg.master, rounding: cfg.updateRounding, seed: seed + 7 });
    if (cfg.master === 'bf16') {
      net.w1 = wctx.roundArray(net.w1);
      net.w2 = wctx.roundArray(net.w2);
    }
    const order = Array.from({ length: nTrain }, (_, i) => i);
    let lastAcc = 0;
    let lastLoss = 0;
    for (let ep = 1; ep <= epochs; ep++) {
      const lrEp = fr(lr * (1 - ((ep - 1) / Math.max(1, epochs - 1)) * (19 / 20)));
      for (let i = nTrain - 1; i > 0; i--) {
        const j = Math.floor(rng.nextFloat() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let lossSum = 0;
      let batches = 0;
      for (let b0 = 0; b0 < nTrain; b0 += batch) {
        const rowsB = Math.min(batch, nTrain - b0);
        const xb = new Float64Array(rowsB * 64);
        const yb = new Uint8Array(rowsB);
        for (let r = 0; r < rowsB; r++) {
          const s = order[b0 + r]!;
          xb.set(X.subarray(s * 64, s * 64 + 64), r * 64);
          yb[r] = Y[s]!;
        }
        const { z1, a1, z2 } = forward(net, cfg, g, q, xb, rowsB, hidden, rng);
        const { p, loss } = softmax(z2, yb, 0, rowsB);
        lossSum += loss;
        batches++;
        // dL/dz2 = (p - onehot) / rows, in fp32
        const g2 = Float64Array.from(p, (v, i) =>
          fr((v - (yb[Math.floor(i / 10)] === i % 10 ? 1 : 0)) / rowsB),
        );
        const gR = cfg.gRounding;
        const dw2 = gemm(
          g,
          q,
          transpose(a1, rowsB, hidden),
          cfg.a,
          'nearest-even',
          g2,
          cfg.g,
          gR,
          hidden,
          rowsB,
          10,
          rng,
        );
        const da1 = gemm(
          g,
          q,
          g2,
          cfg.g,
          gR,
          transpose(net.w2, hidden, 10),
          cfg.w,
          'nearest-even',
          rowsB,
          10,
          hidden,
          rng,
        );
        const g1 = da1.map((v, i) => (z1[i]! > 0 ? v : 0));
        const dw1 = gemm(
          g,
          q,
          transpose(xb, rowsB, 64),
          cfg.a,
          'nearest-even',
          g1,
          cfg.g,
          gR,
          64,
          rowsB,
          hidden,
          rng,
        );
        const update = (w: Float64Array, dw: Float64Array) => {
          for (let i = 0; i < w.length; i++) w[i] = wctx.sub(w[i]!, wctx.mul(lrEp, dw[i]!));
        };
        update(net.w1, dw1);
        update(net.w2, dw2);
        for (let j = 0; j < 10; j++) {
          let s = 0;
          for (let r = 0; r < rowsB; r++) s = fr(s + g2[r * 10 + j]!);
          net.b2[j] = fr(net.b2[j]! - fr(lrEp * s));
        }
        for (let j = 0; j < hidden; j++) {
          let s = 0;
          for (let r = 0; r < rowsB; r++) s = fr(s + g1[r * hidden + j]!);
          net.b1[j] = fr(net.b1[j]! - fr(lrEp * s));
        }
      }
      // test accuracy with the trained weights in their formats (activations rounded to nearest)
      const nTest = nUse - nTrain;
      const { z2 } = forward(
        net,
        cfg,
        g,
        new Rounders(seed + 99),
        X.subarray(nTrain * 64),
        nTest,
        hidden,
        new Rng(seed + 99),
      );
      let correct = 0;
      for (let r = 0; r < nTest; r++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (z2[r * 10 + c]! > z2[r * 10 + best]!) best = c;
        if (best === Y[nTrain + r]) correct++;
      }
      lastAcc = correct / nTest;
      lastLoss = lossSum / batches;
      log.add(lastLoss, lastAcc);
      points.push({ x: ep, y: lastLoss, series: name, panel: 'training loss' });
      points.push({ x: ep, y: lastAcc, series: name, panel: 'test accuracy' });
    }
    log.addAll(net.w1);
    log.addAll(net.w2);
    finals[name] = lastAcc;
    const c = TRAIN_CONFIGS[name]!;
    const desc = (s: Scheme) =>
      s.kind === 'nvfp4' ? 'nvfp4' : s.kind === 'scaled' ? `${s.format} (scaled)` : s.format;
    rows.push([
      name,
      desc(c.w),
      desc(c.a),
      `${desc(c.g)}${c.gRounding === 'stochastic' ? ' SR' : ''}`,
      `${c.master}${c.master === 'bf16' ? (c.updateRounding === 'stochastic' ? ' SR' : ' RN') : ''}`,
      lastLoss.toFixed(4),
      `${(100 * lastAcc).toFixed(1)}%`,
    ]);
  }
  const base = finals['fp32'];
  const headline = Object.entries(finals)
    .map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`)
    .join(', ');
  return {
    name: 'train',
    title: 'Training a digits MLP from scratch with FP8 / FP4 / NVFP4 / INT8 / bf16 tensors, against fp32',
    params: { epochs, hidden, batch, lr, samples: nUse, train: nTrain, seed, configs: names.join(' ') },
    tables: [
      {
        title: `64-${hidden}-10 MLP, SGD lr ${lr} decayed to ${lr / 20}, batch ${batch}, ${epochs} epochs, ${nTrain} train / ${nUse - nTrain} test digits${base !== undefined ? `; fp32 reaches ${(100 * base).toFixed(1)}%` : ''}`,
        columns: [
          'config',
          'weights',
          'activations',
          'gradients',
          'master / update',
          'final train loss',
          'test accuracy',
        ],
        rows,
      },
    ],
    plot: {
      title: 'Training loss and test accuracy per epoch',
      x: { label: 'epoch' },
      y: { label: 'value' },
      points,
    },
    headline: `test accuracy after ${epochs} epochs: ${headline}`,
    hash: hashNumbers(log.all()),
  };
}
