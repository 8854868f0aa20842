#!/bin/sh
# Rebuilds static/ (and the test-only tests/browser/vendor/) from package.json and fails when
# the committed build differs (stale assets).
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build >/dev/null
if [ -n "$(git status --porcelain -- static/ tests/browser/vendor/)" ]; then
    echo "static/ or tests/browser/vendor/ is stale: run 'make css' and commit the result. Changes:" >&2
    git status --porcelain -- static/ tests/browser/vendor/ >&2
    exit 1
fi
echo "static/ is up to date with package.json, tailwind.config.js and the templates."
