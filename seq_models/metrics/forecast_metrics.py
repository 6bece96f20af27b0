"""Forecast scores per lead time and per channel, NaN-aware, inside a region mask: MAE, MSE and SSIM.

SSIM uses an 11-pixel Gaussian window (sigma 1.5) and the usual constants for data range 1. Missing pixels
(NaN in the forecast or the truth, or outside the mask) are left out everywhere: the local SSIM statistics are
normalised convolutions over the valid pixels only, and the SSIM map is averaged over valid pixels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from monai.metrics import CumulativeIterationMetric

__all__ = ["ForecastMetric", "forecast_metrics", "per_sample_forecast_metrics", "gaussian_window"]

_EPS = 1e-8


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1D Gaussian ``(size,)``, float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2D Gaussian ``(size, size)`` (the outer product of the 1D window the SSIM applies separably)."""
    g = _gaussian_1d(size, sigma)
    return (g[:, None] * g[None, :]).float()


def _valid_mask(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(
            f"expected forecast and truth of the same shape (B, K, C, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    valid = ~(torch.isnan(pred) | torch.isnan(target))
    if mask is not None:
        mask = torch.as_tensor(mask, device=pred.device).bool()
        if mask.shape != pred.shape[-2:]:
            raise ValueError(f"expected a region mask of shape {tuple(pred.shape[-2:])}, got {tuple(mask.shape)}")
        valid = valid & mask
    return valid


def _ssim_map(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """SSIM map of ``(N, 1, H, W)`` images over valid pixels (normalised convolution).

    ``window`` is the 1D Gaussian: the 2D window is its outer product, applied as a row pass then a column pass
    (zero padding, the same result as the 2D convolution at a fifth of the cost for 11 taps).
    """
    v = valid.to(x.dtype)
    x, y = torch.nan_to_num(x) * v, torch.nan_to_num(y) * v
    g = window.to(x)
    wx, wy = g[None, None, None, :], g[None, None, :, None]
    pad = window.shape[-1] // 2

    def conv(a: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(a, wx, padding=(0, pad)), wy, padding=(pad, 0))

    weight = conv(v).clamp_min(_EPS)
    mu_x, mu_y = conv(x) / weight, conv(y) / weight
    var_x = (conv(x * x) / weight - mu_x**2).clamp_min(0)
    var_y = (conv(y * y) / weight - mu_y**2).clamp_min(0)
    cov = conv(x * y) / weight - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def per_sample_forecast_metrics(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, window_size: int = 11, sigma: float = 1.5
) -> dict[str, torch.Tensor]:
    """Scores of each sample: ``{"mae", "mse", "ssim", "count"}``, each ``(B, K, C)``; NaN where no pixel is valid.

    Args:
        pred, target: ``(B, K, C, H, W)``.
        mask: region mask ``(H, W)`` (True inside), or ``None`` for the whole frame.
    """
    valid = _valid_mask(pred, target, mask)
    count = valid.sum(dim=(-2, -1)).to(torch.float64)
    p, t = torch.nan_to_num(pred).double(), torch.nan_to_num(target).double()
    err = (p - t) * valid
    denom = count.clamp_min(1)
    mae = err.abs().sum(dim=(-2, -1)) / denom
    mse = (err**2).sum(dim=(-2, -1)) / denom
    b, k, c, h, w = pred.shape
    smap = _ssim_map(p.reshape(-1, 1, h, w), t.reshape(-1, 1, h, w), valid.reshape(-1, 1, h, w), _gaussian_1d(window_size, sigma))
    ssim = (smap.reshape(b, k, c, h, w) * valid).sum(dim=(-2, -1)) / denom
    empty = count == 0
    nan = torch.tensor(math.nan, dtype=torch.float64, device=pred.device)
    return {
        "mae": torch.where(empty, nan, mae),
        "mse": torch.where(empty, nan, mse),
        "ssim": torch.where(empty, nan, ssim),
        "count": count,
    }


def forecast_metrics(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, window_size: int = 11, sigma: float = 1.5
) -> dict[str, torch.Tensor]:
    """Scores per lead time and channel, ``{"mae", "mse", "ssim"}`` each ``(K, C)``, pooled over the batch:
    every valid pixel counts once (samples with more valid pixels weigh more)."""
    per = per_sample_forecast_metrics(pred, target, mask, window_size, sigma)
    count = per["count"]
    total = count.sum(0)
    out = {}
    for key in ("mae", "mse", "ssim"):
        weighted = (torch.nan_to_num(per[key]) * count).sum(0)
        out[key] = torch.where(total > 0, weighted / total.clamp_min(1), torch.full_like(total, math.nan)).float()
    return out


class ForecastMetric(CumulativeIterationMetric):
    """MONAI metric over forecasts ``(B, K, C, H, W)``: one of ``"mae"``, ``"mse"``, ``"ssim"``.

    ``aggregate()`` returns the mean over samples per lead time and channel ``(K, C)``
    (``reduction="none"``) or its mean over both, a scalar (``reduction="mean"``, what ignite handlers log).

    Args:
        metric: ``"mae"``, ``"mse"`` or ``"ssim"``.
        mask: region mask ``(H, W)`` or ``None``.
        reduction: ``"mean"`` or ``"none"``.
    """

    def __init__(self, metric: str = "mae", mask: torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if metric not in ("mae", "mse", "ssim"):
            raise ValueError(f"expected metric 'mae', 'mse' or 'ssim', got {metric!r}")
        if reduction not in ("mean", "none"):
            raise ValueError(f"expected reduction 'mean' or 'none', got {reduction!r}")
        self.metric, self.mask, self.reduction = metric, mask, reduction

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if isinstance(y, dict):
            y = y["target"]
        if isinstance(y_pred, (list, tuple)):  # MONAI may decollate into per-sample items
            y_pred, y = torch.stack(list(y_pred)), torch.stack(list(y))
        if y_pred.ndim == 4:
            y_pred, y = y_pred[None], y[None]
        return per_sample_forecast_metrics(y_pred, y, self.mask)[self.metric]

    def __call__(self, y_pred: Any, y: Any = None, **kwargs: Any) -> Any:
        if isinstance(y_pred, (list, tuple)):
            y_pred = torch.stack([torch.as_tensor(p) for p in y_pred])
            y = torch.stack([torch.as_tensor(t) for t in y])
        if isinstance(y, dict):
            y = y["target"]
        result = self._compute_tensor(y_pred, y)
        self.extend(result)
        return result

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"expected buffered scores, got {type(data).__name__}: call the metric on forecasts first")
        per_lead = torch.nanmean(data, dim=0)
        return per_lead if self.reduction == "none" else torch.nanmean(per_lead)
