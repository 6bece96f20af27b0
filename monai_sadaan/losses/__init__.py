from __future__ import annotations

from .spatial_attention_loss import DEFAULT_LOSS_WEIGHTS, LOSS_COMPONENTS, SpatialAttentionLoss

__all__ = ["DEFAULT_LOSS_WEIGHTS", "LOSS_COMPONENTS", "SpatialAttentionLoss"]
