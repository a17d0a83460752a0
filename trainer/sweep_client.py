"""The sweep calls of `trainer.client.MilesClient`: start, list, read, follow and cancel sweeps."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SWEEP_FINAL = ("succeeded", "failed", "cancelled")


class SweepCalls:
    """Mixed into `MilesClient`, whose ``request`` they use."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def sweep(
        self, config: Any, *, methods: Sequence[str] | None = None, space: Mapping[str, Any] | None = None,
        sampler: str | None = None, budget: int | None = None, parallelism: int | None = None,
        objective: Mapping[str, Any] | None = None, pruner: Mapping[str, Any] | None = None,
        seeds_for_best: int | None = None, preset: str | None = None, params: Mapping[str, Any] | None = None,
        seed: int | None = None, name: str | None = None, experiment: str | None = None, tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Start a sweep over ``config`` (a `TrainConfig` or a dict of one). Its method (and that method's
        hyperparameters, held fixed) is the one tuned unless ``methods`` names others. ``space`` maps config
        paths to ``{"low", "high", "log"}`` or ``{"choices": [...]}``; see ``POST /api/v1/sweeps`` for the rest."""
        base = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
        method, fixed = base.pop("method", None), base.pop("params", None)
        if methods is None and method is not None:
            methods = [method]
        if params is None and method is not None and fixed and methods is not None and method in methods:
            params = {method: fixed}
        body = {
            "config": base, "methods": list(methods) if methods is not None else None, "space": space,
            "sampler": sampler, "budget": budget, "parallelism": parallelism, "objective": objective, "pruner": pruner,
            "seeds_for_best": seeds_for_best, "preset": preset, "params": params, "seed": seed, "name": name,
            "experiment": experiment, "tags": list(tags),
        }
        return self.request("POST", "/sweeps", json={k: v for k, v in body.items() if v is not None})

    def sweeps(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every sweep (``status=`` filters), newest first."""
        params = {key: value for key, value in filters.items() if value is not None} | {"limit": page_size}
        while True:
            page = self.request("GET", "/sweeps", params=params)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def get_sweep(self, sweep_id: int) -> dict[str, Any]:
        return self.request("GET", f"/sweeps/{sweep_id}")

    def sweep_trials(self, sweep_id: int) -> list[dict[str, Any]]:
        """Every trial and rerun of the best: method, number, params, state, value, run_id, ..."""
        return self.request("GET", f"/sweeps/{sweep_id}/trials")["items"]

    def cancel_sweep(self, sweep_id: int) -> dict[str, Any]:
        return self.request("POST", f"/sweeps/{sweep_id}/cancel")

    def wait_sweep(
        self, sweep_id: int, timeout: float | None = None, progress: bool = True, poll: float = 2.0
    ) -> dict[str, Any]:
        """Poll until the sweep ends (a progress bar over its runs, with each method's best so far); the final sweep."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sweep = self.get_sweep(sweep_id)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sweep_work(sweep)[1], desc=f"sweep {sweep_id}", unit="run")
        try:
            while True:
                if bar is not None:
                    done, total = sweep_work(sweep)
                    bar.total = total
                    bar.update(done - bar.n)
                    best = best_so_far(self.sweep_trials(sweep_id))
                    bar.set_postfix_str(" ".join([sweep["status"], *(f"{m} {v:.4f}" for m, v in best.items())]))
                if sweep["status"] in SWEEP_FINAL:
                    return sweep
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"sweep {sweep_id} is still {sweep['status']} after {timeout} s")
                time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
                sweep = self.get_sweep(sweep_id)
        finally:
            if bar is not None:
                bar.close()


def sweep_work(sweep: Mapping[str, Any]) -> tuple[int, int]:
    """(runs ended, runs planned) of a sweep: every method's trials, then the reruns of each best."""
    plan, progress = sweep["plan"], sweep["progress"].values()
    done = sum(p["complete"] + p["pruned"] + p["failed"] + p["reruns_done"] for p in progress)
    methods = len(plan["methods"]) if sweep.get("best") is None else len(sweep["best"])
    return done, sum(plan["budgets"].values()) + plan["seeds_for_best"] * methods


def best_so_far(trials: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Method -> the highest objective of its completed trials so far (validation)."""
    best: dict[str, float] = {}
    for trial in trials:
        if trial["role"] == "trial" and trial["state"] == "complete" and trial["value"] is not None:
            best[trial["method"]] = max(best.get(trial["method"], -math.inf), trial["value"])
    return best
