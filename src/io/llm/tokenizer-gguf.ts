/**
 * A Hugging Face tokenizer.json as GGUF vocabulary metadata (tokenizer.ggml.*), the inverse of
 * tokenizer.ts's ggufTokenizerJson, for converting a Hugging Face folder to a GGUF llama.cpp loads.
 *
 *   SentencePiece-style BPE (byte_fallback, ' ' -> '▁' by a Replace normalizer or a Metaspace
 *   pre-tokenizer) -> 'llama': tokens by id; score of a token = -(rank of the first merge that makes it),
 *   so llama.cpp's highest-score-first merging follows the merge list; tokens no merge makes get -1e9;
 *   types: control for special added tokens, unknown for unk, byte for <0xXX>, user-defined for other
 *   added tokens, else normal. add_space_prefix from the Prepend normalizer / Metaspace prepend_scheme.
 *   Byte-level BPE -> 'gpt2' with its merges and tokenizer.ggml.pre from the pre-tokenizer (GPT-2's
 *   'default', Llama 3's 'llama-bpe', Qwen2's 'qwen2'; any other regex is refused naming pre_tokenizer).
 */
import { MixqError } from '../../core/errors.ts';
import type { GgufKV } from '../gguf/read.ts';
import { BYTE_LEVEL_PRE, GGUF_TOKEN_TYPE } from './tokenizer.ts';

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parts(v: unknown, key: 'normalizers' | 'pretokenizers'): Record<string, unknown>[] {
  if (!isObj(v)) return [];
  if (v.type === 'Sequence' && Array.isArray(v[key])) return (v[key] as unknown[]).filter(isObj);
  return [v];
}

/**
 * llama.cpp's tokenizer.ggml.pre for a byte-level pre-tokenizer: ByteLevel with its regex -> 'gpt-2';
 * Splits by one of BYTE_LEVEL_PRE's regex lists then ByteLevel without regex -> that name.
 */
function byteLevelPre(
  pres: readonly Record<string, unknown>[],
  byteLevel: Record<string, unknown>,
): string | undefined {
  if (pres.length === 1) return byteLevel.use_regex !== false ? 'gpt-2' : undefined;
  if (pres[pres.length - 1] !== byteLevel || byteLevel.use_regex !== false) return undefined;
  const regexes: unknown[] = [];
  for (const p of pres.slice(0, -1)) {
    if (p.type !== 'Split' || p.invert === true || (p.behavior !== undefined && p.behavior !== 'Isolated'))
      return undefined;
    regexes.push(isObj(p.pattern) ? p.pattern.Regex : undefined);
  }
  for (const [name, spec] of Object.entries(BYTE_LEVEL_PRE))
    if (spec.regexes.length === regexes.length && spec.regexes.every((r, i) => r === regexes[i])) return name;
  return undefined;
}

export interface TokenizerGgufOptions {
  readonly bos?: number;
  readonly eos?: number;
  readonly addBos?: boolean;
  /** Vocabulary size the model's embedding has (token list padded with unused tokens up to it). */
  readonly vocabSize?: number;
}

/**
 * tokenizer.ggml.* metadata for a tokenizer.json.
 * @example [...llmConfigToGgufKv(cfg), ...ggufVocabFromTokenizerJson(json, 'tokenizer.json', { bos: 1 })]
 */
export function ggufVocabFromTokenizerJson(
  json: unknown,
  source: string,
  opts: TokenizerGgufOptions = {},
): GgufKV[] {
  const fail = (msg: string, field: string, expected: string) =>
    new MixqError(msg, { source, field, expected });
  if (!isObj(json) || !isObj(json.model))
    throw fail('no model', 'model', 'a tokenizer.json object with a model');
  const model = json.model;
  if (model.type !== 'BPE')
    throw fail(
      `model type ${JSON.stringify(model.type)}`,
      'model.type',
      'BPE (SentencePiece-style or byte-level)',
    );
  if (!isObj(model.vocab)) throw fail('vocab is not an object', 'model.vocab', 'token -> id');
  if (!Array.isArray(model.merges)) throw fail('merges is not a list', 'model.merges', 'a list');
  const tokens: string[] = [];
  const set = (id: unknown, t: string, field: string) => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > 1 << 24)
      throw fail(`id ${JSON.stringify(id)}`, field, 'a token id');
    if (tokens[id] !== undefined && tokens[id] !== t) throw fail(`id ${id} used twice`, field, 'unique ids');
    tokens[id] = t;
  };
  for (const [t, id] of Object.entries(model.vocab)) set(id, t, `model.vocab['${t}']`);
  const special = new Set<number>();
  const userDefined = new Set<number>();
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  added.forEach((a, i) => {
    if (!isObj(a) || typeof a.content !== 'string')
      throw fail('bad entry', `added_tokens[${i}]`, '{ id, content }');
    set(a.id, a.content, `added_tokens[${i}].id`);
    (a.special === true ? special : userDefined).add(a.id as number);
  });
  const n = Math.max(tokens.length, opts.vocabSize ?? 0);
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  const merges: [string, string][] = (model.merges as unknown[]).map((m, i) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
      return [m[0], m[1]];
    if (typeof m === 'string') {
      const k = m.indexOf(' ', 1);
      if (k > 0) return [m.slice(0, k), m.slice(k + 1)];
    }
    throw fail(`merge ${JSON.stringify(m)}`, `model.merges[${i}]`, "'a b' or ['a', 'b']");
  });
  const unk =
    typeof model.unk_token === 'string' ? (model.vocab[model.unk_token] as number | undefined) : undefined;
  const kv: GgufKV[] = [];
  const ids = (key: string, v: number | undefined) => {
    if (v !== undefined) kv.push({ key, type: 'u32', value: v });
  };
  const norms = parts(json.normalizer, 'normalizers');
  const pres = parts(json.pre_tokenizer, 'pretokenizers');
  const replacesSpace = norms.some(
    (x) => x.type === 'Replace' && isObj(x.pattern) && x.pattern.String === ' ' && x.content === '▁',
  );
  const metaspace = pres.find((x) => x.type === 'Metaspace');
  const byteLevel = pres.find((x) => x.type === 'ByteLevel');
  const other = pres.filter((x) => x.type !== 'Metaspace' && x.type !== 'ByteLevel' && x.type !== 'Split');
  if (model.byte_fallback === true && (replacesSpace || metaspace)) {
    const addSpace = metaspace
      ? metaspace.prepend_scheme !== 'never' && metaspace.add_prefix_space !== false
      : norms.some((x) => x.type === 'Prepend' && x.prepend === '▁');
    const firstMerge = new Map<string, number>();
    merges.forEach(([a, b], r) => {
      const t = a + b;
      if (!firstMerge.has(t)) firstMerge.set(t, r);
    });
    const scores = tokens.map((t) => {
      const r = firstMerge.get(t);
      return r === undefined ? (Array.from(t).length === 1 ? 0 : -1e9) : -r;
    });
    const types = tokens.map((t, i) =>
      i === unk
        ? GGUF_TOKEN_TYPE.unknown
        : special.has(i)
          ? GGUF_TOKEN_TYPE.control
          : /^<0x[0-9A-F]{2}>$/.test(t)
            ? GGUF_TOKEN_TYPE.byte
            : userDefined.has(i)
              ? GGUF_TOKEN_TYPE.userDefined
              : t.startsWith('[PAD')
                ? GGUF_TOKEN_TYPE.unused
                : GGUF_TOKEN_TYPE.normal,
    );
    kv.push(
      { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
      { key: 'tokenizer.ggml.tokens', type: 'arr', value: { itemType: 'str', items: tokens } },
      { key: 'tokenizer.ggml.scores', type: 'arr', value: { itemType: 'f32', items: scores } },
      { key: 'tokenizer.ggml.token_type', type: 'arr', value: { itemType: 'i32', items: types } },
      { key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: addSpace },
    );
    ids('tokenizer.ggml.unknown_token_id', unk);
  } else if (byteLevel && other.length === 0 && byteLevelPre(pres, byteLevel) !== undefined) {
    const pre = byteLevelPre(pres, byteLevel)!;
    const types = tokens.map((_, i) =>
      special.has(i)
        ? GGUF_TOKEN_TYPE.control
        : userDefined.has(i)
          ? GGUF_TOKEN_TYPE.userDefined
          : GGUF_TOKEN_TYPE.normal,
    );
    kv.push(
      { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
      { key: 'tokenizer.ggml.pre', type: 'str', value: pre },
      { key: 'tokenizer.ggml.tokens', type: 'arr', value: { itemType: 'str', items: tokens } },
      { key: 'tokenizer.ggml.token_type', type: 'arr', value: { itemType: 'i32', items: types } },
      {
        key: 'tokenizer.ggml.merges',
        type: 'arr',
        value: { itemType: 'str', items: merges.map(([a, b]) => `${a} ${b}`) },
      },
    );
  } else {
    throw fail(
      'tokenizer kind not supported for GGUF',
      'pre_tokenizer',
      "SentencePiece-style BPE (byte_fallback, '▁' for spaces) or byte-level BPE with GPT-2's, Llama 3's or Qwen2's pre-tokenizer",
    );
  }
  ids('tokenizer.ggml.bos_token_id', opts.bos);
  ids('tokenizer.ggml.eos_token_id', opts.eos);
  if (opts.addBos !== undefined)
    kv.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: opts.addBos });
  return kv;
}
