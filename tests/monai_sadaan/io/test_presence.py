"""Presence rows and the presence report of :mod:`monai_sadaan.io.presence`: volumes from the mask, JSON and CSV
read back, refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from monai_sadaan.io import DEFAULT_STRUCTURE_NAMES, presence_rows, read_presence_report, write_presence_report
from tests.monai_sadaan.io.small_case import AFFINE, PRESENCE, VOXEL_ML, small_labelmap


# ---------------------------------------------------------------- presence rows / report


def test_presence_rows_volumes_are_computed_from_the_mask():
    rows = presence_rows(small_labelmap(), AFFINE, PRESENCE)
    vols = {r.structure: r.volume_ml for r in rows}
    assert vols["left_kidney"] == pytest.approx(8 * VOXEL_ML)
    assert vols["liver"] == pytest.approx(6 * VOXEL_ML)
    assert vols["pancreas"] == pytest.approx(1 * VOXEL_ML)
    assert vols["right_kidney"] == 0.0 and vols["spleen"] == 0.0
    assert [r.present for r in rows] == [True, False, True, False, True]


def test_presence_rows_from_vectors_match_rows_by_name():
    by_name = presence_rows(small_labelmap(), AFFINE, list(reversed(PRESENCE)))  # order does not matter with names
    vectors = {
        "presence_probability": torch.tensor([[0.97, 0.04, 0.99, 0.12, 0.61]]),  # [1, S] batch of one
        "confidence": np.array([0.9, 0.8, 0.95, 0.7, 0.4]),
    }
    from_vectors = presence_rows(small_labelmap(), AFFINE, vectors, threshold=0.5)
    assert [r.structure for r in by_name] == list(DEFAULT_STRUCTURE_NAMES)
    for a, b in zip(by_name, from_vectors):
        assert a.structure == b.structure and a.present == b.present and a.volume_ml == b.volume_ml
        assert a.presence_probability == pytest.approx(b.presence_probability)
    # the threshold decides the call when no "present" is given
    high = presence_rows(small_labelmap(), AFFINE, vectors, threshold=0.98)
    assert [r.present for r in high] == [False, False, True, False, False]


@pytest.mark.parametrize(
    "presence, message",
    [
        (PRESENCE[:4], r"missing \['pancreas'\]"),
        ([dict(PRESENCE[0], presence_probability=1.2)] + PRESENCE[1:], r"presence_probability of 'left_kidney' in \[0, 1\]"),
        ({"presence_probability": [0.5] * 4, "confidence": [0.5] * 5}, r"shape \[5\] .* got shape \(4,\)"),
        (PRESENCE + [dict(PRESENCE[0], structure="heart")], r"unknown \['heart'\]"),
    ],
)
def test_presence_rows_reject_bad_input(presence, message):
    with pytest.raises(ValueError, match=message):
        presence_rows(small_labelmap(), AFFINE, presence)


def test_presence_report_json_and_csv_round_trip(tmp_path):
    rows = presence_rows(small_labelmap(), AFFINE, PRESENCE)
    write_presence_report(rows, tmp_path / "c_presence.json", tmp_path / "c_presence.csv", "c", {"label_map": "x"})
    doc = read_presence_report(tmp_path / "c_presence.json")
    assert doc["case"] == "c" and doc["files"] == {"label_map": "x"}
    assert doc["structures"] == rows
    raw = json.loads((tmp_path / "c_presence.json").read_text())
    assert raw["structures"][1] == {
        "structure": "right_kidney", "label": 2, "present": False,
        "presence_probability": 0.04, "confidence": 0.8, "volume_ml": 0.0,
    }  # fmt: skip
    with open(tmp_path / "c_presence.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["structure", "label", "present", "presence_probability", "confidence", "volume_ml"]
    assert [r["present"] for r in table] == ["true", "false", "true", "false", "true"]
    assert float(table[0]["volume_ml"]) == pytest.approx(8 * VOXEL_ML, abs=1e-4)
    assert float(table[4]["presence_probability"]) == pytest.approx(0.61)


def test_presence_report_rejects_incomplete_rows(tmp_path):
    with pytest.raises(ValueError, match="volume_ml"):
        write_presence_report([{"structure": "liver", "label": 3, "present": True}], tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


def test_withhold_presence_calls_only_on_a_not_ct_flag(tmp_path):
    from monai_sadaan.io import withheld_call_reasons, withhold_presence_calls

    lm = small_labelmap()
    rows = presence_rows(lm, AFFINE, PRESENCE)
    geometry = [{"code": "implausible_spacing", "message": "odd"}]
    same_lm, same_rows = withhold_presence_calls(lm, rows, geometry)
    assert same_lm is lm and same_rows == rows and withheld_call_reasons(geometry) == []
    flags = [*geometry, {"code": "no_air", "message": "no air"}]
    assert withheld_call_reasons(flags) == ["no_air"]
    empty, withheld = withhold_presence_calls(lm, rows, flags)
    assert empty.shape == lm.shape and empty.dtype == lm.dtype and not empty.any()
    assert [r.present for r in withheld] == [None] * len(rows)
    assert [r.volume_ml for r in withheld] == [0.0] * len(rows)
    assert [r.presence_probability for r in withheld] == [r.presence_probability for r in rows]
    # presence_rows keeps a withheld call of finished rows (it does not threshold it again)
    assert [r.present for r in presence_rows(empty, AFFINE, withheld)] == [None] * len(rows)
    # the report never carries a call its flags withhold, even when handed rows with calls
    write_presence_report(rows, tmp_path / "p.json", tmp_path / "p.csv", "c", input_flags=flags)
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["calls_withheld"] == ["no_air"] and {r["present"] for r in doc["structures"]} == {None}
    with open(tmp_path / "p.csv", newline="") as f:
        assert {r["present"] for r in csv.DictReader(f)} == {"withheld"}


def test_a_present_call_without_a_voxel_is_named(tmp_path):
    from monai_sadaan.io.presence import present_without_voxels

    lm = small_labelmap()
    lm[lm == 5] = 0  # the pancreas is called present (p 0.61) but its one voxel is gone
    rows = presence_rows(lm, AFFINE, PRESENCE)
    assert present_without_voxels(rows) == ["pancreas"]
    write_presence_report(rows, tmp_path / "c_presence.json", input_flags=[{"code": "no_air", "message": "no air"}])
    raw = json.loads((tmp_path / "c_presence.json").read_text())
    # the calls are withheld on a not-CT image: nothing is called present, so nothing is unlocalised
    assert raw["present_without_voxels"] == [] and raw["warnings"] == ["no_air: no air"]
    write_presence_report(rows, tmp_path / "c_presence.json", input_flags=[{"code": "odd", "message": "odd"}])
    raw = json.loads((tmp_path / "c_presence.json").read_text())
    assert raw["present_without_voxels"] == ["pancreas"]
    assert raw["warnings"] == [
        "odd: odd",
        "present_without_voxels: pancreas is called present (probability 0.610) but no voxel of it is in the label "
        "map; where it lies is not known",
    ]
    # with every present structure painted there is nothing to say
    write_presence_report(presence_rows(small_labelmap(), AFFINE, PRESENCE), tmp_path / "d_presence.json")
    raw = json.loads((tmp_path / "d_presence.json").read_text())
    assert raw["present_without_voxels"] == [] and raw["warnings"] == []
