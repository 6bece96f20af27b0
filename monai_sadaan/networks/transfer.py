"""Starting SADAAn training from trained weights.

* :func:`load_pretrained_encoder`: fine-tuning on another structure set: reuse a trained encoder, start the heads
  and the position prior afresh (their shapes depend on the number of structures), optionally keep the encoder
  frozen.
* :func:`load_pretrained_network`: continuing on the same structure set (a warm start): every weight is read,
  then the named submodules are started afresh (for example the presence classifiers, when the loss that trains
  their inputs changes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from monai_glue import CheckpointError, load_checkpoint, load_state_dict_checked, parse_bool

__all__ = ["load_pretrained_encoder", "load_pretrained_network"]


def load_pretrained_encoder(
    model: torch.nn.Module,
    checkpoint_path: str | os.PathLike,
    freeze_encoder: bool = False,
    key: str | None = "model",
) -> torch.nn.Module:
    """Copy the ``encoder.*`` weights of a trained SADAAn checkpoint into ``model``; return ``model``.

    The checkpoint may come from a model with another number of structures: only the encoder is read, so the
    attention module, the position prior and both heads keep their fresh initialisation.

    Args:
        model: the new :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` (or a wrapper with
            ``.module``).
        checkpoint_path: a checkpoint written by the bundle (a state dict, or ``{"model": state dict}``).
        freeze_encoder: stop gradients into the encoder and freeze its BatchNorm running statistics
            (momentum 0), so only the heads and the prior learn.
        key: entry of a nested checkpoint.

    Raises:
        CheckpointError: unreadable checkpoint, no encoder weights in it, or an encoder of another width
            (``features`` / ``feature_channels`` / ``in_channels`` differ); the message names the first mismatches.
        ValueError: a ``freeze_encoder`` that is not true or false.
    """
    freeze_encoder = parse_bool(freeze_encoder, "freeze_encoder")  # "false" from a command line is a string
    net = model.module if hasattr(model, "module") else model
    encoder = getattr(net, "encoder", None)
    if encoder is None:
        raise CheckpointError(f"expected a SADAAn model with an encoder, got {type(net).__name__}")
    state = load_checkpoint(checkpoint_path, key=key)
    enc_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc_state:
        raise CheckpointError(f"expected encoder.* weights in {checkpoint_path}, found none (keys: {list(state)[:5]} ...)")
    own = encoder.state_dict()
    mismatched = [
        f"encoder.{k}: expected {tuple(own[k].shape)}, got {tuple(v.shape)}"
        for k, v in enc_state.items()
        if k in own and tuple(own[k].shape) != tuple(v.shape)
    ]
    missing = [f"encoder.{k}" for k in own if k not in enc_state]
    if mismatched or missing:
        raise CheckpointError(
            f"the encoder in {checkpoint_path} was made for another configuration: "
            + "; ".join((mismatched + [f"missing {m}" for m in missing])[:5])
        )
    encoder.load_state_dict(enc_state, strict=True)
    if freeze_encoder:
        for p in encoder.parameters():
            p.requires_grad_(False)
        for m in encoder.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.0
    return model


def load_pretrained_network(
    model: torch.nn.Module,
    checkpoint_path: str | os.PathLike,
    reinitialise: Sequence[str] = (),
    key: str | None = "model",
) -> torch.nn.Module:
    """Load every weight of a trained SADAAn checkpoint into ``model``, then start the submodules named in
    ``reinitialise`` afresh; return ``model``.

    The checkpoint must have been made for the same configuration (structure set, widths, ``spatial_dims``):
    :func:`load_pretrained_encoder` is the tool for another structure set.

    Args:
        model: a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` (or a wrapper with ``.module``).
        checkpoint_path: a checkpoint written by the bundle (a state dict, or ``{"model": state dict}``).
        reinitialise: dotted names of submodules (``"absence_detector.absence_classifiers"``) whose layers get
            PyTorch's default initialisation again (``reset_parameters`` of every layer that has one).
        key: entry of a nested checkpoint.

    Raises:
        CheckpointError: unreadable checkpoint, or one made for another configuration (the message names the
            missing / unexpected keys and the first shape mismatches).
        ValueError: a name in ``reinitialise`` that is not a submodule of the model.
    """
    net = model.module if hasattr(model, "module") else model
    names = [reinitialise] if isinstance(reinitialise, str) else list(reinitialise)
    known = dict(net.named_modules())
    unknown = [n for n in names if n not in known or not n]
    if unknown:
        raise ValueError(f"expected submodule names of {type(net).__name__} to reinitialise, got unknown {unknown}")
    load_state_dict_checked(net, load_checkpoint(checkpoint_path, key=key), source=str(checkpoint_path))
    for name in names:
        for layer in known[name].modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
    return model
