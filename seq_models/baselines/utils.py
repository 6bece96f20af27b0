"""The history batches the nowcasting baselines read: a batch or one sample, tensor or array, in and out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_history_batch", "restore_history_batch"]


def as_history_batch(history: torch.Tensor | np.ndarray, steps: int, min_steps: int = 1) -> tuple[np.ndarray, bool, Any]:
    """``(array, single, device)``: ``history`` as a NumPy batch ``(B, T, C, H, W)``, after checking it and ``steps``.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)`` tensor or array.
        steps: lead times ``K`` asked for (at least 1).
        min_steps: the fewest history frames ``T`` the baseline needs.

    Returns:
        The batch (the array's own dtype), whether ``history`` was one sample (no batch dim), and the tensor's
        device (``None`` for an array): what :func:`restore_history_batch` needs to give the forecast back alike.

    Raises:
        ValueError: ``steps < 1``, or ``history`` not 4D / 5D with at least ``min_steps`` frames.
    """
    if steps < 1:
        raise ValueError(f"expected at least one forecast step, got {steps}")
    is_tensor = isinstance(history, torch.Tensor)
    arr = history.detach().cpu().numpy() if is_tensor else np.asarray(history)
    single = arr.ndim == 4
    if single:
        arr = arr[None]
    if arr.ndim != 5 or arr.shape[1] < min_steps:
        raise ValueError(
            f"expected a history (B, T>={min_steps}, C, H, W) or (T>={min_steps}, C, H, W), got shape {tuple(history.shape)}"
        )
    return arr, single, (history.device if is_tensor else None)


def restore_history_batch(out: np.ndarray, single: bool, device: Any) -> torch.Tensor | np.ndarray:
    """A forecast ``(B, K, C, H, W)`` back in the form of the history it came from (see :func:`as_history_batch`):
    ``(K, C, H, W)`` for one sample, a tensor on ``device`` for a tensor history, else the array."""
    out = out[0] if single else out
    return torch.from_numpy(out).to(device) if device is not None else out
