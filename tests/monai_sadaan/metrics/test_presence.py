"""Presence accuracy and AUROC of :mod:`monai_sadaan.metrics.presence`, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from monai_sadaan.metrics import PresenceAccuracyMetric, PresenceAUROCMetric, compute_presence_accuracy


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


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"got \("):
        compute_presence_accuracy(torch.zeros(2, 3), torch.zeros(2, 4))
