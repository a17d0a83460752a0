"""The table of results as files: ``table.md``, ``table.csv``, ``table.json`` and ``table.png``.

The numbers are `trainer.comparison`'s; this module only lays them out. The PNG
needs matplotlib, an optional extra (``pip install 'miles-dashboard[plots]'``):
without it the three text files are still written and `MissingMatplotlib` says
how to get the picture.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Sequence
from pathlib import Path

from trainer.comparison import ComparisonTable, Group, Row, Scores, Stat

EXTRA = "pip install 'miles-dashboard[plots]'"
DEFINITIONS = (
    "Test metrics of the fused head and of the dominant and the weak modality's own heads, as mean ± sample "
    "standard deviation (n - 1) over seeds, at each run's best validation epoch and at its last epoch. "
    "Δ is dominant - weak, seed by seed (the paper's gap between the heads). The dominant and the weak "
    "modality are those whose heads score highest and lowest on validation under joint training (over all "
    "the runs when none is a joint run): nothing is chosen on the test split. A method of one modality alone "
    "gives each modality's ceiling in its column. Gap δ is the final utilization gap |u_A - u_B|."
)


class MissingMatplotlib(RuntimeError):
    """table.png needs matplotlib, which is not installed."""


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def row_name(row: Row) -> str:
    """``miles · concat``, ``miles · concat · tau 0.1``, ``unimodal`` (one modality alone)."""
    return " · ".join(part for part in (row.method or "logged", row.fusion, row.label) if part)


def heading(group: Group) -> str:
    pair = " + ".join(group.modalities)
    roles = (
        f"dominant {group.dominant}, weak {group.weak} (on validation, "
        f"{'under joint training' if group.basis == 'joint' else 'over all runs'})"
        if group.dominant else "dominant and weak not known yet"
    )
    return f"{group.dataset or 'logged runs'} · {pair} · {group.metric} · {roles}"


def _waiting(row: Row) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(row.waiting.items()))


def markdown(table: ComparisonTable, title: str, command: str | None = None) -> str:
    """The whole report: title, definitions, the command that produced it, the tables and the failed runs."""
    lines = [f"# {title}", "", DEFINITIONS, ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    return "\n".join([*lines, group_tables(table), failures(table)]).rstrip("\n") + "\n"


def group_tables(table: ComparisonTable) -> str:
    """One Markdown table per dataset and pair."""
    lines = []
    for group in table.groups:
        dominant, weak = group.dominant or "dominant", group.weak or "weak"
        heads = ["fused", f"{dominant} (dominant)", f"{weak} (weak)", "Δ"]
        columns = ["method", "seeds", *heads, *(f"{h.split(' ')[0]}, last" for h in heads), "gap δ", "not counted"]
        lines += [f"## {heading(group)}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        for row in group.rows:
            cells = [row_name(row), str(row.seeds), *_texts(row.best), *_texts(row.last), row.gap.text(), _waiting(row) or "-"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def failures(table: ComparisonTable) -> str:
    """The runs that ended with an error, each once, with the last line of its error."""
    seen: dict[int | str, str] = {}
    for group in table.groups:
        for row in group.rows:
            for run in row.runs:
                if run.error and run.id not in seen:
                    seen[run.id] = f"- {run.name} ({row_name(row)}): {run.status}: {_one_line(run.error)}"
    return "\n".join(["## Runs that failed", "", *seen.values(), ""]) if seen else ""


def _texts(scores: Scores) -> list[str]:
    return [scores.fused.text(), scores.dominant.text(), scores.weak.text(), scores.delta.text()]


def _one_line(text: str) -> str:
    last = [line for line in text.strip().splitlines() if line.strip()]
    return last[-1].strip() if last else "(no message)"


CSV_COLUMNS = [
    "dataset", "modalities", "metric", "dominant", "weak", "method", "fusion", "setting", "seeds", "epoch",
    *(f"{head}_{part}" for head in ("fused", "dominant", "weak", "delta", "gap") for part in ("mean", "sd")), "not_counted",
]


def csv_text(table: ComparisonTable) -> str:
    """Two lines per row (``epoch``: ``best`` and ``last``), mean and sd in columns of their own."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for group in table.groups:
        for row in group.rows:
            for epoch, scores in (("best", row.best), ("last", row.last)):
                stats: Sequence[Stat] = (scores.fused, scores.dominant, scores.weak, scores.delta, row.gap)
                writer.writerow([
                    group.dataset, "+".join(group.modalities), group.metric, group.dominant, group.weak,
                    row.method, row.fusion, row.label, row.seeds, epoch,
                    *(_number(value) for stat in stats for value in (stat.mean, stat.sd)), _waiting(row),
                ])
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def figure(table: ComparisonTable, path: Path, title: str) -> None:
    """Bars of the fused, dominant and weak heads (mean, with the sd as error bars) per row, at the best
    validation epoch and at the last, one band of panels per dataset and pair."""
    if not has_matplotlib():
        raise MissingMatplotlib(f"table.png needs matplotlib: {EXTRA}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in table.groups if g.rows]
    heights = [max(1.8, 0.55 * len(g.rows) + 1.2) for g in groups] or [1.8]
    fig = plt.figure(figsize=(11, sum(heights) + 1.0), constrained_layout=True)
    bands = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    bars = (("fused", "#444444"), ("dominant", "#d62728"), ("weak", "#1f77b4"))
    for band, group in zip(bands, groups, strict=False):
        band.suptitle(heading(group), fontsize=9)
        axes = band.subplots(1, 2, sharey=True)
        names = [row_name(row) for row in group.rows]
        for ax, epoch in zip(axes, ("best", "last"), strict=True):
            for offset, (head, color) in enumerate(bars):
                stats = [getattr(getattr(row, epoch), head) for row in group.rows]
                label = {"fused": "fused", "dominant": f"{group.dominant} (dominant)", "weak": f"{group.weak} (weak)"}[head]
                ax.barh(
                    [i + (offset - 1) * 0.27 for i in range(len(names))], [s.mean or 0 for s in stats], height=0.26,
                    xerr=[s.sd or 0 for s in stats], color=color, label=label, capsize=2, error_kw={"lw": 0.8},
                )
            for i, row in enumerate(group.rows):
                delta = getattr(row, epoch).delta
                if delta.mean is not None:
                    ax.text(1.01, i, f"Δ {delta.text(2)}", va="center", fontsize=7, transform=ax.get_yaxis_transform())
            ax.set_yticks(range(len(names)), names, fontsize=8)
            ax.set_xlim(0, 1.0)
            ax.grid(axis="x", alpha=0.3)
            ax.set_title("at the best validation epoch" if epoch == "best" else "at the last epoch", fontsize=8)
            ax.set_xlabel(f"test {group.metric}", fontsize=8)
        axes[0].invert_yaxis()
        band.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_tables(table: ComparisonTable, directory: Path, *, title: str, command: str | None = None) -> list[Path]:
    """``table.md``, ``table.csv``, ``table.json`` and (with matplotlib) ``table.png`` in ``directory``;
    the paths written. Each file is replaced whole, so a reader never sees half of one."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        _replace(directory / "table.md", markdown(table, title, command)),
        _replace(directory / "table.csv", csv_text(table)),
        _replace(directory / "table.json", table.model_dump_json(indent=2) + "\n"),
    ]
    if has_matplotlib():
        partial = directory / f".table.{os.getpid()}.png"
        figure(table, partial, title)
        os.replace(partial, directory / "table.png")
        written.append(directory / "table.png")
    return written


def _replace(path: Path, text: str) -> Path:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path
