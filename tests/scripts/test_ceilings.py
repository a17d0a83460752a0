"""``scripts/ceilings.py``: its runs take the optimizer and rate asked for, and an earlier output of
other settings is refused, never mixed in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ceilings.py"


def ceilings(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--views", "kar,pix", "--epochs", "1", "--seeds", "0", "--workers", "1", *args],
                          capture_output=True, text=True, timeout=300)


def test_sgd_runs_are_recorded_as_such_and_an_adam_output_is_not_reused_for_them(tmp_path):
    done = ceilings("--optimizer", "sgd", "--lr", "0.03")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["optimizer"], out["lr"], out["epochs"]) == ("sgd", 0.03, 1)
    assert set(out["ceilings_val"]) == {"kar", "pix"} and set(out["pairs"]) == {"kar+pix"}
    assert len(out["pairs"]["kar+pix"]["delta_curve"]) == 1
    earlier = tmp_path / "adam.json"
    earlier.write_text(json.dumps({**out, "optimizer": "adam", "lr": 0.001}))
    refused = ceilings("--optimizer", "sgd", "--lr", "0.03", "--reuse", str(earlier))
    assert refused.returncode != 0 and "its runs trained with optimizer adam, not sgd" in refused.stderr
    legacy = tmp_path / "legacy.json"  # written before the script recorded its optimizer and rate: Adam at 1e-3
    legacy.write_text(json.dumps({k: v for k, v in out.items() if k not in ("optimizer", "lr")}))
    reused = ceilings("--reuse", str(legacy))
    assert reused.returncode == 0, reused.stderr
    assert json.loads(reused.stdout)["ceilings_val"] == out["ceilings_val"]  # copied, not trained again
