// Analysis: error metrics (more to come: sensitivity, allocation search).
export * from './metrics.ts';
export * from './allocate/index.ts';
export * from './sensitivity/index.ts';
