"""handlers of seq_models: ignite handlers for MONAI engines."""

from __future__ import annotations

from .forecast_handlers import ForecastScoreReport, ForecastWriterHandler

__all__ = ["ForecastScoreReport", "ForecastWriterHandler"]
