/**
 * Integer formats: intN (two's complement, [-2^(N-1), 2^(N-1)-1]), uintN ([0, 2^N-1]) for N = 1..16,
 * the symmetric narrow ranges int4_narrow [-7, 7] and int8_narrow [-127, 127] (any intN_narrow can be
 * named, see registry.ts), and ternary {-1, 0, 1} (= int2_narrow: codes 00 = 0, 01 = 1, 11 = -1).
 *
 * int4  SVVV  (ONNX INT4, two's complement)      uint4  VVVV  (ONNX UINT4)
 */
import type { IntSpec } from '../spec.ts';

/** An integer format record; `intSpec(8, true, true)` is int8_narrow. */
export function intSpec(bits: number, signed: boolean, narrow = false): IntSpec {
  const name = `${signed ? 'int' : 'uint'}${bits}${narrow ? '_narrow' : ''}`;
  const lo = signed ? (narrow ? -(2 ** (bits - 1) - 1) : -(2 ** (bits - 1))) : 0;
  const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  return { kind: 'int', name, bits, signed, narrow, description: `${bits}-bit integer [${lo}, ${hi}]` };
}

const widths = Array.from({ length: 16 }, (_, i) => i + 1);

export const signedInts: readonly IntSpec[] = widths.map((b) => intSpec(b, true));
export const unsignedInts: readonly IntSpec[] = widths.map((b) => intSpec(b, false));
export const narrowInts: readonly IntSpec[] = [intSpec(4, true, true), intSpec(8, true, true)];

export const ternary: IntSpec = {
  kind: 'int',
  name: 'ternary',
  bits: 2,
  signed: true,
  narrow: true,
  description: 'ternary {-1, 0, 1} (int2 narrow)',
};
