"""Activation checkpointing of :class:`~monai_sadaan.networks.nets.sadaan.SpatialAttentionMedicalSegmenter`: what
its ``use_checkpoint`` switch runs when gradients are enabled.

Where the memory of a training step goes (seed size, ``1 x 1 x 64^3``; one full-resolution channel is 1 MiB): the
plain graph keeps every full-resolution activation for backward, about 1.1 GiB. Wrapping the three stages
(encoder, attention module, segmentation head) whole in ``torch.utils.checkpoint`` saves little (about 0.8x):
backward recomputes a stage at once, and ``feature_matcher`` alone (``Conv3d(128, 128, k3) -> BatchNorm3d ->
ReLU -> Conv3d(128, S, k1)``) then holds its 128-channel convolution output, ReLU output and their gradients,
beside the 128-channel feature map and its gradient, which every reader of the map keeps. Checkpointing each
layer on its own does not go much lower (about 0.7x) for the same reason.

:func:`checkpointed_stages` computes the same four stages in segments that are recomputed in backward and stay
small at full resolution:

* the encoder up to its last decoder level (:meth:`Encoder.narrow_features`, ``features[0]`` = 16 channels) is
  one segment;
* the 128-channel feature map ``final_conv(narrow)`` is never computed. Its readers are linear in it up to their
  first BatchNorm, so the three 3x3x3 convolutions that read it (``attention_conv[0]``, ``feature_matcher[0]``,
  ``feature_refine[0]``) run on ``[narrow, 1]`` with weights composed with ``final_conv``
  (:func:`~monai_sadaan.networks.blocks.sadaan_block.compose_with_projection`, as the fast inference graph does),
  reading 17 channels instead of 128, and the global pool of the absence head is the projection of the pooled
  narrow map. Gradients reach ``final_conv`` through the composed weights;
* every full-resolution ``Conv3d -> BatchNorm3d -> ReLU`` layer of the heads runs in groups of
  :data:`CHANNEL_GROUP` output channels, one segment per group. BatchNorm normalises each channel on its own, so a
  group's rows of the convolution followed by the group's slice of the BatchNorm (weights and running statistics,
  updated in place by ``F.batch_norm``) give exactly the group's channels of the whole layer. The 1x1x1
  convolution that follows (``attention_conv[3]``, ``feature_matcher[3]``, ``segmentation_layer``) is a sum over
  the groups, so only the second layer of ``feature_refine`` needs its input (64 channels) whole.

Outputs and gradients equal the plain graph's up to float rounding (the composed convolutions sum in another
order). BatchNorm running statistics are updated once per forward: a segment's recomputation in backward restores
what it changes (:func:`batchnorm_statistics_kept`), and each layer counts ``num_batches_tracked`` once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from monai_sadaan.networks.blocks.sadaan_block import (
    apply_position_prior,
    compose_with_projection,
    modulate_by_attention,
)

if TYPE_CHECKING:
    from monai_sadaan.networks.nets.sadaan import SpatialAttentionMedicalSegmenter

__all__ = ["CHANNEL_GROUP", "batchnorm_statistics_kept", "checkpoint_segment", "checkpointed_stages"]

#: output channels of a full-resolution hidden layer computed per checkpointed segment
CHANNEL_GROUP = 32


@contextmanager
def batchnorm_statistics_kept(*modules: nn.Module) -> Iterator[None]:
    """Restore the running statistics of the BatchNorms in ``modules`` on exit.

    A checkpointed segment's second forward (its recomputation in backward) must not update them a second time;
    the recomputed outputs do not depend on them (training mode normalises with the batch statistics).
    """
    saved = [
        (buffer, buffer.detach().clone())
        for module in modules
        for bn in module.modules()
        if isinstance(bn, _BatchNorm) and bn.track_running_stats
        for buffer in (bn.running_mean, bn.running_var, bn.num_batches_tracked)
        if buffer is not None
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def checkpoint_segment(function: Callable[..., Any], *args: Any, modules: tuple[nn.Module, ...] = ()) -> Any:
    """``function(*args)`` under ``torch.utils.checkpoint`` (non-reentrant): only ``args`` are kept for backward,
    which recomputes the rest; the BatchNorm statistics of ``modules`` (those ``function`` trains) are kept as the
    first forward left them (:func:`batchnorm_statistics_kept`)."""
    return checkpoint(
        function, *args, use_reentrant=False, context_fn=lambda: (nullcontext(), batchnorm_statistics_kept(*modules))
    )


def _channel_groups(channels: int, group: int) -> list[slice]:
    """Consecutive slices of ``group`` channels covering ``range(channels)``."""
    if group < 1:
        raise ValueError(f"expected a positive channel group, got {group}")
    return [slice(start, min(start + group, channels)) for start in range(0, channels, group)]


def _count_batch(bn: _BatchNorm) -> float:
    """Count this forward's batch on ``bn`` as its own forward does, once for all groups; return the update factor
    of its running statistics (``momentum``, or the cumulative ``1 / num_batches_tracked`` when it is None)."""
    if not (bn.training and bn.track_running_stats):
        return 0.0
    bn.num_batches_tracked.add_(1)  # type: ignore[union-attr]
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum  # type: ignore[arg-type]


def _conv_bn_relu(
    x: torch.Tensor,
    projection: torch.Tensor | None,
    conv: nn.Conv3d,
    bn: _BatchNorm,
    rows: slice,
    momentum: float,
) -> torch.Tensor:
    """``relu(bn(conv(f)))[:, rows]`` from the ``rows`` of ``conv``'s weights and of ``bn`` only, where ``f`` is
    ``x`` or, with ``projection``, the feature map ``projection @ x``.

    Args:
        x: ``[B, conv.in_channels, D, H, W]``, or ``[narrow, 1]`` (``[B, projection.shape[1], D, H, W]``).
        projection: the encoder's :meth:`~Encoder.projection`, or None.
        conv: a ``groups=1`` convolution with zero padding.
        bn: the BatchNorm after it; in training mode its running statistics of ``rows`` are updated in place.
        rows: the output channels to compute.
        momentum: the update factor from :func:`_count_batch`.

    Returns:
        ``[B, len(rows), D, H, W]``.
    """

    def part(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else tensor[rows]

    weight = conv.weight[rows] if projection is None else compose_with_projection(conv.weight[rows], projection)
    y = F.conv3d(x, weight, part(conv.bias), conv.stride, conv.padding, conv.dilation)
    use_batch = bn.training or bn.running_mean is None
    y = F.batch_norm(
        y, part(bn.running_mean), part(bn.running_var), part(bn.weight), part(bn.bias), use_batch, momentum, bn.eps
    )
    return torch.relu(y)


def _hidden_in_groups(
    x: torch.Tensor, projection: torch.Tensor | None, conv: nn.Conv3d, bn: _BatchNorm, group: int
) -> torch.Tensor:
    """``relu(bn(conv(f)))`` (``f`` as in :func:`_conv_bn_relu`), one checkpointed segment per group of output
    channels; ``[B, conv.out_channels, D, H, W]``."""
    momentum = _count_batch(bn)

    def segment(inp: torch.Tensor, proj: torch.Tensor | None, rows: slice) -> torch.Tensor:
        return _conv_bn_relu(inp, proj, conv, bn, rows, momentum)

    groups = _channel_groups(conv.out_channels, group)
    return torch.cat([checkpoint_segment(segment, x, projection, rows, modules=(bn,)) for rows in groups], dim=1)


def _pointwise_of_hidden_in_groups(
    x: torch.Tensor,
    projection: torch.Tensor | None,
    conv: nn.Conv3d,
    bn: _BatchNorm,
    pointwise: nn.Conv3d,
    group: int,
) -> torch.Tensor:
    """``pointwise(relu(bn(conv(f))))`` for a 1x1x1 ``pointwise`` (``f`` as in :func:`_conv_bn_relu`), as a sum over
    groups of ``conv``'s output channels, each group one checkpointed segment: the hidden layer is never whole.
    ``[B, pointwise.out_channels, D, H, W]``."""
    momentum = _count_batch(bn)

    def segment(inp: torch.Tensor, proj: torch.Tensor | None, rows: slice) -> torch.Tensor:
        return F.conv3d(_conv_bn_relu(inp, proj, conv, bn, rows, momentum), pointwise.weight[:, rows])

    out = None
    for rows in _channel_groups(conv.out_channels, group):
        part = checkpoint_segment(segment, x, projection, rows, modules=(bn,))
        out = part if out is None else out + part
    return out if pointwise.bias is None else out + pointwise.bias.view(1, -1, 1, 1, 1)


def checkpointed_stages(
    model: SpatialAttentionMedicalSegmenter, x: torch.Tensor, channel_group: int | None = None
) -> tuple[torch.Tensor, ...]:
    """The four stages of ``model`` on ``x`` in checkpointed segments (see the module docstring): the same values as
    its plain forward up to float rounding, with a fraction of the activation memory in backward.

    Args:
        model: the network; its blocks are used as they are (train or eval mode).
        x: ``[B, in_channels, D, H, W]``, already checked.
        channel_group: output channels per segment of a hidden layer (default :data:`CHANNEL_GROUP`).

    Returns:
        ``(attention_maps, feature_responses, alignment_scores, position_priors, absence_logits, presence_probs,
        confidence_scores, segmentation_logits, segmentation_probs)``, the arguments of
        :func:`~monai_sadaan.networks.nets.sadaan.sadaan_outputs` after ``x``, shapes as in the model's forward.
    """
    group = CHANNEL_GROUP if channel_group is None else int(channel_group)
    encoder, attention, head = model.encoder, model.attention_module, model.segmentation_head

    def narrow_with_ones(image: torch.Tensor) -> torch.Tensor:
        narrow = encoder.narrow_features(image)
        return torch.cat([narrow, narrow.new_ones(narrow.shape[0], 1, *narrow.shape[2:])], dim=1)

    low = checkpoint_segment(narrow_with_ones, x, modules=(encoder,))  # [B, features[0] + 1, D, H, W]
    projection = encoder.projection()  # the feature map is projection @ low at every voxel

    attention_conv, matcher = attention.attention_conv, attention.feature_matcher
    spatial_attention = torch.sigmoid(
        _pointwise_of_hidden_in_groups(low, projection, attention_conv[0], attention_conv[1], attention_conv[3], group)
    )
    feature_responses = _pointwise_of_hidden_in_groups(low, projection, matcher[0], matcher[1], matcher[3], group)
    attention_maps, feature_responses, alignment_scores, position_priors = apply_position_prior(
        spatial_attention, feature_responses, attention.position_prior(), attention.eps
    )

    pooled = low.mean(dim=(2, 3, 4)) @ projection.t()  # the global mean of the feature map, [B, C]
    presence_probs, absence_logits, confidence_scores = model.absence_detector.classify(pooled, alignment_scores)

    refine, layer = head.feature_refine, head.segmentation_layer
    refined_first = _hidden_in_groups(low, projection, refine[0], refine[1], group)
    if head.memory_efficient:
        projected = _pointwise_of_hidden_in_groups(refined_first, None, refine[3], refine[4], layer, group)
        segmentation_logits = modulate_by_attention(projected, attention_maps, layer.bias)
    else:  # the seed's per-structure copies need the refined features whole
        refined = _hidden_in_groups(refined_first, None, refine[3], refine[4], group)
        segmentation_logits = checkpoint_segment(head.modulated_logits, refined, attention_maps)
    return (
        attention_maps, feature_responses, alignment_scores, position_priors, absence_logits, presence_probs,
        confidence_scores, segmentation_logits, torch.sigmoid(segmentation_logits),
    )  # fmt: skip
