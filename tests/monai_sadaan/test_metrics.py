from __future__ import annotations

import math

import pytest
import torch

from monai_sadaan.metrics import (
    AbsentCleanRateMetric,
    AbsentFalsePositiveVolumeMetric,
    PresenceAccuracyMetric,
    PresenceAUROCMetric,
    PresentStructureDiceMetric,
    compute_absent_false_positive_volume,
    compute_presence_accuracy,
    compute_present_dice,
)


def test_presence_accuracy_by_hand():
    probs = torch.tensor([[0.9, 0.2, 0.5], [0.1, 0.7, 0.49]])
    truth = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    acc = compute_presence_accuracy(probs, truth)
    assert acc.tolist() == [[1, 1, 0], [0, 1, 1]]
    m = PresenceAccuracyMetric()
    m(probs[:1], truth[:1])
    m(probs[1:], truth[1:])
    assert m.aggregate().item() == pytest.approx(4 / 6)


def test_presence_auroc_perfect_and_inverted_and_single_class():
    truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    m = PresenceAUROCMetric()
    m(torch.tensor([[0.8, 0.1], [0.3, 0.9]]), truth)
    assert m.aggregate().item() == pytest.approx(1.0)
    m.reset()
    m(torch.tensor([[0.1, 0.8], [0.9, 0.3]]), truth)
    assert m.aggregate().item() == pytest.approx(0.0)
    m.reset()
    m(torch.tensor([[0.1, 0.8]]), torch.ones(1, 2))
    assert math.isnan(m.aggregate().item())


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


@pytest.mark.parametrize(
    "fn, a, b",
    [
        (compute_presence_accuracy, torch.zeros(2, 3), torch.zeros(2, 4)),
        (compute_present_dice, torch.zeros(1, 2, 3, 3, 3), torch.zeros(1, 3, 3, 3, 3)),
        (compute_absent_false_positive_volume, torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4)),
    ],
)
def test_shape_mismatch_names_both_shapes(fn, a, b):
    with pytest.raises(ValueError, match=r"got \("):
        fn(a, b)
