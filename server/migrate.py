"""Alembic, configured in code: works from a source checkout and from an installed wheel alike.

The scripts live in the ``migrations`` package; there is no ``alembic.ini``. The
server refuses to start unless the database is at the head revision
(`check_current`), and says which command fixes it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations


class DatabaseNotReady(RuntimeError):
    """The database is not at the revision this version of the code needs; the message says what to run."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def _run(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate forward to ``revision`` (default: the newest)."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate back to ``revision`` (``base``: an empty database)."""
    _run(engine, "downgrade", revision)


def head() -> str:
    """The newest revision this version of the code knows."""
    script = ScriptDirectory.from_config(alembic_config())
    revision = script.get_current_head()
    assert revision is not None, "the migrations package holds no revision"
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def known(revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    return any(item.revision == revision for item in script.walk_revisions())


def check_current(engine: Engine, where: str) -> None:
    """Raise `DatabaseNotReady` unless the database at ``where`` is at the head revision."""
    at, newest = current(engine), head()
    if at == newest:
        return
    if at is None:
        raise DatabaseNotReady(f"the database {where} has not been migrated; run `miles db upgrade` first")
    if known(at):
        raise DatabaseNotReady(
            f"the database {where} is at revision {at}, this version needs {newest}; run `miles db upgrade`"
        )
    raise DatabaseNotReady(
        f"the database {where} is at revision {at}, which this version of miles-dashboard does not know "
        "(a newer version migrated it); upgrade miles-dashboard, or run `miles db downgrade` with the newer version"
    )
