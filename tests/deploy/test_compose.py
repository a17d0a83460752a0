"""docker-compose.yml and the Dockerfile, checked by what runs without a Docker engine."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tests.deploy.compose_spec import (
    COMPOSE,
    DOCKERFILE,
    IMAGE,
    RUNTIME,
    SERVICES,
    container_command,
)

REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")


def test_compose_runs_postgres_redis_server_and_workers():
    assert {"postgres", "redis", "server", "worker", "worker-cpu", "flower"} <= set(SERVICES)


@pytest.mark.parametrize("name", ["postgres", "redis", "server"])
def test_stateful_services_and_the_server_have_health_checks(name):
    service = SERVICES[name]
    if name == "server":  # the image's HEALTHCHECK calls the health endpoint
        assert "HEALTHCHECK" in DOCKERFILE and "/api/v1/health" in DOCKERFILE
        assert "healthcheck" not in service or service["healthcheck"].get("disable") is not True
    else:
        assert service["healthcheck"]["test"]


def test_services_start_only_when_their_dependencies_are_healthy():
    assert SERVICES["server"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"},
    }
    for worker in ("worker", "worker-cpu"):
        assert SERVICES[worker]["depends_on"] == {"server": {"condition": "service_healthy"}}
    assert SERVICES["flower"]["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_data_lives_in_named_volumes():
    assert {"postgres", "redis", "artifacts"} <= set(COMPOSE["volumes"])
    assert "postgres:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "redis:/data" in SERVICES["redis"]["volumes"]


def test_secrets_are_required_variables_without_defaults():
    text = (ROOT / "docker-compose.yml").read_text()
    # Only what every profile needs: Compose interpolates every service, whatever the profiles
    # (flower's credentials are checked when it starts: tests/deploy/test_compose_config.py).
    assert set(REQUIRED.findall(text)) == {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    assert not re.search(r"PASSWORD:-", text), "a password has a default"
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#")
    )
    assert example["POSTGRES_PASSWORD"] == "" and example["REDIS_PASSWORD"] == ""


def test_the_gpu_worker_reserves_gpus_and_a_cpu_profile_covers_machines_without():
    devices = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert SERVICES["worker"]["profiles"] == ["gpu"] and "--gpus" in SERVICES["worker"]["command"]
    assert SERVICES["worker-cpu"]["profiles"] == ["cpu"] and "--cpu" in SERVICES["worker-cpu"]["command"]
    assert "deploy" not in SERVICES["worker-cpu"]
    assert SERVICES["flower"]["profiles"] == ["flower"]


def test_the_workers_do_not_inherit_the_servers_health_check():
    for worker in ("worker", "worker-cpu"):
        assert SERVICES[worker]["healthcheck"] == {"disable": True}


def test_the_server_migrates_before_serving_and_requires_auth():
    assert container_command("server") == ["sh", "-c", "miles db upgrade && exec miles server"]
    assert SERVICES["server"]["environment"]["MILES_AUTH"] == "on"
    assert SERVICES["server"]["environment"]["MILES_HOST"] == "0.0.0.0"


def test_the_image_is_multi_stage_non_root_with_cpu_torch_by_default():
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", DOCKERFILE, re.MULTILINE)
    assert stages == ["build", "runtime"]
    assert re.search(r"^USER miles$", RUNTIME, re.MULTILINE)
    assert "ARG TORCH_INDEX=cpu" in DOCKERFILE
    assert "COPY --from=build /opt/miles /opt/miles" in RUNTIME


def test_every_container_of_the_image_runs_a_command_it_has():
    """The image's own default and each service's command line start with sh or miles (not `miles miles ...`)."""
    assert container_command("server")[0] == "sh"
    for name, service in SERVICES.items():
        if service["image"] == IMAGE:
            command = container_command(name)
            assert command[0] in ("sh", "miles") and command[1] != "miles", f"{name} runs {command}"


def test_named_volumes_of_the_image_are_mounted_on_folders_the_user_owns():
    """A new named volume takes the owner of the image's folder it is mounted on: it must be miles."""
    created = re.search(r"mkdir -p ([^\n&]+)", RUNTIME).group(1).split()
    owned = re.search(r"chown -R miles:miles (\S+)", RUNTIME).group(1)
    for name, service in SERVICES.items():
        if service["image"] != IMAGE:
            continue
        for mount in service["volumes"]:
            source, target = mount.split(":")[:2]
            if source in COMPOSE["volumes"]:
                assert target in created and target.startswith(owned + "/"), f"{name} mounts {source} on {target}"


def test_the_dockerfile_copies_every_package_the_project_ships():
    packages = re.findall(r'include = \[(.*?)\]', (ROOT / "pyproject.toml").read_text())[0]
    for package in re.findall(r'"(\w+)\*"', packages):
        assert f"COPY {package} ./{package}" in DOCKERFILE


def test_the_build_stage_copies_enough_to_build_the_package(tmp_path):
    """The build stage's COPY lines, replayed into an empty folder, and its `pip install .` as a wheel build."""
    import shutil
    import subprocess
    import sys
    import zipfile

    build_stage = DOCKERFILE.split("AS build", 1)[1].split("AS runtime", 1)[0]
    for line in re.findall(r"^COPY (?!--from)(.+)$", build_stage, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            path = ROOT / source
            copy = shutil.copytree if path.is_dir() else shutil.copy
            copy(path, tmp_path / source, **({"ignore": shutil.ignore_patterns("__pycache__")} if path.is_dir() else {}))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), "."],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("trainer/datasets/data/mfeat.npz", "migrations/versions/0001_initial.py", "web/static/js/run.js",
                    "web/templates/run.html", "worker/up.py", "server/api/stream.py"):
        assert shipped in names, f"{shipped} is missing from the image's package"
