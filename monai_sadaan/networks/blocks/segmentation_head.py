"""Attention-modulated per-structure segmentation (SADAAn stage 4)."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_sadaan.networks.blocks.double_conv import double_conv3d
from monai_sadaan.networks.utils import check_positive_sizes

__all__ = ["SegmentationHead", "modulate_by_attention"]


def modulate_by_attention(
    projected: torch.Tensor, attention_maps: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``a_s * (w_s . r) + b_s`` from the pointwise convolution ``projected = w . r + b`` of the refined features.

    Args:
        projected: ``[B, S, D, H, W]``, the 1x1x1 segmentation layer applied to the refined features (with bias).
        attention_maps: ``[B, S, D, H, W]``.
        bias: ``[S]`` the segmentation layer's bias, or None.

    Returns:
        ``[B, S, D, H, W]`` logits.
    """
    if bias is None:
        return attention_maps * projected
    bias = bias.view(1, -1, 1, 1, 1)
    return torch.addcmul(bias, attention_maps, projected - bias)


class SegmentationHead(nn.Module):
    """Segment every structure from refined features weighted by that structure's attention map.

    * ``feature_refine``: ``Conv3d(in, hidden, k3) -> BN -> ReLU -> Conv3d(hidden, hidden, k3) -> BN -> ReLU``.
    * ``segmentation_layer``: ``Conv3d(hidden, S, k1)`` with weights ``w`` and bias ``b``.

    The seed model multiplies the refined features ``r`` by each structure's attention map ``a_s``, stacks the
    ``S`` copies into a ``[B*S, hidden, D, H, W]`` batch, applies ``segmentation_layer`` and keeps channel ``s``
    of copy ``s`` (``memory_efficient=False``). Because the 1x1x1 convolution is linear and ``a_s`` is one
    number per voxel, channel ``s`` of ``conv(r * a_s)`` is ``a_s * (w_s . r) + b_s``: the default
    ``memory_efficient=True`` computes that directly from one ``[B, S, D, H, W]`` convolution output and
    never materialises the ``S`` copies. Both give the same logits (up to float rounding).

    Args:
        in_channels: channels of the incoming features.
        num_structures: number of anatomical structures ``S``.
        hidden_channels: width of ``feature_refine`` (64 in the seed model).
        memory_efficient: use the copy-free layout described above.

    Raises:
        ValueError: for non-positive channel counts.
    """

    def __init__(
        self, in_channels: int = 128, num_structures: int = 5, hidden_channels: int = 64, memory_efficient: bool = True
    ) -> None:
        super().__init__()
        check_positive_sizes(in_channels=in_channels, num_structures=num_structures, hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.memory_efficient = memory_efficient
        self.feature_refine = double_conv3d(in_channels, hidden_channels)
        self.segmentation_layer = nn.Conv3d(hidden_channels, num_structures, kernel_size=1)

    def modulated_logits(self, refined: torch.Tensor, attention_maps: torch.Tensor) -> torch.Tensor:
        """Per-structure logits from refined features and attention maps.

        Args:
            refined: ``[B, hidden, D, H, W]`` output of ``feature_refine``.
            attention_maps: ``[B, S, D, H, W]``.

        Returns:
            ``[B, S, D, H, W]`` logits, channel ``s`` equal to channel ``s`` of
            ``segmentation_layer(refined * attention_maps[:, s:s+1])``.
        """
        if self.memory_efficient:
            return modulate_by_attention(self.segmentation_layer(refined), attention_maps, self.segmentation_layer.bias)
        num_structures = attention_maps.shape[1]
        batch, spatial = refined.shape[0], refined.shape[2:]
        copies = refined.unsqueeze(1) * attention_maps.unsqueeze(2)  # [B, S, hidden, D, H, W]
        stacked = self.segmentation_layer(copies.reshape(batch * num_structures, -1, *spatial))
        stacked = stacked.reshape(batch, num_structures, num_structures, *spatial)
        index = torch.arange(num_structures, device=refined.device)
        return stacked[:, index, index]

    def forward(self, features: torch.Tensor, attention_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            features: ``[B, in_channels, D, H, W]``.
            attention_maps: ``[B, S, D, H, W]`` from :class:`AnatomicalAttentionModule`.

        Returns:
            ``(segmentation_logits, segmentation_probs)``, both ``[B, S, D, H, W]``; probs = sigmoid(logits).
        """
        segmentation_logits = self.modulated_logits(self.feature_refine(features), attention_maps)
        return segmentation_logits, torch.sigmoid(segmentation_logits)
