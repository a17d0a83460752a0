"""The table of results: roles on validation, rows per method and fusion, mean and sample sd over seeds."""

from __future__ import annotations

import math

import pytest

from trainer.comparison import RunRecord, Stat, comparison_table, describe, dominance
from trainer.methods import METHODS, MethodSpec, NoParams

ids = iter(range(1, 10_000))


def run(
    method: str, *, val: dict[str, float] | None = None, test: dict[str, float] | None = None,
    last: dict[str, float] | None = None, fusion: str = "concat", seed: int = 0, status: str = "succeeded",
    modalities: tuple[str, ...] = ("audio", "video"), dataset: str = "synthetic", **config: object,
) -> RunRecord:
    """A run whose summary has these validation and test metrics (fused 0.9 on test unless given)."""
    test = {"fused": 0.9, **(test or {})} if len(modalities) > 1 else (test or {})
    summary = {f"metric/val/{m}": v for m, v in (val or {}).items()}
    summary |= {f"metric/test/{m}": v for m, v in test.items()}
    summary |= {f"final/metric/test/{m}": v for m, v in (last or {}).items()}
    number = next(ids)
    return RunRecord(
        id=number, name=f"run {number}", dataset=dataset, modalities=modalities, method=method, fusion=fusion, seed=seed,
        status=status, summary=summary if status == "succeeded" else {},
        config={"method": method, "fusion": fusion, "seed": seed, **config},
    )


def only_group(records: list[RunRecord]):
    (group,) = comparison_table(records).groups
    return group


def test_the_mean_and_the_sample_standard_deviation_over_seeds():
    two = describe([0.90, 0.94])
    assert (two.n, two.mean, two.sd) == (2, pytest.approx(0.92), pytest.approx(0.04 / math.sqrt(2)))
    assert describe([0.5, None, math.nan]) == Stat(n=1, mean=0.5, sd=None)
    assert describe([]) == Stat(n=0, mean=None, sd=None)
    assert Stat(n=2, mean=0.92, sd=0.0282843).text() == "0.920 ± 0.028"
    assert Stat(n=1, mean=0.5, sd=None).text() == "0.500"


def test_the_dominant_modality_is_chosen_on_validation_never_on_test():
    runs = [run("joint", val={"audio": 0.8, "video": 0.6}, test={"audio": 0.5, "video": 0.7}),
            run("joint", val={"audio": 0.7, "video": 0.65}, test={"audio": 0.5, "video": 0.7}, seed=1),
            run("miles", val={"audio": 0.1, "video": 0.9}, test={"audio": 0.1, "video": 0.9})]
    roles = dominance(runs)
    assert (roles.dominant, roles.weak, roles.basis) == ("audio", "video", "joint")


def test_without_a_joint_run_the_roles_come_from_every_finished_run():
    runs = [run("miles", val={"audio": 0.3, "video": 0.6}), run("miles", val={"audio": 0.9, "video": 0.1}, status="failed")]
    roles = dominance(runs)
    assert (roles.dominant, roles.weak, roles.basis) == ("video", "audio", "all")


def test_a_row_holds_the_seeds_of_a_method_and_fusion_with_delta_seed_by_seed():
    runs = [
        run("joint", seed=0, val={"audio": 0.9, "video": 0.5}, test={"fused": 0.90, "audio": 0.9, "video": 0.6},
            last={"fused": 0.80, "audio": 0.9, "video": 0.7}),
        run("joint", seed=1, val={"audio": 0.9, "video": 0.5}, test={"fused": 0.94, "audio": 0.8, "video": 0.6},
            last={"fused": 0.84, "audio": 0.7, "video": 0.7}),
    ]
    group = only_group(runs)
    assert (group.dominant, group.weak, group.metric) == ("audio", "video", "accuracy")
    (row,) = group.rows
    assert (row.method, row.fusion, row.seeds, row.label) == ("joint", "concat", 2, "")
    assert row.best.fused.mean == pytest.approx(0.92) and row.best.fused.sd == pytest.approx(0.04 / math.sqrt(2))
    assert row.best.dominant.mean == pytest.approx(0.85)
    assert row.best.delta.mean == pytest.approx(0.25)  # 0.3 and 0.2
    assert row.best.delta.sd == pytest.approx(0.1 / math.sqrt(2))
    assert row.last.fused.mean == pytest.approx(0.82)
    assert row.last.delta.mean == pytest.approx(0.1)  # 0.2 and 0.0
    assert [(r.seed, r.dominant, r.weak) for r in row.runs] == [(0, 0.9, 0.6), (1, 0.8, 0.6)]


def test_rows_of_one_method_name_the_settings_they_differ_in():
    runs = [run("miles", params={"tau": 0.1}, lr=0.01), run("miles", params={"tau": 0.1}, lr=0.01, seed=1),
            run("miles", params={"tau": 0.3}, lr=0.01), run("miles", lr=0.01),
            run("joint", lr=0.01), run("joint", lr=0.02)]
    rows = only_group(runs).rows
    assert [(r.method, r.label, len(r.runs)) for r in rows] == [
        ("joint", "lr 0.01", 1), ("joint", "lr 0.02", 1),
        ("miles", "tau 0.1", 2), ("miles", "tau 0.3", 1), ("miles", "tau default", 1),
    ]


def test_rows_run_from_the_references_to_miles_and_by_fusion():
    runs = [run(m, fusion=f) for m in ("miles", "joint_aux", "joint") for f in ("sum", "concat")]
    assert [(r.method, r.fusion) for r in only_group(runs).rows] == [
        ("joint", "concat"), ("joint", "sum"), ("joint_aux", "concat"), ("joint_aux", "sum"),
        ("miles", "concat"), ("miles", "sum"),
    ]


def test_one_pair_is_one_group_whatever_the_order_of_its_modalities():
    table = comparison_table([run("joint", modalities=("audio", "video")), run("joint", modalities=("video", "audio"), seed=1)])
    assert len(table.groups) == 1 and table.groups[0].rows[0].seeds == 2


def test_runs_not_succeeded_wait_beside_the_numbers_and_a_failed_one_keeps_its_error():
    failed = run("miles", status="failed")
    failed = RunRecord(**{**failed.__dict__, "error": "RuntimeError: out of memory"})
    runs = [run("miles", val={"audio": 0.8, "video": 0.4}), run("miles", seed=1, status="running"), failed]
    table = comparison_table(runs)
    (row,) = table.groups[0].rows
    assert (row.seeds, row.waiting, table.runs, table.counted) == (1, {"running": 1, "failed": 1}, 3, 1)
    assert [r.error for r in row.runs if r.status == "failed"] == ["RuntimeError: out of memory"]


def test_a_row_without_a_finished_run_is_shown_with_no_numbers():
    (row,) = only_group([run("joint", status="queued")]).rows
    assert (row.seeds, row.best.fused, row.waiting) == (0, Stat(n=0, mean=None, sd=None), {"queued": 1})


def test_the_final_utilization_gap_is_averaged_when_the_runs_measured_it():
    runs = [RunRecord(**{**run("miles", seed=s).__dict__, "latest": {"util/delta": gap}}) for s, gap in ((0, 0.1), (1, 0.3))]
    assert only_group(runs).rows[0].gap.mean == pytest.approx(0.2)


def test_ceilings_of_one_modality_join_the_pair_and_show_each_modality_in_its_column(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(METHODS, "solo", MethodSpec("solo", "Solo", "", NoParams, "none:None", single_modality=True))
    joint = run("joint", val={"audio": 0.9, "video": 0.5}, test={"audio": 0.85, "video": 0.3})
    ceilings = [
        run("solo", modalities=(m,), seed=seed, val={m: v}, test={m: v}, last={m: v - 0.1}, fusion="concat")
        for seed, values in ((0, {"audio": 0.9, "video": 0.7}), (1, {"audio": 0.8, "video": 0.5}))
        for m, v in values.items()
    ]
    group = only_group([joint, *ceilings])
    assert (group.dominant, group.weak) == ("audio", "video")  # from the joint run's validation, not the ceilings'
    solo, joint_row = group.rows
    assert (solo.method, solo.fusion, solo.seeds, len(solo.runs)) == ("solo", None, 2, 4)
    assert solo.best.fused.n == 0
    assert solo.best.dominant.mean == pytest.approx(0.85) and solo.best.weak.mean == pytest.approx(0.6)
    assert solo.best.delta.mean == pytest.approx(0.25)  # seed 0: 0.2, seed 1: 0.3
    assert solo.last.dominant.mean == pytest.approx(0.75)
    assert [(r.modality, r.dominant, r.weak) for r in solo.runs[:2]] == [("audio", 0.9, None), ("video", None, 0.7)]
    assert joint_row.method == "joint"


def test_ceilings_without_a_pair_make_a_group_of_their_own():
    runs = [run("joint", modalities=("audio",), val={"audio": 0.9}, test={"audio": 0.9}),
            run("joint", modalities=("video",), val={"video": 0.4}, test={"video": 0.4})]
    group = only_group(runs)
    assert (group.modalities, group.dominant, group.weak, group.rows[0].best.delta.mean) == (
        ["audio", "video"], "audio", "video", pytest.approx(0.5))


def test_a_multilabel_dataset_reads_its_metric_as_f1(monkeypatch: pytest.MonkeyPatch):
    from trainer.datasets import DATASETS

    monkeypatch.setattr(type(DATASETS["synthetic"]), "info", property(lambda self: type("Info", (), {"task": "multilabel"})()))
    assert only_group([run("joint")]).metric == "F1"
