// The matrix engine quant/'s dense work runs on (see engine.ts); Node's worker-thread pool is
// createMatrixPool in mixq/node.
export { createInlineEngine, inlineEngine, loadInlineEngine, type MatrixEngine } from './engine.ts';
