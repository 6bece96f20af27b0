"""The NaN-aware forecast loss (:mod:`seq_models.losses.forecast_loss`) by hand: MAE, gradient difference,
component and step weights."""

from __future__ import annotations

import pytest
import torch

from seq_models.losses import NaNAwareForecastLoss, nan_gradient_difference, nan_mae


def test_nan_mae_and_gradient_difference_by_hand():
    pred = torch.tensor([[0.0, 1.0, 0.5]])
    target = torch.tensor([[0.5, float("nan"), 0.0]])
    assert nan_mae(pred, target).item() == pytest.approx(0.5)
    # only the horizontal pair (0, 1) would need both valid: none of the two pairs is valid
    assert nan_gradient_difference(pred[None], target[None]).item() == 0.0
    p = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    t = torch.tensor([[[0.0, 0.5], [0.0, 0.0]]])
    # horizontal: |0.5-1| and |0-0|; vertical: |0.5-1| and |0-0| -> 1.0 / 4
    assert nan_gradient_difference(p, t).item() == pytest.approx(0.25)
    assert nan_mae(pred, torch.full_like(pred, float("nan"))).item() == 0.0


def test_forecast_loss_components_and_weighting():
    pred = torch.rand(2, 3, 2, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 2, 8, 8)
    target[0, 0, 0, :4] = float("nan")
    out = NaNAwareForecastLoss(gdl_weight=0.5)(pred, {"target": target})
    assert out["total"].item() == pytest.approx(out["mae"].item() + 0.5 * out["gdl"].item(), rel=1e-6)
    out["total"].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 0, 0, :4].abs().sum() == 0
    with pytest.raises(ValueError, match="expected a target of the forecast's shape"):
        NaNAwareForecastLoss()(pred, target[:, :2])


def test_forecast_loss_step_weights():
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 2, 8, 8)
    target = torch.rand(2, 3, 2, 8, 8)
    target[0, 1, 0, :4] = float("nan")
    plain = NaNAwareForecastLoss(gdl_weight=0.5)(pred, target)
    weighted = NaNAwareForecastLoss(gdl_weight=0.5, step_weights=[2.0, 1.0, 0.0])(pred, target)
    per_step = [nan_mae(pred[:, k], target[:, k]) + 0.5 * nan_gradient_difference(pred[:, k], target[:, k]) for k in range(3)]
    assert weighted["total"].item() == pytest.approx(((2 * per_step[0] + per_step[1]) / 3).item(), rel=1e-6)
    # the reported components stay the unweighted ones
    assert weighted["mae"].item() == pytest.approx(plain["mae"].item()) and weighted["gdl"].item() == pytest.approx(plain["gdl"].item())
    # equal weights without NaN: the same total as no weights
    clean = torch.rand(2, 3, 2, 8, 8)
    a = NaNAwareForecastLoss(gdl_weight=0.1)(pred, clean)["total"]
    b = NaNAwareForecastLoss(gdl_weight=0.1, step_weights=[1, 1, 1])(pred, clean)["total"]
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    with pytest.raises(ValueError, match="expected 3 step_weights"):
        NaNAwareForecastLoss(step_weights=[1.0, 1.0])(pred, target)
    with pytest.raises(ValueError, match="non-negative step_weights"):
        NaNAwareForecastLoss(step_weights=[1.0, -1.0])
