// Public entry point: re-exports only.
export * from './core/index.ts';
export { VERSION } from './version.ts';
