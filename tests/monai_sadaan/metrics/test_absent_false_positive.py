"""False-positive volume and clean rate on absent structures (:mod:`monai_sadaan.metrics.absent_false_positive`)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_sadaan.metrics import (
    AbsentCleanRateMetric,
    AbsentFalsePositiveVolumeMetric,
    compute_absent_false_positive_volume,
)


def test_false_positive_volume_only_on_absent():
    pred = torch.zeros(1, 2, 4, 4, 4)
    target = torch.zeros(1, 2, 4, 4, 4)
    target[0, 0, :2] = 1  # structure 0 present
    pred[0, 0, :2] = 1
    pred[0, 1, 0, 0, :3] = 1  # 3 voxels on absent structure 1
    fp = compute_absent_false_positive_volume(pred, target, voxel_volume=0.5)
    assert math.isnan(fp[0, 0].item())
    assert fp[0, 1].item() == pytest.approx(1.5)
    m = AbsentFalsePositiveVolumeMetric(voxel_volume=2.0)
    m(pred, target)
    assert m.aggregate().item() == pytest.approx(6.0)
    clean = AbsentCleanRateMetric()
    clean(pred, target)
    clean(torch.zeros_like(pred), target)
    assert clean.aggregate().item() == pytest.approx(0.5)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"got \("):
        compute_absent_false_positive_volume(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
