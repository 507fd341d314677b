/**
 * TypeScript shapes of the decoded ONNX messages (see schema.ts for the field numbers). These describe
 * protobufjs message instances: absent scalar fields read as their default from the prototype, absent
 * repeated fields read as a shared frozen empty array (assign a new array to change one), absent message
 * fields read as null. int64 fields are long.js `Long` values (exact over the whole 64-bit range; e.g.
 * Slice's INT64_MAX ends), or plain numbers in messages built by hand.
 *
 * Only the fields mixq reads or writes are spelled out; the rest is still decoded and re-encoded.
 */
import type protobuf from 'protobufjs/light.js';

export type Int64 = number | protobuf.Long;

export interface StringStringEntryProto {
  key: string;
  value: string;
}

export interface OperatorSetIdProto {
  domain: string;
  version: Int64;
}

export interface TensorProto {
  dims: Int64[];
  data_type: number;
  float_data: number[];
  int32_data: number[];
  string_data: Uint8Array[];
  int64_data: Int64[];
  name: string;
  doc_string: string;
  raw_data: Uint8Array;
  external_data: StringStringEntryProto[];
  data_location: number;
  double_data: number[];
  uint64_data: Int64[];
  metadata_props: StringStringEntryProto[];
}

export interface SparseTensorProto {
  values: TensorProto | null;
  indices: TensorProto | null;
  dims: Int64[];
}

export interface AttributeProto {
  name: string;
  ref_attr_name: string;
  doc_string: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t: TensorProto | null;
  g: GraphProto | null;
  sparse_tensor: SparseTensorProto | null;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparse_tensors: SparseTensorProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: AttributeProto[];
  doc_string: string;
}

export interface ValueInfoProto {
  name: string;
  doc_string: string;
}

export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  sparse_initializer: SparseTensorProto[];
  doc_string: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  value_info: ValueInfoProto[];
}

export interface TrainingInfoProto {
  initialization: GraphProto | null;
  algorithm: GraphProto | null;
}

export interface FunctionProto {
  name: string;
  domain: string;
  node: NodeProto[];
}

export interface ModelProto {
  ir_version: Int64;
  opset_import: OperatorSetIdProto[];
  producer_name: string;
  producer_version: string;
  domain: string;
  model_version: Int64;
  doc_string: string;
  graph: GraphProto | null;
  metadata_props: StringStringEntryProto[];
  training_info: TrainingInfoProto[];
  functions: FunctionProto[];
}
