"""Layer normalisation over the channel axis of a channels-first feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelsFirstLayerNorm"]


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over ``C`` of a ``(N, C, H, W)`` tensor, with a learned per-channel weight and bias.

    ``nn.LayerNorm`` normalises the trailing axes; convolutional feature maps keep channels on axis 1, so the
    map is moved to channels-last, normalised with the fused kernel and moved back.

    Args:
        num_channels: ``C``.
        eps: added to the variance.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C, *spatial)``. Returns: the normalised tensor, same shape."""
        x = x.movedim(1, -1)
        x = F.layer_norm(x, (self.num_channels,), self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)
