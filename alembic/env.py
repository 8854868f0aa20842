"""Alembic environment: the app's metadata, the app's DATABASE_URL, a sync driver.

The URL is, in order: `config.attributes["url"]` (tests), `-x url=...`, then DATABASE_URL.
Async driver names are swapped for their sync twins so migrations run without an event loop.
"""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, event, pool
from sqlalchemy.engine import Connection

import app.models
from app.config import settings
from app.db import SQLITE_PRAGMAS, include_object, sync_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = app.models.metadata


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return sync_url(url or settings.database_url)


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    sqlite = (url or str(connection.engine.url if connection else "")).startswith("sqlite")
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        compare_server_default=True,
        include_object=include_object,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            for pragma in SQLITE_PRAGMAS:
                dbapi_connection.execute(pragma)

    with engine.connect() as connection:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
