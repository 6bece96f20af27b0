"""IAM4VP's spatial decoder: ``ConvSC`` units that upsample the latent back to the frame, with a skip."""

from __future__ import annotations

import torch
from torch import nn

from .conv_sc import ConvSC
from .encoder import encoder_strides

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """Mirror of :class:`~seq_models.networks.iam4vp.encoder.Encoder`: strides ``[2, 1, 2, 1]`` (upsampling by
    sub-pixel convolution), the result cropped to the skip's size and concatenated with it, a last ``ConvSC``
    ``2·hidden → hidden`` and a 1×1 readout.

    Args:
        hidden_channels: latent channels.
        out_channels: channels of a frame.
        num_layers: ``N_S``.

    Shapes: latent ``(N, hidden, h, w)``, skip ``(N, hidden, H, W)`` → ``(N, out_channels, H, W)``.
    """

    def __init__(self, hidden_channels: int = 64, out_channels: int = 11, num_layers: int = 4) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"expected at least one decoder layer, got num_layers={num_layers}")
        strides = encoder_strides(num_layers)[::-1]
        layers = [ConvSC(hidden_channels, hidden_channels, stride=s, upsample=True) for s in strides[:-1]]
        layers.append(ConvSC(2 * hidden_channels, hidden_channels, stride=strides[-1], upsample=True))
        self.dec = nn.Sequential(*layers)
        self.readout = nn.Conv2d(hidden_channels, out_channels, kernel_size=1)

    def forward(self, latent: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Args: latent ``(N, hidden, h, w)``; skip ``(N, hidden, H, W)``. Returns: ``(N, out_channels, H, W)``."""
        y = latent
        for layer in self.dec[:-1]:
            y = layer(y)
        height, width = skip.shape[-2:]
        if y.shape[-2] < height or y.shape[-1] < width:
            raise ValueError(
                f"expected the upsampled latent to cover the skip's {height}x{width}, got {tuple(y.shape[-2:])}"
            )
        y = y[..., :height, :width]
        y = self.dec[-1](torch.cat([y, skip], dim=1))
        return self.readout(y)
