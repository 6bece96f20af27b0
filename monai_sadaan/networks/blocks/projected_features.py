"""Full-resolution features kept as the 1x1 projection of a narrower map, never materialised.

The encoder ends with ``final_conv``, a 1x1x1 convolution from the last decoder level (``C_low`` channels, 16 in
the seed model) to the shared feature map (``C`` channels, 128). Everything downstream that reads that map at
full resolution is linear in it until its first BatchNorm: three 3x3x3 convolutions (``attention_conv[0]``,
``feature_matcher[0]``, ``feature_refine[0]``) and the global average pool of the absence head. A convolution of
a 1x1 projection is a convolution of the projected-from map with composed weights::

    f = W_f * low + b_f                        (inside the volume; zero padding outside)
    conv(f; W, b) = conv([low, 1]; W o [W_f | b_f], b)

where ``[low, 1]`` appends a channel of ones (zero-padded like everything else, so the bias of ``final_conv``
only enters from inside the volume, exactly as with the materialised map) and ``W o [W_f | b_f]`` contracts the
``C`` input channels of ``W`` with the projection. The composed convolution reads ``C_low + 1`` channels instead
of ``C`` (17 instead of 128 in the seed model): about 7.5x fewer multiply-adds for the three head convolutions,
and the ``[B, C, D, H, W]`` tensor (128 MB per 64^3 volume) never exists. The pooled features are the projection
of the pooled narrow map. Results equal the materialised computation up to float rounding (the sums run in a
different order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_sadaan.networks.blocks.inference_fusion import conv3d_same, fold_conv_bn
from monai_sadaan.networks.utils import checkpoint_call

__all__ = [
    "ProjectedFeatures",
    "batch_norm_channels",
    "channel_slices",
    "count_batch",
    "conv_bn_relu_channels",
    "run_in_channel_groups",
]


class ProjectedFeatures(NamedTuple):
    """The feature map ``f = weight . low_with_ones`` held in factorised form.

    Attributes:
        low_with_ones: ``[B, C_low + 1, D, H, W]``: the narrow map with a last channel of ones.
        weight: ``[C, C_low + 1]``: the 1x1 projection with its bias as the last column.
    """

    low_with_ones: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def from_pointwise_conv(cls, low: torch.Tensor, conv: nn.Conv3d) -> ProjectedFeatures:
        """Represent ``conv(low)`` for a 1x1x1 ``conv`` without computing it.

        Args:
            low: ``[B, C_low, D, H, W]``.
            conv: ``Conv3d(C_low, C, kernel_size=1)`` (stride 1, no padding, groups 1; bias optional).

        Raises:
            ValueError: if ``conv`` is not a plain pointwise convolution of ``low``'s width.
        """
        if (
            tuple(conv.kernel_size) != (1, 1, 1)
            or tuple(conv.stride) != (1, 1, 1)
            or tuple(conv.padding) != (0, 0, 0)
            or conv.groups != 1
            or conv.in_channels != low.shape[1]
        ):
            raise ValueError(
                f"expected a 1x1x1 stride-1 Conv3d over {low.shape[1]} channels, got {conv}"
            )
        weight = conv.weight.flatten(1)
        bias = conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])
        ones = low.new_ones(low.shape[0], 1, *low.shape[2:])
        return cls(torch.cat([low, ones], dim=1), torch.cat([weight, bias[:, None]], dim=1))

    @property
    def channels(self) -> int:
        """``C``, the width of the represented feature map."""
        return int(self.weight.shape[0])

    def compose(self, conv_weight: torch.Tensor) -> torch.Tensor:
        """Weights that apply ``conv_weight`` (``[O, C, k, k, k]``) to ``low_with_ones``: ``[O, C_low + 1, k, k, k]``."""
        if not torch.jit.is_tracing() and conv_weight.shape[1] != self.channels:
            raise ValueError(
                f"expected a convolution over {self.channels} feature channels, got weight of shape "
                f"{tuple(conv_weight.shape)}"
            )
        return torch.einsum("oc...,cj->oj...", conv_weight, self.weight)

    def conv3d(self, weight: torch.Tensor, bias: torch.Tensor | None, padding) -> torch.Tensor:
        """``conv3d(f, weight, bias, padding)`` computed on the narrow map; ``[B, O, D, H, W]`` (stride 1)."""
        return conv3d_same(self.low_with_ones, self.compose(weight), bias, padding)

    def pooled(self) -> torch.Tensor:
        """Global average of ``f`` over space, ``[B, C]``."""
        return self.low_with_ones.mean(dim=(2, 3, 4)) @ self.weight.t()

    def materialise(self) -> torch.Tensor:
        """``f`` itself, ``[B, C, D, H, W]`` (for tests and debugging: this is what the class avoids)."""
        return F.conv3d(self.low_with_ones, self.weight[:, :, None, None, None])


def channel_slices(channels: int, group: int | None) -> list[slice]:
    """Consecutive slices of ``group`` channels covering ``range(channels)`` (one slice when ``group`` is None)."""
    if group is None or group >= channels:
        return [slice(0, channels)]
    if group < 1:
        raise ValueError(f"expected a positive channel group size, got {group}")
    return [slice(start, min(start + group, channels)) for start in range(0, channels, group)]


def run_in_channel_groups(
    function: Callable[[torch.Tensor, slice], torch.Tensor],
    x: torch.Tensor,
    channels: int,
    group: int | None,
    modules: Sequence[nn.Module],
) -> list[torch.Tensor]:
    """``[function(x, s) for s in channel_slices(channels, group)]``, each call a checkpointed segment when grouped.

    With ``group`` None the channels are computed in one plain call. Otherwise every slice is its own
    checkpointed segment (:func:`~monai_sadaan.networks.utils.checkpoint_call`, BatchNorm statistics of
    ``modules`` protected on recompute), so the backward pass holds one group's activations at a time.

    Args:
        function: computes the output for one slice of channels from ``x``.
        x: the segment input (the only tensor kept for backward).
        channels: number of channels to cover.
        group: channels per segment, or None for one plain call.
        modules: the modules ``function`` uses.

    Returns:
        one tensor per slice, in channel order.
    """
    if group is None:
        return [function(x, slice(0, channels))]
    return [checkpoint_call(function, x, part, modules=modules) for part in channel_slices(channels, group)]


def batch_norm_channels(y: torch.Tensor, bn: nn.BatchNorm3d, channels: slice, momentum: float) -> torch.Tensor:
    """Training-mode ``bn`` restricted to ``channels`` of its input: ``y`` holds those channels only.

    BatchNorm is per channel, so running it on a channel slice with the matching slices of its parameters and
    running statistics gives exactly the rows the whole layer would; the running statistics of those channels
    are updated in place. ``num_batches_tracked`` is the caller's to count, once per forward pass.

    Args:
        y: ``[B, len(channels), D, H, W]``.
        bn: the layer (training mode).
        channels: which of its channels ``y`` holds.
        momentum: the running-average factor the whole layer would use for this batch.

    Returns:
        ``[B, len(channels), D, H, W]``.
    """
    track = bn.track_running_stats and bn.running_mean is not None
    return F.batch_norm(
        y,
        bn.running_mean[channels] if track else None,
        bn.running_var[channels] if track else None,
        bn.weight[channels] if bn.weight is not None else None,
        bn.bias[channels] if bn.bias is not None else None,
        training=True,
        momentum=momentum,
        eps=bn.eps,
    )


def count_batch(bn: nn.BatchNorm3d) -> float:
    """Count one training batch on ``bn`` as its own forward would; returns the running-average factor."""
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            return 1.0 / float(bn.num_batches_tracked)
    return 0.0 if bn.momentum is None else float(bn.momentum)


def conv_bn_relu_channels(
    x: torch.Tensor | ProjectedFeatures, conv: nn.Conv3d, bn: nn.BatchNorm3d, channels: slice, momentum: float | None
) -> torch.Tensor:
    """Output ``channels`` of ``relu(bn(conv(x)))`` for a stride-1 ``conv`` of a tensor or of projected features.

    Args:
        x: ``[B, C_in, D, H, W]`` or :class:`ProjectedFeatures` of ``C_in`` channels.
        conv: the convolution (stride 1, groups 1).
        bn: the BatchNorm after it.
        channels: the output channels to compute.
        momentum: training mode: the running-average factor of ``bn`` for this batch (see :func:`count_batch`);
            None: eval mode, ``bn`` folded into the convolution.

    Returns:
        ``[B, len(channels), D, H, W]``.
    """
    if momentum is None:
        weight, bias = fold_conv_bn(conv, bn)
        weight, bias = weight[channels], bias[channels]
    else:
        weight = conv.weight[channels]
        bias = conv.bias[channels] if conv.bias is not None else None
    if isinstance(x, ProjectedFeatures):
        y = x.conv3d(weight, bias, conv.padding)
    else:
        y = conv3d_same(x, weight, bias, conv.padding)
    if momentum is not None:
        y = batch_norm_channels(y, bn, channels, momentum)
    return y.relu_()
