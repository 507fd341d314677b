/**
 * Raising a model's default (ai.onnx) opset so standard DequantizeLinear-21 (int4/uint4, block_size) can
 * be used. Only the operator changes between opset 13 and 21 that are not backward compatible are
 * converted (onnx/docs/Changelog.md):
 * - opset 18: ReduceMax/Min/Mean/Prod/L1/L2/LogSum/LogSumExp/SumSquare take `axes` as an input instead
 *   of an attribute (ReduceSum already did at 13);
 * - opset 18: Split needs the `split` input or the `num_outputs` attribute.
 * Every other change in 13..21 only adds types or optional attributes. Models below opset 13 are refused
 * (Softmax, Squeeze, Split, Clip, ... changed meaning); the caller then uses the com.microsoft ops.
 */
import { MixqError } from '../../core/errors.ts';
import type { GraphProto, ModelProto, NodeProto } from '../../io/onnx/proto-types.ts';
import { int64ToNumber } from '../../io/onnx/read.ts';
import { DT, int64Bytes, makeTensor, opsetVersion, requireIrVersion, requireOpset } from './build.ts';
import { onnxMessageType } from '../../io/onnx/schema.ts';

const REDUCE_18 = new Set([
  'ReduceMax',
  'ReduceMin',
  'ReduceMean',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
]);

/** Whether the default opset can be raised to `target` by upgradeDefaultOpset. */
export function canUpgradeOpset(proto: ModelProto, target: number): boolean {
  const v = opsetVersion(proto, '') ?? 1;
  return v >= target || v >= 13;
}

function visitGraphs(g: GraphProto, fn: (g: GraphProto) => void): void {
  fn(g);
  for (const n of g.node)
    for (const a of n.attribute) {
      if (a.g) visitGraphs(a.g, fn);
      for (const s of a.graphs) visitGraphs(s, fn);
    }
}

function isDefault(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/**
 * Raises the ai.onnx opset to `target` (and ir_version to what that opset needs), converting the nodes
 * listed above. Returns the previous version.
 * @throws MixqError when the model's opset is below 13 or it has local functions using ai.onnx.
 */
export function upgradeDefaultOpset(proto: ModelProto, target: number, source = ''): number {
  const from = opsetVersion(proto, '') ?? 1;
  if (from >= target) return from;
  if (from < 13)
    throw new MixqError(`the model uses ai.onnx opset ${from}`, {
      source,
      field: 'opset_import',
      expected: `opset >= 13 to raise it to ${target} (older operator semantics are not converted)`,
    });
  if (proto.functions.length > 0)
    throw new MixqError('models with local functions are not upgraded', {
      source,
      field: 'functions',
      expected: `a model already at opset ${target}`,
    });
  if (from < 18 && target >= 18 && proto.graph) {
    let counter = 0;
    visitGraphs(proto.graph, (g) => {
      for (const n of g.node) {
        if (!isDefault(n)) continue;
        if (REDUCE_18.has(n.op_type)) {
          const a = n.attribute.find((x) => x.name === 'axes');
          if (!a) continue;
          const axes = a.ints.map((v, i) => int64ToNumber(v, source, `${n.name}.axes[${i}]`));
          const name = `${n.name || n.op_type}_axes_opset18_${counter++}`;
          g.initializer = [...g.initializer, makeTensor(name, DT.INT64, [axes.length], int64Bytes(axes))];
          n.attribute = n.attribute.filter((x) => x.name !== 'axes');
          n.input = [n.input[0] ?? '', name];
        } else if (n.op_type === 'Split' && (n.input.length < 2 || n.input[1] === '')) {
          if (!n.attribute.some((x) => x.name === 'num_outputs'))
            n.attribute = [
              ...n.attribute,
              onnxMessageType('AttributeProto').create({
                name: 'num_outputs',
                type: 2,
                i: n.output.length,
              }) as never,
            ];
        }
      }
    });
  }
  requireOpset(proto, '', target);
  // IR version 10 introduced the opset-21 types (int4/uint4); 9 covers 19-20, 8 covers 18.
  requireIrVersion(proto, target >= 21 ? 10 : target >= 19 ? 9 : 8);
  return from;
}
