/**
 * A (possibly hand-edited) plan turned back into one ggml type per tensor of a GGUF file, for
 * requantizeGguf (src/io/gguf/requantize.ts), with the checks that name the plan's field when it does not
 * fit the file.
 */
import { type BlockTypeTraits, getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import type { GgufFile, GgufTensorInfo } from '../../io/gguf/read.ts';
import { isRequantizable } from '../../io/gguf/requantize.ts';
import { ggmlTypeById } from '../../io/gguf/types.ts';
import type { Plan } from '../../plan/schema.ts';
import { GGUF_PLAN_TYPES } from './damage.ts';

/** One plan weight resolved against the file. */
export interface GgufPlannedTensor {
  readonly info: GgufTensorInfo;
  readonly type: BlockTypeTraits;
  /** Exact bytes of the tensor in that type. */
  readonly bytes: number;
  /** Index in plan.weights. */
  readonly index: number;
}

/**
 * Checks a plan against a GGUF file and returns one type per planned tensor: every weight must name a
 * tensor llama.cpp would quantize, with the tensor's shape and a ggml blockType whose block size divides
 * ne[0]. MixqError (source = `source`, the plan file) otherwise. Stale per-weight bytes (a hand edit that
 * changed the type only) are notes, not errors; requantizable tensors the plan leaves out keep their type.
 */
export function ggufPlannedTensors(
  plan: Plan,
  file: GgufFile,
  source: string,
  quantizable: (info: GgufTensorInfo) => boolean = isRequantizable,
): { tensors: GgufPlannedTensor[]; notes: string[] } {
  const byName = new Map(file.tensors.map((t) => [t.name, t] as const));
  const notes: string[] = [];
  const tensors = plan.weights.map((w, i): GgufPlannedTensor => {
    const at = `weights[${i}]`;
    const info = byName.get(w.name);
    if (!info)
      throw new MixqError(`plan weight '${w.name}' is not a tensor of ${file.source}`, {
        source,
        field: `${at}.name`,
        expected: 'the name of a quantizable tensor of the GGUF file',
      });
    if (!quantizable(info))
      throw new MixqError(`tensor '${w.name}' is not one llama.cpp quantizes`, {
        source,
        field: `${at}.name`,
        expected: "a 2-D+ '*weight' tensor that is not a norm, router or position embedding",
      });
    if (w.shape.length !== info.shape.length || w.shape.some((d, k) => d !== info.shape[k]))
      throw new MixqError(`plan weight '${w.name}' has shape [${w.shape.join(', ')}]`, {
        source,
        field: `${at}.shape`,
        expected: `[${info.shape.join(', ')}] (the tensor's shape, ne reversed)`,
      });
    const bt = w.scheme.blockType;
    if (bt === undefined)
      throw new MixqError(`plan weight '${w.name}' names no ggml type`, {
        source,
        field: `${at}.scheme.blockType`,
        expected: "a ggml type such as 'Q4_K' (GGUF inputs are re-quantized to ggml types)",
      });
    const type = getBlockType(bt);
    const ne0 = info.ne[0]!;
    if (ne0 % type.blockSize !== 0) {
      const ok = GGUF_PLAN_TYPES.filter((t) => ne0 % getBlockType(t).blockSize === 0);
      throw new MixqError(
        `type ${type.name} does not fit '${w.name}': ne[0] = ${ne0} is not a multiple of ${type.blockSize}`,
        {
          source,
          field: `${at}.scheme.blockType`,
          expected: `a type whose block size divides ${ne0}: ${ok.join(', ')}`,
        },
      );
    }
    const bytes = (info.nElements / type.blockSize) * type.bytesPerBlock;
    if (w.bytes !== bytes)
      notes.push(`${at} '${w.name}': plan says ${w.bytes} bytes, ${type.name} takes ${bytes} (edited plan?)`);
    return { info, type, bytes, index: i };
  });
  const planned = new Set(plan.weights.map((w) => w.name));
  const kept = file.tensors.filter((t) => quantizable(t) && !planned.has(t.name));
  if (kept.length > 0)
    notes.push(
      `${kept.length} quantizable tensors are not in the plan and keep their type (e.g. '${kept[0]!.name}')`,
    );
  return { tensors, notes };
}

/** ggml's spelling of a registry type ('Q4_K' -> 'q4_K'). */
export function ggmlSpelling(t: BlockTypeTraits): string {
  return ggmlTypeById(t.ggmlTypeId)?.name ?? t.name;
}
