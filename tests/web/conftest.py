"""Browser fixtures: Debian's Chromium driven by Playwright, against real `miles server` and `miles worker` processes.

One server and one CPU worker (local mode: SQLite, no Redis, as `miles up` runs them)
serve every browser test of the session. Each test gets a fresh browser context whose
console errors and uncaught exceptions fail the test, Content-Security-Policy
violations included (Chromium reports them as console errors).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import ROOT, migrated, need
from tests.services import MilesStack, tiny_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}
STREAM_LIFETIME = 2  # seconds


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    need(Path(CHROMIUM).is_file(), "Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[MilesStack]:
    """`miles server` and `miles worker --cpu` on one SQLite file (local mode), for the whole session."""
    home = tmp_path_factory.mktemp("dashboard")
    # Streams live 2 s, so that every page watching a run must reconnect (and resume) a few times; system
    # metrics every second, so that a run of a few seconds fills its System card.
    stack = MilesStack(
        home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None,
        settings={"stream_lifetime": STREAM_LIFETIME, "system_interval": 1},
    )
    failed_before = request.session.testsfailed
    try:
        stack.start("--cpu")
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            for process in stack.processes():
                print(f"\n===== {process.name} log ({process.log_path}) =====\n{process.log()[-6000:]}")
        stack.close()


@dataclass
class Console:
    """What a page logged as an error; `expect` lets a test name errors it causes on purpose."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """An error matching ``pattern`` is part of the test (e.g. the 422 of an invalid form)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(p.search(error) for p in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, dashboard: MilesStack, console: Console) -> Iterator[Page]:
    """A page in a fresh context whose base URL is the dashboard; fails the test on any console error."""
    assert dashboard.server is not None
    context = browser.new_context(base_url=dashboard.server.url, viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    yield page
    context.close()
    assert not console.unexpected(), "the page logged errors:\n" + "\n".join(console.unexpected())


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact (test-artifacts/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class FinishedRuns:
    """Runs that trained to the end: MILES with seeds 0 and 1, joint with seed 0, in one experiment."""

    miles: tuple[dict[str, object], dict[str, object]]
    joint: dict[str, object]
    experiment_id: int


@pytest.fixture(scope="session")
def finished_runs(dashboard: MilesStack) -> FinishedRuns:
    submitted = [
        dashboard.submit(tiny_config(epochs=3, method=method, seed=seed), name=f"{method} seed {seed}", experiment="browser tests")
        for method, seed in (("miles", 0), ("miles", 1), ("joint", 0))
    ]
    done = [dashboard.wait_for_status(run["id"], "succeeded", "failed", timeout=120) for run in submitted]
    assert all(run["status"] == "succeeded" for run in done), [run["error"] for run in done]
    return FinishedRuns(miles=(done[0], done[1]), joint=done[2], experiment_id=int(done[0]["experiment_id"]))


@pytest.fixture(scope="session")
def swapped_runs(dashboard: MilesStack) -> tuple[dict[str, object], dict[str, object]]:
    """Two finished runs of one setting, naming the same modalities in the two orders (as the form and
    the command line may): strong+weak and weak+strong."""
    submitted = [
        dashboard.submit(tiny_config(epochs=2, method="joint", modalities=pair), name=f"joint {'+'.join(pair)}",
                         experiment="swapped modalities")
        for pair in (["strong", "weak"], ["weak", "strong"])
    ]
    done = [dashboard.wait_for_status(run["id"], "succeeded", "failed", timeout=120) for run in submitted]
    assert all(run["status"] == "succeeded" for run in done), [run["error"] for run in done]
    return done[0], done[1]
