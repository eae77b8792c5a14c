#!/bin/sh
# The whole test suite, as CI runs it: set-up (npm packages; Debian packages for the real
# peers when root), build, the lint and format check (`npm run lint`: Biome, biome.jsonc), then
# every unit and integration test in one node:test run.
# Integration tests that need root or a missing binary skip with the reason printed.
# dist/test/integration, not dist/test: node --test treats every .js under a directory named
# test as a test file, and dist/test/support holds helpers, not tests.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh --peers
npm run --silent lint
exec node --test --test-timeout=600000 dist/src dist/lab dist/bench dist/test/integration
