// Analysis: error metrics, sensitivity (proxies, candidate schemes, the damage table) and the allocation
// search (MILP, DP, greedy, Pareto, rule mixes). Re-exports only.
export * from './metrics.ts';
export * from './allocate/index.ts';
export * from './sensitivity/index.ts';
