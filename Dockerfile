# SuccessDiary production image: gunicorn with uvicorn workers, JSON logs, /metrics.
#   docker build -t successdiary .        (compose.yaml adds PostgreSQL, Redis and Mailpit)

# Stage 1: exactly the pinned dependencies (no resolving), checked against the hashes in
# requirements.lock, then checked complete.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && /opt/venv/bin/pip check

# Stage 2: the virtualenv and the app only (no compilers, no pip cache, no tests).
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    WEB_CONCURRENCY=4
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin successdiary
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Owned by root, readable by all: the app's user cannot change its own code.
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY alembic ./alembic
COPY alembic.ini ./alembic.ini
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER successdiary
EXPOSE 8000
# No curl in the slim image: Python asks /healthz (503 when the database does not answer).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# The same image runs the job worker: `python -m app worker` (compose.yaml's worker service).
ENTRYPOINT ["docker-entrypoint.sh"]
