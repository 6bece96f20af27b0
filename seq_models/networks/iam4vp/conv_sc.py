"""``ConvSC``: the convolution, LayerNorm, SiLU unit of IAM4VP's spatial encoder and decoder."""

from __future__ import annotations

import torch
from torch import nn

from .layer_norm import ChannelsFirstLayerNorm

__all__ = ["ConvSC"]


class ConvSC(nn.Module):
    """3×3 convolution → channels-first LayerNorm (eps 1e-6) → SiLU, optionally down- or up-sampling by 2.

    Downsampling uses a stride-2 convolution. Upsampling (``upsample=True``) uses a stride-1 convolution to
    ``4 * out_channels`` followed by ``PixelShuffle(2)`` (sub-pixel convolution), so ``(H, W)`` becomes
    ``(2H, 2W)``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1 keeps the size; 2 halves it (``ceil``) or, with ``upsample``, doubles it.
        upsample: sub-pixel upsampling instead of strided downsampling when ``stride == 2``.

    Shapes: ``(N, in_channels, H, W)`` → ``(N, out_channels, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"expected stride 1 or 2, got {stride}")
        self.upsample = bool(upsample and stride == 2)
        if self.upsample:
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * 4, kernel_size=3, stride=1, padding=1),
                nn.PixelShuffle(2),
            )
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.norm = ChannelsFirstLayerNorm(out_channels, eps=1e-6)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C_in, H, W)``. Returns: ``(N, C_out, H', W')``."""
        return self.act(self.norm(self.conv(x)))
