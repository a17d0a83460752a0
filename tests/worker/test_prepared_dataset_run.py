"""A prepared dataset trained by a real worker: submitted with a preset to `miles server`, streamed from disk."""

from __future__ import annotations

import pytest

from tests.conftest import migrated
from tests.services import MilesStack, training_epochs
from tests.trainer.datasets.releases import write_luma
from trainer.datasets import luma
from trainer.datasets.preparation import prepare

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_luma_run_with_its_preset_trains_on_a_worker_streaming_from_the_prepared_folder(tmp_path):
    data = tmp_path / "data"
    settings = luma.PrepareSettings(samples_per_class=8, val_size=6, test_size=6)
    prepare(luma.preparation(write_luma(tmp_path / "release"), settings), data / "luma")
    home = tmp_path / "home"
    home.mkdir()
    stack = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None,
                       settings={"data_dir": str(data)})
    with stack.serving():
        run = stack.submit({
            "preset": "luma", "data_path": "luma", "epochs": 2, "batch_size": 8, "device": "cpu", "params": {"tau": 0.0},
            "performance": {"data_loading": "stream", "loader_workers": 2},
        })
        messages = list(stack.stream(run["id"]))
        finished = stack.run(run["id"])
    assert finished["status"] == "succeeded", finished["error"]
    assert training_epochs(messages) == [1, 2]
    events = [m.data for m in messages if m.event == "run_event"]
    started = next(e for e in events if e["kind"] == "run.started")
    assert "streaming from disk with 2 loader workers" in started["message"] and "12 train / 6 val / 6 test" in started["message"]
    assert any(e["kind"] == "miles.decision" for e in events)
    assert {"metric/test/fused", "metric/test/audio", "metric/test/image"} <= set(finished["summary"])
    assert finished["config"]["model"]["encoders"] == {"audio": "resnet6", "image": "resnet6"}
