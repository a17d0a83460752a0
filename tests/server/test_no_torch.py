"""The command line, the server and the worker's supervisor train nothing, so they never import torch:
``miles --help`` answers at once, and only the worker processes that train hold torch in memory."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loads_torch(code: str) -> bool:
    """Whether running ``code`` in a fresh interpreter leaves ``torch`` among the imported modules."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint('torch' in sys.modules)"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_a_subprocess_can_tell_when_torch_is_loaded():
    assert loads_torch("import trainer.loop")


@pytest.mark.parametrize("module", ["server.cli", "server.app", "worker.cli", "worker.up", "worker.supervisor"])
def test_importing_the_command_line_the_server_or_the_worker_parent_loads_no_torch(module):
    assert not loads_torch(f"import {module}")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["up", "--help"], ["worker", "--help"]])
def test_the_help_of_miles_loads_no_torch(args):
    code = f"from server.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass"
    assert not loads_torch(code)
