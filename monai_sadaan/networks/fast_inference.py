"""A faster, eval-only graph built from a trained :class:`SpatialAttentionMedicalSegmenter`, with the same outputs.

:func:`build_fast_inference` copies the trained weights into a separate module; the model itself is left as it
is. Two rewrites, both exact up to float rounding:

* **BatchNorm folded.** In eval mode a ``BatchNorm3d`` is a fixed affine map per channel, so it is folded into
  the convolution in front of it (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass instead of three per
  layer, which matters at full resolution where each BatchNorm + ReLU reads and writes hundreds of megabytes.
* **Factorised features.** The encoder ends with ``final_conv``, a 1x1x1 convolution from the last decoder level
  (``C_low`` channels, 16 in the seed model) to the shared feature map (``C`` channels, 128). Everything that
  reads that map is linear in it up to its first BatchNorm: the 3x3x3 convolutions ``attention_conv[0]``,
  ``feature_matcher[0]``, ``feature_refine[0]`` and the global pool of the absence head. A convolution of a
  1x1 projection is a convolution of the projected-from map with composed weights::

      f = W_f * low + b_f                        (inside the volume; zero padding outside)
      conv(f; W, b) = conv([low, 1]; W o [W_f | b_f], b)

  where ``[low, 1]`` appends a channel of ones (zero-padded like everything else, so ``final_conv``'s bias only
  enters from inside the volume, as with the materialised map). The three head convolutions read ``C_low + 1``
  channels instead of ``C`` (17 instead of 128: about 7.5x fewer multiply-adds) and the ``[B, C, D, H, W]`` map
  is never computed; the pooled features are the projection of the pooled narrow map.

Full-resolution tensors run in the ``channels_last_3d`` memory format, for which PyTorch's CPU convolutions take
their oneDNN kernels. ``benchmarks/sadaan_forward.py`` measures the graph against the model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from monai_glue.config_values import parse_bool

from monai_glue.checkpoint import unwrap_model
from monai_sadaan.networks.blocks.sadaan_block import (
    apply_position_prior,
    compose_with_projection,
    modulate_by_attention,
)
from monai_sadaan.networks.nets.sadaan import SpatialAttentionMedicalSegmenter, check_sadaan_input, sadaan_outputs
from monai_sadaan.networks.test_time_norm import uses_input_statistics

__all__ = ["FastSADAAnInference", "attach_fast_inference", "build_fast_inference", "fold_double_conv"]

_FULL_RES = torch.channels_last_3d


def fold_double_conv(block: nn.Sequential) -> nn.Sequential:
    """``Conv3d, BatchNorm3d, ReLU, Conv3d, BatchNorm3d, ReLU`` (eval mode) as ``Conv3d, ReLU, Conv3d, ReLU``.

    Args:
        block: the six-layer block (see :func:`~monai_sadaan.networks.blocks.sadaan_block.double_conv3d`).

    Returns:
        a new four-layer block equal to ``block.eval()`` up to float rounding, ``[B, C_in, ...] -> [B, C_out, ...]``.
    """
    return nn.Sequential(
        fuse_conv_bn_eval(block[0], block[1]), nn.ReLU(inplace=True), fuse_conv_bn_eval(block[3], block[4]),
        nn.ReLU(inplace=True),
    )  # fmt: skip


def _compose(conv: nn.Conv3d, projection: torch.Tensor) -> nn.Conv3d:
    """A convolution over ``[low, 1]`` equal to ``conv`` over ``f = projection . [low, 1]`` (see the module)."""
    out = nn.Conv3d(projection.shape[1], conv.out_channels, conv.kernel_size, padding=conv.padding)
    with torch.no_grad():
        out.weight.copy_(compose_with_projection(conv.weight, projection))
        out.bias.copy_(conv.bias if conv.bias is not None else torch.zeros_like(out.bias))
    return out


class FastSADAAnInference(nn.Module):
    """The eval-mode forward pass of a trained :class:`SpatialAttentionMedicalSegmenter` with BatchNorm folded and
    the full-resolution features kept factorised (see the module docstring). Built by :func:`build_fast_inference`.

    ``forward(x, presence_threshold=0.5)`` takes and returns what the model's forward does (the same dict, keys
    :data:`~monai_sadaan.networks.nets.sadaan.SADAAN_OUTPUT_KEYS`), without gradients. The module stays in eval
    mode: ``train(True)`` is refused. Its state dict holds the folded weights; checkpoints are the model's.

    Args:
        model: the trained network (not modified; its weights are copied at construction).

    Raises:
        TypeError: ``model`` is not a :class:`SpatialAttentionMedicalSegmenter`.
        ValueError: ``model`` normalises by input statistics (:mod:`~monai_sadaan.networks.test_time_norm`), which
            cannot be folded into its convolutions.
    """

    def __init__(self, model: SpatialAttentionMedicalSegmenter) -> None:
        super().__init__()
        if not isinstance(model, SpatialAttentionMedicalSegmenter):
            raise TypeError(f"expected a SpatialAttentionMedicalSegmenter, got {type(model).__name__}")
        if uses_input_statistics(model):
            raise ValueError(
                "expected a network with fixed BatchNorm statistics, got one that normalises by input statistics "
                "(test-time normalisation): its statistics cannot be folded; run it without the fast graph"
            )
        model = copy.deepcopy(model).eval()  # the folds below read running statistics; the original stays as it is
        self.in_channels = model.in_channels
        self.num_structures = model.num_structures
        self.spatial_size = model.spatial_size
        encoder, attention, head = model.encoder, model.attention_module, model.segmentation_head

        self.pool = nn.MaxPool3d(kernel_size=2)
        self.down = nn.ModuleList(fold_double_conv(b) for b in (encoder.enc1, encoder.enc2, encoder.enc3,
                                                                 encoder.enc4, encoder.enc5))  # fmt: skip
        self.up = nn.ModuleList([encoder.up4, encoder.up3, encoder.up2, encoder.up1])
        self.dec = nn.ModuleList(fold_double_conv(b) for b in (encoder.dec4, encoder.dec3, encoder.dec2, encoder.dec1))

        projection = encoder.projection().detach()  # final_conv as [C, C_low + 1], the bias last
        self.register_buffer("projection", projection)
        fold = fuse_conv_bn_eval
        self.attention_in = _compose(fold(attention.attention_conv[0], attention.attention_conv[1]), projection)
        self.attention_out = attention.attention_conv[3]
        self.matcher_in = _compose(fold(attention.feature_matcher[0], attention.feature_matcher[1]), projection)
        self.matcher_out = attention.feature_matcher[3]
        self.register_buffer("position_prior", attention.position_prior().detach())
        self.eps = attention.eps
        self.refine_in = _compose(fold(head.feature_refine[0], head.feature_refine[1]), projection)
        self.refine_second = fold(head.feature_refine[3], head.feature_refine[4])
        self.segmentation_layer = head.segmentation_layer
        self.absence_detector = model.absence_detector
        self.presence_fusion = model.presence_fusion
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FastSADAAnInference:  # type: ignore[override]
        """Eval mode only: the folded BatchNorms cannot learn."""
        if mode:
            raise ValueError("FastSADAAnInference is an eval-only graph: train the SpatialAttentionMedicalSegmenter")
        return super().train(False)

    def features_low(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder up to ``dec1`` with a channel of ones appended: ``[B, C_low + 1, D, H, W]`` (channels last).

        Args:
            x: ``[B, in_channels, D, H, W]``.
        """
        skips = []
        h = x.contiguous(memory_format=_FULL_RES)
        for level, block in enumerate(self.down):
            h = block(self.pool(h) if level else h)
            skips.append(h)
        h = skips.pop()
        for up, block in zip(self.up, self.dec):
            h = block(torch.cat([up(h), skips.pop()], dim=1))
        ones = h.new_ones(h.shape[0], 1, *h.shape[2:])
        return torch.cat([h, ones], dim=1).contiguous(memory_format=_FULL_RES)

    def forward(self, x: torch.Tensor, presence_threshold: float = 0.5) -> dict[str, torch.Tensor]:
        """
        Args:
            x: image batch ``[B, in_channels, D, H, W]`` with ``(D, H, W) == spatial_size``, finite values.
            presence_threshold: a structure is called present when its presence probability is ``>=`` this.

        Returns:
            the model's output dict (see :meth:`SpatialAttentionMedicalSegmenter.forward`), equal up to float
            rounding.

        Raises:
            ValueError: as the model's forward.
        """
        if not torch.jit.is_tracing():
            check_sadaan_input(x, self.in_channels, self.spatial_size, False, presence_threshold)
        with torch.no_grad():
            low = self.features_low(x)
            pooled = low.mean(dim=(2, 3, 4)) @ self.projection.t()  # global mean of the features, [B, C]
            spatial_attention = torch.sigmoid(self.attention_out(self.attention_in(low).relu_()))
            feature_responses = self.matcher_out(self.matcher_in(low).relu_())
            attention_maps, feature_responses, alignment_scores, position_priors = apply_position_prior(
                spatial_attention.contiguous(), feature_responses.contiguous(), self.position_prior, self.eps
            )
            presence_probs, absence_logits, confidence_scores = self.absence_detector.classify(pooled, alignment_scores)
            refined = self.refine_second(self.refine_in(low).relu_()).relu_()
            del low
            projected = self.segmentation_layer(refined).contiguous()
            del refined
            segmentation_logits = modulate_by_attention(projected, attention_maps, self.segmentation_layer.bias)
            return sadaan_outputs(
                x, attention_maps, feature_responses, alignment_scores, position_priors, absence_logits,
                presence_probs, confidence_scores, segmentation_logits, torch.sigmoid(segmentation_logits),
                self.presence_fusion, presence_threshold,
            )  # fmt: skip


def build_fast_inference(model: nn.Module) -> FastSADAAnInference:
    """The eval-only fast graph of a trained network (see :class:`FastSADAAnInference`); ``model`` is not modified.

    Build it after the weights are loaded: later changes to ``model`` do not reach the graph.

    Args:
        model: a :class:`SpatialAttentionMedicalSegmenter`, or a wrapper holding one as ``.module`` (DDP).

    Returns:
        a new module, on ``model``'s device, computing ``model.eval()``'s outputs up to float rounding.
    """
    return FastSADAAnInference(unwrap_model(model))


def attach_fast_inference(engine: Any, fast_inference: bool = True) -> None:
    """Make ``engine`` (a MONAI evaluator) run :func:`build_fast_inference` of its network from the moment it starts.

    The swap is an ``Events.STARTED`` handler registered now, so it runs after the handlers the engine was built
    with, in particular the checkpoint loader that loads the trained weights into ``engine.network``: the graph is
    built from the loaded weights, on every run. The bundle's ``initialize`` calls this with its
    ``fast_inference`` switch.

    Args:
        engine: an ignite engine with a ``network`` attribute (MONAI ``SupervisedEvaluator``).
        fast_inference: the switch (``"false"`` from a command line is false); nothing is attached when false, nor
            for a network that normalises by input statistics (:func:`~monai_sadaan.networks.uses_input_statistics`).

    Raises:
        ValueError: a ``fast_inference`` that is not true or false.
    """
    if not parse_bool(fast_inference, "fast_inference"):
        return
    if uses_input_statistics(engine.network):
        return  # the fast graph folds fixed statistics; the network runs as it is (see test_time_norm)
    from ignite.engine import Events

    trained = engine.network

    def swap(_: Any) -> None:
        engine.network = build_fast_inference(trained)

    engine.add_event_handler(Events.STARTED, swap)
