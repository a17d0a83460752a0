"""How long the `miles` command line takes to answer, beside what it must not wait for.

    python bench/cli.py            # --repeats 9

Each round starts, in a fresh interpreter and in an order rotated every round: the bare
interpreter (``python -c pass``), ``miles --help``, ``miles train --help``, and ``import
torch`` (what every command paid before the commands were loaded lazily). Prints JSON: the
nearest-rank percentiles of each, and the ratios of the medians to the bare interpreter and
to the torch import.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stats import percentiles  # noqa: E402

HELP = "from server.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass"
CONTESTANTS = {
    "python": "pass",
    "miles --help": HELP.format(args=["--help"]),
    "miles train --help": HELP.format(args=["train", "--help"]),
    "import torch": "import torch",
}


def seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    names = list(CONTESTANTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(2):  # warm the file cache
        for code in CONTESTANTS.values():
            seconds(code)
    for round_ in range(args.repeats):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            times[name].append(seconds(CONTESTANTS[name]))
    median = {name: statistics.median(samples) for name, samples in times.items()}
    print(json.dumps({
        "seconds": {name: percentiles(samples, digits=3) for name, samples in times.items()},
        "help_over_python": round(median["miles --help"] / median["python"], 2),
        "help_over_torch_import": round(median["miles --help"] / median["import torch"], 3),
        "train_help_over_torch_import": round(median["miles train --help"] / median["import torch"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
