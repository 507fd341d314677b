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

runMain(main);
