"""``miles sweep create|list|show|cancel``: hyperparameter sweeps on a running server, through its API.

    miles sweep create --dataset mfeat --epochs 20 --methods miles,joint \\
        --space lr=1e-4..1e-2:log --space params.tau=0..0.5 --space batch_size=32,64 --budget 20
    miles sweep create --dataset mfeat --methods miles,joint_aux,joint --preset paper --budget 8

A dimension is ``PATH=LOW..HIGH`` (a range; ``:log`` draws it on a log scale, ``:STEP`` on
a grid of steps) or ``PATH=A,B,C`` (choices; values read as JSON, else as text). The server
checks everything and names each bad field. ``create`` and ``show --watch`` follow the sweep
with a progress bar over its runs and each method's best objective so far; Ctrl-C stops
watching, not the sweep (``miles sweep cancel ID`` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from trainer.client import MilesAPIError, MilesClient, best_so_far, sweep_work

SWEEP_STATUSES = ("searching", "confirming", "succeeded", "failed", "cancelled")


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_dimension(text: str) -> tuple[str, dict[str, Any]]:
    """``lr=1e-4..1e-2:log`` -> ``("lr", {"low": 1e-4, "high": 1e-2, "log": True})``; ``bs=32,64`` -> choices."""
    path, sep, rest = text.partition("=")
    if not sep or not path or not rest:
        raise click.BadParameter(f"{text!r}: expected PATH=LOW..HIGH[:log|:STEP] or PATH=A,B,C", param_hint="--space")
    if ".." not in rest:
        return path, {"choices": [parse_value(part.strip()) for part in rest.split(",")]}
    bounds, _, option = rest.partition(":")
    low, _, high = bounds.partition("..")
    try:
        dimension: dict[str, Any] = {"low": float(low), "high": float(high)}
        if option == "log":
            dimension["log"] = True
        elif option:
            dimension["step"] = float(option)
    except ValueError:
        raise click.BadParameter(f"{text!r}: LOW, HIGH and STEP must be numbers", param_hint="--space") from None
    return path, dimension


def parse_objective(text: str) -> dict[str, Any]:
    """``fused``, ``weak``, or weights such as ``fused=0.5,weak=0.5``."""
    if "=" not in text:
        return {"kind": text}
    weights = {}
    for part in text.split(","):
        head, _, weight = part.partition("=")
        try:
            weights[head.strip()] = float(weight)
        except ValueError:
            raise click.BadParameter(f"{part!r}: expected HEAD=WEIGHT", param_hint="--objective") from None
    return {"kind": "weighted", "weights": weights}


def describe(sweep: dict[str, Any], url: str) -> str:
    plan = sweep["plan"]
    lines = [
        f"sweep {sweep['id']} · {sweep['name']} · {sweep['status']}   {url}/sweeps/{sweep['id']}",
        f"  {plan['sampler']} sampler, {plan['parallelism']} at a time, objective {plan['objective']['kind']}"
        + (f", pruner {plan['pruner']['kind']}" if plan["pruner"] else "")
        + f", then {plan['seeds_for_best']} seeds of each best",
    ]
    for method, progress in sweep["progress"].items():
        space = ", ".join(plan["spaces"][method])
        lines.append(
            f"  {method:<12} {progress['trials']}/{progress['budget']} trials ({progress['complete']} complete, "
            f"{progress['pruned']} pruned, {progress['failed']} failed) over {space}"
        )
    for method, best in (sweep["best"] or {}).items():
        values = ", ".join(f"{path} {value:.4g}" if isinstance(value, float) else f"{path} {value}"
                           for path, value in best["params"].items())
        lines.append(f"  best {method}: trial {best['number']}, objective {best['value']:.4f} ({values})")
    if sweep["error"]:
        lines.append(f"  {sweep['error']}")
    return "\n".join(lines)


def follow(client: MilesClient, sweep_id: int) -> dict[str, Any]:
    try:
        return client.wait_sweep(sweep_id)
    except KeyboardInterrupt:
        click.echo(f"\nstopped watching; the sweep goes on (miles sweep cancel {sweep_id} stops it)", err=True)
        raise SystemExit(130) from None


connection = [
    click.option("--url", envvar="MILES_URL", help="The server (MILES_URL, default http://127.0.0.1:8000)."),
    click.option("--token", envvar="MILES_TOKEN", help="An API token when auth is on (MILES_TOKEN)."),
]


def with_connection(command: Any) -> Any:
    for option in reversed(connection):
        command = option(command)
    return command


@click.group("sweep")
def sweep_group() -> None:
    """Hyperparameter sweeps: Optuna studies whose trials run on the workers."""


@sweep_group.command("create")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON file with the base TrainConfig; the options below change it.")
@click.option("--dataset", help="Dataset of every run.")
@click.option("--modalities", help="Comma-separated modalities.")
@click.option("--fusion", help="concat, sum, film or gated.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float, help="The learning rate of runs that do not search it.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--dataset-param", "dataset_params", multiple=True, metavar="NAME=VALUE", help="A dataset option (repeatable).")
@click.option("--methods", default="miles", show_default=True, help="Comma-separated methods, each tuned in its own study.")
@click.option("--param", "params", multiple=True, metavar="METHOD.NAME=VALUE", help="A fixed hyperparameter (repeatable).")
@click.option("--space", "space", multiple=True, metavar="PATH=RANGE|CHOICES", help="A dimension to search (repeatable).")
@click.option("--sampler", type=click.Choice(["random", "tpe", "grid"]), help="Default random (paper: random).")
@click.option("--budget", type=int, help="Trials per method (default 20; a grid: its size; paper: 80).")
@click.option("--parallelism", type=int, help="Most runs of the sweep at once (default 2).")
@click.option("--objective", help="fused (default), weak, or weights such as fused=0.5,weak=0.5 (validation).")
@click.option("--pruner", type=click.Choice(["median", "successive_halving"]), help="Stop trials that fall behind.")
@click.option("--seeds-for-best", type=int, help="Reruns of each method's best configuration, tested (default 3).")
@click.option("--preset", type=click.Choice(["paper"]), help="paper: 80 random configurations per method, then 5 seeds.")
@click.option("--seed", type=int, help="Seed of the sampler.")
@click.option("--name")
@click.option("--experiment", help="Experiment of the sweep's runs (default: the sweep's name).")
@click.option("--tag", "tags", multiple=True)
@click.option("--watch/--no-watch", default=True, show_default=True, help="Follow the sweep until it ends.")
@with_connection
def create_command(**options: Any) -> None:
    """Start a sweep and follow it."""
    config: dict[str, Any] = json.loads(options["config_file"].read_text()) if options["config_file"] else {}
    for key in ("dataset", "fusion", "epochs", "batch_size", "lr", "device"):
        if options[key] is not None:
            config[key] = options[key]
    if options["modalities"]:
        config["modalities"] = [m.strip() for m in options["modalities"].split(",") if m.strip()]
    for item in options["dataset_params"]:
        name, _, value = item.partition("=")
        config.setdefault("dataset_params", {})[name] = parse_value(value)
    methods = [m.strip() for m in options["methods"].split(",") if m.strip()]
    params: dict[str, dict[str, Any]] = {}
    for item in options["params"]:
        target, _, value = item.partition("=")
        method, _, name = target.partition(".")
        if not name:
            raise click.BadParameter(f"{item!r}: expected METHOD.NAME=VALUE", param_hint="--param")
        params.setdefault(method, {})[name] = parse_value(value)
    with MilesClient(options["url"], options["token"]) as client:
        try:
            sweep = client.sweep(
                config, methods=methods, space=dict(parse_dimension(d) for d in options["space"]) or None,
                sampler=options["sampler"], budget=options["budget"], parallelism=options["parallelism"],
                objective=parse_objective(options["objective"]) if options["objective"] else None,
                pruner={"kind": options["pruner"]} if options["pruner"] else None,
                seeds_for_best=options["seeds_for_best"], preset=options["preset"], params=params or None,
                seed=options["seed"], name=options["name"], experiment=options["experiment"], tags=options["tags"],
            )
        except MilesAPIError as error:
            raise click.ClickException(str(error)) from None
        click.echo(describe(sweep, client.url))
        if options["watch"]:
            click.echo(describe(follow(client, sweep["id"]), client.url))


@sweep_group.command("list")
@click.option("--status", type=click.Choice(SWEEP_STATUSES), multiple=True)
@with_connection
def list_command(status: tuple[str, ...], url: str | None, token: str | None) -> None:
    """List sweeps, newest first."""
    with MilesClient(url, token) as client:
        try:
            sweeps = list(client.sweeps(status=list(status) or None))
        except MilesAPIError as error:
            raise click.ClickException(str(error)) from None
    if not sweeps:
        click.echo("no sweeps; start one with `miles sweep create`")
        return
    click.echo(f"{'id':>4}  {'name':<32}{'status':<12}{'runs':>10}  best so far")
    for sweep in sweeps:
        done, total = sweep_work(sweep)
        best = ", ".join(f"{m} {b['value']:.4f}" for m, b in (sweep["best"] or {}).items()) or "-"
        click.echo(f"{sweep['id']:>4}  {sweep['name'][:31]:<32}{sweep['status']:<12}{f'{done}/{total}':>10}  {best}")


@sweep_group.command("show")
@click.argument("sweep_id", type=int)
@click.option("--watch", "watching", is_flag=True, help="Follow the sweep until it ends.")
@click.option("--trials", "show_trials", is_flag=True, help="Also list every trial.")
@with_connection
def show_command(sweep_id: int, watching: bool, show_trials: bool, url: str | None, token: str | None) -> None:
    """A sweep's plan, progress and best configurations."""
    with MilesClient(url, token) as client:
        try:
            sweep = follow(client, sweep_id) if watching else client.get_sweep(sweep_id)
            trials = client.sweep_trials(sweep_id) if show_trials else []
        except MilesAPIError as error:
            raise click.ClickException(str(error)) from None
        click.echo(describe(sweep, client.url))
    best = best_so_far(trials)
    for trial in trials:
        mark = " *" if trial["role"] == "trial" and trial["value"] is not None and trial["value"] == best.get(trial["method"]) else ""
        value = f"{trial['value']:.4f}" if trial["value"] is not None else "-"
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial["params"].items())
        label = f"#{trial['number']}" if trial["role"] == "trial" else f"best #{trial['number']} seed {trial['seed']}"
        click.echo(f"  {trial['method']:<12}{label:<20}{trial['state']:<10}{value:>8}  run {trial['run_id']}  {params}{mark}")


@sweep_group.command("cancel")
@click.argument("sweep_id", type=int)
@with_connection
def cancel_command(sweep_id: int, url: str | None, token: str | None) -> None:
    """Cancel a sweep: its queued runs are cancelled, its running ones stop."""
    with MilesClient(url, token) as client:
        try:
            client.cancel_sweep(sweep_id)
        except MilesAPIError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"sweep {sweep_id} cancelled; its running trials stop within seconds")
