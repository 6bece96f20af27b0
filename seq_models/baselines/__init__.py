"""baselines of seq_models: what a user would pick instead of IAM4VP.

``pysteps_extrapolation_forecast`` and ``sprog_forecast`` need the optional ``pysteps`` extra (imported when
called, not here).
"""

from __future__ import annotations

from .nowcast_prior import NOWCAST_PRIOR_METHODS, append_nowcast_prior, nowcast_prior
from .optical_flow import estimate_flow, optical_flow_forecast
from .persistence import persistence_forecast
from .pysteps_nowcasts import lk_motion, pysteps_extrapolation_forecast, sprog_forecast

__all__ = [
    "NOWCAST_PRIOR_METHODS",
    "append_nowcast_prior",
    "estimate_flow",
    "lk_motion",
    "nowcast_prior",
    "optical_flow_forecast",
    "persistence_forecast",
    "pysteps_extrapolation_forecast",
    "sprog_forecast",
]
