"""Persistence baseline: the last observed frame repeated over the lead times."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["persistence_forecast"]


def persistence_forecast(history: torch.Tensor | np.ndarray, steps: int) -> torch.Tensor | np.ndarray:
    """Repeat the last history frame.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)``.
        steps: lead times ``K`` (>= 1).

    Returns:
        ``(B, K, C, H, W)`` or ``(K, C, H, W)``, same type as ``history``.
    """
    if steps < 1:
        raise ValueError(f"expected at least one forecast step, got {steps}")
    if history.ndim not in (4, 5):
        raise ValueError(f"expected a history (B, T, C, H, W) or (T, C, H, W), got shape {tuple(history.shape)}")
    axis = history.ndim - 4
    last = history[:, -1:] if axis else history[-1:]
    if isinstance(history, torch.Tensor):
        reps = [1] * history.ndim
        reps[axis] = steps
        return last.repeat(*reps)
    return np.repeat(last, steps, axis=axis)
