"""CT windowing on channel-first volumes ``[C, D, H, W]`` (numpy arrays, torch tensors or ``MetaTensor``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from monai.transforms import ScaleIntensityRange

__all__ = ["CTWindow"]


class CTWindow(ScaleIntensityRange):
    """Clip CT intensities (Hounsfield units) to ``[a_min, a_max]`` and scale them linearly to ``[b_min, b_max]``.

    The default window (-175, 250) HU is MONAI's usual abdominal soft-tissue window.

    Args:
        a_min: lower HU bound of the window.
        a_max: upper HU bound of the window (must be greater than ``a_min``).
        b_min: output value of ``a_min``.
        b_max: output value of ``a_max``.
        clip: clip the output to ``[b_min, b_max]``.
        dtype: output data type.

    Raises:
        ValueError: ``a_min >= a_max``.
    """

    def __init__(
        self,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        if not float(a_min) < float(a_max):
            raise ValueError(f"expected a_min < a_max for the CT window, got a_min={a_min}, a_max={a_max}")
        super().__init__(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=dtype)
