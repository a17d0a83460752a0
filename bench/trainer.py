"""Trainer speed: what MILES costs per epoch, and what our loop costs over a bare PyTorch loop.

    python bench/trainer.py [--repeats 5] [--datasets mfeat,avdigits]

Prints JSON. Both ratios are measured side by side in one process, the two
contestants alternating epoch by epoch, and reported as the median of the
per-round ratios, so that drift in the machine's speed cancels out.

- ``miles_over_joint_epoch_time``: a full epoch (training pass, validation,
  utilization, the strategy's end-of-epoch hook) of ``miles`` over ``joint``
  on the same data and model. MILES adds no forward pass of its own, so this
  should be about 1.
- ``loop_over_raw_throughput``: training samples per second of our training
  pass (metrics accumulated on the device, cancel check, strategy hooks) over
  a minimal hand-written loop (forward, the same loss, backward, step) on the
  same model and the same batches.

``avdigits`` needs MILES_DATA_DIR (see trainer/datasets/avdigits.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this file (bench/trainer.py) would shadow the trainer package: drop bench/ from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from trainer.config import TrainConfig  # noqa: E402
from trainer.datasets import load_dataset  # noqa: E402
from trainer.loop import Training  # noqa: E402


def one_epoch(training: Training) -> float:
    """Seconds of one full epoch as the loop runs it (without reporting or checkpoints)."""
    from trainer.miles import conditional_utilization, utilization_gap
    from trainer.strategies.base import EpochResult

    started = time.perf_counter()
    train = training.train_epoch()
    val = training.evaluate(training.val_data)
    u = conditional_utilization(val.metric["fused"], val.heads(training.modalities))
    training.strategy.on_epoch_end(EpochResult(0, train, val, u, utilization_gap(u)))
    return time.perf_counter() - started


def raw_pass(training: Training) -> float:
    """Seconds of a bare training pass over the same batches with the same model and loss."""
    model, optimizer, criterion = training.model, training.optimizer, training.criterion
    started = time.perf_counter()
    for inputs, labels in training.train_data.shuffled(training.config.batch_size, training.shuffle):
        outputs = model(inputs)
        loss = criterion(outputs.fused, labels) + sum(criterion(h, labels) for h in outputs.heads.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def loop_pass(training: Training) -> float:
    started = time.perf_counter()
    training.train_epoch()
    return time.perf_counter() - started


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


def bench_dataset(name: str, repeats: int) -> dict[str, object]:
    base = TrainConfig(dataset=name, epochs=repeats, batch_size=64, lr=1e-3, device="cpu", seed=0)
    data = load_dataset(base)

    def build(method: str) -> Training:
        config = TrainConfig.model_validate(base.model_dump() | {"method": method, "params": {}})
        return Training(config, dataset=data)

    joint, miles = build("joint"), build("miles")
    one_epoch(joint), one_epoch(miles)  # warm-up
    joint_s, miles_s = alternate(lambda: one_epoch(joint), lambda: one_epoch(miles), repeats)
    ours, raw = build("joint_aux"), build("joint_aux")
    loop_pass(ours), raw_pass(raw)
    ours_s, raw_s = alternate(lambda: loop_pass(ours), lambda: raw_pass(raw), repeats)
    samples = ours.train_data.size
    return {
        "miles_over_joint_epoch_time": round(statistics.median(m / j for m, j in zip(miles_s, joint_s, strict=True)), 4),
        "loop_over_raw_throughput": round(statistics.median(r / o for o, r in zip(ours_s, raw_s, strict=True)), 4),
        "epoch_seconds": {"joint": round(statistics.median(joint_s), 4), "miles": round(statistics.median(miles_s), 4)},
        "train_samples_per_second": {
            "loop": round(samples / statistics.median(ours_s), 1), "raw": round(samples / statistics.median(raw_s), 1)
        },
        "train_samples": samples,
        "rounds": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--datasets", default="mfeat,avdigits")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
    }
    for name in args.datasets.split(","):
        results[name] = bench_dataset(name, args.repeats)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
