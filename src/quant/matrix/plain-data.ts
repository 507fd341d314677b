/**
 * Plain data (objects, arrays, typed arrays, numbers including NaN and infinities) as UTF-8 JSON bytes, for
 * passing configuration such as an element grid to task parts through engine memory (workers cannot take
 * messages while they wait on the shared counter).
 */
type TypedArray =
  Float64Array | Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array | Int8Array;
const TYPED: Record<string, new (a: number[]) => TypedArray> = {
  Float64Array,
  Float32Array,
  Int32Array,
  Uint32Array,
  Uint16Array,
  Uint8Array,
  Int8Array,
};

function replacer(this: unknown, _key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const name = v.constructor.name;
    if (!(name in TYPED)) throw new TypeError(`plain-data: ${name} is not supported`);
    return {
      $typed: name,
      v: Array.from(v as TypedArray, (x) => (Number.isFinite(x) ? x : { $num: String(x) })),
    };
  }
  return v;
}

function reviver(_key: string, v: unknown): unknown {
  if (v && typeof v === 'object') {
    const o = v as { $num?: string; $typed?: string; v?: unknown[] };
    if (typeof o.$num === 'string') return Number(o.$num);
    if (typeof o.$typed === 'string') return new TYPED[o.$typed]!(o.v as number[]);
  }
  return v;
}

export function encodePlainData(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, replacer));
}

export function decodePlainData<T>(bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes), reviver) as T;
}
