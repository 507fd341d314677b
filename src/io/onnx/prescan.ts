/**
 * A bounded pre-pass over the protobuf wire format of an ONNX model, run before protobufjs decodes it.
 *
 * Why: protobufjs checks every length against the bytes left, but a valid-looking file can still cost far
 * more memory decoded than on disk: a 2-byte empty NodeProto becomes a JS object of ~150 bytes, a 1-byte
 * packed int64 becomes a long.js object of ~48 bytes. This pass walks the bytes without allocating
 * (iteratively, with the schema from schema.ts), charges each message / int64 / repeated element an
 * estimated decoded size, and refuses the file when the estimate passes the budget. Because it knows the
 * schema, it also names the exact field where a file is truncated or malformed, e.g.
 * `ModelProto.graph.initializer[3].raw_data: length 4096 exceeds the 17 bytes left`.
 *
 * Wire format reference: protobuf encoding docs (varint, 64-bit, length-delimited, 32-bit; groups 3/4
 * are not used by ONNX and are refused).
 */
import protobuf from 'protobufjs/light.js';
import { MixqError } from '../../core/errors.ts';

/** Estimated decoded bytes per item (V8 object/array overheads, rounded up). */
const COST = { message: 160, long: 48, repeatedScalar: 8, bytesField: 64 } as const;

const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** Wire type of each non-varint scalar type (varints, enums included, are 0). */
const WIRE_TYPE: Record<string, number> = {
  double: 1,
  fixed64: 1,
  sfixed64: 1,
  float: 5,
  fixed32: 5,
  sfixed32: 5,
  string: 2,
  bytes: 2,
};

interface Frame {
  readonly type: protobuf.Type;
  readonly end: number;
  readonly path: string;
  /** How many times each repeated field has occurred so far (for `name[i]` in paths). */
  readonly seen: Map<number, number>;
}

export interface PrescanResult {
  /** Estimated bytes of JS objects the decode will create. */
  readonly estimatedBytes: number;
  readonly messages: number;
  readonly longs: number;
  readonly maxDepth: number;
}

/**
 * Walks `bytes` as a message of `root`. Throws MixqError (naming the field path) on malformed wire data,
 * nesting deeper than `maxDepth`, or an estimated decoded size over `budgetBytes`.
 */
export function prescanMessage(
  bytes: Uint8Array,
  root: protobuf.Type,
  opts: { source: string; budgetBytes: number; maxDepth: number },
): PrescanResult {
  const { source } = opts;
  let pos = 0;
  let estimated = 0;
  let messages = 1;
  let longs = 0;
  let deepest = 0;
  const stack: Frame[] = [];
  let cur: Frame = { type: root, end: bytes.length, path: root.name, seen: new Map() };

  const fail = (message: string, field: string, expected?: string): never => {
    throw new MixqError(message, { source, field, ...(expected ? { expected } : {}) });
  };
  const charge = (n: number, field: string) => {
    estimated += n;
    if (estimated > opts.budgetBytes) {
      fail(
        'the model would need too much memory to decode',
        field,
        `at most ${opts.budgetBytes} bytes (estimated)`,
      );
    }
  };
  /** Reads a varint ending before `cur.end`; returns it as a number (exact up to 2^53, enough for lengths). */
  const varint = (field: string): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= cur.end) fail('truncated varint', field, `a varint before offset ${cur.end}`);
      const b = bytes[pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    return fail('varint longer than 10 bytes', field, 'at most 10 bytes');
  };

  charge(COST.message, cur.path);
  for (;;) {
    if (pos === cur.end) {
      const parent = stack.pop();
      if (!parent) break;
      cur = parent;
      continue;
    }
    const at = pos;
    const tag = varint(`${cur.path} (tag at offset ${at})`);
    const fieldNo = Math.floor(tag / 8);
    const wire = tag % 8;
    const f = fieldNo > 0 ? cur.type.fieldsById[fieldNo] : undefined;
    let name = `${cur.path}.<field ${fieldNo}>`;
    if (f) {
      const packedScalars =
        wire === 2 && !(f.resolvedType instanceof protobuf.Type) && f.type !== 'string' && f.type !== 'bytes';
      const i = cur.seen.get(fieldNo) ?? 0;
      if (f.repeated && !packedScalars) cur.seen.set(fieldNo, i + 1);
      name = f.repeated && !packedScalars ? `${cur.path}.${f.name}[${i}]` : `${cur.path}.${f.name}`;
    }
    if (fieldNo === 0) fail('field number 0', `${cur.path} (offset ${at})`, 'field numbers >= 1');
    if (f) {
      // A known field must use its type's wire type (repeated scalars may also come packed, as wire type 2).
      const want = f.resolvedType instanceof protobuf.Type ? 2 : (WIRE_TYPE[f.type] ?? 0);
      if (wire !== want && !(f.repeated && wire === 2 && want !== 2)) {
        fail(`wire type ${wire} for a ${f.type} field`, name, `wire type ${want}`);
      }
    }
    const isLong = f !== undefined && INT64_TYPES.has(f.type);
    switch (wire) {
      case 0:
        varint(name);
        if (isLong) {
          longs++;
          charge(COST.long, name);
        }
        if (f?.repeated) charge(COST.repeatedScalar, name);
        break;
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4;
        if (cur.end - pos < n) fail(`${n}-byte value exceeds the ${cur.end - pos} bytes left`, name);
        pos += n;
        if (isLong) {
          longs++;
          charge(COST.long, name);
        }
        if (f?.repeated) charge(COST.repeatedScalar, name);
        break;
      }
      case 2: {
        const len = varint(name);
        const left = cur.end - pos;
        if (len > left) fail(`length ${len} exceeds the ${left} bytes left`, name, `at most ${left}`);
        if (f && f.resolvedType instanceof protobuf.Type) {
          messages++;
          charge(COST.message, name);
          stack.push(cur);
          if (stack.length > opts.maxDepth)
            fail('messages nest too deeply', name, `at most ${opts.maxDepth} levels`);
          deepest = Math.max(deepest, stack.length);
          cur = { type: f.resolvedType, end: pos + len, path: name, seen: new Map() };
          continue; // pos stays at the start of the sub-message
        }
        if (f?.repeated && f.type !== 'string' && f.type !== 'bytes') {
          // Packed scalars: every byte without the continuation bit ends one varint.
          let count = 0;
          if (f.type === 'float' || f.type === 'fixed32' || f.type === 'sfixed32')
            count = Math.floor(len / 4);
          else if (f.type === 'double' || f.type === 'fixed64' || f.type === 'sfixed64')
            count = Math.floor(len / 8);
          else for (let i = pos; i < pos + len; i++) if ((bytes[i] as number) < 0x80) count++;
          if (isLong) longs += count;
          charge(count * (isLong ? COST.long : COST.repeatedScalar), name);
        } else {
          // strings are copied (UTF-16), bytes are views
          charge(COST.bytesField + (f?.type === 'string' ? 2 * len : 0), name);
        }
        pos += len;
        break;
      }
      default:
        fail(`wire type ${wire} is not used by ONNX`, name, 'wire types 0, 1, 2 or 5');
    }
  }
  return { estimatedBytes: estimated, messages, longs, maxDepth: deepest };
}
