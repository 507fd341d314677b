import type { CommandDef } from 'citty';

type Lazy = () => Promise<CommandDef>;

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
};
