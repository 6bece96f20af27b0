"""Structure-specific spatial attention under a learned anatomical position prior (SADAAn stage 2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_sadaan.networks.utils import check_positive_sizes

__all__ = ["AnatomicalAttentionModule", "apply_position_prior"]


def apply_position_prior(
    spatial_attention: torch.Tensor, feature_responses: torch.Tensor, prior: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weight the attention by the position prior and score how well the features agree with it.

    Args:
        spatial_attention: ``attention_conv`` output ``[B, S, D, H, W]`` in [0, 1].
        feature_responses: ``feature_matcher`` output ``[B, S, D, H, W]`` (logits).
        prior: the position prior ``[1, S, D, H, W]`` in [0, 1].
        eps: added to the attention mass in the alignment denominator.

    Returns:
        ``(attention_maps, feature_responses, alignment_scores, position_priors)``: ``[B, S, D, H, W]`` in [0, 1],
        the responses unchanged, ``[B, S]`` in [0, 1] and ``[B, S, D, H, W]`` (the prior expanded over the batch,
        a view without a copy).
    """
    attention_maps = spatial_attention * prior
    mass = attention_maps.sum(dim=(2, 3, 4))
    agreement = (attention_maps * torch.sigmoid(feature_responses)).sum(dim=(2, 3, 4))
    alignment_scores = agreement / (mass + eps)
    position_priors = prior.expand(spatial_attention.shape[0], -1, -1, -1, -1)
    return attention_maps, feature_responses, alignment_scores, position_priors


class AnatomicalAttentionModule(nn.Module):
    """Learn where each structure is expected and how well the image features agree with that expectation.

    * ``position_embeddings``: a learned parameter ``[1, S, D, H, W]``; its sigmoid is the position prior.
    * ``attention_conv``: ``Conv3d(in, hidden, k3) -> BatchNorm3d -> ReLU -> Conv3d(hidden, S, k1) -> Sigmoid``.
    * ``feature_matcher``: ``Conv3d(in, in, k3) -> BatchNorm3d -> ReLU -> Conv3d(in, S, k1)`` (logits).

    With ``f`` the features, ``P = sigmoid(position_embeddings)`` and ``R = feature_matcher(f)``::

        attention_maps   = attention_conv(f) * P                                   in [0, 1]
        alignment_scores = sum_v(attention_maps * sigmoid(R)) / (sum_v(attention_maps) + eps)

    The alignment score is the attention-weighted mean of the structure's feature response: high when the
    features look like the structure where it is expected, low when that place looks like something else
    (a resected or missing organ).

    Args:
        in_channels: channels of the incoming features.
        num_structures: number of anatomical structures ``S``.
        spatial_size: ``(D, H, W)`` of the features; the prior is tied to this field of view.
        hidden_channels: width of the hidden layer of ``attention_conv`` (64 in the seed model).
        eps: added to the attention mass in the alignment denominator.

    Raises:
        ValueError: for non-positive channel counts or a ``spatial_size`` that is not three positive sizes.
    """

    def __init__(
        self,
        in_channels: int = 128,
        num_structures: int = 5,
        spatial_size: Sequence[int] = (64, 64, 64),
        hidden_channels: int = 64,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        spatial_size = tuple(int(s) for s in spatial_size)
        if len(spatial_size) != 3 or min(spatial_size) < 1:
            raise ValueError(f"expected spatial_size of three positive sizes (D, H, W), got {spatial_size}")
        check_positive_sizes(in_channels=in_channels, num_structures=num_structures, hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.spatial_size = spatial_size
        self.eps = eps

        # zeros: a neutral prior of 0.5 everywhere until training says where each structure lives
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_structures, *spatial_size))
        self.attention_conv = nn.Sequential(
            nn.Conv3d(in_channels, hidden_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden_channels, num_structures, kernel_size=1),
            nn.Sigmoid(),
        )
        self.feature_matcher = nn.Sequential(
            nn.Conv3d(in_channels, in_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(in_channels, num_structures, kernel_size=1),
        )

    def position_prior(self) -> torch.Tensor:
        """The learned prior ``sigmoid(position_embeddings)``, shape ``[1, S, D, H, W]``."""
        return torch.sigmoid(self.position_embeddings)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            features: ``[B, in_channels, D, H, W]`` with ``(D, H, W) == spatial_size``.

        Returns:
            ``(attention_maps, feature_responses, alignment_scores, position_priors)``:
            ``[B, S, D, H, W]`` in [0, 1], ``[B, S, D, H, W]`` logits, ``[B, S]`` in [0, 1] and
            ``[B, S, D, H, W]`` (the prior expanded over the batch, a view without a copy).
        """
        spatial_attention = self.attention_conv(features)
        feature_responses = self.feature_matcher(features)
        return apply_position_prior(spatial_attention, feature_responses, self.position_prior(), self.eps)
