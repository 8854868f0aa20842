"""SECURITY.md row 22: schemathesis over /openapi.json, signed in as a real verified user.

The CLI runs in a subprocess against a real server (gunicorn, this test's database), with a
fixed seed and a bounded number of examples so a run takes well under two minutes per backend.
"""

import subprocess
import sys
from pathlib import Path

from tests.conftest import Mailbox
from tests.factories import PASSWORD, bearer_token, post_form
from tests.live_server import LiveServer

FUZZER = "fuzz@example.com"
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
]
# Operations that would end the fuzzing session mid-run, so every later call would only
# test the 401 path: both logouts revoke the token in use, and deleting the account removes
# the user the token belongs to. Their auth is covered by rows 8, 12 and 27.
NOT_FUZZED = [
    "POST /api/v1/auth/bearer/logout",
    "POST /api/v1/auth/cookie/logout",
    "DELETE /api/v1/users/me",
]


def schemathesis(server: LiveServer, token: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS),
        "--max-examples", "20",
        "--seed", "22",
        "--generation-database", "none",
        "--no-color",
        "--request-timeout", "20",
    ]  # fmt: skip
    for name in NOT_FUZZED:
        command += ["--exclude-name", name]
    return subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=240, check=False
    )


async def test_row22_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    app, db_url, mailbox: Mailbox, tmp_path
):
    """`app` is requested so the tables are emptied after the run, like after any test."""
    with LiveServer(database_url=db_url, smtp_port=mailbox.port) as server:
        server.create_user(FUZZER)
        token = server.bearer_token(FUZZER)
        result = schemathesis(server, token, tmp_path)
        log = server.log.read_text(errors="replace")
    report = result.stdout + result.stderr
    (server.log.parent / f"schemathesis-{server.port}.txt").write_text(report)
    assert "Tested: " in result.stdout and "Tested: 0" not in result.stdout, report
    assert result.returncode == 0, report[-8000:]
    assert " 500 " not in log and "Traceback" not in log, log[-4000:]


async def test_row22_a_nul_byte_in_the_sign_in_email_is_a_wrong_login_not_a_500(client, alice):
    """Found by schemathesis on PostgreSQL, whose text columns refuse NUL."""
    api = await client.post(
        "/api/v1/auth/bearer/login",
        data={"username": "alice\x00@example.com", "password": PASSWORD},
    )
    page = await post_form(
        client, "/login", {"email": "alice\x00@example.com", "password": PASSWORD}
    )
    assert api.status_code == 400 and api.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}
    assert page.status_code == 422 and "email or password" in page.text.lower()


async def test_row22_an_id_past_the_integer_column_is_a_422_not_a_500(client, alice):
    """Found by schemathesis: a 23-digit id reached the database driver."""
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    huge = "25154158937418873438208"
    for method, url, body in [
        ("GET", f"/api/v1/entries/{huge}", None),
        ("PATCH", f"/api/v1/categories/{huge}", {"name": "x"}),
        ("GET", f"/api/v1/entries?category_id={huge}", None),
        ("POST", "/api/v1/entries", {"title": "t", "category_id": int(huge)}),
    ]:
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == 422, (method, url, response.text)


async def test_row22_the_schema_documents_400_and_401_where_they_can_happen(client):
    """FastAPI leaves out the 400 for an unreadable body and the 401 for a missing session."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    operations = [(m.upper(), p, op) for p, ops in paths.items() for m, op in ops.items()]
    for method, path, operation in operations:
        if "requestBody" in operation:
            assert "400" in operation["responses"], (method, path)
        if operation.get("security"):
            assert "401" in operation["responses"], (method, path)
    assert sum(bool(op.get("security")) for _, _, op in operations) >= 25
    signed_out = await client.get("/api/v1/entries")
    assert signed_out.status_code == 401 and isinstance(signed_out.json()["detail"], str)
