/** Timing helpers shared by the benchmarks. */
import { DATA_TYPE_CODES as C, onnxMessageType, readOnnx, writeOnnx } from '../src/io/onnx/index.ts';
import type { NodeProto, TensorProto } from '../src/io/onnx/proto-types.ts';

/** Runs fn repeatedly (at least minMs and minRuns) and returns the best time per run in milliseconds. */
export function timeBest(fn: () => void, minMs = 300, minRuns = 3): number {
  fn(); // warm-up (JIT)
  let best = Infinity;
  let runs = 0;
  const start = performance.now();
  while (runs < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
    runs++;
  }
  return best;
}

/** Prints rows as an aligned text table. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/**
 * Times several functions in alternation (one run of each per round, for at least minMs and minRounds)
 * and returns the best milliseconds per run of each: on a noisy machine their ratios then come from the
 * same moments, not from phases seconds apart.
 */
export function timeInterleaved(fns: readonly (() => void)[], minMs = 300, minRounds = 3): number[] {
  for (const fn of fns) fn(); // warm-up (JIT)
  const best = fns.map(() => Infinity);
  const start = performance.now();
  for (let round = 0; round < minRounds || performance.now() - start < minMs; round++) {
    fns.forEach((fn, i) => {
      const t0 = performance.now();
      fn();
      best[i] = Math.min(best[i]!, performance.now() - t0);
    });
  }
  return best;
}

/**
 * A float32-in ONNX model of `nodes` over `inits` (opset 21 + com.microsoft 1), for the onnxruntime peers
 * of the benchmarks: inputs and outputs as [name, shape] pairs.
 */
export function benchOnnxModel(
  name: string,
  inputs: readonly (readonly [string, readonly number[]])[],
  outputs: readonly (readonly [string, readonly number[]])[],
  inits: TensorProto[],
  nodes: NodeProto[],
): Uint8Array {
  const vi = ([n, shape]: readonly [string, readonly number[]]) => ({
    name: n,
    type: { tensor_type: { elem_type: C.FLOAT, shape: { dim: shape.map((d) => ({ dim_value: d })) } } },
  });
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: 9,
    producer_name: 'mixq-bench',
    opset_import: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: { name, input: inputs.map(vi), output: outputs.map(vi) },
  });
  const model = readOnnx(new Uint8Array(onnxMessageType('ModelProto').encode(proto).finish()), {
    source: name,
  });
  model.proto.graph!.initializer = inits;
  model.proto.graph!.node = nodes;
  return writeOnnx(model);
}
