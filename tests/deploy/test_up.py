"""``miles up`` as a newcomer runs it: a fresh MILES_HOME, one command, Ctrl-C at the end."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.services import MILES, Process, tiny_config, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.slow]


class Up:
    """``miles up`` in its own session (so every process it starts can be found afterwards)."""

    def __init__(self, home: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILES_")} | {"MILES_HOME": str(home)}
        self.process = Process("miles up", [MILES, "up", "--port", str(self.port), "--cpu", *args], env, home.parent / f"up-{self.port}.log")

    def __enter__(self) -> Up:
        self.process.start(wait=False)
        self.process.wait_for_log("MILES dashboard:", timeout=90)
        self.api = httpx.Client(base_url=f"{self.url}/api/v1", timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()
        self.process.kill()  # after a test that already stopped it, this does nothing

    def runs(self) -> list[dict]:
        return self.api.get("/runs").json()["items"]


def test_miles_up_demo_trains_both_demo_runs_and_ctrl_c_leaves_no_process_behind(tmp_path):
    with Up(tmp_path / "home", "--demo") as up:
        assert f"MILES dashboard: {up.url}" in up.process.log()
        assert (tmp_path / "home" / "miles.db").exists(), "the local SQLite database was created and migrated"

        def both_succeeded() -> list[dict] | None:
            runs = up.runs()
            return runs if len(runs) == 2 and all(r["status"] == "succeeded" for r in runs) else None

        runs = wait_until(both_succeeded, 240, "both demo runs to succeed", every=1)
        assert sorted(r["method"] for r in runs) == ["joint", "miles"]
        assert {r["dataset"] for r in runs} == {"mfeat"}
        assert up.api.get(f"/runs/{runs[0]['id']}/metrics", params={"keys": "util/delta"}).json()["series"]["util/delta"]["steps"]
        assert len(up.process.session_pids()) >= 2, "the server process and its worker process run"

        assert up.process.stop(signal.SIGINT, timeout=60) == 0
        assert up.process.session_pids() == [], "a process started by miles up survived Ctrl-C"
        assert "stopped; runs in progress resume at the next start" in up.process.log()


def test_sigterm_mid_run_leaves_the_run_to_resume_at_the_next_start(tmp_path):
    home = tmp_path / "home"
    config = tiny_config(epochs=150, method="miles")
    with Up(home) as up:
        run = up.api.post("/runs", json={"config": config, "name": "interrupted"}).json()
        wait_until(lambda: up.api.get(f"/runs/{run['id']}").json()["progress"]["epoch"] >= 3, 120, "epoch 3", every=0.2)
        assert up.process.stop(signal.SIGTERM, timeout=60) == 0
        assert up.process.session_pids() == []
    with Up(home) as again:
        assert again.api.get(f"/runs/{run['id']}").json()["status"] in ("queued", "running", "succeeded")
        wait_until(lambda: again.api.get(f"/runs/{run['id']}").json()["status"] == "succeeded", 180, "the run to finish", every=0.5)
        kinds = [e["kind"] for e in again.api.get(f"/runs/{run['id']}/events", params={"limit": 500}).json()["items"]]
        assert "run.resumed" in kinds, "the second start resumed the run from its checkpoint"
        steps = again.api.get(f"/runs/{run['id']}/metrics", params={"keys": "loss/train"}).json()["series"]["loss/train"]["steps"]
        assert steps == list(range(1, 151)), "every epoch once, none repeated or lost"
        assert again.process.stop(signal.SIGINT, timeout=60) == 0
