#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (built by `npm run build` / prepack).
import '../dist/cli/main.js';
