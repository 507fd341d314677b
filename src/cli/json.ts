/**
 * The JSON the commands print with --json: sequences as arrays (typed arrays, e.g. an evaluation's
 * per-window sums, would otherwise become objects keyed "0", "1", ...), non-finite numbers as null
 * (JSON has none), two-space indent.
 */
export function jsonText(value: unknown, indent: number | undefined = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) =>
      ArrayBuffer.isView(v) && !(v instanceof DataView)
        ? Array.from(v as unknown as ArrayLike<number>)
        : typeof v === 'number' && !Number.isFinite(v)
          ? null
          : v,
    indent,
  );
}
