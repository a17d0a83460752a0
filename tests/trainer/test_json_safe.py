"""One way to make reported values JSON: `trainer.reporting.json_safe`, used by every reporter that writes JSON."""

from __future__ import annotations

import json
import math

from trainer.miles import conditional_utilization, miles_decision
from trainer.reporting import JsonlReporter, json_safe


def strict(text: str):
    """JSON as a browser reads it: NaN and Infinity are not JSON."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    value = {"u": {"a": math.nan, "b": 0.5}, "rates": (math.inf, 1e-3), 3: [-math.inf, "x", None, 2]}
    assert json_safe(value) == {"u": {"a": None, "b": 0.5}, "rates": [None, 1e-3], "3": [None, "x", None, 2]}


def test_json_lines_write_an_undefined_miles_decision_as_null(tmp_path):
    decision = miles_decision(conditional_utilization(0.0, {"audio": 0.3, "image": 0.1}), tau=0.2, mu=0.5)
    reporter = JsonlReporter(tmp_path / "r.jsonl")
    reporter.on_event(1, "miles.decision", decision.message(1e-3), decision.to_dict() | {"rates": [math.inf]})
    reporter.on_summary({"nested": {"delta": math.nan}})
    event, summary = (strict(line) for line in (tmp_path / "r.jsonl").read_text().splitlines())
    assert event["event"]["data"]["delta"] is None and event["event"]["data"]["utilization"] == {"audio": None, "image": None}
    assert event["event"]["data"]["rates"] == [None]
    assert summary == {"summary": {"nested": {"delta": None}}}
