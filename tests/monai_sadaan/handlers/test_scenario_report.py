from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from monai_sadaan.handlers import ScenarioMetricsReport


def _case(present_mask: list[bool], predicted: list[bool], size: int = 4):
    s = len(present_mask)
    target = torch.zeros(1, s, size, size, size)
    pred = torch.zeros(1, s, size, size, size)
    for j, (p, q) in enumerate(zip(present_mask, predicted)):
        if p:
            target[0, j, :2] = 1
        if q:
            pred[0, j, :2] = 1
    return target, pred


def test_report_by_hand(tmp_path):
    rep = ScenarioMetricsReport(tmp_path, ["a", "b"])
    # normal case: both present, both predicted exactly, presence right
    t, p = _case([True, True], [True, True])
    rep.add_batch(torch.tensor([[0.9, 0.8]]), p, t, torch.tensor([[1.0, 1.0]]), ["normal"], ["c0"], [0.5])
    # resection of b: b absent; model calls it present (wrong) and predicts 32 voxels of it
    t, p = _case([True, False], [True, True])
    rep.add_batch(torch.tensor([[0.9, 0.7]]), p, t, torch.tensor([[1.0, 0.0]]), ["resection"], ["c1"], [0.5])
    summary = {r["scenario"]: r for r in rep.write()}
    assert summary["normal"]["presence_accuracy"] == 1.0
    assert summary["normal"]["mean_dice_present"] == pytest.approx(1.0)
    assert math.isnan(summary["normal"]["absent_clean_rate"])
    assert summary["resection"]["presence_accuracy"] == 0.5
    assert summary["resection"]["absent_structures"] == 1
    assert summary["resection"]["absent_clean_rate"] == 0.0
    assert summary["resection"]["mean_fp_volume_ml_absent"] == pytest.approx(32 * 0.5)
    assert summary["all"]["cases"] == 2 and summary["all"]["presence_accuracy"] == 0.75
    # AUROC over the resection case: present a=0.9 vs absent b=0.7 -> ranked right
    assert summary["resection"]["presence_auroc"] == pytest.approx(1.0)
    with open(tmp_path / "per_scenario.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["scenario"] for r in rows] == ["normal", "resection", "all"]
    assert json.loads((tmp_path / "per_scenario.json").read_text())[1]["scenario"] == "resection"
    assert (tmp_path / "per_scenario.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "per_case.csv") as f:
        cases = list(csv.DictReader(f))
    assert len(cases) == 4
    # each _case mask covers 2 of 4 slices of a 4^3 grid: 32 voxels; c1's b is absent but predicted
    by_key = {(r["case"], r["structure"]): r for r in cases}
    assert by_key[("c1", "b")]["target_voxels"] == "0" and by_key[("c1", "b")]["predicted_voxels"] == "32"
    assert by_key[("c0", "a")]["target_voxels"] == "32" and by_key[("c0", "a")]["predicted_voxels"] == "32"


def test_report_rejects_wrong_structure_count(tmp_path):
    rep = ScenarioMetricsReport(tmp_path, ["a", "b", "c"])
    t, p = _case([True, True], [True, True])
    with pytest.raises(ValueError, match="expected presence for 3 structures, got 2"):
        rep.add_batch(torch.tensor([[0.9, 0.8]]), p, t, torch.tensor([[1.0, 1.0]]))
