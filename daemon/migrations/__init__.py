"""The store's schema history: Alembic migrations, run from code, no alembic.ini.

`Store.open` calls `upgrade_to_head` on every start, so a new release migrates the
database it finds. The schema is created only here, never by `metadata.create_all`.

To write the next migration, describe the change in `daemon/models.py`, then let Alembic
draft it against a database at the current head and review the result by hand::

    python -c "from alembic import command; from daemon.migrations import alembic_config; \\
        command.revision(alembic_config('sqlite:////tmp/head.db'), 'what changed', \\
        autogenerate=True)"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "alembic_config", "upgrade_to_head"]

_SCRIPT_LOCATION = Path(__file__).resolve().parent

# The newest revision in versions/ (a test holds it to Alembic's own answer): a schema
# already there is recognised by one query, without loading Alembic (a report starts
# faster). Update it with every new migration.
HEAD_REVISION = "0002"

# Any constant works; every Relight process sharing a PostgreSQL database uses this one.
_MIGRATION_LOCK_ID = 0x5E11647


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for this package's migrations (`url`: for the CLI tools)."""
    from alembic.config import Config  # noqa: PLC0415  only when migrating

    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser interpolates "%": a password may contain one.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Bring the schema on `connection` to the newest revision; a no-op when it is there.

    Runs in the caller's transaction. On PostgreSQL an advisory lock makes several
    workers starting together migrate one after the other instead of colliding.
    """
    if _at_head(connection):
        return
    from alembic import command  # noqa: PLC0415  only when migrating

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [row[0] for row in versions] == [HEAD_REVISION]
