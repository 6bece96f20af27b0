"""Embedding of the diffusion-style time value ``t`` that tells IAM4VP which future step it predicts."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SinusoidalPosEmb", "TimeMLP"]


class SinusoidalPosEmb(nn.Module):
    """Transformer-style sinusoidal embedding of a scalar per sample.

    ``dim // 2`` geometric frequencies from 1 to 1/10000; the embedding is ``[sin(t·f), cos(t·f)]``.

    Args:
        dim: embedding size (even).

    Shapes: ``(B,)`` → ``(B, dim)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2 or dim < 4:
            raise ValueError(f"expected an even embedding size of at least 4, got {dim}")
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Args: t: ``(B,)`` time values. Returns: ``(B, dim)``."""
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -scale)
        args = t.to(torch.float32)[:, None] * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class TimeMLP(nn.Module):
    """Sinusoidal embedding → Linear(dim → 4·dim) → GELU → Linear(4·dim → dim).

    Args:
        dim: embedding size (the seed uses 64).

    Shapes: ``(B,)`` → ``(B, dim)``.
    """

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.sinusoidal = SinusoidalPosEmb(dim)
        self.linear1 = nn.Linear(dim, dim * 4)
        self.act = nn.GELU()
        self.linear2 = nn.Linear(dim * 4, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Args: t: ``(B,)``. Returns: ``(B, dim)``."""
        return self.linear2(self.act(self.linear1(self.sinusoidal(t))))
