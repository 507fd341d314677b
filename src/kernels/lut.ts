/** Bit-plane lookup-table layout (T-MAC): see below. */
import type { Desc } from './layout.ts';

export function decodeLutRow(_bytes: Uint8Array, _d: Desc, _r: number, _out: Float64Array): void {
  throw new Error('not yet');
}
import type { KernelMemory } from './memory.ts';
import type { MixqSource } from './source.ts';
export function prepareLut(_mem: KernelMemory, _src: MixqSource): { desc: Desc; allocations: number[]; bytes: number } {
  throw new Error('not yet');
}
