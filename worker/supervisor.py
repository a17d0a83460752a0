"""The `miles worker` supervisor: one worker process per GPU (or per CPU slot), kept running and stopped together.

- Each process (`worker.process`) consumes one queue one run at a time; a GPU process sees
  only its own device (``CUDA_VISIBLE_DEVICES`` set to it, translated through the
  supervisor's own ``CUDA_VISIBLE_DEVICES`` when that is set), a CPU one sees none.
- A process that dies is restarted, after a pause that grows while it keeps dying.
- Lost runs (no heartbeat for MILES_HEARTBEAT_TIMEOUT) are swept at start and every
  MILES_SWEEP_INTERVAL seconds (`server.recovery.sweep`).
- SIGINT or SIGTERM: every process gets SIGTERM (Celery's warm shutdown: a running run
  stops before its next batch and goes back to the queue, to resume from its
  checkpoint), and is killed if it has not exited after the grace period. A second
  signal kills them at once (their runs are then recovered by the sweep). The processes
  also get SIGTERM if the supervisor itself is killed, so none is left behind.
- The processes run in a process group of their own, so that Ctrl-C in a terminal (a
  SIGINT to the whole foreground group) reaches the supervisor alone, which then stops
  each of them once and says so in one line per process. At log level warning or error
  (``miles up``), Celery's own console notices (its banner, "Warm shutdown") are left out.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

from server import recovery
from server.db import Database
from server.live import Publisher
from server.queue import CeleryDispatcher
from server.settings import Settings

log = logging.getLogger("miles.worker")

RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before restarting a process that keeps dying
STEADY_AFTER = 60.0  # a process that ran this long before dying is restarted at once


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # gpu0, gpu1, cpu0, ...
    queue: str
    devices: str  # CUDA_VISIBLE_DEVICES: one GPU (as the supervisor's own CUDA_VISIBLE_DEVICES names it), or "" for none


def visible_device(index: int, environ: Mapping[str, str] = os.environ) -> str:
    """What a child's ``CUDA_VISIBLE_DEVICES`` must hold for it to see this process's CUDA device ``index``.

    torch numbers only the devices this process sees (``--gpus`` is checked against
    ``torch.cuda.device_count()``), so when this process's own ``CUDA_VISIBLE_DEVICES`` is
    set, index i is its i-th entry (an index, a ``GPU-<uuid>`` or a MIG id); else i itself.
    """
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return str(index)
    entries = [entry.strip() for entry in listed.split(",") if entry.strip()]
    if index >= len(entries):
        raise ValueError(f"GPU {index} is not visible: CUDA_VISIBLE_DEVICES={listed!r} lists {len(entries)}")
    return entries[index]


def plan(gpus: list[int], cpu: bool, concurrency: int) -> list[ProcessSpec]:
    """``concurrency`` processes per GPU of ``gpus`` (queue gpu), and ``concurrency`` CPU ones with ``cpu``.

    ``gpus`` are indices as torch numbers them in this process (see `visible_device`)."""
    specs = [
        ProcessSpec(f"gpu{gpu}" + (f".{k}" if concurrency > 1 else ""), "gpu", visible_device(gpu))
        for gpu in gpus for k in range(concurrency)
    ]
    if cpu:
        specs += [ProcessSpec(f"cpu{k}", "cpu", "") for k in range(concurrency)]
    return specs


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    def __init__(
        self, settings: Settings, specs: list[ProcessSpec], *, log_level: str = "info", grace: float = 60.0,
        say: Callable[[str], None] = log.info,
    ) -> None:
        """``say`` gets one line per worker process that stops (the command line prints them)."""
        self.settings = settings
        self.children = [Child(spec) for spec in specs]
        self.log_level = log_level
        self.grace = grace
        self.say = say
        self.database = Database(settings.database_url)
        self.dispatcher = CeleryDispatcher(settings)
        self.publisher = Publisher(settings.redis_url)
        self._signals = 0  # SIGINT and SIGTERM received: the first stops gently, the second kills
        self._last_signal: int | None = None

    def run(self) -> int:
        """Start the processes and supervise them until SIGINT or SIGTERM; the exit status."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._sweep()
            for child in self.children:
                self._start(child)
            next_sweep = time.monotonic() + self.settings.sweep_interval
            while not self._signals:
                now = time.monotonic()
                for child in self.children:
                    self._watch(child, now)
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + self.settings.sweep_interval
                # Not an Event: setting one from the signal handler deadlocks when the signal lands
                # while this thread holds the Event's lock inside wait().
                time.sleep(0.2)
            self._stop()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.publisher.close()
            self.database.dispose()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only recorded: the main thread acts on it (`run`, `_stop`). Killing and waiting for the
        # processes here could deadlock on a lock the interrupted main thread holds (in Popen.poll).
        self._signals += 1
        self._last_signal = signum

    def _start(self, child: Child) -> None:
        env = os.environ | {"CUDA_VISIBLE_DEVICES": child.spec.devices}
        command = [
            sys.executable, "-m", "worker.process", "--queue", child.spec.queue, "--name", child.spec.name,
            "--parent", str(os.getpid()), "--log-level", self.log_level,
        ]
        # Celery writes its banner and shutdown notices to stdout, and its logs to stderr.
        quiet = self.log_level in ("warning", "error")
        child.process = subprocess.Popen(
            command, env=env, process_group=0, stdout=subprocess.DEVNULL if quiet else None,
        )
        child.started = time.monotonic()
        log.info("started worker process %s (pid %d) on queue %s", child.spec.name, child.process.pid, child.spec.queue)

    def _watch(self, child: Child, now: float) -> None:
        if child.process is not None:
            code = child.process.poll()
            if code is None:
                return
            child.failures = 1 if now - child.started >= STEADY_AFTER else child.failures + 1
            pause = 0.0 if child.failures == 1 else RESTART_PAUSES[min(child.failures - 2, len(RESTART_PAUSES) - 1)]
            log.warning("worker process %s exited with status %s; restarting in %.0f s", child.spec.name, code, pause)
            child.process = None
            child.restart_at = now + pause
        if now >= child.restart_at and not self._signals:
            self._start(child)

    def _sweep(self) -> None:
        try:
            recovery.sweep(self.settings, self.database, self.dispatcher, self.publisher)
        except Exception as error:  # a database blip must not stop the workers; the next sweep retries
            log.warning("sweep for lost runs failed: %s", error)

    def _running(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is None]

    def _stop(self) -> None:
        running = self._running()
        log.info("stopping %d worker processes (running runs go back to the queue)", len(running))
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while running and time.monotonic() < deadline and self._signals < 2:
            time.sleep(0.1)
            still = self._running()
            for child in running:
                if child not in still:
                    assert child.process is not None
                    self.say(f"worker process {child.spec.name} (pid {child.process.pid}) stopped")
            running = still
        if running:
            if self._signals >= 2 and self._last_signal is not None:
                self._kill(running, f"second {signal.Signals(self._last_signal).name}")
            else:
                self._kill(running, f"grace period of {self.grace:g} s over")

    def _kill(self, children: list[Child], why: str) -> None:
        for child in children:
            assert child.process is not None
            log.warning("%s: killing worker process %s (pid %d)", why, child.spec.name, child.process.pid)
            child.process.kill()
        for child in children:
            assert child.process is not None
            child.process.wait()
