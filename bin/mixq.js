#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (built by `npm run build` / prepack). In a clone before any
// build, dist/ does not exist: say what to run instead of failing with ERR_MODULE_NOT_FOUND.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'mixq: the compiled CLI (dist/) is missing: run `npm run build` first, or `npm run mixq -- <command>` to run from source\n',
  );
  process.exit(2);
}
await import(main.href);
