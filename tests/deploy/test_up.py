"""``miles up`` as a newcomer runs it: a fresh MILES_HOME, one command, Ctrl-C at the end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.services import MILES, Process, tiny_config, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.slow]


class Up:
    """``miles up`` in its own session (so every process it starts can be found afterwards)."""

    def __init__(self, home: Path, *args: str, port_from_environment: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILES_")} | {"MILES_HOME": str(home)}
        if port_from_environment:
            env["MILES_PORT"] = str(self.port)
        port = [] if port_from_environment else ["--port", str(self.port)]
        self.process = Process("miles up", [MILES, "up", *port, "--cpu", *args], env, home.parent / f"up-{self.port}.log")

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

        # Two 40-epoch runs on mfeat: about a minute on an idle 2-core machine, several when it is shared.
        runs = wait_until(both_succeeded, 480, "both demo runs to succeed", every=1)
        assert sorted(r["method"] for r in runs) == ["joint", "miles"]
        assert {r["dataset"] for r in runs} == {"mfeat"}
        assert up.api.get(f"/runs/{runs[0]['id']}/metrics", params={"keys": "util/delta"}).json()["series"]["util/delta"]["steps"]
        assert len(up.process.session_pids()) >= 2, "the server process and its worker process run"

        assert up.process.stop(signal.SIGINT, timeout=60) == 0
        assert up.process.session_pids() == [], "a process started by miles up survived Ctrl-C"
        assert "stopped; runs in progress resume at the next start" in up.process.log()


def test_a_second_miles_up_demo_shows_the_demo_runs_instead_of_submitting_them_again(tmp_path):
    with Up(tmp_path / "home", "--demo") as up:
        first = sorted(run["id"] for run in up.runs())
        assert len(first) == 2
        assert up.process.stop(signal.SIGINT, timeout=60) == 0
    with Up(tmp_path / "home", "--demo") as again:
        assert sorted(run["id"] for run in again.runs()) == first
        assert "demo runs, from an earlier --demo: " in again.process.log()
        assert again.process.stop(signal.SIGINT, timeout=60) == 0


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


def test_miles_up_serves_on_the_port_miles_port_names(tmp_path):
    with Up(tmp_path / "home", port_from_environment=True) as up:
        assert f"MILES dashboard: {up.url}" in up.process.log()
        assert up.api.get("/health").status_code == 200
        assert up.process.stop(signal.SIGINT, timeout=60) == 0


def test_a_busy_port_stops_miles_up_before_anything_is_written(tmp_path):
    home = tmp_path / "home"
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILES_")} | {"MILES_HOME": str(home)}
        done = subprocess.run([MILES, "up", "--port", str(port), "--gpus", "none"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 1 and f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert not home.exists(), f"miles up wrote {sorted(p.name for p in home.iterdir())} before finding the port busy"


def maps_torch(pid: int) -> bool:
    """Whether process ``pid`` has torch's shared library mapped (it imported torch)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def test_only_the_worker_process_that_trains_loads_torch(tmp_path):
    with Up(tmp_path / "home") as up:
        parent = up.process.pid
        run = up.api.post("/runs", json={"config": tiny_config(epochs=2)}).json()
        wait_until(lambda: up.api.get(f"/runs/{run['id']}").json()["status"] == "succeeded", 120, "the run to succeed")
        for path in ("/catalog", f"/runs/{run['id']}/metrics", f"/runs/{run['id']}/artifacts", "/runs"):
            assert up.api.get(path).status_code == 200, path
        assert [pid for pid in up.process.session_pids() if pid != parent and maps_torch(pid)], "the worker imports torch"
        assert not maps_torch(parent), "the process serving the pages and supervising the workers loaded torch"
        assert up.process.stop(signal.SIGINT, timeout=60) == 0


def test_ctrl_c_mid_run_prints_one_line_per_process_stopping(tmp_path):
    config = tiny_config(epochs=500, dataset_params={"dim": 8, "classes": 3, "train_size": 960, "val_size": 32, "test_size": 32})
    with Up(tmp_path / "home") as up:
        run = up.api.post("/runs", json={"config": config, "name": "interrupted by Ctrl-C"}).json()
        wait_until(lambda: up.api.get(f"/runs/{run['id']}").json()["progress"]["epoch"] >= 2, 120, "epoch 2", every=0.2)
        before = len(up.process.log())
        os.killpg(up.process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
        assert up.process.popen.wait(60) == 0
        lines = up.process.log()[before:].strip().splitlines()
        assert len(lines) == 2, "\n".join(lines)
        assert re.fullmatch(r"worker process cpu0 \(pid \d+\) stopped", lines[0])
        assert lines[1] == "stopped; runs in progress resume at the next start"
