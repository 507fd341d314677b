/**
 * A matrix-pool worker (matrix-pool.node.ts): instantiates the shared-memory kernels on the pool's memory with
 * its own stack, says it is ready, then waits on the control block's generation counter and takes parts of
 * each posted task until told to quit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { instantiateKernels, type ThreadContext } from '../quant/matrix/kernels.ts';
import { WASM_SIMD128 as WASM_SHARED } from '../quant/wasm/matrix-mt.generated.ts';
import { CTRL, type MatrixWorkerData, takeParts } from './matrix-pool.node.ts';

const data = workerData as MatrixWorkerData;
const { kernels, stackPointer } = instantiateKernels(data.memory, WASM_SHARED);
if (stackPointer) stackPointer.value = data.stackTop;
const ctx: ThreadContext = { kernels, memory: data.memory, work: data.work };
const ctrl = new Int32Array(data.ctrl);
let gen = 0;
parentPort?.postMessage('ready');
for (;;) {
  Atomics.wait(ctrl, CTRL.GEN, gen);
  gen = Atomics.load(ctrl, CTRL.GEN);
  if (Atomics.load(ctrl, CTRL.QUIT)) break;
  takeParts(ctx, data.ctrl);
  Atomics.add(ctrl, CTRL.ACK, 1);
  Atomics.notify(ctrl, CTRL.ACK);
}
