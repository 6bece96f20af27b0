"""Forecast metrics (:mod:`seq_models.metrics.forecast_metrics`) by hand, with NaN and a mask; the SSIM window."""

from __future__ import annotations

import pytest
import torch

from seq_models.metrics import ForecastMetric, forecast_metrics, gaussian_window, per_sample_forecast_metrics


def test_metrics_by_hand_with_nan_and_mask():
    pred = torch.zeros(1, 2, 1, 4, 4)
    target = torch.full((1, 2, 1, 4, 4), 0.5)
    target[0, 0, 0, 0, 0] = float("nan")
    pred[0, 1] = 0.25
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[3] = False
    m = forecast_metrics(pred, target, mask)
    assert m["mae"].shape == (2, 1)
    assert m["mae"][0, 0].item() == pytest.approx(0.5) and m["mae"][1, 0].item() == pytest.approx(0.25)
    assert m["mse"][1, 0].item() == pytest.approx(0.0625)
    # identical images: SSIM 1; constant images differing in level: (2ab + c1) / (a^2 + b^2 + c1)
    same = forecast_metrics(target.nan_to_num(0.5), target.nan_to_num(0.5))
    torch.testing.assert_close(same["ssim"], torch.ones(2, 1))
    c1 = 0.01**2
    expected = (2 * 0.25 * 0.5 + c1) / (0.25**2 + 0.5**2 + c1)
    assert m["ssim"][1, 0].item() == pytest.approx(expected, rel=1e-5)
    empty = forecast_metrics(pred, torch.full_like(target, float("nan")))
    assert torch.isnan(empty["mae"]).all()


def test_ssim_window_and_metric_class():
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11) and w.sum().item() == pytest.approx(1.0) and w.argmax().item() == 60
    pred, target = torch.rand(3, 2, 2, 16, 16), torch.rand(3, 2, 2, 16, 16)
    metric = ForecastMetric("mae", reduction="none")
    metric(pred[:2], {"target": target[:2]})
    metric(pred[2:], target[2:])
    per = per_sample_forecast_metrics(pred, target)["mae"]
    torch.testing.assert_close(metric.aggregate().double(), per.mean(0))
    with pytest.raises(ValueError, match="expected metric"):
        ForecastMetric("psnr")
    with pytest.raises(ValueError, match="expected a region mask of shape"):
        forecast_metrics(pred, target, torch.ones(3, 3))
