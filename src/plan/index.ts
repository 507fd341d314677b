// The mixed-precision plan file: schema, parsing/validation, serialisation.
export * from './from-allocation.ts';
export * from './parse.ts';
export * from './schema.ts';
export * from './serialise.ts';
