/** Word offsets of a kernel worker's control block (pool.node.ts, pool-worker.node.ts). */
export const CTL = { seq: 0, done: 1, fn: 2, argc: 3, err: 4, args: 8, words: 24, bytes: 128 } as const;
