"""Where a run's epochs, events and summary go: the `Reporter` protocol and its implementations.

Metric keys are paths (see DESIGN.md): ``loss/train``, ``loss/val``,
``loss/{train,val}/{fused,<modality>}``, ``metric/{train,val,test}/fused``,
``metric/{train,val,test}/<modality>``, ``util/<modality>``, ``util/delta``,
``lr/<modality>``, ``lr/fusion``, ``time/epoch``. The step is the epoch
(1-based). A step may be reported more than once (test metrics arrive at the
end, for the best and the last epoch); a later value of a key overwrites.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from tqdm.auto import tqdm


@runtime_checkable
class Reporter(Protocol):
    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None: ...

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None: ...

    def on_summary(self, summary: Mapping[str, Any]) -> None: ...

    def should_stop(self) -> bool:
        """Checked between batches: True stops the run before the next batch."""
        ...


class BaseReporter:
    """A reporter that ignores everything; subclass and override what you need."""

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        pass

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        pass

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass
class MemoryReporter(BaseReporter):
    """Keeps everything in lists, for notebooks and tests."""

    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs.append((epoch, dict(metrics)))

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        self.events.append({"epoch": epoch, "kind": kind, "message": message, "data": dict(data)})

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        self.summary = dict(summary)

    def by_epoch(self) -> dict[int, dict[str, float]]:
        """Every epoch's metrics, merged across the calls that reported them."""
        merged: dict[int, dict[str, float]] = {}
        for epoch, metrics in self.epochs:
            merged.setdefault(epoch, {}).update(metrics)
        return merged

    def series(self, key: str) -> list[tuple[int, float]]:
        """``[(epoch, value), ...]`` of one key, the last value of each epoch."""
        points: dict[int, float] = {}
        for epoch, metrics in self.epochs:
            if key in metrics:
                points[epoch] = metrics[key]
        return sorted(points.items())


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, replaced by None (JSON has no NaN or infinity).

    Mappings become dicts with string keys, tuples lists; other values are left as they are.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def is_test_report(metrics: Mapping[str, float]) -> bool:
    """Whether a report holds only test-split metrics (``metric/test/...``, ``loss/test``): the
    evaluations of the last and of the best epoch's weights that arrive after training."""
    return bool(metrics) and all(key.startswith(("metric/test/", "loss/test")) for key in metrics)


class JsonlReporter(BaseReporter):
    """One JSON object per line, of four kinds, told apart by their one top-level key (besides ``metrics``):

    - ``{"epoch": 3, "metrics": {...}}``: one per trained epoch, in order; a reader counting these
      finds exactly as many as the run trained;
    - ``{"test": {"epoch": 3, "metrics": {...}}}``: the test split evaluated with the weights of
      that epoch, once after the last epoch and once more for the best validation epoch when it
      is another;
    - ``{"event": {"epoch", "kind", "message", "data"}}``: run events and MILES decisions;
    - ``{"summary": {...}}``: last, when the run ends.

    Values that are not finite numbers are written as null.
    """

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a" if append else "w", encoding="utf-8")

    def _write(self, obj: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(obj, allow_nan=False) + "\n")
        self._file.flush()

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if is_test_report(metrics):
            self._write({"test": {"epoch": epoch, "metrics": json_safe(metrics)}})
        else:
            self._write({"epoch": epoch, "metrics": json_safe(metrics)})

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        self._write({"event": {"epoch": epoch, "kind": kind, "message": message, "data": json_safe(data)}})

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        self._write({"summary": json_safe(summary)})
        self.close()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def epoch_line(epoch: int, epochs: int, metrics: Mapping[str, float], modalities: Sequence[str]) -> str:
    """``epoch  3/30  loss train 0.410 val 0.390  val fused 0.953 | pix 0.940 fou 0.712  gap 0.240``"""
    parts = [f"epoch {epoch:>{len(str(epochs))}}/{epochs}"]
    if "loss/train" in metrics:
        parts.append(f"loss train {metrics['loss/train']:.3f} val {metrics.get('loss/val', math.nan):.3f}")
    if "metric/val/fused" in metrics:
        heads = " ".join(f"{m} {metrics.get(f'metric/val/{m}', math.nan):.3f}" for m in modalities)
        parts.append(f"val fused {metrics['metric/val/fused']:.3f} | {heads}")
    if "util/delta" in metrics:
        parts.append(f"gap {metrics['util/delta']:.3f}")
    return "  ".join(parts)


class ConsoleReporter(BaseReporter):
    """A progress bar over epochs and one line per epoch (and per MILES action) in the terminal."""

    def __init__(self, epochs: int, modalities: Sequence[str], start: int = 0, file: IO[str] | None = None) -> None:
        self.epochs = epochs
        self.modalities = list(modalities)
        self.file = file
        self.bar = tqdm(total=epochs, initial=start, unit="epoch", file=file, dynamic_ncols=True, leave=False)
        self._last_epoch = start

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if is_test_report(metrics):  # arriving at the end; the final table shows them
            return
        self.bar.write(epoch_line(epoch, self.epochs, metrics, self.modalities), file=self.file)
        if "metric/val/fused" in metrics:
            self.bar.set_postfix_str(f"val {metrics['metric/val/fused']:.3f}", refresh=False)
        self.bar.update(epoch - self._last_epoch)
        self._last_epoch = epoch

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        if kind not in ("miles.decision", "adaptive.decision") or data.get("slowed") or data.get("sped_up"):
            self.bar.write(f"  {message}", file=self.file)

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        self.bar.close()


class MultiReporter(BaseReporter):
    """Sends everything to several reporters; stops when any of them asks to."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = list(reporters)

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for reporter in self.reporters:
            reporter.on_epoch(epoch, metrics)

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_event(epoch, kind, message, data)

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_summary(summary)

    def should_stop(self) -> bool:
        return any(reporter.should_stop() for reporter in self.reporters)
