#!/bin/sh
# Sets up, migrates the database (SQLite db.sqlite3 by default) and serves with reload.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
.venv/bin/alembic upgrade head
# uvicorn names the address it binds (127.0.0.1); forms work from localhost and 127.0.0.1 alike.
echo "SuccessDiary: open http://localhost:${PORT:-8000} (mail sent in development: http://localhost:${PORT:-8000}/dev/mail)"
exec .venv/bin/uvicorn --factory app.main:create_app --loop asyncio --reload --reload-dir app --reload-dir templates \
    --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
