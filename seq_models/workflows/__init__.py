"""workflows of seq_models: MONAI engines assembled for each model."""

from __future__ import annotations

from .iam4vp import create_iam4vp_evaluator, create_iam4vp_trainer, forecast_prepare_batch, lower_is_better

__all__ = ["create_iam4vp_evaluator", "create_iam4vp_trainer", "forecast_prepare_batch", "lower_is_better"]
