"""The operator's commands, run as a user runs them (`python -m app ...` in a subprocess)."""

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from app.config import ROOT
from app.models import metadata
from tests.conftest import alembic_config

PASSWORD = "correct horse battery staple"


def run(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    return url


def test_create_user_then_import_and_export_with_progress(sqlite_db: str, tmp_path: Path):
    created = run(
        sqlite_db, "create-user", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    weak = run(sqlite_db, "create-user", "weak@example.com", "--password-stdin", stdin="password\n")
    assert weak.returncode == 1 and "error:" in weak.stderr
    source = tmp_path / "jrnl.json"
    source.write_text(
        json.dumps(
            {"entries": [{"title": "Ran", "body": "far", "date": "2025-01-02", "tags": ["@run"]}]}
        )
    )

    imported = run(sqlite_db, "import", "ops@example.com", str(source))
    assert imported.returncode == 0, imported.stderr
    assert "jrnl: imported 1 entries" in imported.stdout and "import" in imported.stderr, (
        "a progress bar"
    )

    out = tmp_path / "out.zip"
    exported = run(sqlite_db, "export", "ops@example.com", "--format", "markdown", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert zipfile.ZipFile(out).namelist() == ["2025/2025-01-02-ran.md"]
    assert run(sqlite_db, "export", "nobody@example.com", "-o", str(out)).returncode == 1


def test_sqlite_backup_is_checked_and_restores(sqlite_db: str, tmp_path: Path):
    run(sqlite_db, "create-user", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    backup = tmp_path / "backup.sqlite3"
    result = run(sqlite_db, "backup", str(backup))
    assert result.returncode == 0 and "integrity_check ok" in result.stdout, result.stderr
    db_file = Path(sqlite_db.split("///", 1)[1])
    with sqlite3.connect(db_file) as db:
        db.execute('DELETE FROM "user"')
    restored = run(sqlite_db, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(db_file) as db:
        assert db.execute('SELECT email FROM "user"').fetchall() == [("ops@example.com",)]
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"not a database")
    assert run(sqlite_db, "restore", str(broken)).returncode != 0


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
def test_move_db_copies_everything_into_postgresql(sqlite_db: str, tmp_path: Path):
    run(sqlite_db, "create-user", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    source = tmp_path / "jrnl.json"
    source.write_text(
        json.dumps(
            {
                "entries": [
                    {"title": f"win {i}", "body": "#a #b", "date": "2025-01-02"} for i in range(30)
                ]
            }
        )
    )
    run(sqlite_db, "import", "ops@example.com", str(source))
    target = os.environ["TEST_DATABASE_URL"].rsplit("/", 1)[0] + "/sd_move_test"
    admin = create_engine(
        os.environ["TEST_DATABASE_URL"].replace("+asyncpg", "+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS sd_move_test WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE sd_move_test"))
    try:
        moved = run(sqlite_db, "move-db", "--from", sqlite_db, "--to", target)
        assert moved.returncode == 0, moved.stderr
        assert (
            "row counts match" in moved.stdout
            and "entry 30" in moved.stdout
            and "entry_tag 60" in moved.stdout
        )
        engine = create_engine(target)
        with engine.connect() as conn:
            assert (
                conn.execute(
                    select(func.count()).select_from(metadata.tables["category"])
                ).scalar_one()
                == 6
            )
            hits = conn.execute(
                text("SELECT count(*) FROM entry WHERE search @@ to_tsquery('english', 'win')")
            ).scalar_one()
            assert hits == 30, "the search column is computed in PostgreSQL"
        engine.dispose()
        again = run(sqlite_db, "move-db", "--from", sqlite_db, "--to", target)
        assert again.returncode == 1 and "not empty" in again.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS sd_move_test WITH (FORCE)"))
        admin.dispose()


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
def test_postgresql_backup_and_restore(tmp_path: Path):
    target = os.environ["TEST_DATABASE_URL"].rsplit("/", 1)[0] + "/sd_backup_test"
    admin = create_engine(
        os.environ["TEST_DATABASE_URL"].replace("+asyncpg", "+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS sd_backup_test WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE sd_backup_test"))
    try:
        command.upgrade(alembic_config(target), "head")
        run(target, "create-user", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n")
        dump = tmp_path / "backup.dump"
        assert run(target, "backup", str(dump)).returncode == 0
        engine = create_engine(target)
        with engine.begin() as conn:
            conn.execute(text('DELETE FROM "user"'))
        restored = run(target, "restore", str(dump))
        assert restored.returncode == 0, restored.stderr
        with engine.connect() as conn:
            assert conn.execute(text('SELECT email FROM "user"')).scalars().all() == [
                "ops@example.com"
            ]
            assert conn.execute(text("SELECT count(*) FROM category")).scalar_one() == 6
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS sd_backup_test WITH (FORCE)"))
        admin.dispose()
