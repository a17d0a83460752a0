"""Reporters: JSON lines a program can read, and lines a person can read."""

from __future__ import annotations

import io
import json
import math

from trainer.reporting import (
    ConsoleReporter,
    JsonlReporter,
    MemoryReporter,
    MultiReporter,
    Reporter,
    epoch_line,
)


def test_json_lines_hold_epochs_events_and_a_final_summary(tmp_path):
    reporter = JsonlReporter(tmp_path / "r.jsonl")
    reporter.on_epoch(1, {"loss/train": 0.5, "util/delta": math.nan})
    reporter.on_event(1, "miles.decision", "MILES slowed a", {"slowed": "a"})
    reporter.on_summary({"best_epoch": 1})
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert lines == [
        {"epoch": 1, "metrics": {"loss/train": 0.5, "util/delta": None}},
        {"event": {"epoch": 1, "kind": "miles.decision", "message": "MILES slowed a", "data": {"slowed": "a"}}},
        {"summary": {"best_epoch": 1}},
    ]


def test_test_metrics_reported_after_training_are_records_of_their_own_kind(tmp_path):
    reporter = JsonlReporter(tmp_path / "r.jsonl")
    reporter.on_epoch(1, {"loss/train": 0.5, "metric/val/fused": 0.7})
    reporter.on_epoch(2, {"loss/train": 0.4, "metric/val/fused": 0.6})
    reporter.on_epoch(2, {"metric/test/fused": 0.65, "loss/test": 0.45})  # the last epoch's weights
    reporter.on_epoch(1, {"metric/test/fused": 0.69, "loss/test": 0.41})  # the best epoch's weights
    reporter.on_summary({"best_epoch": 1})
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines if "epoch" in line] == [1, 2]
    assert [line["test"] for line in lines if "test" in line] == [
        {"epoch": 2, "metrics": {"metric/test/fused": 0.65, "loss/test": 0.45}},
        {"epoch": 1, "metrics": {"metric/test/fused": 0.69, "loss/test": 0.41}},
    ]


def test_the_console_shows_one_line_per_epoch_and_every_miles_action():
    stream = io.StringIO()
    reporter = ConsoleReporter(2, ["audio", "image"], file=stream)
    reporter.on_epoch(1, {"loss/train": 1.0, "loss/val": 0.9, "metric/val/fused": 0.8,
                          "metric/val/audio": 0.4, "metric/val/image": 0.7, "util/delta": 0.375})
    reporter.on_event(1, "miles.decision", "MILES slowed image to 5.00e-04", {"slowed": "image"})
    reporter.on_event(1, "miles.decision", "MILES kept every rate", {"slowed": None})
    reporter.on_summary({})
    text = stream.getvalue()
    assert "epoch 1/2  loss train 1.000 val 0.900  val fused 0.800 | audio 0.400 image 0.700  gap 0.375" in text
    assert "MILES slowed image" in text and "kept every rate" not in text


def test_every_reporter_satisfies_the_protocol_and_multi_stops_when_any_asks():
    class Stop(MemoryReporter):
        def should_stop(self) -> bool:
            return True

    both = MultiReporter(MemoryReporter(), Stop())
    assert isinstance(both, Reporter) and both.should_stop()
    assert epoch_line(3, 10, {}, []) == "epoch  3/10"
