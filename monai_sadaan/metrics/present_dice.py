"""Dice on present structures only (absent ones are scored by the false-positive metrics instead)."""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric

from .utils import aggregate_buffer

__all__ = ["compute_present_dice", "PresentStructureDiceMetric"]


def compute_present_dice(pred_masks: torch.Tensor, target_masks: torch.Tensor) -> torch.Tensor:
    """Dice per (case, structure) where the reference is non-empty.

    Args:
        pred_masks: [B, S, *spatial] binary prediction.
        target_masks: [B, S, *spatial] binary reference.

    Returns:
        [B, S] Dice in [0, 1]; NaN where the reference is empty (the structure is absent).
    """
    if pred_masks.shape != target_masks.shape or pred_masks.ndim < 3:
        raise ValueError(
            f"expected prediction and reference masks of the same shape (B, S, ...), "
            f"got {tuple(pred_masks.shape)} and {tuple(target_masks.shape)}"
        )
    p = (pred_masks > 0.5).flatten(2).float()
    t = (target_masks > 0.5).flatten(2).float()
    inter = (p * t).sum(-1)
    denom = p.sum(-1) + t.sum(-1)
    dice = 2 * inter / denom.clamp_min(1)
    return torch.where(t.sum(-1) > 0, dice, torch.full_like(dice, float("nan")))


class PresentStructureDiceMetric(CumulativeIterationMetric):
    """Mean Dice over present (case, structure) pairs. ``y_pred``/``y``: [B, S, ...] binary masks."""

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("Dice needs reference masks, got None")
        return compute_present_dice(y_pred, y)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        return aggregate_buffer(self, lambda data: torch.nanmean(data.float()))
