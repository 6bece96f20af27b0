"""False positives on absent structures: predicted volume where the reference has nothing.

Dice is undefined for an empty reference, and the usual tools (MONAI's ``DiceMetric(ignore_empty=True)``,
nnU-Net, TotalSegmentator) drop those cases, so a hallucinated organ after resection goes unpunished. These
metrics score exactly those cases.
"""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric

from .utils import aggregate_buffer

__all__ = ["compute_absent_false_positive_volume", "AbsentFalsePositiveVolumeMetric", "AbsentCleanRateMetric"]


def compute_absent_false_positive_volume(
    pred_masks: torch.Tensor, target_masks: torch.Tensor, voxel_volume: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Predicted volume of each structure that is absent from the reference.

    Args:
        pred_masks: [B, S, *spatial] binary prediction.
        target_masks: [B, S, *spatial] binary reference; a structure with an empty reference mask is absent.
        voxel_volume: volume of one voxel (a float, or [B] per case), in the unit wanted (voxels, mL...).

    Returns:
        [B, S]: predicted volume for absent structures, NaN where the structure is present.
    """
    if pred_masks.shape != target_masks.shape or pred_masks.ndim < 3:
        raise ValueError(
            f"expected prediction and reference masks of the same shape (B, S, ...), "
            f"got {tuple(pred_masks.shape)} and {tuple(target_masks.shape)}"
        )
    reduce_dims = tuple(range(2, pred_masks.ndim))
    fp_voxels = (pred_masks > 0.5).float().sum(dim=reduce_dims)
    absent = (target_masks > 0.5).flatten(2).sum(-1) == 0
    vv = torch.as_tensor(voxel_volume, dtype=fp_voxels.dtype, device=fp_voxels.device)
    if vv.ndim == 1:
        vv = vv[:, None]
    out = fp_voxels * vv
    return torch.where(absent, out, torch.full_like(out, float("nan")))


class AbsentFalsePositiveVolumeMetric(CumulativeIterationMetric):
    """Mean predicted volume (voxels × ``voxel_volume``) over absent (case, structure) pairs.

    ``y_pred``: [B, S, ...] binary masks; ``y``: [B, S, ...] reference masks.
    """

    def __init__(self, voxel_volume: float = 1.0) -> None:
        super().__init__()
        self.voxel_volume = voxel_volume

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("false-positive volume needs reference masks, got None")
        return compute_absent_false_positive_volume(y_pred, y, self.voxel_volume)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        return aggregate_buffer(self, lambda data: torch.nanmean(data.float()))


class AbsentCleanRateMetric(AbsentFalsePositiveVolumeMetric):
    """Fraction of absent (case, structure) pairs with no predicted voxel at all (1.0 is perfect)."""

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        return aggregate_buffer(self, lambda data: (data[~torch.isnan(data)] == 0).float().mean())

