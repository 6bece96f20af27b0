"""Attention-modulated per-structure segmentation (SADAAn stage 4)."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_sadaan.networks.blocks.inference_fusion import conv3d_same
from monai_sadaan.networks.blocks.projected_features import (
    ProjectedFeatures,
    conv_bn_relu_channels,
    count_batch,
    run_in_channel_groups,
)
from monai_sadaan.networks.utils import checkpoint_call

__all__ = ["SegmentationHead"]


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
        gradient_checkpointing: recompute ``feature_refine`` in backward instead of storing its activations.

    Raises:
        ValueError: for non-positive channel counts.
    """

    def __init__(
        self,
        in_channels: int = 128,
        num_structures: int = 5,
        hidden_channels: int = 64,
        memory_efficient: bool = True,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if min(in_channels, num_structures, hidden_channels) < 1:
            raise ValueError(
                "expected positive in_channels, num_structures and hidden_channels, got "
                f"{in_channels}, {num_structures} and {hidden_channels}"
            )
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.memory_efficient = memory_efficient
        self.gradient_checkpointing = gradient_checkpointing
        self.feature_refine = nn.Sequential(
            nn.Conv3d(in_channels, hidden_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden_channels, hidden_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(hidden_channels),
            nn.ReLU(inplace=True),
        )
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
        num_structures = attention_maps.shape[1]
        if self.memory_efficient:
            projected = self.segmentation_layer(refined)  # w_s . r + b_s, [B, S, D, H, W]
            bias = self.segmentation_layer.bias
            if bias is None:
                return attention_maps * projected
            bias = bias.view(1, num_structures, 1, 1, 1)
            return torch.addcmul(bias, attention_maps, projected - bias)
        batch = refined.shape[0]
        spatial = refined.shape[2:]
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
        if self.gradient_checkpointing and torch.is_grad_enabled():
            refined = checkpoint_call(self.feature_refine, features, modules=[self.feature_refine])
        else:
            refined = self.feature_refine(features)
        segmentation_logits = self.modulated_logits(refined, attention_maps)
        return segmentation_logits, torch.sigmoid(segmentation_logits)

    def forward_projected(
        self, features: ProjectedFeatures, attention_maps: torch.Tensor, channel_group: int | None = 32
    ) -> torch.Tensor:
        """Segmentation logits from features held as a projection (see :class:`ProjectedFeatures`).

        The first refinement convolution reads the narrow map through composed weights. In training mode with
        gradient checkpointing both refinement layers run ``channel_group`` output channels at a time, each
        group a checkpointed segment: the first layer's groups are concatenated (the only full-width tensor
        kept, ``[B, hidden, D, H, W]``), the second layer's groups go straight through their columns of
        ``segmentation_layer`` and are summed, in the copy-free form ``a_s * (w_s . r) + b_s``. Otherwise (eval
        mode: BatchNorm folded) both layers run at once and :meth:`modulated_logits` applies the head layout.

        Args:
            features: the ``[B, in_channels, D, H, W]`` features in factorised form.
            attention_maps: ``[B, S, D, H, W]``.
            channel_group: channels per checkpointed segment (training with checkpointing only).

        Returns:
            ``[B, S, D, H, W]`` logits, equal to :meth:`forward`'s up to float rounding.
        """
        first, first_bn, second, second_bn = (self.feature_refine[i] for i in (0, 1, 3, 4))
        checkpointing = self.training and self.gradient_checkpointing and torch.is_grad_enabled()
        first_momentum = count_batch(first_bn) if self.training else None
        second_momentum = count_batch(second_bn) if self.training else None
        group = channel_group if checkpointing else None

        def first_layer(low_with_ones: torch.Tensor, channels: slice) -> torch.Tensor:
            projected = ProjectedFeatures(low_with_ones, features.weight)
            return conv_bn_relu_channels(projected, first, first_bn, channels, first_momentum)

        parts = run_in_channel_groups(first_layer, features.low_with_ones, first.out_channels, group, [first_bn])
        hidden = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        del parts
        pointwise = self.segmentation_layer
        if not checkpointing:
            refined = conv_bn_relu_channels(hidden, second, second_bn, slice(0, second.out_channels), second_momentum)
            del hidden
            if not self.memory_efficient:
                return self.modulated_logits(refined, attention_maps)
            projected = conv3d_same(refined, pointwise.weight, None, (0, 0, 0))
            del refined
            return self._add_bias(projected, attention_maps)

        def second_layer(hidden: torch.Tensor, channels: slice) -> torch.Tensor:
            refined = conv_bn_relu_channels(hidden, second, second_bn, channels, second_momentum)
            return conv3d_same(refined, pointwise.weight[:, channels], None, (0, 0, 0))

        parts = run_in_channel_groups(second_layer, hidden, second.out_channels, group, [second_bn])
        projected = parts[0]
        for part in parts[1:]:
            projected = projected + part
        return self._add_bias(projected, attention_maps)

    def _add_bias(self, projected: torch.Tensor, attention_maps: torch.Tensor) -> torch.Tensor:
        """``a_s * (w_s . r) + b_s`` from ``projected = w . r`` (no bias) and the attention maps."""
        bias = self.segmentation_layer.bias
        if bias is None:
            return attention_maps * projected
        return torch.addcmul(bias.view(1, -1, 1, 1, 1), attention_maps, projected)
