"""inferers of seq_models."""

from __future__ import annotations

from .forecaster import AutoregressiveForecaster
from .tiled_forecast import TiledForecaster

__all__ = ["AutoregressiveForecaster", "TiledForecaster"]
