export * from './layers.ts';
export * from './model.ts';
