"""``aggregate_buffer``: the one way the SADAAn cumulative metrics turn what they gathered into a score."""

from __future__ import annotations

import math

import torch

from monai_sadaan.metrics import (
    AbsentCleanRateMetric,
    AbsentFalsePositiveVolumeMetric,
    PresenceAccuracyMetric,
    PresenceAUROCMetric,
    PresentStructureDiceMetric,
)
from monai_sadaan.metrics.utils import aggregate_buffer


def test_nothing_gathered_scores_nan_for_every_metric():
    for metric in (AbsentCleanRateMetric(), AbsentFalsePositiveVolumeMetric(), PresenceAccuracyMetric(),
                   PresenceAUROCMetric(), PresentStructureDiceMetric()):  # fmt: skip
        assert math.isnan(float(metric.aggregate()))


def test_nan_only_is_missing_unless_said_otherwise():
    metric = PresentStructureDiceMetric()
    metric.append(torch.tensor([[float("nan"), float("nan")]]))
    assert math.isnan(float(aggregate_buffer(metric, lambda d: torch.tensor(0.0))))
    assert float(aggregate_buffer(metric, lambda d: torch.tensor(float(d.numel())), nan_is_missing=False)) == 2.0
    metric.append(torch.tensor([[0.5, float("nan")]]))
    assert float(aggregate_buffer(metric, lambda d: torch.nanmean(d))) == 0.5


def test_absent_metrics_score_only_the_absent_pairs():
    """Two absent pairs (2 mL and 0 mL predicted) and one present pair (NaN): mean 1 mL, half of them clean."""
    pred = torch.zeros(1, 3, 4, 4)
    pred[0, 0, :2, 0] = 1
    target = torch.zeros(1, 3, 4, 4)
    target[0, 2, 0, 0] = 1
    volume, clean = AbsentFalsePositiveVolumeMetric(), AbsentCleanRateMetric()
    volume(pred, target)
    clean(pred, target)
    assert float(volume.aggregate()) == 1.0
    assert float(clean.aggregate()) == 0.5
