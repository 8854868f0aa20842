"""gunicorn settings for production: `gunicorn -c python:app.gunicorn_conf 'app.main:create_app()'`.

Reading the settings here makes a bad configuration stop the master with one line, before
any worker starts. The master's own lines (start, workers booting and exiting) use the same
JSON (or text) shape as the app's; a worker's exit removes its share of the pool gauges when
PROMETHEUS_MULTIPROC_DIR is set. Workers, bind address and timeouts stay on the command line
(gunicorn also reads WEB_CONCURRENCY for the number of workers). In production more than one
worker needs REDIS_URL (shared rate limits): the master refuses to start without it, with the
same one line, before it logs anything or opens its socket.
"""

from typing import Any

from app.config import cannot_start, settings, workers_problem
from app.observability import gunicorn_logconfig, mark_worker_gone

worker_class = "app.worker.Worker"  # uvicorn on asyncio (see app/worker.py)
logconfig_dict = gunicorn_logconfig(settings.json_logs)


def child_exit(_server: Any, worker: Any) -> None:
    mark_worker_gone(worker.pid)


def nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """gunicorn calls this once it knows the worker count (from -w, GUNICORN_CMD_ARGS or
    WEB_CONCURRENCY; old_value None), before it starts, and at each TTIN/TTOU change."""
    problem = workers_problem(settings, new_value)
    if problem is None:
        return
    if old_value is None:
        cannot_start(problem)
    server.log.error("more workers refused: %s", problem)
    server.num_workers = old_value  # calls this hook again, with the count that was allowed
