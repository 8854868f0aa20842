#!/bin/sh
# Creates .venv (Python >= 3.11) and installs the pinned dependencies when the lock file changed.
set -eu
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    PYTHON=""
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PYTHON="$candidate"
            break
        fi
    done
    if [ -z "$PYTHON" ]; then
        echo "SuccessDiary needs Python 3.11 or newer: install it and run this again." >&2
        exit 1
    fi
    echo "Creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.installed"
wanted="$(.venv/bin/python -c 'import hashlib, pathlib; print(hashlib.sha256(pathlib.Path("requirements-dev.lock").read_bytes() + pathlib.Path("pyproject.toml").read_bytes()).hexdigest())')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "Installing the pinned dependencies (requirements-dev.lock)"
    # --no-deps: the lock already names every package at one version, so pip installs exactly
    # those and resolves nothing (pip 23's resolver turns a pinned package that another asks for
    # with an extra, sqlalchemy[asyncio], into an unpinned one as soon as a newer release
    # appears); pip check then proves the set complete.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
    .venv/bin/python -m pip check
    # The app itself, editable, for the `successdiary` command (setuptools comes pinned above).
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$wanted" > "$stamp"
fi
