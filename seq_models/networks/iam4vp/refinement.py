"""IAM4VP's spatio-temporal refinement: the decoded frames, stacked as channels, refined into one frame."""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention

__all__ = ["SpatioTemporalRefinement"]


class SpatioTemporalRefinement(nn.Module):
    """``Attention`` over the ``T·C`` stacked channels (time-major), then a 1×1 readout to ``C`` channels.

    Args:
        num_frames: ``T`` (12).
        channels: ``C`` per frame (11).

    Shapes: ``(B, T·C, H, W)`` → ``(B, C, H, W)``.
    """

    def __init__(self, num_frames: int = 12, channels: int = 11) -> None:
        super().__init__()
        self.attn = Attention(num_frames * channels)
        self.conv = nn.Conv2d(num_frames * channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, T·C, H, W)``. Returns: ``(B, C, H, W)``."""
        return self.conv(self.attn(x))
