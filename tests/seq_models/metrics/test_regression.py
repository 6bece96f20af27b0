"""Masked regression losses and metrics (:mod:`seq_models.metrics.regression`): padding and warm-up steps left out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq_models.data.series import SeriesRegressionData
from tests.seq_models.small_series import ar1_series


def test_masked_loss_ignores_padding():
    from seq_models.metrics.regression import MaskedMSELoss, masked_mse

    pred = torch.tensor([[1.0, 2.0, 50.0], [0.0, 9.0, 9.0]])
    target = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    lengths = torch.tensor([2, 1])
    # valid errors: 1, 0, -2 -> (1 + 0 + 4) / 3
    torch.testing.assert_close(masked_mse(pred, target, lengths), torch.tensor(5.0 / 3.0))
    loss = MaskedMSELoss()
    torch.testing.assert_close(loss(pred, {"target": target, "lengths": lengths}), torch.tensor(5.0 / 3.0))
    torch.testing.assert_close(loss(pred, target), ((pred - target) ** 2).mean())
    # warm-up steps left out: row 0 keeps step 1 (error 0); row 1 (length 1 <= skip) keeps its only step (error -2)
    torch.testing.assert_close(masked_mse(pred, target, lengths, skip_first=1), torch.tensor(4.0 / 2.0))
    torch.testing.assert_close(MaskedMSELoss(skip_first=2)(pred, target), ((pred - target)[:, 2:] ** 2).mean())
    with pytest.raises(ValueError, match=r"expected target of the prediction's shape \[2, 3\], got \[2, 2\]"):
        masked_mse(pred, target[:, :2])


def test_validation_rmse_without_lead_in_scores_the_validation_steps_once():
    from seq_models.metrics.regression import MaskedRMSE

    data = SeriesRegressionData(ar1_series(100), test_size=10)
    window, val_size = 8, 10
    items = list(data.val_windows(window, val_size))
    target = torch.stack([torch.as_tensor(i["target"]) for i in items])
    lengths = torch.as_tensor([int(i["lengths"]) for i in items])
    # the steps kept after each window's lead-in are the validation part, each once
    start, stride = data.train_end - val_size - window // 2, window // 2
    scored = [start + b * stride + t for b in range(len(items)) for t in range(window // 2, int(lengths[b]))]
    assert sorted(scored) == list(range(data.train_end - val_size, data.train_end))
    second = slice(start + stride + window // 2, start + stride + window)
    np.testing.assert_allclose(target[1, window // 2 :].numpy(), data.targets[second])
    # errors only in the lead-in: zero RMSE when it is skipped, not otherwise
    pred = target.clone()
    pred[:, : window // 2] += 5.0
    out = {"target": target, "lengths": lengths}
    skipping, counting = MaskedRMSE(skip_first=window // 2), MaskedRMSE()
    for m in (skipping, counting):
        m.update((pred, out))
    assert skipping.compute() == pytest.approx(0.0, abs=1e-6) and counting.compute() > 1.0
    with pytest.raises(ValueError, match="skip_first >= 0"):
        MaskedRMSE(skip_first=-1)
