"""ConvNeXt blocks of IAM4VP's spatio-temporal predictor, conditioned on the time embedding."""

from __future__ import annotations

import torch
from torch import nn

from .lka import LKA

__all__ = ["ConvNeXt_block", "ConvNeXt_bottle"]


class _TimeConditionedConvNeXt(nn.Module):
    """Shared tail: spatial mixing + time bias → LayerNorm → MLP (4×) → ``gamma`` scale.

    Subclasses set ``self.dwconv`` (the spatial mixing) and define the residual path.
    """

    dwconv: nn.Module

    def __init__(self, channels: int, time_dim: int, layer_scale_init: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(time_dim, channels))
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale_init)))

    def _branch(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        bias = self.mlp(time_emb)[:, :, None, None]
        y = self.dwconv(x) + bias
        y = y.permute(0, 2, 3, 1)  # channels-last for LayerNorm and the Linear layers
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = self.gamma * y
        return y.permute(0, 3, 1, 2)


class ConvNeXt_bottle(_TimeConditionedConvNeXt):  # noqa: N801 (name fixed by the seed table)
    """First predictor block: halves the channels (history + future slots → one set of frames).

    Spatial mixing is a grouped 7×7 convolution ``2C → C`` (``groups = C``: each output channel mixes two input
    channels); the residual is a 1×1 projection ``2C → C``.

    Args:
        channels: output channels ``C`` (input has ``2C``); the seed uses 768 = 12 frames × 64.
        time_dim: size of the time embedding.
        layer_scale_init: initial value of the per-channel ``gamma``.

    Shapes: x ``(B, 2C, h, w)``, time_emb ``(B, time_dim)`` → ``(B, C, h, w)``.
    """

    def __init__(self, channels: int = 768, time_dim: int = 64, layer_scale_init: float = 1e-6) -> None:
        super().__init__(channels, time_dim, layer_scale_init)
        self.dwconv = nn.Conv2d(2 * channels, channels, kernel_size=7, padding=3, groups=channels)
        self.res_conv = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, 2C, h, w)``; time_emb: ``(B, time_dim)``. Returns: ``(B, C, h, w)``."""
        return self.res_conv(x) + self._branch(x, time_emb)


class ConvNeXt_block(_TimeConditionedConvNeXt):  # noqa: N801 (name fixed by the seed table)
    """Predictor block at constant width with large-kernel attention as its spatial mixing and a plain residual.

    Args:
        channels: ``C``; the seed uses 768.
        time_dim: size of the time embedding.
        layer_scale_init: initial value of the per-channel ``gamma``.

    Shapes: x ``(B, C, h, w)``, time_emb ``(B, time_dim)`` → ``(B, C, h, w)``.
    """

    def __init__(self, channels: int = 768, time_dim: int = 64, layer_scale_init: float = 1e-6) -> None:
        super().__init__(channels, time_dim, layer_scale_init)
        self.dwconv = LKA(channels)

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, h, w)``; time_emb: ``(B, time_dim)``. Returns: same shape as ``x``."""
        return x + self._branch(x, time_emb)
