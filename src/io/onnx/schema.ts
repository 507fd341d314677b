/**
 * The ONNX protobuf schema as a protobufjs JSON descriptor, loaded with protobufjs' light (reflection)
 * build, which needs no parser and no Node built-ins, so it works in browsers.
 *
 * Source: onnx/onnx `onnx/onnx.proto` (the proto2 file that producers compile against; IR version 11,
 * onnx 1.18+): field numbers, types and `[packed = true]` options copied by hand from it. Every message is
 * declared `edition: 'proto2'` so that, like the C++/Python runtimes:
 *   - scalar fields track presence: a field present on the wire with its default value (e.g. `domain: ""`)
 *     is written back, absent fields stay absent;
 *   - repeated scalars are unpacked unless the .proto says `packed = true` (dims, ints, floats are
 *     unpacked; TensorProto's *_data arrays are packed).
 * protobufjs can keep fields it does not know in `$unknowns` and write them back (read.ts turns this on),
 * so a model from a newer ONNX version keeps its extra fields through a read/write round trip.
 *
 * Names are the .proto names (snake_case) so a reader can check them against onnx.proto directly.
 */
import protobuf from 'protobufjs/light.js';

type FieldJson = { type: string; id: number; rule?: 'repeated'; options?: { packed: boolean } };
type MessageJson = {
  edition: 'proto2';
  fields: Record<string, FieldJson>;
  oneofs?: Record<string, { oneof: string[] }>;
  nested?: Record<string, MessageJson | EnumJson>;
};
type EnumJson = { values: Record<string, number> };

const f = (type: string, id: number): FieldJson => ({ type, id });
const rep = (type: string, id: number): FieldJson => ({ type, id, rule: 'repeated' });
const packed = (type: string, id: number): FieldJson => ({
  type,
  id,
  rule: 'repeated',
  options: { packed: true },
});
const msg = (
  fields: Record<string, FieldJson>,
  extra: Pick<MessageJson, 'oneofs' | 'nested'> = {},
): MessageJson => ({ edition: 'proto2', fields, ...extra });

/** TensorProto.DataType codes (onnx.proto). */
export const DATA_TYPE_CODES = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const;

/** AttributeProto.AttributeType codes. */
export const ATTRIBUTE_TYPE_CODES = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

const ONNX_JSON = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: msg(
          {
            name: f('string', 1),
            ref_attr_name: f('string', 21),
            doc_string: f('string', 13),
            type: f('AttributeType', 20),
            f: f('float', 2),
            i: f('int64', 3),
            s: f('bytes', 4),
            t: f('TensorProto', 5),
            g: f('GraphProto', 6),
            sparse_tensor: f('SparseTensorProto', 22),
            tp: f('TypeProto', 14),
            floats: rep('float', 7),
            ints: rep('int64', 8),
            strings: rep('bytes', 9),
            tensors: rep('TensorProto', 10),
            graphs: rep('GraphProto', 11),
            sparse_tensors: rep('SparseTensorProto', 23),
            type_protos: rep('TypeProto', 15),
          },
          { nested: { AttributeType: { values: ATTRIBUTE_TYPE_CODES } } },
        ),
        ValueInfoProto: msg({
          name: f('string', 1),
          type: f('TypeProto', 2),
          doc_string: f('string', 3),
          metadata_props: rep('StringStringEntryProto', 4),
        }),
        NodeProto: msg({
          input: rep('string', 1),
          output: rep('string', 2),
          name: f('string', 3),
          op_type: f('string', 4),
          domain: f('string', 7),
          overload: f('string', 8),
          attribute: rep('AttributeProto', 5),
          doc_string: f('string', 6),
          metadata_props: rep('StringStringEntryProto', 9),
          device_configurations: rep('NodeDeviceConfigurationProto', 10),
        }),
        IntIntListEntryProto: msg({ key: f('int64', 1), value: rep('int64', 2) }),
        NodeDeviceConfigurationProto: msg({
          configuration_id: f('string', 1),
          sharding_spec: rep('ShardingSpecProto', 2),
          pipeline_stage: f('int32', 3),
        }),
        ShardingSpecProto: msg({
          tensor_name: f('string', 1),
          device: rep('int64', 2),
          index_to_device_group_map: rep('IntIntListEntryProto', 3),
          sharded_dim: rep('ShardedDimProto', 4),
        }),
        ShardedDimProto: msg({ axis: f('int64', 1), simple_sharding: rep('SimpleShardedDimProto', 2) }),
        SimpleShardedDimProto: msg(
          { dim_value: f('int64', 1), dim_param: f('string', 2), num_shards: f('int64', 3) },
          { oneofs: { dim: { oneof: ['dim_value', 'dim_param'] } } },
        ),
        TrainingInfoProto: msg({
          initialization: f('GraphProto', 1),
          algorithm: f('GraphProto', 2),
          initialization_binding: rep('StringStringEntryProto', 3),
          update_binding: rep('StringStringEntryProto', 4),
        }),
        ModelProto: msg({
          ir_version: f('int64', 1),
          opset_import: rep('OperatorSetIdProto', 8),
          producer_name: f('string', 2),
          producer_version: f('string', 3),
          domain: f('string', 4),
          model_version: f('int64', 5),
          doc_string: f('string', 6),
          graph: f('GraphProto', 7),
          metadata_props: rep('StringStringEntryProto', 14),
          training_info: rep('TrainingInfoProto', 20),
          functions: rep('FunctionProto', 25),
          configuration: rep('DeviceConfigurationProto', 26),
        }),
        DeviceConfigurationProto: msg({
          name: f('string', 1),
          num_devices: f('int32', 2),
          device: rep('string', 3),
        }),
        StringStringEntryProto: msg({ key: f('string', 1), value: f('string', 2) }),
        TensorAnnotation: msg({
          tensor_name: f('string', 1),
          quant_parameter_tensor_names: rep('StringStringEntryProto', 2),
        }),
        GraphProto: msg({
          node: rep('NodeProto', 1),
          name: f('string', 2),
          initializer: rep('TensorProto', 5),
          sparse_initializer: rep('SparseTensorProto', 15),
          doc_string: f('string', 10),
          input: rep('ValueInfoProto', 11),
          output: rep('ValueInfoProto', 12),
          value_info: rep('ValueInfoProto', 13),
          quantization_annotation: rep('TensorAnnotation', 14),
          metadata_props: rep('StringStringEntryProto', 16),
        }),
        TensorProto: msg(
          {
            dims: rep('int64', 1),
            data_type: f('int32', 2),
            segment: f('Segment', 3),
            float_data: packed('float', 4),
            int32_data: packed('int32', 5),
            string_data: rep('bytes', 6),
            int64_data: packed('int64', 7),
            name: f('string', 8),
            doc_string: f('string', 12),
            raw_data: f('bytes', 9),
            external_data: rep('StringStringEntryProto', 13),
            data_location: f('DataLocation', 14),
            double_data: packed('double', 10),
            uint64_data: packed('uint64', 11),
            metadata_props: rep('StringStringEntryProto', 16),
          },
          {
            nested: {
              DataType: { values: DATA_TYPE_CODES },
              Segment: msg({ begin: f('int64', 1), end: f('int64', 2) }),
              DataLocation: { values: { DEFAULT: 0, EXTERNAL: 1 } },
            },
          },
        ),
        SparseTensorProto: msg({
          values: f('TensorProto', 1),
          indices: f('TensorProto', 2),
          dims: rep('int64', 3),
        }),
        TensorShapeProto: msg(
          { dim: rep('Dimension', 1) },
          {
            nested: {
              Dimension: msg(
                { dim_value: f('int64', 1), dim_param: f('string', 2), denotation: f('string', 3) },
                { oneofs: { value: { oneof: ['dim_value', 'dim_param'] } } },
              ),
            },
          },
        ),
        TypeProto: msg(
          {
            tensor_type: f('Tensor', 1),
            sequence_type: f('Sequence', 4),
            map_type: f('Map', 5),
            optional_type: f('Optional', 9),
            sparse_tensor_type: f('SparseTensor', 8),
            opaque_type: f('Opaque', 7),
            denotation: f('string', 6),
          },
          {
            oneofs: {
              value: {
                oneof: [
                  'tensor_type',
                  'sequence_type',
                  'map_type',
                  'optional_type',
                  'sparse_tensor_type',
                  'opaque_type',
                ],
              },
            },
            nested: {
              Tensor: msg({ elem_type: f('int32', 1), shape: f('TensorShapeProto', 2) }),
              Sequence: msg({ elem_type: f('TypeProto', 1) }),
              Map: msg({ key_type: f('int32', 1), value_type: f('TypeProto', 2) }),
              Optional: msg({ elem_type: f('TypeProto', 1) }),
              SparseTensor: msg({ elem_type: f('int32', 1), shape: f('TensorShapeProto', 2) }),
              Opaque: msg({ domain: f('string', 1), name: f('string', 2) }),
            },
          },
        ),
        OperatorSetIdProto: msg({ domain: f('string', 1), version: f('int64', 2) }),
        FunctionProto: msg({
          name: f('string', 1),
          input: rep('string', 4),
          output: rep('string', 5),
          attribute: rep('string', 6),
          attribute_proto: rep('AttributeProto', 11),
          node: rep('NodeProto', 7),
          doc_string: f('string', 8),
          opset_import: rep('OperatorSetIdProto', 9),
          domain: f('string', 10),
          overload: f('string', 13),
          value_info: rep('ValueInfoProto', 12),
          metadata_props: rep('StringStringEntryProto', 14),
        }),
      },
    },
  },
};

let modelType: protobuf.Type | undefined;

/** The reflected `onnx.ModelProto` type (built once, on first use). */
export function modelProtoType(): protobuf.Type {
  if (!modelType) {
    const root = protobuf.Root.fromJSON(ONNX_JSON as protobuf.INamespace);
    root.resolveAll(); // fills Field.resolvedType, which prescan.ts walks
    modelType = root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

/** The reflected type of any ONNX message, e.g. 'TensorProto' (for building new messages). */
export function onnxMessageType(name: string): protobuf.Type {
  return modelProtoType().root.lookupType(`onnx.${name}`);
}
