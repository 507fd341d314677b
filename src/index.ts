// Public entry point (browser-safe): re-exports only. Each area is also its own subpath export
// (mixq/formats, mixq/blocks, ...); Node-only parts are in mixq/node.
export * from './analysis/index.ts';
export * from './blocks/index.ts';
export * from './core/index.ts';
export * from './engine/index.ts';
export * from './export/index.ts';
export * from './formats/index.ts';
export * from './graph/index.ts';
export * from './io/index.ts';
export * from './numerics/index.ts';
export * from './kernels/index.ts';
export * from './plan/index.ts';
export * from './quant/index.ts';
export * from './report/index.ts';
export { VERSION } from './version.ts';
