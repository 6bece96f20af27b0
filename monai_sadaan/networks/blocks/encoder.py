"""U-Net style encoder-decoder that turns an image into full-resolution feature maps (SADAAn stage 1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_sadaan.networks.blocks.double_conv import double_conv3d
from monai_sadaan.networks.utils import check_positive_sizes

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """Five-level 3D U-Net encoder-decoder with skip connections, ending in a 1x1x1 projection.

    Layout (seed 002, ``features=(16, 32, 64, 128, 256)``, ``feature_channels=128``)::

        enc1 ─pool─ enc2 ─pool─ enc3 ─pool─ enc4 ─pool─ enc5
          │           │           │           │           │
        dec1 ─up1── dec2 ─up2── dec3 ─up3── dec4 ─up4─────┘  -> final_conv (1x1x1, features[0] -> feature_channels)

    ``enc*``/``dec*`` are double convolutions (Conv3d k3, BatchNorm3d, ReLU, twice), ``pool`` is one
    ``MaxPool3d(2)`` reused at every level, ``up*`` are ``ConvTranspose3d(kernel 2, stride 2)`` halving the
    channels, and each ``dec*`` sees the concatenation ``[upsampled, skip]``.

    Args:
        in_channels: number of image channels.
        features: channel widths of the five levels, shallow to deep.
        feature_channels: channels of the returned full-resolution feature map.

    Raises:
        ValueError: when ``features`` does not hold five positive widths or a channel count is not positive.
    """

    def __init__(
        self, in_channels: int = 1, features: Sequence[int] = (16, 32, 64, 128, 256), feature_channels: int = 128
    ) -> None:
        super().__init__()
        features = tuple(int(f) for f in features)
        if len(features) != 5 or min(features) < 1:
            raise ValueError(f"expected five positive encoder widths in features, got {features}")
        check_positive_sizes(in_channels=in_channels, feature_channels=feature_channels)
        f1, f2, f3, f4, f5 = features
        self.in_channels = in_channels
        self.features = features
        self.feature_channels = feature_channels

        self.enc1 = double_conv3d(in_channels, f1)
        self.pool = nn.MaxPool3d(kernel_size=2)
        self.enc2 = double_conv3d(f1, f2)
        self.enc3 = double_conv3d(f2, f3)
        self.enc4 = double_conv3d(f3, f4)
        self.enc5 = double_conv3d(f4, f5)

        self.up4 = nn.ConvTranspose3d(f5, f4, kernel_size=2, stride=2)
        self.dec4 = double_conv3d(2 * f4, f4)
        self.up3 = nn.ConvTranspose3d(f4, f3, kernel_size=2, stride=2)
        self.dec3 = double_conv3d(2 * f3, f3)
        self.up2 = nn.ConvTranspose3d(f3, f2, kernel_size=2, stride=2)
        self.dec2 = double_conv3d(2 * f2, f2)
        self.up1 = nn.ConvTranspose3d(f2, f1, kernel_size=2, stride=2)
        self.dec1 = double_conv3d(2 * f1, f1)

        self.final_conv = nn.Conv3d(f1, feature_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: image batch ``[B, in_channels, D, H, W]``, each spatial size divisible by 16.

        Returns:
            feature maps ``[B, feature_channels, D, H, W]``.
        """
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        e5 = self.enc5(self.pool(e4))
        d4 = self.dec4(torch.cat([self.up4(e5), e4], dim=1))
        d3 = self.dec3(torch.cat([self.up3(d4), e3], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.final_conv(d1)
