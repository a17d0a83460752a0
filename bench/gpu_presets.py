"""Each preset's model trained by the real training loop on random data of its dataset's shapes.

    python bench/gpu_presets.py                       # every preset on cuda, mixed precision and float32
    python bench/gpu_presets.py --presets cremad --steps 400 --precision amp
    python bench/gpu_presets.py --device cpu --presets smnist --steps 4 --batch-size 2   # the CPU path

For each preset: the paper's encoders at the paper's input sizes (224 x 224 for CREMA-D
and MM-IMDb's posters, 512 BERT tokens), the preset's batch size, Adam and MILES, for
``--steps`` optimizer steps (split into epochs of ``--steps-per-epoch``). The first
epoch (cuDNN's autotuning, allocator growth) is left out of the throughput; the rest
give training samples per second (the median over epochs of the epoch's training
samples over its time, which also holds one validation batch of the same size) and
the peak GPU memory. With ``--precision both`` each preset runs in mixed precision
and in float32 in the same process, and the ratio of their throughputs is printed
beside them. No weights are downloaded: BERT and the ResNets start from random
weights, which costs the same time as pretrained ones. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

# Run as a script, bench/ comes first on the path, where bench/trainer.py would shadow the trainer package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainer.config import TrainConfig  # noqa: E402
from trainer.datasets import DATASETS, Dataset, DatasetInfo, Split  # noqa: E402
from trainer.loop import Training  # noqa: E402
from trainer.presets import PRESETS  # noqa: E402
from trainer.reporting import MemoryReporter  # noqa: E402

LUMA_CLASSES = 22  # the paper's; the catalogue's LUMA knows its classes only once prepared


def random_split(info: DatasetInfo, size: int, rng: np.random.Generator) -> Split:
    inputs = {}
    for name, spec in info.modalities.items():
        if spec.kind == "text":
            inputs[name] = rng.integers(1, spec.vocab_size or 30522, (size, *spec.shape), dtype=np.int64)
        else:
            inputs[name] = rng.standard_normal((size, *spec.shape), dtype=np.float32)
    classes = len(info.classes)
    labels = (rng.random((size, classes)) < 0.2).astype(np.float32) if info.task == "multilabel" else rng.integers(0, classes, size)
    return Split(inputs, labels)


def random_dataset(preset: str, train: int, evaluate: int) -> Dataset:
    info = DATASETS[PRESETS[preset].config["dataset"]].info
    if not info.classes:
        info = DatasetInfo(**{**info.__dict__, "classes": tuple(f"class {i}" for i in range(LUMA_CLASSES))})
    rng = np.random.default_rng(0)
    return Dataset(info, random_split(info, train, rng), random_split(info, evaluate, rng), random_split(info, evaluate, rng))


def measure(preset: str, *, device: str, amp: bool, steps: int, steps_per_epoch: int, batch_size: int | None) -> dict:
    spec = {"preset": preset, "data_path": "random", "device": device, "params": {"tau": 0.2, "mu": 0.5},
            "performance": {"mixed_precision": amp, "channels_last": amp},
            "model": {"pretrained": {m: "" for m in PRESETS[preset].config["model"].get("pretrained", {})}}}
    if batch_size:
        spec["batch_size"] = batch_size
    base = TrainConfig.model_validate(spec)
    per_epoch = min(steps, steps_per_epoch)
    epochs = max(2, -(-steps // per_epoch))
    config = base.model_copy(update={"epochs": epochs})
    data = random_dataset(preset, per_epoch * config.batch_size, config.batch_size)
    if torch.cuda.is_available() and config.device != "cpu":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    reporter = MemoryReporter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random BERT weights: the point here
        training = Training(config, reporter, dataset=data)
    started = time.perf_counter()
    training.run()
    wall = time.perf_counter() - started
    epoch_seconds = [metrics["time/epoch"] for _, metrics in reporter.epochs if "time/epoch" in metrics]
    evaluation = data.val.labels.shape[0]
    steady = epoch_seconds[1:] or epoch_seconds
    result = {
        "preset": preset, "device": str(training.device), "precision": training.acceleration.describe(),
        "batch_size": config.batch_size, "steps": epochs * per_epoch, "epochs": epochs,
        "samples_per_s": round(per_epoch * config.batch_size / statistics.median(steady), 1),
        "epoch_seconds": [round(s, 3) for s in epoch_seconds], "wall_seconds": round(wall, 1),
        "validation_samples_per_epoch": evaluation,
        "parameters": sum(p.numel() for p in training.model.parameters()),
    }
    if training.device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(training.device) / 2**30, 2)
        result["gpu"] = torch.cuda.get_device_name(training.device)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS), help="Comma-separated presets.")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300, help="Optimizer steps per preset and precision.")
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--batch-size", type=int, help="Default: each preset's.")
    parser.add_argument("--precision", choices=["both", "amp", "fp32"], default="both")
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    results = []
    for preset in args.presets.split(","):
        runs = {}
        for precision in (["amp", "fp32"] if args.precision == "both" else [args.precision]):
            runs[precision] = measure(preset, device=args.device, amp=precision == "amp", steps=args.steps,
                                      steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size)
            print(f"{preset} {precision}: {runs[precision]['samples_per_s']} samples/s", file=sys.stderr, flush=True)
        entry: dict = {"preset": preset, **{precision: run for precision, run in runs.items()}}
        if len(runs) == 2:
            entry["amp_over_fp32_throughput"] = round(runs["amp"]["samples_per_s"] / runs["fp32"]["samples_per_s"], 3)
        results.append(entry)
    print(json.dumps({"benchmark": "gpu_presets", "torch": torch.__version__, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
