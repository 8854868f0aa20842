"""Operations (issue 7, item 4): JSON log lines with request ids, /metrics, container files,
and a production start that refuses unsafe settings in one line."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from app.config import ROOT
from app.main import create_app
from app.observability import UNMATCHED, configure_logging
from tests.conftest import Mailbox, make_settings, settle
from tests.factories import PASSWORD, bearer_token
from tests.live_server import LiveServer, free_port

Lines = list[dict[str, Any]]


def json_lines(stderr: str) -> Lines:
    """Every line written is one JSON object (json.loads fails the test otherwise)."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def access_lines(lines: Lines, path: str) -> Lines:
    return [line for line in lines if line["logger"] == "app.access" and line["path"] == path]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of one metric in Prometheus' text format."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def count(text: str, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    return samples(text, "successdiary_http_requests_total").get(wanted, 0.0)


async def serve(settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(settings)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    async with application.router.lifespan_context(application), client as c:
        yield application, c
    configure_logging(json_lines=False)  # back to the suite's development lines


@pytest.fixture
async def json_client(app: FastAPI, db_url: str, mailbox: Mailbox) -> AsyncIterator[Any]:
    """An app on the suite's database that logs JSON, with a /boom route that crashes."""
    async for application, c in serve(make_settings(db_url, mailbox.port, log_format="json")):
        c.app = application  # type: ignore[attr-defined]
        yield c


@pytest.fixture
async def production_client(app: FastAPI, db_url: str, mailbox: Mailbox) -> AsyncIterator[Any]:
    settings = make_settings(db_url, mailbox.port, environment="production", cookie_secure=True)
    async for application, c in serve(settings):
        c.app = application  # type: ignore[attr-defined]
        yield c


# --- Logs --------------------------------------------------------------------------------------


async def test_each_request_writes_one_json_access_line_with_its_request_id(json_client, capsys):
    response = await json_client.get("/healthz")
    lines = json_lines(capsys.readouterr().err)
    [line] = access_lines(lines, "/healthz")
    assert response.status_code == 200
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["method"] == "GET" and line["status"] == 200 and line["route"] == "/healthz"
    assert line["level"] == "INFO" and line["logger"] == "app.access"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["timestamp"])
    assert line["message"].startswith("GET /healthz 200 ")


async def test_a_request_id_from_the_proxy_is_kept_in_the_header_and_the_log(json_client, capsys):
    given = "0f6d6cf2a3a94b6e9bb1f0d6c1a5e7d2"
    response = await json_client.get("/healthz", headers={"X-Request-ID": given})
    [line] = access_lines(json_lines(capsys.readouterr().err), "/healthz")
    assert response.headers["x-request-id"] == line["request_id"] == given


async def test_a_crash_logs_its_traceback_as_json_while_the_page_shows_only_the_request_id(
    json_client, capsys
):
    page = await json_client.get("/boom", headers={"Accept": "text/html"})
    lines = json_lines(capsys.readouterr().err)
    request_id = page.headers["x-request-id"]
    assert page.status_code == 500
    assert request_id in page.text
    assert "Traceback" not in page.text and "secret internals" not in page.text
    [error] = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == request_id
    assert (
        "Traceback" in error["traceback"] and "RuntimeError: secret internals" in error["traceback"]
    )
    [access] = access_lines(lines, "/boom")
    assert access["status"] == 500 and access["request_id"] == request_id


async def test_in_development_lines_are_short_text_with_the_request_id(
    app, db_url, mailbox, capsys
):
    async for _application, c in serve(make_settings(db_url, mailbox.port)):
        response = await c.get("/healthz")
    err = capsys.readouterr().err
    assert f"app.access [{response.headers['x-request-id']}] GET /healthz 200" in err
    assert not err.lstrip().startswith("{")


def test_log_format_is_json_in_production_and_text_in_development_unless_set(db_url, mailbox):
    production = {"environment": "production", "cookie_secure": True}
    assert make_settings(db_url, mailbox.port, **production).json_logs
    assert not make_settings(db_url, mailbox.port).json_logs
    assert make_settings(db_url, mailbox.port, log_format="json").json_logs
    assert not make_settings(db_url, mailbox.port, log_format="text", **production).json_logs


async def test_no_code_reset_token_password_or_cookie_reaches_the_log_in_production(
    production_client, mailbox: Mailbox, capsys, caplog
):
    c, email, new_password = production_client, "ops@example.com", "a brand new passphrase 42"
    await c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    await settle(c.app)
    code = mailbox.code_for(email)
    verified = await c.post("/api/v1/auth/verify", json={"email": email, "code": code})
    await c.post("/api/v1/auth/forgot-password", json={"email": email})
    await settle(c.app)
    link = mailbox.link_for(email, "/reset-password")
    token = link.split("token=", 1)[1]
    page = await c.get(link)
    reset = await c.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": new_password}
    )
    login = await c.post(
        "/api/v1/auth/cookie/login", data={"username": email, "password": new_password}
    )
    cookie = login.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    err = capsys.readouterr().err
    lines = json_lines(err)
    assert verified.status_code == 200 and page.status_code == 200
    assert reset.status_code == 200 and login.status_code in (200, 204)
    assert [line["path"] for line in access_lines(lines, "/reset-password")] == ["/reset-password"]
    records = " ".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    for secret in (code, token, PASSWORD, new_password, cookie):
        assert secret not in err and secret not in records


# --- Metrics ------------------------------------------------------------------------------------


async def test_metrics_count_requests_under_the_route_template_not_the_raw_id(json_client, alice):
    token = await bearer_token(json_client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    created = await json_client.post("/api/v1/entries", json={"title": "Shipped"}, headers=auth)
    entry_id = str(created.json()["id"])
    template = "/api/v1/entries/{entry_id}"
    before = (await json_client.get("/metrics")).text
    for _ in range(3):
        assert (await json_client.get(f"/api/v1/entries/{entry_id}", headers=auth)).is_success
    assert (await json_client.get("/api/v1/entries/999999", headers=auth)).status_code == 404
    response = await json_client.get("/metrics")
    after = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        count(after, method="GET", route=template, status="2xx")
        - count(before, method="GET", route=template, status="2xx")
        == 3
    )
    assert (
        count(after, method="GET", route=template, status="4xx")
        - count(before, method="GET", route=template, status="4xx")
        == 1
    )
    assert f'/api/v1/entries/{entry_id}"' not in after
    latency = samples(after, "successdiary_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", template))] >= 4


async def test_unknown_paths_share_one_unmatched_label(json_client):
    before = (await json_client.get("/metrics")).text
    for path in ("/wp-admin/setup.php", "/.env", "/nope/12345"):
        assert (await json_client.get(path)).status_code == 404
    after = (await json_client.get("/metrics")).text
    wanted = {"method": "GET", "route": UNMATCHED, "status": "4xx"}
    assert count(after, **wanted) - count(before, **wanted) == 3
    # No label holds the path ("12345" alone can be digits of a duration's sum).
    assert "wp-admin" not in after and "/nope" not in after


async def test_a_crash_counts_as_a_5xx_and_an_unhandled_exception(json_client):
    before = (await json_client.get("/metrics")).text
    assert (await json_client.get("/boom")).status_code == 500
    after = (await json_client.get("/metrics")).text
    wanted = {"method": "GET", "route": "/boom", "status": "5xx"}
    assert count(after, **wanted) - count(before, **wanted) == 1
    exceptions = samples(after, "successdiary_http_unhandled_exceptions_total")
    key = (("exception", "RuntimeError"), ("route", "/boom"))
    assert (
        exceptions[key]
        - samples(before, "successdiary_http_unhandled_exceptions_total").get(key, 0.0)
        == 1
    )


async def test_the_database_pool_gauges_are_read_at_scrape_time(json_client, settings):
    text = (await json_client.get("/metrics")).text
    expected_size = 5 if settings.is_sqlite else 10  # app/db.py: SQLAlchemy's default, ours
    assert samples(text, "successdiary_db_pool_size") == {(): expected_size}
    assert samples(text, "successdiary_db_pool_checked_out") == {(): 0}
    assert samples(text, "successdiary_db_pool_overflow") == {(): 0}


async def test_metrics_hold_no_user_data(json_client, alice):
    token = await bearer_token(json_client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    await json_client.post("/api/v1/entries", json={"title": "Private win zebra"}, headers=auth)
    text = (await json_client.get("/metrics")).text
    for private in ("alice", "zebra", token):
        assert private not in text


async def test_with_a_metrics_token_only_its_bearer_may_scrape(app, db_url, mailbox):
    settings = make_settings(db_url, mailbox.port, metrics_token="scrape-me-0123456789")
    async for _application, c in serve(settings):
        anonymous = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer guess"})
        right = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "successdiary_" not in anonymous.text
    assert right.status_code == 200 and "successdiary_http_requests_total" in right.text


async def test_metrics_stay_out_of_the_openapi_schema(client):
    schema = (await client.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"] and "/healthz" in schema["paths"]


# --- A real production start --------------------------------------------------------------------

REFUSALS = {
    "a default SECRET_KEY": (
        {"SECRET_KEY": "change-me"},
        "SuccessDiary cannot start: SECRET_KEY must be set to a random value",
    ),
    "COOKIE_SECURE=false": (
        {"SECRET_KEY": "x" * 48, "COOKIE_SECURE": "false"},
        "SuccessDiary cannot start: COOKIE_SECURE=false is refused in production",
    ),
}
STARTS = {
    "python -m app": [sys.executable, "-m", "app", "create-user", "x@example.com"],
    "uvicorn": [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"],
    "gunicorn (README)": [
        sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "app.main:create_app()",
    ],
}  # fmt: skip


@pytest.mark.parametrize("start", list(STARTS))
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_production_refuses_unsafe_settings_in_one_line(start, refusal, tmp_path: Path):
    env_overrides, reason = REFUSALS[refusal]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "REDIS_URL"))}
    env.update(ENVIRONMENT="production", PYTHONPATH=str(ROOT), PORT=str(free_port()))
    env.pop("COOKIE_SECURE", None)
    env.update(env_overrides)
    result = subprocess.run(
        [*STARTS[start], "--bind" if "gunicorn" in start else "--port", env["PORT"]]
        if start != "python -m app"
        else STARTS[start],
        cwd=tmp_path,  # no .env file to lean on
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3
    assert lines == [lines[0]] and lines[0].startswith(reason), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def scrape_when_every_worker_reports(client: httpx.Client, pool_size: int) -> str:
    """The server is ready once one worker answers; the other may still be booting."""
    deadline = time.monotonic() + 30
    while True:
        text = client.get("/metrics").text
        reported = samples(text, "successdiary_db_pool_size").get((), 0)
        if reported >= pool_size or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_gunicorn_workers_write_json_lines_and_metrics_add_up_across_workers(
    db_url, mailbox, settings, tmp_path: Path
):
    server = LiveServer(
        database_url=db_url,
        smtp_port=mailbox.port,
        workers=2,
        GUNICORN_CMD_ARGS="-c python:app.gunicorn_conf",  # as the README and the image start it
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    per_worker = 5 if settings.is_sqlite else 10
    start = server.log.stat().st_size if server.log.exists() else 0
    with server, httpx.Client(base_url=server.url, timeout=10) as c:
        answers = [c.get("/healthz") for _ in range(20)]
        c.get("/reset-password", params={"token": "tok-must-not-be-logged"})
        text = scrape_when_every_worker_reports(c, pool_size=2 * per_worker)
    log = server.log.read_bytes()[start:].decode()
    lines = json_lines(log)
    booted = [line for line in lines if line["message"].startswith("Booting worker")]
    logged = {
        line["request_id"] for line in access_lines(lines, "/healthz") if line["status"] == 200
    }
    assert len(booted) == 2
    assert {"gunicorn.error", "uvicorn.error", "app.access"} <= {line["logger"] for line in lines}
    assert {answer.headers["x-request-id"] for answer in answers} <= logged  # + readiness polls
    assert "tok-must-not-be-logged" not in log
    # Whichever worker answers the scrape, it reports both workers' numbers; a readiness poll
    # the client gave up on while a worker booted may still be answered after the scrape.
    assert count(text, method="GET", route="/healthz", status="2xx") >= 20
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    final = generate_latest(registry).decode()
    assert count(final, method="GET", route="/healthz", status="2xx") == len(logged)
    assert samples(text, "successdiary_db_pool_size") == {(): 2 * per_worker}


# --- Container files ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    text = re.sub(r"\s*\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments))
    return found


def test_the_dockerfile_builds_in_stages_and_runs_as_a_non_root_user_with_a_healthcheck():
    steps = dockerfile_instructions()
    stages = [args for keyword, args in steps if keyword == "FROM"]
    second = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    builder, final = steps[:second], steps[second:]
    last = {keyword: args for keyword, args in final}  # the final stage's last of each kind
    copied = {args.split()[0] for keyword, args in final if keyword == "COPY"}
    assert len(stages) == 2 and stages[0].endswith(" AS builder")
    assert stages[1] == "python:3.11-slim"
    assert (
        "RUN",
        "/opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock"
        " && /opt/venv/bin/pip check",
    ) in builder  # exactly the lock's packages, checked complete
    assert last["USER"] not in ("root", "0")
    assert "python" in last["HEALTHCHECK"] and "/healthz" in last["HEALTHCHECK"]
    assert "ENVIRONMENT=production" in last["ENV"]
    assert "PROMETHEUS_MULTIPROC_DIR=" in last["ENV"]
    assert {"app", "templates", "static", "alembic", "alembic.ini"} <= copied
    assert "--from=builder" in copied  # the virtualenv, not a second install
    assert last["ENTRYPOINT"] == '["docker-entrypoint.sh"]'


def test_set_up_installs_exactly_the_lock_and_checks_it_complete():
    """A fresh clone gets what the lock names whatever PyPI has since released: pip resolves
    nothing (--no-deps), then pip check proves every requirement met."""
    for script, python in (
        ("setup.sh", ".venv/bin/python"),
        ("setup.bat", ".venv\\Scripts\\python"),
    ):
        lines = (ROOT / "scripts" / script).read_text().splitlines()
        install = [i for i, line in enumerate(lines) if "-r requirements-dev.lock" in line]
        assert len(install) == 1, script
        assert "--require-hashes --no-deps" in lines[install[0]], script
        assert lines[install[0] + 1].strip().startswith(f"{python} -m pip check"), script


def test_the_entrypoint_migrates_then_starts_gunicorn_with_the_json_config():
    script = ROOT / "scripts" / "docker-entrypoint.sh"
    text = script.read_text()
    assert os.access(script, os.X_OK)
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert text.index("alembic upgrade head") < text.index("exec gunicorn")
    assert "-c python:app.gunicorn_conf" in text


def test_compose_runs_the_app_with_postgres_redis_and_mailpit_without_a_written_secret():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    app_service = services["app"]
    env = app_service["environment"]
    assert set(services) == {"app", "worker", "postgres", "redis", "mailpit"}
    # The job worker: the same image and settings, running the queue (mail waits without it).
    assert services["worker"]["command"] == ["python", "-m", "app", "worker"]
    assert services["worker"]["environment"] == env
    assert (
        services["postgres"]["image"] == "postgres:16" and services["redis"]["image"] == "redis:7"
    )
    for name in ("postgres", "redis", "mailpit"):
        assert services[name]["healthcheck"]["test"], name
        assert app_service["depends_on"][name] == {"condition": "service_healthy"}, name
    assert (
        env["DATABASE_URL"].startswith("postgresql+psycopg://")
        and "@postgres:" in env["DATABASE_URL"]
    )
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["SMTP_HOST"] == "mailpit"
    assert env["ENVIRONMENT"] == "production"
    assert env["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"
    assert app_service["ports"] == ["8000:8000"] and services["mailpit"]["ports"] == ["8025:8025"]
    secrets_given = {
        f"{service}.{key}": str(value)
        for service, spec in services.items()
        for key, value in spec.get("environment", {}).items()
        if re.search("SECRET|PASSWORD|TOKEN", key)
    }
    assert len(secrets_given) == 5  # SECRET_KEY and METRICS_TOKEN (app, worker), POSTGRES_PASSWORD
    for where, value in secrets_given.items():
        assert value.startswith("${"), f"{where} is written in compose.yaml"
    database_password = env["DATABASE_URL"].split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert database_password.startswith("${POSTGRES_PASSWORD:?")


def test_the_dockerignore_keeps_local_state_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for local in (".venv", ".secret_key", ".env", "*.sqlite3*", "node_modules", ".git", "tests"):
        assert local in ignored, local


def test_the_documented_production_command_is_what_the_entrypoint_runs():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"gunicorn -c python:app.gunicorn_conf [^`\n]*", readme)
    assert command, "README shows the production gunicorn command"
    assert shlex.split(command.group(0))[:3] == ["gunicorn", "-c", "python:app.gunicorn_conf"]


# --- The project's own docs --------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")


DOCS = [
    "README.md",
    "bench/README.md",
    *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")),
]


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_link_only_to_files_in_the_repo(doc: str):
    path = ROOT / doc
    links = LINK.findall(path.read_text())
    assert links or doc != "README.md", "the README links to the docs"
    for link in links:
        target = link.split("#", 1)[0]
        if not target:
            continue  # a heading in the same file
        assert "://" not in target, f"{doc} links outside the repo: {link}"
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{doc}: {link} is missing"
