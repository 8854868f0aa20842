#!/bin/sh
# Sets up and runs the test suite; arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec .venv/bin/pytest "$@"
