"""Alembic owns the schema: upgrade head on an empty database gives exactly the models."""

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app.db import include_object
from app.models import metadata
from tests.conftest import alembic_config


@pytest.fixture
def empty_database(db_url: str, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database with no tables: a fresh SQLite file, or a fresh PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    url = make_url(db_url)
    name = f"{url.database}_migrations"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def differences(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        opts = {
            "compare_type": True,
            "compare_server_default": True,
            "include_object": include_object,
        }
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return list(diff)


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_head_matches_the_models(empty_database: str):
    command.upgrade(alembic_config(empty_database), "head")
    assert differences(empty_database) == []
    assert {"user", "access_token", "email_code"} <= tables(empty_database)


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(empty_database: str):
    cfg = alembic_config(empty_database)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    assert tables(empty_database) == {"alembic_version"}
    command.upgrade(cfg, "head")
    assert differences(empty_database) == []
