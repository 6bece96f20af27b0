"""Start a wider SADAAn network from a trained narrower one, computing exactly what the narrower one computed.

:func:`load_widened_network` reads a checkpoint made for smaller ``features`` / ``feature_channels`` into a
network whose layers are as wide or wider (same structure set, same ``spatial_dims``). Every trained weight goes
to its channel in the wider layer; the weights that carry a *new* channel into an *old* one are zero, and the
weights into the new channels keep their fresh initialisation. The old channels therefore see only old channels
and compute what they computed before (BatchNorm is per channel, so its batch statistics do not change either),
the new channels compute something but nothing reads them yet, and every output equals the narrower network's.
Training then gives the zero weights gradients (the new channels are active), so the extra width is learned
from the trained starting point instead of from scratch.

Two layers read a concatenation whose parts both widen, and their input channels are mapped part by part: the
decoder convolutions ``encoder.dec{k}.0`` (``[upsampled, skip]``, two halves) and the first layer of each presence
classifier (``[pooled features, alignment score]``).
"""

from __future__ import annotations

import os
import re

import torch
import torch.nn as nn

from monai_glue import CheckpointError, load_checkpoint

__all__ = ["load_widened_network", "widen_state_dict"]

_DECODER_INPUT = re.compile(r"^encoder\.dec\d+\.0\.weight$")
_CLASSIFIER_INPUT = re.compile(r"^absence_detector\.absence_classifiers\.\d+\.0\.weight$")


def _input_positions(key: str, old_in: int, new_in: int) -> torch.Tensor:
    """New input-channel index of each old input channel of the weight ``key`` (``[old_in]`` long tensor)."""
    old = torch.arange(old_in)
    if _DECODER_INPUT.match(key):
        if old_in % 2 or new_in % 2:
            raise CheckpointError(f"expected {key} to read two equal halves, got {old_in} -> {new_in} channels")
        half_old, half_new = old_in // 2, new_in // 2
        return torch.where(old < half_old, old, old - half_old + half_new)
    if _CLASSIFIER_INPUT.match(key):
        # [pooled features (F), alignment score (1)]: the score stays the last input
        return torch.where(old < old_in - 1, old, torch.full_like(old, new_in - 1))
    return old


def _weight_dims(module: nn.Module) -> tuple[int, int] | None:
    """``(out_dim, in_dim)`` of a layer's weight, or None for layers whose parameters are per channel."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1, 0
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        return 0, 1
    return None


def widen_state_dict(model: nn.Module, narrow_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (its own fresh values for new channels) with ``narrow_state`` placed in it.

    Args:
        model: the wider network, freshly initialised (its parameters supply the new channels' incoming weights).
        narrow_state: the trained narrower network's state dict (same keys, each dimension as large or smaller).

    Returns:
        a state dict for ``model``; loading it makes ``model`` compute what the narrower network computes.

    Raises:
        CheckpointError: keys differ, a tensor of the checkpoint is larger than ``model``'s along some dimension,
            or a tensor other than a layer weight or a per-channel vector would need widening.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in narrow_state]
    unexpected = [k for k in narrow_state if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            "expected a checkpoint of the same network layout (only widths may differ), got "
            f"missing keys {missing[:5]} and unexpected keys {unexpected[:5]}"
        )
    modules = dict(model.named_modules())
    widened: dict[str, torch.Tensor] = {}
    for key, new_value in own.items():
        old = narrow_state[key]
        if tuple(old.shape) == tuple(new_value.shape):
            widened[key] = old.detach().clone().to(new_value.dtype)
            continue
        if old.ndim != new_value.ndim or any(o > n for o, n in zip(old.shape, new_value.shape)):
            raise CheckpointError(
                f"expected {key} no larger than the widened network's {tuple(new_value.shape)}, got {tuple(old.shape)}"
            )
        value = new_value.detach().clone()
        module_name, _, param_name = key.rpartition(".")
        dims = _weight_dims(modules[module_name]) if param_name == "weight" else None
        if dims is None:
            if old.ndim != 1:
                raise CheckpointError(f"cannot widen {key} of shape {tuple(old.shape)}: not a layer weight")
            value[: old.shape[0]] = old.to(value.dtype)
            widened[key] = value
            continue
        out_dim, in_dim = dims
        positions = _input_positions(key, old.shape[in_dim], new_value.shape[in_dim])
        kept_out = [slice(None)] * value.ndim
        kept_out[out_dim] = slice(0, old.shape[out_dim])
        # old outputs read nothing from new inputs ...
        old_rows = value[tuple(kept_out)]
        old_rows.zero_()
        # ... and their old weights at the old inputs' new positions (spatial kernel sizes are equal)
        old_rows.index_copy_(in_dim, positions, old.to(value.dtype))
        widened[key] = value
    return widened


def load_widened_network(
    model: nn.Module, checkpoint_path: str | os.PathLike, key: str | None = "model"
) -> nn.Module:
    """Load a narrower trained SADAAn checkpoint into the wider ``model`` so that it computes the same; return it.

    Use it to give a trained network more channels (for example ``features[0]`` 8 -> 16 and ``feature_channels``
    16 -> 32) and train on from there. See the module docstring for how the channels are placed.

    Args:
        model: a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` (or a wrapper with ``.module``)
            built with the same structure set and ``spatial_dims`` and widths as large or larger, freshly
            initialised.
        checkpoint_path: the narrower network's checkpoint (a state dict, or ``{"model": state dict}``).
        key: entry of a nested checkpoint.

    Raises:
        CheckpointError: unreadable checkpoint or one that is not a narrower version of ``model``.
    """
    net = model.module if hasattr(model, "module") else model
    state = load_checkpoint(checkpoint_path, key=key)
    if not isinstance(state, dict):
        raise CheckpointError(f"expected a state dict in {checkpoint_path}, got {type(state).__name__}")
    with torch.no_grad():
        net.load_state_dict(widen_state_dict(net, state), strict=True)
    return model
