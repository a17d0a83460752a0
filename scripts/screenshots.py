"""Regenerate the README's screenshots from a real `miles server` and `miles worker --cpu`.

    python scripts/screenshots.py            # docs/images/run-page.png, compare.png, workers.png, system-card.png
    python scripts/screenshots.py --pages workers,system   # only those
    python scripts/screenshots.py --pages balance --balance kar,pix --depth kar=6   # docs/images/balance_kar6+pix.png
    python scripts/screenshots.py --pages balance --balance-dataset avdigits --balance audio,image --epochs 15
    python scripts/screenshots.py --pages balance --balance kar,pix --depth pix=6 --optimizer sgd --lr 0.01 --epochs 60

It starts both processes on a fresh SQLite file (local mode, as `miles up` does, with
the process helpers of the test suite), trains a few runs on a built-in dataset, and
photographs the run page while its run is still training (charts partly drawn, MILES's
marks visible), the compare page once its runs have finished, and, while a longer run
trains (system metrics every second), the Workers page and that run's System card; ``balance``
photographs the balance chart of a finished `joint_aux` run of another pair (of mfeat by default, one
encoder made deeper with ``--depth``; or of ``--balance-dataset``), to show an imbalance no schedule corrects. Needs Chromium
(Debian's `chromium`, or set CHROMIUM) and Playwright; takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ceilings import regime_name  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.conftest import migrated  # noqa: E402
from tests.services import MilesStack, wait_until  # noqa: E402
from tests.web.conftest import CHROMIUM_ARGS  # noqa: E402
from trainer.cli_values import parse_depths  # noqa: E402
from trainer.config import OPTIMIZERS  # noqa: E402

OUT = ROOT / "docs" / "images"
VIEWPORT = {"width": 1440, "height": 1120}
EXPERIMENT = "mfeat pix + fou"


def config(method: str, seed: int, epochs: int) -> dict[str, Any]:
    """UCI Multiple Features (built in, real data): pixel averages dominate Fourier coefficients. Their gap
    hovers around 0.15 there, so with tau 0.15 MILES acts on some epochs and not on others."""
    params = {"tau": 0.15} if method == "miles" else {}
    return {"dataset": "mfeat", "modalities": ["pix", "fou"], "method": method, "params": params, "epochs": epochs,
            "seed": seed, "device": "cpu"}


def drawn(page: Page, trace: str) -> int:
    return page.evaluate(
        "(name) => ((document.getElementById('chart-balance').data || []).find((t) => t.name === name)?.x.length) ?? 0",
        trace,
    )


def run_page(page: Page, stack: MilesStack, epochs: int, out: Path) -> None:
    run = stack.submit(config("miles", 0, epochs), name="miles tau 0.15", experiment=EXPERIMENT, tags=["readme"])
    page.goto(f"/runs/{run['id']}")
    wait_until(lambda: drawn(page, "gap δ") >= epochs * 0.55, 600, "the run to pass half of its epochs", every=0.2)
    page.wait_for_timeout(400)  # the frame that draws the last epoch received
    page.screenshot(path=str(out))


def compare_page(page: Page, stack: MilesStack, seeds: int, epochs: int, out: Path) -> None:
    runs = [
        stack.submit(config(method, seed, epochs), name=f"{method} seed {seed}", experiment=EXPERIMENT)
        for method in ("joint", "miles") for seed in range(seeds)
    ]
    for run in runs:
        stack.wait_for_status(run["id"], "succeeded", timeout=900)
    page.goto(f"/compare?ids={','.join(str(run['id']) for run in runs)}")
    page.wait_for_function(f"() => document.getElementById('chart-gap').data.length === {len(runs)}")
    page.wait_for_selector(".results-table")
    page.wait_for_timeout(400)
    page.screenshot(path=str(out), full_page=True)


def balance_chart(page: Page, stack: MilesStack, dataset: str, modalities: list[str], depths: dict[str, int], epochs: int,
                  training: dict[str, Any], out: Path) -> None:
    """The balance chart of one `joint_aux` run (no balancing schedule; ``training``: its optimizer and rate),
    once it has finished."""
    run = stack.submit({"dataset": dataset, "modalities": modalities, "method": "joint_aux", "model": {"depths": depths},
                        "epochs": epochs, "seed": 0, "device": "cpu", **training},
                       name=f"joint_aux {regime_name(modalities, depths)}", experiment=f"{dataset} {' + '.join(modalities)}")
    ended = stack.wait_for_status(run["id"], "succeeded", "failed", timeout=1800)
    if ended["status"] == "failed":
        sys.exit(f"the joint_aux run failed: {ended.get('error')}")
    page.goto(f"/runs/{run['id']}")
    wait_until(lambda: drawn(page, "gap δ") >= epochs, 120, "the balance chart to draw every epoch", every=0.2)
    page.wait_for_timeout(400)
    page.locator("figure.chart-balance").screenshot(path=str(out))


def sampled_run(stack: MilesStack) -> dict[str, Any]:
    """A run whose epochs take about a second each on two cores, so that its System card fills while it trains."""
    return stack.submit({
        "dataset": "synthetic", "dataset_params": {"dim": 256, "classes": 10, "train_size": 6000},
        "model": {"embed_dim": 128, "hidden_dim": 512}, "method": "miles", "epochs": 60, "device": "cpu",
    }, name="miles on synthetic, sampled every second", experiment="system metrics")


def workers_page(page: Page, out: Path) -> None:
    page.goto("/workers")
    page.wait_for_selector("#workers-table tr[data-status='busy'] svg.sparkline path", timeout=120_000)
    page.wait_for_timeout(400)
    bottom = page.locator("#workers-wrap").bounding_box()
    assert bottom is not None
    page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom["y"] + bottom["height"] + 24})


def system_card(page: Page, run: dict[str, Any], out: Path) -> None:
    page.goto(f"/runs/{run['id']}")
    page.wait_for_function(
        "() => ((document.getElementById('chart-system-util').data || [])[0]?.x.length ?? 0) >= 40", timeout=300_000,
    )
    page.wait_for_timeout(400)
    page.locator("#system-card").screenshot(path=str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Folder for the images (default docs/images).")
    parser.add_argument("--epochs", type=int, default=30, help="Epochs of the run photographed mid-run.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per method on the compare page.")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    parser.add_argument("--pages", default="run,compare,workers,system", help="Which images (comma-separated), or balance.")
    parser.add_argument("--balance", default="kar,pix", help="The pair of the balance image.")
    parser.add_argument("--balance-dataset", default="mfeat", help="The dataset of that pair.")
    parser.add_argument("--depth", action="append", default=[], metavar="VIEW=N", help="A view's encoder depth in it (repeatable).")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="The optimizer of the balance run.")
    parser.add_argument("--lr", type=float, default=1e-3, help="Its learning rate.")
    args = parser.parse_args()
    balance = args.balance.split(",")
    try:
        depths = parse_depths(tuple(args.depth))
    except click.BadParameter as error:
        sys.exit(error.format_message())
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("Chromium is needed: apt-get install chromium (or set CHROMIUM to its path)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="miles-screenshots-") as home:
        data = {"data_dir": os.environ["MILES_DATA_DIR"]} if os.environ.get("MILES_DATA_DIR") else {}  # avdigits' files
        stack = MilesStack(home=Path(home), database_url=migrated(f"sqlite:///{home}/miles.db"), redis=None,
                           settings={"system_interval": 1, **data})
        pages = set(args.pages.split(","))
        try:
            server, _ = stack.start("--cpu")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(base_url=server.url, viewport=VIEWPORT, color_scheme=args.scheme)
                page = context.new_page()
                started = time.monotonic()
                if "run" in pages:
                    run_page(page, stack, args.epochs, args.out / "run-page.png")
                if "compare" in pages:
                    compare_page(page, stack, args.seeds, 12, args.out / "compare.png")
                if "balance" in pages:
                    name = regime_name(balance, depths) + ("" if args.optimizer == "adam" else f"-{args.optimizer}")
                    balance_chart(page, stack, args.balance_dataset, balance, depths, args.epochs,
                                  {"optimizer": args.optimizer, "lr": args.lr}, args.out / f"balance_{name}.png")
                if pages & {"workers", "system"}:
                    run = sampled_run(stack)
                    if "system" in pages:
                        system_card(page, run, args.out / "system-card.png")
                    if "workers" in pages:  # by now with forty readings to draw
                        workers_page(page, args.out / "workers.png")
                browser.close()
            print(f"wrote {', '.join(sorted(pages))} into {args.out} in {time.monotonic() - started:.0f} s")
        finally:
            stack.close()


if __name__ == "__main__":
    main()
