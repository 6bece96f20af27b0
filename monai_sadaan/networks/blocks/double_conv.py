"""Two 3x3x3 convolutions, each followed by BatchNorm and ReLU: the basic unit of the SADAAn encoder."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["double_conv3d"]


def double_conv3d(in_channels: int, out_channels: int) -> nn.Sequential:
    """Build ``Conv3d(k3, pad 1) -> BatchNorm3d -> ReLU -> Conv3d(k3, pad 1) -> BatchNorm3d -> ReLU``.

    A plain ``nn.Sequential`` (children ``0..5``) rather than a subclass, so that state-dict keys
    (``enc1.0.weight``) and torchinfo rows (``Sequential (enc1)``) read exactly as in the seed model.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels of both convolutions.

    Returns:
        the six-layer block, mapping ``[B, in_channels, D, H, W]`` to ``[B, out_channels, D, H, W]``.
    """
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )
