"""The trainer is a plain PyTorch library: importing it pulls in no web, database or Celery code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("server", "worker", "web", "celery", "sqlalchemy", "fastapi", "kombu", "redis")


def test_trainer_imports_nothing_from_the_other_rooms():
    code = (
        "import sys, importlib, pkgutil, trainer\n"
        "for m in pkgutil.walk_packages(trainer.__path__, 'trainer.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted({{n.split('.')[0] for n in sys.modules}} & set({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_catalogue_and_config_do_not_load_torch():
    code = "import sys, trainer.config, trainer.methods, trainer.datasets; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_catalogue_and_config_do_not_load_what_only_preparing_or_bert_needs():
    """SciPy alone adds two seconds to the start of the server and of every `miles` command."""
    code = ("import sys, trainer.config, trainer.presets, trainer.data_cli\n"
            "print(sorted({'scipy', 'PIL', 'transformers'} & {n.split('.')[0] for n in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
