"""Produce docs/results.md: joint, joint_aux and MILES compared over seeds, and when MILES helps.

    MILES_DATA_DIR=/path/to/data python scripts/results.py [--workers 2] [--studies main,...]

Every run's per-epoch metrics and summary are appended to
``docs/results/runs.jsonl.gz`` as soon as it finishes; a run already there is
not trained again, so the script can be stopped and restarted. Then the
tables (mean and sample standard deviation over seeds of the test metrics at
the best validation epoch), the paired differences and the figure are
written. Nothing is selected on the test split: every number shown for a
setting is that setting's own, and settings are compared on validation and
test side by side.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"
RUNS = OUT / "runs.jsonl.gz"  # gzip members appended run by run
SEEDS = (0, 1, 2, 3, 4)
# The avdigits sweeps cost a CNN pair per run: three seeds there, five everywhere else.
SWEEP_SEEDS = {"avdigits": (0, 1, 2)}
METHODS = ("joint", "joint_aux", "miles")
# Each dataset's default pair as (dominant, weak), for when no joint run of the pair exists.
PAIRS = {"mfeat": ("pix", "fou"), "avdigits": ("image", "audio")}
BASE = {
    "mfeat": {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 30, "batch_size": 64, "lr": 1e-3},
    "avdigits": {"dataset": "avdigits", "modalities": ["audio", "image"], "epochs": 15, "batch_size": 64, "lr": 1e-3},
}


@dataclass(frozen=True)
class Setting:
    """One cell of a table: a spec without its seed."""

    study: str
    label: str
    spec: dict

    @property
    def seeds(self) -> tuple[int, ...]:
        return SEEDS if self.study == "main" else SWEEP_SEEDS.get(self.spec["dataset"], SEEDS)

    def runs(self) -> list[dict]:
        return [self.spec | {"seed": seed, "device": "cpu"} for seed in self.seeds]


def key_of(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


# Fusions of the main table. avdigits' summation is in its `miles compare` table (docs/results/compare/
# avdigits: three seeds, every method), trained with today's sum (one projection per modality); the runs
# of the former sum were dropped from the cache rather than trained again at five seeds.
MAIN_FUSIONS = {"mfeat": ("concat", "sum"), "avdigits": ("concat",)}


def main_study() -> list[Setting]:
    return [
        Setting("main", f"{dataset}/{fusion}/{method}", BASE[dataset] | {"fusion": fusion, "method": method})
        for dataset, fusions in MAIN_FUSIONS.items()
        for fusion in fusions
        for method in METHODS
    ]


def sweep(study: str, dataset: str, field: str, values: Iterable, methods=("joint_aux", "miles"), **extra) -> list[Setting]:
    settings = []
    for value in values:
        for method in methods:
            spec = BASE[dataset] | {"fusion": "concat", "method": method} | extra
            if field.startswith("params."):
                if method != "miles":
                    continue
                spec["params"] = spec.get("params", {}) | {field.split(".", 1)[1]: value}
            else:
                spec[field] = value
            settings.append(Setting(study, f"{dataset}/{field}={value}/{method}", spec))
    return settings


def pair_study() -> list[Setting]:
    pairs = [("pix", "fou"), ("fac", "zer"), ("pix", "zer"), ("fac", "mor"), ("kar", "fou"), ("fou", "zer")]
    return [
        Setting("pairs", f"mfeat/{a}+{b}/{method}", BASE["mfeat"] | {"modalities": [a, b], "method": method})
        for a, b in pairs
        for method in METHODS
    ]


STUDIES = {
    "main": main_study,
    "pairs": pair_study,
    "mfeat_tau": lambda: sweep("mfeat_tau", "mfeat", "params.tau", (0.0, 0.05, 0.1, 0.2, 0.3)),
    "mfeat_mu": lambda: sweep("mfeat_mu", "mfeat", "params.mu", (0.1, 0.25, 0.5, 0.75, 1.0)),
    "mfeat_lr": lambda: sweep("mfeat_lr", "mfeat", "lr", (3e-4, 1e-3, 3e-3), methods=METHODS),
    "mfeat_epochs": lambda: sweep("mfeat_epochs", "mfeat", "epochs", (10, 30, 60), methods=METHODS),
    "mfeat_split": lambda: sweep("mfeat_split", "mfeat", "params.utilization_split", ("val", "train", "train_running")),
    "avdigits_tau": lambda: sweep("avdigits_tau", "avdigits", "params.tau", (0.05, 0.1, 0.4)),
    "avdigits_mu": lambda: sweep("avdigits_mu", "avdigits", "params.mu", (0.1, 0.25)),
    "avdigits_lr": lambda: sweep("avdigits_lr", "avdigits", "lr", (3e-4, 3e-3), methods=METHODS),
    "avdigits_split": lambda: sweep("avdigits_split", "avdigits", "params.utilization_split", ("train", "train_running")),
}


def run_one(spec: dict) -> dict:
    import torch

    from trainer.config import TrainConfig
    from trainer.loop import train
    from trainer.reporting import MemoryReporter

    torch.set_num_threads(1)
    reporter = MemoryReporter()
    result = train(TrainConfig.model_validate(spec), reporter)
    actions = [e["epoch"] for e in reporter.events if e["kind"] == "miles.decision" and e["data"]["slowed"]]
    return {"key": key_of(spec), "spec": spec, "summary": result.summary, "epochs": reporter.by_epoch(), "miles_epochs": actions}


def load_runs() -> dict[str, dict]:
    if not RUNS.exists():
        return {}
    with gzip.open(RUNS, "rt") as lines:
        return {row["key"]: row for row in map(json.loads, lines)}


def train_missing(settings: list[Setting], workers: int) -> dict[str, dict]:
    from tqdm import tqdm

    done = load_runs()
    # Settings of different studies can share a spec (the main table's is in every sweep): train it once.
    todo = list({key_of(spec): spec for s in settings for spec in s.runs() if key_of(spec) not in done}.values())
    # Long runs first so the pool stays busy to the end.
    todo.sort(key=lambda spec: -spec["epochs"] * (20 if spec["dataset"] == "avdigits" else 1))
    OUT.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(run_one, spec) for spec in todo]
        for future in tqdm(as_completed(futures), total=len(futures), unit="run", desc="training"):
            row = future.result()
            with gzip.open(RUNS, "at") as sink:  # one gzip member per run: a stopped script loses nothing
                sink.write(json.dumps(row) + "\n")
            done[row["key"]] = row
    return done


# -- report ---------------------------------------------------------------------------------


def stat(values: list[float]) -> str:
    """Mean ± sample sd over seeds, as every table of the project writes it (trainer.comparison)."""
    from trainer.comparison import describe

    return describe(values).text()


def rows_of(setting: Setting, runs: dict[str, dict]) -> list[dict]:
    return [runs[key_of(spec)] for spec in setting.runs() if key_of(spec) in runs]


def heads_of(spec: dict, runs: dict[str, dict]) -> tuple[str, str]:
    """(dominant, weak) of the pair, chosen on validation as every table of the project chooses them
    (trainer.comparison.dominance: under joint training when the pair has joint runs)."""
    from trainer.comparison import RunRecord, dominance

    same = [
        RunRecord(
            id=r["key"], name=r["key"], dataset=r["spec"]["dataset"], modalities=tuple(r["spec"]["modalities"]),
            method=r["spec"]["method"], fusion=r["spec"].get("fusion", "concat"), seed=r["spec"]["seed"],
            status="succeeded", summary=r["summary"], config=r["spec"],
        )
        for r in runs.values()
        if r["spec"]["dataset"] == spec["dataset"] and sorted(r["spec"]["modalities"]) == sorted(spec["modalities"])
    ]
    roles = dominance(same)
    return (roles.dominant, roles.weak) if roles else PAIRS.get(spec["dataset"], tuple(spec["modalities"]))


def table(settings: list[Setting], runs: dict[str, dict], label: str = "setting") -> str:
    lines = [
        f"| {label} | val fused | test fused | test dominant head | test weak head | weak head, last epoch | MILES acted (epochs) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for setting in settings:
        rows = rows_of(setting, runs)
        if not rows:
            continue
        dominant, weak = heads_of(setting.spec, runs)
        summaries = [r["summary"] for r in rows]
        acted = [len(r["miles_epochs"]) for r in rows] if setting.spec["method"] == "miles" else []
        lines.append(
            f"| {setting.label} | {stat([s['metric/val/fused'] for s in summaries])} "
            f"| {stat([s['metric/test/fused'] for s in summaries])} "
            f"| {dominant} {stat([s[f'metric/test/{dominant}'] for s in summaries])} "
            f"| {weak} {stat([s[f'metric/test/{weak}'] for s in summaries])} "
            f"| {stat([s[f'final/metric/test/{weak}'] for s in summaries])} "
            f"| {stat([float(a) for a in acted]) if acted else '-'} |"
        )
    return "\n".join(lines)


def paired(settings: list[Setting], runs: dict[str, dict]) -> str:
    """MILES minus each baseline, seed by seed, on the fused and the weak head."""
    by_label = {s.label: s for s in settings}
    lines = [
        "| dataset / fusion | MILES - joint: fused | weak head | MILES - joint_aux: fused | weak head |",
        "| --- | --- | --- | --- | --- |",
    ]
    groups = sorted({label.rsplit("/", 1)[0] for label in by_label})
    for group in groups:
        if f"{group}/miles" not in by_label:
            continue
        miles = {r["spec"]["seed"]: r["summary"] for r in rows_of(by_label[f"{group}/miles"], runs)}
        _, weak = heads_of(by_label[f"{group}/miles"].spec, runs)
        cells = []
        for baseline in ("joint", "joint_aux"):
            other = {r["spec"]["seed"]: r["summary"] for r in rows_of(by_label.get(f"{group}/{baseline}", by_label[f"{group}/miles"]), runs)}
            seeds = sorted(set(miles) & set(other))
            for key in ("metric/test/fused", f"metric/test/{weak}"):
                diffs = [miles[s][key] - other[s][key] for s in seeds]
                wins = sum(d > 0 for d in diffs)
                cells.append(f"{stat(diffs)} ({wins}/{len(diffs)} seeds better)" if diffs else "-")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(runs: dict[str, dict], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = BASE["avdigits"] | {"fusion": "concat", "method": "miles", "seed": 0, "device": "cpu"}
    row = runs.get(key_of(spec))
    if row is None:
        return "(the figure's run has not been trained yet)"
    epochs = {int(e): m for e, m in row["epochs"].items()}
    steps = sorted(e for e, m in epochs.items() if "util/delta" in m)
    tau = row["spec"].get("params", {}).get("tau", 0.2)
    lr = row["spec"]["lr"]
    mu = row["spec"].get("params", {}).get("mu", 0.5)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.5), sharex=True, constrained_layout=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for modality, color in (("image", "#d62728"), ("audio", "#1f77b4")):
        top.plot(steps, [epochs[e][f"util/{modality}"] for e in steps], marker="o", color=color, label=f"u_{modality}")
        bottom.plot(steps, [epochs[e][f"lr/{modality}"] for e in steps], drawstyle="steps-mid", marker="o",
                    color=color, lw=2 if modality == "image" else 1.2, label=f"{modality} encoder and head")
    bottom.plot(steps, [epochs[e]["lr/fusion"] for e in steps], drawstyle="steps-mid", color="gray", ls="--",
                lw=3, alpha=0.5, label="fusion and fused head")
    top.plot(steps, [epochs[e]["util/delta"] for e in steps], color="black", lw=2, label="gap |u_image - u_audio|")
    top.axhline(tau, color="gray", ls="--", label=f"tau = {tau}")
    for epoch in row["miles_epochs"]:
        top.axvspan(epoch - 0.3, epoch + 0.3, color="#d62728", alpha=0.1, lw=0)
    top.set_ylabel("conditional utilization (validation)")
    top.set_title(
        "MILES on avdigits (concat, seed 0)\nshaded: epochs whose gap exceeded tau, so the image encoder was slowed for the next one",
        fontsize=10,
    )
    top.legend(loc="upper left", fontsize=8, ncol=2)
    bottom.set_yscale("log")
    bottom.set_yticks([mu * lr, lr], [f"mu x lr = {mu * lr:.1e}", f"lr = {lr:.1e}"])
    bottom.minorticks_off()
    bottom.set_ylim(mu * lr * 0.8, lr * 1.25)
    bottom.set_ylabel("learning rate in the epoch")
    bottom.set_xlabel("epoch")
    bottom.legend(loc="center right", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"![utilization, gap and learning rates of one MILES run]({path.relative_to(ROOT / 'docs')})"


def write_report(studies: dict[str, list[Setting]], runs: dict[str, dict], findings: str) -> None:
    main = studies["main"]
    parts = [
        "# Results: MILES against joint training, on our data",
        "",
        "Produced by `scripts/results.py` (command at the end). Test metrics are those of the best",
        "validation epoch of each run; every cell is the mean ± sample standard deviation over seeds",
        f"{', '.join(map(str, SEEDS))} (the avdigits sweeps: seeds {', '.join(map(str, SWEEP_SEEDS['avdigits']))}). `joint` is the vanilla (fused loss alone, heads trained on detached",
        "features), `joint_aux` adds the auxiliary losses of Eq. 3 without balancing, `miles` adds the",
        "schedule (tau 0.2, mu 0.5, utilization on validation) unless a row says otherwise. Models: MLP",
        "encoders on mfeat (pix + fou, 30 epochs), two small ResNet-style CNNs on avdigits (audio + image,",
        "15 epochs); Adam, lr 1e-3, batch 64.",
        "",
        findings,
        "",
        "## Main table",
        "",
        table(main, runs),
        "",
        "### Paired differences (same seed)",
        "",
        paired(main, runs),
        "",
        "## One MILES run",
        "",
        figure(runs, OUT / "miles_avdigits_concat_seed0.png"),
    ]
    titles = {
        "pairs": "Which pair of mfeat views (concat)",
        "mfeat_tau": "tau on mfeat (concat, mu 0.5)",
        "mfeat_mu": "mu on mfeat (concat, tau 0.2)",
        "mfeat_lr": "Learning rate on mfeat (concat)",
        "mfeat_epochs": "Epochs on mfeat (concat)",
        "mfeat_split": "Utilization from validation, the training split evaluated, or the training pass, mfeat (concat)",
        "avdigits_tau": "tau on avdigits (concat, mu 0.5; tau 0.2 is in the main table)",
        "avdigits_mu": "mu on avdigits (concat, tau 0.2; mu 0.5 is in the main table)",
        "avdigits_lr": "Learning rate on avdigits (concat; lr 1e-3 is in the main table)",
        "avdigits_split": "Utilization from the training split evaluated, or the training pass, avdigits (concat)",
    }
    for name, title in titles.items():
        if name in studies and any(rows_of(s, runs) for s in studies[name]):
            parts += ["", f"## {title}", "", table(studies[name], runs)]
    parts += [
        "",
        "## Reproduce",
        "",
        "```bash",
        "MILES_DATA_DIR=/path/to/data python scripts/results.py --workers 2",
        "```",
        "",
        "Runs are cached in `docs/results/runs.jsonl.gz` (per-epoch metrics and summaries of every run).",
        "",
    ]
    (ROOT / "docs" / "results.md").write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--studies", default=",".join(STUDIES))
    parser.add_argument("--report-only", action="store_true", help="Write the report from the cached runs.")
    parser.add_argument("--findings", type=Path, default=OUT / "findings.md", help="Hand-written findings to include.")
    args = parser.parse_args()
    studies = {name: STUDIES[name]() for name in args.studies.split(",")}
    runs = load_runs() if args.report_only else train_missing([s for v in studies.values() for s in v], args.workers)
    findings = args.findings.read_text() if args.findings.exists() else "(findings not written yet)"
    write_report(studies, runs, findings)
    print(f"wrote {ROOT / 'docs' / 'results.md'} from {len(runs)} runs", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
