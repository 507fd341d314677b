/** Loader for test/golden/gptq_reference.json (f32hex arrays: 8 hex digits = one float32 bit pattern). */
import { readFileSync } from 'node:fs';

export function f32hex(s: string): Float32Array {
  const n = s.length / 8;
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = Number.parseInt(s.slice(8 * i, 8 * i + 8), 16);
  return new Float32Array(u.buffer);
}

export interface GptqCase {
  id: string;
  bits: number;
  groupsize: number;
  act_order: boolean;
  sym: boolean;
  percdamp: number;
  blocksize: number;
  static_groups: boolean;
  err_out_fro2_gptq: number;
  err_out_fro2_rtn: number;
  rtn_ref: string;
  perm: number[] | null;
  g_idx: number[];
  n_groups: number;
  scale_f32hex: string;
  zero_f32hex: string;
  codes_hex: string;
  Q_f32hex: string;
}
export interface RtnRef {
  bits: number;
  groupsize: number;
  sym: boolean;
  err_out_fro2: number;
  scale_f32hex: string;
  zero_f32hex: string;
  n_groups: number;
  codes_hex: string;
  Q_f32hex: string;
}
export interface GptqGolden {
  n: number;
  rows: number;
  cols: number;
  W_f32hex: string;
  H_f32hex: string;
  X_f32hex: string;
  rtn: Record<string, RtnRef>;
  cases: GptqCase[];
}

let cached: GptqGolden | undefined;
export function loadGptqGolden(): GptqGolden {
  cached ??= JSON.parse(readFileSync('test/golden/gptq_reference.json', 'utf8')) as GptqGolden;
  return cached;
}

export function hexCodes(s: string): Uint16Array {
  return Uint16Array.from(s, (c) => Number.parseInt(c, 16));
}
