"""baselines of seq_models: what a user would pick instead of IAM4VP."""

from __future__ import annotations

from .optical_flow import estimate_flow, optical_flow_forecast
from .persistence import persistence_forecast

__all__ = ["estimate_flow", "optical_flow_forecast", "persistence_forecast"]
