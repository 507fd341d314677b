// Node-only runtime (onnxruntime-node): evaluation harness, weight feeding, calibration capture.
// Re-exports only; reached through `mixq/node`.
export { closeBlockEncodeWorkers, encodeRowsOnThreads, quantizeOnThreads } from './block-encode.node.ts';
export * from './bundled.node.ts';
export * from './calibration.node.ts';
export * from './ctc.ts';
export * from './eval-lm.node.ts';
export * from './eval-ocr.node.ts';
export * from './evaluate.node.ts';
export * from './fidelity.node.ts';
export { createMatrixPool, defaultMatrixThreads, type MatrixPool } from './matrix-pool.node.ts';
export * from './metrics.ts';
export {
  deterministicOptions,
  type Feeds,
  floatTensor,
  int64Tensor,
  openSession,
  type OrtSession,
  type OrtTensor,
  runFloat,
} from './ort.node.ts';
export * from './runner.node.ts';
export {
  closeIdleEvalWorkers,
  defaultEvalSessions,
  type EvalRunner,
  openEvalRunner,
  openRunnerPool,
  withEvalRunner,
} from './session-pool.node.ts';
export * from './weights.node.ts';
export * from './w8a8.node.ts';
export * from './sensitivity.node.ts';
