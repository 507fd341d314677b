/**
 * Tokenizers of language models, browser-safe and offline: a Hugging Face tokenizer.json (read by the
 * caller from a local file or a Blob, never downloaded) runs through @huggingface/tokenizers (tokenizers.js,
 * Apache-2.0, pure JS, no dependencies); a GGUF's own vocabulary (tokenizer.ggml.*) is first written as the
 * equivalent tokenizer.json, so one well-kept implementation serves both.
 *
 * GGUF vocabularies (llama.cpp src/llama-vocab.cpp; learned from the sources, not copied):
 *   'llama' (SentencePiece BPE): text ' ' -> '▁', a '▁' prepended when add_space_prefix (default true);
 *     symbols are UTF-8 characters; repeatedly the adjacent pair whose concatenation is a vocabulary token
 *     with the highest score is merged (ties: leftmost); a final piece not in the vocabulary becomes its
 *     <0xXX> byte tokens. As tokenizer.json: a BPE model with byte_fallback whose merges are every split
 *     (a, b) of a token t into two parts that are tokens or single characters, ranked by t's score
 *     (descending), then id; a Prepend('▁') + Replace(' ', '▁') normalizer (what transformers' LlamaConverter
 *     writes). Equal scores of different tokens can order merges differently from llama.cpp (leftmost
 *     wins there, the lower rank here); SentencePiece scores are distinct, so real vocabularies agree.
 *   'gpt2' (byte-level BPE): tokens and merges as written, split first by the regexes llama.cpp uses for
 *     tokenizer.ggml.pre (BYTE_LEVEL_PRE: 'gpt-2', 'default', 'llama-bpe', 'qwen2'); others are refused,
 *     naming tokenizer.ggml.pre.
 *   Control tokens (type 3) are not matched in text, as llama.cpp does with parse_special = false;
 *   user-defined tokens (type 4) are (llama.cpp splits on them always).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { MixqError } from '../../core/errors.ts';
import type { GgufArray, GgufValue } from '../gguf/read.ts';
import type { GgufMetadata } from '../gguf/kv-json.ts';

/** A text tokenizer of a language model. */
export interface LlmTokenizer {
  readonly source: string;
  /** Tokens in the vocabulary (including added tokens). */
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  /** Whether evaluation should put BOS first (GGUF add_bos_token; HF: the post-processor adds it). */
  readonly addBos: boolean;
  /** Token ids of plain text: no BOS/EOS added, control-token text not matched. */
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  /** Token text of an id ('▁the', '<0x0A>'), or undefined. */
  tokenText(id: number): string | undefined;
}

/** GGUF token types (llama.h enum llama_token_type). */
export const GGUF_TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** tokenizer.json as far as mixq reads it. */
export interface TokenizerJson {
  readonly model: { readonly type: string; readonly vocab?: unknown; readonly merges?: unknown } & Record<
    string,
    unknown
  >;
  readonly normalizer?: unknown;
  readonly pre_tokenizer?: unknown;
  readonly decoder?: unknown;
  readonly post_processor?: unknown;
  readonly added_tokens?: readonly { id: number; content: string; special?: boolean }[];
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A tokenizer from tokenizer.json (and optionally tokenizer_config.json) already parsed.
 * @example tokenizerFromJson(JSON.parse(await readFile('tokenizer.json', 'utf8')), 'tokenizer.json')
 */
export function tokenizerFromJson(
  json: unknown,
  source: string,
  opts: { config?: unknown; bos?: number; eos?: number; addBos?: boolean } = {},
): LlmTokenizer {
  const fail = (msg: string, field: string, expected: string) =>
    new MixqError(msg, { source, field, expected });
  if (!isObj(json)) throw fail('not a JSON object', 'tokenizer.json', 'a tokenizer.json object');
  const model = json.model;
  if (!isObj(model)) throw fail('no model', 'model', 'an object with type BPE, Unigram or WordPiece');
  if (!['BPE', 'Unigram', 'WordPiece'].includes(String(model.type)) && model.type !== undefined)
    throw fail(
      `unsupported model type ${JSON.stringify(model.type)}`,
      'model.type',
      'BPE, Unigram or WordPiece',
    );
  if (model.type === 'BPE' && !isObj(model.vocab))
    throw fail('vocab is not an object', 'model.vocab', 'token -> id');
  if (model.type === 'BPE' && !Array.isArray(model.merges))
    throw fail('merges is not a list', 'model.merges', 'a list');
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, isObj(opts.config) ? opts.config : {});
  } catch (e) {
    throw fail(
      `tokenizer.json not understood: ${(e as Error).message}`,
      'tokenizer.json',
      'a tokenizers.js-readable file',
    );
  }
  const cfg = isObj(opts.config) ? opts.config : {};
  const idOf = (v: unknown): number | undefined => {
    const s = typeof v === 'string' ? v : isObj(v) && typeof v.content === 'string' ? v.content : undefined;
    return s === undefined ? undefined : tok.token_to_id(s);
  };
  const bos = opts.bos ?? idOf(cfg.bos_token);
  const eos = opts.eos ?? idOf(cfg.eos_token);
  // the post-processor tells whether BOS is added (Llama: TemplateProcessing with <s> first)
  let addBos = opts.addBos;
  if (addBos === undefined) {
    if (typeof cfg.add_bos_token === 'boolean') addBos = cfg.add_bos_token;
    else if (bos !== undefined) {
      const withSpecial = tok.encode('a', { add_special_tokens: true }).ids;
      addBos = withSpecial[0] === bos;
    } else addBos = false;
  }
  return wrap(tok, source, bos, eos, addBos);
}

function wrap(
  tok: Tokenizer,
  source: string,
  bos: number | undefined,
  eos: number | undefined,
  addBos: boolean,
): LlmTokenizer {
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    source,
    vocabSize,
    bos,
    eos,
    addBos,
    encode: (text) => Int32Array.from(tok.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: false }),
    tokenText: (id) => tok.id_to_token(id),
  };
}

// ----------------------------------------------------------------------------------- GGUF vocabulary

function arr(
  f: GgufMetadata,
  key: string,
  item: 'str' | 'f32' | 'i32',
  required: boolean,
): GgufValue[] | undefined {
  const v = f.get(key);
  if (v === undefined) {
    if (required)
      throw new MixqError('missing key', { source: f.source, field: key, expected: `an array of ${item}` });
    return undefined;
  }
  if (typeof v !== 'object' || (v as GgufArray).itemType !== item)
    throw new MixqError('wrong type', { source: f.source, field: key, expected: `an array of ${item}` });
  return (v as GgufArray).items as GgufValue[];
}

function optId(f: GgufMetadata, key: string, n: number): number | undefined {
  const v = f.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new MixqError(`value ${String(v)}`, { source: f.source, field: key, expected: 'a u32 token id' });
  if (v === 0xffffffff || v === -1) return undefined; // llama.cpp's "none"
  if (v < 0 || v >= n)
    throw new MixqError(`id ${v}`, { source: f.source, field: key, expected: `a token id below ${n}` });
  return v;
}

function optBool(f: GgufMetadata, key: string): boolean | undefined {
  const v = f.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean')
    throw new MixqError(`value ${String(v)}`, { source: f.source, field: key, expected: 'a bool' });
  return v;
}

// Pre-tokenizer regexes (Oniguruma syntax as in Hugging Face files; tokenizers.js rewrites them for JS).
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Byte-level pre-tokenizers by llama.cpp's tokenizer.ggml.pre name (src/llama-vocab.cpp, llm_tokenizer_bpe),
 * as the regexes that split the text one after the other (each piece split further, matches and the text
 * between them kept, i.e. Hugging Face's Split with behavior Isolated), before byte-level BPE:
 *   'gpt-2'      GPT-2's regex (Hugging Face: ByteLevel with use_regex);
 *   'default'    llama.cpp's fallback: punctuation runs, then GPT-2's regex, then digit runs, then digit
 *                triples (a vocabulary converted without a known pre-tokenizer gets this);
 *   'llama-bpe'  Llama 3 (also 'llama3', 'llama-v3'); merges are skipped for a pre-token that is a token;
 *   'qwen2'      Qwen2.
 */
export const BYTE_LEVEL_PRE: Readonly<
  Record<string, { readonly regexes: readonly string[]; readonly ignoreMerges: boolean }>
> = {
  'gpt-2': { regexes: [GPT2_REGEX], ignoreMerges: false },
  default: {
    regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'],
    ignoreMerges: false,
  },
  'llama-bpe': { regexes: [LLAMA3_REGEX], ignoreMerges: true },
  llama3: { regexes: [LLAMA3_REGEX], ignoreMerges: true },
  'llama-v3': { regexes: [LLAMA3_REGEX], ignoreMerges: true },
  qwen2: { regexes: [QWEN2_REGEX], ignoreMerges: false },
};

/** The tokenizer.json pre_tokenizer of a byte-level pre-tokenizer type. */
export function byteLevelPreTokenizer(pre: string): unknown {
  const regexes = BYTE_LEVEL_PRE[pre]?.regexes ?? [GPT2_REGEX];
  if (regexes.length === 1 && regexes[0] === GPT2_REGEX)
    return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    type: 'Sequence',
    pretokenizers: [
      ...regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/** The tokenizer.json equivalent of a GGUF's tokenizer.ggml.* vocabulary, with its special ids. */
export interface GgufTokenizerSpec {
  readonly json: TokenizerJson;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addBos: boolean;
}

/**
 * Writes a GGUF vocabulary as tokenizer.json (see the file comment for the mapping).
 * @example tokenizerFromJson(ggufTokenizerJson(file).json, file.source)
 */
export function ggufTokenizerJson(f: GgufMetadata): GgufTokenizerSpec {
  const modelKind = f.get('tokenizer.ggml.model');
  if (typeof modelKind !== 'string')
    throw new MixqError('missing key', {
      source: f.source,
      field: 'tokenizer.ggml.model',
      expected: "'llama' or 'gpt2'",
    });
  const tokens = arr(f, 'tokenizer.ggml.tokens', 'str', true)! as string[];
  const n = tokens.length;
  const types = arr(f, 'tokenizer.ggml.token_type', 'i32', false) as number[] | undefined;
  if (types && types.length !== n)
    throw new MixqError(`${types.length} entries`, {
      source: f.source,
      field: 'tokenizer.ggml.token_type',
      expected: `${n} (one per token)`,
    });
  const typeOf = (i: number) => types?.[i] ?? GGUF_TOKEN_TYPE.normal;
  const bos = optId(f, 'tokenizer.ggml.bos_token_id', n);
  const eos = optId(f, 'tokenizer.ggml.eos_token_id', n);
  const unk = optId(f, 'tokenizer.ggml.unknown_token_id', n);
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i; // llama.cpp's token_to_id keeps the first id of a duplicate text
  });
  const added = tokens.flatMap((content, id) =>
    typeOf(id) === GGUF_TOKEN_TYPE.userDefined
      ? [{ id, content, special: false, single_word: false, lstrip: false, rstrip: false, normalized: false }]
      : [],
  );
  if (modelKind === 'llama') {
    const scores = arr(f, 'tokenizer.ggml.scores', 'f32', true)! as number[];
    if (scores.length !== n)
      throw new MixqError(`${scores.length} entries`, {
        source: f.source,
        field: 'tokenizer.ggml.scores',
        expected: `${n} (one per token)`,
      });
    const addSpace = optBool(f, 'tokenizer.ggml.add_space_prefix') ?? true;
    const mergeable = (i: number) => {
      const t = typeOf(i);
      return (
        t === GGUF_TOKEN_TYPE.normal || t === GGUF_TOKEN_TYPE.userDefined || t === GGUF_TOKEN_TYPE.unused
      );
    };
    const merges = spmMerges(tokens, scores, vocab, mergeable);
    const normalizers: unknown[] = [];
    if (addSpace) normalizers.push({ type: 'Prepend', prepend: '▁' });
    normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: '▁' });
    const decoders: unknown[] = [
      { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
    ];
    if (addSpace) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
    // Speed only: when no token has '▁' past its first character, no merge can cross a '▁', so the text
    // may be split before each '▁' and every piece merged on its own (and cached) with the same result.
    const splittable = tokens.every((t, i) => !mergeable(i) || t.indexOf('▁', 1) < 0);
    return {
      json: {
        normalizer: { type: 'Sequence', normalizers },
        pre_tokenizer: splittable
          ? { type: 'Split', pattern: { Regex: '▁[^▁]*|[^▁]+' }, behavior: 'Isolated', invert: true }
          : null,
        model: {
          type: 'BPE',
          vocab,
          merges,
          byte_fallback: true,
          fuse_unk: true,
          unk_token: unk === undefined ? null : tokens[unk],
          ignore_merges: false,
        },
        decoder: { type: 'Sequence', decoders },
        post_processor: null,
        added_tokens: added,
      },
      bos,
      eos,
      addBos: optBool(f, 'tokenizer.ggml.add_bos_token') ?? true,
    };
  }
  if (modelKind === 'gpt2') {
    const pre = f.get('tokenizer.ggml.pre') ?? 'default';
    if (typeof pre !== 'string' || !Object.hasOwn(BYTE_LEVEL_PRE, pre))
      throw new MixqError(`pre-tokenizer ${JSON.stringify(pre)} is not supported`, {
        source: f.source,
        field: 'tokenizer.ggml.pre',
        expected: Object.keys(BYTE_LEVEL_PRE).join(', '),
      });
    const merges = (arr(f, 'tokenizer.ggml.merges', 'str', false) ?? []) as string[];
    const pairs = merges.map((m, i) => {
      const k = m.indexOf(' ', 1);
      if (k < 0)
        throw new MixqError(`merge ${JSON.stringify(m)}`, {
          source: f.source,
          field: `tokenizer.ggml.merges[${i}]`,
          expected: "'left right'",
        });
      return [m.slice(0, k), m.slice(k + 1)];
    });
    return {
      json: {
        normalizer: null,
        pre_tokenizer: byteLevelPreTokenizer(pre),
        model: {
          type: 'BPE',
          vocab,
          merges: pairs,
          byte_fallback: false,
          unk_token: null,
          ignore_merges: BYTE_LEVEL_PRE[pre]!.ignoreMerges,
        },
        decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        post_processor: null,
        added_tokens: added,
      },
      bos,
      eos,
      addBos: optBool(f, 'tokenizer.ggml.add_bos_token') ?? false,
    };
  }
  throw new MixqError(`tokenizer model ${JSON.stringify(modelKind)} is not supported`, {
    source: f.source,
    field: 'tokenizer.ggml.model',
    expected: "'llama' (SentencePiece) or 'gpt2' (byte-level BPE)",
  });
}

/**
 * Merge list equivalent to SentencePiece-BPE merging by score: every split of a mergeable token into two
 * parts that are tokens or single characters, ordered by the token's score (descending), then id.
 */
function spmMerges(
  tokens: readonly string[],
  scores: readonly number[],
  vocab: Readonly<Record<string, number>>,
  mergeable: (id: number) => boolean,
): [string, string][] {
  const order = tokens.map((_, i) => i).filter(mergeable);
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const out: [string, string][] = [];
  const isPart = (s: string) => s in vocab || Array.from(s).length === 1;
  for (const id of order) {
    const t = tokens[id]!;
    if (vocab[t] !== id) continue; // a duplicate text: llama.cpp merges into the first id
    const cps = Array.from(t);
    let left = '';
    for (let k = 1; k < cps.length; k++) {
      left += cps[k - 1]!;
      const right = t.slice(left.length);
      if (isPart(left) && isPart(right)) out.push([left, right]);
    }
  }
  return out;
}

/**
 * The tokenizer of a GGUF file's own vocabulary.
 * @example const tok = tokenizerFromGguf(await readGguf(src)); tok.encode('Once upon a time')
 */
export function tokenizerFromGguf(f: GgufMetadata): LlmTokenizer {
  const spec = ggufTokenizerJson(f);
  return tokenizerFromJson(spec.json, f.source, {
    ...(spec.bos !== undefined ? { bos: spec.bos } : {}),
    ...(spec.eos !== undefined ? { eos: spec.eos } : {}),
    addBos: spec.addBos,
  });
}
