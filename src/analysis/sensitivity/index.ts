// Sensitivity analysis: candidate schemes, damage proxies, rank correlation, the allocator's damage table.
export * from './candidates.ts';
export * from './proxies.ts';
export * from './apply-scheme.ts';
export * from './spearman.ts';
export * from './table.ts';
