"""inferers of seq_models."""

from __future__ import annotations

from .forecaster import AutoregressiveForecaster
from .nowcast_prior import NowcastPriorForecaster
from .tiled_forecast import TiledForecaster

__all__ = ["AutoregressiveForecaster", "NowcastPriorForecaster", "TiledForecaster"]
