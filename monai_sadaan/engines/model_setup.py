"""Setting up a SADAAn network for training: initial output priors, transfer from trained weights, widening,
presence head tuning and optimiser parameter groups.

* :func:`init_output_priors`: start the segmentation bias at the logit of a small prior probability. A freshly
  initialised segmentation layer predicts about 0.5 everywhere, although organs fill a few per cent of the
  volume; optimisers with a step of about the learning rate (Adam) would spend hundreds of iterations moving the
  bias (RetinaNet starts its classification head the same way).
* :func:`presence_head_parameter_groups`: the presence MLPs at their own learning rate.
* :func:`load_pretrained_encoder`: fine-tuning on another structure set: reuse a trained encoder, start the heads
  and the position prior afresh, optionally keep the encoder frozen.
* :func:`load_pretrained_network`: a warm start on the same structure set, with named submodules started afresh.
* :func:`load_widened_network`: start a wider network from a trained narrower one, computing exactly what the
  narrower one computed (see its docstring).
* :class:`PresenceHeadTuning`: train only the presence head on the frozen network's own features.

Each function takes the bare network or a wrapper holding it as ``.module`` (DistributedDataParallel) and, where
it returns, returns what it was given, for use in bundle configs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.utils import freeze_layers

from monai_glue import CheckpointError, load_checkpoint, load_state_dict_checked, parse_bool
from monai_glue.checkpoint import StateOfWrappedModel, unwrap_model

__all__ = [
    "PresenceHeadTuning",
    "init_output_priors",
    "load_pretrained_encoder",
    "load_pretrained_network",
    "load_widened_network",
    "presence_head_parameter_groups",
    "widen_state_dict",
]


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
    net = unwrap_model(model)
    layer = getattr(getattr(net, "segmentation_head", None), "segmentation_layer", None)
    if layer is None or getattr(layer, "bias", None) is None:
        raise ValueError(f"expected a SADAAn model with segmentation_head.segmentation_layer, got {type(net).__name__}")
    with torch.no_grad():
        layer.bias.fill_(math.log(segmentation_prior / (1.0 - segmentation_prior)))
    return model


def presence_head_parameter_groups(
    network: nn.Module, head_learning_rate: float, trainable_only: bool = True
) -> list[dict[str, Any]]:
    """Split a SADAAn network's parameters into the convolutional body and the presence head.

    The absence classifiers and the confidence head are small ReLU MLPs on globally pooled features, with no
    normalisation in front of them. At the learning rate that suits the convolutional body (a few 1e-3 with Adam)
    their hidden units die early (measured on the phantom bundle after 12 epochs at 5e-3: 1 of 32 units of a
    kidney classifier still active on any validation case; the presence calls then stay at the base rate).
    Giving the head its own, lower rate keeps them alive.

    Args:
        network: a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` (or a DDP/DataParallel
            wrapper of one).
        head_learning_rate: learning rate of ``absence_detector``'s parameters.
        trainable_only: leave out parameters with ``requires_grad=False`` (a frozen encoder when fine-tuning).

    Returns:
        ``[{"params": body}, {"params": head, "lr": head_learning_rate}]`` for a ``torch.optim`` constructor
        (the body takes the optimizer's default ``lr``).

    Raises:
        ValueError: if the network has no ``absence_detector`` or the learning rate is not positive.
    """
    module = unwrap_model(network)
    if not hasattr(module, "absence_detector"):
        raise ValueError(f"expected a SADAAn network with an absence_detector, got {type(module).__name__}")
    if not head_learning_rate > 0:
        raise ValueError(f"expected a positive head_learning_rate, got {head_learning_rate}")
    head_ids = {id(p) for p in module.absence_detector.parameters()}
    keep = (lambda p: p.requires_grad) if trainable_only else (lambda p: True)
    body = [p for p in module.parameters() if id(p) not in head_ids and keep(p)]
    head = [p for p in module.absence_detector.parameters() if keep(p)]
    return [{"params": body}, {"params": head, "lr": float(head_learning_rate)}]


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
    net = unwrap_model(model)
    encoder = getattr(net, "encoder", None)
    if encoder is None:
        raise CheckpointError(f"expected a SADAAn model with an encoder, got {type(net).__name__}")
    state = load_checkpoint(checkpoint_path, key=key)
    enc_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc_state:
        raise CheckpointError(
            f"expected encoder.* weights in {checkpoint_path}, found none (keys: {list(state)[:5]} ...)"
        )
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

    The checkpoint must have been made for the same configuration (structure set, widths, ``spatial_size``):
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
    net = unwrap_model(model)
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
            built with the same structure set and ``spatial_size`` and widths as large or larger, freshly
            initialised.
        checkpoint_path: the narrower network's checkpoint (a state dict, or ``{"model": state dict}``).
        key: entry of a nested checkpoint.

    Raises:
        CheckpointError: unreadable checkpoint or one that is not a narrower version of ``model``.
    """
    net = unwrap_model(model)
    state = load_checkpoint(checkpoint_path, key=key)
    if not isinstance(state, dict):
        raise CheckpointError(f"expected a state dict in {checkpoint_path}, got {type(state).__name__}")
    with torch.no_grad():
        net.load_state_dict(widen_state_dict(net, state), strict=True)
    return model


class PresenceHeadTuning(StateOfWrappedModel):
    """Wrap a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` so that a trainer updates only the
    named submodules (by default the whole ``absence_detector``: presence classifiers and confidence head).

    * Every other parameter gets ``requires_grad=False``.
    * :meth:`train` keeps everything but the tuned submodules in eval mode, so BatchNorm layers normalise with
      their running statistics (the features the head sees in training are the ones it will see in inference,
      and the statistics stay as trained).
    * :meth:`state_dict` / :meth:`load_state_dict` are the wrapped network's, without a prefix: checkpoints
      written through the wrapper load into the bare network, as the bundle's inference expects.

    ``forward(x)`` is the wrapped network's: ``x`` ``[B, C, D, H, W]``, returns its output dict.

    Args:
        model: the trained network.
        trainable: dotted names of the submodules to tune.

    Raises:
        ValueError: a name in ``trainable`` that is not a submodule of ``model``, or one with no parameters.
    """

    def __init__(self, model: nn.Module, trainable: Sequence[str] = ("absence_detector",)) -> None:
        super().__init__()
        names = [trainable] if isinstance(trainable, str) else list(trainable)
        modules = dict(model.named_modules())
        unknown = [n for n in names if not n or n not in modules]
        if not names or unknown:
            raise ValueError(f"expected submodule names of {type(model).__name__} to tune, got {names}")
        empty = [n for n in names if not any(True for _ in modules[n].parameters())]
        if empty:
            raise ValueError(f"expected submodules with parameters to tune, got {empty} without any")
        self.model = model
        self.trainable = tuple(names)
        # a plain list (not registered twice as submodules); train() runs every iteration, so no lookup there
        self._tuned_modules = [modules[n] for n in names]
        # every parameter outside the tuned submodules frozen, those inside trainable
        freeze_layers(model, exclude_vars="^(?:" + "|".join(re.escape(n) for n in names) + r")\.")
        self.train(True)

    def train(self, mode: bool = True) -> PresenceHeadTuning:  # type: ignore[override]
        """Eval mode for the frozen part; ``mode`` for the tuned submodules (dropout on in training)."""
        self.training = mode
        self.model.eval()
        for module in self._tuned_modules:
            module.train(mode)
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters the trainer should update (those of the tuned submodules)."""
        return (p for p in self.model.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)
