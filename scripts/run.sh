#!/bin/sh
# Sets up, migrates the database (SQLite db.sqlite3 by default) and serves with reload, with
# production's HTTP protocol (a request's head bounded in size and time, app/protocol.py) and
# no Server header or WebSocket. A job worker runs beside it (mail, reminders, digests and
# housekeeping; app/jobs.py) and stops with it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
.venv/bin/alembic upgrade head
# uvicorn names the address it binds (127.0.0.1); forms work from localhost and 127.0.0.1 alike.
echo "SuccessDiary: open http://localhost:${PORT:-8000} (mail sent in development: http://localhost:${PORT:-8000}/dev/mail)"
.venv/bin/python -m app worker &
WORKER=$!
trap 'kill "$WORKER" 2>/dev/null || true' EXIT INT TERM
.venv/bin/uvicorn --factory app.main:create_app --loop asyncio --http app.protocol:HttpProtocol --ws none \
    --no-server-header --reload --reload-dir app --reload-dir templates --reload-include "*.html" \
    --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
