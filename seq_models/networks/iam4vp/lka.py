"""Large-kernel attention (LKA, Guo et al., "Visual Attention Network")."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LKA"]


class LKA(nn.Module):
    """A large receptive field from three cheap convolutions, used as a multiplicative gate.

    Depthwise 5×5 (padding 2) → depthwise 7×7 with dilation 3 (padding 9) → pointwise 1×1; the result multiplies
    the input element-wise. The effective kernel spans 23×23 pixels.

    Args:
        channels: ``C`` (input and output).

    Shapes: ``(N, C, H, W)`` → ``(N, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=5, padding=2, groups=channels)
        self.conv_spatial = nn.Conv2d(channels, channels, kernel_size=7, padding=9, groups=channels, dilation=3)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C, H, W)``. Returns: ``x * gate(x)``, same shape."""
        attn = self.conv1(self.conv_spatial(self.conv0(x)))
        return x * attn
