"""losses of seq_models."""

from __future__ import annotations

from .forecast_loss import NaNAwareForecastLoss, nan_gradient_difference, nan_mae

__all__ = ["NaNAwareForecastLoss", "nan_gradient_difference", "nan_mae"]
