"""``miles db ...``, ``miles token ...`` and the start-up checks of ``miles server``, as an operator runs them."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from server.cli import main


@pytest.fixture
def miles(monkeypatch, clean_environment):
    monkeypatch.setenv("MILES_HOME", str(clean_environment / "home"))
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_db_upgrade_migrates_a_new_database_and_current_says_so(miles):
    assert "none (not migrated)" in miles("db", "current").output
    assert miles("db", "upgrade").exit_code == 0
    assert "up to date" in miles("db", "current").output


def test_db_downgrade_to_base_empties_the_database(miles):
    miles("db", "upgrade")
    result = miles("db", "downgrade", "base")
    assert result.exit_code == 0 and "base (empty)" in result.output


def test_the_server_will_not_start_on_an_unmigrated_database(miles):
    result = miles("server", "--port", "8999")
    assert result.exit_code == 1 and "run `miles db upgrade` first" in result.output


def test_a_busy_port_stops_the_server_before_the_database_is_made(miles, clean_environment):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = miles("server", "--upgrade", "--port", str(port))
    assert result.exit_code == 1 and f"cannot serve on 127.0.0.1:{port}" in result.output
    assert not (clean_environment / "home").exists(), "nothing is written before the port is known to be free"


def test_invalid_settings_stop_a_command_naming_the_variable(miles, monkeypatch):
    monkeypatch.setenv("MILES_PORT", "-5")
    result = miles("db", "current")
    assert result.exit_code == 1 and "MILES_PORT" in result.output


def test_a_token_is_printed_once_listed_without_its_secret_and_revoked(miles):
    miles("db", "upgrade")
    created = miles("token", "create", "ci")
    secret = created.stdout.strip()
    assert created.exit_code == 0 and secret.startswith("miles_") and "shown only now" in created.stderr
    listed = miles("token", "list").output
    assert "ci" in listed and "active" in listed and secret not in listed
    assert "revoked" in miles("token", "revoke", "ci").output
    assert "revoked" in miles("token", "list").output


def test_a_second_active_token_of_the_same_name_is_refused(miles):
    miles("db", "upgrade")
    miles("token", "create", "ci")
    result = miles("token", "create", "ci")
    assert result.exit_code == 1 and "revoke it first" in result.output


def test_revoking_an_unknown_token_says_so(miles):
    miles("db", "upgrade")
    result = miles("token", "revoke", "nobody")
    assert result.exit_code == 1 and "no active API token named 'nobody'" in result.output


def test_a_token_is_a_member_unless_created_with_another_role_and_the_list_shows_it(miles):
    miles("db", "upgrade")
    assert "member token 'ci'" in miles("token", "create", "ci").stderr
    assert "viewer token 'eyes'" in miles("token", "create", "eyes", "--role", "viewer").stderr
    rows = {line.split()[1]: line.split()[2] for line in miles("token", "list").output.splitlines()[1:]}
    assert rows == {"ci": "member", "eyes": "viewer"}


def test_a_role_that_does_not_exist_is_refused_naming_the_roles(miles):
    miles("db", "upgrade")
    result = miles("token", "create", "boss", "--role", "owner")
    assert result.exit_code == 2 and "'admin', 'member', 'viewer'" in result.output


def test_the_help_lists_every_command_by_the_first_sentence_of_its_own_help():
    import click

    from server.cli import COMMANDS

    context = click.Context(main)
    for name, command in COMMANDS.items():
        assert command.summary == main.get_command(context, name).get_short_help_str(limit=1000), name
    assert main.get_command(context, "nope") is None
