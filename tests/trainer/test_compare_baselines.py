"""``miles compare`` with the baselines: unimodal ceilings, MSES and MSLR rows from real runs of each."""

from __future__ import annotations

import json
import subprocess

from tests.services import MILES
from tests.trainer.test_compare_cli import TINY


def test_a_grid_of_baselines_gives_a_row_each_and_the_ceilings_of_each_modality_alone(tmp_path):
    out = tmp_path / "grid"
    done = subprocess.run(
        [MILES, "compare", *TINY, "--methods", "joint,unimodal,mses,mslr_smooth", "--param", 'mslr_smooth.lrs={"strong": 0.003, "weak": 0.001}',
         "--fusions", "concat", "--seeds", "0", "--epochs", "2", "--jobs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    cells = {json.loads(path.read_text())["config"]["method"]: json.loads(path.read_text()) for path in (out / "cells").glob("*.json")}
    assert set(cells) == {"joint", "unimodal", "mses", "mslr_smooth"}
    alone = sorted(json.loads(p.read_text())["config"]["modalities"] for p in (out / "cells").glob("unimodal*.json"))
    assert alone == [["strong"], ["weak"]]  # one cell per modality of the pair
    (group,) = json.loads((out / "table.json").read_text())["groups"]
    rows = {row["method"]: row for row in group["rows"]}
    assert list(rows) == ["unimodal", "joint", "mses", "mslr_smooth"]  # ceilings first
    ceiling = rows["unimodal"]
    assert ceiling["fusion"] is None and ceiling["best"]["fused"]["n"] == 0
    assert ceiling["best"]["dominant"]["n"] == ceiling["best"]["weak"]["n"] == 1
    for method in ("mses", "mslr_smooth"):
        assert rows[method]["seeds"] == 1 and rows[method]["best"]["fused"]["mean"] is not None
