export * from './bits.ts';
export * from './errors.ts';
export * from './rng.ts';
export * from './tensor.ts';
