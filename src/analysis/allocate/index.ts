// Mixed-precision allocation: the problem, exact (HiGHS MILP, DP), greedy, Pareto sweep, baseline mixes.
export * from './dp.ts';
export * from './greedy.ts';
export * from './milp.ts';
export * from './pareto.ts';
export * from './problem.ts';
export * from './rule-mix.ts';
