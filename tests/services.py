"""Real services for tests: Redis, ``miles server`` and ``miles worker`` as subprocesses, and an SSE reader.

Every process runs in its own session, writes its output to a log file, and can be
stopped (a signal, then a wait), killed (SIGKILL to its whole process group: a lost
machine) and started again. The fixtures in ``tests/conftest.py`` hand them out and tear
them down; a failing test prints the tail of every log. Typical use::

    def test_a_run_completes(miles_stack, postgres_database, redis_process):
        stack = miles_stack(database_url=postgres_database, redis=redis_process)
        stack.start("--cpu")                      # the server and one worker, started together
        run = stack.submit(tiny_config())
        assert stack.wait_for_status(run["id"], "succeeded")["status"] == "succeeded"
        for message in stack.stream(run["id"]):   # an SseMessage per server-sent event
            ...

Local mode (SQLite, no Redis) is ``miles_stack(database_url=sqlite_database, redis=None)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port, need

MILES = str(Path(sys.executable).with_name("miles"))  # the console script of this environment


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A TrainConfig that trains in a fraction of a second per epoch on one CPU core."""
    config: dict[str, Any] = {
        "dataset": "synthetic",
        "dataset_params": {"dim": 8, "classes": 3, "train_size": 96, "val_size": 32, "test_size": 32},
        "model": {"embed_dim": 8, "hidden_dim": 16},
        "method": "miles",
        "epochs": 4,
        "batch_size": 32,
        "device": "cpu",
    }
    return config | overrides


class Process:
    """A command run in its own session with its output in ``log_path``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, wait: bool = True) -> Process:
        """Start the process; with ``wait``, return once it is ready (else call `wait_ready`)."""
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} start: {' '.join(self.command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Block until the service answers; subclasses say how."""

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to the process and wait for it to exit; kill its group if it does not."""
        if not self.alive:
            return None if self.popen is None else self.popen.returncode
        assert self.popen is not None
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout:g} s of {sig.name}") from None

    def kill(self) -> None:
        """SIGKILL to every process of its session at once, as when the machine is lost: its process
        group first (so a supervisor starts nothing more), then the rest (worker processes run in
        process groups of their own)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.popen.pid, signal.SIGKILL)
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait()

    def session_pids(self) -> list[int]:
        """Every process still alive in this process's session (its children included, even orphaned)."""
        if self.popen is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.popen.pid and "Z" not in (entry / "stat").read_text().split()[2]:
                        found.append(int(entry.name))
                except (ProcessLookupError, PermissionError, FileNotFoundError):
                    continue
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float, count: int = 1) -> None:
        def seen() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
            return self.log().count(text) >= count

        wait_until(seen, timeout, f"{text!r} in the log of {self.name}", every=0.1)


class RedisProcess(Process):
    """The suite's own ``redis-server`` on ``port``: nothing persisted, so a restart starts empty."""

    def __init__(self, port: int, log_dir: Path) -> None:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        super().__init__("redis", command, dict(os.environ), log_dir / f"redis-{port}.log")
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def wait_ready(self) -> None:
        import redis

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, f"redis on port {self.port}")


@contextmanager
def running_redis(log_dir: Path) -> Iterator[RedisProcess]:
    """A `RedisProcess` on a free port, started and ready; killed on the way out, whatever happened.

    Without ``redis-server`` this skips (or fails under CI), before starting anything.
    """
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    redis = RedisProcess(free_port(), log_dir)
    try:
        redis.start()
        yield redis
    finally:
        redis.kill()


class ServerProcess(Process):
    """``miles server`` on ``port`` (or another ``command`` serving there); ready when ``/api/v1/health`` answers."""

    def __init__(self, port: int, env: dict[str, str], log_dir: Path, command: list[str] | None = None) -> None:
        super().__init__("server", command or [MILES, "server", "--port", str(port)], env, log_dir / "server.log")
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            if not self.alive:
                raise AssertionError(f"miles server exited:\n{self.log()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, "miles server to answer", every=0.1)


class WorkerProcess(Process):
    """``miles worker <args>`` (a supervisor and its worker processes); ready when every process consumes."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, processes: int = 1, command: list[str] | None = None,
    ) -> None:
        super().__init__("worker", command or [MILES, "worker", *args], env, log_path)
        self.processes = processes
        self._ready_before = 0

    def start(self, wait: bool = True) -> Process:
        self._ready_before = self.log().count("ready: consuming")
        return super().start(wait)

    def wait_ready(self) -> None:
        self.wait_for_log("ready: consuming", timeout=60, count=self._ready_before + self.processes)


@dataclass
class SseMessage:
    event: str
    data: Any
    id: str | None
    retry: int | None
    received: float  # time.time() when it arrived


def training_epochs(messages: list[SseMessage]) -> list[int]:
    """The steps of the epochs whose training loss the stream carried, in order of arrival."""
    return [m.data["step"] for m in messages if m.event == "epoch" and "loss/train" in m.data["metrics"]]


def read_sse(lines: Iterator[str]) -> Iterator[SseMessage]:
    """Parse server-sent events (comments skipped) from a response's lines."""
    event, data, message_id, retry = "message", [], None, None
    for line in lines:
        if line == "":
            if data:
                yield SseMessage(event, json.loads("\n".join(data)), message_id, retry, time.time())
            event, data, message_id, retry = "message", [], None, None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                message_id = value
            elif name == "retry":
                retry = int(value)


@dataclass
class MilesStack:
    """A database, an optional Redis, and the ``miles`` processes started against them."""

    home: Path
    database_url: str
    redis: RedisProcess | None
    settings: dict[str, str] = field(default_factory=dict)
    server: ServerProcess | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILES_")}
        env |= {"MILES_HOME": str(self.home), "MILES_DATABASE_URL": self.database_url, "MILES_AUTH": "off",
                "PYTHONUNBUFFERED": "1"}
        if self.redis is not None:
            env["MILES_REDIS_URL"] = self.redis.url
        return env | {f"MILES_{k.upper()}": str(v) for k, v in self.settings.items()}

    def start_server(self, *args: str, port: int | None = None, wait: bool = True) -> ServerProcess:
        """``miles server --port PORT <args>`` (e.g. ``--log-level warning``)."""
        port = port or free_port()
        self.server = ServerProcess(port, self.env(), self.home, command=[MILES, "server", "--port", str(port), *args])
        self.server.start(wait)
        return self.server

    def start_worker(self, *args: str, processes: int = 1, wait: bool = True) -> WorkerProcess:
        """``miles worker <args>`` (e.g. ``--cpu``); ``processes``: how many worker processes it runs."""
        worker = WorkerProcess(list(args), self.env(), self.home / f"worker-{len(self.workers)}.log", processes)
        self.workers.append(worker)
        worker.start(wait)
        return worker

    def start(self, *worker_args: str) -> tuple[ServerProcess, WorkerProcess]:
        """The server and one ``miles worker <worker_args>`` started side by side; returns once both are ready."""
        server = self.start_server(wait=False)
        worker = self.start_worker(*worker_args, wait=False)
        server.wait_ready()
        worker.wait_ready()
        return server, worker

    @property
    def api(self) -> httpx.Client:
        assert self.server is not None, "start_server() first"
        return httpx.Client(base_url=f"{self.server.url}/api/v1", timeout=10)

    def submit(self, config: dict[str, Any], expect: int = 201, **fields: Any) -> dict[str, Any]:
        with self.api as api:
            response = api.post("/runs", json={"config": config, **fields})
        assert response.status_code == expect, response.text
        return response.json()

    def run(self, run_id: int) -> dict[str, Any]:
        with self.api as api:
            return api.get(f"/runs/{run_id}").raise_for_status().json()

    def wait_for_status(self, run_id: int, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] in statuses else None

        return wait_until(reached, timeout, f"run {run_id} to become {' or '.join(statuses)}", every=0.05)

    def stream(
        self, run_id: int, *, headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
        read_timeout: float = 30.0,
    ) -> Iterator[SseMessage]:
        """The run's SSE messages as they arrive; closing the iterator closes the connection."""
        assert self.server is not None, "start_server() first"
        timeout = httpx.Timeout(5.0, read=read_timeout)
        with httpx.stream(
            "GET", f"{self.server.url}/api/v1/runs/{run_id}/stream", headers=headers, params=params, timeout=timeout,
        ) as response:
            assert response.status_code == 200, response.read().decode()
            yield from read_sse(response.iter_lines())

    @contextmanager
    def serving(self) -> Iterator[MilesStack]:
        """The server and one ``--cpu`` worker, started together; their logs printed if anything fails; closed after."""
        try:
            self.start("--cpu")
            yield self
        except BaseException:
            for process in self.processes():
                print(f"\n===== {process.name} log =====\n{process.log()[-6000:]}")
            raise
        finally:
            self.close()

    def processes(self) -> list[Process]:
        return [p for p in (self.server, *self.workers) if p is not None]

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=60)
        if self.server is not None:
            self.server.stop(signal.SIGINT)
