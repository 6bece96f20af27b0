"""IAM4VP's spatio-temporal predictor: time-conditioned ConvNeXt blocks over frames stacked as channels."""

from __future__ import annotations

import torch
from torch import nn

from .convnext import ConvNeXt_block, ConvNeXt_bottle

__all__ = ["Predictor"]


class Predictor(nn.Module):
    """One :class:`ConvNeXt_bottle` (history + future slots → ``T`` frames) then ``num_blocks - 1``
    :class:`ConvNeXt_block` at ``T·hidden`` channels.

    Args:
        num_frames: ``T`` (12 in the seed).
        hidden_channels: latent channels per frame (64).
        num_blocks: ``N_T`` (6).
        time_dim: size of the time embedding (64).

    Shapes: x ``(B, 2T, hidden, h, w)``, time_emb ``(B, time_dim)`` → ``(B, T, hidden, h, w)``.
    """

    def __init__(self, num_frames: int = 12, hidden_channels: int = 64, num_blocks: int = 6, time_dim: int = 64) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"expected at least one predictor block, got num_blocks={num_blocks}")
        channels = num_frames * hidden_channels
        self.num_frames = num_frames
        self.hidden_channels = hidden_channels
        blocks: list[nn.Module] = [ConvNeXt_bottle(channels, time_dim)]
        blocks += [ConvNeXt_block(channels, time_dim) for _ in range(num_blocks - 1)]
        self.st_block = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, 2T, hidden, h, w)``; time_emb ``(B, time_dim)``. Returns: ``(B, T, hidden, h, w)``."""
        b, frames, c, h, w = x.shape
        z = x.reshape(b, frames * c, h, w)
        for block in self.st_block:
            z = block(z, time_emb)
        return z.reshape(b, self.num_frames, self.hidden_channels, h, w)
