import type { CommandDef } from 'citty';

// A command's args type is contravariant in its run(), so a table of differently-typed commands needs
// citty's own erased form (its SubCommandsDef is Record<string, Resolvable<CommandDef<any>>>).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- erased args type, as in citty's SubCommandsDef
type AnyCommand = CommandDef<any>;
type Lazy = () => Promise<AnyCommand>;

/**
 * The command table. Each entry is loaded only when that command runs. Add a command by adding a file
 * in this folder that default-exports a citty command, and one line here.
 */
export const commands: Record<string, Lazy> = {
  formats: () => import('./formats.ts').then((m) => m.default),
  chop: () => import('./chop.ts').then((m) => m.default),
  inspect: () => import('./inspect.ts').then((m) => m.default),
  convert: () => import('./convert.ts').then((m) => m.default),
  eval: () => import('./eval.ts').then((m) => m.default),
  requantize: () => import('./requantize.ts').then((m) => m.default),
  quantize: () => import('./quantize.ts').then((m) => m.default),
  plan: () => import('./plan.ts').then((m) => m.default),
  apply: () => import('./apply.ts').then((m) => m.default),
  w8a8: () => import('./w8a8.ts').then((m) => m.default),
  numerics: () => import('./numerics.ts').then((m) => m.default),
  run: () => import('./run.ts').then((m) => m.default),
};
