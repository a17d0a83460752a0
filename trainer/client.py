"""A light client of the dashboard's REST API, for notebooks and scripts (httpx only).

    from trainer.client import MilesClient

    client = MilesClient("http://127.0.0.1:8000", token=None)  # or MILES_URL / MILES_TOKEN
    run = client.submit({"dataset": "mfeat", "method": "miles", "epochs": 20}, experiment="sweep")
    client.wait(run["id"])                       # a progress bar over epochs
    client.metrics(run["id"], keys=["util/*"])   # {key: {"steps": [...], "values": [...]}}
    client.submit_grid({"config": {"dataset": "mfeat"}, "methods": ["joint", "miles"], "seeds": [0, 1, 2]},
                       experiment="joint vs miles")  # every method x fusion x seed, as one experiment
    client.results(experiment="joint vs miles")  # its table: mean ± sd over seeds per method and fusion

    sweep = client.sweep({"dataset": "mfeat", "epochs": 20}, methods=["miles", "joint"], budget=10,
                         space={"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "params.tau": {"low": 0, "high": 0.5}})
    client.wait_sweep(sweep["id"])               # a progress bar over its trials

    with client.track("my loop", params={"lr": 1e-3}, system=True) as tracked:  # log your own training loop
        for step in range(100):
            tracked.log(step, {"loss/train": 1 / (step + 1)})

It imports neither the server nor torch, so ``pip install miles-dashboard`` is all a
notebook needs. Errors of the API raise `MilesAPIError` with the field errors.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from trainer.reporting import json_safe
from trainer.sweep_client import SweepCalls, best_so_far, sweep_work

__all__ = ["MilesAPIError", "MilesClient", "Tracker", "best_so_far", "sweep_work"]

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL = ("succeeded", "failed", "cancelled", "pruned")
MAX_BATCH = 50_000  # the server's limit of points per request


class MilesAPIError(Exception):
    """The API refused a request: ``status``, the server's ``detail`` and its field ``errors``."""

    def __init__(self, status: int, detail: str, errors: Sequence[Mapping[str, str]] = ()) -> None:
        self.status = status
        self.detail = detail
        self.errors = [dict(error) for error in errors]
        lines = [f"{e.get('field') or 'request'}: {e.get('message')}" for e in self.errors]
        super().__init__("\n  ".join([f"{status}: {detail}", *lines]))

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class MilesClient(SweepCalls):
    """The dashboard's API: runs, metrics, events, experiments, the catalogue, sweeps (`SweepCalls`)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("MILES_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("MILES_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout)

    def __repr__(self) -> str:  # never the token
        return f"MilesClient({self.url!r})"

    def __enter__(self) -> MilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON (None for 204). Raises `MilesAPIError` on a 4xx or 5xx."""
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
                raise MilesAPIError(response.status_code, str(body.get("detail")), body.get("errors") or [])
            except (ValueError, AttributeError):
                raise MilesAPIError(response.status_code, response.text[:500] or response.reason_phrase) from None
        return None if response.status_code == 204 else response.json()

    # -- runs -------------------------------------------------------------------------------------

    def submit(
        self, config: Any, *, name: str | None = None, experiment: str | None = None, tags: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Queue a run for a worker. ``config`` is a `TrainConfig` or a dict of one; returns the run."""
        spec = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
        body = {"config": spec, "name": name, "experiment": experiment, "tags": list(tags), "execute": True}
        return self.request("POST", "/runs", json=body)

    def submit_grid(
        self, grid: Any, *, experiment: str, name: str | None = None, tags: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Queue every method x fusion x seed of ``grid`` (a `trainer.grid.Grid` or a dict of one) as the runs of
        ``experiment``, all or none; returns ``{"experiment", "cells": [{"key", "run"}, ...]}``."""
        spec = grid.model_dump(mode="json") if hasattr(grid, "model_dump") else dict(grid)
        body = {"grid": spec, "experiment": experiment, "name": name, "tags": list(tags)}
        return self.request("POST", "/grids", json=body)

    def results(self, *, experiment: str | int | None = None, ids: Sequence[int] = ()) -> dict[str, Any]:
        """The table of results (mean ± sd over seeds per method and fusion) of an experiment or of runs."""
        params: dict[str, Any] = {"experiment": experiment, "id": list(ids)}
        return self.request("GET", "/results", params={k: v for k, v in params.items() if v not in (None, [])})

    def runs(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every run matching ``filters`` (status, method, dataset, fusion, experiment, tag, q, sort), page by page."""
        params = {key: value for key, value in filters.items() if value is not None} | {"limit": page_size}
        while True:
            page = self.request("GET", "/runs", params=params)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def run(self, run_id: int) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}")

    def wait(
        self, run_id: int, timeout: float | None = None, progress: bool = True, poll: float = 1.0
    ) -> dict[str, Any]:
        """Poll until the run ends; the final run. TimeoutError after ``timeout`` s.

        With ``progress``, a bar over its epochs, timed by the training alone: the seconds per
        epoch the worker measured (``time/epoch``), never the time the run waited in the queue
        or the time this call has been watching. A run that has already ended is one line.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        run = self.run(run_id)
        if run["status"] in FINAL:
            if progress:
                print(_progress_line(run), file=sys.stderr)
            return run
        bar = _progress_bar(run) if progress else None
        try:
            while True:
                if bar is not None:
                    bar.n = run["progress"]["epoch"]
                    bar.set_postfix_str(_timing(run))
                if run["status"] in FINAL:
                    return run
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout} s")
                time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
                run = self.run(run_id)
        finally:
            if bar is not None:
                bar.close()

    def cancel(self, run_id: int) -> dict[str, Any]:
        return self.request("POST", f"/runs/{run_id}/cancel")

    def clone(
        self, run_id: int, *, name: str | None = None, experiment: str | None = None, tags: Sequence[str] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Queue a copy of a run with ``overrides`` of its config, e.g. ``clone(7, seed=3)``."""
        body = {"overrides": overrides, "name": name, "experiment": experiment, "tags": tags}
        return self.request("POST", f"/runs/{run_id}/clone", json={k: v for k, v in body.items() if v is not None})

    def delete(self, run_id: int) -> None:
        self.request("DELETE", f"/runs/{run_id}")

    # -- metrics and events -----------------------------------------------------------------------

    def metrics(
        self, run_id: int, keys: Sequence[str] | None = None, *, since_step: int | None = None,
        max_points: int | None = None,
    ) -> dict[str, dict[str, list[Any]]]:
        """``{key: {"steps": [...], "values": [...]}}``; keys may end in ``*`` (``"util/*"``); all by default."""
        params: dict[str, Any] = {"since_step": since_step, "max_points": max_points}
        if keys is not None:
            params["keys"] = ",".join(keys)
        return self.request("GET", f"/runs/{run_id}/metrics", params={k: v for k, v in params.items() if v is not None})["series"]

    def metrics_frame(self, run_id: int, keys: Sequence[str] | None = None) -> Any:
        """The run's series as a pandas DataFrame: one row per step, one column per key."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "metrics_frame needs pandas: pip install 'miles-dashboard[notebook]' (or use metrics(), plain lists)"
            ) from None
        series = self.metrics(run_id, keys)
        frame = pd.DataFrame({key: pd.Series(s["values"], index=s["steps"], dtype=float) for key, s in series.items()})
        frame.index.name = "step"
        return frame.sort_index()

    def latest(self, run_id: int) -> dict[str, dict[str, Any]]:
        return self.request("GET", f"/runs/{run_id}/metrics/latest")["latest"]

    def events(self, run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        """Every event of the run, oldest first (``kind`` may be a prefix, ``"miles.*"``)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"kind": kind} if kind else {}
        while True:
            page = self.request("GET", f"/runs/{run_id}/events", params=params)
            found += page["items"]
            if page["next_after_id"] is None:
                return found
            params["after_id"] = page["next_after_id"]

    # -- the rest ---------------------------------------------------------------------------------

    def experiments(self) -> list[dict[str, Any]]:
        return self.request("GET", "/experiments", params={"limit": 500})["items"]

    def catalog(self) -> dict[str, Any]:
        return self.request("GET", "/catalog")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def track(
        self, name: str, params: Mapping[str, Any] | None = None, config: Any = None, experiment: str | None = None,
        tags: Sequence[str] = (), **options: Any,
    ) -> Tracker:
        """A `Tracker` for a run of your own loop: ``with client.track("name") as run: run.log(step, {...})``."""
        return Tracker(self, name, params=params, config=config, experiment=experiment, tags=tags, **options)


def _bar_format(run: Mapping[str, Any]) -> str:
    """Epochs done and `_timing` (the postfix); none of tqdm's own times, which would count the
    time this client has been watching."""
    if run["progress"]["epochs"]:
        return "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} epochs{postfix}"
    return "{desc}: {n_fmt} epochs{postfix}"


def _progress_bar(run: Mapping[str, Any]) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=run["progress"]["epochs"], initial=run["progress"]["epoch"], desc=f"run {run['id']}", unit="epoch",
        bar_format=_bar_format(run),
    )


def _progress_line(run: Mapping[str, Any]) -> str:
    """The bar of a run that has ended, as one line of text."""
    from tqdm import tqdm

    return tqdm.format_meter(
        run["progress"]["epoch"], run["progress"]["epochs"], 0, prefix=f"run {run['id']}", unit="epoch",
        bar_format=_bar_format(run), postfix=_timing(run),
    )


def _timing(run: Mapping[str, Any]) -> str:
    """``queued: waiting for a worker``, ``running, 0.42 s/epoch, about 12 s left``, or
    ``succeeded in 12.6 s, 0.42 s/epoch`` (the run's training time, from its summary)."""
    status = run["status"]
    done, total = run["progress"]["epoch"], run["progress"]["epochs"]
    if status in FINAL:
        trained = (run.get("summary") or {}).get("time/train")
        if not isinstance(trained, int | float) and run.get("started_at") and run.get("finished_at"):
            trained = (_instant(run["finished_at"]) - _instant(run["started_at"])).total_seconds()
        if not isinstance(trained, int | float) or not done:
            return status
        return f"{status} in {_seconds(trained)}, {_seconds(trained / done)}/epoch"
    if status == "queued":
        return "queued: waiting for a worker"
    per_epoch = (run.get("latest") or {}).get("time/epoch", {}).get("value")
    if not isinstance(per_epoch, int | float):
        return status
    left = f", about {_seconds(per_epoch * (total - done))} left" if total and total > done else ""
    return f"{status}, {_seconds(per_epoch)}/epoch{left}"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(value: float) -> str:
    """``0.42 s``, ``12.6 s``, ``3 min 05 s``."""
    if value < 60:
        return f"{value:.2g} s" if value < 10 else f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


class Tracker:
    """Logs a training loop of your own into the dashboard, as a run ``execute: false``.

    ``log`` only buffers; a background thread sends the points at once when it last sent
    more than ``flush_interval`` seconds ago (so a loop logging once an epoch is live on
    the dashboard within a request's time), and otherwise what was logged meanwhile when
    the interval is over (or ``batch_size`` points are waiting), retrying with backoff when
    the server is unreachable or answers 5xx/429, which is safe because a repeated
    point overwrites. Leaving the ``with`` block flushes and sets the final status:
    ``succeeded``, ``failed`` with the exception's message when the loop raised, or
    ``cancelled`` (Ctrl-C, or a cancel from the dashboard: see `cancel_requested`).

    System metrics (off by default): ``system=True`` samples this process's CPU use and memory,
    and the first GPU it can see (NVML), every ``system_interval`` seconds into the ``sys/...``
    keys, as a worker does for the runs it trains; `log_system` takes one sample now.
    """

    def __init__(
        self, client: MilesClient, name: str, *, params: Mapping[str, Any] | None = None, config: Any = None,
        experiment: str | None = None, tags: Sequence[str] = (), batch_size: int = 1000, flush_interval: float = 0.2,
        max_retries: int = 8, max_buffer: int = 1_000_000, system: bool = False, system_interval: float = 10.0,
    ) -> None:
        if system and system_interval < 1:
            raise ValueError("system_interval must be at least 1 second (a system sample's step is its second)")
        self.client = client
        self._create = {
            "name": name, "execute": False, "experiment": experiment, "tags": list(tags),
            "params": dict(params) if params is not None else None,
            "config": config.model_dump(mode="json") if hasattr(config, "model_dump") else config,
        }
        self.batch_size = min(batch_size, MAX_BATCH)
        self.flush_interval = flush_interval
        self.max_retries = max_retries
        self.max_buffer = max_buffer
        self.id: int | None = None
        self.cancel_requested = False
        self._summary: dict[str, Any] = {}
        self._buffer: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._sending = threading.Lock()
        self._stopping = False
        self._failure: MilesAPIError | None = None
        self._warned: set[str] = set()
        self._thread = threading.Thread(target=self._flush_forever, name="miles-tracker", daemon=True)
        self.system_interval = system_interval if system else 0.0
        self._probe: Any = None  # trainer.system.SystemProbe, made on first use (it imports psutil)
        self._started = 0.0

    def __enter__(self) -> Tracker:
        run = self._retry(lambda: self.client.request("POST", "/runs", json={
            k: v for k, v in self._create.items() if v is not None
        }))
        self.id = run["id"]
        self._started = time.monotonic()
        self._thread.start()
        if self.system_interval:
            threading.Thread(target=self._sample_forever, name="miles-tracker-system", daemon=True).start()
        return self

    def log_system(self) -> dict[str, float]:
        """Sample this process's system metrics now (``sys/...``: CPU, memory, GPU) and log them at the
        second since the run started; the values logged."""
        from trainer.system import Gpu, SystemProbe

        if self._probe is None:
            self._probe = SystemProbe(Gpu.open(visible=os.environ.get("CUDA_VISIBLE_DEVICES")))
        values = self._probe.sample()
        self.log(round(time.monotonic() - self._started), values)
        return values

    def _sample_forever(self) -> None:
        next_at = time.monotonic()  # once at the start, then every interval
        while True:
            with self._changed:  # woken by every batch sent too: wait out the interval
                while not self._stopping and (left := next_at - time.monotonic()) > 0:
                    self._changed.wait(left)
                if self._stopping:
                    return
            try:
                self.log_system()
            except MilesAPIError:  # the dashboard refused this run's points; __exit__ reports it
                return
            next_at += self.system_interval

    def log(self, step: int, values: Mapping[str, float], *, at: float | None = None) -> None:
        """Record ``values`` (``{key: number}``) at ``step`` (measured ``at``, Unix seconds, default now).

        NaN and infinity are skipped with a warning.
        """
        if self._failure is not None:
            raise self._failure
        when = time.time() if at is None else at
        points = []
        for key, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{key}: {value!r} is not a number") from None
            if math.isfinite(number):
                points.append({"key": key, "step": int(step), "value": number, "time": when})
            else:
                self._warn_once(
                    f"key:{key}", f"{key} is {number} at step {step}: not logged (the dashboard stores finite numbers)",
                    stacklevel=2,  # the caller of log()
                )
        with self._changed:
            while len(self._buffer) >= self.max_buffer and self._failure is None:
                self._changed.wait(1.0)  # the server is behind: wait rather than grow without bound
            self._buffer.extend(points)
            self._changed.notify_all()  # the sender sends at once, unless it just did

    def event(self, kind: str, message: str, *, step: int = 0, data: Mapping[str, Any] | None = None,
              key: str | None = None) -> None:
        """A note in the run's log (e.g. ``run.event("note", "lr dropped", step=30)``), sent at once.

        Numbers in ``data`` that are not finite (NaN, infinity) are sent as null."""
        body = {"events": [{"kind": kind, "message": message, "step": step, "data": json_safe(data or {}), "key": key}]}
        self._retry(lambda: self.client.request("POST", f"/runs/{self.id}/events", json=body))

    def summary(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Add to the run's summary (sent when the run ends, or on `flush`)."""
        self._summary.update(values or {}, **more)

    def flush(self) -> None:
        """Send everything logged so far, now."""
        self._send_all()
        if self._summary:
            self._retry(lambda: self.client.request("PATCH", f"/runs/{self.id}", json={"summary": self._summary}))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> bool:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()
        final: dict[str, Any] = {"status": "succeeded"}
        if isinstance(error, KeyboardInterrupt) or (error is None and self.cancel_requested):
            final = {"status": "cancelled"}
        elif error is not None:
            final = {"status": "failed", "error": f"{type(error).__name__}: {error}"[:20_000]}
        elif self._failure is not None:
            final = {"status": "failed", "error": f"the dashboard refused logged metrics: {self._failure.detail}"}
        try:
            self._send_all()
        except Exception as problem:  # still try to set the status below
            warnings.warn(f"run {self.id}: {len(self._buffer)} points could not be sent: {problem}", stacklevel=2)
        if self._summary:
            final["summary"] = self._summary
        try:
            self._retry(lambda: self.client.request("PATCH", f"/runs/{self.id}", json=final))
        except Exception as problem:
            if error is None:
                raise
            warnings.warn(f"run {self.id}: its final status could not be set: {problem}", stacklevel=2)
        return False  # an exception of the loop goes on to the caller

    # -- sending ----------------------------------------------------------------------------------

    def _flush_forever(self) -> None:
        sent_at = -math.inf
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stopping or bool(self._buffer))
                # Sent at once after a quiet spell; points logged soon after a request wait out the interval
                # together (one request, not one per call, from a loop that logs many times a second).
                self._changed.wait_for(
                    lambda: self._stopping or len(self._buffer) >= self.batch_size,
                    timeout=max(0.0, sent_at + self.flush_interval - time.monotonic()),
                )
                if self._stopping:
                    return  # __exit__ sends what is left
            sent_at = time.monotonic()
            try:
                self._send_batch()
            except MilesAPIError as refused:
                if refused.retryable:  # still down after every retry: keep the points, try again later
                    self._warn_once("server", f"run {self.id}: the dashboard answers {refused.status}; retrying")
                    continue
                with self._changed:
                    self._failure = refused
                    self._changed.notify_all()
                return
            except httpx.TransportError as problem:
                self._warn_once("server", f"run {self.id}: the dashboard cannot be reached ({problem}); retrying")

    def _warn_once(self, topic: str, message: str, stacklevel: int = 1) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            warnings.warn(message, stacklevel=stacklevel + 1)

    def _send_batch(self) -> None:
        with self._sending:  # the sender thread and `flush` take turns: each deletes exactly what it sent
            self._send_batch_alone()

    def _send_batch_alone(self) -> None:
        with self._changed:
            batch = self._buffer[: self.batch_size if not self._stopping else MAX_BATCH]
        if not batch:
            return
        try:
            answer = self._retry(lambda: self.client.request("POST", f"/runs/{self.id}/metrics", json={"points": batch}))
        except MilesAPIError:
            with self._changed:  # refused for what it holds: sending it again cannot help
                del self._buffer[: len(batch)]
            raise
        self.cancel_requested = self.cancel_requested or bool(answer.get("cancel_requested"))
        with self._changed:
            del self._buffer[: len(batch)]
            self._changed.notify_all()

    def _send_all(self) -> None:
        while self._buffer:
            self._send_batch()

    def _retry(self, call: Any) -> Any:
        """``call()``, retried with exponential backoff on connection errors, 5xx and 429."""
        attempt = 0
        while True:
            try:
                return call()
            except MilesAPIError as error:
                if not error.retryable or attempt >= self.max_retries:
                    raise
            except httpx.TransportError:
                if attempt >= self.max_retries:
                    raise
            time.sleep(min(30.0, 0.25 * 2**attempt))
            attempt += 1
