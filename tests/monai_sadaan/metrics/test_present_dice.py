"""Dice over present structures only (:mod:`monai_sadaan.metrics.present_dice`), by hand."""

from __future__ import annotations

import math

import pytest
import torch

from monai_sadaan.metrics import PresentStructureDiceMetric, compute_present_dice


def test_present_dice_by_hand_and_nan_for_absent():
    pred = torch.zeros(1, 2, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2, 2)
    target[0, 0, 0] = 1  # 4 voxels
    pred[0, 0, 0, 0] = 1  # 2 voxels, both inside
    d = compute_present_dice(pred, target)
    assert d[0, 0].item() == pytest.approx(2 * 2 / (2 + 4))
    assert math.isnan(d[0, 1].item())
    m = PresentStructureDiceMetric()
    m(pred, target)
    assert m.aggregate().item() == pytest.approx(2 / 3)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"got \("):
        compute_present_dice(torch.zeros(1, 2, 3, 3, 3), torch.zeros(1, 3, 3, 3, 3))
