/**
 * Small builders for new ONNX messages (tensors, nodes, attributes) as protobufjs instances of the schema
 * in ../schema.ts, so they encode with writeOnnx exactly like decoded ones. Also the opset bookkeeping a
 * rewritten graph needs. Field meanings: onnx/onnx.proto.
 */
import { f32ToBf16Bits, f32ToF16Bits } from '../../core/bits.ts';
import { ATTRIBUTE_TYPE_CODES as A, DATA_TYPE_CODES as C, onnxMessageType } from '../../io/onnx/schema.ts';
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
} from '../../io/onnx/proto-types.ts';
import { int64ToNumber } from '../../io/onnx/read.ts';

/** A tensor with inline raw_data. */
export function makeTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  raw: Uint8Array,
): TensorProto {
  return onnxMessageType('TensorProto').create({
    name,
    data_type: dataType,
    dims: dims.slice(),
    raw_data: raw,
  }) as unknown as TensorProto;
}

export type FloatStorage = 'float32' | 'float16' | 'bfloat16';

/** float32, float16 or bfloat16 raw bytes of values (the 16-bit types round to nearest even). */
export function floatBytes(values: Float32Array, type: FloatStorage): Uint8Array {
  const width = type === 'float32' ? 4 : 2;
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (type === 'float32') view.setFloat32(4 * i, values[i]!, true);
    else view.setUint16(2 * i, (type === 'float16' ? f32ToF16Bits : f32ToBf16Bits)(values[i]!), true);
  }
  return out;
}

export function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setBigInt64(8 * i, BigInt(v), true);
  });
  return out;
}

export type AttrValue = number | number[] | string;

function makeAttr(name: string, v: AttrValue): AttributeProto {
  const T = onnxMessageType('AttributeProto');
  if (typeof v === 'string')
    return T.create({ name, type: A.STRING, s: new TextEncoder().encode(v) }) as unknown as AttributeProto;
  if (Array.isArray(v)) return T.create({ name, type: A.INTS, ints: v }) as unknown as AttributeProto;
  return T.create({ name, type: A.INT, i: v }) as unknown as AttributeProto;
}

/** A node; integer / integer-list / string attributes only (all the exporters need). */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  opts: { name?: string; domain?: string; attrs?: Record<string, AttrValue> } = {},
): NodeProto {
  return onnxMessageType('NodeProto').create({
    op_type: opType,
    input: inputs.slice(),
    output: outputs.slice(),
    name: opts.name ?? '',
    domain: opts.domain ?? '',
    attribute: Object.entries(opts.attrs ?? {}).map(([k, v]) => makeAttr(k, v)),
  }) as unknown as NodeProto;
}

/** Integer attribute value of a node, or `dflt`. */
export function intAttr(node: NodeProto, name: string, dflt: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a ? int64ToNumber(a.i, node.name, `${node.name}.${name}`) : dflt;
}

/** Version of an opset domain ('' = ai.onnx) the model imports, or undefined. */
export function opsetVersion(proto: ModelProto, domain: string): number | undefined {
  const norm = (d: string): string => (d === 'ai.onnx' ? '' : d);
  const o = proto.opset_import.find((x) => norm(x.domain) === norm(domain));
  return o ? int64ToNumber(o.version, '', `opset_import[${domain}]`) : undefined;
}

/** Adds or raises an opset import (never lowers one). */
export function requireOpset(proto: ModelProto, domain: string, version: number): void {
  const have = opsetVersion(proto, domain);
  if (have !== undefined && have >= version) return;
  const list = proto.opset_import.filter((x) => (x.domain === 'ai.onnx' ? '' : x.domain) !== domain);
  list.push(onnxMessageType('OperatorSetIdProto').create({ domain, version }) as never);
  proto.opset_import = list;
}

/** Raises ir_version to at least `v`. */
export function requireIrVersion(proto: ModelProto, v: number): void {
  if (int64ToNumber(proto.ir_version, '', 'ir_version') < v) proto.ir_version = v;
}

export { C as DT };

/**
 * A namer for new tensors and nodes: returns `base`, or `base_1`, `base_2`, ... when one of `graphs` (its
 * initializers, inputs, outputs, value_info, node names, node inputs and outputs) or an earlier call
 * already uses the name. Pass every graph of a model with subgraphs: names are visible in nested scopes.
 */
export function freshNamer(graphs: GraphProto | readonly GraphProto[]): (base: string) => string {
  const taken = new Set<string>();
  for (const g of Array.isArray(graphs) ? graphs : [graphs as GraphProto]) {
    for (const t of g.initializer) taken.add(t.name);
    for (const v of [...g.input, ...g.output, ...g.value_info]) taken.add(v.name);
    for (const n of g.node) for (const x of [n.name, ...n.input, ...n.output]) taken.add(x);
  }
  return (base) => {
    let c = base;
    for (let i = 1; taken.has(c); i++) c = `${base}_${i}`;
    taken.add(c);
    return c;
  };
}

/**
 * A float initializer stored as `type` (scales, offsets, 16-bit weights), read as float32: a 16-bit tensor
 * is widened by a Cast node (constant-folded at load) added to `front`, whose output is `out` (default a
 * fresh name). Returns the name that holds the float32 values.
 */
export function scaleTensors(
  fresh: (n: string) => string,
  name: string,
  values: Float32Array,
  dims: readonly number[],
  type: FloatStorage,
  inits: TensorProto[],
  front: NodeProto[],
  out = type === 'float32' ? name : fresh(`${name}_f32`),
): string {
  const dt = type === 'float32' ? C.FLOAT : type === 'float16' ? C.FLOAT16 : C.BFLOAT16;
  inits.push(makeTensor(name, dt, dims, floatBytes(values, type)));
  if (type === 'float32') return name;
  front.push(makeNode('Cast', [name], [out], { name: fresh(`${name}_cast`), attrs: { to: C.FLOAT } }));
  return out;
}
