"""Output-prior initialisation for SADAAn training from scratch.

A freshly initialised segmentation layer predicts about 0.5 everywhere, although organs fill a few per cent of
the volume. Optimisers with a step size of about the learning rate per iteration (Adam) then spend hundreds of
iterations only moving the bias. Starting the bias at the logit of a small prior probability (as RetinaNet does
for its classification head) removes that phase. Parameter shapes and counts do not change.
"""

from __future__ import annotations

import math

import torch

__all__ = ["init_output_priors"]


def init_output_priors(model: torch.nn.Module, segmentation_prior: float = 0.05) -> torch.nn.Module:
    """Set the segmentation layer's bias to ``logit(segmentation_prior)``; return ``model`` (for use in configs).

    Args:
        model: a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` (or a module holding one as
            ``module``, as DistributedDataParallel does).
        segmentation_prior: initial foreground probability of every structure, in (0, 1).

    Raises:
        ValueError: the prior is outside (0, 1), or the model has no ``segmentation_head.segmentation_layer``.
    """
    if not 0.0 < segmentation_prior < 1.0:
        raise ValueError(f"expected a segmentation prior in (0, 1), got {segmentation_prior}")
    net = model.module if hasattr(model, "module") else model
    layer = getattr(getattr(net, "segmentation_head", None), "segmentation_layer", None)
    if layer is None or getattr(layer, "bias", None) is None:
        raise ValueError(f"expected a SADAAn model with segmentation_head.segmentation_layer, got {type(net).__name__}")
    with torch.no_grad():
        layer.bias.fill_(math.log(segmentation_prior / (1.0 - segmentation_prior)))
    return model
