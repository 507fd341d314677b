// centeredStats: proxies computed with it equal the error of E (x - E[x]) summed directly over samples,
// i.e. what a layer keeps after bias correction.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowLayout } from '../../../src/quant/layout.ts';
import { centeredStats, imatrixError, outputError } from '../../../src/analysis/sensitivity/proxies.ts';
import { Rng } from '../../../src/core/rng.ts';

test('centered output and imatrix errors equal the direct sums over centered samples', () => {
  const rng = new Rng(5);
  const C = 6;
  const O = 4;
  const n = 40;
  const X = Array.from({ length: n }, () => Float64Array.from({ length: C }, () => rng.nextNormal() + 2));
  const mean = new Float64Array(C);
  const meanSquare = new Float64Array(C);
  const gram = new Float64Array(C * C);
  for (const x of X)
    for (let i = 0; i < C; i++) {
      mean[i]! += x[i]! / n;
      meanSquare[i]! += (x[i]! * x[i]!) / n;
      for (let j = 0; j < C; j++) gram[i * C + j]! += (x[i]! * x[j]!) / n;
    }
  const L = rowLayout([C, O], 1); // MatMul weight [in, out]: rows = outputs
  const E = Float64Array.from({ length: O * C }, () => rng.nextNormal());
  const cs = centeredStats({ channels: C, meanSquare, mean, gram });
  let direct = 0;
  let directDiag = 0;
  for (const x of X)
    for (let o = 0; o < O; o++) {
      let y = 0;
      for (let c = 0; c < C; c++) {
        y += E[o * C + c]! * (x[c]! - mean[c]!);
        directDiag += (E[o * C + c]! * (x[c]! - mean[c]!)) ** 2 / n;
      }
      direct += (y * y) / n;
    }
  const got = outputError(E, L, cs.gram!);
  assert.ok(Math.abs(got - direct) < 1e-9 * direct, `${got} vs ${direct}`);
  const diag = imatrixError(E, L, cs.meanSquare);
  assert.ok(Math.abs(diag - directDiag) < 1e-9 * directDiag, `${diag} vs ${directDiag}`);
  // the uncentered error is larger by the mean shift (inputs have mean ~2): the test can tell them apart
  assert.ok(outputError(E, L, gram) > 1.5 * got);
  // no means: unchanged
  assert.equal(centeredStats({ channels: C, meanSquare }).meanSquare, meanSquare);
});
