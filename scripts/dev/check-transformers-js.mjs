#!/usr/bin/env node
/**
 * Dev-only: loads transformers.js folders (e.g. test/fixtures/stories-onnx and what `mixq quantize` wrote
 * from it) with transformers.js itself, `dtype: 'fp32'`, local files only: greedy generation from a prompt
 * (through its past_key_values cache) and, for two folders, the mean KL of the first's next-token
 * distributions to the second's over the prompt. transformers.js is not a mixq dependency: install it in a
 * scratch folder (`npm install @huggingface/transformers@3 --ignore-scripts`; the scripts only fetch GPU
 * builds) and point MIXQ_TRANSFORMERS_JS at that folder.
 *
 *   MIXQ_TRANSFORMERS_JS=/tmp/tjs node scripts/dev/check-transformers-js.mjs test/fixtures/stories-onnx mixq-out/stories-onnx
 */
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const where = process.env.MIXQ_TRANSFORMERS_JS;
if (!where) {
  console.error('set MIXQ_TRANSFORMERS_JS to a folder where @huggingface/transformers is installed');
  process.exit(2);
}
const entry = createRequire(join(resolve(where), 'package.json')).resolve('@huggingface/transformers');
const mod = await import(pathToFileURL(entry).href);
// require.resolve finds the CommonJS build: its exports arrive as `default`
const { AutoModelForCausalLM, AutoTokenizer, env } = mod.AutoTokenizer ? mod : mod.default;
env.allowRemoteModels = false;
const prompt = process.env.PROMPT ?? 'Once upon a time, there was a little girl';
const logits = [];
for (const dir of process.argv.slice(2)) {
  env.localModelPath = `${dirname(resolve(dir))}/`;
  const name = basename(resolve(dir));
  const tok = await AutoTokenizer.from_pretrained(name);
  const model = await AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32' });
  const inputs = tok(prompt);
  const out = await model.generate({ ...inputs, max_new_tokens: 24, do_sample: false });
  console.log(`${dir}: ${tok.decode(out[0], { skip_special_tokens: true })}`);
  const l = (await model(inputs)).logits;
  logits.push({ data: l.data, vocab: l.dims[2] });
}
if (logits.length === 2) {
  const [p, q] = logits;
  const V = p.vocab;
  const T = p.data.length / V;
  const lse = (x, o) => {
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, x[o + i]);
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(x[o + i] - m);
    return m + Math.log(z);
  };
  let kl = 0;
  for (let t = 0; t < T; t++) {
    const a = lse(p.data, t * V);
    const b = lse(q.data, t * V);
    for (let i = 0; i < V; i++) {
      const lp = p.data[t * V + i] - a;
      kl += Math.exp(lp) * (lp - (q.data[t * V + i] - b));
    }
  }
  console.log(`mean KL(first || second) over the prompt's ${T} positions: ${(kl / T).toPrecision(4)} nats`);
}
