/** Word offsets of a kernel worker's control block (pool.node.ts, pool-worker.node.ts). */
export const CTL = {
  seq: 0,
  done: 1,
  fn: 2,
  argc: 3,
  err: 4,
  poll: 5,
  /** Units (rows) of the call: chunks of `chunk` units are claimed from the pool's shared counter. */
  units: 6,
  chunk: 7,
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

/**
 * Runs f(...args, u0, u1, scratch) over the chunks [i * chunk, min(units, (i + 1) * chunk)) whose index i
 * this thread claims from counter word 0 of `next` (Atomics.add), until no chunk is left. Every thread of a
 * call runs this loop: a thread that starts late or runs slower (woken from sleep, descheduled, sharing a
 * core) takes fewer chunks instead of holding up the others (issue 21).
 */
export function runChunks(
  f: (...a: number[]) => void,
  args: readonly number[],
  units: number,
  chunk: number,
  scratch: number,
  next: Int32Array,
): void {
  for (;;) {
    const u0 = Atomics.add(next, 0, 1) * chunk;
    if (u0 >= units) return;
    f(...args, u0, Math.min(units, u0 + chunk), scratch);
  }
}
