#!/usr/bin/env node
/**
 * The mixq command line. Commands are declared as data and loaded lazily (citty), so `mixq formats`
 * never loads onnxruntime. This is the only place (with src/cli/*) that prints.
 */
import { defineCommand, runMain } from 'citty';
import { commands } from './commands/index.ts';
import { VERSION } from '../version.ts';

const main = defineCommand({
  meta: {
    name: 'mixq',
    version: VERSION,
    description: 'Mixed-precision quantization and low-precision number formats',
  },
  subCommands: commands,
});

// A closed output pipe (`mixq eval gpt --json | head`) ends the command quietly: a reader that stopped
// reading is not an error of the command.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    process.exitCode = 1;
  });

runMain(main);
