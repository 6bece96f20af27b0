"""IAM4VP's spatial encoder: a stack of ``ConvSC`` units that downsamples each frame by 4."""

from __future__ import annotations

import torch
from torch import nn

from .conv_sc import ConvSC

__all__ = ["Encoder", "encoder_strides"]


def encoder_strides(num_layers: int) -> list[int]:
    """Strides ``[1, 2, 1, 2, ...]`` of ``num_layers`` encoder units (the decoder uses them reversed)."""
    return [2 if i % 2 else 1 for i in range(num_layers)]


class Encoder(nn.Module):
    """``num_layers`` ``ConvSC`` units with strides ``[1, 2, 1, 2, ...]``.

    Args:
        in_channels: channels of a frame (11 SEVIRI channels in the seed).
        hidden_channels: latent channels.
        num_layers: ``N_S`` (4 in the seed: two halvings, 372×614 → 93×154).

    Returns from ``forward``: ``(latent, skip)`` — the last unit's output ``(N, hidden, h, w)`` and the first
    unit's output ``(N, hidden, H, W)``, kept for the decoder's skip connection.
    """

    def __init__(self, in_channels: int = 11, hidden_channels: int = 64, num_layers: int = 4) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"expected at least one encoder layer, got num_layers={num_layers}")
        strides = encoder_strides(num_layers)
        self.enc = nn.Sequential(
            *[
                ConvSC(in_channels if i == 0 else hidden_channels, hidden_channels, stride=s)
                for i, s in enumerate(strides)
            ]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: ``(N, C, H, W)`` (frames folded into the batch). Returns: ``(latent, skip)``."""
        skip = self.enc[0](x)
        latent = skip
        for layer in self.enc[1:]:
            latent = layer(latent)
        return latent, skip
