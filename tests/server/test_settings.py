"""Settings: MILES_* variables, defaults under MILES_HOME, and start-up refused with the variable named."""

from __future__ import annotations

import pytest

from server.settings import SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_everything_defaults_under_miles_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MILES_HOME", str(tmp_path / "state"))
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'miles.db'}"
    assert (settings.data_root, settings.artifact_root) == (tmp_path / "state" / "data", tmp_path / "state" / "artifacts")
    assert (settings.host, settings.port, settings.auth, settings.auth_enabled) == ("127.0.0.1", 8000, "auto", False)
    assert settings.run_artifacts(7) == tmp_path / "state" / "artifacts" / "runs" / "7"


def test_a_postgresql_url_uses_psycopg_3(monkeypatch):
    monkeypatch.setenv("MILES_DATABASE_URL", "postgresql://miles:secret@db:5432/miles")
    assert load_settings().database_url == "postgresql+psycopg://miles:secret@db:5432/miles"


def test_a_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("MILES_PORT=9001\nMILES_MAX_EPOCHS=12\n")
    settings = load_settings()
    assert (settings.port, settings.max_epochs) == (9001, 12)


@pytest.mark.parametrize(("host", "auth_on"), [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                               ("0.0.0.0", True), ("10.1.2.3", True), ("dashboard.lab", True)])
def test_auto_auth_is_on_unless_bound_to_loopback(monkeypatch, host, auth_on):
    monkeypatch.setenv("MILES_HOST", host)
    assert load_settings().auth_enabled is auth_on


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MILES_PORT", "0", "MILES_PORT: must satisfy 1 <= port <= 65535 (got '0')"),
    ("MILES_PORT", "http", "MILES_PORT: Input should be a valid integer"),
    ("MILES_AUTH", "maybe", "MILES_AUTH: Input should be 'auto', 'on' or 'off' (got 'maybe')"),
    ("MILES_MAX_EPOCHS", "0", "MILES_MAX_EPOCHS: must satisfy 1 <= max_epochs <= 1000000 (got '0')"),
    ("MILES_PUBLIC_READS", "perhaps", "MILES_PUBLIC_READS: Input should be a valid boolean"),
    ("MILES_SYSTEM_INTERVAL", "0.5", "MILES_SYSTEM_INTERVAL: must be 0 (no system metrics) or at least 1 second (got '0.5')"),
])
def test_an_invalid_variable_stops_start_up_naming_it(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert message in str(error.value)


def test_system_metrics_are_sampled_every_ten_seconds_by_default_and_can_be_turned_off(monkeypatch):
    assert load_settings().system_interval == 10
    monkeypatch.setenv("MILES_SYSTEM_INTERVAL", "0")
    assert load_settings().system_interval == 0
