"""gunicorn settings for production: `gunicorn -c python:app.gunicorn_conf 'app.main:create_app()'`.

Reading the settings here makes a bad configuration stop the master with one line, before
any worker starts. The master's own lines (start, workers booting and exiting) use the same
JSON (or text) shape as the app's; a worker's exit removes its share of the pool gauges when
PROMETHEUS_MULTIPROC_DIR is set. Workers, bind address and timeouts stay on the command line
(gunicorn also reads WEB_CONCURRENCY for the number of workers).
"""

from typing import Any

from app.config import settings
from app.observability import gunicorn_logconfig, mark_worker_gone

worker_class = "app.worker.Worker"  # uvicorn on asyncio (see app/worker.py)
logconfig_dict = gunicorn_logconfig(settings.json_logs)


def child_exit(_server: Any, worker: Any) -> None:
    mark_worker_gone(worker.pid)
