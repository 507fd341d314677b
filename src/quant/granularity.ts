/**
 * Granularity: which elements share one scale (and zero point). A small closed set, as in torchao:
 * - tensor: one parameter set for the whole tensor;
 * - axis:   one per index of `axis` (per-channel; axis 0 of a [out, in] weight = per output row);
 * - group:  consecutive runs of `size` elements along `axis` (the reduction axis, in = 1 for [out, in]),
 *           one per (all other indices, run). A ragged last run is allowed unless `ragged: 'refuse'`;
 * - block:  2-D tiles of rows x cols over the last two dimensions (edge tiles may be partial).
 *
 * Group ids are laid out row-major over (outer indices, group coordinate), so for a [out, in] weight with
 * per-group granularity along axis 1, the groups of one row are consecutive ids.
 */
import { MixqError } from '../core/errors.ts';

export type Granularity =
  | { readonly kind: 'tensor' }
  | { readonly kind: 'axis'; readonly axis: number }
  | {
      readonly kind: 'group';
      readonly axis: number;
      readonly size: number;
      readonly ragged?: 'allow' | 'refuse';
    }
  | { readonly kind: 'block'; readonly rows: number; readonly cols: number };

export interface GroupLayout {
  readonly nGroups: number;
  /** Largest group size (scratch buffers of the parameter searches are sized by it). */
  readonly maxSize: number;
  /**
   * When every group is one contiguous run of this many elements (element i is in group floor(i / run)):
   * per-tensor, per-axis on axis 0, groups along the last axis that divide it. 0 otherwise. Lets hot
   * loops skip the index array.
   */
  readonly run: number;
  /** Group id of every element (row-major element order). */
  readonly index: Uint32Array;
  /** Element count of every group. */
  readonly sizes: Uint32Array;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(Number.isInteger(a) && a >= 0 && a < rank))
    throw new MixqError('axis out of range', {
      field: 'granularity.axis',
      expected: `-${rank}..${rank - 1}`,
    });
  return a;
}

/** Number of parameter groups for a shape, without building the index (used by the storage formula). */
export function groupCount(shape: readonly number[], g: Granularity): number {
  return describe(shape, g).nGroups;
}

interface Desc {
  nGroups: number;
  groupOf: (outer: number, a: number, inner: number) => number;
  outer: number;
  len: number;
  inner: number;
}

function describe(shape: readonly number[], g: Granularity): Desc {
  const rank = shape.length;
  const numel = shape.reduce((p, d) => p * d, 1);
  if (g.kind === 'tensor') return { nGroups: 1, groupOf: () => 0, outer: 1, len: numel, inner: 1 };
  if (g.kind === 'block') {
    if (rank < 2)
      throw new MixqError('2-D block granularity needs a tensor of rank >= 2', { field: 'shape' });
    if (!(g.rows >= 1 && g.cols >= 1 && Number.isInteger(g.rows) && Number.isInteger(g.cols)))
      throw new MixqError('block size must be positive integers', { field: 'granularity.rows/cols' });
    const R = shape[rank - 2]!;
    const C = shape[rank - 1]!;
    const outer = numel / (R * C || 1);
    const nbr = Math.ceil(R / g.rows);
    const nbc = Math.ceil(C / g.cols);
    // handled by the dedicated loop in groupLayout; groupOf unused
    return { nGroups: outer * nbr * nbc, groupOf: () => 0, outer, len: R, inner: C };
  }
  const a = normAxis(g.axis, rank);
  let outer = 1;
  for (let i = 0; i < a; i++) outer *= shape[i]!;
  const len = shape[a]!;
  let inner = 1;
  for (let i = a + 1; i < rank; i++) inner *= shape[i]!;
  if (g.kind === 'axis') return { nGroups: len, groupOf: (_o, i) => i, outer, len, inner };
  if (!(Number.isInteger(g.size) && g.size >= 1))
    throw new MixqError('group size must be a positive integer', {
      field: 'granularity.size',
      expected: '>= 1',
    });
  if (g.ragged === 'refuse' && len % g.size !== 0)
    throw new MixqError(`axis length ${len} is not a multiple of the group size`, {
      field: 'granularity.size',
      expected: `a divisor of ${len}`,
    });
  const per = Math.ceil(len / g.size);
  // group id = (outer, inner) slice id * per + run; inner positions get their own groups
  return {
    nGroups: outer * inner * per,
    groupOf: (o, i, k) => (o * inner + k) * per + Math.floor(i / g.size),
    outer,
    len,
    inner,
  };
}

/** Group id of every element of a tensor of `shape` under granularity `g`. */
export function groupLayout(shape: readonly number[], g: Granularity): GroupLayout {
  const d = describe(shape, g);
  const numel = shape.reduce((p, x) => p * x, 1);
  const index = new Uint32Array(numel);
  if (g.kind === 'block') {
    const R = d.len;
    const C = d.inner;
    const nbr = Math.ceil(R / g.rows);
    const nbc = Math.ceil(C / g.cols);
    let p = 0;
    for (let o = 0; o < d.outer; o++)
      for (let r = 0; r < R; r++) {
        const rowBase = o * nbr * nbc + Math.floor(r / g.rows) * nbc;
        for (let c = 0; c < C; c++) index[p++] = rowBase + Math.floor(c / g.cols);
      }
  } else if (g.kind === 'group' && d.inner === 1) {
    // the common case (groups along the last axis): runs of `size` consecutive elements per row
    const per = Math.ceil(d.len / g.size);
    let p = 0;
    for (let o = 0; o < d.outer; o++)
      for (let c = 0; c < per; c++) {
        const end = Math.min(d.len, (c + 1) * g.size) - c * g.size;
        index.fill(o * per + c, p, p + end);
        p += end;
      }
  } else if (g.kind !== 'tensor') {
    let p = 0;
    for (let o = 0; o < d.outer; o++)
      for (let i = 0; i < d.len; i++) for (let k = 0; k < d.inner; k++) index[p++] = d.groupOf(o, i, k);
  }
  let run = 0;
  if (g.kind === 'tensor') run = numel;
  else if (g.kind === 'axis' && d.outer === 1) run = d.inner;
  else if (g.kind === 'group' && d.inner === 1 && d.len % g.size === 0) run = g.size;
  const sizes = new Uint32Array(d.nGroups);
  if (run > 0) sizes.fill(run);
  else for (let i = 0; i < numel; i++) sizes[index[i]!]!++;
  let maxSize = 0;
  for (const v of sizes) if (v > maxSize) maxSize = v; // no spread: millions of groups would overflow it
  return { nGroups: d.nGroups, maxSize, run, index, sizes };
}

/** Element indices of every group, as CSR (offsets[g]..offsets[g+1] into members), ascending within a group. */
export function groupMembers(layout: GroupLayout): { offsets: Uint32Array; members: Uint32Array } {
  const offsets = new Uint32Array(layout.nGroups + 1);
  for (let g = 0; g < layout.nGroups; g++) offsets[g + 1] = offsets[g]! + layout.sizes[g]!;
  const fill = offsets.slice(0, layout.nGroups);
  const members = new Uint32Array(layout.index.length);
  for (let i = 0; i < layout.index.length; i++) members[fill[layout.index[i]!]!++] = i;
  return { offsets, members };
}
