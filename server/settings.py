"""Server settings: environment variables prefixed ``MILES_`` (and an optional ``.env`` file).

One `Settings` object is built at start-up and passed to everything that needs it;
nothing reads the environment behind its back. Invalid values stop start-up with
a `SettingsError` whose message names the variable, e.g.
``MILES_PORT: must satisfy 1 <= port <= 65535 (got 0)``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trainer.spec import allowed_range

ENV_PREFIX = "MILES_"


class SettingsError(ValueError):
    """Invalid settings; the message names each offending variable and what is allowed."""


class Settings(BaseSettings):
    """Everything the server, the command line and the worker are configured with."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    home: Path = Field(Path("~/.miles"), description="Where local state lives: the SQLite file, data and artifacts.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default: a SQLite file under MILES_HOME. postgresql:// uses psycopg 3."
    )
    redis_url: str | None = Field(None, description="Redis of the team setup (broker and live events); unset: local mode.")
    host: str = Field("127.0.0.1", min_length=1, description="Address `miles server` and `miles up` bind.")
    port: int = Field(8000, ge=1, le=65535, description="Port `miles server` and `miles up` bind.")
    auth: Literal["auto", "on", "off"] = Field(
        "auto", description="API tokens required: on, off, or auto (on when the bind address is not loopback)."
    )
    public_reads: bool = Field(False, description="With auth on, let GET requests through without a token.")
    cookie_secure: bool = Field(False, description="Mark the login cookie Secure (set it when served over HTTPS).")
    data_dir: Path | None = Field(None, description="Root of datasets read from disk; default MILES_HOME/data.")
    artifact_dir: Path | None = Field(None, description="Checkpoints and other run files; default MILES_HOME/artifacts.")
    max_epochs: int = Field(1000, ge=1, le=1_000_000, description="Largest `epochs` a submitted run may ask for.")
    max_active_runs: int = Field(
        20, ge=1, le=100_000, description="Queued plus running executed runs allowed per API token at once."
    )
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, le=2**31, description="Largest request body accepted; larger ones get 413."
    )
    # The worker room: queues, heartbeats, recovery, the live stream (see docs/live.md).
    auto_queue: Literal["cpu", "gpu"] = Field(
        "cpu", description="Queue of runs whose device is 'auto': cpu (any worker can run them) or gpu."
    )
    heartbeat_timeout: float = Field(
        60, ge=1, le=86_400,
        description="Seconds without a heartbeat after which a worker, and the run it was training, count as lost.",
    )
    system_interval: float = Field(
        10, ge=0, le=3600, description="Seconds between two samples of a training run's system metrics (CPU, memory, "
        "GPU, throughput: the sys/ keys), taken by its worker; at least 1, or 0 to take none.",
    )
    sweep_interval: float = Field(
        15, ge=0.2, le=3600, description="Seconds between two searches for lost runs by `miles worker`."
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="Times a run's worker may be lost (no heartbeat) before the run fails instead of "
        "being re-queued; a worker's clean shutdown, which hands the run back, does not count."
    )
    max_run_hours: float = Field(
        72, gt=0, le=10_000, description="Longest a run may train, all its attempts together; it fails when it runs out of time."
    )
    stream_lifetime: float = Field(
        300, ge=1, le=86_400, description="Seconds an SSE stream stays open before the browser is told to reconnect."
    )

    @field_validator("system_interval")
    @classmethod
    def _whole_seconds_apart(cls, value: float) -> float:
        # A sample's step is the whole second since the run started: two in one second would collide.
        if 0 < value < 1:
            raise ValueError("must be 0 (no system metrics) or at least 1 second")
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver this project installs."""
        for scheme in ("postgresql://", "postgres://"):
            if value.startswith(scheme):
                return "postgresql+psycopg://" + value.removeprefix(scheme)
        return value

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.home = self.home.expanduser()
        self.data_dir = (self.data_dir or self.home / "data").expanduser()
        self.artifact_dir = (self.artifact_dir or self.home / "artifacts").expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'miles.db'}"
        return self

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need an API token (``auto``: when the bind address is not loopback)."""
        if self.auth == "auto":
            return not is_loopback(self.host)
        return self.auth == "on"

    @property
    def data_root(self) -> Path:
        assert self.data_dir is not None  # set by _resolve_paths
        return self.data_dir

    @property
    def artifact_root(self) -> Path:
        assert self.artifact_dir is not None  # set by _resolve_paths
        return self.artifact_dir

    def run_artifacts(self, run_id: int) -> Path:
        """Where the files of one run live: ``<artifact_dir>/runs/<id>``."""
        return self.artifact_root / "runs" / str(run_id)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and ``.env``), with ``overrides`` on top."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the environment variable."""
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        variable = ENV_PREFIX + name.upper() if name else "settings"
        field = Settings.model_fields.get(name)
        rule = allowed_range(name, field) if field is not None and item["type"].startswith(("greater", "less")) else None
        message = f"must satisfy {rule}" if rule else item["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}: {message} (got {item['input']!r})")
    return "invalid settings:\n  " + "\n  ".join(lines)
