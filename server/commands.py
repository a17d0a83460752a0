"""``miles server``, ``miles db ...`` and ``miles token ...``: running and administering the server."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from server import migrate
from server.db import Database
from server.models import ROLES
from server.settings import Settings, SettingsError, is_loopback, load_settings
from server.store import tokens
from server.store.errors import StoreError

if TYPE_CHECKING:
    from fastapi import FastAPI


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def ready_database(settings: Settings, *, upgrade: bool = False) -> Iterator[Database]:
    """The database, at the revision this code needs (migrated first with ``upgrade``); exits saying
    which command fixes it when it is not."""
    with database(settings) as db:
        try:
            if upgrade:
                migrate.upgrade(db.engine)
            migrate.check_current(db.engine, db.display_url)
        except migrate.DatabaseNotReady as error:
            raise click.ClickException(str(error)) from None
        yield db


def prepare_app(settings: Settings, *, upgrade: bool = False, log_level: str = "info") -> FastAPI:
    """The app `miles server` serves: the database checked (or migrated), lost runs recovered,
    queued runs enqueued, jobs sent to the broker. Exits with a message when the database is not ready."""
    from server import recovery
    from server.app import create_app
    from server.queue import CeleryDispatcher, display_broker

    with ready_database(settings, upgrade=upgrade) as db:
        logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
        if settings.auth_enabled:
            click.echo("auth is on: requests need an API token (miles token create NAME)", err=True)
        elif not is_loopback(settings.host):
            click.echo(f"warning: MILES_AUTH=off on {settings.host}: anyone who can reach this port can use the API", err=True)
        click.echo(f"database: {db.display_url}", err=True)
        # Runs whose worker was lost are recovered, and queued runs enqueued again (see server.recovery).
        dispatcher = CeleryDispatcher(settings)
        click.echo(f"job queue: {display_broker(settings)}", err=True)
        recovery.at_server_start(settings, db, dispatcher)
    return create_app(settings, dispatcher=dispatcher)


def listen(settings: Settings) -> socket.socket:
    """A socket listening on MILES_HOST:MILES_PORT, for uvicorn to serve on. Made before anything
    else, so that a busy port stops start-up before a database file or directory is written."""
    where = f"{settings.host}:{settings.port}"
    try:
        family = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((settings.host, settings.port), family=family, backlog=2048)
    except socket.gaierror as error:
        raise click.ClickException(f"cannot serve on {where}: the host name does not resolve ({error.strerror})") from None
    except OSError as error:
        raise click.ClickException(
            f"cannot serve on {where}: {error.strerror}; is another server running there? "
            "Choose another port with --port or MILES_PORT"
        ) from None


def freeze_start_up_objects() -> None:
    """What is loaded by now (modules, schemas, the catalogue) lives as long as the process.
    Freezing it spares the collector from scanning it again at every full collection,
    which otherwise paused one request in a hundred for ~90 ms."""
    gc.collect()
    gc.freeze()


@click.command("server")
@click.option("--host", help="Address to bind (MILES_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (MILES_PORT, default 8000).")
@click.option("--upgrade", is_flag=True, help="Apply pending database migrations before starting.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def server_command(host: str | None, port: int | None, upgrade: bool, log_level: str) -> None:
    """Serve the API (and the dashboard) with uvicorn."""
    import uvicorn

    settings = settings_or_exit(host=host, port=port)
    listening = listen(settings)
    app = prepare_app(settings, upgrade=upgrade, log_level=log_level)
    freeze_start_up_objects()
    # uvicorn re-raises the Ctrl-C it handled once it has stopped (as uvicorn.run, which cannot take a socket, does).
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[listening])


@click.group("db")
def db_group() -> None:
    """Migrate the database (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate forward to REVISION (default: the newest)."""
    settings = settings_or_exit()
    with database(settings) as db:
        migrate.upgrade(db.engine, revision)
        click.echo(f"{db.display_url} is at revision {migrate.current(db.engine)}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate back to REVISION ('base' empties the database)."""
    settings = settings_or_exit()
    with database(settings) as db:
        migrate.downgrade(db.engine, revision)
        click.echo(f"{db.display_url} is at revision {migrate.current(db.engine) or 'base (empty)'}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    settings = settings_or_exit()
    with database(settings) as db:
        at, head = migrate.current(db.engine), migrate.head()
        state = "up to date" if at == head else "run `miles db upgrade`"
        click.echo(f"{db.display_url}: revision {at or 'none (not migrated)'}; newest {head} ({state})")


@click.group("token")
def token_group() -> None:
    """Create, list and revoke API tokens."""


@token_group.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(ROLES), default="member", show_default=True,
    help="admin: everything; member: read, submit, and change its own runs; viewer: only read.",
)
def token_create(name: str, role: str) -> None:
    """Create a token named NAME and print it (only this once)."""
    settings = settings_or_exit()
    with database(settings) as db:
        try:
            with db.transaction() as session:
                token, secret = tokens.create(session=session, name=name.strip(), role=role)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(secret)
    click.echo(
        f"{token.role} token {token.name!r} (id {token.id}) created; it is shown only now, store it safely", err=True,
    )


@token_group.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    settings = settings_or_exit()
    with database(settings) as db, db.transaction(write=False) as session:
        rows = tokens.all_tokens(session=session)
        if not rows:
            click.echo("no tokens; create one with `miles token create NAME`")
            return
        click.echo(f"{'id':>4}  {'name':<24}{'role':<8}{'prefix':<16}{'created':<18}{'last used':<18}status")
        for token in rows:
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            click.echo(
                f"{token.id:>4}  {token.name:<24}{token.role:<8}{token.prefix + '...':<16}{token.created_at:%Y-%m-%d %H:%M}  "
                f"{used:<18}{state}"
            )


@token_group.command("revoke")
@click.argument("name_or_id")
def token_revoke(name_or_id: str) -> None:
    """Revoke the active token named NAME_OR_ID (or with that id)."""
    settings = settings_or_exit()
    with database(settings) as db:
        try:
            with db.transaction() as session:
                token = tokens.revoke(session=session, ref=name_or_id)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"token {token.name!r} (id {token.id}) revoked")
