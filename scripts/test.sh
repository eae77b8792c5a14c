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
# Each test file may run up to 20 minutes: on a fresh machine the Debian package test first
# builds its clean Debian root and downloads the package's dependencies (measured 10+ minutes
# on a busy 2-core machine); the timeout is a guard against a hung file, not a speed target.
exec node --test --test-timeout=1200000 dist/src dist/lab dist/bench dist/test/integration
