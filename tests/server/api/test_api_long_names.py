"""A run submitted without a name is named after its config, cut to fit the column on every backend."""

from __future__ import annotations

import numpy as np

from server.models import Run
from server.store import runs


def write_folder(root, modalities):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        arrays = {"label": np.arange(n) % 3} | {m: rng.standard_normal((n, 4)).astype(np.float32) for m in modalities}
        np.savez(root / f"{split}.npz", **arrays)


def test_a_default_name_longer_than_the_column_is_shortened(make_settings, make_client, tmp_path):
    settings = make_settings(data_dir=tmp_path / "data")
    client = make_client(settings)
    long_names = ["a" * 150 + "_audio", "b" * 150 + "_video"]
    write_folder(tmp_path / "data" / "mine", long_names)

    response = client.post("/api/v1/runs", json={"config": {
        "dataset": "folder", "data_path": str(tmp_path / "data" / "mine"), "modalities": long_names, "epochs": 1,
    }})

    assert response.status_code == 201, response.text
    name = response.json()["name"]
    assert len(name) == runs.NAME_LENGTH == Run.__table__.c.name.type.length
    assert name.startswith("miles on folder (" + long_names[0]) and name.endswith("\u2026")
    assert client.get(f"/api/v1/runs/{response.json()['id']}").json()["name"] == name
