#!/usr/bin/env bash
# The whole suite, as CI runs it: system packages when missing, build, lint, type-check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-system-deps.sh

npm run build
npx eslint .

# Unit, conformance, integration and e2e tests against real servers; each file has its own time limits.
files=$(find dist -path dist/node_modules -prune -o -name '*.test.js' -print | sort)
node --test --test-concurrency=2 --test-timeout=300000 $files
