"""`miles server`, `miles up` and `miles worker` share one start-up check of the database's revision."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from server import commands
from server.cli import main
from server.db import Database


@pytest.fixture
def home(monkeypatch, clean_environment):
    monkeypatch.setenv("MILES_HOME", str(clean_environment / "home"))
    monkeypatch.setenv("MILES_REDIS_URL", "")  # the local broker: nothing to reach
    return clean_environment / "home"


def test_the_worker_will_not_start_on_an_unmigrated_database(home):
    result = CliRunner().invoke(main, ["worker", "--cpu"], catch_exceptions=False)
    assert result.exit_code == 1 and "run `miles db upgrade` first" in result.output


def test_preparing_the_server_opens_one_engine(home, monkeypatch):
    opened: list[Database] = []

    class Counted(Database):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            opened.append(self)

    monkeypatch.setattr(commands, "Database", Counted)
    app = commands.prepare_app(commands.settings_or_exit(), upgrade=True, log_level="warning")
    assert len(opened) == 1 and app.state.database is not opened[0]  # the app has its own, for its lifetime
