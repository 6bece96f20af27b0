"""writers of seq_models: forecast files and pictures."""

from __future__ import annotations

from .forecast_writer import DEFAULT_CHANNEL_GROUPS, forecast_dataset, plot_forecast_strips, write_forecast

__all__ = ["DEFAULT_CHANNEL_GROUPS", "forecast_dataset", "plot_forecast_strips", "write_forecast"]
