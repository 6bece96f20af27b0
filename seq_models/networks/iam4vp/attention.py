"""``Attention``: the LKA block (projection, GELU, large-kernel gate, projection, residual)."""

from __future__ import annotations

import torch
from torch import nn

from .lka import LKA

__all__ = ["Attention"]


class Attention(nn.Module):
    """``x + proj_2(LKA(GELU(proj_1(x))))`` with 1×1 projections.

    Args:
        channels: ``C`` (input and output).

    Shapes: ``(N, C, H, W)`` → ``(N, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(channels, channels, kernel_size=1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = LKA(channels)
        self.proj_2 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C, H, W)``. Returns: same shape."""
        shortcut = x
        x = self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))
        return x + shortcut
