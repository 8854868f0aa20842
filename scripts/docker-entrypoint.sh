#!/bin/sh
# The image's start: a fresh metrics directory, the migrations, then gunicorn with JSON logs.
# With arguments it runs them instead (the migrations are skipped), e.g.
#   docker compose run --rm app python -m app create-user you@example.com
set -eu

# Stale files from a previous run would be added to the new workers' numbers.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

alembic upgrade head
# Workers: WEB_CONCURRENCY; trusted proxies for X-Forwarded-*: FORWARDED_ALLOW_IPS. No control
# socket: the user has no home to put it in, and the container is managed by docker.
exec gunicorn -c python:app.gunicorn_conf 'app.main:create_app()' \
    --bind 0.0.0.0:8000 --graceful-timeout 20 --no-control-socket
