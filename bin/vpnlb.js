#!/usr/bin/env node
// Entry point of the installed `vpnlb` command: the compiled CLI lives in dist/ (npm run build).
import '../dist/src/cli/run-cli.js';
