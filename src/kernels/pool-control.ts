/** Word offsets of a kernel worker's control block (pool.node.ts, pool-worker.node.ts). */
export const CTL = {
  seq: 0,
  done: 1,
  fn: 2,
  argc: 3,
  err: 4,
  poll: 5,
  args: 8,
  words: 24,
  bytes: 128,
} as const;

/**
 * Microseconds a kernel worker polls its control block for the next call before it sleeps, and the calling
 * thread for a worker to finish (issue 21, session 6; pool.node.ts stops polling for a while when a poll
 * ends without its workers). Waking a sleeping thread took
 * 20-35 us on this 2-core VM, as long as a 2048 x 2048 4-bit product's share; during decoding the next
 * call follows within 210 us nine times in ten (a 1B-shaped llama, 2 threads).
 */
export const DEFAULT_POLL_US = 200;

/** Polls word i of c while it equals v, at most us microseconds; returns its last value. */
export function pollWhile(c: Int32Array, i: number, v: number, us: number): number {
  let x = Atomics.load(c, i);
  if (x !== v || us <= 0) return x;
  const end = performance.now() + us / 1000;
  for (;;) {
    for (let k = 0; k < 64; k++) {
      x = Atomics.load(c, i);
      if (x !== v) return x;
    }
    if (performance.now() > end) return x;
  }
}
