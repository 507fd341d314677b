/**
 * Block format throughput: encode (quantize) and decode (dequantize) of 2^20 N(0,1) values for Q4_0,
 * Q8_0, Q4_K, Q6_K, ggml MXFP4 and OCP MXFP4 (mixq/formats element codec), in M values/s, with two
 * baselines measured in the same run: a plain copy of the float32 data (memory bandwidth bound) and a
 * naive per-block absmax int8 round trip written inline (the simplest possible block quantizer).
 */
import { GGML_CODECS } from '../src/blocks/ggml/index.ts';
import { mxDecode, mxEncode } from '../src/blocks/mx.ts';
import { nvfp4Decode, nvfp4Encode } from '../src/blocks/nvfp4.ts';
import { Rng } from '../src/core/rng.ts';
import { printTable, timeBest } from './util.ts';

const N = 1 << 20;

function naiveInt8(x: Float32Array, q: Int8Array, s: Float32Array): void {
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    s[b >> 5] = d;
    for (let i = b; i < b + 32; i++) q[i] = Math.round(x[i]! * id);
  }
}

export default async function bench(): Promise<void> {
  const rng = new Rng(1);
  const x = Float32Array.from({ length: N }, () => rng.nextNormal());
  const copy = new Float32Array(N);
  const mvs = (ms: number): number => N / ms / 1e3;

  const copyMs = timeBest(() => copy.set(x));
  const q = new Int8Array(N);
  const s = new Float32Array(N / 32);
  const naiveMs = timeBest(() => naiveInt8(x, q, s));

  const rows: string[][] = [];
  const add = (name: string, encMs: number, decMs: number): void => {
    rows.push([
      name,
      mvs(encMs).toFixed(1),
      mvs(decMs).toFixed(1),
      (mvs(encMs) / mvs(naiveMs)).toFixed(3),
      (mvs(decMs) / mvs(copyMs)).toFixed(4),
    ]);
  };
  for (const name of ['Q4_0', 'Q8_0', 'Q4_K', 'Q6_K', 'MXFP4'] as const) {
    const c = GGML_CODECS[name];
    const bytes = c.quantizeRef(x);
    add(
      `ggml ${name}`,
      timeBest(() => c.quantizeRef(x)),
      timeBest(() => c.dequantize(bytes, N)),
    );
  }
  const mx = mxEncode('mxfp4_e2m1', x);
  add(
    'OCP mxfp4_e2m1',
    timeBest(() => mxEncode('mxfp4_e2m1', x)),
    timeBest(() => mxDecode('mxfp4_e2m1', mx, N)),
  );
  const nv = nvfp4Encode(x).bytes;
  add(
    'NVFP4',
    timeBest(() => nvfp4Encode(x)),
    timeBest(() => nvfp4Decode(nv, N)),
  );

  console.log(
    `${N} float32 values; baselines: copy ${mvs(copyMs).toFixed(0)} M/s, naive int8 blocks ${mvs(naiveMs).toFixed(1)} M/s`,
  );
  printTable(['format', 'encode M/s', 'decode M/s', 'encode / naive int8', 'decode / copy'], rows);
}
