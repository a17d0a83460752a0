"""The server's and the worker's commands of docker-compose.yml, run as written outside Docker.

The containers' environment is the compose file's own, with the addresses and paths that
only exist inside Docker replaced by the local PostgreSQL (a fresh, unmigrated database),
the test's own Redis, temporary folders and a free port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, fresh_postgres
from tests.deploy.compose_spec import SERVICES, container_command
from tests.services import Process, ServerProcess, WorkerProcess, tiny_config, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]

BIN = str(Path(sys.executable).parent)


def environment(service: str, *, database_url: str, redis_url: str, home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILES_")}
    env |= {k: str(v) for k, v in SERVICES[service]["environment"].items()}
    env |= {
        "MILES_DATABASE_URL": database_url,
        "MILES_REDIS_URL": redis_url,
        "MILES_HOME": str(home),
        "MILES_ARTIFACT_DIR": str(home / "artifacts"),
        "MILES_DATA_DIR": str(home / "datasets"),
        "MILES_PORT": str(port),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    }
    return env


def test_the_compose_server_and_cpu_worker_commands_run_a_job_to_completion(tmp_path, redis_process):
    port = free_port()
    with fresh_postgres() as database_url:
        settings = {"database_url": database_url, "redis_url": redis_process.url, "home": tmp_path, "port": port}
        server_env = environment("server", **settings)
        worker_env = environment("worker-cpu", **settings)
        assert server_env["MILES_AUTH"] == "on"
        server = ServerProcess(port, server_env, tmp_path, command=container_command("server"))
        worker = WorkerProcess([], worker_env, tmp_path / "worker.log", command=container_command("worker-cpu"))
        try:
            server.start()  # migrates the empty database first, as the container does
            assert "is at revision" in server.log()
            worker.start()
            # As the README says for compose: docker compose exec server miles token create admin
            token = subprocess.run(
                ["miles", "token", "create", "admin"], env=server_env, capture_output=True, text=True, check=True,
            ).stdout.strip()
            with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as api:
                assert api.post("/runs", json={"config": tiny_config()}).status_code == 401
                api.headers["Authorization"] = f"Bearer {token}"
                run = api.post("/runs", json={"config": tiny_config(device="auto")}).raise_for_status().json()
                assert run["queue"] == "cpu"  # MILES_AUTO_QUEUE of the cpu profile
                finished = wait_until(
                    lambda: (r := api.get(f"/runs/{run['id']}").json())["status"] in ("succeeded", "failed") and r,
                    120, "the run to finish", every=0.2,
                )
                assert finished["status"] == "succeeded", finished["error"]
                assert finished["progress"] == {"epoch": 4, "epochs": 4}
        finally:
            for process in (worker, server):
                if process.alive:
                    process.stop(timeout=60)
            left: list[Process] = [p for p in (worker, server) if p.session_pids()]
            assert not left, f"processes left behind: {[p.name for p in left]}"
