"""metrics of seq_models."""

from __future__ import annotations

from .forecast_metrics import ForecastMetric, forecast_metrics, gaussian_window, per_sample_forecast_metrics

__all__ = ["ForecastMetric", "forecast_metrics", "gaussian_window", "per_sample_forecast_metrics"]
