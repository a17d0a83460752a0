"""Train the cells of a grid as parallel local processes, resumably, with progress.

Each cell trains in a process of its own (started fresh, one torch thread, so
that ``jobs`` processes share the cores without oversubscribing them) and, once
it has trained to the end, writes ``DIR/cells/<cell>.json`` (its config, summary,
last epoch's metrics and every epoch's, for curves over seeds), replaced whole so that a killed process never leaves
half a file. A cell whose file exists is never trained again; one that was
interrupted has no file and trains again from the start. A failed cell's
traceback goes to ``DIR/failed/<cell>.txt``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue
import re
import signal
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trainer.comparison import SUCCEEDED, RunRecord
from trainer.grid import Cell
from trainer.reporting import BaseReporter, json_safe

FAILED = "failed"
NOT_RUN = "not run"  # a cell of the grid that has no result yet (the run was interrupted before it)
POLL_SECONDS = 0.2


class GridDirectoryError(RuntimeError):
    """The output folder holds a result of the same cell trained with other settings."""


def file_name(key: str) -> str:
    """``miles/concat/seed0`` -> ``miles.concat.seed0``; names with other characters get a hash to stay distinct."""
    plain = key.replace("/", ".")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", plain)
    return safe if safe == plain else f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


@dataclass
class CellOutcome:
    """What became of a cell: succeeded (with its result), failed (with the error), or not run yet."""

    cell: Cell
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None

    def record(self) -> RunRecord:
        config = self.cell.config
        return RunRecord(
            id=self.cell.key, name=self.cell.key, dataset=config.dataset, modalities=tuple(config.modalities or ()),
            method=config.method, fusion=config.fusion, seed=config.seed, status=self.status, summary=self.summary,
            config=config.model_dump(mode="json"), latest=self.latest, error=self.error,
        )


class GridDirectory:
    """``DIR/cells`` (results of finished cells) and ``DIR/failed`` (tracebacks of failed ones)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cells = root / "cells"
        self.failed = root / "failed"

    def result_path(self, cell: Cell) -> Path:
        return self.cells / f"{file_name(cell.key)}.json"

    def error_path(self, cell: Cell) -> Path:
        return self.failed / f"{file_name(cell.key)}.txt"

    def finished(self, cell: Cell) -> CellOutcome | None:
        """The cell's stored result; None when it has none. Refuses a result of other settings."""
        path = self.result_path(cell)
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            stored_config = stored["config"]
        except (ValueError, KeyError, TypeError) as error:  # written whole, so only an edit by hand gets here
            raise GridDirectoryError(f"{path} cannot be read ({error}); delete it to train cell {cell.key} again") from None
        wanted = cell.config.model_dump(mode="json")
        if stored_config != wanted:
            changed = sorted(k for k in wanted.keys() | stored_config.keys() if wanted.get(k) != stored_config.get(k))
            shown = ", ".join(f"{k} {stored_config.get(k)!r} there, {wanted.get(k)!r} now" for k in changed)
            raise GridDirectoryError(
                f"{path} holds cell {cell.key} trained with other settings ({shown}); choose another --out, "
                "or delete that file to train the cell again"
            )
        return CellOutcome(cell, SUCCEEDED, stored["summary"], stored["latest"], stored["seconds"])


# -- the cell's own process ---------------------------------------------------------------------------------


class _Progress(BaseReporter):
    """Tells the parent each epoch a cell has trained, and keeps every epoch's metrics."""

    def __init__(self, events: Any, key: str) -> None:
        self.events = events
        self.key = key
        self.history: list[dict[str, float]] = []  # one entry per epoch, with its "epoch"

    @property
    def last(self) -> dict[str, float]:
        """The last epoch's metrics."""
        return {k: v for k, v in self.history[-1].items() if k != "epoch"} if self.history else {}

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if "loss/train" in metrics:  # a training epoch, not the test metrics at the end
            self.history.append({"epoch": epoch, **metrics})
            self.events.put(("epoch", self.key, epoch))


def _write_whole(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def train_cell(key: str, spec: dict[str, Any], result: str, error: str, events: Any) -> None:
    """The body of a cell's process: train, then write the result (or the traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops every cell at once
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    started = time.perf_counter()
    try:
        import torch

        from trainer.config import TrainConfig
        from trainer.loop import train

        torch.set_num_threads(1)
        progress = _Progress(events, key)
        outcome = train(TrainConfig.model_validate(spec), progress)
        if outcome.status != SUCCEEDED:
            raise RuntimeError(f"training ended {outcome.status} after {outcome.epochs_completed} epochs")
    except BaseException as failure:  # noqa: BLE001 - every failure of a cell is reported, none kills the grid
        _write_whole(Path(error), "".join(traceback.format_exception(failure)))
        events.put(("failed", key, f"{type(failure).__name__}: {failure}"))
        sys.exit(1)
    _write_whole(Path(result), json.dumps(json_safe({
        "key": key, "config": spec, "status": SUCCEEDED, "summary": outcome.summary, "latest": progress.last,
        "history": progress.history, "seconds": time.perf_counter() - started,
    }), indent=1, allow_nan=False) + "\n")


# -- the parent: a pool of at most `jobs` cell processes ------------------------------------------------------


@dataclass
class _Running:
    cell: Cell
    process: Any  # multiprocessing.Process
    started: float
    epoch: int = 0


class GridRun:
    """The cells of a grid trained in ``jobs`` processes at a time; `run` returns every cell's outcome
    (``not run`` for those an interruption left, with `interrupted` set)."""

    def __init__(self, cells: Sequence[Cell], directory: GridDirectory, jobs: int, progress: GridProgress) -> None:
        self.cells = list(cells)
        self.directory = directory
        self.jobs = max(1, jobs)
        self.progress = progress
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter per cell: no state shared with the parent
        self.events = self.context.Queue()
        self.interrupted = False

    def run(self) -> list[CellOutcome]:
        outcomes: dict[str, CellOutcome] = {}
        for cell in self.cells:
            done = self.directory.finished(cell)
            if done is not None:
                outcomes[cell.key] = done
        todo = [cell for cell in self.cells if cell.key not in outcomes]
        self.progress.begin(self.cells, [c for c in self.cells if c.key in outcomes], jobs=min(self.jobs, len(todo)))
        running: dict[str, _Running] = {}
        errors: dict[str, str] = {}
        try:
            while todo or running:
                while todo and len(running) < self.jobs:
                    cell = todo.pop(0)
                    running[cell.key] = self._start(cell)
                self._drain(running, errors)
                for key in [k for k, r in running.items() if not r.process.is_alive()]:
                    ended = running.pop(key)
                    ended.process.join()
                    self._drain(running, errors)
                    outcomes[key] = self._outcome(ended, errors.get(key))
                    self.progress.ended(outcomes[key], len(running), counted=ended.epoch)
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM, see trainer.compare): stop every cell, keep what finished
            self.interrupted = True
            for current in running.values():
                current.process.terminate()
            for current in running.values():
                current.process.join()
            self.progress.interrupted(sum(o.status == SUCCEEDED for o in outcomes.values()), len(self.cells))
        finally:
            self.progress.close()
        return [outcomes.get(cell.key) or CellOutcome(cell, NOT_RUN) for cell in self.cells]

    def _start(self, cell: Cell) -> _Running:
        self.directory.error_path(cell).unlink(missing_ok=True)
        process = self.context.Process(
            target=train_cell, name=f"cell {cell.key}", daemon=True,
            args=(cell.key, cell.config.model_dump(mode="json"), str(self.directory.result_path(cell)),
                  str(self.directory.error_path(cell)), self.events),
        )
        process.start()
        self.progress.started(cell)
        return _Running(cell, process, time.monotonic())

    def _drain(self, running: dict[str, _Running], errors: dict[str, str]) -> None:
        """Take the cells' messages: wait up to a poll interval for the first, then take what is there."""
        timeout = POLL_SECONDS
        while True:
            try:
                message = self.events.get(timeout=timeout)
            except queue.Empty:
                return
            timeout = 0.0
            kind, key = message[0], message[1]
            if kind == "epoch" and key in running:
                self.progress.epoch(running[key].cell, message[2] - running[key].epoch)
                running[key].epoch = message[2]
            elif kind == "failed":
                errors[key] = message[2]

    def _outcome(self, ended: _Running, error: str | None) -> CellOutcome:
        seconds = time.monotonic() - ended.started
        if ended.process.exitcode == 0:
            done = self.directory.finished(ended.cell)
            if done is not None:
                return done
        if error is None:
            code = ended.process.exitcode
            error = f"the process was killed by signal {-code}" if code is not None and code < 0 else f"the process exited with code {code}"
        return CellOutcome(ended.cell, FAILED, seconds=seconds, error=error)


# -- progress in the terminal ---------------------------------------------------------------------------------


class GridProgress:
    """Cells done, running and failed, and the time left: a bar on a terminal, plain lines elsewhere.

    Progress is counted in epochs (every cell's ``epochs``), so that the time left is known
    after the first epochs, long before the first cell ends.
    """

    def __init__(self, file: IO[str] | None = None, bar: bool | None = None) -> None:
        self.file = file or sys.stderr
        self.bar_wanted = self.file.isatty() if bar is None else bar
        self.bar: Any = None
        self.total_cells = self.done = self.failed = self.running = 0
        self.epochs_total = self.epochs_done = self.epochs_at_start = 0
        self.started_at = time.monotonic()

    def begin(self, cells: Sequence[Cell], finished: Sequence[Cell], jobs: int) -> None:
        """Before the first cell starts; the epochs of cells ``finished`` earlier count as done, not in the rate."""
        self.total_cells = len(cells)
        self.done = len(finished)
        self.epochs_total = sum(c.config.epochs for c in cells)
        self.epochs_done = self.epochs_at_start = sum(c.config.epochs for c in finished)
        self.started_at = time.monotonic()
        left = len(cells) - len(finished)
        self._line(f"{len(cells)} cells: {len(finished)} already done, {left} to train" + (f", {jobs} at a time" if left else ""))
        if self.bar_wanted and left:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.epochs_total, initial=self.epochs_done, unit="epoch", file=self.file, dynamic_ncols=True, desc="grid",
            )

    def started(self, cell: Cell) -> None:
        self.running += 1
        self._refresh()

    def epoch(self, cell: Cell, count: int) -> None:
        self.epochs_done += count
        if self.bar is not None:
            self.bar.update(count)
        self._refresh()

    def ended(self, outcome: CellOutcome, running: int, counted: int) -> None:
        """A cell ended, ``counted`` of its epochs shown so far: the rest count as done (a cell that stopped
        early or failed leaves none to wait for)."""
        self.running = running
        rest = max(0, outcome.cell.config.epochs - counted)
        if outcome.status == SUCCEEDED:
            self.done += 1
            head = outcome.cell.config.modalities[0] if outcome.cell.modality else "fused"
            result = outcome.summary.get(f"metric/test/{head}")
            detail = f"test {head} {result:.3f}" if isinstance(result, float) else "no test metric"
            text = f"succeeded in {_duration(outcome.seconds)}: {detail}"
        else:
            self.failed += 1
            text = f"FAILED: {outcome.error}"
        self.epoch(outcome.cell, rest)
        self._line(f"[{self.done + self.failed}/{self.total_cells}] {outcome.cell.key} {text} ({self._state()})")

    def interrupted(self, done: int, total: int) -> None:
        self._line(
            f"interrupted: {done} of {total} cells are done and kept; run the same command again to train the other {total - done}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def seconds_left(self) -> float | None:
        """From the rate of the epochs trained in this run."""
        trained = self.epochs_done - self.epochs_at_start
        elapsed = time.monotonic() - self.started_at
        if trained <= 0 or elapsed <= 0:
            return None
        return (self.epochs_total - self.epochs_done) * elapsed / trained

    def _state(self) -> str:
        left = self.seconds_left()
        eta = f", about {_duration(left)} left" if left is not None and self.done + self.failed < self.total_cells else ""
        return f"{self.done} done, {self.running} running, {self.failed} failed{eta}"

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"cells {self.done}/{self.total_cells} done, {self.running} running, {self.failed} failed", refresh=False)

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"
