"""Alembic's entry point: migrate the connection the store hands over, or a URL's database.

`upgrade_to_head` passes its open connection in `config.attributes["connection"]`; the
Alembic command-line tools pass `sqlalchemy.url` instead (see `alembic_config`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from daemon.models import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    engine = create_engine(url)
    try:
        with engine.connect() as own_connection:
            _run(own_connection)
            own_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
_run_online()
