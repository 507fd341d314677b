// The mixed-precision plan file: schema, parsing/validation, serialisation.
export * from './parse.ts';
export * from './schema.ts';
export * from './serialise.ts';
