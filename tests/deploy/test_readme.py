"""README.md keeps its promises: the two fresh-machine commands, and every setting documented."""

from __future__ import annotations

import re

from server.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def fenced_after(heading: str) -> list[str]:
    section = README.split(heading, 1)[1]
    return re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)[:1]


def test_the_readme_gives_one_command_to_run_the_product_and_one_to_run_the_tests():
    (run,) = fenced_after("## Run it (fresh machine, from a clone)")
    (tests,) = fenced_after("## Run the tests (fresh machine, from a clone)")
    assert "\n" not in run and "miles up" in run and "torch==2.13.0" in run
    assert "\n" not in tests and "pytest" in tests and ".[dev]" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and README.count("<!-- test-command -->") == 1


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `(MILES_\w+)`", README, re.MULTILINE))
    assert {f"MILES_{name.upper()}" for name in Settings.model_fields} <= documented


def test_the_readme_pictures_exist():
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).is_file(), image
