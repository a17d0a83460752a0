"""Trainer speed: what MILES costs per epoch, and what our loop costs over a bare PyTorch loop.

    python bench/trainer.py [--repeats 5] [--datasets mfeat,avdigits] [--parts methods,loop,sampling] [--clock cpu]

Prints JSON. Both ratios are measured side by side in one process, the two
contestants alternating epoch by epoch, and reported as the median of the
per-round ratios, so that drift in the machine's speed cancels out. On a machine
other jobs keep busy, ``--clock cpu`` times each epoch's CPU time with one torch
thread instead of its wall time.

- ``miles_over_joint_epoch_time``: a full epoch (training pass, validation,
  utilization, the strategy's end-of-epoch hook) of ``miles`` over ``joint``
  on the same data and model. MILES adds no forward pass of its own, so this
  should be about 1.
- ``methods.over_joint_epoch_time``: the same ratio for every method of the catalogue that trains
  several modalities (MSES, MSLR, ...; the MSLR methods with the global rate for each modality), and
  ``miles_train_split``: MILES with its utilization measured on the training split, which evaluates
  that split after every epoch; ``methods.epoch_seconds`` the medians behind them. G-Blend's trial
  trainings run before an epoch, not in it: ``methods.gblend_trials`` times one estimate (its two
  trials) apart, in seconds and in joint epochs.
- ``loop_over_raw_throughput``: training samples per second of our training
  pass (metrics accumulated on the device, cancel check, strategy hooks) over
  a minimal hand-written loop (forward, the same loss, backward, step) on the
  same model and the same batches.

- ``system_sampling_on_over_off_epoch_time``: a full epoch while the worker's monitor
  thread samples the system (psutil, NVML on a GPU, the throughput counter) and writes
  the ``sys/`` points into a SQLite database every MILES_SYSTEM_INTERVAL (10 s), over
  the same epoch without it; ``system_sampling.stress`` the same every 0.1 s, and
  ``cpu_ms_per_sample`` the CPU time of one sample taken and written. Should be about 1.

``avdigits`` needs MILES_DATA_DIR (see trainer/datasets/avdigits.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file (bench/trainer.py) would shadow the trainer package: drop bench/ from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from trainer.config import TrainConfig  # noqa: E402
from trainer.datasets import load_dataset  # noqa: E402
from trainer.loop import Training  # noqa: E402
from trainer.methods import METHODS  # noqa: E402

# Wall time by default; ``--clock cpu`` times the process's CPU (one torch thread), which other processes
# on a shared machine barely disturb: what an epoch costs, not how long it waited for a core.
clock = time.perf_counter


def one_epoch(training: Training) -> float:
    """Seconds of one full epoch as the loop runs it (without reporting or checkpoints): the training pass,
    validation, the utilization on the strategy's split, the end-of-epoch hook and the method's metrics.
    The epoch number given to the hook stays 0, so that MSES never freezes a part here (a frozen part
    would make its epochs cheaper, not dearer) and MSLR-Dynamic rescales every epoch."""
    from trainer.strategies.base import EpochResult

    started = clock()
    train = training.train_epoch()
    val = training.evaluate(training.val_data)
    u, delta = training._utilization(train, val)
    training.strategy.on_epoch_end(EpochResult(0, train, val, u, delta))
    training.strategy.epoch_metrics()
    return clock() - started


def raw_pass(training: Training) -> float:
    """Seconds of a bare training pass over the same batches with the same model and loss."""
    model, optimizer, criterion = training.model, training.optimizer, training.criterion
    started = clock()
    for inputs, labels in training.train_data.shuffled(training.config.batch_size, training.shuffle):
        outputs = model(inputs)
        loss = criterion(outputs.fused, labels) + sum(criterion(h, labels) for h in outputs.heads.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return clock() - started


def loop_pass(training: Training) -> float:
    started = clock()
    training.train_epoch()
    return clock() - started


def alternate(first, second, rounds: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for index in range(rounds):
        # swap the order every round so neither always runs on a warmer cache
        if index % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


DEFAULT_INTERVAL = 10.0  # seconds: MILES_SYSTEM_INTERVAL's default
STRESS_INTERVAL = 0.1  # 100 times as often, so that the cost would show


def epochs(training: Training, count: int) -> float:
    """Seconds of ``count`` full epochs."""
    return sum(one_epoch(training) for _ in range(count))


class SampledRun:
    """A run in a SQLite database of its own, claimed by a worker whose monitor samples the system for it."""

    def __init__(self, folder: Path, training: Training) -> None:
        from server import migrate
        from server.db import Database
        from server.store import runs
        from server.store.workers import Registration
        from trainer.system import machine_facts

        self.training = training
        self.database = Database(f"sqlite:///{folder / 'bench.db'}")
        migrate.upgrade(self.database.engine)
        with self.database.transaction() as session:
            self.run_id = runs.create(session=session, config=training.config, execute=True).id
            runs.claim(session=session, run_id=self.run_id, worker="bench:1")
        with self.database.transaction(write=False) as session:
            self.started = runs.get(session=session, run_id=self.run_id).started_at
        facts = machine_facts("cpu").as_dict()
        self.registration = Registration(
            name="bench:1", host=facts["host"], pid=os.getpid(), process="cpu0", queue="cpu", facts=facts,
        )

    def monitor(self, interval: float) -> Any:
        from server.live import Publisher
        from trainer.system import SystemProbe
        from worker.monitor import WorkerMonitor

        return WorkerMonitor(database=self.database, publisher=Publisher(None), registration=self.registration,
                             probe=SystemProbe(), timeout=60, interval=interval)

    def epochs(self, count: int, interval: float) -> float:
        """Seconds of ``count`` epochs while the monitor samples every ``interval`` s (registering and leaving the
        registry happen outside the timed part)."""
        with self.monitor(interval) as monitor:
            monitor.watch(self.run_id, self.started)
            monitor.count_samples(lambda: self.training.samples_seen)
            seconds = epochs(self.training, count)
            monitor.unwatch()
        return seconds

    def stored(self) -> int:
        from sqlalchemy import func, select

        from server.models import Metric

        with self.database.transaction(write=False) as session:
            return session.scalar(select(func.count(func.distinct(Metric.step))).where(Metric.run_id == self.run_id)) or 0

    def cpu_per_sample(self, samples: int = 50) -> float:
        """CPU seconds of one sample taken and written, as the monitor's thread does it (psutil, one transaction)."""
        monitor = self.monitor(DEFAULT_INTERVAL)
        from worker.monitor import Watched

        watched = Watched(self.run_id, self.started)
        started = time.thread_time()
        for _ in range(samples):
            monitor._record(watched, monitor.probe.sample())  # what the thread does each interval
        return (time.thread_time() - started) / samples


def bench_sampling(build: Callable[[str], Training], repeats: int) -> dict[str, object]:
    """Epoch time with the monitor sampling, over without, at the default interval and at 0.1 s. A round lasts
    at least one interval (several short epochs), so that every sampled round holds samples."""
    plain, watched = build("joint"), build("joint")
    epoch_seconds = one_epoch(plain)
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="miles-bench-") as folder:
        run = SampledRun(Path(folder), watched)
        for label, interval in (("default", DEFAULT_INTERVAL), ("stress", STRESS_INTERVAL)):
            count = max(1, math.ceil(max(1.0, interval) / epoch_seconds))
            before = run.stored()
            off_s, on_s = alternate(
                lambda count=count: epochs(plain, count), lambda count=count, interval=interval: run.epochs(count, interval),
                repeats,
            )
            results[label] = {
                "interval_seconds": interval, "epochs_per_round": count, "samples_stored": run.stored() - before,
                "on_over_off_epoch_time": round(statistics.median(n / f for n, f in zip(on_s, off_s, strict=True)), 4),
                "epoch_seconds": {"off": round(statistics.median(off_s) / count, 4), "on": round(statistics.median(on_s) / count, 4)},
            }
        cpu = run.cpu_per_sample()
    return {
        "system_sampling_on_over_off_epoch_time": results["default"]["on_over_off_epoch_time"],
        "system_sampling": {**results, "cpu_ms_per_sample": round(cpu * 1000, 3),
                            "cpu_share_at_default_interval": round(cpu / DEFAULT_INTERVAL, 6)},
    }


# Beside every method of the catalogue that trains several modalities: MILES measuring its utilization on the
# training split, which evaluates that split after each epoch (MILES.md section 8).
VARIANTS = {"miles_train_split": ("miles", {"utilization_split": "train"})}


def bench_methods(build: Callable[..., Training], repeats: int) -> dict[str, dict[str, float]]:
    """Each method's full epoch over joint's, alternating with a joint run of the same data and model."""
    contestants = {
        name: (name, {}) for name, spec in METHODS.items() if not spec.single_modality and name != "joint"
    } | VARIANTS
    joint = build("joint")
    one_epoch(joint)  # warm-up
    ratios, seconds = {}, {}
    for label, (method, params) in contestants.items():
        other = build(method, params)
        one_epoch(other)
        joint_s, other_s = alternate(lambda: one_epoch(joint), lambda other=other: one_epoch(other), repeats)
        ratios[label] = round(statistics.median(o / j for o, j in zip(other_s, joint_s, strict=True)), 4)
        seconds[label] = round(statistics.median(other_s), 4)
        seconds.setdefault("joint", round(statistics.median(joint_s), 4))
    # G-Blend's trial trainings run before an epoch, not in it: one estimate (its two trials), timed apart.
    gblend = build("gblend")
    started = clock()
    gblend.strategy.before_epoch(1, gblend.trials)
    trial_seconds = clock() - started
    trials = {"seconds": round(trial_seconds, 3), "joint_epochs": round(trial_seconds / seconds["joint"], 2),
              "trial_epochs": gblend.strategy.params.super_epoch}
    return {"over_joint_epoch_time": ratios, "epoch_seconds": seconds, "gblend_trials": trials}


PARTS = ("methods", "loop", "sampling")


def bench_dataset(name: str, repeats: int, parts: tuple[str, ...] = PARTS) -> dict[str, object]:
    base = TrainConfig(dataset=name, epochs=repeats, batch_size=64, lr=1e-3, device="cpu", seed=0)
    data = load_dataset(base)

    def build(method: str, params: dict[str, Any] | None = None) -> Training:
        fields = METHODS[method].params.model_fields
        # The MSLR methods at the global rate for every modality: the same work per epoch as any rates.
        defaults = {"lrs": {m: base.lr for m in base.modalities or ()}} if "lrs" in fields else {}
        config = TrainConfig.model_validate(base.model_dump() | {"method": method, "params": params or defaults})
        return Training(config, dataset=data)

    results: dict[str, object] = {"rounds": repeats}
    if "methods" in parts:
        methods = bench_methods(build, repeats)
        results |= {"miles_over_joint_epoch_time": methods["over_joint_epoch_time"]["miles"], "methods": methods}
    if "loop" in parts:
        ours, raw = build("joint_aux"), build("joint_aux")
        loop_pass(ours), raw_pass(raw)
        ours_s, raw_s = alternate(lambda: loop_pass(ours), lambda: raw_pass(raw), repeats)
        samples = ours.train_data.size
        results |= {
            "loop_over_raw_throughput": round(statistics.median(r / o for o, r in zip(ours_s, raw_s, strict=True)), 4),
            "train_samples_per_second": {
                "loop": round(samples / statistics.median(ours_s), 1), "raw": round(samples / statistics.median(raw_s), 1)
            },
            "train_samples": samples,
        }
    if "sampling" in parts:
        results |= bench_sampling(build, repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--datasets", default="mfeat,avdigits")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"Comma-separated, of {', '.join(PARTS)}.")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time with one torch thread (for a loaded machine).")
    args = parser.parse_args()
    if args.clock == "cpu":
        global clock
        clock = time.process_time
        torch.set_num_threads(1)
    parts = tuple(args.parts.split(","))
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(PARTS)}")
    results: dict[str, object] = {
        "clock": args.clock,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
    }
    for name in args.datasets.split(","):
        results[name] = bench_dataset(name, args.repeats, parts)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
