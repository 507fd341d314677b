// mixq/quant: quantizers (element grid + granularity + scale rule + scale storage) and PTQ algorithms.
export * from './algorithms/awq.ts';
export * from './algorithms/gptq.ts';
export * from './algorithms/hqq.ts';
export * from './algorithms/imatrix.ts';
export * from './algorithms/outliers.ts';
export * from './algorithms/rtn.ts';
export * from './algorithms/smoothquant.ts';
export * from './element.ts';
export * from './format-search.ts';
export * from './granularity.ts';
export * from './layout.ts';
export * from './linalg.ts';
export * from './qparams.ts';
export * from './quantizer.ts';
export * from './scale-format.ts';
export * from './stats.ts';
