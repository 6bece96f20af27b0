"""Presence metrics: is each structure's present/absent call right, and how well do the scores rank?"""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.rocauc import compute_roc_auc

from .utils import aggregate_buffer

__all__ = ["compute_presence_accuracy", "compute_presence_auroc", "PresenceAccuracyMetric", "PresenceAUROCMetric"]


def _check_pair(y_pred: torch.Tensor, y: torch.Tensor, what: str) -> None:
    if y_pred.ndim != 2 or y_pred.shape != y.shape:
        raise ValueError(
            f"{what}: expected presence scores and targets of the same shape (B, S), "
            f"got {tuple(y_pred.shape)} and {tuple(y.shape)}"
        )


def compute_presence_accuracy(presence_probs: torch.Tensor, presence_targets: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per (case, structure) correctness of the presence call.

    Args:
        presence_probs: [B, S] presence probabilities.
        presence_targets: [B, S] 0/1 truth.
        threshold: a structure is called present when its probability is >= threshold.

    Returns:
        [B, S] float tensor of 1.0 (right) and 0.0 (wrong).
    """
    _check_pair(presence_probs, presence_targets, "presence accuracy")
    calls = presence_probs >= threshold
    return (calls == (presence_targets > 0.5)).float()


def compute_presence_auroc(presence_probs: torch.Tensor, presence_targets: torch.Tensor) -> float:
    """Area under the ROC curve of presence scores over all (case, structure) pairs; NaN with one class only."""
    _check_pair(presence_probs, presence_targets, "presence AUROC")
    y = (presence_targets.flatten() > 0.5).float()
    if y.min() == y.max():
        return float("nan")
    return float(compute_roc_auc(presence_probs.flatten().float(), y))


class PresenceAccuracyMetric(CumulativeIterationMetric):
    """Accumulates presence correctness; ``aggregate()`` returns the mean over all (case, structure) pairs.

    ``y_pred``: [B, S] presence probabilities; ``y``: [B, S] presence targets.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("presence accuracy needs presence targets, got None")
        return compute_presence_accuracy(y_pred, y, self.threshold)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        return aggregate_buffer(self, lambda data: data.float().mean(), nan_is_missing=False)


class PresenceAUROCMetric(CumulativeIterationMetric):
    """Accumulates presence scores and targets; ``aggregate()`` returns the AUROC over all pairs (NaN if one class)."""

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("presence AUROC needs presence targets, got None")
        _check_pair(y_pred, y, "presence AUROC")
        return torch.stack([y_pred.float(), y.float()], dim=-1)  # [B, S, 2]

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        return aggregate_buffer(
            self, lambda data: torch.tensor(compute_presence_auroc(data[..., 0], data[..., 1])), nan_is_missing=False
        )
